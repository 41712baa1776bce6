// Reliable mode (netconsd's ncrx protocol) over the in-memory wire. The far
// end parses what the logger sends with wire/ and answers as a receiver in
// reliable mode does: "ncrx<ack-seq> <missing>..." in a UDP datagram from
// the target's IP:port to the logger's local IP:port. Reliable mode's timers
// run on a clock the test moves (LoggerConfig::reliable_clock): no test
// here waits for a timer. reliable_sender_test.cpp has the decisions alone.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "alloc_guard.h"
#include "net_helpers.h"
#include "netpoll/console/logger.h"
#include "netpoll/dev/open.h"
#include "netpoll/wire/netconsole.h"
#include "test_support.h"

namespace np::console {
namespace {

using namespace std::chrono_literals;
namespace nc = np::wire::netconsole;

constexpr const char* kTarget = "+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02";
const Ipv4Addr kReceiverIp{10, 0, 0, 2};

// Reliable mode's time, moved by the test.
class FakeClock final : public ReliableClock {
 public:
  std::chrono::steady_clock::time_point now() const noexcept override { return now_; }
  void advance(std::chrono::nanoseconds d) { now_ += d; }

 private:
  std::chrono::steady_clock::time_point now_{std::chrono::hours(1000)};
};

// The receiving end of the wire, which also answers.
class AnsweringFar {
 public:
  explicit AnsweringFar(const std::string& wire) {
    auto d = dev::open_device("pair:" + wire + "?mac=02:00:00:00:00:02&slots=4096");
    EXPECT_TRUE(d) << (d ? "" : d.error().message);
    dev_ = std::move(*d);
  }
  // The UDP payloads that arrived since the last call, in order.
  std::vector<std::string> take() {
    std::vector<std::string> out;
    dev_->receive(100000, [&](std::span<const std::byte> f) {
      auto u = np::testing::parse_udp(f);
      if (u) out.emplace_back(reinterpret_cast<const char*>(u->payload.data()), u->payload.size());
    });
    return out;
  }
  // A frame carrying `payload` from `from`:6666 to the logger's 10.0.0.1:6665.
  std::vector<std::byte> frame(Logger& lg, std::string_view payload, Ipv4Addr from = kReceiverIp) const {
    const np::testing::Endpoint src{dev_->mac(), from, 6666};
    const np::testing::Endpoint dst{lg.target_client(0).shared().device().mac(), Ipv4Addr{10, 0, 0, 1}, 6665};
    return np::testing::udp_frame(src, dst, as_bytes(payload));
  }
  void transmit(std::span<const std::byte> frame) { EXPECT_EQ(dev_->transmit(frame), dev::TxStatus::kOk); }
  void respond(Logger& lg, std::string_view payload, Ipv4Addr from = kReceiverIp) {
    transmit(frame(lg, payload, from));
  }

 private:
  std::unique_ptr<dev::Device> dev_;
};

// `clock`: reliable mode's time (nullptr: the steady clock).
LoggerConfig reliable_config(const std::string& wire, const std::string& target_text = kTarget,
                    const FakeClock* clock = nullptr) {
  std::string text = target_text;
  text.replace(text.find("DEV"), 3, "pair:" + wire);
  auto t = core::parse_targets(text);
  EXPECT_TRUE(t) << (t ? "" : t.error().message);
  LoggerConfig c;
  TargetConfig tc;
  tc.target = t->targets.at(0);
  tc.reliable = true;
  // Everything on the wire at once, as Linux sends it; the start handshake
  // has its own test.
  tc.reliable_tuning.start_handshake = false;
  c.targets.push_back(tc);
  c.sender_thread = false;  // drained by hand: deterministic
  c.device.service_thread = false;  // polled by hand
  c.release = "6.1.0-test";
  c.reliable_clock = clock;
  return c;
}

std::vector<std::uint64_t> seqs_of(const std::vector<std::string>& datagrams) {
  std::vector<std::uint64_t> out;
  for (const auto& d : datagrams) out.push_back(parsed(d).seq);
  return out;
}

// The datagram as it was first sent: the emergency flag taken out.
std::string without_ncemg(std::string d) {
  const auto at = d.find(",ncemg=1");
  if (at != std::string::npos && at < d.find(';')) d.erase(at, 8);
  return d;
}

// Polls the logger's device (the far end's answers come in) and acts on them.
void deliver(Logger& lg) {
  lg.poll();
  lg.drain();
}

TEST(ReliableLogger, ReleasesAckedRecordsAndResendsMissingOnesByteIdentical) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  auto c = reliable_config(wire, "+r6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02");
  c.targets[0].sysdata = Sysdata{true, true, true, true};
  c.targets[0].userdata = {{"host", "web-7"}};
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 6; ++i) {
    if (i == 4) {
      lg->log_text(Facility::kDaemon, Level::kErr, std::string(1500, 'x'));  // two fragments
    } else {
      lg->log(Level::kInfo, "record {}", i);
    }
  }
  EXPECT_EQ(lg->drain(), 6u);
  std::map<std::uint64_t, std::vector<std::string>> first;
  for (const auto& d : far.take()) first[parsed(d).seq].push_back(d);
  ASSERT_EQ(first.size(), 6u);
  ASSERT_EQ(first[4].size(), 2u);
  const TargetStats& st = lg->target_stats(0);
  EXPECT_EQ(st.unacked.load(), 6u);
  EXPECT_FALSE(st.has_ack.load());

  // Everything up to 2 arrived, 4 and 5 are missing (3 arrived).
  far.respond(*lg, "ncrx2 4 5");
  deliver(*lg);
  EXPECT_TRUE(st.has_ack.load());
  EXPECT_EQ(st.acked_seq.load(), 2u);
  EXPECT_EQ(st.unacked.load(), 3u);  // 3, 4, 5: acknowledged only through 2
  EXPECT_EQ(st.responses.value(), 1u);
  EXPECT_EQ(st.retransmitted.value(), 2u);
  const auto again = far.take();
  ASSERT_EQ(again.size(), 3u);
  EXPECT_EQ(again[0], first[4][0]);  // same number, same bytes (msgid, cpu, taskname, timestamp too)
  EXPECT_EQ(again[1], first[4][1]);
  EXPECT_EQ(again[2], first[5][0]);
  EXPECT_EQ(st.records.value(), 6u);  // retransmissions are not new records

  // All through 5; 9 is asked for but was never ours.
  far.respond(*lg, "ncrx5 9");
  deliver(*lg);
  EXPECT_EQ(st.unacked.load(), 0u);
  EXPECT_EQ(st.acked_seq.load(), 5u);
  EXPECT_EQ(st.not_in_window.value(), 1u);
  EXPECT_TRUE(far.take().empty());
  // Responses addressed to our client are not drops anywhere.
  EXPECT_EQ(lg->target_client(0).shared().stats().rx_drops.total(), 0u);
  EXPECT_EQ(lg->target_client(0).stats().rx_datagrams.value(), 2u);

  const std::string json = lg->stats_json();
  for (const char* field : {"\"reliable\":true", "\"acked_seq\":5", "\"unacked\":0", "\"retransmitted\":2",
                            "\"responses\":2", "\"bad_responses\":0", "\"not_in_window\":1", "\"window_dropped\":0",
                            "\"emergency_sent\":0"}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
  }
}

// An ncrx receiver starts a stream at the first number it sees: had record
// 0 been lost and record 1 arrived, its first "ncrx1" would release record
// 0 unseen. So until the first answer only the oldest record is on the
// wire, sent again every probe_interval; the rest follow the answer, in order.
TEST(ReliableLogger, StartHandshakeHoldsRecordsUntilTheReceiverFirstAnswers) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  FakeClock clock;
  auto c = reliable_config(wire, kTarget, &clock);
  c.targets[0].reliable_tuning.start_handshake = true;
  c.targets[0].reliable_tuning.probe_interval = 50ms;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 5; ++i) lg->log(Level::kInfo, "r{}", i);
  EXPECT_EQ(lg->drain(), 5u);
  EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{0}));
  const TargetStats& st = lg->target_stats(0);
  EXPECT_EQ(st.records.value(), 1u);
  EXPECT_EQ(st.unacked.load(), 5u);
  // No answer: the probe repeats record 0, and only it.
  lg->drain();
  EXPECT_TRUE(far.take().empty());  // not yet due
  clock.advance(49ms);
  lg->drain();
  EXPECT_TRUE(far.take().empty());
  clock.advance(1ms);
  lg->drain();
  EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{0}));
  EXPECT_EQ(st.retransmitted.value(), 1u);
  // The receiver answers: the held records go out, in order, once.
  far.respond(*lg, "ncrx0");
  deliver(*lg);
  EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(st.records.value(), 5u);
  EXPECT_EQ(st.unacked.load(), 4u);
  // From now on records go out as they are logged.
  lg->log(Level::kInfo, "r5");
  lg->drain();
  EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{5}));
  far.respond(*lg, "ncrx5");
  deliver(*lg);
  EXPECT_EQ(st.unacked.load(), 0u);
  EXPECT_TRUE(far.take().empty());
}

// A receiver that never answers (a plain receiver, netconsd itself): the
// start handshake would hold every record but the first for ever. After
// first_ack_wait the logger says so once and sends the held records, in
// order, once; later records go out as logged, and nothing is kept.
TEST(ReliableLogger, ASilentReceiverGetsEveryRecordOnceFirstAckWaitPasses) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  FakeClock clock;
  auto c = reliable_config(wire, kTarget, &clock);
  c.targets[0].reliable_tuning.start_handshake = true;
  c.targets[0].reliable_tuning.first_ack_wait = 3s;
  std::vector<ReliableFallback> told;
  told.reserve(4);
  c.on_reliable_fallback = [&told](const ReliableFallback& f) { told.push_back(f); };
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  const TargetStats& st = lg->target_stats(0);
  for (int i = 0; i < 20; ++i) lg->log(Level::kInfo, "r{}", i);
  EXPECT_EQ(lg->drain(), 20u);
  EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{0}));
  clock.advance(3s - 1ms);
  lg->drain();
  EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{0}));  // the probe: still only 0
  EXPECT_TRUE(told.empty());
  EXPECT_FALSE(st.plain.load());
  EXPECT_EQ(st.unacked.load(), 20u);

  clock.advance(1ms);
  np::testing::AllocGuard guard;
  lg->drain();
  EXPECT_EQ(guard.stop(), 0u);
  std::vector<std::uint64_t> rest;
  for (std::uint64_t i = 1; i < 20; ++i) rest.push_back(i);
  const auto held = far.take();
  EXPECT_EQ(seqs_of(held), rest);
  for (const auto& d : held) EXPECT_FALSE(parsed(d).emergency);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].target, 0u);
  EXPECT_EQ(told[0].waited, 3s);
  EXPECT_TRUE(st.plain.load());
  EXPECT_EQ(st.unacked.load(), 0u);
  EXPECT_EQ(st.records.value(), 20u);
  EXPECT_EQ(st.unacknowledged.value(), 20u);

  for (int i = 20; i < 25; ++i) lg->log(Level::kInfo, "r{}", i);
  lg->drain();
  EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{20, 21, 22, 23, 24}));
  clock.advance(1h);
  lg->drain();
  EXPECT_TRUE(far.take().empty());  // no probe, no emergency cycle
  EXPECT_EQ(told.size(), 1u);
  EXPECT_TRUE(lg->wait_acked(0ms));
  EXPECT_NE(lg->stats_json().find("\"plain\":true,\"unacknowledged\":25"), std::string::npos) << lg->stats_json();
}

// A caller that stops waiting (netpoll console at the end of its linger)
// has the held records sent at once, without waiting for first_ack_wait.
TEST(ReliableLogger, FallBackUnansweredSendsWhatTheHandshakeHeld) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  FakeClock clock;
  auto c = reliable_config(wire, kTarget, &clock);
  c.targets[0].reliable_tuning.start_handshake = true;
  std::vector<ReliableFallback> told;
  c.on_reliable_fallback = [&told](const ReliableFallback& f) { told.push_back(f); };
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 20; ++i) lg->log(Level::kInfo, "r{}", i);
  lg->drain();
  EXPECT_EQ(far.take().size(), 1u);
  EXPECT_FALSE(lg->wait_acked(0ms));
  clock.advance(2s);
  EXPECT_TRUE(lg->fall_back_unanswered(1s));
  std::vector<std::uint64_t> rest;
  for (std::uint64_t i = 1; i < 20; ++i) rest.push_back(i);
  EXPECT_EQ(seqs_of(far.take()), rest);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].waited, 2s);
  EXPECT_TRUE(lg->wait_acked(0ms));
  EXPECT_EQ(lg->target_stats(0).unacknowledged.value(), 20u);
}

// An answered target is not affected; a logger destroyed before its silent
// receiver's first_ack_wait sends what it held instead of losing it.
TEST(ReliableLogger, AnAnsweredTargetStaysReliableAndALoggerGoingAwaySendsWhatItHeld) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  {
    auto c = reliable_config(wire);
    c.targets[0].reliable_tuning.start_handshake = true;
    auto lg = make(std::move(c));
    ASSERT_TRUE(lg);
    lg->log(Level::kInfo, "r0");
    lg->drain();
    far.respond(*lg, "ncrx0");
    deliver(*lg);
    for (int i = 1; i < 4; ++i) lg->log(Level::kInfo, "r{}", i);
    lg->drain();
    EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{0, 1, 2, 3}));
    EXPECT_TRUE(lg->fall_back_unanswered(1s));  // nothing to do
    EXPECT_FALSE(lg->target_stats(0).plain.load());
    EXPECT_EQ(lg->target_stats(0).unacked.load(), 3u);
    EXPECT_TRUE(far.take().empty());
  }
  EXPECT_TRUE(far.take().empty());  // nor when it goes

  auto c2 = reliable_config(wire);
  c2.targets[0].reliable_tuning.start_handshake = true;
  auto silent = make(std::move(c2));
  ASSERT_TRUE(silent);
  for (int i = 0; i < 5; ++i) silent->log(Level::kInfo, "s{}", i);
  silent->drain();
  EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{0}));
  silent.reset();
  EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{1, 2, 3, 4}));
}

TEST(ReliableLogger, ResendsARecordAtMostOncePerHoldoff) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  FakeClock clock;
  auto c = reliable_config(wire, kTarget, &clock);
  c.targets[0].reliable_tuning.retransmit_holdoff = 100ms;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 3; ++i) lg->log(Level::kInfo, "r{}", i);
  lg->drain();
  EXPECT_EQ(far.take().size(), 3u);
  // Asked for at once after it was first sent: resent at once.
  far.respond(*lg, "ncrx0 2");
  deliver(*lg);
  EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{2}));
  // The same answer again (it crossed the retransmission): not again yet.
  far.respond(*lg, "ncrx0 2");
  deliver(*lg);
  EXPECT_TRUE(far.take().empty());
  clock.advance(99ms);
  far.respond(*lg, "ncrx0 2");
  deliver(*lg);
  EXPECT_TRUE(far.take().empty());
  clock.advance(1ms);
  far.respond(*lg, "ncrx0 2");
  deliver(*lg);
  EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(lg->target_stats(0).retransmitted.value(), 2u);
}

TEST(ReliableLogger, IgnoresAResponseFromAnotherIpAndCountsMalformedOnes) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  auto lg = make(reliable_config(wire));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 3; ++i) lg->log(Level::kInfo, "r{}", i);
  lg->drain();
  far.take();
  const TargetStats& st = lg->target_stats(0);
  const auto& dev_stats = lg->target_client(0).shared().stats();

  // Another host's "ack": not our receiver's, so not our client's datagram.
  far.respond(*lg, "ncrx2", Ipv4Addr{10, 0, 0, 9});
  deliver(*lg);
  EXPECT_EQ(st.unacked.load(), 3u);
  EXPECT_EQ(st.responses.value(), 0u);
  EXPECT_FALSE(st.has_ack.load());
  EXPECT_EQ(dev_stats.rx_drops.value(core::RxDrop::kNoClient), 1u);

  // From our receiver, but not responses.
  for (const char* bad : {"ncrx", "ncrx1 x", "ncrx-1", "hello", "ncrx1  2"}) far.respond(*lg, bad);
  deliver(*lg);
  EXPECT_EQ(st.bad_responses.value(), 5u);
  EXPECT_EQ(st.responses.value(), 0u);
  EXPECT_EQ(st.unacked.load(), 3u);
  EXPECT_TRUE(far.take().empty());
  EXPECT_EQ(dev_stats.rx_drops.total(), 1u);  // only the other host's

  far.respond(*lg, "ncrx0\n");  // a trailing newline is allowed
  deliver(*lg);
  EXPECT_EQ(st.responses.value(), 1u);
  EXPECT_EQ(st.unacked.load(), 2u);
}

TEST(ReliableLogger, EmergencyCyclingAfterTheProgressTimeoutUntilAnAckMoves) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  FakeClock clock;
  auto c = reliable_config(wire, kTarget, &clock);
  c.targets[0].reliable_tuning.emergency_after = 100ms;
  c.targets[0].reliable_tuning.emergency_pause = 200ms;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  const TargetStats& st = lg->target_stats(0);
  for (int i = 0; i < 3; ++i) lg->log(Level::kInfo, "r{}", i);
  lg->drain();
  const auto original = far.take();
  ASSERT_EQ(original.size(), 3u);
  lg->drain();
  EXPECT_TRUE(far.take().empty());  // no timeout yet
  clock.advance(99ms);
  lg->drain();
  EXPECT_TRUE(far.take().empty());
  EXPECT_FALSE(st.emergency.load());

  clock.advance(1ms);
  lg->drain();
  const auto cycle1 = far.take();
  ASSERT_EQ(cycle1.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(parsed(cycle1[i]).seq, i);  // oldest first
    EXPECT_TRUE(parsed(cycle1[i]).emergency);
    EXPECT_EQ(without_ncemg(cycle1[i]), original[i]);  // otherwise the same bytes
  }
  const std::string header = cycle1[0].substr(0, cycle1[0].find(';'));
  EXPECT_EQ(header.substr(header.size() - 8), ",ncemg=1") << cycle1[0];  // after the flag, as netconsd reads it
  EXPECT_TRUE(st.emergency.load());
  EXPECT_EQ(st.emergency_sent.value(), 3u);
  EXPECT_EQ(st.emergency_cycles.value(), 1u);

  // The pause between cycles; a record logged meanwhile goes out as usual
  // and joins the next cycle.
  lg->log(Level::kInfo, "r3");
  lg->drain();
  const auto during = far.take();
  ASSERT_EQ(during.size(), 1u);
  EXPECT_FALSE(parsed(during[0]).emergency);
  clock.advance(199ms);
  lg->drain();
  EXPECT_TRUE(far.take().empty());  // still the pause
  clock.advance(1ms);
  lg->drain();
  const auto cycle2 = far.take();
  EXPECT_EQ(seqs_of(cycle2), (std::vector<std::uint64_t>{0, 1, 2, 3}));
  EXPECT_EQ(st.emergency_cycles.value(), 2u);

  // An ack that moves ends it.
  far.respond(*lg, "ncrx0");
  deliver(*lg);
  EXPECT_FALSE(st.emergency.load());
  EXPECT_EQ(st.unacked.load(), 3u);
  lg->drain();
  EXPECT_TRUE(far.take().empty());
  // One that does not move does not count as progress.
  clock.advance(100ms);
  far.respond(*lg, "ncrx0");
  deliver(*lg);
  EXPECT_TRUE(st.emergency.load());
  EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST(ReliableLogger, EmergencyCyclingSendsABurstPerStep) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  FakeClock clock;
  auto c = reliable_config(wire, kTarget, &clock);
  c.targets[0].reliable_tuning.emergency_after = 50ms;
  c.targets[0].reliable_tuning.emergency_pause = 10s;
  c.targets[0].reliable_tuning.resend_burst = 2;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 5; ++i) lg->log(Level::kInfo, "r{}", i);
  lg->drain();
  far.take();
  clock.advance(50ms);
  std::vector<std::vector<std::uint64_t>> steps;
  for (int i = 0; i < 4; ++i) {
    lg->drain();
    steps.push_back(seqs_of(far.take()));
  }
  EXPECT_EQ(steps, (std::vector<std::vector<std::uint64_t>>{{0, 1}, {2, 3}, {4}, {}}));
}

TEST(ReliableLogger, AFullWindowDropsTheOldestAndCountsIt) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  auto c = reliable_config(wire);
  c.targets[0].reliable_tuning.window = 4;
  c.targets[0].reliable_tuning.retransmit_holdoff = 0ms;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  const TargetStats& st = lg->target_stats(0);
  for (int i = 0; i < 10; ++i) lg->log(Level::kInfo, "r{}", i);
  lg->drain();
  EXPECT_EQ(far.take().size(), 10u);
  EXPECT_EQ(st.unacked.load(), 4u);
  EXPECT_EQ(st.window_dropped.value(), 6u);
  // 3 was forgotten; 7 is still there.
  far.respond(*lg, "ncrx2 3 7");
  deliver(*lg);
  EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{7}));
  EXPECT_EQ(st.not_in_window.value(), 1u);
  EXPECT_EQ(st.retransmitted.value(), 1u);

  // With no receiver answering, logging goes on: nothing waits for the window.
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 100; ++i) lg->log(Level::kInfo, "more {}", i);
    EXPECT_EQ(lg->drain(), 100u);
    far.take();
  }
  EXPECT_EQ(lg->ring_overflows(), 0u);
  EXPECT_EQ(st.records.value(), 2010u);
  EXPECT_EQ(st.unacked.load(), 4u);
  EXPECT_EQ(st.window_dropped.value(), 2006u);
}

TEST(ReliableLogger, AFullMailboxKeepsTheNewestAck) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  auto lg = make(reliable_config(wire));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 40; ++i) lg->log(Level::kInfo, "r{}", i);
  lg->drain();
  far.take();
  for (std::size_t i = 0; i < ResponseMailbox::kSlots + 3; ++i) far.respond(*lg, "ncrx" + std::to_string(i));
  while (lg->poll() > 0) {
  }
  const TargetStats& st = lg->target_stats(0);
  EXPECT_EQ(st.responses.value(), ResponseMailbox::kSlots + 3);
  EXPECT_EQ(st.mailbox_overflows.value(), 3u);
  lg->drain();
  EXPECT_EQ(st.acked_seq.load(), ResponseMailbox::kSlots + 2);
  EXPECT_EQ(st.unacked.load(), 40u - (ResponseMailbox::kSlots + 3));
}

TEST(ReliableLogger, CrashPathResendsUnackedRecordsOnceMarkedNcemg) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  auto lg = make(reliable_config(wire));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 5; ++i) lg->log(Level::kInfo, "r{}", i);
  lg->drain();
  far.respond(*lg, "ncrx1");
  deliver(*lg);
  const auto original = far.take();
  ASSERT_EQ(original.size(), 5u);
  lg->log(Level::kInfo, "r5");  // still in the ring when the crash comes
  lg->log(Level::kInfo, "r6");

  lg->crash_take_over(10ms);
  EXPECT_EQ(lg->crash_drain(10ms), 2u);
  lg->crash_send(Level::kEmerg, "crash record");
  EXPECT_EQ(lg->crash_resend_unacked(10ms, 1s), 3u);
  const auto got = far.take();
  // The ring, the crash record, then the unacknowledged ones (2, 3, 4; not
  // the ones the crash path sent itself: none will be acknowledged).
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(seqs_of(got), (std::vector<std::uint64_t>{5, 6, 7, 2, 3, 4}));
  for (std::size_t i = 0; i < 3; ++i) EXPECT_FALSE(parsed(got[i]).emergency);
  for (std::size_t i = 3; i < 6; ++i) {
    EXPECT_TRUE(parsed(got[i]).emergency);
    EXPECT_EQ(without_ncemg(got[i]), original[i - 1]);
  }
  EXPECT_EQ(lg->target_stats(0).emergency_sent.value(), 3u);
}

TEST(ReliableLogger, AllocatesNothingLoggingAckingRetransmittingCyclingOrCrashing) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  FakeClock clock;
  auto c = reliable_config(wire, kTarget, &clock);
  c.targets[0].sysdata = Sysdata{true, true, true, true};
  c.targets[0].reliable_tuning.emergency_after = 50ms;
  c.targets[0].reliable_tuning.retransmit_holdoff = 0ms;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  lg->log(Level::kInfo, "warm {}", 0);  // the thread's name is read once
  lg->drain();
  for (int i = 1; i < 20; ++i) lg->log(Level::kInfo, "before {}", i);
  lg->drain();
  far.take();
  // The answers are made (and put on the wire) before the guard: the far
  // end's frame building is the test's, not the logger's.
  far.respond(*lg, "ncrx5 7 9 11");
  far.respond(*lg, "ncrx8 9 11 100");
  far.respond(*lg, "garbage");

  np::testing::AllocGuard guard;
  for (int i = 0; i < 20; ++i) lg->log(Level::kInfo, "guarded {} {}", i, "text");
  lg->poll();
  const std::size_t sent = lg->drain();
  const auto during_acks = guard.stop();
  EXPECT_EQ(during_acks, 0u);
  EXPECT_EQ(sent, 20u);
  const TargetStats& st = lg->target_stats(0);
  EXPECT_EQ(st.acked_seq.load(), 8u);
  EXPECT_EQ(st.retransmitted.value(), 5u);  // 7, 9, 11, then 9 and 11 again (no holdoff)
  EXPECT_EQ(st.not_in_window.value(), 1u);
  EXPECT_EQ(st.bad_responses.value(), 1u);

  clock.advance(50ms);
  np::testing::AllocGuard guard2;
  lg->drain();  // an emergency cycle: 9..39
  lg->log(Level::kInfo, "left in the ring");
  lg->crash_take_over(10ms);
  const std::size_t drained = lg->crash_drain(10ms);
  lg->crash_send(Level::kEmerg, std::string_view("crash"));
  const std::size_t resent = lg->crash_resend_unacked(10ms, 1s);
  const auto during_crash = guard2.stop();
  EXPECT_EQ(during_crash, 0u);
  EXPECT_EQ(drained, 1u);
  EXPECT_EQ(resent, 31u);
  EXPECT_EQ(st.emergency_sent.value(), 2 * 31u);  // the cycle's and the crash path's
}

TEST(ReliableLogger, WorksWithTheSenderAndServiceThreads) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  auto c = reliable_config(wire);
  c.sender_thread = true;
  c.device.service_thread = true;
  c.targets[0].reliable_tuning.retransmit_holdoff = 0ms;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  const TargetStats& st = lg->target_stats(0);
  for (int i = 0; i < 5; ++i) lg->log(Level::kInfo, "r{}", i);
  ASSERT_TRUE(lg->flush(2s));
  EXPECT_EQ(far.take().size(), 5u);
  far.respond(*lg, "ncrx2 4");
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (st.retransmitted.value() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(st.retransmitted.value(), 1u);
  EXPECT_EQ(st.acked_seq.load(), 2u);
  ASSERT_TRUE(lg->flush(2s));
  EXPECT_EQ(seqs_of(far.take()), (std::vector<std::uint64_t>{4}));
  EXPECT_FALSE(lg->wait_acked(20ms));  // 3 and 4 are not acknowledged
  far.respond(*lg, "ncrx4");
  EXPECT_TRUE(lg->wait_acked(2s));
  EXPECT_EQ(st.unacked.load(), 0u);
  EXPECT_EQ(lg->target_client(0).shared().stats().rx_drops.total(), 0u);
}

TEST(ReliableLogger, WaitAckedPollsAndDrainsForALoggerWithoutThreads) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  auto lg = make(reliable_config(wire));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 3; ++i) lg->log(Level::kInfo, "r{}", i);
  EXPECT_FALSE(lg->wait_acked(30ms));  // sent (it drains), not acknowledged
  EXPECT_EQ(far.take().size(), 3u);
  far.respond(*lg, "ncrx2");  // waits on the wire until polled
  EXPECT_TRUE(lg->wait_acked(1s));
  EXPECT_EQ(lg->target_stats(0).unacked.load(), 0u);
}

TEST(ReliableLogger, RefusesABasicTargetAndTargetsWhoseResponsesCannotBeToldApart) {
  const auto wire = unique_wire("reliable-test");
  AnsweringFar far(wire);
  {
    auto c = reliable_config(wire, "6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02");
    auto lg = Logger::create(std::move(c));
    ASSERT_FALSE(lg);
    EXPECT_NE(lg.error().message.find("reliable mode needs the extended format ('+')"), std::string::npos)
        << lg.error().message;
  }
  {
    auto c = reliable_config(wire);
    auto second = reliable_config(wire, "+6665@10.0.0.1/DEV,7777@10.0.0.2/02:00:00:00:00:02");
    c.targets.push_back(second.targets[0]);
    auto lg = Logger::create(std::move(c));
    ASSERT_FALSE(lg);
    EXPECT_NE(lg.error().message.find("target 2"), std::string::npos) << lg.error().message;
    EXPECT_NE(lg.error().message.find("need different local ports"), std::string::npos) << lg.error().message;
  }
  {
    // Different local ports: fine; each takes the responses to its port.
    auto c = reliable_config(wire);
    auto second = reliable_config(wire, "+6667@10.0.0.1/DEV,7777@10.0.0.2/02:00:00:00:00:02");
    c.targets.push_back(second.targets[0]);
    EXPECT_TRUE(Logger::create(std::move(c)));
  }
}

}  // namespace
}  // namespace np::console
