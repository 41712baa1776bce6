#include "netpoll/core/options.h"

#include <charconv>

namespace np::core {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Removes whitespace anywhere in a field, warning once per field: Linux
// silently parses " 6666" as port 0; we say so and use 6666.
std::string_view trim_field(std::string_view field, std::string_view what, std::string& scratch,
                            std::vector<std::string>& warnings) {
  if (field.find_first_of(" \t\n\r") == std::string_view::npos) return field;
  warnings.push_back("warning: whitespace is not allowed in the " + std::string(what) + " ('" + std::string(field) +
                     "'), ignoring it");
  scratch.clear();
  for (char c : field) {
    if (!is_space(c)) scratch += c;
  }
  return scratch;
}

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

SetupResult<TargetOptions> parse_one(std::string_view text, std::vector<std::string>& warnings) {
  TargetOptions t;
  t.text = std::string(text);
  std::string_view cur = text;
  std::string scratch;

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
    auto field = trim_field(cur.substr(0, at), "source port", scratch, warnings);
    auto port = parse_port(field);
    if (!port) return failed_at(cur, "source port must be 1..65535");
    t.local_port = *port;
  }
  cur.remove_prefix(at + 1);

  // [src-ip]/
  auto slash = cur.find('/');
  if (slash == std::string_view::npos) return failed_at(cur, "expected [src-ip]/");
  if (slash != 0) {
    auto field = trim_field(cur.substr(0, slash), "source IP", scratch, warnings);
    if (field.find(':') != std::string_view::npos) return failed_at(cur, "IPv6 is not supported");
    auto ip = Ipv4Addr::parse(field);
    if (!ip) return failed_at(cur, "source IP must be a dotted quad");
    t.local_ip = *ip;
  }
  cur.remove_prefix(slash + 1);

  // [dev],
  auto comma = cur.find(',');
  if (comma == std::string_view::npos) return failed_at(cur, "expected [dev],");
  if (comma != 0) {
    auto field = trim_field(cur.substr(0, comma), "device", scratch, warnings);
    t.device = std::string(field);
  }
  cur.remove_prefix(comma + 1);

  // [tgt-port]@
  at = cur.find('@');
  if (at == std::string_view::npos) return failed_at(cur, "expected [tgt-port]@<tgt-ip>");
  if (at != 0) {
    auto field = trim_field(cur.substr(0, at), "target port", scratch, warnings);
    auto port = parse_port(field);
    if (!port) return failed_at(cur, "target port must be 1..65535");
    t.remote_port = *port;
  }
  cur.remove_prefix(at + 1);

  // <tgt-ip>[/[tgt-mac]]
  slash = cur.find('/');
  {
    auto field = trim_field(cur.substr(0, slash), "target IP", scratch, warnings);
    if (field.empty()) return failed_at(cur, "the target IP is required");
    if (field.find(':') != std::string_view::npos) return failed_at(cur, "IPv6 is not supported");
    auto ip = Ipv4Addr::parse(field);
    if (!ip) return failed_at(cur, "target IP must be a dotted quad");
    t.remote_ip = *ip;
  }
  if (slash != std::string_view::npos) {
    cur.remove_prefix(slash + 1);
    if (!cur.empty()) {
      auto field = trim_field(cur, "target MAC", scratch, warnings);
      auto mac = MacAddr::parse(field);
      if (!mac) return failed_at(cur, "target MAC must look like 02:00:00:00:00:01");
      t.remote_mac = *mac;
    }
  }
  return t;
}

}  // namespace

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
  s += p + "local IP " + t.local_ip.to_string() + "\n";
  s += p + "interface '" + t.device + "'\n";
  s += p + "remote port " + std::to_string(t.remote_port) + "\n";
  s += p + "remote IP " + t.remote_ip.to_string() + "\n";
  s += p + "remote ethernet address " + t.remote_mac.value_or(MacAddr::broadcast()).to_string() + "\n";
  return s;
}

}  // namespace np::core
