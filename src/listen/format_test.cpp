// The output formats, byte for byte.
#include "netpoll/listen/format.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "alloc_guard.h"

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
            "\"text\":\"a \\\"quote\\\" \\\\ back\\nline\\u0001\\u007f\\ufffd \xc3\xa9\\t\\r\\b\\f\",\"fragments\":2,"
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

TEST(FormatJson, ReplacesEachByteThatIsNotUtf8) {
  const auto text_of = [](std::string_view t) {
    const std::string s = json(basic(t));
    const auto at = s.find("\"text\":") + 7;
    return s.substr(at, s.find(",\"fragments\"") - at);
  };
  EXPECT_EQ(text_of("\xc0\xaf"), "\"\\ufffd\\ufffd\"");               // overlong '/'
  EXPECT_EQ(text_of("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");    // a surrogate
  EXPECT_EQ(text_of("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // above U+10FFFF
  EXPECT_EQ(text_of("\xe2\x82"), "\"\\ufffd\\ufffd\"");               // cut short
  EXPECT_EQ(text_of("\xf0\x9f\x98\x80 \xe2\x82\xac"), "\"\xf0\x9f\x98\x80 \xe2\x82\xac\"");  // valid stays
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

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n;
  }
  return true;
}

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
    ASSERT_TRUE(valid_utf8(j)) << round;
    ASSERT_EQ(j.find('\n'), j.size() - 1);
    for (const char c : j.substr(0, j.size() - 1)) ASSERT_GE(static_cast<unsigned char>(c), 0x20);
    const std::string sl = syslog(r);
    const std::string sd = sl.substr(0, sl.find("\"] ") + 3);
    ASSERT_TRUE(valid_utf8(sd)) << round;
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
