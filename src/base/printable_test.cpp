// The escape for people, byte for byte, and proof that it can be undone.
#include "netpoll/base/printable.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "alloc_guard.h"

namespace np {
namespace {

constexpr PrintableStyle kAscii{.keep_utf8 = false};
constexpr PrintableStyle kLines{.keep_utf8 = true, .line_break = "\n    "};

std::string shown(std::string_view s, PrintableStyle style = {}) {
  std::string out;
  append_printable(out, s, style);
  return out;
}

// Reads a printed line back as a person would: "\\" is '\', "\xHH" the
// byte, the line break '\n', anything else itself. Fails the test on a '\'
// that starts no escape.
std::string read_back(std::string_view p, std::string_view line_break = {}) {
  std::string bytes;
  const auto hex = [](char h) { return h <= '9' ? h - '0' : h - 'a' + 10; };
  for (std::size_t i = 0; i < p.size();) {
    if (!line_break.empty() && p.substr(i, line_break.size()) == line_break) {
      bytes.push_back('\n');
      i += line_break.size();
    } else if (p[i] != '\\') {
      bytes.push_back(p[i++]);
    } else if (p.substr(i, 2) == "\\\\") {
      bytes.push_back('\\');
      i += 2;
    } else {
      EXPECT_EQ(p.substr(i, 2), "\\x") << "a '\\' that starts no escape at " << i << " in " << p;
      if (i + 4 > p.size()) return bytes;
      bytes.push_back(static_cast<char>(hex(p[i + 2]) * 16 + hex(p[i + 3])));
      i += 4;
    }
  }
  return bytes;
}

TEST(Printable, ABackslashIsEscapedSoThatTextCannotPassForAByte) {
  EXPECT_EQ(shown("\\x80"), "\\\\x80");  // the four characters \x80
  EXPECT_EQ(shown("\x80"), "\\x80");     // the byte 0x80
  EXPECT_NE(shown("\\x80"), shown("\x80"));
  EXPECT_EQ(shown("\\x80", kAscii), "\\\\x80");
  EXPECT_EQ(shown("\x80", kAscii), "\\x80");
  EXPECT_EQ(shown("a\\b \\\\ end\\"), "a\\\\b \\\\\\\\ end\\\\");
}

TEST(Printable, KeepsUtf8ButC1ControlsOrEscapesEveryByteAboveAscii) {
  static constexpr char kAll[] = "tab\t cr\r del\x7f nul" "\x00" " e[\xc3\xa9] bad[\xff\xc3] c1[\xc2\x9b] \xf0\x9f\x98\x80";
  const std::string_view all(kAll, sizeof kAll - 1);
  EXPECT_EQ(shown(all), "tab\\x09 cr\\x0d del\\x7f nul\\x00 e[\xc3\xa9] bad[\\xff\\xc3] c1[\\xc2\\x9b] \xf0\x9f\x98\x80");
  EXPECT_EQ(shown(all, kAscii),
            "tab\\x09 cr\\x0d del\\x7f nul\\x00 e[\\xc3\\xa9] bad[\\xff\\xc3] c1[\\xc2\\x9b] \\xf0\\x9f\\x98\\x80");
  EXPECT_EQ(shown("\xc2\xa0 nbsp"), "\xc2\xa0 nbsp");  // U+00A0, the first after C1
}

TEST(Printable, ANewlineIsTheStylesLineBreakOrAnEscape) {
  EXPECT_EQ(shown("one\ntwo\n"), "one\\x0atwo\\x0a");
  EXPECT_EQ(shown("one\ntwo\n", kLines), "one\n    two\n    ");
}

// Plain text is skipped 16 and 8 bytes at a time: a byte that needs care
// is found at every offset within a word and across a word's edge.
TEST(Printable, FindsEveryByteThatNeedsCareAtEveryOffset) {
  const std::pair<std::string, std::string> cases[] = {
      {"\x01", "\\x01"}, {"\x7f", "\\x7f"}, {"\xff", "\\xff"}, {"\xc3\xa9", "\xc3\xa9"},
      {"\\", "\\\\"},    {"\n", "\\x0a"},   {"\"", "\""},
  };
  for (const auto& [byte, escaped] : cases) {
    for (std::size_t at = 0; at < 40; ++at) {
      const std::string before(at, 'a'), after(41 - at, 'b');
      EXPECT_EQ(shown(before + byte + after), before + escaped + after) << at;
    }
  }
}

// Whatever the bytes, the line reads back to exactly them, in every style,
// and holds no control character but the line break's newline.
TEST(Printable, EveryLineReadsBackToItsBytes) {
  std::mt19937 rng(11);
  for (int round = 0; round < 1000; ++round) {
    std::string s(rng() % 120, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 3 == 0 ? "\\x\n"[rng() % 3] : rng());
    for (const PrintableStyle style : {PrintableStyle{}, kAscii, kLines}) {
      const std::string p = shown(s, style);
      ASSERT_EQ(read_back(p, style.line_break), s) << round;
      for (const char c : p) {
        const auto u = static_cast<unsigned char>(c);
        ASSERT_TRUE((u >= 0x20 && u != 0x7f) || (c == '\n' && !style.line_break.empty())) << round;
        ASSERT_TRUE(style.keep_utf8 || u < 0x80) << round;
      }
    }
  }
  std::string every;
  for (int b = 0; b < 256; ++b) every.push_back(static_cast<char>(b));
  EXPECT_EQ(read_back(shown(every)), every);
  EXPECT_EQ(read_back(shown(every, kAscii)), every);
}

TEST(Printable, AllocatesNothingOnceTheStringHasRoom) {
  std::string out;
  out.reserve(1024);
  np::testing::AllocGuard guard;
  for (int i = 0; i < 100; ++i) {
    out.clear();
    append_printable(out, "text with a \\ and \xc3\xa9 and \x01 and \xff\nnext", kLines);
  }
  EXPECT_EQ(guard.stop(), 0u);
  EXPECT_EQ(out, "text with a \\\\ and \xc3\xa9 and \\x01 and \\xff\n    next");
}

}  // namespace
}  // namespace np
