#include "netpoll/dumpd/herald.h"

#include <charconv>

namespace np::dumpd {
namespace {

bool printable(char c) { return c >= 0x20 && c <= 0x7e; }

// Decimal digits only, at most `max`.
bool parse_number(std::string_view v, std::uint64_t max, std::uint64_t& out) {
  if (v.empty() || v.size() > 20) return false;
  for (const char c : v) {
    if (c < '0' || c > '9') return false;
  }
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n > max) return false;
  out = n;
  return true;
}

enum Key : unsigned { kKind, kProgram, kPid, kSignal, kThreads, kSize, kHost, kAcks, kKeys };
constexpr std::string_view kKeyNames[kKeys] = {"kind", "program", "pid", "signal", "threads", "size", "host", "acks"};

}  // namespace

Result<DumpInfo> parse_description(std::span<const std::byte> payload) {
  if (payload.size() > kMaxDescription) return fail(Errc::kTooBig);
  const std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
  if (!text.empty() && text.back() != '\n') return fail(Errc::kMalformed);
  for (const char c : text) {
    if (c != '\n' && !printable(c)) return fail(Errc::kMalformed);
  }
  DumpInfo info;
  bool seen[kKeys] = {};
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t end = text.find('\n', at);  // there is one: the text ends with '\n'
    const std::string_view line = text.substr(at, end - at);
    at = end + 1;
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) return fail(Errc::kMalformed);
    const std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
    unsigned k = 0;
    while (k < kKeys && kKeyNames[k] != key) ++k;
    if (k == kKeys) continue;  // a key of a newer client
    if (seen[k]) return fail(Errc::kMalformed);
    seen[k] = true;
    std::uint64_t n = 0;
    switch (k) {
      case kKind:
        if (value != "crash" && value != "live" && value != "kernel") return fail(Errc::kMalformed);
        info.kind = value;
        break;
      case kProgram:
      case kHost:
        if (value.size() > kMaxName) return fail(Errc::kMalformed);
        (k == kProgram ? info.program : info.host) = value;
        break;
      case kPid:
      case kThreads:
        if (!parse_number(value, 0x7fffffff, n)) return fail(Errc::kMalformed);
        (k == kPid ? info.pid : info.threads) = static_cast<std::uint32_t>(n);
        break;
      case kSignal:
        if (!parse_number(value, 127, n)) return fail(Errc::kMalformed);
        info.signal = static_cast<std::uint32_t>(n);
        break;
      case kSize:
        if (!parse_number(value, 0x7fffffffffffffff, n)) return fail(Errc::kMalformed);
        info.size = n;
        break;
      case kAcks:
        // Another word is a newer client's way of acknowledging: it gets
        // the plain acks every debugnet client takes.
        info.range_acks = value == "ranges";
        break;
    }
  }
  return info;
}

std::string format_description(const DumpInfo& info) {
  std::string out;
  const auto name = [&](std::string_view key, const std::string& v) {
    if (!v.empty()) out.append(key).append("=").append(v).append("\n");
  };
  const auto number = [&](std::string_view key, std::uint64_t v) {
    if (v != 0) out.append(key).append("=").append(std::to_string(v)).append("\n");
  };
  name("kind", info.kind);
  name("program", info.program);
  number("pid", info.pid);
  number("signal", info.signal);
  number("threads", info.threads);
  number("size", info.size);
  name("host", info.host);
  if (info.range_acks) out.append("acks=ranges\n");
  return out;
}

std::string sanitised_name(std::string_view name, std::string_view fallback) {
  if (name.empty()) return std::string(fallback);
  std::string out;
  for (const char c : name.substr(0, kMaxFileName)) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '+' || c == '-';
    out += keep ? c : '_';
  }
  if (out.front() == '.') out.front() = '_';
  return out;
}

}  // namespace np::dumpd
