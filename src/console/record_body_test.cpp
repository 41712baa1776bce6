// Record bodies and headers on their own, into buffers filled with 0xa5.
// The expected bytes are Linux 6.1 netconsole's layout (the six records of
// tests/data/CAPTURES.md, which logger_test.cpp compares whole): text
// escaped as \xHH, '\n', userdata, then cpu, taskname, release, msgid.
#include "netpoll/console/record_body.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "alloc_guard.h"
#include "netpoll/base/utf8.h"

namespace np::console {
namespace {

namespace nc = np::wire::netconsole;

constexpr char kDirt = static_cast<char>(0xa5);

RecordMeta meta(std::int32_t cpu, std::string_view taskname) {
  RecordMeta m;
  m.facility = 1;  // user
  m.level = 6;     // info
  m.timestamp_us = 1234;
  m.cpu = cpu;
  // As prctl(PR_GET_NAME) fills it; a 16-byte name (tests only) has no NUL.
  std::memcpy(m.taskname, taskname.data(), std::min(taskname.size(), sizeof m.taskname));
  return m;
}

// The body built into a dirty buffer of `size` bytes (followed by more
// dirt, which must stay as it is).
std::string body(const RecordFormat& f, const RecordMeta& m, std::string_view text, std::uint32_t msgid,
                 std::size_t size = 4096) {
  std::vector<char> buf(size + 64, kDirt);
  const std::size_t len = record_body(f, m, text, msgid, std::span<char>(buf.data(), size));
  EXPECT_LE(len, size);
  for (std::size_t i = len; i < buf.size(); ++i) {
    if (buf[i] != kDirt) {
      ADD_FAILURE() << "byte " << i << " written beyond the body's " << len;
      break;
    }
  }
  return std::string(buf.data(), len);
}

std::string header(const RecordFormat& f, const RecordMeta& m, std::uint64_t seq, bool emergency) {
  char out[nc::kMaxHeader];
  const std::size_t len = nc::format_header(record_header(f, m, seq, emergency), out);
  return std::string(out, len);
}

RecordFormat extended_with_everything() {
  RecordFormat f;
  f.extended = true;
  f.release_prefix = true;
  f.release = "6.1.0-test";
  f.userdata = " host=web-7\n dc=east\n";
  f.sysdata = Sysdata{true, true, true, true};
  return f;
}

TEST(RecordBody, ExtendedIsEscapedTextThenUserdataThenSysdataInLinuxOrder) {
  const RecordFormat f = extended_with_everything();
  const std::string b = body(f, meta(3, "worker-3"), "tab\there \\ \xc3\xa9", 7);
  EXPECT_EQ(b,
            "tab\\x09here \\x5c \\xc3\\xa9\n"
            " host=web-7\n dc=east\n"
            " cpu=3\n taskname=worker-3\n release=6.1.0-test\n msgid=7\n");
  // A function of its arguments only: built again, the same bytes.
  EXPECT_EQ(body(f, meta(3, "worker-3"), "tab\there \\ \xc3\xa9", 7), b);
}

TEST(RecordBody, SysdataLinesOnlyAsEnabledAndCpuOnlyWhenKnown) {
  RecordFormat f;
  f.extended = true;
  f.release = "6.1.0-test";
  EXPECT_EQ(body(f, meta(3, "w"), "x", 7), "x\n");  // none enabled
  f.sysdata.cpu = true;
  EXPECT_EQ(body(f, meta(-1, "w"), "x", 7), "x\n");  // sched_getcpu() failed
  EXPECT_EQ(body(f, meta(11, "w"), "x", 7), "x\n cpu=11\n");
  f.sysdata = Sysdata{};
  f.sysdata.msgid = true;
  EXPECT_EQ(body(f, meta(0, "w"), "x", UINT32_MAX), "x\n msgid=4294967295\n");
  f.sysdata = Sysdata{};
  f.sysdata.release = true;
  EXPECT_EQ(body(f, meta(0, "w"), "", 0), "\n release=6.1.0-test\n");
}

// A task name is not escaped as text is: a byte that would need it becomes
// '?', and all 16 bytes are used when there is no NUL.
TEST(RecordBody, TasknameBytesThatNeedEscapingBecomeQuestionMarks) {
  RecordFormat f;
  f.extended = true;
  f.sysdata.taskname = true;
  EXPECT_EQ(body(f, meta(0, "a\x01z\\c"), "x", 0), "x\n taskname=a?z?c\n");
  EXPECT_EQ(body(f, meta(0, "0123456789abcdefXYZ"), "x", 0), "x\n taskname=0123456789abcdef\n");
}

TEST(RecordBody, BasicIsTheTextAsItIsAndANewline) {
  RecordFormat f = extended_with_everything();
  f.extended = false;  // userdata, sysdata and escaping are the extended format's
  EXPECT_EQ(body(f, meta(3, "w"), "tab\there \\", 7), "tab\there \\\n");
  EXPECT_EQ(body(f, meta(3, "w"), "", 7), "\n");
}

TEST(RecordBody, HeaderHasTheReleaseOnlyWithThePrefixAndNcemgOnlyForEmergencies) {
  RecordFormat f = extended_with_everything();
  RecordMeta m = meta(0, "w");
  EXPECT_EQ(header(f, m, 5, false), "6.1.0-test,14,5,1234,-");
  EXPECT_EQ(header(f, m, 5, true), "6.1.0-test,14,5,1234,-,ncemg=1");  // after the flag, as netconsd reads it
  f.release_prefix = false;
  EXPECT_EQ(header(f, m, 5, false), "14,5,1234,-");
  m.facility = 3;  // daemon
  m.level = 3;     // err: Linux's <27>
  m.continuation = true;
  EXPECT_EQ(header(f, m, 18446744073709551615u, false), "27,18446744073709551615,1234,c");
}

// The Logger sizes its buffers with max_record_body(): the longest record
// fits whole (every text byte escaped, every line at its longest).
TEST(RecordBody, MaxRecordBodyHoldsTheLongestRecord) {
  RecordFormat f = extended_with_everything();
  const std::string release(64, 'r');
  const std::string userdata = " k=" + std::string(296, 'u') + "\n";
  f.release = release;
  f.userdata = userdata;
  const std::string text(1024, '\x01');
  const std::size_t size = max_record_body(text.size(), userdata.size(), release.size());
  const std::string b = body(f, meta(INT32_MAX, "0123456789abcdef"), text, UINT32_MAX, size);
  EXPECT_EQ(b.size(), 4096 + 1 + userdata.size() + (5 + 10 + 1) + (10 + 16 + 1) + (9 + 64 + 1) + (7 + 10 + 1));
  EXPECT_LE(b.size(), size);
  EXPECT_EQ(b.substr(b.size() - 18), " msgid=4294967295\n");
}

// Never beyond the buffer, whatever it is given (the crash path's buffers
// are sized at setup; a record is cut, never overflows).
TEST(RecordBody, ABufferTooSmallIsNeverWrittenBeyond) {
  const RecordFormat f = extended_with_everything();
  for (std::size_t size = 0; size < 40; ++size) {
    SCOPED_TRACE(size);
    const std::string b = body(f, meta(3, "worker-3"), "hello \x01", 7, size);
    EXPECT_EQ(b.substr(0, 6), std::string("hello \\x01").substr(0, std::min<std::size_t>(b.size(), 6)));
  }
}

TEST(RecordBody, AllocatesNothing) {
  const RecordFormat f = extended_with_everything();
  const RecordMeta m = meta(3, "worker-3");
  char out[512];
  np::testing::AllocGuard guard;
  std::size_t total = 0;
  for (int i = 0; i < 10; ++i) {
    total += record_body(f, m, "some text\n", static_cast<std::uint32_t>(i), out);
    char h[nc::kMaxHeader];
    total += nc::format_header(record_header(f, m, static_cast<std::uint64_t>(i), true), h);
  }
  EXPECT_EQ(guard.stop(), 0u);
  EXPECT_GT(total, 0u);
}

// --- cutting a long line into records ------------------------------------------

// The first record's text: the bytes piece_length() keeps.
std::string first_piece(std::string_view text, std::size_t budget) {
  return std::string(text.substr(0, piece_length(text, budget)));
}

TEST(PieceLength, KeepsATextThatFitsWhole) {
  EXPECT_EQ(first_piece("", 16), "");
  EXPECT_EQ(first_piece("0123456789abcdef", 16), "0123456789abcdef");
  // '\', a tab and the two bytes of é are sent as \xHH each: 16 bytes.
  EXPECT_EQ(first_piece("\\\t\xc3\xa9", 16), "\\\t\xc3\xa9");
  EXPECT_EQ(first_piece("\\\t\xc3\xa9", 15), "\\\t");
}

// The budget counts bytes as the extended format sends them: a byte below
// 0x20, 0x7f and above, and '\' take four (\xHH).
TEST(PieceLength, CountsEscapedBytesFour) {
  EXPECT_EQ(first_piece("a\tbcdef", 5), "a\t");   // 1 + 4
  EXPECT_EQ(first_piece("a\tbcdef", 6), "a\tb");  // 1 + 4 + 1
  EXPECT_EQ(first_piece("ab\\cdef", 5), "ab");    // the backslash would make 6
  EXPECT_EQ(first_piece("ab\x7f" "cdef", 6), "ab\x7f");
}

// Where the budget ends inside a character, the record ends before it: the
// next record begins with the whole character.
TEST(PieceLength, CutsBeforeAUtf8SequenceTheBudgetWouldSplit) {
  // Ten ASCII bytes (10), then € (E2 82 AC, 12 escaped): 0xe2 fits in 16
  // (14), 0x82 does not (18): cut after 0xe2, moved back before it.
  const std::string euro = "0123456789\xe2\x82\xac" "z";
  EXPECT_EQ(first_piece(euro, 16), "0123456789");
  EXPECT_EQ(first_piece(euro, 21), "0123456789");                 // 0x82 fits, 0xac not
  EXPECT_EQ(first_piece(euro, 22), "0123456789\xe2\x82\xac");     // the whole €
  EXPECT_EQ(first_piece(euro, 23), "0123456789\xe2\x82\xac" "z");
  // é (C3 A9) with the budget between its bytes.
  EXPECT_EQ(first_piece("0123456789ab\xc3\xa9" "cd", 16), "0123456789ab");
  // A 4-byte sequence (U+1F600, F0 9F 98 80), cut after each of its bytes.
  const std::string grin = "x\xf0\x9f\x98\x80y";
  EXPECT_EQ(first_piece(grin, 5), "x");
  EXPECT_EQ(first_piece(grin, 9), "x");
  EXPECT_EQ(first_piece(grin, 13), "x");
  EXPECT_EQ(first_piece(grin, 17), "x\xf0\x9f\x98\x80");
}

// Bytes that are not valid UTF-8 (RFC 3629) are no character to keep
// whole: the cut falls where the budget ends.
TEST(PieceLength, CutsAnInvalidSequenceAnywhere) {
  EXPECT_EQ(first_piece("0123456789ab\xc3Z", 16), "0123456789ab\xc3");     // C3 without its continuation
  EXPECT_EQ(first_piece("\x80\x80\x80\x80\x80", 8), "\x80\x80");              // lone continuation bytes
  EXPECT_EQ(first_piece("0123456789ab\xc0\xaf", 16), "0123456789ab\xc0");   // overlong '/'
  EXPECT_EQ(first_piece("0123456789ab\xed\xa0\x80", 20), "0123456789ab\xed\xa0");  // a surrogate
  EXPECT_EQ(first_piece("0123456789ab\xe2\x82", 16), "0123456789ab\xe2");   // € cut short by the end
}

// Progress whatever the budget: a piece takes at least one byte, and a
// first character the budget cannot hold is cut (only under 16).
TEST(PieceLength, TakesAByteWhenNotEvenOneCharacterFits) {
  EXPECT_EQ(piece_length("\x01" "abc", 3), 1u);
  EXPECT_EQ(piece_length("\xe2\x82\xac", 8), 2u);  // a character of 12 escaped bytes
  EXPECT_EQ(piece_length("abc", 0), 1u);
  EXPECT_EQ(piece_length("", 0), 0u);
}

// Seeded random text (ASCII, controls, valid sequences of every length,
// invalid bytes): the pieces cover it in order, each within the budget
// once escaped, and no piece boundary falls inside a valid character.
TEST(PieceLength, PiecesCoverAnyTextWithinTheBudgetWithoutSplittingACharacter) {
  std::uint32_t seed = 12345;
  const auto next = [&seed] {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) & 0xffffu;
  };
  const char* const kinds[] = {"a", "Z", " ", "\t", "\\", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                               "\x80", "\xc3", "\xff", "\xed\xa0\x80", "\x7f"};
  for (int round = 0; round < 200; ++round) {
    std::string text;
    const std::size_t chars = next() % 300;
    for (std::size_t i = 0; i < chars; ++i) text += kinds[next() % std::size(kinds)];
    const std::size_t budget = 16 + next() % 100;
    SCOPED_TRACE(::testing::Message() << "round " << round << " budget " << budget);
    // Where each valid character begins and ends.
    std::vector<bool> inside(text.size() + 1, false);
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (static_cast<unsigned char>(text[i]) < 0x80) continue;
      const std::size_t len = utf8_length(text, i);
      for (std::size_t k = 1; k < len; ++k) inside[i + k] = true;
      if (len > 0) i += len - 1;
    }
    std::string joined;
    std::size_t at = 0, pieces = 0;
    do {
      const std::size_t n = piece_length(std::string_view(text).substr(at), budget);
      ASSERT_LE(nc::escaped_length(std::string_view(text).substr(at, n)), budget);
      joined += text.substr(at, n);
      at += n;
      EXPECT_FALSE(inside[at]) << "cut inside a character at " << at;
      ASSERT_LT(++pieces, 10000u);
    } while (at < text.size());
    EXPECT_EQ(joined, text);
  }
}

// The pieces' marks: '+' after the first; no newline after a basic piece
// that has more after it (the line goes on in the next record).
TEST(RecordBody, ContinuationPiecesAreFlaggedAndBasicOnesGoOnWithoutANewline) {
  RecordFormat f;
  f.extended = true;
  RecordMeta m = meta(0, "w");
  m.continuation = true;
  m.more = true;
  EXPECT_EQ(header(f, m, 5, false), "14,5,1234,c");
  EXPECT_EQ(body(f, m, "first piece", 0), "first piece\n");
  m.follows = true;
  EXPECT_EQ(header(f, m, 6, false), "14,6,1234,+");
  f.extended = false;
  EXPECT_EQ(body(f, m, "middle piece", 0), "middle piece");
  m.more = false;
  EXPECT_EQ(body(f, m, "last piece", 0), "last piece\n");
}

// The Logger's default text per record is what keeps the body within
// kMaxBody: record_overhead() is what a body takes besides the text.
TEST(RecordBody, OverheadIsWhatALongestRecordTakesBesidesItsText) {
  RecordFormat f = extended_with_everything();
  const std::string release(64, 'r');
  f.release = release;
  f.userdata = " host=web-7\n dc=east\n";
  const std::size_t overhead = record_overhead(f);
  EXPECT_EQ(overhead, 1 + f.userdata.size() + (5 + 10 + 1) + (10 + 16 + 1) + (9 + 64 + 1) + (7 + 10 + 1));
  const std::string text(100, 'x');
  EXPECT_EQ(body(f, meta(INT32_MAX, "0123456789abcdef"), text, UINT32_MAX).size(), text.size() + overhead);
  f.sysdata = Sysdata{};
  EXPECT_EQ(record_overhead(f), 1 + f.userdata.size());
  f.extended = false;
  EXPECT_EQ(record_overhead(f), 1u);  // the newline: no userdata, no sysdata, nothing escaped
}

TEST(Sysdata, ParsesAnySubsetAndNamesAnUnknownItem) {
  const auto a = parse_sysdata("cpu,msgid");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->cpu);
  EXPECT_FALSE(a->taskname);
  EXPECT_FALSE(a->release);
  EXPECT_TRUE(a->msgid);
  const auto all = parse_sysdata("msgid,release,taskname,cpu");
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->cpu && all->taskname && all->release && all->msgid);
  const auto none = parse_sysdata("");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->any());
  const auto bad = parse_sysdata("cpu,pid");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "unknown sysdata 'pid' (known: cpu, taskname, release, msgid)");
}

}  // namespace
}  // namespace np::console
