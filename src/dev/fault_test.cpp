// The fault injector over an in-memory pair, with fixed seeds and, where
// time matters, a fake clock.
#include "netpoll/dev/fault.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "alloc_guard.h"
#include "frames.h"
#include "netpoll/dev/open.h"
#include "netpoll/dev/pair.h"

namespace np::dev {
namespace {

using namespace std::chrono_literals;
using np::testing::Bytes;
using np::testing::drain;
using np::testing::numbered_frame;
using np::testing::open_pair_end;
using np::testing::seq_of;

std::atomic<std::int64_t> g_now_ns{0};
std::chrono::nanoseconds fake_now() { return std::chrono::nanoseconds(g_now_ns.load()); }
void set_clock(std::chrono::nanoseconds t) { g_now_ns = t.count(); }

std::vector<std::uint32_t> seqs(const std::vector<Bytes>& frames) {
  std::vector<std::uint32_t> s;
  for (const auto& f : frames) s.push_back(seq_of(f));
  return s;
}

std::vector<std::uint32_t> iota(std::uint32_t from, std::uint32_t to) {
  std::vector<std::uint32_t> v(to - from);
  std::iota(v.begin(), v.end(), from);
  return v;
}

std::size_t bytes_differing(const Bytes& a, const Bytes& b) {
  if (a.size() != b.size()) return SIZE_MAX;
  std::size_t n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

std::unique_ptr<PairDevice> open_end(const std::string& wire, std::size_t slots = 256) {
  PairOptions o;
  o.slots = slots;
  return open_pair_end(wire, o);
}

std::unique_ptr<FaultDevice> wrap(std::unique_ptr<Device> inner, const FaultOptions& o) {
  auto d = wrap_faults(std::move(inner), o);
  EXPECT_TRUE(d.has_value()) << (d ? "" : d.error().message);
  return d ? std::move(*d) : nullptr;
}

// A faulty end and a plain one, on the wire `name`.
struct Bed {
  Bed(const std::string& name, const FaultOptions& o, std::size_t faulty_slots = 256, std::size_t plain_slots = 256) {
    faulty = wrap(open_end(name, faulty_slots), o);
    plain = open_end(name, plain_slots);
  }
  std::unique_ptr<FaultDevice> faulty;
  std::unique_ptr<PairDevice> plain;
};

FaultOptions with_clock(FaultOptions o) {
  o.now = fake_now;
  set_clock(0ns);
  return o;
}

// Sends frames 0..n-1 through the faulty end; returns the sequence numbers
// the plain end received, in order.
std::vector<std::uint32_t> send_through(Bed& bed, std::uint32_t n) {
  std::vector<std::uint32_t> got;
  for (std::uint32_t i = 0; i < n; ++i) {
    EXPECT_EQ(bed.faulty->transmit(numbered_frame(i)), TxStatus::kOk) << i;
    if (i % 128 == 127) {
      for (auto s : seqs(drain(*bed.plain))) got.push_back(s);
    }
  }
  for (auto s : seqs(drain(*bed.plain))) got.push_back(s);
  return got;
}

std::vector<std::uint32_t> drop_run(const std::string& wire, std::uint64_t seed, double p, std::uint32_t n,
                                    std::uint64_t* dropped) {
  FaultOptions o;
  o.drop = p;
  o.seed = seed;
  Bed bed(wire, o);
  auto got = send_through(bed, n);
  *dropped = bed.faulty->fault_stats().dropped.value();
  return got;
}

TEST(FaultDevice, DropOneLosesEveryFrameAndCountsIt) {
  FaultOptions o;
  o.drop = 1;
  Bed bed("f-drop1", o);
  EXPECT_TRUE(send_through(bed, 100).empty());
  EXPECT_EQ(bed.faulty->fault_stats().dropped.value(), 100u);
  EXPECT_EQ(bed.faulty->stats().tx_frames.value(), 0u);  // nothing reached the wire
  // Faults apply on receive as well: frames sent to the faulty end are lost.
  ASSERT_EQ(bed.plain->transmit(numbered_frame(1)), TxStatus::kOk);
  EXPECT_TRUE(drain(*bed.faulty).empty());
  EXPECT_EQ(bed.faulty->fault_stats().dropped.value(), 101u);
}

TEST(FaultDevice, DropRateIsWithinItsBandAndTheSameForTheSameSeed) {
  constexpr std::uint32_t kFrames = 10'000;
  std::uint64_t dropped1 = 0, dropped2 = 0, dropped3 = 0;
  const auto run1 = drop_run("f-rate1", 42, 0.3, kFrames, &dropped1);
  const auto run2 = drop_run("f-rate2", 42, 0.3, kFrames, &dropped2);
  const auto run3 = drop_run("f-rate3", 43, 0.3, kFrames, &dropped3);
  // Binomial(10000, 0.3): mean 3000, sd 46; +-200 is over 4 sd.
  EXPECT_GE(dropped1, 2800u);
  EXPECT_LE(dropped1, 3200u);
  EXPECT_EQ(run1.size() + dropped1, kFrames);
  EXPECT_TRUE(std::is_sorted(run1.begin(), run1.end()));
  // Same seed, same frames lost; another seed, others.
  EXPECT_EQ(run1, run2);
  EXPECT_EQ(dropped1, dropped2);
  EXPECT_NE(run1, run3);
  // Recorded from this implementation: a change here means fault sequences
  // noted in old bug reports no longer replay. Change it knowingly.
  EXPECT_EQ(dropped1, 2952u);
}

TEST(FaultDevice, ReceiveFaultsDoNotDependOnHowOftenTransmitWasCalled) {
  FaultOptions o;
  o.drop = 0.5;
  o.seed = 9;
  auto run = [&](const std::string& wire, int transmits_first) {
    auto sender = open_end(wire);
    auto receiver = wrap(open_end(wire), o);
    for (int i = 0; i < transmits_first; ++i) receiver->transmit(numbered_frame(90000 + i));
    for (std::uint32_t i = 0; i < 200; ++i) EXPECT_EQ(sender->transmit(numbered_frame(i)), TxStatus::kOk);
    return seqs(drain(*receiver));
  };
  const auto quiet = run("f-indep1", 0);
  const auto busy = run("f-indep2", 37);
  EXPECT_EQ(quiet, busy);
  EXPECT_GT(quiet.size(), 50u);
  EXPECT_LT(quiet.size(), 150u);

  // And the two directions are different streams: frame i's fate on
  // transmit says nothing about frame i's fate on receive.
  Bed bed("f-indep3", o);
  EXPECT_NE(send_through(bed, 200), quiet);
}

TEST(FaultDevice, AFrameRetriedAfterBusyMeetsTheFateDrawnForIt) {
  FaultOptions o;
  o.drop = 0.5;
  o.seed = 11;
  Bed roomy("f-busy-roomy", o);
  const auto expected = send_through(roomy, 300);

  Bed tight("f-busy-tight", o, 256, /*plain_slots=*/2);
  std::vector<std::uint32_t> got;
  std::uint64_t busy = 0;
  for (std::uint32_t i = 0; i < 300; ++i) {
    while (tight.faulty->transmit(numbered_frame(i)) == TxStatus::kBusy) {
      ++busy;
      for (auto s : seqs(drain(*tight.plain))) got.push_back(s);
    }
  }
  for (auto s : seqs(drain(*tight.plain))) got.push_back(s);
  EXPECT_GT(busy, 0u);
  EXPECT_EQ(got, expected);
}

TEST(FaultDevice, DuplicateDeliversEveryFrameTwiceInBothDirections) {
  FaultOptions o;
  o.duplicate = 1;
  Bed bed("f-dup", o);
  const auto got = send_through(bed, 50);
  std::vector<std::uint32_t> want;
  for (std::uint32_t i = 0; i < 50; ++i) want.insert(want.end(), {i, i});
  EXPECT_EQ(got, want);
  EXPECT_EQ(bed.faulty->fault_stats().duplicated.value(), 50u);

  // Receiving: the budget holds; a duplicate beyond it comes next call.
  for (std::uint32_t i = 0; i < 5; ++i) ASSERT_EQ(bed.plain->transmit(numbered_frame(i)), TxStatus::kOk);
  std::vector<Bytes> first;
  EXPECT_EQ(bed.faulty->receive(3, [&](std::span<const std::byte> f) { first.emplace_back(f.begin(), f.end()); }),
            3u);
  EXPECT_EQ(seqs(first), (std::vector<std::uint32_t>{0, 0, 1}));
  EXPECT_EQ(seqs(drain(*bed.faulty)), (std::vector<std::uint32_t>{1, 2, 2, 3, 3, 4, 4}));
  EXPECT_EQ(bed.faulty->fault_stats().duplicated.value(), 55u);
}

TEST(FaultDevice, ReorderMovesFramesBehindTheNextOneExactlyAsSeeded) {
  FaultOptions o = with_clock({});
  o.reorder = 0.3;
  o.seed = 7;
  Bed bed("f-reorder", o);
  const auto got = send_through(bed, 20);
  auto sorted = got;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, iota(0, 20));  // nothing lost, nothing doubled
  // Recorded from this implementation for seed 7 (see DropRate... above).
  // 7, 16 and 18 each follow the next frame; 9, 10 and 11 were all held
  // and follow 12, the first frame that was not.
  EXPECT_EQ(got, (std::vector<std::uint32_t>{0, 1, 2, 3, 4, 5, 6, 8, 7, 12, 9, 10, 11, 13, 14, 15, 17, 16, 19, 18}));
  EXPECT_GT(bed.faulty->fault_stats().reordered.value(), 0u);
}

TEST(FaultDevice, AReorderedFrameWithNoNextFrameLeavesAfterTheMaximumHold) {
  FaultOptions o = with_clock({});
  o.reorder = 1;  // every frame waits for a next frame that also waits
  Bed bed("f-reorder-max", o);
  for (std::uint32_t i = 0; i < 3; ++i) ASSERT_EQ(bed.faulty->transmit(numbered_frame(i)), TxStatus::kOk);
  bed.faulty->poll();
  EXPECT_TRUE(drain(*bed.plain).empty());
  set_clock(kReorderMaxHold - 1ns);
  bed.faulty->poll();
  EXPECT_TRUE(drain(*bed.plain).empty());
  set_clock(kReorderMaxHold);
  bed.faulty->poll();
  EXPECT_EQ(seqs(drain(*bed.plain)), (std::vector<std::uint32_t>{0, 1, 2}));
  EXPECT_EQ(bed.faulty->fault_stats().reordered.value(), 3u);
}

TEST(FaultDevice, CorruptChangesExactlyOneByteAndNeverTheCallersBuffer) {
  FaultOptions o;
  o.corrupt = 0.5;
  o.seed = 3;
  Bed bed("f-corrupt", o);
  std::vector<Bytes> originals;
  for (std::uint32_t i = 0; i < 200; ++i) {
    const Bytes original = numbered_frame(i, 14 + (i * 37) % 1501);
    Bytes callers = original;
    ASSERT_EQ(bed.faulty->transmit(callers), TxStatus::kOk);
    ASSERT_EQ(callers, original) << "transmit() wrote into the caller's buffer";
    originals.push_back(original);
  }
  const auto got = drain(*bed.plain);
  ASSERT_EQ(got.size(), 200u);
  std::size_t changed = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const std::size_t d = bytes_differing(got[i], originals[i]);
    EXPECT_LE(d, 1u) << "frame " << i;
    changed += d == 1;
  }
  EXPECT_EQ(changed, bed.faulty->fault_stats().corrupted.value());
  EXPECT_GT(changed, 70u);
  EXPECT_LT(changed, 130u);
}

TEST(FaultDevice, CorruptOnReceiveAndOnHeldFramesChangesExactlyOneByte) {
  FaultOptions o = with_clock({});
  o.corrupt = 1;
  o.delay = 1ms;  // held frames are corrupted in their slot, once
  Bed bed("f-corrupt-rx", o);
  std::vector<Bytes> sent;
  for (std::uint32_t i = 0; i < 50; ++i) {
    sent.push_back(numbered_frame(i, 60 + i));
    ASSERT_EQ(bed.plain->transmit(sent.back()), TxStatus::kOk);
    ASSERT_EQ(bed.faulty->transmit(sent.back()), TxStatus::kOk);
  }
  EXPECT_TRUE(drain(*bed.faulty).empty());  // taken from the wire now: due at 1 ms
  set_clock(1ms);
  bed.faulty->poll();
  const auto received = drain(*bed.faulty);
  const auto transmitted = drain(*bed.plain);
  ASSERT_EQ(received.size(), 50u);
  ASSERT_EQ(transmitted.size(), 50u);
  for (std::size_t i = 0; i < 50; ++i) {
    EXPECT_EQ(bytes_differing(received[i], sent[i]), 1u) << "received " << i;
    EXPECT_EQ(bytes_differing(transmitted[i], sent[i]), 1u) << "transmitted " << i;
  }
  EXPECT_EQ(bed.faulty->fault_stats().corrupted.value(), 100u);
}

TEST(FaultDevice, DelayHoldsTransmittedFramesUntilTheClockPasses) {
  FaultOptions o = with_clock({});
  o.delay = 10ms;
  Bed bed("f-delay-tx", o);
  for (std::uint32_t i = 0; i < 3; ++i) ASSERT_EQ(bed.faulty->transmit(numbered_frame(i)), TxStatus::kOk);
  EXPECT_EQ(bed.faulty->fault_stats().delayed.value(), 3u);
  bed.faulty->poll();
  EXPECT_TRUE(drain(*bed.plain).empty());
  set_clock(10ms - 1ns);
  bed.faulty->poll();
  EXPECT_TRUE(drain(*bed.plain).empty());
  set_clock(10ms);
  bed.faulty->poll();
  EXPECT_EQ(seqs(drain(*bed.plain)), (std::vector<std::uint32_t>{0, 1, 2}));

  // transmit() releases too, and only what is due.
  ASSERT_EQ(bed.faulty->transmit(numbered_frame(3)), TxStatus::kOk);  // due at 20 ms
  set_clock(15ms);
  ASSERT_EQ(bed.faulty->transmit(numbered_frame(4)), TxStatus::kOk);  // due at 25 ms
  EXPECT_TRUE(drain(*bed.plain).empty());
  set_clock(20ms);
  ASSERT_EQ(bed.faulty->transmit(numbered_frame(5)), TxStatus::kOk);  // due at 30 ms
  EXPECT_EQ(seqs(drain(*bed.plain)), std::vector<std::uint32_t>{3});
  set_clock(30ms);
  bed.faulty->poll();
  EXPECT_EQ(seqs(drain(*bed.plain)), (std::vector<std::uint32_t>{4, 5}));
}

TEST(FaultDevice, DelayHoldsReceivedFramesUntilTheClockPasses) {
  FaultOptions o = with_clock({});
  o.delay = 5ms;
  Bed bed("f-delay-rx", o);
  ASSERT_EQ(bed.plain->transmit(numbered_frame(0)), TxStatus::kOk);
  ASSERT_EQ(bed.plain->transmit(numbered_frame(1)), TxStatus::kOk);
  EXPECT_TRUE(drain(*bed.faulty).empty());
  set_clock(5ms - 1ns);
  EXPECT_TRUE(drain(*bed.faulty).empty());
  set_clock(5ms);
  EXPECT_EQ(seqs(drain(*bed.faulty)), (std::vector<std::uint32_t>{0, 1}));
  EXPECT_EQ(bed.faulty->fault_stats().delayed.value(), 2u);
}

TEST(FaultDevice, WhenHoldSlotsAreFullFramesPassUndelayedAndOverflowIsCounted) {
  FaultOptions o = with_clock({});
  o.delay = 10ms;
  o.hold_slots = 2;
  Bed bed("f-overflow", o);
  for (std::uint32_t i = 0; i < 5; ++i) ASSERT_EQ(bed.faulty->transmit(numbered_frame(i)), TxStatus::kOk);
  EXPECT_EQ(seqs(drain(*bed.plain)), (std::vector<std::uint32_t>{2, 3, 4}));
  EXPECT_EQ(bed.faulty->fault_stats().delayed.value(), 2u);
  EXPECT_EQ(bed.faulty->fault_stats().overflow.value(), 3u);
  set_clock(10ms);
  bed.faulty->poll();
  EXPECT_EQ(seqs(drain(*bed.plain)), (std::vector<std::uint32_t>{0, 1}));
}

TEST(FaultDevice, HeldFramesWaitInOrderWhileTheInnerDeviceIsBusy) {
  FaultOptions o = with_clock({});
  o.delay = 10ms;
  o.hold_slots = 8;
  Bed bed("f-held-busy", o, 256, /*plain_slots=*/2);
  for (std::uint32_t i = 0; i < 5; ++i) ASSERT_EQ(bed.faulty->transmit(numbered_frame(i)), TxStatus::kOk);
  set_clock(10ms);
  bed.faulty->poll();  // 0 and 1 fill the peer's ring; 2..4 stay held
  EXPECT_EQ(bed.faulty->transmit(numbered_frame(5)), TxStatus::kBusy);  // held frames go first
  std::vector<std::uint32_t> got = seqs(drain(*bed.plain));
  EXPECT_EQ(bed.faulty->transmit(numbered_frame(5)), TxStatus::kBusy);  // 2, 3 out; 4 still held
  for (auto s : seqs(drain(*bed.plain))) got.push_back(s);
  EXPECT_EQ(bed.faulty->transmit(numbered_frame(5)), TxStatus::kOk);  // 4 out; 5 held until 20 ms
  set_clock(20ms);
  bed.faulty->poll();
  for (auto s : seqs(drain(*bed.plain))) got.push_back(s);
  EXPECT_EQ(got, iota(0, 6));
  EXPECT_EQ(bed.faulty->fault_stats().overflow.value(), 0u);
}

TEST(FaultDevice, ForwardsWhatItDoesNotFault) {
  FaultOptions o;
  o.drop = 0.5;
  auto end = open_end("f-forward");
  PairDevice* raw = end.get();
  auto f = wrap(std::move(end), o);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->mac(), raw->mac());
  EXPECT_EQ(f->mtu(), raw->mtu());
  EXPECT_EQ(f->fd(), raw->fd());
  EXPECT_EQ(f->name(), "pair:f-forward");
  EXPECT_EQ(&f->stats(), &raw->stats());
  EXPECT_FALSE(f->link().carrier);
  // Too long to fault: the inner device answers.
  EXPECT_EQ(f->transmit(numbered_frame(1, 1515)), TxStatus::kError);
  EXPECT_EQ(raw->stats().tx_errors.value(), 1u);
}

TEST(FaultDevice, RefusesOptionsOutsideTheirRange) {
  auto try_wrap = [](FaultOptions o) {
    auto d = wrap_faults(open_end("f-bad"), o);
    return d ? std::string("ok") : d.error().message;
  };
  FaultOptions o;
  o.drop = 1.5;
  EXPECT_EQ(try_wrap(o), "fault injector: drop=1.5 is not a probability from 0 to 1");
  o = {};
  o.duplicate = -0.25;
  EXPECT_EQ(try_wrap(o), "fault injector: dup=-0.25 is not a probability from 0 to 1");
  o = {};
  o.reorder = std::nan("");
  EXPECT_EQ(try_wrap(o), "fault injector: reorder=nan is not a probability from 0 to 1");
  o = {};
  o.corrupt = 2;
  EXPECT_EQ(try_wrap(o), "fault injector: corrupt=2 is not a probability from 0 to 1");
  o = {};
  o.delay = -1ms;
  EXPECT_EQ(try_wrap(o), "fault injector: delay=-1ms is not from 0 to 86400000 ms");
  o = {};
  o.hold_slots = 100'000;
  EXPECT_EQ(try_wrap(o), "fault injector: hold_slots=100000 is more than 65536");
  o = {};
  o.drop = 1;
  o.corrupt = 0;
  EXPECT_EQ(try_wrap(o), "ok");
  auto none = wrap_faults(nullptr, {});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message, "fault injector: no device to wrap");
}

TEST(FaultDevice, DataPathAllocatesNothing) {
  FaultOptions o = with_clock({});
  o.drop = 0.1;
  o.duplicate = 0.2;
  o.reorder = 0.2;
  o.corrupt = 0.2;
  o.delay = 2ms;
  o.hold_slots = 16;
  auto a = wrap(open_end("f-alloc", 16), o);
  auto b = wrap(open_end("f-alloc", 16), o);
  ASSERT_TRUE(a && b);
  const Bytes frame = numbered_frame(1, 600);
  std::size_t received = 0;
  auto count = [&](std::span<const std::byte> f) { received += f.size(); };
  testing::AllocGuard guard;
  for (int i = 0; i < 2000; ++i) {
    set_clock(std::chrono::milliseconds(i));
    a->transmit(frame);
    b->transmit(frame);
    a->poll();
    b->poll();
    a->receive(8, count);
    b->receive(8, count);
  }
  EXPECT_EQ(guard.stop(), 0u);
  EXPECT_GT(received, 0u);
  for (const auto* d : {a.get(), b.get()}) {
    const auto& s = d->fault_stats();
    EXPECT_GT(s.dropped.value(), 0u);
    EXPECT_GT(s.duplicated.value(), 0u);
    EXPECT_GT(s.reordered.value(), 0u);
    EXPECT_GT(s.corrupted.value(), 0u);
    EXPECT_GT(s.delayed.value(), 0u);
  }
}

TEST(FaultDevice, OpenDeviceAppliesFaultsFromTheDeviceString) {
  auto a = open_device("pair:f-open?drop=1&seed=5");
  auto b = open_device("pair:f-open");
  ASSERT_TRUE(a && b);
  auto* f = dynamic_cast<FaultDevice*>(a->get());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ((*a)->transmit(numbered_frame(1)), TxStatus::kOk);
  EXPECT_TRUE(drain(**b).empty());
  EXPECT_EQ(f->fault_stats().dropped.value(), 1u);
  EXPECT_EQ(dynamic_cast<FaultDevice*>(b->get()), nullptr);  // no fault options, no injector
}

}  // namespace
}  // namespace np::dev
