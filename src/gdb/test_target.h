// A target for the session's tests: threads with captures of their own
// (registers.h converts them, as for the real process), memory as a few
// readable ranges, a breakpoint list and canned qXfer objects.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "netpoll/gdb/registers.h"
#include "netpoll/gdb/target.h"

namespace np::gdb::testing {

struct FakeThread {
  pid_t tid = 0;
  std::string name;
  bool has_registers = true;
  dump::detail::ThreadCapture cap;
  alignas(64) std::array<std::byte, 512> fx{};
};

class FakeTarget final : public Target {
 public:
  FakeTarget() {
    threads.reserve(16);  // captures point into their own thread: no moves
  }
  FakeThread& add_thread(pid_t tid, std::string name) {
    threads.push_back(FakeThread{});
    FakeThread& t = threads.back();
    t.tid = tid;
    t.name = std::move(name);
    t.cap.tid = tid;
    t.cap.valid = true;
    t.cap.fp = t.fx.data();
    t.cap.fp_len = 512;
    return t;
  }

  pid_t pid() const noexcept override { return 4242; }
  std::size_t thread_count() const noexcept override { return threads.size(); }
  pid_t thread_id(std::size_t i) const noexcept override { return threads[i].tid; }
  std::string_view thread_name(std::size_t i) const noexcept override { return threads[i].name; }
  StopEvent stop_event() const noexcept override { return stop; }

  Result<std::size_t> read_register(pid_t tid, int regno, std::span<std::byte> out) noexcept override {
    FakeThread* t = find(tid);
    if (t == nullptr) return fail(Errc::kNotFound);
    if (!t->has_registers) return fail(Errc::kUnsupported);
    const std::size_t n = gdb::read_register(t->cap, regno, out);
    if (n == 0) return fail(Errc::kInvalidArgument);
    return n;
  }
  Result<void> write_register(pid_t tid, int regno, std::span<const std::byte> in) noexcept override {
    FakeThread* t = find(tid);
    if (t == nullptr) return fail(Errc::kNotFound);
    return gdb::write_register(t->cap, regno, in);
  }
  Result<std::size_t> read_memory(std::uint64_t addr, std::span<std::byte> out) noexcept override {
    if (addr < base || addr >= base + memory.size()) return fail(Errc::kIo);
    const std::size_t n = std::min<std::size_t>(out.size(), base + memory.size() - addr);
    std::memcpy(out.data(), memory.data() + (addr - base), n);
    return n;
  }
  Result<void> write_memory(std::uint64_t addr, std::span<const std::byte> in) noexcept override {
    if (addr < base || addr + in.size() > base + memory.size()) return fail(Errc::kIo);
    std::memcpy(memory.data() + (addr - base), in.data(), in.size());
    return {};
  }
  Result<void> insert_breakpoint(std::uint64_t addr) noexcept override {
    if (std::find(breakpoints.begin(), breakpoints.end(), addr) == breakpoints.end()) {
      if (breakpoints.size() >= 4) return fail(Errc::kNoBuffer);
      breakpoints.push_back(addr);
    }
    return {};
  }
  Result<void> remove_breakpoint(std::uint64_t addr) noexcept override {
    std::erase(breakpoints, addr);
    return {};
  }
  Result<std::size_t> read_object(XferObject o, std::string_view annex, std::uint64_t offset,
                                  std::span<char> out) noexcept override {
    last_annex.assign(annex);
    const std::string& text = o == XferObject::kAuxv ? auxv : o == XferObject::kExecFile ? exec_file : libraries;
    if (offset >= text.size()) return 0;
    const std::size_t n = std::min<std::size_t>(out.size(), text.size() - offset);
    std::memcpy(out.data(), text.data() + offset, n);
    return n;
  }

  FakeThread* find(pid_t tid) {
    for (auto& t : threads) {
      if (t.tid == tid) return &t;
    }
    return nullptr;
  }

  std::vector<FakeThread> threads;
  StopEvent stop;
  std::uint64_t base = 0x1000;
  std::vector<std::byte> memory = std::vector<std::byte>(64);
  std::vector<std::uint64_t> breakpoints;
  std::string auxv, exec_file, libraries, last_annex;
};

// Everything the session sent, as one string.
class RecordingTransport final : public Transport {
 public:
  void send(std::span<const char> bytes) noexcept override {
    sent.append(bytes.data(), bytes.size());
    ++sends;
  }
  std::string take() { return std::exchange(sent, {}); }
  std::string sent;
  int sends = 0;  // calls: one per datagram's worth
};

// A qXfer reply's data as the stub escapes it ('#', '$', '}', '*', '+' and
// '-' as '}' and the byte XOR 0x20), for framed().
inline std::string binary_escaped(std::string_view data) {
  std::string s;
  for (const char c : data) {
    if (c == '#' || c == '$' || c == '}' || c == '*' || c == '+' || c == '-') {
      s += '}';
      s += static_cast<char>(c ^ 0x20);
    } else {
      s += c;
    }
  }
  return s;
}

// $payload#cc with the checksum summed here (the naive reference).
inline std::string framed(std::string_view payload) {
  unsigned sum = 0;
  for (const char c : payload) sum += static_cast<unsigned char>(c);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = "$";
  s += payload;
  s += '#';
  s += kHex[(sum >> 4) & 15];
  s += kHex[sum & 15];
  return s;
}

}  // namespace np::gdb::testing
