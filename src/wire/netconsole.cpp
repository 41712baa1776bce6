#include "netpoll/wire/netconsole.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "netpoll/base/hex.h"
#include "netpoll/base/text.h"

namespace np::wire::netconsole {
namespace {



template <class T>
bool parse_uint(std::string_view s, T& out) noexcept {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// Indexed by number; "" where a number has no name.
constexpr std::string_view kFacilityNames[] = {
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr",    "news",   "uucp",   "cron",   "authpriv", "ftp",
    "",     "",     "",     "",       "local0", "local1", "local2", "local3", "local4", "local5", "local6",  "local7"};
constexpr std::string_view kLevelNames[] = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};

template <std::size_t N>
std::optional<std::uint8_t> number_of(const std::string_view (&names)[N], std::string_view name) noexcept {
  if (name.empty()) return std::nullopt;
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<std::uint8_t>(i);
  }
  return std::nullopt;
}

}  // namespace

std::string_view facility_name(std::uint8_t facility) noexcept {
  return facility < std::size(kFacilityNames) ? kFacilityNames[facility] : std::string_view();
}

std::string_view level_name(std::uint8_t level) noexcept {
  return level < std::size(kLevelNames) ? kLevelNames[level] : std::string_view();
}

std::optional<std::uint8_t> facility_from_name(std::string_view name) noexcept {
  return number_of(kFacilityNames, name);
}

std::optional<std::uint8_t> level_from_name(std::string_view name) noexcept { return number_of(kLevelNames, name); }

std::size_t escaped_length(std::string_view in) noexcept {
  std::size_t n = 0;
  for (const char c : in) n += needs_escape(static_cast<unsigned char>(c)) ? 4 : 1;
  return n;
}

std::size_t escape(std::string_view in, std::span<char> out) noexcept {
  std::size_t at = 0;
  for (const char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if (needs_escape(c)) {
      if (at + 4 > out.size()) break;
      out[at++] = '\\';
      out[at++] = 'x';
      out[at++] = kHexDigits[c >> 4];
      out[at++] = kHexDigits[c & 0xf];
    } else {
      if (at + 1 > out.size()) break;
      out[at++] = ch;
    }
  }
  return at;
}

std::size_t unescape(std::string_view in, std::span<char> out) noexcept {
  std::size_t at = 0;
  for (std::size_t i = 0; i < in.size() && at < out.size(); ++i) {
    if (in[i] == '\\' && i + 3 < in.size() && in[i + 1] == 'x') {
      const int hi = hex_digit(in[i + 2]);
      const int lo = hex_digit(in[i + 3]);
      if (hi >= 0 && lo >= 0) {
        out[at++] = static_cast<char>(hi * 16 + lo);
        i += 3;
        continue;
      }
    }
    out[at++] = in[i];
  }
  return at;
}

std::size_t format_header(const Header& h, std::span<char> out) noexcept {
  std::size_t at = 0;
  const bool ok = (h.release.empty() || (put(out, at, h.release) && put(out, at, ","))) &&
                  put_uint(out, at, std::uint64_t{h.facility} * 8 + h.level) && put(out, at, ",") &&
                  put_uint(out, at, h.seq) && put(out, at, ",") && put_uint(out, at, h.timestamp_us) &&
                  put(out, at, !h.continuation ? ",-" : h.follows ? ",+" : ",c") &&
                  (!h.emergency || put(out, at, ",ncemg=1"));
  return ok ? at : 0;
}

std::size_t emit_extended(std::string_view header, std::string_view body, DatagramSink sink) noexcept {
  char buf[kMaxDatagram];
  const std::span<char> out(buf, sizeof buf);
  std::size_t at = 0;
  if (header.size() + 1 + body.size() <= kMaxDatagram) {
    put(out, at, header);
    put(out, at, ";");
    put(out, at, body);
    sink(std::string_view(buf, at));
    return 1;
  }
  std::size_t sent = 0;
  for (std::size_t offset = 0; offset < body.size();) {
    at = 0;
    const bool ok = put(out, at, header) && put(out, at, ",ncfrag=") && put_uint(out, at, offset) &&
                    put(out, at, "/") && put_uint(out, at, body.size()) && put(out, at, ";");
    if (!ok || at >= kMaxDatagram) break;  // a header of 1000 bytes: nothing sensible to send
    const std::size_t chunk = std::min(body.size() - offset, kMaxDatagram - at);
    put(out, at, body.substr(offset, chunk));
    sink(std::string_view(buf, at));
    offset += chunk;
    ++sent;
  }
  return sent;
}

std::size_t emit_basic(std::string_view text, DatagramSink sink) noexcept {
  std::size_t sent = 0;
  for (std::size_t offset = 0; offset < text.size(); offset += kMaxDatagram) {
    sink(text.substr(offset, kMaxDatagram));
    ++sent;
  }
  return sent;
}

Result<Parsed> parse_extended(std::string_view datagram) noexcept {
  const auto semi = datagram.find(';');
  if (semi == std::string_view::npos) return fail(Errc::kMalformed);
  Parsed p;
  p.body = datagram.substr(semi + 1);

  // Header fields: [release,]prio,seq,ts,flag[,more...]. The first five
  // fields decide whether a release leads: without one, the fourth field is
  // the flag ('-', 'c' or '+'); with one, the fifth is.
  std::string_view rest = datagram.substr(0, semi);
  const auto next_field = [&rest]() {
    const auto comma = rest.find(',');
    const std::string_view f = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    return f;
  };
  std::string_view f[5];
  std::size_t n = 0;
  while (n < 5 && (n == 0 || !rest.empty())) f[n++] = next_field();
  const auto is_flag = [](std::string_view v) { return v == "-" || v == "c" || v == "+"; };
  std::size_t first = 0;
  if (n >= 4 && is_flag(f[3])) {
    first = 0;
  } else if (n == 5 && is_flag(f[4])) {
    p.release = f[0];
    first = 1;
  } else {
    return fail(Errc::kMalformed);
  }
  unsigned prio = 0;
  if (!parse_uint(f[first], prio) || prio > 191) return fail(Errc::kMalformed);
  p.facility = static_cast<std::uint8_t>(prio >> 3);
  p.level = static_cast<std::uint8_t>(prio & 7);
  if (!parse_uint(f[first + 1], p.seq) || !parse_uint(f[first + 2], p.timestamp_us)) return fail(Errc::kMalformed);
  p.continuation = f[first + 3] != "-";
  p.follows = f[first + 3] == "+";

  // After the flag: ncfrag=, ncemg=, and fields we do not know (ignored, as
  // a receiver must for forward compatibility).
  const auto handle = [&p](std::string_view field) {
    if (field.rfind("ncfrag=", 0) == 0) {
      const auto v = field.substr(7);
      const auto slash = v.find('/');
      if (slash == std::string_view::npos || !parse_uint(v.substr(0, slash), p.frag_offset) ||
          !parse_uint(v.substr(slash + 1), p.frag_total))
        return false;
      p.fragmented = true;
    } else if (field == "ncemg=1") {
      p.emergency = true;
    }
    return true;
  };
  if (first == 0 && n == 5 && !handle(f[4])) return fail(Errc::kMalformed);
  while (!rest.empty()) {
    if (!handle(next_field())) return fail(Errc::kMalformed);
  }
  if (p.fragmented && (p.frag_offset > p.frag_total || p.body.size() > p.frag_total - p.frag_offset))
    return fail(Errc::kMalformed);
  return p;
}

std::string_view split_body(std::string_view body,
                            FunctionRef<void(std::string_view key, std::string_view value)> field) noexcept {
  const auto nl = body.find('\n');
  const std::string_view text = body.substr(0, nl);
  if (nl == std::string_view::npos) return text;
  std::string_view rest = body.substr(nl + 1);
  while (!rest.empty()) {
    const auto end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    if (!line.empty() && line.front() == ' ') {
      line.remove_prefix(1);
      const auto eq = line.find('=');
      if (eq != std::string_view::npos) field(line.substr(0, eq), line.substr(eq + 1));
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return text;
}

std::size_t format_ncrx(std::uint64_t ack_seq, std::span<const std::uint64_t> missing, std::span<char> out) noexcept {
  const std::span<char> room = out.first(std::min(out.size(), kMaxDatagram));
  std::size_t at = 0;
  if (!put(room, at, "ncrx") || !put_uint(room, at, ack_seq)) return 0;
  for (const std::uint64_t seq : missing) {
    const std::size_t before = at;
    if (!put(room, at, " ") || !put_uint(room, at, seq)) {
      at = before;  // only whole numbers
      break;
    }
  }
  return at;
}

bool parse_ncrx(std::string_view datagram, std::uint64_t& ack_seq, FunctionRef<void(std::uint64_t seq)> missing) noexcept {
  if (datagram.rfind("ncrx", 0) != 0) return false;
  std::string_view rest = datagram.substr(4);
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == '\0')) rest.remove_suffix(1);
  const auto space = rest.find(' ');
  if (!parse_uint(rest.substr(0, space), ack_seq)) return false;
  while (space != std::string_view::npos && !rest.empty()) {
    rest.remove_prefix(std::min(rest.size(), rest.find(' ') + 1));
    const auto next = rest.find(' ');
    std::uint64_t seq = 0;
    if (!parse_uint(rest.substr(0, next), seq)) return false;
    missing(seq);
    if (next == std::string_view::npos) break;
  }
  return true;
}

}  // namespace np::wire::netconsole
