// JSON output, byte for byte.
#include "netpoll/base/json.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <string>

#include "alloc_guard.h"

namespace np {
namespace {

std::string json_quoted(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(JsonString, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(json_quoted(""), "\"\"");
  EXPECT_EQ(json_quoted("plain text"), "\"plain text\"");
  EXPECT_EQ(json_quoted("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
  EXPECT_EQ(json_quoted("\n\t\r\b\f"), "\"\\n\\t\\r\\b\\f\"");
  EXPECT_EQ(json_quoted(std::string_view("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\\u007f\"");
}

TEST(JsonString, KeepsValidUtf8AndReplacesEachByteThatIsNot) {
  EXPECT_EQ(json_quoted("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(json_quoted("\xc0\xaf"), "\"\\ufffd\\ufffd\"");                          // overlong '/'
  EXPECT_EQ(json_quoted("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");               // a surrogate
  EXPECT_EQ(json_quoted("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");    // above U+10FFFF
  EXPECT_EQ(json_quoted("\xe2\x82"), "\"\\ufffd\\ufffd\"");                          // cut short
  EXPECT_EQ(json_quoted("\xff"), "\"\\ufffd\"");
}

// Plain text is skipped 16 and 8 bytes at a time: a byte that needs care
// is found at every offset within a word and across a word's edge.
TEST(JsonString, FindsEveryByteThatNeedsCareAtEveryOffset) {
  const std::pair<std::string, std::string> cases[] = {
      {"\x01", "\\u0001"}, {"\x7f", "\\u007f"}, {"\xff", "\\ufffd"}, {"\xc3\xa9", "\xc3\xa9"},
      {"\"", "\\\""},      {"\\", "\\\\"},      {"\n", "\\n"},
  };
  for (const auto& [byte, escaped] : cases) {
    for (std::size_t at = 0; at < 40; ++at) {
      const std::string before(at, 'a'), after(41 - at, 'b');
      EXPECT_EQ(json_quoted(before + byte + after), "\"" + before + escaped + after + "\"") << at;
    }
  }
}

// Any bytes at all give one valid JSON string: no raw control, every quote
// and backslash escaped (checked by walking the output as a JSON reader
// would).
TEST(JsonString, AnyBytesGiveOneWellFormedString) {
  std::mt19937 rng(5);
  for (int round = 0; round < 500; ++round) {
    std::string s(rng() % 100, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    const std::string q = json_quoted(s);
    ASSERT_EQ(q.front(), '"');
    std::size_t i = 1;
    for (; i < q.size(); ++i) {
      const auto c = static_cast<unsigned char>(q[i]);
      ASSERT_GE(c, 0x20) << round;
      if (c == '"') break;
      if (c == '\\') {
        ++i;
        ASSERT_NE(std::string_view("\"\\ntrbfu").find(q[i]), std::string_view::npos) << round;
      }
    }
    ASSERT_EQ(i, q.size() - 1) << round << ": the string ends only at its last byte";
  }
}

TEST(JsonString, AllocatesNothingOnceTheStringHasRoom) {
  std::string out;
  out.reserve(1024);
  np::testing::AllocGuard guard;
  for (int i = 0; i < 100; ++i) {
    out.clear();
    append_json_string(out, "text with \"quotes\", \xc3\xa9 and \x01 and \xff");
  }
  EXPECT_EQ(guard.stop(), 0u);
  EXPECT_EQ(out, "\"text with \\\"quotes\\\", \xc3\xa9 and \\u0001 and \\ufffd\"");
}

TEST(JsonString, SaysWhetherTheStringHoldsEveryByte) {
  std::string out;
  EXPECT_TRUE(append_json_string(out, std::string_view("\x00\x01 \"\\ \xc3\xa9 \xf0\x9f\x98\x80\x7f", 14)));
  EXPECT_FALSE(append_json_string(out, "ok until \xff"));
  EXPECT_FALSE(append_json_string(out, "\xc2\x80\xc2"));  // cut short at the end
  EXPECT_TRUE(append_json_string(out, ""));
}

std::string base64_quoted(std::string_view s) {
  std::string out;
  append_json_base64(out, s);
  return out;
}

// RFC 4648 §10's test vectors.
TEST(JsonBase64, EncodesTheRfcTestVectors) {
  EXPECT_EQ(base64_quoted(""), "\"\"");
  EXPECT_EQ(base64_quoted("f"), "\"Zg==\"");
  EXPECT_EQ(base64_quoted("fo"), "\"Zm8=\"");
  EXPECT_EQ(base64_quoted("foo"), "\"Zm9v\"");
  EXPECT_EQ(base64_quoted("foob"), "\"Zm9vYg==\"");
  EXPECT_EQ(base64_quoted("fooba"), "\"Zm9vYmE=\"");
  EXPECT_EQ(base64_quoted("foobar"), "\"Zm9vYmFy\"");
  EXPECT_EQ(base64_quoted("\xfb\xff\xbf"), "\"+/+/\"");  // both digits above 'z'
}

// Long inputs go out a buffer at a time: every length across the buffer's
// edges matches a naive encoder, bit by bit.
TEST(JsonBase64, MatchesANaiveEncoderAtEveryLength) {
  const std::string_view digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::mt19937 rng(3);
  std::string in;
  for (std::size_t len = 0; len < 700; ++len) {
    std::string want = "\"";
    std::size_t bits = 0;
    for (std::size_t i = 0; i < len * 8; i += 6, ++bits) {
      unsigned v = 0;
      for (std::size_t k = i; k < i + 6; ++k)
        v = v << 1 | (k < len * 8 ? (static_cast<unsigned char>(in[k / 8]) >> (7 - k % 8) & 1u) : 0u);
      want += digits[v];
    }
    while (bits++ % 4 != 0) want += '=';
    want += '"';
    ASSERT_EQ(base64_quoted(in), want) << len;
    in.push_back(static_cast<char>(rng()));
  }
}

TEST(JsonBase64, AllocatesNothingOnceTheStringHasRoom) {
  const std::string bytes(1000, '\xa5');
  std::string out;
  out.reserve(2048);
  np::testing::AllocGuard guard;
  for (int i = 0; i < 100; ++i) {
    out.clear();
    append_json_base64(out, bytes);
  }
  EXPECT_EQ(guard.stop(), 0u);
  EXPECT_EQ(out.size(), 2 + 1336u);
}

TEST(JsonWriter, WritesNestedObjectsWithFieldsInOrder) {
  JsonWriter j;
  j.begin_object().field("frames", 3).field("name", "eth0").field_bool("up", true);
  j.begin_object("drops").field("runt", 0).field("max", std::numeric_limits<std::uint64_t>::max()).end_object();
  j.begin_object("empty").end_object();
  j.field_bool("trapped", false).end_object();
  EXPECT_EQ(j.str(),
            R"({"frames":3,"name":"eth0","up":true,"drops":{"runt":0,"max":18446744073709551615},)"
            R"("empty":{},"trapped":false})");
}

TEST(JsonWriter, NestsAJsonTextAnotherWriterMade) {
  JsonWriter inner;
  inner.begin_object().field("frames", 3).end_object();
  JsonWriter j;
  j.begin_object().field("a", 1).field_json("dev", inner.str()).field("b", 2).end_object();
  EXPECT_EQ(j.str(), R"({"a":1,"dev":{"frames":3},"b":2})");
}

TEST(JsonWriter, EscapesKeysAndStringValues) {
  JsonWriter j;
  j.begin_object().field("a\"b", "line\nbreak\\").begin_object("[fd00::1]:6665").end_object().end_object();
  EXPECT_EQ(j.str(), R"({"a\"b":"line\nbreak\\","[fd00::1]:6665":{}})");
}

}  // namespace
}  // namespace np
