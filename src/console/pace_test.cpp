// Pacing on its own: a Pacer driven by a time the test moves (never a real
// wait), and the --pace syntax.
#include "netpoll/console/pace.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "alloc_guard.h"

namespace np::console {
namespace {

using namespace std::chrono_literals;
using Time = Pacer::Time;

TEST(ParsePace, ReadsRecordsOrBytesASecond) {
  EXPECT_EQ(parse_pace("2000")->per_second, 2000u);
  EXPECT_FALSE(parse_pace("2000")->bytes);
  EXPECT_EQ(parse_pace("2000/s")->per_second, 2000u);
  EXPECT_FALSE(parse_pace("2000/s")->bytes);
  EXPECT_EQ(parse_pace("64000B/s")->per_second, 64000u);
  EXPECT_TRUE(parse_pace("64000B/s")->bytes);
  EXPECT_EQ(parse_pace("500KB/s")->per_second, 500'000u);
  EXPECT_TRUE(parse_pace("500KB/s")->bytes);
  EXPECT_EQ(parse_pace("2MB")->per_second, 2'000'000u);
  EXPECT_EQ(parse_pace("1000MB/s")->per_second, 1'000'000'000u);
  for (const char* bad : {"", "0", "0/s", "-5", "fast", "2000/m", "2000 ", " 2000", "2k", "2KB/ms", "1001MB/s",
                          "2000000000", "99999999999999999999999", "/s", "B/s"}) {
    EXPECT_FALSE(parse_pace(bad)) << bad;
  }
}

// A sender with an endless supply: it waits exactly as long as the pacer
// says (plus `oversleep` when it waits at all) and sends, until `until`.
// Returns when each item went.
std::vector<Time> run(Pacer& p, Time from, Time until, std::chrono::nanoseconds oversleep = 0ns,
                      std::uint64_t units = 1) {
  std::vector<Time> at;
  Time now = from;
  for (;;) {
    const auto w = p.wait(now);
    if (w > 0ns) now += w + oversleep;
    if (now >= until) return at;
    p.sent(now, units);
    at.push_back(now);
  }
}

TEST(Pacer, HoldsASenderToItsRateWithBurstsOfAtMostTheSlack) {
  Pacer p(Pace{1000, false}, 2ms);
  const auto at = run(p, kStart, kStart + 1s);
  // 1000 a second, plus the slack's worth at the start: 0 ms, 0 ms, 0 ms
  // (due 1, 2, 3 ms: within 2 ms of now), then one every millisecond.
  ASSERT_EQ(at.size(), 1002u);
  EXPECT_EQ(at[0], kStart);
  EXPECT_EQ(at[2], kStart);
  EXPECT_EQ(at[3], kStart + 1ms);
  EXPECT_EQ(at[4], kStart + 2ms);
  EXPECT_EQ(at[1001], kStart + 999ms);
  // The wait is what is left to the item's time less the slack.
  EXPECT_EQ(p.wait(kStart + 999ms), 1ms);
  EXPECT_EQ(p.wait(kStart + 999ms + 400us), 600us);
  EXPECT_EQ(p.wait(kStart + 1s), 0ns);
}

TEST(Pacer, ASenderThatOversleepsCatchesUpWithinTheSlack) {
  Pacer p(Pace{1000, false}, 2ms);
  // Every nap 700 us too long: the items it made late go at once after it.
  const auto at = run(p, kStart, kStart + 10s, 700us);
  EXPECT_GE(at.size(), 10'000u);
  EXPECT_LE(at.size(), 10'002u);
  for (std::size_t i = 1; i < at.size(); ++i) EXPECT_LE(at[i] - at[i - 1], 2ms) << i;
}

TEST(Pacer, AnIdleSpellEarnsNoMoreThanTheSlack) {
  Pacer p(Pace{1000, false}, 2ms);
  static_cast<void>(run(p, kStart, kStart + 100ms));
  // Nothing to send for ten seconds, then a burst of input: three at once
  // (the slack's worth), then the rate again.
  const Time later = kStart + 10s + 100ms;
  const auto at = run(p, later, later + 10ms);
  ASSERT_EQ(at.size(), 12u);
  EXPECT_EQ(at[2], later);
  EXPECT_EQ(at[3], later + 1ms);
}

TEST(Pacer, CountsBytesAndCarriesTheRemainderExactly) {
  // 1000 bytes a second, 100-byte lines: ten a second.
  Pacer bytes(Pace{1000, true}, 0ns);
  const auto lines = run(bytes, kStart, kStart + 1s, 0ns, 100);
  ASSERT_EQ(lines.size(), 10u);
  EXPECT_EQ(lines[9], kStart + 900ms);
  // Three a second is 333333333.3 ns each: the remainder is carried, so
  // every third item lands on a whole second.
  Pacer thirds(Pace{3, false}, 0ns);
  const auto at = run(thirds, kStart, kStart + 100s + 1ns);
  ASSERT_EQ(at.size(), 301u);
  EXPECT_EQ(at[3], kStart + 1s);
  EXPECT_EQ(at[300], kStart + 100s);
  EXPECT_EQ(at[1], kStart + 333'333'333ns);
  // An empty item costs nothing; a huge one does not overflow.
  Pacer big(Pace{1, true}, 0ns);
  big.sent(kStart, 0);
  EXPECT_EQ(big.wait(kStart), 0ns);
  big.sent(kStart, 1'000'000'000);
  EXPECT_EQ(big.wait(kStart), std::chrono::nanoseconds(1'000'000'000LL * 1'000'000'000LL));
}

TEST(Pacer, AllocatesNothing) {
  Pacer p(Pace{5000, false});
  np::testing::AllocGuard guard;
  Time now = kStart;
  for (int i = 0; i < 1000; ++i) {
    now += p.wait(now);
    p.sent(now, 1);
  }
  EXPECT_EQ(guard.stop(), 0u);
  EXPECT_EQ(now, kStart + 999 * 200us - 2ms);  // the 1000th at its time less the slack
}

}  // namespace
}  // namespace np::console
