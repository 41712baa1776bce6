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
