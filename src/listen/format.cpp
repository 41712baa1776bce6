// Output formats (see format.h). Text is appended in runs: the bytes that
// need no escaping go out with one append each, so a plain line costs a few
// memcpy calls.
#include "netpoll/listen/format.h"

#include <charconv>
#include <cstdint>
#include <cstring>

#include "netpoll/base/hex.h"
#include "netpoll/base/json.h"
#include "netpoll/base/printable.h"
#include "netpoll/base/utf8.h"
#include "netpoll/wire/netconsole.h"

namespace np::listen {
namespace {

namespace nc = np::wire::netconsole;


void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

void append_hex_byte(std::string& out, unsigned char c) {
  const char e[4] = {'\\', 'x', kHexDigits[c >> 4], kHexDigits[c & 0xf]};
  out.append(e, 4);
}

// A facility's or level's name (wire/netconsole.h), or its number when it
// has none.
void append_name(std::string& out, std::string_view name, unsigned value) {
  if (name.empty()) {
    append_uint(out, value);
  } else {
    out.append(name);
  }
}

// --- human ------------------------------------------------------------------

// A record's later lines each on a line of their own, indented.
constexpr PrintableStyle kHumanText{.keep_utf8 = true, .line_break = "\n    "};

void append_prefix(std::string& out, const Origin& o) {
  append_utc(out, o.received);
  out.push_back(' ');
  out.append(o.source);
  out.push_back(' ');
}

// --- JSON -------------------------------------------------------------------

// A string field that carries record bytes: "name":"..." and, when a byte
// was not UTF-8 (so the string lost it), "name_base64":"..." with every
// byte of the value.
void append_json_bytes(std::string& out, std::string_view name, std::string_view value) {
  out.append(",\"");
  out.append(name);
  out.append("\":");
  if (append_json_string(out, value)) return;
  out.append(",\"");
  out.append(name);
  out.append("_base64\":");
  append_json_base64(out, value);
}

// "name":{"key":"value",...} and, when a key or value was not UTF-8,
// "name_base64":[["key","value"],...] with every field, in base64, in order.
void append_json_fields(std::string& out, std::string_view name, std::span<const Field> fields) {
  out.append(",\"");
  out.append(name);
  out.append("\":{");
  bool exact = true;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) out.push_back(',');
    exact = append_json_string(out, fields[i].key) && exact;
    out.push_back(':');
    exact = append_json_string(out, fields[i].value) && exact;
  }
  out.push_back('}');
  if (exact) return;
  out.append(",\"");
  out.append(name);
  out.append("_base64\":[");
  for (std::size_t i = 0; i < fields.size(); ++i) {
    out.append(i ? ",[" : "[");
    append_json_base64(out, fields[i].key);
    out.push_back(',');
    append_json_base64(out, fields[i].value);
    out.push_back(']');
  }
  out.push_back(']');
}

void append_json_head(std::string& out, const Origin& o) {
  out.append("\"received\":\"");
  append_utc(out, o.received);
  out.append("\",\"source\":");
  append_json_string(out, o.source);
}

// --- syslog -----------------------------------------------------------------

// RFC 5424 §6.3.3: SD-NAME = 1*32PRINTUSASCII except '=', SP, ']', '"'.
bool valid_sd_name(std::string_view k) {
  if (k.empty() || k.size() > 32) return false;
  for (const char ch : k) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 33 || c > 126 || c == '=' || c == ']' || c == '"') return false;
  }
  return true;
}

// RFC 5424 §6.3.3: inside PARAM-VALUE, '"', '\' and ']' MUST be escaped.
void append_sd_value(std::string& out, std::string_view s) {
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((i = skip_plain<'"', '\\', ']'>(s, i)) == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != ']') continue;
    std::size_t n = 0;
    if (c >= 0x80 && (n = utf8_length(s, i)) != 0) {
      i += n - 1;
      continue;
    }
    out.append(s.data() + run, i - run);
    if (c == '"' || c == '\\' || c == ']') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c >= 0x80) {
      out.append("\xef\xbf\xbd");  // U+FFFD: PARAM-VALUE is UTF-8
    } else {
      append_hex_byte(out, c);
    }
    run = i + 1;
  }
  out.append(s.data() + run, s.size() - run);
}

void append_sd_param(std::string& out, std::string_view name, std::string_view value) {
  out.push_back(' ');
  out.append(name);
  out.append("=\"");
  append_sd_value(out, value);
  out.push_back('"');
}

void append_sd_uint(std::string& out, std::string_view name, std::uint64_t v) {
  out.push_back(' ');
  out.append(name);
  out.append("=\"");
  append_uint(out, v);
  out.push_back('"');
}

// The source without its port: "10.0.0.1:6665" -> "10.0.0.1",
// "[fe80::1]:6665" -> "fe80::1".
std::string_view host_of(std::string_view source) {
  if (!source.empty() && source.front() == '[') {
    const auto close = source.find(']');
    if (close != std::string_view::npos) return source.substr(1, close - 1);
  }
  const auto colon = source.rfind(':');
  if (colon != std::string_view::npos && source.find(':') == colon) return source.substr(0, colon);
  return source;
}

}  // namespace

void append_utc(std::string& out, std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const std::int64_t us = duration_cast<microseconds>(t.time_since_epoch()).count();
  // A receiver stamps a whole batch of records with one time: the text of
  // the last one is kept (per thread; no allocation).
  thread_local struct {
    std::int64_t us = INT64_MIN;
    char text[40];
    std::size_t len = 0;
  } last;
  if (us == last.us) {
    out.append(last.text, last.len);
    return;
  }
  const auto floor_div = [](std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); };
  const std::int64_t secs = floor_div(us, 1000000);
  const std::int64_t frac = us - secs * 1000000;
  const std::int64_t days = floor_div(secs, 86400);
  const std::int64_t sod = secs - days * 86400;
  // Days to a civil date (H. Hinnant, "chrono-Compatible Low-Level Date
  // Algorithms", civil_from_days).
  const std::int64_t z = days + 719468;
  const std::int64_t era = floor_div(z, 146097);
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = yoe + era * 400 + (m <= 2);
  char buf[40];
  std::size_t at = 0;
  const auto put = [&](std::int64_t v, int width) {
    char tmp[20];
    int n = 0;
    std::uint64_t u = v < 0 ? 0 : static_cast<std::uint64_t>(v);
    do {
      tmp[n++] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u != 0);
    while (n < width) tmp[n++] = '0';
    while (n > 0) buf[at++] = tmp[--n];
  };
  put(y, 4);
  buf[at++] = '-';
  put(m, 2);
  buf[at++] = '-';
  put(d, 2);
  buf[at++] = 'T';
  put(sod / 3600, 2);
  buf[at++] = ':';
  put(sod / 60 % 60, 2);
  buf[at++] = ':';
  put(sod % 60, 2);
  buf[at++] = '.';
  put(frac, 6);
  buf[at++] = 'Z';
  out.append(buf, at);
  std::memcpy(last.text, buf, at);
  last.len = at;
  last.us = us;
}

void append_human(std::string& out, const Record& r, const Origin& o) {
  append_prefix(out, o);
  append_name(out, nc::facility_name(r.facility), r.facility);
  out.push_back('.');
  append_name(out, nc::level_name(r.level), r.level);
  out.push_back(' ');
  if (r.format == Format::kBasic) {
    out.push_back('-');
  } else {
    append_uint(out, r.seq);
  }
  out.push_back(' ');
  // Trailing newlines would print as empty indented lines: for reading,
  // the record ends with its last line (JSON keeps them).
  std::string_view text = r.text;
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  append_printable(out, text, kHumanText);
  out.push_back('\n');
}

void append_human_gap(std::string& out, const Gap& g, const Origin& o) {
  append_prefix(out, o);
  out.append("gap ");
  append_uint(out, g.first_seq);
  out.append("..");
  append_uint(out, g.first_seq + g.count - 1);
  out.append(" (");
  append_uint(out, g.count);
  out.append(g.lost ? " lost)\n" : " missing)\n");
}

void append_human_reset(std::string& out, std::uint64_t from_seq, std::uint64_t to_seq, const Origin& o) {
  append_prefix(out, o);
  out.append("reset ");
  append_uint(out, from_seq);
  out.append(" -> ");
  append_uint(out, to_seq);
  out.push_back('\n');
}

void append_json(std::string& out, const Record& r, const Origin& o) {
  const bool ext = r.format == Format::kExtended;
  out.push_back('{');
  append_json_head(out, o);
  out.append(ext ? ",\"format\":\"extended\",\"seq\":" : ",\"format\":\"basic\",\"seq\":null");
  if (ext) append_uint(out, r.seq);
  out.append(",\"facility\":\"");
  append_name(out, nc::facility_name(r.facility), r.facility);
  out.append("\",\"level\":\"");
  append_name(out, nc::level_name(r.level), r.level);
  out.append("\",\"timestamp_us\":");
  if (ext) {
    append_uint(out, r.timestamp_us);
  } else {
    out.append("null");
  }
  out.append(r.continuation ? ",\"continuation\":true" : ",\"continuation\":false");
  out.append(r.emergency ? ",\"emergency\":true" : ",\"emergency\":false");
  out.append(r.late ? ",\"late\":true" : ",\"late\":false");
  if (r.release.empty()) {
    out.append(",\"release\":null");
  } else {
    append_json_bytes(out, "release", r.release);
  }
  append_json_bytes(out, "text", r.text);
  out.append(",\"fragments\":");
  append_uint(out, r.fragments);
  out.append(",\"msgid\":");
  if (r.msgid) {
    append_uint(out, *r.msgid);
  } else {
    out.append("null");
  }
  append_json_fields(out, "dictionary", r.dictionary);
  append_json_fields(out, "userdata", r.userdata);
  append_json_fields(out, "sysdata", r.sysdata);
  out.append("}\n");
}

void append_json_gap(std::string& out, const Gap& g, const Origin& o) {
  out.append("{\"event\":\"gap\",");
  append_json_head(out, o);
  out.append(",\"first\":");
  append_uint(out, g.first_seq);
  out.append(",\"count\":");
  append_uint(out, g.count);
  out.append(g.lost ? ",\"lost\":true}\n" : ",\"lost\":false}\n");
}

void append_json_reset(std::string& out, std::uint64_t from_seq, std::uint64_t to_seq, const Origin& o) {
  out.append("{\"event\":\"reset\",");
  append_json_head(out, o);
  out.append(",\"from\":");
  append_uint(out, from_seq);
  out.append(",\"to\":");
  append_uint(out, to_seq);
  out.append("}\n");
}

void append_syslog(std::string& out, const Record& r, const Origin& o) {
  out.push_back('<');
  append_uint(out, std::uint64_t{r.facility} * 8 + r.level);  // RFC 5424 §6.2.1
  out.append(">1 ");
  append_utc(out, o.received);
  out.push_back(' ');
  const std::string_view host = host_of(o.source);
  // HOSTNAME = NILVALUE / 1*255PRINTUSASCII (§6.2.4): an address always is.
  if (host.empty() || host.size() > 255) {
    out.push_back('-');
  } else {
    out.append(host);
  }
  out.append(" netconsole - - [netconsole@32473");
  if (r.format == Format::kExtended) {
    append_sd_uint(out, "seq", r.seq);
    append_sd_uint(out, "ts", r.timestamp_us);
  } else {
    out.append(" format=\"basic\"");
  }
  if (r.continuation) out.append(" cont=\"1\"");
  if (r.emergency) out.append(" emergency=\"1\"");
  if (r.late) out.append(" late=\"1\"");
  if (r.fragments > 1) append_sd_uint(out, "fragments", r.fragments);
  if (!r.release.empty()) append_sd_param(out, "release", r.release);
  for (const auto* fields : {&r.dictionary, &r.userdata, &r.sysdata}) {
    for (const Field& f : *fields) {
      if (valid_sd_name(f.key)) append_sd_param(out, f.key, f.value);
    }
  }
  out.push_back(']');
  if (!r.text.empty()) {
    out.push_back(' ');
    out.append(r.text);
  }
}

void append_octet_counted(std::string& out, std::string_view msg) {
  append_uint(out, msg.size());
  out.push_back(' ');
  out.append(msg);
}

}  // namespace np::listen
