// Fuzzes gdb's remote protocol framing (wire/gdb_rsp.h): the stream a
// stub reads from whoever sends to its port. The first byte picks how the
// stream is cut into datagrams; any cut gives the same events. Every
// packet fits the buffer; every event is counted where the header says;
// a packet re-framed by rsp_encode decodes to the same payload.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "netpoll/wire/gdb_rsp.h"

using namespace np::wire;

namespace {

struct Run {
  std::vector<RspEvent> events;
  std::vector<std::string> packets;
};

Run decode(std::span<const std::byte> in, std::size_t chunk, RspStats* stats) {
  char buf[64];
  RspDecoder d(buf);
  Run r;
  for (std::size_t at = 0; at < in.size(); at += chunk) {
    d.feed(in.subspan(at, std::min(chunk, in.size() - at)), [&](RspEvent e) {
      r.events.push_back(e);
      if (e == RspEvent::kPacket) {
        if (d.payload().size() > sizeof buf) std::abort();
        r.packets.emplace_back(d.payload());
      }
    });
  }
  *stats = d.stats();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t chunk = data[0] % 16 + 1;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  RspStats whole_stats, cut_stats;
  const Run whole = decode(in, SIZE_MAX / 2, &whole_stats);
  const Run cut = decode(in, chunk, &cut_stats);
  if (whole.events != cut.events || whole.packets != cut.packets) std::abort();
  std::uint64_t packets = 0, bad = 0, overflows = 0;
  for (const RspEvent e : whole.events) {
    packets += e == RspEvent::kPacket;
    bad += e == RspEvent::kBadChecksum;
    overflows += e == RspEvent::kOverflow;
  }
  if (packets != whole_stats.packets || bad != whole_stats.bad_checksums || overflows != whole_stats.overflows)
    std::abort();
  for (std::string p : whole.packets) {
    p.resize(rsp_unescape(p));
    for (const RspPayload kind : {RspPayload::kText, RspPayload::kBinary}) {
      std::vector<char> framed(2 * p.size() + 4);
      const std::size_t n = rsp_encode(p, framed, kind);
      if (n == 0) std::abort();
      // Binary data carries no loose acknowledgement character.
      if (kind == RspPayload::kBinary &&
          std::find_if(framed.begin() + 1, framed.begin() + static_cast<std::ptrdiff_t>(n) - 3,
                       [](char c) { return c == '+' || c == '-'; }) != framed.begin() + static_cast<std::ptrdiff_t>(n) - 3)
        std::abort();
      RspStats again_stats;
      const Run again = decode(std::as_bytes(std::span(framed.data(), n)), n, &again_stats);
      // Escaped, it may not fit the 64-byte buffer: then an overflow.
      if (again.events.size() != 1) std::abort();
      if (again.events[0] == RspEvent::kPacket) {
        std::string back = again.packets[0];
        back.resize(rsp_unescape(back));
        if (back != p) std::abort();
      } else if (again.events[0] != RspEvent::kOverflow) {
        std::abort();
      }
    }
  }
  return 0;
}
