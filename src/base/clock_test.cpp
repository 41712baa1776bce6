#include "netpoll/base/clock.h"

#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>

#include "alloc_guard.h"

namespace np {
namespace {

using namespace std::chrono_literals;

TEST(Clock, ReadsTheSameClocksAsTheStandardLibrary) {
  // steady_clock and system_clock are CLOCK_MONOTONIC and CLOCK_REALTIME
  // in libstdc++: ours must fall between two of their readings.
  const auto steady0 = std::chrono::steady_clock::now().time_since_epoch();
  const auto system0 = std::chrono::system_clock::now().time_since_epoch();
  const std::int64_t mono = monotonic_ns();
  const std::int64_t real = realtime_ns();
  const auto steady1 = std::chrono::steady_clock::now().time_since_epoch();
  const auto system1 = std::chrono::system_clock::now().time_since_epoch();
  EXPECT_GE(mono, std::chrono::nanoseconds(steady0).count());
  EXPECT_LE(mono, std::chrono::nanoseconds(steady1).count());
  EXPECT_GE(real, std::chrono::nanoseconds(system0).count());
  EXPECT_LE(real, std::chrono::nanoseconds(system1).count());
  // Boot time counts at least what the monotonic clock does.
  EXPECT_GE(boottime_ns(), mono);
}

TEST(Clock, NapsAtLeastAsLongAsAsked) {
  for (const auto d : {std::chrono::nanoseconds(50us), std::chrono::nanoseconds(2ms), std::chrono::nanoseconds(20ms)}) {
    const std::int64_t t0 = monotonic_ns();
    nap(d);
    EXPECT_GE(monotonic_ns() - t0, d.count());
  }
}

TEST(Clock, ANapOfZeroOrLessReturnsAtOnce) {
  const std::int64_t t0 = monotonic_ns();
  nap(0ns);
  nap(-5s);
  EXPECT_LT(monotonic_ns() - t0, std::chrono::nanoseconds(100ms).count());
}

TEST(Clock, WorksInASignalHandlerWithoutAllocating) {
  static std::int64_t in_handler = 0;
  struct sigaction sa {}, old{};
  sa.sa_handler = [](int) {
    const std::int64_t t0 = monotonic_ns();
    nap(1ms);
    in_handler = monotonic_ns() - t0;
  };
  ASSERT_EQ(::sigaction(SIGUSR2, &sa, &old), 0);
  np::testing::AllocGuard guard;
  ::raise(SIGUSR2);
  EXPECT_EQ(guard.stop(), 0u);
  ::sigaction(SIGUSR2, &old, nullptr);
  EXPECT_GE(in_handler, std::chrono::nanoseconds(1ms).count());
}

}  // namespace
}  // namespace np
