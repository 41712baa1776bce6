#include "netpoll/base/text.h"

#include <gtest/gtest.h>

#include <limits>

#include "alloc_guard.h"

namespace np {
namespace {

TEST(FixedText, AppendsTextNumbersAndHex) {
  FixedText<64> t;
  t.append("sig ").append_uint(11).append(' ').append_int(-42).append(" at 0x").append_hex(0xdeadbeef, 16);
  EXPECT_EQ(t.view(), "sig 11 -42 at 0x00000000deadbeef");
}

TEST(FixedText, FormatsExtremeIntegers) {
  FixedText<64> t;
  t.append_int(std::numeric_limits<std::int64_t>::min()).append(' ').append_uint(
      std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(t.view(), "-9223372036854775808 18446744073709551615");
}

TEST(FixedText, CutsAtCapacityAndSaysSo) {
  FixedText<8> t;
  t.append("0123456789");
  EXPECT_EQ(t.view(), "0123456");
  EXPECT_TRUE(t.truncated());
  EXPECT_EQ(std::string_view(t.c_str()), "0123456");
}

TEST(FixedText, NeverAllocates) {
  testing::AllocGuard guard;
  FixedText<128> t;
  for (int i = 0; i < 100; ++i) t.append_uint(static_cast<unsigned>(i));
  EXPECT_EQ(guard.stop(), 0u);
}

int* volatile g_sink = nullptr;  // keeps the compiler from eliding new/delete

TEST(AllocGuard, CountsAnAllocationItCanSee) {
  testing::AllocGuard guard;
  g_sink = new int(7);
  const auto n = guard.stop();
  delete g_sink;
  EXPECT_GE(n, 1u);  // the guard can fail: it sees allocations
}

}  // namespace
}  // namespace np
