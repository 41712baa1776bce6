// The dispatcher's verdicts, and the drop reason each one is counted under.
#include "netpoll/core/dispatch.h"

#include <gtest/gtest.h>

#include <vector>

#include "rx_verdict.h"

namespace np::core {
namespace {

TEST(Dispatcher, SaysWhyItDroppedAFrameAndEachWhyHasItsOwnReason) {
  Dispatcher d(/*queue_slots=*/2, /*slot_size=*/64);
  std::vector<std::size_t> handled;
  d.register_handler(
      Proto::kIpv4, [&](std::span<const std::byte> f) { handled.push_back(f.size()); }, Policy::kQueued);
  const std::vector<std::byte> small(60), big(65);

  const auto no_handler = d.dispatch(Proto::kArp, small);
  ASSERT_FALSE(no_handler);
  EXPECT_EQ(no_handler.error(), Errc::kNotFound);
  const auto too_long = d.dispatch(Proto::kIpv4, big);
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error(), Errc::kTooBig);
  EXPECT_TRUE(d.dispatch(Proto::kIpv4, small));
  EXPECT_TRUE(d.dispatch(Proto::kIpv4, small));
  const auto full = d.dispatch(Proto::kIpv4, small);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error(), Errc::kNoBuffer);
  EXPECT_EQ(d.counters(Proto::kIpv4).dropped.value(), 2u);
  EXPECT_EQ(d.counters(Proto::kIpv4).queued.value(), 2u);
  EXPECT_TRUE(handled.empty());
  EXPECT_EQ(d.drain(SIZE_MAX), 2u);
  EXPECT_EQ(handled, (std::vector<std::size_t>{60, 60}));

  using detail::Layer;
  EXPECT_EQ(detail::verdict(Layer::kDispatch, no_handler.error()), RxDrop::kNoHandler);
  EXPECT_EQ(detail::verdict(Layer::kDispatch, too_long.error()), RxDrop::kTooLong);
  EXPECT_EQ(detail::verdict(Layer::kDispatch, full.error()), RxDrop::kQueueFull);
}

TEST(RxVerdicts, EveryRowNamesADistinctErrorOfItsLayer) {
  for (std::size_t i = 0; i < std::size(detail::kVerdicts); ++i) {
    for (std::size_t j = i + 1; j < std::size(detail::kVerdicts); ++j) {
      const auto& a = detail::kVerdicts[i];
      const auto& b = detail::kVerdicts[j];
      EXPECT_FALSE(a.layer == b.layer && a.error == b.error) << "rows " << i << " and " << j;
    }
  }
}

}  // namespace
}  // namespace np::core
