#include "netpoll/dumpd/herald.h"

#include <gtest/gtest.h>

#include <string>

#include "netpoll/base/bytes.h"

namespace np::dumpd {
namespace {

Result<DumpInfo> parse(std::string_view text) { return parse_description(as_bytes(text)); }

TEST(Description, ReadsEveryKey) {
  auto i = parse("kind=crash\nprogram=crashy\npid=4242\nsignal=11\nthreads=3\nsize=268435456\nhost=web-1\n");
  ASSERT_TRUE(i);
  EXPECT_EQ(i->kind, "crash");
  EXPECT_EQ(i->program, "crashy");
  EXPECT_EQ(i->pid, 4242u);
  EXPECT_EQ(i->signal, 11u);
  EXPECT_EQ(i->threads, 3u);
  EXPECT_EQ(i->size, 268435456u);
  EXPECT_EQ(i->host, "web-1");
}

TEST(Description, MissingKeysAreZeroOrEmptyAndUnknownKeysAreSkipped) {
  auto i = parse("pid=7\nfuture=whatever it says\n");
  ASSERT_TRUE(i);
  EXPECT_EQ(i->pid, 7u);
  EXPECT_EQ(i->program, "");
  EXPECT_EQ(i->kind, "");
  EXPECT_EQ(i->size, 0u);
  EXPECT_TRUE(parse(""));
}

TEST(Description, AcksRangesAsksForRangeAcksAndAnyOtherWordForPlainOnes) {
  EXPECT_FALSE(parse("pid=7\n")->range_acks);
  EXPECT_TRUE(parse("pid=7\nacks=ranges\n")->range_acks);
  EXPECT_FALSE(parse("acks=sacks\n")->range_acks);  // a newer client's word: not an error
  EXPECT_FALSE(parse("acks=ranges\nacks=ranges\n"));  // a key twice, as for every key
  DumpInfo d;
  d.pid = 3;
  d.range_acks = true;
  EXPECT_EQ(format_description(d), "pid=3\nacks=ranges\n");
}

TEST(Description, ValuesMayHoldSpacesAndEqualsSigns) {
  auto i = parse("program=my prog=2\n");
  ASSERT_TRUE(i);
  EXPECT_EQ(i->program, "my prog=2");
}

TEST(Description, RoundTripsThroughTheClientsFormat) {
  DumpInfo d{"live", "server", "db1", 99, 6, 12, 1u << 30};
  const std::string text = format_description(d);
  EXPECT_EQ(text, "kind=live\nprogram=server\npid=99\nsignal=6\nthreads=12\nsize=1073741824\nhost=db1\n");
  auto back = parse(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->program, "server");
  EXPECT_EQ(back->host, "db1");
  EXPECT_EQ(back->size, 1u << 30);
}

TEST(Description, RefusesWhatItCannotTrust) {
  const char* bad[] = {
      "pid=1",                    // the last line cut off
      "pid=1\nprogram",           // likewise
      "novalue\n",                // no '='
      "=1\n",                     // empty key
      "pid=1\npid=2\n",           // a key twice
      "pid=-1\n", "pid=+1\n", "pid=1x\n", "pid=\n", "pid= 1\n",
      "pid=2147483648\n",         // 2^31
      "signal=128\n",
      "threads=99999999999\n",
      "size=9223372036854775808\n",  // 2^63
      "size=123456789012345678901\n",
      "kind=panic\n", "kind=Crash\n",
      "program=a\tb\n",           // a control byte
      "program=caf\xc3\xa9\n",    // not ASCII
      "host=a\rb\n",
  };
  for (const char* b : bad) {
    const auto r = parse(b);
    ASSERT_FALSE(r) << b;
    EXPECT_EQ(r.error(), Errc::kMalformed) << b;
  }
  EXPECT_EQ(parse_description(as_bytes(std::string_view("pid=1\n\0\n", 8))).error(), Errc::kMalformed);
}

TEST(Description, BoundsNamesAndTheWhole) {
  EXPECT_TRUE(parse("program=" + std::string(kMaxName, 'a') + "\n"));
  EXPECT_EQ(parse("program=" + std::string(kMaxName + 1, 'a') + "\n").error(), Errc::kMalformed);
  EXPECT_EQ(parse("host=" + std::string(kMaxName + 1, 'a') + "\n").error(), Errc::kMalformed);
  std::string big;
  while (big.size() <= kMaxDescription) big += "x=" + std::string(60, 'y') + "\n";
  EXPECT_EQ(parse(big).error(), Errc::kTooBig);
}

TEST(SanitisedName, KeepsSafeBytesAndReplacesTheRest) {
  EXPECT_EQ(sanitised_name("crashy"), "crashy");
  EXPECT_EQ(sanitised_name("my-prog_2.1+x"), "my-prog_2.1+x");
  EXPECT_EQ(sanitised_name("../../etc/passwd"), "_._.._etc_passwd");
  EXPECT_EQ(sanitised_name(".."), "_.");
  EXPECT_EQ(sanitised_name(".hidden"), "_hidden");
  EXPECT_EQ(sanitised_name("a b/c\\d"), "a_b_c_d");
  EXPECT_EQ(sanitised_name(""), "unknown");
  EXPECT_EQ(sanitised_name("", "x"), "x");
  EXPECT_EQ(sanitised_name(std::string(300, 'p')), std::string(kMaxFileName, 'p'));
  EXPECT_EQ(sanitised_name("caf\xc3\xa9"), "caf__");
}

}  // namespace
}  // namespace np::dumpd
