#include "netpoll/dev/pair.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "alloc_guard.h"
#include "frames.h"
#include "netpoll/dev/open.h"

namespace np::dev {
namespace {

using np::testing::Bytes;
using np::testing::drain;
using np::testing::numbered_frame;
using np::testing::open_pair_end;
using np::testing::seq_of;

PairOptions with_slots(std::size_t n) {
  PairOptions o;
  o.slots = n;
  return o;
}
PairOptions with_mtu(std::size_t n) {
  PairOptions o;
  o.mtu = n;
  return o;
}
PairOptions with_mac(MacAddr m) {
  PairOptions o;
  o.mac = m;
  return o;
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

TEST(PairDevice, FramesCrossBothWaysByteExactAndInOrder) {
  auto a = open_pair_end("cross");
  auto b = open_pair_end("cross");
  ASSERT_TRUE(a && b);
  std::vector<Bytes> a_to_b, b_to_a;
  for (std::uint32_t i = 0; i < 20; ++i) {
    a_to_b.push_back(numbered_frame(i, 14 + (i * 97) % 1501, 1));
    b_to_a.push_back(numbered_frame(1000 + i, 1514 - (i * 53) % 1400, 2));
    ASSERT_EQ(a->transmit(a_to_b.back()), TxStatus::kOk);
    ASSERT_EQ(b->transmit(b_to_a.back()), TxStatus::kOk);
  }
  EXPECT_EQ(drain(*b), a_to_b);
  EXPECT_EQ(drain(*a), b_to_a);

  std::uint64_t bytes = 0;
  for (const auto& f : a_to_b) bytes += f.size();
  EXPECT_EQ(a->stats().tx_frames.value(), 20u);
  EXPECT_EQ(a->stats().tx_bytes.value(), bytes);
  EXPECT_EQ(b->stats().rx_frames.value(), 20u);
  EXPECT_EQ(b->stats().rx_bytes.value(), bytes);
  EXPECT_EQ(a->stats().tx_busy.value(), 0u);
  EXPECT_EQ(b->stats().rx_dropped.value(), 0u);
}

TEST(PairDevice, EndsHaveDefaultMacsAndCarrierWhileBothAreOpen) {
  auto a = open_pair_end("macs");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->mac(), MacAddr(2, 0, 0, 0, 0, 1));
  EXPECT_EQ(a->mtu(), 1500u);
  EXPECT_EQ(a->ifindex(), 0);
  EXPECT_EQ(a->name(), "pair:macs");
  EXPECT_TRUE(a->link().running);
  EXPECT_FALSE(a->link().carrier);  // nobody on the other end yet
  auto b = open_pair_end("macs", with_mac(MacAddr(2, 0xaa, 0, 0, 0, 9)));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->mac(), MacAddr(2, 0xaa, 0, 0, 0, 9));
  EXPECT_TRUE(a->link().usable());
  EXPECT_TRUE(b->link().usable());
}

TEST(PairDevice, FullRingAnswersBusyAndLosesNothing) {
  auto a = open_pair_end("full");
  auto b = open_pair_end("full", with_slots(4));  // b's receive ring: what a can send ahead
  ASSERT_TRUE(a && b);
  for (std::uint32_t i = 0; i < 4; ++i) ASSERT_EQ(a->transmit(numbered_frame(i, 60)), TxStatus::kOk);
  EXPECT_EQ(a->transmit(numbered_frame(4, 60)), TxStatus::kBusy);
  EXPECT_EQ(a->transmit(numbered_frame(4, 60)), TxStatus::kBusy);
  EXPECT_EQ(a->stats().tx_busy.value(), 2u);
  EXPECT_EQ(a->stats().tx_frames.value(), 4u);

  // Taking one frame makes room for exactly one more.
  std::vector<Bytes> got;
  EXPECT_EQ(b->receive(1, [&](std::span<const std::byte> f) { got.emplace_back(f.begin(), f.end()); }), 1u);
  EXPECT_EQ(a->transmit(numbered_frame(4, 60)), TxStatus::kOk);
  EXPECT_EQ(a->transmit(numbered_frame(5, 60)), TxStatus::kBusy);
  for (auto& f : drain(*b)) got.push_back(std::move(f));
  ASSERT_EQ(got.size(), 5u);
  for (std::uint32_t i = 0; i < 5; ++i) EXPECT_EQ(got[i], numbered_frame(i, 60)) << i;
}

TEST(PairDevice, CarrierOffOnEitherEndIsBusyBothWaysAndShowsInLink) {
  auto a = open_pair_end("carrier");
  auto b = open_pair_end("carrier");
  ASSERT_TRUE(a && b);
  a->set_carrier(false);
  EXPECT_TRUE(a->link().running);
  EXPECT_FALSE(a->link().carrier);
  EXPECT_FALSE(b->link().carrier);
  EXPECT_EQ(a->transmit(numbered_frame(1, 60)), TxStatus::kBusy);
  EXPECT_EQ(b->transmit(numbered_frame(2, 60)), TxStatus::kBusy);
  EXPECT_EQ(a->stats().tx_busy.value(), 1u);
  EXPECT_EQ(b->stats().tx_busy.value(), 1u);
  EXPECT_TRUE(drain(*a).empty());
  EXPECT_TRUE(drain(*b).empty());

  a->set_carrier(true);
  EXPECT_TRUE(a->link().carrier);
  EXPECT_TRUE(b->link().carrier);
  EXPECT_EQ(a->transmit(numbered_frame(1, 60)), TxStatus::kOk);
  EXPECT_EQ(drain(*b), std::vector<Bytes>{numbered_frame(1, 60)});
}

TEST(PairDevice, FramesToAMissingPeerAreTakenLostAndCounted) {
  auto a = open_pair_end("lonely");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->transmit(numbered_frame(1, 60)), TxStatus::kOk);
  {
    auto b = open_pair_end("lonely");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->mac(), MacAddr(2, 0, 0, 0, 0, 2));
    EXPECT_TRUE(drain(*b).empty());  // what was sent before b existed is gone
    EXPECT_EQ(a->transmit(numbered_frame(2, 60)), TxStatus::kOk);
    EXPECT_EQ(drain(*b), std::vector<Bytes>{numbered_frame(2, 60)});
  }
  EXPECT_FALSE(a->link().carrier);
  EXPECT_EQ(a->transmit(numbered_frame(3, 60)), TxStatus::kOk);
  EXPECT_EQ(a->pair_stats().tx_no_peer.value(), 2u);
  EXPECT_EQ(a->stats().tx_frames.value(), 3u);

  // The replacement end takes b's place (and b's default MAC) with an empty ring.
  auto b2 = open_pair_end("lonely");
  ASSERT_TRUE(b2);
  EXPECT_EQ(b2->mac(), MacAddr(2, 0, 0, 0, 0, 2));
  EXPECT_TRUE(a->link().carrier);
  EXPECT_TRUE(drain(*b2).empty());
}

TEST(PairDevice, FramesInFlightAreDeliveredAfterTheSenderCloses) {
  auto a = open_pair_end("inflight");
  auto b = open_pair_end("inflight");
  ASSERT_TRUE(a && b);
  for (std::uint32_t i = 0; i < 3; ++i) ASSERT_EQ(a->transmit(numbered_frame(i, 80)), TxStatus::kOk);
  a.reset();
  EXPECT_FALSE(b->link().carrier);
  const auto got = drain(*b);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2], numbered_frame(2, 80));
}

TEST(PairDevice, ThirdOpenIsRefusedWhileBothEndsAreOpen) {
  auto a = open_device("pair:three");
  auto b = open_device("pair:three?slots=8");
  ASSERT_TRUE(a && b);
  auto c = open_device("pair:three");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kExists);
  EXPECT_EQ(c.error().message,
            "device string 'pair:three': both ends of wire 'three' are already open (a wire has two ends)");
  a->reset();
  auto d = open_device("pair:three");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ((*d)->mac(), MacAddr(2, 0, 0, 0, 0, 1));  // took the place of the first end
}

TEST(PairDevice, SecondEndWithAnotherMtuIsRefused) {
  auto a = open_pair_end("mtu", with_mtu(9000));
  ASSERT_TRUE(a);
  auto b = open_pair_device("pair:mtu?mtu=1500", "mtu", {});
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().message,
            "device string 'pair:mtu?mtu=1500': mtu 1500 differs from the other end's 9000 (both ends of a wire "
            "have one MTU)");
  auto c = open_pair_end("mtu", with_mtu(9000));
  ASSERT_TRUE(c);
  EXPECT_EQ(a->transmit(numbered_frame(1, 9014)), TxStatus::kOk);
  EXPECT_EQ(drain(*c), std::vector<Bytes>{numbered_frame(1, 9014)});
}

TEST(PairDevice, FramesTooLongOrShorterThanAHeaderAreErrors) {
  auto a = open_pair_end("sizes", with_mtu(100));
  auto b = open_pair_end("sizes", with_mtu(100));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->transmit(numbered_frame(1, 115)), TxStatus::kError);
  EXPECT_EQ(a->transmit(numbered_frame(1, 13)), TxStatus::kError);
  EXPECT_EQ(a->transmit(numbered_frame(1, 114)), TxStatus::kOk);
  EXPECT_EQ(a->transmit(numbered_frame(2, 14)), TxStatus::kOk);
  EXPECT_EQ(a->stats().tx_errors.value(), 2u);
  EXPECT_EQ(drain(*b), (std::vector<Bytes>{numbered_frame(1, 114), numbered_frame(2, 14)}));
}

TEST(PairDevice, EventfdIsReadableExactlyWhileFramesWait) {
  auto a = open_pair_end("efd");
  auto b = open_pair_end("efd");
  ASSERT_TRUE(a && b);
  ASSERT_GE(b->fd(), 0);
  EXPECT_NE(a->fd(), b->fd());
  EXPECT_FALSE(readable(b->fd()));
  ASSERT_EQ(a->transmit(numbered_frame(1, 60)), TxStatus::kOk);
  ASSERT_EQ(a->transmit(numbered_frame(2, 60)), TxStatus::kOk);
  EXPECT_TRUE(readable(b->fd()));
  EXPECT_FALSE(readable(a->fd()));  // only the receiving end is signalled

  // Out of budget with a frame left: still readable.
  EXPECT_EQ(b->receive(1, [](std::span<const std::byte>) {}), 1u);
  EXPECT_TRUE(readable(b->fd()));
  EXPECT_EQ(b->receive(8, [](std::span<const std::byte>) {}), 1u);
  EXPECT_FALSE(readable(b->fd()));
  EXPECT_EQ(b->receive(8, [](std::span<const std::byte>) {}), 0u);
}

TEST(PairDevice, ConcurrentSenderAndReceiverSeeEveryFrameOnceInOrder) {
  constexpr std::uint32_t kFrames = 200'000;
  auto a = open_pair_end("spsc");
  auto b = open_pair_end("spsc", with_slots(64));  // small: the ring is full often
  ASSERT_TRUE(a && b);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::atomic<bool> give_up{false};

  std::thread producer([&] {
    for (std::uint32_t i = 0; i < kFrames && !give_up.load(std::memory_order_relaxed);) {
      const Bytes f = numbered_frame(i, 60 + i % 64);
      if (a->transmit(f) == TxStatus::kOk) {
        ++i;
      } else {
        std::this_thread::yield();
      }
    }
  });

  std::uint32_t next = 0;
  std::uint64_t bad = 0;
  std::uint32_t pause_at = 0;
  while (next < kFrames && std::chrono::steady_clock::now() < deadline) {
    // Now and then fall behind on purpose, so the producer surely meets a
    // full ring (a fast consumer alone may never let it fill).
    if (next >= pause_at) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      pause_at += kFrames / 10;
    }
    pollfd p{b->fd(), POLLIN, 0};
    ::poll(&p, 1, 10);
    b->receive(32, [&](std::span<const std::byte> f) {
      if (seq_of(f) != next || !std::equal(f.begin(), f.end(), numbered_frame(next, 60 + next % 64).begin())) ++bad;
      ++next;
    });
  }
  give_up = true;
  producer.join();
  EXPECT_EQ(next, kFrames) << "timed out";
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(a->stats().tx_frames.value(), kFrames);
  EXPECT_EQ(b->stats().rx_frames.value(), kFrames);
  EXPECT_GT(a->stats().tx_busy.value(), 0u) << "the ring never filled: the full case went untested";
}

TEST(PairDevice, DataPathAllocatesNothing) {
  auto a = open_pair_end("alloc");
  auto b = open_pair_end("alloc", with_slots(8));
  ASSERT_TRUE(a && b);
  const Bytes frame = numbered_frame(7, 1514);
  std::size_t received = 0;
  testing::AllocGuard guard;
  for (int i = 0; i < 100; ++i) {
    a->transmit(frame);
    a->poll();
    b->receive(4, [&](std::span<const std::byte> f) { received += f.size(); });
    a->set_carrier(i % 10 != 0);
    (void)a->link();
    (void)b->link();
  }
  EXPECT_EQ(guard.stop(), 0u);
  EXPECT_GT(received, 0u);
}

}  // namespace
}  // namespace np::dev
