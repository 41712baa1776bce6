// Reliable mode's decisions on their own: a ReliableSender driven by a time
// the test moves (never a real wait) and a Transmit that records what it was
// asked to send. What the Logger makes of it on the wire is
// logger_reliable_test.cpp's.
#include "netpoll/console/reliable_sender.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "alloc_guard.h"
#include "netpoll/base/owner_lock.h"

namespace np::console {

// For gtest's messages (found by argument-dependent lookup, so not in the
// unnamed namespace; internal to this file).
[[maybe_unused]] static void PrintTo(Resend r, std::ostream* os) {
  constexpr const char* kNames[] = {"kFirst", "kMissing", "kProbe", "kEmergency"};
  *os << kNames[static_cast<std::size_t>(r)];
}

namespace {

using namespace std::chrono_literals;
using Time = ReliableSender::Time;

// One record the sender asked to have sent.
struct Sent {
  std::uint64_t seq = 0;
  Resend why = Resend::kMissing;
  std::string text;
  std::uint32_t msgid = 0;
  std::uint64_t timestamp_us = 0;
  pid_t window_user = 0;  // who held the window during the call
  bool operator==(const Sent&) const = default;
};

// A Transmit that records each call; it accepts the first `accept` calls
// and refuses the rest (as an interrupted send, or a spent crash budget).
struct Recorder {
  const ReliableSender* sender = nullptr;
  std::vector<Sent> sent;
  std::size_t accept = SIZE_MAX;
  std::size_t refused = 0;
  bool operator()(const RetransmitWindow::Entry& e, std::string_view text, Resend why) {
    if (sent.size() >= accept) {
      ++refused;
      return false;
    }
    sent.push_back({e.seq, why, std::string(text), e.msgid, e.meta.timestamp_us, sender->window_user()});
    return true;
  }
};

ReliableTuning tuning() {
  ReliableTuning t;
  t.start_handshake = false;  // everything on the wire at once; the handshake has its own tests
  return t;
}

// A sender, its counters, the logger's takeover word and the test's time.
struct Bed {
  explicit Bed(const ReliableTuning& t = tuning())
      : sender(std::make_unique<ReliableSender>(t, 32, stats, crash_owner)) {
    tx.sender = sender.get();
  }
  // Keeps record `seq` ("record <seq>", msgid 100 + seq, timestamp 1000 + seq).
  bool keep(std::uint64_t seq, bool held = false) {
    RecordMeta m;
    m.timestamp_us = 1000 + seq;
    const std::string text = "record " + std::to_string(seq);
    m.text_len = static_cast<std::uint32_t>(text.size());
    return sender->keep(seq, static_cast<std::uint32_t>(100 + seq), m, text, held, now);
  }
  // One service step at `now`: what it sent, as (number, reason).
  std::vector<std::pair<std::uint64_t, Resend>> step() {
    tx.sent.clear();
    sender->service(now, tx);
    std::vector<std::pair<std::uint64_t, Resend>> out;
    for (const auto& s : tx.sent) out.emplace_back(s.seq, s.why);
    return out;
  }
  ReliableStats stats;
  std::atomic<pid_t> crash_owner{0};
  std::unique_ptr<ReliableSender> sender;
  Recorder tx;
  Time now = kStart;
};

using Steps = std::vector<std::pair<std::uint64_t, Resend>>;
constexpr Resend kMissing = Resend::kMissing;
constexpr Resend kProbe = Resend::kProbe;
constexpr Resend kFirst = Resend::kFirst;
constexpr Resend kEmergency = Resend::kEmergency;

TEST(ReliableSender, KeepsRecordsUntilAnAckPassesThemAndSendsTheMissingOnesAgainAsKept) {
  Bed b;
  for (std::uint64_t i = 0; i < 6; ++i) EXPECT_TRUE(b.keep(i));
  EXPECT_EQ(b.stats.unacked.load(), 6u);
  EXPECT_FALSE(b.stats.has_ack.load());
  EXPECT_TRUE(b.step().empty());  // nothing asked for, nothing due

  // Everything up to 2 arrived, 4 and 5 are missing (3 arrived).
  EXPECT_TRUE(b.sender->on_response("ncrx2 4 5"));
  EXPECT_TRUE(b.sender->responses_pending());
  EXPECT_EQ(b.step(), (Steps{{4, kMissing}, {5, kMissing}}));
  EXPECT_FALSE(b.sender->responses_pending());
  // As they were kept: text, msgid, meta; the window marked as this
  // thread's while it is being changed.
  ASSERT_EQ(b.tx.sent.size(), 2u);
  EXPECT_EQ(b.tx.sent[0], (Sent{4, kMissing, "record 4", 104, 1004, current_tid()}));
  EXPECT_EQ(b.tx.sent[1], (Sent{5, kMissing, "record 5", 105, 1005, current_tid()}));
  EXPECT_EQ(b.sender->window_user(), 0);
  EXPECT_TRUE(b.stats.has_ack.load());
  EXPECT_EQ(b.stats.acked_seq.load(), 2u);
  EXPECT_EQ(b.stats.unacked.load(), 3u);  // 3, 4, 5
  EXPECT_EQ(b.stats.responses.value(), 1u);
  EXPECT_EQ(b.stats.retransmitted.value(), 2u);

  // All through 5; 9 is asked for but was never kept.
  EXPECT_TRUE(b.sender->on_response("ncrx5 9"));
  EXPECT_TRUE(b.step().empty());
  EXPECT_EQ(b.stats.unacked.load(), 0u);
  EXPECT_EQ(b.stats.acked_seq.load(), 5u);
  EXPECT_EQ(b.stats.not_in_window.value(), 1u);
  EXPECT_EQ(b.stats.emergency_sent.value(), 0u);
  EXPECT_EQ(b.sender->deadline(), Time::max());  // nothing unacknowledged: no timer
}

TEST(ReliableSender, SendsARecordAgainAtMostOncePerHoldoff) {
  ReliableTuning t = tuning();
  t.retransmit_holdoff = 100ms;
  Bed b(t);
  for (std::uint64_t i = 0; i < 3; ++i) b.keep(i);
  // Asked for at once after it was first sent: sent at once.
  b.sender->on_response("ncrx0 2");
  EXPECT_EQ(b.step(), (Steps{{2, kMissing}}));
  // The same answer again (it crossed the retransmission): not again yet...
  b.sender->on_response("ncrx0 2");
  EXPECT_TRUE(b.step().empty());
  b.now += 99ms;
  b.sender->on_response("ncrx0 2");
  EXPECT_TRUE(b.step().empty());
  // ...until the holdoff has passed.
  b.now += 1ms;
  b.sender->on_response("ncrx0 2");
  EXPECT_EQ(b.step(), (Steps{{2, kMissing}}));
  EXPECT_EQ(b.stats.retransmitted.value(), 2u);
}

// An ncrx receiver starts a stream at the first number it sees, so until
// its first answer only the oldest record is on the wire, probed every
// probe_interval; the rest follow the answer, in order, a burst per step.
TEST(ReliableSender, StartHandshakeHoldsRecordsUntilTheReceiverFirstAnswers) {
  ReliableTuning t = tuning();
  t.start_handshake = true;
  t.probe_interval = 50ms;
  t.resend_burst = 3;
  Bed b(t);
  EXPECT_FALSE(b.sender->holds_next());  // an empty window: the first record goes out
  b.keep(0);
  for (std::uint64_t i = 1; i < 5; ++i) {
    EXPECT_TRUE(b.sender->holds_next());
    b.keep(i, true);
  }
  EXPECT_EQ(b.stats.unacked.load(), 5u);
  EXPECT_EQ(b.sender->deadline(), kStart + 50ms);  // the probe, before the progress timeout
  // No answer: the probe repeats record 0, and only it, when it is due.
  b.now += 49ms;
  EXPECT_TRUE(b.step().empty());
  b.now += 1ms;
  EXPECT_EQ(b.step(), (Steps{{0, kProbe}}));
  EXPECT_EQ(b.stats.retransmitted.value(), 1u);
  EXPECT_EQ(b.sender->deadline(), kStart + 100ms);

  // The receiver answers: the held records go out, in order, once, three
  // a step; the next step is due at once while some are left.
  b.sender->on_response("ncrx0");
  EXPECT_EQ(b.step(), (Steps{{1, kFirst}, {2, kFirst}, {3, kFirst}}));
  EXPECT_EQ(b.sender->deadline(), Time::min());
  EXPECT_EQ(b.step(), (Steps{{4, kFirst}}));
  EXPECT_TRUE(b.step().empty());
  EXPECT_EQ(b.stats.retransmitted.value(), 1u);  // first sends are not retransmissions
  EXPECT_EQ(b.stats.unacked.load(), 4u);
  // From now on nothing is held.
  EXPECT_FALSE(b.sender->holds_next());
  b.keep(5);
  b.sender->on_response("ncrx5");
  EXPECT_TRUE(b.step().empty());
  EXPECT_EQ(b.stats.unacked.load(), 0u);
}

// Nothing acknowledged within first_ack_wait of the first record: nothing
// at the target answers. The held records go out once, in order, and from
// then on nothing is kept: no probe, no emergency cycle, no wait.
TEST(ReliableSender, FallsBackToPlainSendingWhenNothingIsAcknowledgedWithinFirstAckWait) {
  ReliableTuning t = tuning();
  t.start_handshake = true;
  t.first_ack_wait = 3s;
  t.probe_interval = 1s;
  Bed b(t);
  b.keep(0);
  for (std::uint64_t i = 1; i < 5; ++i) {
    ASSERT_TRUE(b.sender->holds_next());
    b.keep(i, true);
  }
  EXPECT_EQ(b.sender->deadline(), kStart + 1s);  // the probe first
  b.now += 1s;
  EXPECT_EQ(b.step(), (Steps{{0, kProbe}}));
  b.now += 1s;
  EXPECT_EQ(b.step(), (Steps{{0, kProbe}}));
  EXPECT_EQ(b.sender->deadline(), kStart + 3s);  // the fallback, before the next probe would be
  b.now = kStart + 3s - 1ms;
  EXPECT_TRUE(b.step().empty());
  EXPECT_FALSE(b.stats.plain.load());
  EXPECT_FALSE(b.sender->plain());

  b.now = kStart + 3s;
  EXPECT_EQ(b.step(), (Steps{{1, kFirst}, {2, kFirst}, {3, kFirst}, {4, kFirst}}));
  EXPECT_TRUE(b.stats.plain.load());
  EXPECT_TRUE(b.sender->plain());
  EXPECT_EQ(b.sender->plain_after(), 3s);
  EXPECT_EQ(b.stats.unacked.load(), 0u);
  EXPECT_EQ(b.stats.unacknowledged.value(), 5u);  // 0, on the wire already, and the four held
  EXPECT_EQ(b.stats.retransmitted.value(), 2u);   // the two probes, no more
  EXPECT_EQ(b.sender->deadline(), Time::max());
  // Later records go out as they come and are not kept.
  EXPECT_FALSE(b.sender->holds_next());
  EXPECT_TRUE(b.keep(5));
  EXPECT_EQ(b.stats.unacked.load(), 0u);
  EXPECT_EQ(b.stats.unacknowledged.value(), 6u);
  // A late answer is counted and changes nothing; time brings nothing back.
  EXPECT_TRUE(b.sender->on_response("ncrx3 4"));
  b.now += 1h;
  EXPECT_TRUE(b.step().empty());
  EXPECT_EQ(b.stats.responses.value(), 1u);
  EXPECT_FALSE(b.stats.has_ack.load());
  EXPECT_EQ(b.stats.emergency_cycles.value(), 0u);
  EXPECT_EQ(b.sender->deadline(), Time::max());
}

// Without the start handshake every record is on the wire already: the
// fallback only stops keeping them.
TEST(ReliableSender, FallingBackWithoutTheHandshakeSendsNothingAgain) {
  ReliableTuning t = tuning();
  t.first_ack_wait = 500ms;
  Bed b(t);
  for (std::uint64_t i = 0; i < 3; ++i) b.keep(i);
  b.now += 200ms;
  EXPECT_EQ(b.step(), (Steps{{0, kProbe}}));
  b.now += 300ms;
  EXPECT_TRUE(b.step().empty());
  EXPECT_TRUE(b.stats.plain.load());
  EXPECT_EQ(b.stats.unacked.load(), 0u);
  EXPECT_EQ(b.stats.unacknowledged.value(), 3u);
}

// More held records than a step sends: they go out a burst a step, and a
// record that comes meanwhile waits behind them (holds_next), in order.
TEST(ReliableSender, AfterTheFallbackHeldRecordsGoFirstABurstAStep) {
  ReliableTuning t = tuning();
  t.start_handshake = true;
  t.first_ack_wait = 3s;
  t.resend_burst = 3;
  Bed b(t);
  b.keep(0);
  for (std::uint64_t i = 1; i < 8; ++i) b.keep(i, true);
  b.now += 3s;
  EXPECT_EQ(b.step(), (Steps{{1, kFirst}, {2, kFirst}, {3, kFirst}}));
  EXPECT_EQ(b.sender->deadline(), Time::min());
  EXPECT_EQ(b.stats.unacked.load(), 4u);
  ASSERT_TRUE(b.sender->holds_next());
  b.keep(8, true);
  EXPECT_EQ(b.step(), (Steps{{4, kFirst}, {5, kFirst}, {6, kFirst}}));
  EXPECT_EQ(b.step(), (Steps{{7, kFirst}, {8, kFirst}}));
  EXPECT_FALSE(b.sender->holds_next());
  EXPECT_EQ(b.stats.unacked.load(), 0u);
  EXPECT_EQ(b.stats.unacknowledged.value(), 9u);
  EXPECT_EQ(b.sender->deadline(), Time::max());
}

// A caller that stops waiting (at exit) asks for the fallback: it comes at
// the next step, before first_ack_wait; never for a target that answered,
// and a request with nothing kept is dropped.
TEST(ReliableSender, FallsBackWhenAskedUnlessTheReceiverAnswered) {
  ReliableTuning t = tuning();
  t.start_handshake = true;
  t.probe_interval = 1h;  // no probe in the way
  Bed b(t);
  b.sender->fall_back_now();  // nothing kept: dropped
  EXPECT_TRUE(b.step().empty());
  EXPECT_FALSE(b.stats.plain.load());
  b.keep(0);
  b.keep(1, true);
  EXPECT_TRUE(b.step().empty());
  b.now += 20ms;
  b.sender->fall_back_now();
  EXPECT_EQ(b.sender->deadline(), Time::min());
  EXPECT_EQ(b.step(), (Steps{{1, kFirst}}));
  EXPECT_TRUE(b.stats.plain.load());
  EXPECT_EQ(b.sender->plain_after(), 20ms);
  EXPECT_EQ(b.stats.unacknowledged.value(), 2u);

  // An answered target stays reliable, however long the next wait.
  Bed answered(t);
  answered.keep(0);
  answered.keep(1, true);
  answered.sender->on_response("ncrx0");
  EXPECT_EQ(answered.step(), (Steps{{1, kFirst}}));
  answered.sender->fall_back_now();
  answered.now += 9s;
  EXPECT_TRUE(answered.step().empty());
  EXPECT_FALSE(answered.stats.plain.load());
  EXPECT_EQ(answered.stats.unacked.load(), 1u);
  answered.now += 1s;  // emergency_after: cycling, as before
  EXPECT_EQ(answered.step(), (Steps{{1, kEmergency}}));
  EXPECT_FALSE(answered.stats.plain.load());
}

TEST(ReliableSender, EmergencyCyclingAfterTheProgressTimeoutUntilAnAckMoves) {
  ReliableTuning t = tuning();
  t.emergency_after = 100ms;
  t.emergency_pause = 200ms;
  Bed b(t);
  for (std::uint64_t i = 0; i < 3; ++i) b.keep(i);
  EXPECT_EQ(b.sender->deadline(), kStart + 100ms);
  b.now += 99ms;
  EXPECT_TRUE(b.step().empty());  // no timeout yet
  EXPECT_FALSE(b.stats.emergency.load());

  b.now += 1ms;
  ASSERT_EQ(b.step(), (Steps{{0, kEmergency}, {1, kEmergency}, {2, kEmergency}}));  // oldest first
  EXPECT_EQ(b.tx.sent[1].text, "record 1");
  EXPECT_TRUE(b.stats.emergency.load());
  EXPECT_EQ(b.stats.emergency_sent.value(), 3u);
  EXPECT_EQ(b.stats.emergency_cycles.value(), 1u);
  EXPECT_EQ(b.stats.retransmitted.value(), 0u);
  EXPECT_EQ(b.sender->deadline(), b.now + 200ms);  // the pause

  // A record kept during the pause joins the next cycle.
  b.keep(3);
  b.now += 199ms;
  EXPECT_TRUE(b.step().empty());
  b.now += 1ms;
  EXPECT_EQ(b.step(), (Steps{{0, kEmergency}, {1, kEmergency}, {2, kEmergency}, {3, kEmergency}}));
  EXPECT_EQ(b.stats.emergency_cycles.value(), 2u);

  // An ack that moves ends it.
  b.sender->on_response("ncrx0");
  EXPECT_TRUE(b.step().empty());
  EXPECT_FALSE(b.stats.emergency.load());
  EXPECT_EQ(b.stats.unacked.load(), 3u);
  // One that does not move does not count as progress.
  b.now += 100ms;
  b.sender->on_response("ncrx0");
  EXPECT_EQ(b.step(), (Steps{{1, kEmergency}, {2, kEmergency}, {3, kEmergency}}));
  EXPECT_TRUE(b.stats.emergency.load());
  EXPECT_EQ(b.stats.emergency_cycles.value(), 3u);
}

TEST(ReliableSender, EmergencyCyclingSendsABurstPerStep) {
  ReliableTuning t = tuning();
  t.emergency_after = 50ms;
  t.emergency_pause = 10s;
  t.resend_burst = 2;
  t.first_ack_wait = 1h;  // the fallback not due before the pause ends
  Bed b(t);
  for (std::uint64_t i = 0; i < 5; ++i) b.keep(i);
  b.now += 50ms;
  std::vector<Steps> steps;
  std::vector<Time> deadlines;
  for (int i = 0; i < 4; ++i) {
    steps.push_back(b.step());
    deadlines.push_back(b.sender->deadline());
  }
  EXPECT_EQ(steps, (std::vector<Steps>{{{0, kEmergency}, {1, kEmergency}},
                                       {{2, kEmergency}, {3, kEmergency}},
                                       {{4, kEmergency}},
                                       {}}));
  // Due at once until the cycle is through, then after the pause.
  EXPECT_EQ(deadlines, (std::vector<Time>{b.now, b.now, b.now + 10s, b.now + 10s}));
  EXPECT_EQ(b.stats.emergency_cycles.value(), 1u);
}

TEST(ReliableSender, AFullWindowForgetsItsOldestRecordAndCountsIt) {
  ReliableTuning t = tuning();
  t.window = 4;
  t.retransmit_holdoff = 0ms;
  Bed b(t);
  for (std::uint64_t i = 0; i < 10; ++i) EXPECT_TRUE(b.keep(i));
  EXPECT_EQ(b.stats.unacked.load(), 4u);
  EXPECT_EQ(b.stats.window_dropped.value(), 6u);
  EXPECT_EQ(b.sender->window_capacity(), 4u);
  // 3 was forgotten; 7 is still there.
  b.sender->on_response("ncrx2 3 7");
  EXPECT_EQ(b.step(), (Steps{{7, kMissing}}));
  EXPECT_EQ(b.stats.not_in_window.value(), 1u);
  EXPECT_EQ(b.stats.retransmitted.value(), 1u);
}

// Another process numbering from the same counter may have been acked past
// a number first: nobody will ask for it.
TEST(ReliableSender, DoesNotKeepANumberAlreadyAcknowledged) {
  Bed b;
  b.keep(0);
  b.keep(1);
  b.sender->on_response("ncrx5");
  b.step();
  EXPECT_EQ(b.stats.unacked.load(), 0u);
  EXPECT_TRUE(b.keep(5));
  EXPECT_EQ(b.stats.unacked.load(), 0u);
  EXPECT_TRUE(b.keep(6));
  EXPECT_EQ(b.stats.unacked.load(), 1u);
}

TEST(ReliableSender, CountsDatagramsThatAreNotResponsesAndKeepsTheNewestAckOfAFullMailbox) {
  Bed b;
  for (std::uint64_t i = 0; i < 40; ++i) b.keep(i);
  std::string too_long = "ncrx1";
  while (too_long.size() <= ResponseMailbox::kMaxResponse) too_long += " 2";
  for (const std::string& bad : {std::string("ncrx"), std::string("ncrx1 x"), std::string("hello"), too_long}) {
    EXPECT_FALSE(b.sender->on_response(bad)) << bad;
  }
  EXPECT_EQ(b.stats.bad_responses.value(), 4u);
  EXPECT_FALSE(b.sender->responses_pending());

  for (std::size_t i = 0; i < ResponseMailbox::kSlots + 3; ++i) {
    EXPECT_TRUE(b.sender->on_response("ncrx" + std::to_string(i)));  // wake the sender, full or not
  }
  EXPECT_EQ(b.stats.responses.value(), ResponseMailbox::kSlots + 3);
  EXPECT_EQ(b.stats.mailbox_overflows.value(), 3u);
  b.step();
  EXPECT_EQ(b.stats.acked_seq.load(), ResponseMailbox::kSlots + 2);
  EXPECT_EQ(b.stats.unacked.load(), 40u - (ResponseMailbox::kSlots + 3));
}

// A send the crash path interrupted ends the step; the record counts as not
// sent (no holdoff begins), so the next request sends it.
TEST(ReliableSender, ATransmissionThatDidNotHappenEndsTheStep) {
  Bed b;
  for (std::uint64_t i = 0; i < 3; ++i) b.keep(i);
  b.tx.accept = 0;
  b.sender->on_response("ncrx0 1 2");
  EXPECT_TRUE(b.step().empty());
  EXPECT_EQ(b.tx.refused, 1u);  // 1 was tried, 2 was not
  EXPECT_EQ(b.stats.retransmitted.value(), 0u);
  b.tx.accept = SIZE_MAX;
  b.sender->on_response("ncrx0 1 2");
  EXPECT_EQ(b.step(), (Steps{{1, kMissing}, {2, kMissing}}));
}

TEST(ReliableSender, LeavesTheWindowAloneOnceTheCrashPathOwnsTheLogger) {
  ReliableTuning t = tuning();
  t.emergency_after = 50ms;
  Bed b(t);
  for (std::uint64_t i = 0; i < 3; ++i) b.keep(i);
  b.crash_owner.store(4242);
  EXPECT_FALSE(b.keep(3));  // not kept
  EXPECT_TRUE(b.sender->on_response("ncrx0 1"));  // the poller may still queue it
  b.now += 1s;
  EXPECT_TRUE(b.step().empty());  // neither acted on nor cycled
  EXPECT_FALSE(b.stats.has_ack.load());
  EXPECT_EQ(b.stats.unacked.load(), 3u);
  EXPECT_EQ(b.sender->window_user(), 0);

  // The crash path: every unacknowledged record once more, ncemg=1.
  b.tx.sent.clear();
  EXPECT_EQ(b.sender->crash_resend(b.tx), 3u);
  ASSERT_EQ(b.tx.sent.size(), 3u);
  for (std::uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(b.tx.sent[i].seq, i);
    EXPECT_EQ(b.tx.sent[i].why, kEmergency);
    EXPECT_EQ(b.tx.sent[i].text, "record " + std::to_string(i));
  }
  EXPECT_EQ(b.stats.emergency_sent.value(), 3u);
  EXPECT_EQ(b.stats.emergency_cycles.value(), 0u);
}

TEST(ReliableSender, CrashResendStopsWhereTransmitSays) {
  Bed b;
  for (std::uint64_t i = 0; i < 5; ++i) b.keep(i);
  b.crash_owner.store(4242);
  b.tx.accept = 2;  // the crash path's budget spent after two
  EXPECT_EQ(b.sender->crash_resend(b.tx), 2u);
  EXPECT_EQ(b.tx.refused, 1u);
  EXPECT_EQ(b.stats.emergency_sent.value(), 2u);
}

TEST(ReliableSender, AllocatesNothingKeepingAckingResendingCyclingOrCrashing) {
  ReliableTuning t = tuning();
  t.emergency_after = 50ms;
  t.retransmit_holdoff = 0ms;
  ReliableStats stats;
  std::atomic<pid_t> crash_owner{0};
  auto sender = std::make_unique<ReliableSender>(t, 32, stats, crash_owner);
  ReliableTuning handshake = t;
  handshake.start_handshake = true;
  ReliableStats silent_stats;
  auto silent = std::make_unique<ReliableSender>(handshake, 32, silent_stats, crash_owner);
  std::size_t sends = 0;
  const auto count = [&](const RetransmitWindow::Entry&, std::string_view, Resend) {
    ++sends;
    return true;
  };
  RecordMeta m;
  const Time start = kStart;
  current_tid();  // cached before the guard

  np::testing::AllocGuard guard;
  for (std::uint64_t i = 0; i < 20; ++i) sender->keep(i, 0, m, "guarded text", false, start);
  sender->on_response("ncrx5 7 9 11");
  sender->on_response("ncrx8 9 11 100");
  sender->on_response("garbage");
  sender->service(start, count);
  static_cast<void>(sender->deadline());
  sender->service(start + 50ms, count);  // an emergency cycle: 9..19
  // The fallback, on a sender nobody answered.
  for (std::uint64_t i = 0; i < 20; ++i) silent->keep(i, 0, m, "guarded text", i > 0, start);
  silent->service(start + t.first_ack_wait, count);  // 1..19 once
  silent->keep(20, 0, m, "guarded text", false, start + t.first_ack_wait);
  crash_owner.store(1);
  const std::size_t resent = sender->crash_resend(count);
  const auto allocations = guard.stop();
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(stats.retransmitted.value(), 5u);  // 7, 9, 11, then 9 and 11 again (no holdoff)
  EXPECT_EQ(resent, 11u);
  EXPECT_EQ(stats.emergency_sent.value(), 2 * 11u);  // the cycle's and the crash path's
  EXPECT_EQ(sends, 5u + 2 * 11u + 19u);
  EXPECT_EQ(silent_stats.unacknowledged.value(), 21u);
}

}  // namespace
}  // namespace np::console
