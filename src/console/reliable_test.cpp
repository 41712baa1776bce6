// The retransmit window and the response mailbox on their own.
#include "netpoll/console/reliable.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "alloc_guard.h"

namespace np::console {
namespace {

using namespace std::chrono_literals;

std::chrono::steady_clock::time_point instant(std::chrono::nanoseconds since_epoch) {
  return std::chrono::steady_clock::time_point(since_epoch);
}

RecordMeta meta_with_level(std::uint8_t level) {
  RecordMeta m;
  m.level = level;
  m.timestamp_us = 1000 + level;
  return m;
}

std::vector<std::uint64_t> seqs(const RetransmitWindow& w) {
  std::vector<std::uint64_t> out;
  for (std::size_t i = 0; i < w.size(); ++i) out.push_back(w.at(i).seq);
  return out;
}

TEST(RetransmitWindow, KeepsRecordsOldestFirstWithTheirTextAndMsgid) {
  RetransmitWindow w(4, 8);
  EXPECT_FALSE(w.push(10, 100, instant(5ns), meta_with_level(1), "ten"));
  EXPECT_FALSE(w.push(12, 101, instant(6ns), meta_with_level(2), "twelve-long-text"));  // cut to 8 bytes
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w.at(0).seq, 10u);
  EXPECT_EQ(w.at(0).msgid, 100u);
  EXPECT_EQ(w.at(0).resend_after, instant(5ns));
  EXPECT_EQ(w.at(0).meta.level, 1);
  EXPECT_EQ(w.at(0).meta.timestamp_us, 1001u);
  EXPECT_EQ(w.text(0), "ten");
  EXPECT_EQ(w.text(1), "twelve-l");
  EXPECT_EQ(w.at(1).meta.text_len, 8u);
}

TEST(RetransmitWindow, AFullWindowForgetsItsOldestRecord) {
  RetransmitWindow w(3, 4);
  EXPECT_FALSE(w.push(1, 0, {}, {}, "a"));
  EXPECT_FALSE(w.push(2, 0, {}, {}, "b"));
  EXPECT_FALSE(w.push(3, 0, {}, {}, "c"));
  EXPECT_TRUE(w.push(4, 0, {}, {}, "d"));
  EXPECT_TRUE(w.push(5, 0, {}, {}, "e"));
  EXPECT_EQ(seqs(w), (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_EQ(w.text(0), "c");
  EXPECT_EQ(w.text(2), "e");
}

TEST(RetransmitWindow, ReleasesThroughAnAckAndFindsNumbersAcrossGaps) {
  RetransmitWindow w(8, 4);
  for (const std::uint64_t s : {3u, 4u, 7u, 9u, 10u, 15u}) w.push(s, 0, {}, {}, "x");
  EXPECT_EQ(w.find(7), std::optional<std::size_t>(2));
  EXPECT_EQ(w.find(8), std::nullopt);  // a gap: never sent by us
  EXPECT_EQ(w.lower_bound(8), 3u);
  EXPECT_EQ(w.lower_bound(16), w.size());
  EXPECT_EQ(w.release_through(2), 0u);
  EXPECT_EQ(w.release_through(8), 3u);  // 3, 4, 7
  EXPECT_EQ(seqs(w), (std::vector<std::uint64_t>{9, 10, 15}));
  EXPECT_EQ(w.find(3), std::nullopt);
  // Wrapped around the end of the slots.
  for (const std::uint64_t s : {16u, 17u, 18u, 19u, 20u}) w.push(s, 0, {}, {}, "y");
  EXPECT_EQ(seqs(w), (std::vector<std::uint64_t>{9, 10, 15, 16, 17, 18, 19, 20}));
  EXPECT_EQ(w.find(19), std::optional<std::size_t>(6));
  EXPECT_EQ(w.release_through(UINT64_MAX), 8u);
  EXPECT_TRUE(w.empty());
}

TEST(ResponseMailbox, HandsResponsesOverInOrder) {
  ResponseMailbox m;
  EXPECT_FALSE(m.pending());
  EXPECT_TRUE(m.offer("ncrx1", 1));
  EXPECT_TRUE(m.offer("ncrx2 5", 2));
  EXPECT_TRUE(m.pending());
  ASSERT_TRUE(m.front());
  EXPECT_EQ(*m.front(), "ncrx1");
  m.pop();
  EXPECT_EQ(*m.front(), "ncrx2 5");
  m.pop();
  EXPECT_FALSE(m.front());
  EXPECT_FALSE(m.pending());
  EXPECT_FALSE(m.take_overflow_ack());
}

TEST(ResponseMailbox, AFullMailboxKeepsTheNewestAckAndCountsTheOverflow) {
  ResponseMailbox m;
  for (std::size_t i = 0; i < ResponseMailbox::kSlots; ++i) EXPECT_TRUE(m.offer("ncrx" + std::to_string(i), i));
  EXPECT_FALSE(m.offer("ncrx100 101", 100));
  EXPECT_FALSE(m.offer("ncrx200 201", 200));
  EXPECT_EQ(m.overflows(), 2u);
  EXPECT_EQ(*m.front(), "ncrx0");
  EXPECT_EQ(m.take_overflow_ack(), std::optional<std::uint64_t>(200));
  EXPECT_FALSE(m.take_overflow_ack());  // once
  // Room again after a pop.
  m.pop();
  EXPECT_TRUE(m.offer("ncrx300", 300));
}

TEST(ResponseMailbox, OneProducerOneConsumerLoseNoAck) {
  ResponseMailbox m;
  constexpr std::uint64_t kCount = 20000;
  std::atomic<bool> done{false};
  std::thread producer([&] {
    for (std::uint64_t i = 1; i <= kCount; ++i) m.offer("ncrx" + std::to_string(i), i);
    done.store(true);
  });
  std::uint64_t last_queued = 0;
  std::uint64_t newest = 0;
  std::uint64_t taken = 0;
  bool ordered = true;
  for (;;) {
    const bool finished = done.load();  // read before looking: nothing comes after
    bool got_any = false;
    while (const auto d = m.front()) {
      const std::uint64_t ack = std::stoull(std::string(d->substr(4)));
      if (ack <= last_queued) ordered = false;  // queued responses come in order
      last_queued = ack;
      newest = std::max(newest, ack);
      m.pop();
      ++taken;
      got_any = true;
    }
    if (const auto a = m.take_overflow_ack()) {
      newest = std::max(newest, *a);
      got_any = true;
    }
    if (finished && !got_any) break;
  }
  producer.join();
  EXPECT_TRUE(ordered);
  EXPECT_EQ(newest, kCount);  // the newest ack always arrives
  EXPECT_EQ(taken + m.overflows(), kCount);
}

TEST(ResponseMailbox, NeitherSideAllocates) {
  ResponseMailbox m;
  RetransmitWindow w(4, 16);
  np::testing::AllocGuard guard;
  for (int i = 0; i < 40; ++i) {
    m.offer("ncrx7 8 9", 7);
    if (m.front()) m.pop();
    m.take_overflow_ack();
    w.push(static_cast<std::uint64_t>(i), 0, {}, {}, "text");
    w.find(static_cast<std::uint64_t>(i));
    if (i >= 2) w.release_through(static_cast<std::uint64_t>(i) - 2);
  }
  EXPECT_EQ(guard.stop(), 0u);
}

}  // namespace
}  // namespace np::console
