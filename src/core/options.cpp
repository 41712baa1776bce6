#include "netpoll/core/options.h"

#include <charconv>

namespace np::core {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::optional<std::uint16_t> parse_port(std::string_view s) {
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v == 0 || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

std::unexpected<Error> failed_at(std::string_view rest, std::string_view why = {}) {
  std::string msg = "couldn't parse config at '" + std::string(rest) + "'";
  if (!why.empty()) msg += ": " + std::string(why);
  return setup_error(Errc::kInvalidArgument, msg);
}

// Reads the fields of one target. `what` names a field ("source port") in
// its warning and its error; an error quotes `rest`, the option string from
// the field that failed on.
class FieldReader {
 public:
  explicit FieldReader(std::vector<std::string>& warnings) : warnings_(warnings) {}

  // Removes whitespace anywhere in a field, warning once per field: Linux
  // silently parses " 6666" as port 0; we say so and use 6666. The result
  // is valid until the next call.
  std::string_view trim(std::string_view field, std::string_view what) {
    if (field.find_first_of(" \t\n\r") == std::string_view::npos) return field;
    warnings_.push_back("warning: whitespace is not allowed in the " + std::string(what) + " ('" +
                        std::string(field) + "'), ignoring it");
    scratch_.clear();
    for (char c : field) {
      if (!is_space(c)) scratch_ += c;
    }
    return scratch_;
  }

  SetupResult<std::uint16_t> port(std::string_view field, std::string_view what, std::string_view rest) {
    const auto port = parse_port(trim(field, what));
    if (!port) return failed_at(rest, std::string(what) + " must be 1..65535");
    return *port;
  }

  // An IPv4 or, with a ':', an IPv6 address (Linux's netpoll_parse_ip_addr
  // tells them apart the same way). `required`: an empty field is refused as
  // missing, not as malformed.
  SetupResult<IpAddr> ip(std::string_view field, std::string_view what, std::string_view rest,
                         bool required = false) {
    const std::string_view text = trim(field, what);
    if (required && text.empty()) return failed_at(rest, "the " + std::string(what) + " is required");
    const auto ip = IpAddr::parse(text);
    if (!ip) {
      if (text.find(':') != std::string_view::npos || text.starts_with('['))
        return failed_at(rest, std::string(what) + " is not an IPv6 address (written without brackets)");
      return failed_at(rest, std::string(what) + " must be a dotted quad or an IPv6 address");
    }
    return *ip;
  }

 private:
  std::vector<std::string>& warnings_;
  std::string scratch_;
};

SetupResult<TargetOptions> parse_one(std::string_view text, std::vector<std::string>& warnings) {
  TargetOptions t;
  t.text = std::string(text);
  std::string_view cur = text;
  FieldReader fields(warnings);

  if (!cur.empty() && cur.front() == '+') {
    t.extended = true;
    cur.remove_prefix(1);
  }
  if (!cur.empty() && cur.front() == 'r') {
    if (!t.extended) return failed_at(cur, "release prepend ('r') needs the extended format ('+r')");
    t.release = true;
    cur.remove_prefix(1);
  }

  // [src-port]@
  auto at = cur.find('@');
  if (at == std::string_view::npos) return failed_at(cur, "expected [src-port]@");
  if (at != 0) {
    const auto port = fields.port(cur.substr(0, at), "source port", cur);
    if (!port) return std::unexpected(port.error());
    t.local_port = *port;
  }
  cur.remove_prefix(at + 1);

  // [src-ip]/
  auto slash = cur.find('/');
  if (slash == std::string_view::npos) return failed_at(cur, "expected [src-ip]/");
  if (slash != 0) {
    const auto ip = fields.ip(cur.substr(0, slash), "source IP", cur);
    if (!ip) return std::unexpected(ip.error());
    t.local_ip = *ip;
  }
  cur.remove_prefix(slash + 1);

  // [dev],
  const auto comma = cur.find(',');
  if (comma == std::string_view::npos) return failed_at(cur, "expected [dev],");
  if (comma != 0) t.device = std::string(fields.trim(cur.substr(0, comma), "device"));
  cur.remove_prefix(comma + 1);

  // [tgt-port]@
  at = cur.find('@');
  if (at == std::string_view::npos) return failed_at(cur, "expected [tgt-port]@<tgt-ip>");
  if (at != 0) {
    const auto port = fields.port(cur.substr(0, at), "target port", cur);
    if (!port) return std::unexpected(port.error());
    t.remote_port = *port;
  }
  cur.remove_prefix(at + 1);

  // <tgt-ip>[/[tgt-mac]]
  slash = cur.find('/');
  const auto ip = fields.ip(cur.substr(0, slash), "target IP", cur, /*required=*/true);
  if (!ip) return std::unexpected(ip.error());
  t.remote_ip = *ip;
  if (!settle_family(t)) return failed_at(text, "the source and target IP must both be IPv4 or both IPv6");
  if (slash != std::string_view::npos) {
    cur.remove_prefix(slash + 1);
    if (!cur.empty()) {
      const auto mac = MacAddr::parse(fields.trim(cur, "target MAC"));
      if (!mac) return failed_at(cur, "target MAC must look like 02:00:00:00:00:01");
      t.remote_mac = *mac;
    }
  }
  return t;
}

}  // namespace

bool settle_family(TargetOptions& t) noexcept {
  if (t.local_ip.family() == t.remote_ip.family()) return true;
  const auto unspecified = [](IpFamily f) { return f == IpFamily::kV4 ? IpAddr(Ipv4Addr::any()) : IpAddr(Ipv6Addr::any()); };
  if (t.local_ip.is_unspecified()) {
    t.local_ip = unspecified(t.remote_ip.family());
    return true;
  }
  if (t.remote_ip.is_unspecified()) {
    t.remote_ip = unspecified(t.local_ip.family());
    return true;
  }
  return false;
}

SetupResult<ParsedTargets> parse_targets(std::string_view text) {
  ParsedTargets out;
  if (text.empty()) return setup_error(Errc::kInvalidArgument, "empty target: expected [+][r][src-port]@[src-ip]/[dev],[tgt-port]@<tgt-ip>/[tgt-mac]");
  while (true) {
    const auto semi = text.find(';');
    const std::string_view one = text.substr(0, semi);
    if (one.empty()) return failed_at(text, "empty target between ';'");
    auto t = parse_one(one, out.warnings);
    if (!t) return std::unexpected(t.error());
    out.targets.push_back(std::move(*t));
    if (semi == std::string_view::npos) break;
    text.remove_prefix(semi + 1);
  }
  return out;
}

std::string format_target(const TargetOptions& t, std::string_view name) {
  const std::string p = std::string(name) + ": ";
  std::string s;
  s += p + "local port " + std::to_string(t.local_port) + "\n";
  // Linux names the family of an IPv6 target's addresses.
  const std::string ip = t.local_ip.is_v6() ? "IPv6 address " : "IP ";
  s += p + "local " + ip + t.local_ip.to_string() + "\n";
  s += p + "interface '" + t.device + "'\n";
  s += p + "remote port " + std::to_string(t.remote_port) + "\n";
  s += p + "remote " + ip + t.remote_ip.to_string() + "\n";
  s += p + "remote ethernet address " + t.remote_mac.value_or(MacAddr::broadcast()).to_string() + "\n";
  return s;
}

}  // namespace np::core
