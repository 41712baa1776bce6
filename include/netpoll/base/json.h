// JSON output (RFC 8259): one string escaper, and a small writer of nested
// objects for statistics.
//
// The escaper takes any bytes and always writes valid UTF-8 JSON: '"', '\'
// and the controls are escaped (\n \t \r \b \f, else \u00XX, 0x7f too);
// valid UTF-8 (base/utf8.h) is copied as it is; each byte that is not part
// of valid UTF-8 becomes \ufffd. Plain text is copied in runs (one append
// per run), so a long plain string costs a few memcpy calls.
//
// A \ufffd loses the byte it replaced: the escaper says when it wrote one,
// and a caller that must be exact (netpoll listen's records) adds the
// bytes themselves in base64 (RFC 4648 §4), which every JSON reader passes
// through untouched and every language decodes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace np {

// Appends `s` as a JSON string, quotes included. Returns true when the
// string decodes to exactly `s`, false when a byte that is not UTF-8 became
// \ufffd. Allocates only while `out` grows: Context: any once `out` has the
// capacity, setup otherwise.
bool append_json_string(std::string& out, std::string_view s);

// Appends `bytes` in base64 (RFC 4648 §4: "+/", '=' padding, no line
// breaks) as a JSON string, quotes included. Context: as above.
void append_json_base64(std::string& out, std::string_view bytes);

// Builds one JSON text of nested objects, fields in the order they are
// added:
//   JsonWriter j;
//   j.begin_object().field("frames", 3).begin_object("drops").field("runt", 0).end_object().end_object();
//   j.str() == R"({"frames":3,"drops":{"runt":0}})"
// Keys and string values go through append_json_string(). Nesting is the
// caller's to balance. Context: setup (it allocates).
class JsonWriter {
 public:
  JsonWriter& begin_object();                      // a value: the outermost object, or after a key
  JsonWriter& begin_object(std::string_view key);  // "key":{
  JsonWriter& end_object();
  JsonWriter& field(std::string_view key, std::uint64_t v);
  JsonWriter& field(std::string_view key, std::string_view v);
  JsonWriter& field_bool(std::string_view key, bool v);
  // "key":json, the value written as it is: a JSON text another writer
  // made (a device's statistics inside a receiver's).
  JsonWriter& field_json(std::string_view key, std::string_view json);
  const std::string& str() const { return out_; }

 private:
  void separate();
  void key(std::string_view k);
  std::string out_;
  bool first_ = true;  // nothing written yet in the current object
};

}  // namespace np
