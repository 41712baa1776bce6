// The output formats, byte for byte.
#include "netpoll/listen/format.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "alloc_guard.h"
#include "utf8_oracle.h"

namespace np::listen {
namespace {

using namespace std::chrono_literals;
using SysClock = std::chrono::system_clock;

// 2026-11-22T05:12:01Z is 1795324321 s after the epoch (Python's
// calendar.timegm((2026, 11, 22, 5, 12, 1))).
const SysClock::time_point kWhen = SysClock::time_point{} + 1795324321s + 123456us;
const Origin kOrigin{kWhen, "10.77.0.2:6665"};
constexpr std::string_view kTime = "2026-11-22T05:12:01.123456Z";

Record m6() {
  Record r;
  r.seq = 362;
  r.facility = 3;
  r.level = 3;
  r.timestamp_us = 3392160;
  r.text = "nctest: M6 daemon.err message";
  return r;
}

Record basic(std::string_view text) {
  Record r;
  r.format = Format::kBasic;
  r.text = text;
  return r;
}

std::string human(const Record& r, const Origin& o = kOrigin) {
  std::string s;
  append_human(s, r, o);
  return s;
}
std::string json(const Record& r) {
  std::string s;
  append_json(s, r, kOrigin);
  return s;
}
std::string syslog(const Record& r, const Origin& o = kOrigin) {
  std::string s;
  append_syslog(s, r, o);
  return s;
}
std::string utc(SysClock::time_point t) {
  std::string s;
  append_utc(s, t);
  return s;
}

// Just enough of a JSON reader (RFC 8259) to read back what append_json
// writes, written apart from it: a value is a string (decoded to its bytes:
// \uXXXX as UTF-8, a surrogate pair joined), an array, an object (members in
// order) or a literal (number, true, false, null: its text). `ok` turns
// false at the first thing that is not JSON.
struct JsonValue {
  enum Kind { kString, kArray, kObject, kLiteral } kind = kLiteral;
  std::string text;               // a string's bytes, a literal's text
  std::vector<std::string> keys;  // an object's keys, in order
  std::vector<JsonValue> items;   // an array's items, an object's values
  const JsonValue* get(std::string_view key) const {
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return &items[i];
    return nullptr;
  }
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view in) : in_(in) {}
  // One value and nothing after it.
  JsonValue document() {
    JsonValue v = value();
    if (at_ != in_.size()) ok = false;
    return v;
  }
  bool ok = true;

 private:
  JsonValue value() {
    JsonValue v;
    if (at_ >= in_.size()) return fail();
    const char c = in_[at_];
    if (c == '"') {
      v.kind = JsonValue::kString;
      v.text = string();
    } else if (c == '[' || c == '{') {
      v.kind = c == '[' ? JsonValue::kArray : JsonValue::kObject;
      const char close = c == '[' ? ']' : '}';
      ++at_;
      for (bool first = true; ok && !eat(close); first = false) {
        if (!first && !eat(',')) return fail();
        if (v.kind == JsonValue::kObject) {
          if (peek() != '"') return fail();
          v.keys.push_back(string());
          if (!eat(':')) return fail();
        }
        v.items.push_back(value());
      }
    } else {
      const std::size_t end = in_.find_first_of(",]}", at_);
      v.text = std::string(in_.substr(at_, end - at_));
      at_ = end == std::string_view::npos ? in_.size() : end;
      if (v.text != "true" && v.text != "false" && v.text != "null" &&
          v.text.find_first_not_of("-0123456789.eE+") != std::string::npos)
        return fail();
    }
    return v;
  }
  std::string string() {
    std::string out;
    ++at_;  // '"'
    while (ok) {
      if (at_ >= in_.size()) return bad(), out;
      const auto c = static_cast<unsigned char>(in_[at_++]);
      if (c == '"') return out;
      if (c < 0x20) return bad(), out;  // a raw control is not JSON
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        continue;
      }
      if (at_ >= in_.size()) return bad(), out;
      const char e = in_[at_++];
      const std::string_view simple = "\"\\/bfnrt", meant = "\"\\/\b\f\n\r\t";
      if (const auto k = simple.find(e); k != std::string_view::npos) {
        out.push_back(meant[k]);
        continue;
      }
      if (e != 'u') return bad(), out;
      std::uint32_t cp = hex4();
      if (cp >= 0xd800 && cp < 0xdc00 && in_.substr(at_, 2) == "\\u") {
        at_ += 2;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4() - 0xdc00);
      }
      if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
      } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xc0 | cp >> 6));
        out.push_back(static_cast<char>(0x80 | (cp & 63)));
      } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xe0 | cp >> 12));
        out.push_back(static_cast<char>(0x80 | (cp >> 6 & 63)));
        out.push_back(static_cast<char>(0x80 | (cp & 63)));
      } else {
        out.push_back(static_cast<char>(0xf0 | cp >> 18));
        out.push_back(static_cast<char>(0x80 | (cp >> 12 & 63)));
        out.push_back(static_cast<char>(0x80 | (cp >> 6 & 63)));
        out.push_back(static_cast<char>(0x80 | (cp & 63)));
      }
    }
    return out;
  }
  std::uint32_t hex4() {
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k, ++at_) {
      const char h = at_ < in_.size() ? in_[at_] : 'g';
      const auto d = std::string_view("0123456789abcdef").find(static_cast<char>(h | 0x20));
      if (d == std::string_view::npos) return bad(), 0;
      v = v * 16 + static_cast<std::uint32_t>(d);
    }
    return v;
  }
  char peek() const { return at_ < in_.size() ? in_[at_] : '\0'; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++at_;
    return true;
  }
  void bad() {
    ok = false;
    at_ = in_.size();
  }
  JsonValue fail() {
    bad();
    return {};
  }
  std::string_view in_;
  std::size_t at_ = 0;
};

// RFC 4648 §4, padding required; anything else fails the test.
std::string from_base64(std::string_view b64) {
  constexpr std::string_view kDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  EXPECT_EQ(b64.size() % 4, 0u) << b64;
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < b64.size(); ++i) {
    if (b64[i] == '=') {
      EXPECT_GE(i + 2, b64.size()) << "padding only at the end: " << b64;
      break;
    }
    const auto d = kDigits.find(b64[i]);
    EXPECT_NE(d, std::string_view::npos) << b64;
    acc = acc << 6 | static_cast<std::uint32_t>(d);
    if ((bits += 6) >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>(acc >> bits & 0xff));
    }
  }
  return out;
}

// A JSON record line read back as a program would, to the record's bytes:
// "name" or, when present, "name_base64".
struct ReadBack {
  JsonValue v;
  std::string exact(std::string_view name) const {
    if (const JsonValue* b = v.get(std::string(name) + "_base64")) return from_base64(b->text);
    const JsonValue* s = v.get(name);
    return s ? s->text : "<no " + std::string(name) + ">";
  }
  std::vector<std::pair<std::string, std::string>> fields(std::string_view name) const {
    std::vector<std::pair<std::string, std::string>> out;
    if (const JsonValue* b = v.get(std::string(name) + "_base64")) {
      for (const JsonValue& pair : b->items) {
        EXPECT_EQ(pair.items.size(), 2u);
        if (pair.items.size() == 2) out.emplace_back(from_base64(pair.items[0].text), from_base64(pair.items[1].text));
      }
    } else if (const JsonValue* o = v.get(name)) {
      for (std::size_t i = 0; i < o->keys.size(); ++i) out.emplace_back(o->keys[i], o->items[i].text);
    }
    return out;
  }
};

ReadBack read_json_line(const std::string& line) {
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line, ending in '\\n'";
  JsonReader reader(std::string_view(line).substr(0, line.size() - 1));
  ReadBack r{reader.document()};
  EXPECT_TRUE(reader.ok) << line;
  EXPECT_EQ(r.v.kind, JsonValue::kObject);
  return r;
}

TEST(Format, PrintsReceiveTimesInUtcWithMicroseconds) {
  EXPECT_EQ(utc(kWhen), kTime);
  EXPECT_EQ(utc(SysClock::time_point{}), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(utc(SysClock::time_point{} + 951868799s), "2000-02-29T23:59:59.000000Z");  // a leap day
  EXPECT_EQ(utc(SysClock::time_point{} - 1us), "1969-12-31T23:59:59.999999Z");
}

// Names are wire's (wire/netconsole.h); a number without one is printed.
TEST(Format, NamesFacilitiesAndLevelsOrPrintsTheirNumbers) {
  Record r = m6();
  const auto string_field = [](const std::string& j, const std::string& key) {
    const auto at = j.find("\"" + key + "\":\"") + key.size() + 4;
    return j.substr(at, j.find('"', at) - at);
  };
  const auto priority_of = [&](std::uint8_t facility, std::uint8_t level) {
    r.facility = facility;
    r.level = level;
    const std::string h = human(r);
    const auto at = h.find(" 10.77.0.2:6665 ") + 16;
    const std::string from_human = h.substr(at, h.find(' ', at) - at);
    const std::string j = json(r);
    EXPECT_EQ(string_field(j, "facility") + "." + string_field(j, "level"), from_human);
    return from_human;
  };
  EXPECT_EQ(priority_of(0, 0), "kern.emerg");
  EXPECT_EQ(priority_of(10, 4), "authpriv.warning");
  EXPECT_EQ(priority_of(11, 7), "ftp.debug");
  EXPECT_EQ(priority_of(12, 6), "12.info");
  EXPECT_EQ(priority_of(16, 5), "local0.notice");
  EXPECT_EQ(priority_of(23, 3), "local7.err");
  EXPECT_EQ(priority_of(24, 8), "24.8");
}

// --- human ------------------------------------------------------------------

TEST(FormatHuman, PrintsTimeSourcePrioritySeqAndText) {
  EXPECT_EQ(human(m6()), std::string(kTime) + " 10.77.0.2:6665 daemon.err 362 nctest: M6 daemon.err message\n");
  EXPECT_EQ(human(basic("[    4.029702] nctest: M1 short message")),
            std::string(kTime) + " 10.77.0.2:6665 user.info - [    4.029702] nctest: M1 short message\n");
  Record r = m6();
  r.text = "ends with newlines\n\n";
  EXPECT_EQ(human(r), std::string(kTime) + " 10.77.0.2:6665 daemon.err 362 ends with newlines\n");
  EXPECT_NE(json(r).find("\"text\":\"ends with newlines\\n\\n\""), std::string::npos);
  r = m6();
  r.facility = 13;
  EXPECT_EQ(human(r), std::string(kTime) + " 10.77.0.2:6665 13.err 362 nctest: M6 daemon.err message\n");
}

TEST(FormatHuman, IndentsLaterLinesAndEscapesWhatCouldForgeALine) {
  Record r = m6();
  r.text = "first\nsecond\ttab \x1b[31mred\r\x7f utf8[\xc3\xa9] bad[\xff\xc3] c1[\xc2\x9b] back\\slash";
  EXPECT_EQ(human(r), std::string(kTime) +
                          " 10.77.0.2:6665 daemon.err 362 first\n"
                          "    second\\x09tab \\x1b[31mred\\x0d\\x7f utf8[\xc3\xa9] bad[\\xff\\xc3] c1[\\xc2\\x9b] "
                          "back\\\\slash\n");
}

// A '\' always starts an escape: the text `\x80` (four characters) cannot
// pass for the byte 0x80, nor `\n` for a line break.
TEST(FormatHuman, EscapesABackslashSoThatTextAndTheByteItNamesDiffer) {
  const std::string head = std::string(kTime) + " 10.77.0.2:6665 user.info - ";
  EXPECT_EQ(human(basic("x\\x80y")), head + "x\\\\x80y\n");
  EXPECT_EQ(human(basic("x\x80y")), head + "x\\x80y\n");
  EXPECT_NE(human(basic("x\\x80y")), human(basic("x\x80y")));
  Record r = m6();
  r.text = "one\\n    two";
  const std::string literal = human(r);
  r.text = "one\ntwo";
  EXPECT_NE(literal, human(r));
  EXPECT_EQ(literal, std::string(kTime) + " 10.77.0.2:6665 daemon.err 362 one\\\\n    two\n");
}

TEST(FormatHuman, PrintsGapsAndResets) {
  std::string s;
  append_human_gap(s, Gap{13, 2, false}, kOrigin);
  append_human_gap(s, Gap{4, 1, true}, kOrigin);
  append_human_reset(s, 362, 0, kOrigin);
  EXPECT_EQ(s, std::string(kTime) + " 10.77.0.2:6665 gap 13..14 (2 missing)\n" + std::string(kTime) +
                   " 10.77.0.2:6665 gap 4..4 (1 lost)\n" + std::string(kTime) + " 10.77.0.2:6665 reset 362 -> 0\n");
}

// --- JSON -------------------------------------------------------------------

TEST(FormatJson, WritesEveryFieldOfAnExtendedRecord) {
  const Field dict[] = {{"SUBSYSTEM", "acpi"}, {"DEVICE", "+acpi:PNP0A03:00"}};
  const Field user[] = {{"rack", "r\"1"}};
  const Field sys[] = {{"cpu", "0"}, {"msgid", "7"}};
  Record r;
  r.seq = 168;
  r.facility = 0;
  r.level = 6;
  r.timestamp_us = 916667;
  r.continuation = true;
  r.emergency = true;
  r.late = true;
  r.fragments = 2;
  r.release = "6.1.0-56-cloud-amd64";
  r.text = "a \"quote\" \\ back\nline\x01\x7f\xff \xc3\xa9\t\r\b\f";
  r.dictionary = dict;
  r.userdata = user;
  r.sysdata = sys;
  r.msgid = 7;
  EXPECT_EQ(json(r),
            "{\"received\":\"2026-11-22T05:12:01.123456Z\",\"source\":\"10.77.0.2:6665\",\"format\":\"extended\","
            "\"seq\":168,\"facility\":\"kern\",\"level\":\"info\",\"timestamp_us\":916667,\"continuation\":true,"
            "\"emergency\":true,\"late\":true,\"release\":\"6.1.0-56-cloud-amd64\","
            "\"text\":\"a \\\"quote\\\" \\\\ back\\nline\\u0001\\u007f\\ufffd \xc3\xa9\\t\\r\\b\\f\","
            "\"text_base64\":\"YSAicXVvdGUiIFwgYmFjawpsaW5lAX//IMOpCQ0IDA==\",\"fragments\":2,"
            "\"msgid\":7,\"dictionary\":{\"SUBSYSTEM\":\"acpi\",\"DEVICE\":\"+acpi:PNP0A03:00\"},"
            "\"userdata\":{\"rack\":\"r\\\"1\"},\"sysdata\":{\"cpu\":\"0\",\"msgid\":\"7\"}}\n");
}

TEST(FormatJson, WritesABasicRecordWithNullsWhereItHasNoValue) {
  EXPECT_EQ(json(basic("line")),
            "{\"received\":\"2026-11-22T05:12:01.123456Z\",\"source\":\"10.77.0.2:6665\",\"format\":\"basic\","
            "\"seq\":null,\"facility\":\"user\",\"level\":\"info\",\"timestamp_us\":null,\"continuation\":false,"
            "\"emergency\":false,\"late\":false,\"release\":null,\"text\":\"line\",\"fragments\":1,\"msgid\":null,"
            "\"dictionary\":{},\"userdata\":{},\"sysdata\":{}}\n");
}

// "text" stays valid UTF-8 for readers that want text; "text_base64"
// follows it with the exact bytes only when the text lost some.
TEST(FormatJson, ReplacesEachByteThatIsNotUtf8AndThenGivesTheExactBytes) {
  const auto text_of = [](std::string_view t) {
    const std::string s = json(basic(t));
    const auto at = s.find("\"text\":") + 7;
    return s.substr(at, s.find(",\"fragments\"") - at);
  };
  EXPECT_EQ(text_of("\xc0\xaf"), "\"\\ufffd\\ufffd\",\"text_base64\":\"wK8=\"");                  // overlong '/'
  EXPECT_EQ(text_of("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\",\"text_base64\":\"7aCA\"");       // a surrogate
  EXPECT_EQ(text_of("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\",\"text_base64\":\"9JCAgA==\"");  // above U+10FFFF
  EXPECT_EQ(text_of("\xe2\x82"), "\"\\ufffd\\ufffd\",\"text_base64\":\"4oI=\"");                  // cut short
  EXPECT_EQ(text_of("\xf0\x9f\x98\x80 \xe2\x82\xac"), "\"\xf0\x9f\x98\x80 \xe2\x82\xac\"");  // valid stays, alone
  EXPECT_EQ(text_of(std::string_view("\x00\x01\x7f", 3)), "\"\\u0000\\u0001\\u007f\"");  // escaped, not lost
}

// Issue 11: the kernel record bytes 80 9f a0 fe ff came out as five
// U+FFFD. They still do in "text"; "text_base64" now holds them.
TEST(FormatJson, GivesTheKernelsBytesThatAreNotUtf8Back) {
  const std::string line = json(basic("\x80\x9f\xa0\xfe\xff"));
  EXPECT_NE(line.find(",\"text\":\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\",\"text_base64\":\"gJ+g/v8=\",\"fragments\":1,"),
            std::string::npos)
      << line;
  EXPECT_EQ(read_json_line(line).exact("text"), "\x80\x9f\xa0\xfe\xff");
}

// Every byte value, in the text, the release and the fields' keys and
// values, comes back exactly from the JSON, read by a JSON reader.
TEST(FormatJson, RoundTripsEveryByteValueExactly) {
  std::string every;
  for (int b = 0; b < 256; ++b) every.push_back(static_cast<char>(b));
  every += "\x80\x9f\xa0\xfe\xff";
  const std::string key_bad("K\xff\x00k", 4);
  const Field dict[] = {{"SUBSYSTEM", "acpi"}, {key_bad, every}, {"SUBSYSTEM", "x"}};
  const Field user[] = {{"rack", "r\\1 \xc3\xa9"}};
  const Field sys[] = {{"taskname", "kworker\xc0"}};
  Record r = m6();
  r.text = every;
  r.release = "6.1\xfe";
  r.dictionary = dict;
  r.userdata = user;
  r.sysdata = sys;
  const std::string line = json(r);
  const ReadBack back = read_json_line(line);
  EXPECT_EQ(back.exact("text"), every);
  EXPECT_EQ(back.exact("release"), "6.1\xfe");
  using Fields = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(back.fields("dictionary"),
            (Fields{{"SUBSYSTEM", "acpi"}, {key_bad, every}, {"SUBSYSTEM", "x"}}));
  EXPECT_EQ(back.fields("userdata"), (Fields{{"rack", "r\\1 \xc3\xa9"}}));
  EXPECT_EQ(back.fields("sysdata"), (Fields{{"taskname", "kworker\xc0"}}));
  // The companions sit right after what they complete; valid UTF-8 has none.
  EXPECT_NE(line.find(",\"release\":\"6.1\\ufffd\",\"release_base64\":\"Ni4x/g==\",\"text\":"), std::string::npos);
  EXPECT_NE(line.find("\"},\"dictionary_base64\":[[\"U1VCU1lTVEVN\",\"YWNwaQ==\"],[\"S/8Aaw==\",\""), std::string::npos)
      << line;
  EXPECT_EQ(back.v.get("userdata_base64"), nullptr);
  EXPECT_NE(line.find(",\"sysdata\":{\"taskname\":\"kworker\\ufffd\"},\"sysdata_base64\":[[\"dGFza25hbWU=\",\"a3dvcmtlcsA=\"]]}\n"),
            std::string::npos)
      << line;
  // "text" itself is what it was: valid UTF-8, U+FFFD for each lost byte.
  const std::string text = back.v.get("text")->text;
  EXPECT_EQ(text.substr(0, 128), every.substr(0, 128));
  EXPECT_EQ(text.substr(128, 6), "\xef\xbf\xbd\xef\xbf\xbd");

  // Valid UTF-8 (every ASCII byte, controls included) is exact in "text"
  // alone.
  std::string valid(every.substr(0, 128));
  valid += "\xc2\x80 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
  r.text = valid;
  r.release = "6.1";
  r.dictionary = {};
  r.sysdata = {};
  const std::string plain = json(r);
  EXPECT_EQ(plain.find("_base64"), std::string::npos) << plain;
  EXPECT_EQ(read_json_line(plain).exact("text"), valid);
  EXPECT_EQ(read_json_line(plain).v.get("text")->text, valid);
}

// Random bytes, every way: the JSON always reads back to them.
TEST(FormatJson, AnyRecordReadsBackToItsBytes) {
  std::mt19937 rng(23);
  for (int round = 0; round < 300; ++round) {
    std::string text(rng() % 100, '\0'), value(rng() % 20, '\0');
    for (auto& c : text) c = static_cast<char>(rng() % 4 == 0 ? 0x80 + rng() % 0x80 : rng());
    for (auto& c : value) c = static_cast<char>(rng());
    const Field user[] = {{"k", value}};
    Record r = m6();
    r.text = text;
    r.userdata = user;
    const ReadBack back = read_json_line(json(r));
    ASSERT_EQ(back.exact("text"), text) << round;
    ASSERT_EQ(back.fields("userdata"), (std::vector<std::pair<std::string, std::string>>{{"k", value}})) << round;
  }
}

TEST(FormatJson, WritesGapAndResetEvents) {
  std::string s;
  append_json_gap(s, Gap{13, 2, false}, kOrigin);
  append_json_reset(s, 362, 0, kOrigin);
  EXPECT_EQ(s,
            "{\"event\":\"gap\",\"received\":\"2026-11-22T05:12:01.123456Z\",\"source\":\"10.77.0.2:6665\","
            "\"first\":13,\"count\":2,\"lost\":false}\n"
            "{\"event\":\"reset\",\"received\":\"2026-11-22T05:12:01.123456Z\",\"source\":\"10.77.0.2:6665\","
            "\"from\":362,\"to\":0}\n");
}

// --- syslog -----------------------------------------------------------------

TEST(FormatSyslog, WritesAnRfc5424Message) {
  EXPECT_EQ(syslog(m6()),
            "<27>1 2026-11-22T05:12:01.123456Z 10.77.0.2 netconsole - - "
            "[netconsole@32473 seq=\"362\" ts=\"3392160\"] nctest: M6 daemon.err message");
  EXPECT_EQ(syslog(basic("[    4.029702] x\ty")),
            "<14>1 2026-11-22T05:12:01.123456Z 10.77.0.2 netconsole - - [netconsole@32473 format=\"basic\"] "
            "[    4.029702] x\ty");
}

TEST(FormatSyslog, EscapesParamValuesAndLeavesOutInvalidNames) {
  const Field dict[] = {{"SUBSYSTEM", "acpi"}, {"DEVICE", "+acpi:PNP0A03:00"}};
  const Field user[] = {{"k", "a\"b\\c]d\x01\xff\xc3\xa9"}, {"bad key", "x"}, {"x=y", "x"},
                        {"0123456789012345678901234567890123", "too long"}, {"", "empty"}};
  const Field sys[] = {{"taskname", "kworker/0:1"}, {"msgid", "7"}};
  Record r = m6();
  r.continuation = true;
  r.emergency = true;
  r.late = true;
  r.fragments = 4;
  r.release = "6.1.0";
  r.text = "two\nlines";
  r.dictionary = dict;
  r.userdata = user;
  r.sysdata = sys;
  EXPECT_EQ(syslog(r),
            "<27>1 2026-11-22T05:12:01.123456Z 10.77.0.2 netconsole - - [netconsole@32473 seq=\"362\" "
            "ts=\"3392160\" cont=\"1\" emergency=\"1\" late=\"1\" fragments=\"4\" release=\"6.1.0\" "
            "SUBSYSTEM=\"acpi\" DEVICE=\"+acpi:PNP0A03:00\" k=\"a\\\"b\\\\c\\]d\\x01\xef\xbf\xbd\xc3\xa9\" "
            "taskname=\"kworker/0:1\" msgid=\"7\"] two\nlines");
}

TEST(FormatSyslog, TakesTheHostFromTheSourceAndOmitsAnEmptyMessage) {
  Record r = m6();
  r.text = "";
  EXPECT_EQ(syslog(r, Origin{kWhen, "[fe80::1]:6665"}),
            "<27>1 2026-11-22T05:12:01.123456Z fe80::1 netconsole - - [netconsole@32473 seq=\"362\" ts=\"3392160\"]");
  EXPECT_EQ(syslog(r, Origin{kWhen, ""}).substr(0, 38), "<27>1 2026-11-22T05:12:01.123456Z - ne");
}

TEST(FormatSyslog, FramesWithOctetCounting) {
  std::string s;
  append_octet_counted(s, "<14>1 x");
  append_octet_counted(s, "");
  EXPECT_EQ(s, "7 <14>1 x0 ");
}

// --- what no input can do -----------------------------------------------------

using np::testing::strict_utf8;

// Plain text is skipped a word (8 bytes) at a time: a byte that needs care
// is found at every offset within a word and across a word's edge.
TEST(Format, FindsEveryByteThatNeedsCareAtEveryOffset) {
  struct Case {
    std::string byte;
    std::string in_human, in_json, in_sd;
  };
  const Case cases[] = {
      {"\x01", "\\x01", "\\u0001", "\\x01"},      {"\x7f", "\\x7f", "\\u007f", "\\x7f"},
      {"\xff", "\\xff", "\\ufffd", "\xef\xbf\xbd"}, {"\xc3\xa9", "\xc3\xa9", "\xc3\xa9", "\xc3\xa9"},
      {"\"", "\"", "\\\"", "\\\""},               {"\\", "\\\\", "\\\\", "\\\\"},
      {"]", "]", "]", "\\]"},                     {"\n", "\n    ", "\\n", "\\x0a"},
  };
  for (const Case& c : cases) {
    for (std::size_t at = 0; at < 20; ++at) {
      const std::string before(at, 'a'), after(21 - at, 'b');
      Record r = m6();
      const std::string text = before + c.byte + after;
      r.text = text;
      r.userdata = {};
      EXPECT_EQ(human(r), std::string(kTime) + " 10.77.0.2:6665 daemon.err 362 " + before + c.in_human + after + "\n")
          << at;
      EXPECT_NE(json(r).find("\"text\":\"" + before + c.in_json + after + "\""), std::string::npos) << at;
      const Field f{"k", text};
      r.userdata = std::span<const Field>(&f, 1);
      EXPECT_NE(syslog(r).find(" k=\"" + before + c.in_sd + after + "\""), std::string::npos) << at << syslog(r);
    }
  }
}

TEST(Format, NoRecordCanForgeALineOrBreakUtf8) {
  std::mt19937 rng(17);
  for (int round = 0; round < 500; ++round) {
    std::string text(rng() % 200, '\0');
    for (auto& c : text) c = static_cast<char>(rng() % 4 == 0 ? 0x80 + rng() % 0x80 : rng());
    const Field user[] = {{"k", text}};
    Record r = m6();
    r.text = text;
    r.userdata = user;
    const std::string h = human(r);
    // One line per line of the text, each later one indented.
    std::size_t lines = 0;
    for (std::size_t at = 0; (at = h.find('\n', at)) != std::string::npos; ++at) {
      ++lines;
      if (at + 1 < h.size()) {
        ASSERT_EQ(h.substr(at + 1, 4), "    ");
      }
    }
    ASSERT_EQ(lines, static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
    for (const char c : h) ASSERT_TRUE(c == '\n' || static_cast<unsigned char>(c) >= 0x20) << round;
    const std::string j = json(r);
    ASSERT_TRUE(strict_utf8(j)) << round;
    ASSERT_EQ(j.find('\n'), j.size() - 1);
    for (const char c : j.substr(0, j.size() - 1)) ASSERT_GE(static_cast<unsigned char>(c), 0x20);
    const std::string sl = syslog(r);
    const std::string sd = sl.substr(0, sl.find("\"] ") + 3);
    ASSERT_TRUE(strict_utf8(sd)) << round;
    for (const char c : sd) ASSERT_GE(static_cast<unsigned char>(c), 0x20);
  }
}

TEST(Format, AllocatesNothingOnceTheStringHasRoom) {
  const Field dict[] = {{"SUBSYSTEM", "acpi"}};
  Record r = m6();
  r.dictionary = dict;
  std::string out;
  out.reserve(4096);
  np::testing::AllocGuard guard;
  for (int i = 0; i < 100; ++i) {
    out.clear();
    append_human(out, r, kOrigin);
    append_json(out, r, kOrigin);
    append_syslog(out, r, kOrigin);
    append_octet_counted(out, "x");
    append_json_gap(out, Gap{1, 2, true}, kOrigin);
  }
  EXPECT_EQ(guard.stop(), 0u);
}

}  // namespace
}  // namespace np::listen
