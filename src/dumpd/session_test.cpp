// The protocol logic alone: datagrams in, Steps out, time passed in.
#include "netpoll/dumpd/session.h"

#include <gtest/gtest.h>

#include <limits>

#include "test_support.h"

namespace np::dumpd {
namespace {

using namespace test;

constexpr std::int64_t kSecond = 1'000'000'000;

Limits limits(std::uint64_t max_size = 1 << 20) {
  Limits l;
  l.max_size = max_size;
  l.idle_ns = 30 * kSecond;
  l.linger_ns = 2 * kSecond;
  return l;
}

// The acks a batch of numbers gets, as "first-last" (or "n" for one).
std::string acks_for(bool ranges, std::initializer_list<std::uint32_t> seqnos) {
  AckRuns runs(ranges);
  std::string out;
  const auto put = [&](const AckRun& r) {
    out += (out.empty() ? "" : " ") + std::to_string(r.first);
    if (r.last != r.first) out += "-" + std::to_string(r.last);
  };
  for (const std::uint32_t s : seqnos) {
    if (const auto r = runs.add(s)) put(*r);
  }
  if (const auto r = runs.close()) put(*r);
  return out;
}

TEST(AckRuns, APlainClientGetsOneAckPerPacket) {
  EXPECT_EQ(acks_for(false, {2, 3, 4, 9, 4}), "2 3 4 9 4");
}

TEST(AckRuns, ARangeClientGetsOneAckPerRunOfConsecutiveNumbersInArrivalOrder) {
  EXPECT_EQ(acks_for(true, {2, 3, 4, 5, 9, 10, 7, 8, 8, 11}), "2-5 9-10 7-8 8 11");
  EXPECT_EQ(acks_for(true, {}), "");
  EXPECT_EQ(acks_for(true, {42}), "42");
  EXPECT_EQ(acks_for(true, {0, 1, 2}), "0 1-2");  // a range never starts at 0
  EXPECT_EQ(acks_for(true, {0xfffffffe, 0xffffffff, 0, 1}), "4294967294-4294967295 0 1");  // nor wraps
}

TEST(AckRuns, ARunIsAtMostAWindowLong) {
  AckRuns runs(true);
  std::vector<AckRun> sent;
  for (std::uint32_t s = 1; s <= 130; ++s) {
    if (const auto r = runs.add(s)) sent.push_back(*r);
  }
  if (const auto r = runs.close()) sent.push_back(*r);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0], (AckRun{1, 64}));
  EXPECT_EQ(sent[1], (AckRun{65, 128}));
  EXPECT_EQ(sent[2], (AckRun{129, 130}));
}

TEST(CheckHerald, AcceptsAHeraldWithItsDescription) {
  auto h = check_herald(herald(1, "program=crashy\npid=42\nsize=4096\n"), limits());
  ASSERT_TRUE(h);
  EXPECT_EQ(h->seqno, 1u);
  EXPECT_EQ(h->info.program, "crashy");
  EXPECT_EQ(h->info.pid, 42u);
  EXPECT_EQ(h->info.size, 4096u);
}

TEST(CheckHerald, RefusesEachWrongDatagramByItsReason) {
  const Limits l = limits(1 << 20);
  EXPECT_EQ(check_herald(data(2, 0, "x"), l).error(), Refusal::kNoSession);
  EXPECT_EQ(check_herald(finished(2, 0), l).error(), Refusal::kNoSession);
  EXPECT_EQ(check_herald(herald(1, "pid=1\n", 2), l).error(), Refusal::kBadRevision);
  EXPECT_EQ(check_herald(herald(1, "pid=1\n", 0), l).error(), Refusal::kBadRevision);
  EXPECT_EQ(check_herald(herald(1, "pid=x\n"), l).error(), Refusal::kBadDescription);
  EXPECT_EQ(check_herald(herald(1, "size=1048577\n"), l).error(), Refusal::kSizeTooBig);
  EXPECT_TRUE(check_herald(herald(1, "size=1048576\n"), l));
  const auto h = herald(1, "pid=1\n");
  EXPECT_EQ(check_herald(std::span(h).first(4), l).error(), Refusal::kStrayAck);
  for (std::size_t n : {0, 1, 3, 5, 23}) EXPECT_EQ(check_herald(std::span(h).first(n), l).error(), Refusal::kBadLength) << n;
  EXPECT_EQ(check_herald(std::span(h).first(h.size() - 1), l).error(), Refusal::kBadLength);
  auto unknown = h;
  unknown[3] = std::byte{9};
  EXPECT_EQ(check_herald(unknown, l).error(), Refusal::kUnknownType);
}

TEST(Session, WritesDataWhereItsOffsetSaysAndAcksIt) {
  Session s(limits(), 1, 0);
  const auto d = data(2, 8192, "hello");  // the Step refers into it
  const Step st = s.receive(d, 1);
  EXPECT_EQ(st.refused, Refusal::kNone);
  EXPECT_EQ(st.offset, 8192u);
  EXPECT_EQ(as_text(st.data), "hello");
  EXPECT_TRUE(st.ack);
  EXPECT_EQ(st.ack_seqno, 2u);
  EXPECT_EQ(st.end, End::kNone);
  EXPECT_FALSE(st.duplicate);
  EXPECT_EQ(s.extent(), 8197u);
  EXPECT_EQ(s.counters().bytes, 5u);
  EXPECT_EQ(s.counters().packets, 1u);
  EXPECT_EQ(s.counters().acks, 2u);  // the herald's and this one
}

TEST(Session, AResentDataIsAckedAgainAndNotWrittenAgain) {
  Session s(limits(), 1, 0);
  (void)s.receive(data(2, 0, "aaaa"), 1);
  (void)s.receive(data(3, 4, "bbbb"), 1);
  const Step again = s.receive(data(2, 0, "aaaa"), 2);
  EXPECT_EQ(again.refused, Refusal::kNone);
  EXPECT_TRUE(again.duplicate);
  EXPECT_TRUE(again.ack);
  EXPECT_EQ(again.ack_seqno, 2u);
  EXPECT_TRUE(again.data.empty());
  EXPECT_EQ(s.counters().duplicates, 1u);
  EXPECT_EQ(s.counters().bytes, 8u);
  EXPECT_EQ(s.counters().packets, 3u);
}

TEST(Session, OutOfOrderWithHolesIsWrittenAsItComes) {
  Session s(limits(), 1, 0);
  EXPECT_EQ(s.receive(data(5, 40960, "tail"), 1).offset, 40960u);
  EXPECT_EQ(s.receive(data(3, 0, "head"), 1).offset, 0u);
  EXPECT_FALSE(s.receive(data(4, 4096, "mid"), 1).duplicate);  // below the highest, not seen
  EXPECT_TRUE(s.receive(data(3, 0, "head"), 1).duplicate);
  EXPECT_EQ(s.extent(), 40964u);
}

TEST(Session, FinishedEndsCompleteWithItsOffsetAsTheLength) {
  Session s(limits(), 1, 0);
  (void)s.receive(data(2, 0, "core"), 1);
  const Step st = s.receive(finished(3, 65536), 5 * kSecond);
  EXPECT_EQ(st.refused, Refusal::kNone);
  EXPECT_EQ(st.end, End::kComplete);
  EXPECT_EQ(st.final_size, 65536u);
  EXPECT_TRUE(st.ack);
  EXPECT_EQ(st.ack_seqno, 3u);
  EXPECT_TRUE(st.data.empty());
  EXPECT_EQ(s.state(), Session::State::kFinished);
  EXPECT_EQ(s.end(), End::kComplete);
  EXPECT_EQ(s.ended_ns(), 5 * kSecond);
}

TEST(Session, FinishedWithAux2OneIsTheClientGivingUp) {
  Session s(limits(), 1, 0);
  (void)s.receive(data(2, 0, "core"), 1);
  const Step st = s.receive(finished(3, 4096, true), 2);
  EXPECT_EQ(st.end, End::kGaveUp);
  EXPECT_TRUE(st.ack);
  EXPECT_STREQ(end_text(s.end()), "the client gave up");
}

TEST(Session, ARepeatedFinishedIsAnsweredAgainAndLaterDataRefused) {
  Session s(limits(), 1, 0);
  (void)s.receive(finished(2, 0), 1);
  const Step again = s.receive(finished(2, 0), 2);
  EXPECT_TRUE(again.ack);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.end, End::kNone);  // the file is finished once
  EXPECT_EQ(s.receive(finished(3, 0), 3).refused, Refusal::kAfterEnd);
  const Step late = s.receive(data(1, 0, "late"), 3);
  EXPECT_EQ(late.refused, Refusal::kAfterEnd);
  EXPECT_FALSE(late.ack);
  EXPECT_TRUE(late.data.empty());
}

TEST(Session, RefusesDataPastMaxSizeWithoutAckOrWrite) {
  Session s(limits(1000), 1, 0);
  EXPECT_EQ(s.receive(data(2, 995, "12345"), 1).refused, Refusal::kNone);  // ends at 1000 exactly
  for (const std::uint64_t offset : {std::uint64_t{996}, std::uint64_t{1000}, std::uint64_t{1} << 40,
                                     std::numeric_limits<std::uint64_t>::max() - 2}) {
    const Step st = s.receive(data(3, offset, "12345"), 1);
    EXPECT_EQ(st.refused, Refusal::kBeyondMaxSize) << offset;
    EXPECT_FALSE(st.ack);
    EXPECT_TRUE(st.data.empty());
  }
  EXPECT_EQ(s.receive(finished(4, 1001), 1).refused, Refusal::kBeyondMaxSize);
  EXPECT_EQ(s.counters().refused, 5u);
  EXPECT_EQ(s.counters().packets, 1u);
  // A refused number is not "seen": the same number, in bounds, is new.
  EXPECT_FALSE(s.receive(data(3, 0, "x"), 1).duplicate);
}

TEST(Session, RefusesWhatNoClientSendsToItsPort) {
  Session s(limits(), 1, 0);
  const auto d = data(2, 0, "abc");
  EXPECT_EQ(s.receive(std::span(d).first(4), 1).refused, Refusal::kStrayAck);
  EXPECT_EQ(s.receive(std::span(d).first(23), 1).refused, Refusal::kBadLength);
  EXPECT_EQ(s.receive(std::span(d).first(26), 1).refused, Refusal::kBadLength);  // len 3, 2 there
  EXPECT_EQ(s.receive(herald(9, "pid=1\n"), 1).refused, Refusal::kHeraldOnSession);
  auto unknown = d;
  unknown[3] = std::byte{4};
  EXPECT_EQ(s.receive(unknown, 1).refused, Refusal::kUnknownType);
  EXPECT_EQ(s.receive(message(dn::kFinished, 3, 0, {}, 2), 1).refused, Refusal::kBadFinished);
  EXPECT_EQ(s.state(), Session::State::kReceiving);
  EXPECT_EQ(s.counters().refused, 6u);
}

TEST(Session, ASilentClientIdlesOutAndGarbageDoesNotKeepItAlive) {
  Session s(limits(), 1, 0);
  (void)s.receive(data(2, 0, "x"), 1 * kSecond);
  EXPECT_EQ(s.deadline_ns(), 31 * kSecond);
  (void)s.receive(herald(3, ""), 20 * kSecond);  // refused: no new deadline
  EXPECT_EQ(s.deadline_ns(), 31 * kSecond);
  EXPECT_EQ(s.expire(31 * kSecond), End::kIdle);
  EXPECT_EQ(s.state(), Session::State::kClosed);
  EXPECT_EQ(s.end(), End::kIdle);
  EXPECT_EQ(s.receive(data(4, 0, "x"), 32 * kSecond).refused, Refusal::kAfterEnd);
}

TEST(Session, AFinishedSessionLingersThenClosesWithoutAnotherEnd) {
  Session s(limits(), 1, 0);
  (void)s.receive(finished(2, 0), 10 * kSecond);
  EXPECT_EQ(s.deadline_ns(), 12 * kSecond);
  EXPECT_EQ(s.expire(12 * kSecond), End::kNone);
  EXPECT_EQ(s.end(), End::kComplete);
  EXPECT_EQ(s.state(), Session::State::kClosed);
}

TEST(Session, AHeraldAgainBeforeDataIsAResendAndAfterDataARestart) {
  Session s(limits(), 1, 0);
  EXPECT_TRUE(s.herald_again(1, 5 * kSecond));
  EXPECT_EQ(s.deadline_ns(), 35 * kSecond);
  (void)s.receive(data(2, 0, "x"), 6 * kSecond);
  EXPECT_FALSE(s.herald_again(1, 7 * kSecond));
  s.abort(End::kRestarted, 7 * kSecond);
  EXPECT_EQ(s.state(), Session::State::kClosed);
  EXPECT_EQ(s.end(), End::kRestarted);
}

TEST(Session, AFailedFinishMakesAFinishedSessionPartial) {
  Session s(limits(), 1, 0);
  (void)s.receive(data(2, 0, "x"), 1);
  (void)s.receive(finished(3, 1), 1);
  s.abort(End::kWriteFailed, 2);
  EXPECT_EQ(s.end(), End::kWriteFailed);
  // Stopping the server leaves a finished one as it was.
  Session t(limits(), 1, 0);
  (void)t.receive(finished(2, 0), 1);
  t.abort(End::kStopped, 2);
  EXPECT_EQ(t.end(), End::kComplete);
}

TEST(Session, NumbersOlderThanTheWindowAreWrittenAndAckedAgain) {
  Session s(limits(), 1, 0);
  (void)s.receive(data(2, 0, "a"), 1);
  (void)s.receive(data(2 + Session::kSeqWindow, 1, "b"), 1);
  const auto d = data(2, 0, "a");
  const Step old = s.receive(d, 1);
  EXPECT_FALSE(old.duplicate);
  EXPECT_TRUE(old.out_of_window);
  EXPECT_TRUE(old.ack);
  EXPECT_EQ(as_text(old.data), "a");
  EXPECT_EQ(s.counters().out_of_window, 1u);
}

TEST(Session, AJumpForwardForgetsTheNumbersItPassed) {
  Session s(limits(), 1, 0);
  (void)s.receive(data(10, 0, "a"), 1);
  // 10 + kSeqWindow shares 10's bit: it must not pass for seen.
  EXPECT_FALSE(s.receive(data(10 + Session::kSeqWindow, 0, "a"), 1).duplicate);
  EXPECT_FALSE(s.receive(data(10 + 3 * Session::kSeqWindow + 5, 0, "a"), 1).duplicate);
  EXPECT_FALSE(s.receive(data(10 + 3 * Session::kSeqWindow + 4, 0, "a"), 1).duplicate);
  EXPECT_TRUE(s.receive(data(10 + 3 * Session::kSeqWindow + 4, 0, "a"), 1).duplicate);
}

TEST(Session, AnEmptyDataIsAckedAndWritesNothing) {
  Session s(limits(), 1, 0);
  const Step st = s.receive(data(2, 500, ""), 1);
  EXPECT_TRUE(st.ack);
  EXPECT_TRUE(st.data.empty());
  EXPECT_EQ(s.extent(), 0u);
}

}  // namespace
}  // namespace np::dumpd
