// Fuzzes the gdb stub's session (gdb/session.h): the packets a stub
// parses from whoever sends to its port, against a small fake target.
// The first byte picks how the stream is cut; the first bytes after it
// also serve as the clock's steps, so resends happen too. Everything the
// session sends must be '+', '-' or a whole packet with a right checksum
// (decoded again here), and no packet may leave the session in a state it
// cannot say.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "netpoll/gdb/session.h"
#include "netpoll/wire/gdb_rsp.h"
#include "test_target.h"

using namespace np::gdb;

namespace {

struct Checker final : public Transport {
  Checker() : decoder(buf) {}
  void send(std::span<const char> bytes) noexcept override {
    decoder.feed(std::as_bytes(bytes), [&](np::wire::RspEvent e) {
      if (e == np::wire::RspEvent::kBadChecksum || e == np::wire::RspEvent::kOverflow || e == np::wire::RspEvent::kInterrupt)
        std::abort();
    });
    if (decoder.stats().stray_bytes != 0) std::abort();
  }
  std::array<char, 2 * kReplySize + 16> buf{};
  np::wire::RspDecoder decoder;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  testing::FakeTarget target;
  auto& t = target.add_thread(100, "main");
  t.cap.regs[np::dump::Reg::kRip] = 0x401000;
  target.add_thread(101, "worker");
  target.stop = StopEvent{11, 100, false};
  target.auxv = std::string("\x21\x00\x23\x7d\x24\x2a", 6);
  target.exec_file = "/bin/prog";
  target.libraries = "<library-list-svr4 version=\"1.0\"/>";
  Checker out;
  Session session(target, out, SessionConfig{.resend_after_ns = 5, .resends = 3});
  const std::size_t chunk = data[0] % 32 + 1;
  std::int64_t now = 0;
  for (std::size_t at = 1; at < size; at += chunk) {
    const std::size_t n = std::min(chunk, size - at);
    session.feed(std::as_bytes(std::span(reinterpret_cast<const char*>(data + at), n)), now);
    now += data[at] % 8;
    session.tick(now);
    if (session.state() == SessionState::kResumed) {
      target.stop = StopEvent{5, 101, true};
      session.on_stop(now);
    }
  }
  const auto& st = session.stats();
  // Every whole packet framed was served, or was a copy not answered again.
  if (st.packets + st.copies != session.framing().packets) std::abort();
  return 0;
}
