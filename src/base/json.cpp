#include "netpoll/base/json.h"

#include <charconv>

#include "netpoll/base/hex.h"
#include "netpoll/base/utf8.h"

namespace np {

bool append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  bool exact = true;
  std::size_t run = 0;  // start of the bytes not yet appended
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((i = skip_plain<'"', '\\'>(s, i)) == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') continue;
    std::size_t n = 0;
    if (c >= 0x80 && (n = utf8_length(s, i)) != 0) {
      i += n - 1;  // valid UTF-8 stays in the run
      continue;
    }
    out.append(s.data() + run, i - run);
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\t': out.append("\\t"); break;
      case '\r': out.append("\\r"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      default:
        if (c >= 0x80) {
          out.append("\\ufffd");  // a byte that is not UTF-8
          exact = false;
        } else {
          const char e[6] = {'\\', 'u', '0', '0', kHexDigits[c >> 4], kHexDigits[c & 0xf]};
          out.append(e, 6);
        }
    }
    run = i + 1;
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
  return exact;
}

void append_json_base64(std::string& out, std::string_view bytes) {
  static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])); };
  out.push_back('"');
  char buf[256];  // whole groups of four, appended a buffer at a time
  std::size_t at = 0;
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = b(i) << 16 | b(i + 1) << 8 | b(i + 2);
    buf[at++] = kDigits[v >> 18];
    buf[at++] = kDigits[v >> 12 & 63];
    buf[at++] = kDigits[v >> 6 & 63];
    buf[at++] = kDigits[v & 63];
    if (at == sizeof buf) {
      out.append(buf, at);
      at = 0;
    }
  }
  if (const std::size_t left = bytes.size() - i; left != 0) {  // §4: the last group padded with '='
    const std::uint32_t v = b(i) << 16 | (left == 2 ? b(i + 1) << 8 : 0);
    buf[at++] = kDigits[v >> 18];
    buf[at++] = kDigits[v >> 12 & 63];
    buf[at++] = left == 2 ? kDigits[v >> 6 & 63] : '=';
    buf[at++] = '=';
  }
  out.append(buf, at);
  out.push_back('"');
}

void JsonWriter::separate() {
  if (!first_) out_ += ',';
  first_ = false;
}

void JsonWriter::key(std::string_view k) {
  separate();
  append_json_string(out_, k);
  out_ += ':';
}

JsonWriter& JsonWriter::begin_object() {
  separate();
  out_ += '{';
  first_ = true;
  return *this;
}

JsonWriter& JsonWriter::begin_object(std::string_view k) {
  key(k);
  out_ += '{';
  first_ = true;
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  out_ += '}';
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::field(std::string_view k, std::uint64_t v) {
  key(k);
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, static_cast<std::size_t>(r.ptr - buf));
  return *this;
}

JsonWriter& JsonWriter::field(std::string_view k, std::string_view v) {
  key(k);
  append_json_string(out_, v);
  return *this;
}

JsonWriter& JsonWriter::field_bool(std::string_view k, bool v) {
  key(k);
  out_ += v ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::field_json(std::string_view k, std::string_view json) {
  key(k);
  out_ += json;
  return *this;
}

}  // namespace np
