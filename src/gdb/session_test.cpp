#include "netpoll/gdb/session.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "alloc_guard.h"
#include "test_target.h"

namespace np::gdb {
namespace {

using testing::FakeTarget;
using testing::binary_escaped;
using testing::framed;
using testing::RecordingTransport;

// gdb 13's first packet (as in wire/gdb_rsp_test.cpp).
constexpr std::string_view kQSupported =
    "qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;"
    "vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+";

struct Bench {
  Bench() {
    auto& main = target.add_thread(0x3039, "crashy");
    main.cap.regs[dump::Reg::kRax] = 0x1122334455667788;
    main.cap.regs[dump::Reg::kRip] = 0x401000;
    main.cap.regs[dump::Reg::kFsBase] = 0x7f0000001000;
    target.add_thread(0x303a, "worker<1>");
    target.stop = StopEvent{SIGSEGV, 0x3039, false};
  }
  // Feeds one packet; what the session sent back.
  std::string ask(std::string_view payload, std::int64_t now = 0) {
    const std::string f = framed(payload);
    session.feed(std::as_bytes(std::span(f.data(), f.size())), now);
    return out.take();
  }
  void feed_raw(std::string_view raw, std::int64_t now = 0) {
    session.feed(std::as_bytes(std::span(raw.data(), raw.size())), now);
  }
  FakeTarget target;
  RecordingTransport out;
  Session session{target, out};
};

TEST(GdbSession, AnswersGdbsQSupportedWithTheFeaturesItServes) {
  Bench b;
  EXPECT_EQ(b.ask(kQSupported),
            "+" + framed("PacketSize=1000;qXfer:features:read+;qXfer:threads:read+;qXfer:libraries-svr4:read+;"
                         "qXfer:auxv:read+;qXfer:exec-file:read+;vContSupported+;swbreak+"));
  // A gdb that does not offer swbreak is not told about it.
  EXPECT_EQ(b.ask("qSupported:multiprocess+"),
            "+" + framed("PacketSize=1000;qXfer:features:read+;qXfer:threads:read+;qXfer:libraries-svr4:read+;"
                         "qXfer:auxv:read+;qXfer:exec-file:read+;vContSupported+"));
}

TEST(GdbSession, StopReplyNamesGdbsSignalNumberAndTheThread) {
  Bench b;
  EXPECT_EQ(b.ask("?"), "+" + framed("T0bthread:3039;"));
  b.feed_raw("+");  // gdb has it: the same question again is a new one
  b.target.stop = StopEvent{SIGBUS, 0x303a, false};
  EXPECT_EQ(b.ask("?"), "+" + framed("T0athread:303a;"));  // SIGBUS is 10 to gdb, 7 to Linux
}

TEST(GdbSession, ReadsEveryRegisterInGdbsLayoutAndMarksUnknownOnesUnavailable) {
  Bench b;
  const std::string all = b.ask("g");
  ASSERT_EQ(all.substr(0, 2), "+$");
  const std::string hex = all.substr(2, all.size() - 5);
  ASSERT_EQ(hex.size(), 2 * kRegisterFileSize);
  EXPECT_EQ(hex.substr(0, 16), "8877665544332211");                 // rax, little-endian
  EXPECT_EQ(hex.substr(2 * 128, 16), "0010400000000000");           // rip at byte 128
  EXPECT_EQ(hex.substr(2 * 544, 16), "00100000007f0000");           // fs_base at byte 544
  b.target.threads[1].has_registers = false;
  EXPECT_EQ(b.ask("Hg303a"), "+" + framed("OK"));
  const std::string none = b.ask("g");
  EXPECT_EQ(none, "+" + framed(std::string(2 * kRegisterFileSize, 'x')));
  EXPECT_EQ(b.ask("Hg99"), "+" + framed("E01"));  // no such thread
}

TEST(GdbSession, WritesRegistersItCanResumeWithAndRefusesTheOthers) {
  Bench b;
  EXPECT_EQ(b.ask("P10=0020400000000000"), "+" + framed("OK"));  // rip
  EXPECT_EQ(b.target.threads[0].cap.regs[dump::Reg::kRip], 0x402000u);
  EXPECT_EQ(b.ask("p10"), "+" + framed("0020400000000000"));
  EXPECT_EQ(b.ask("P3a=0000000000000000"), "+" + framed("E01"));  // fs_base: the kernel's, not the frame's
  EXPECT_EQ(b.ask("P3a=00100000007f0000"), "+" + framed("OK"));   // unchanged: fine
  EXPECT_EQ(b.ask("P10=00"), "+" + framed("E01"));                // wrong size
  EXPECT_EQ(b.ask("p3c"), "+" + framed("E01"));                   // no register 60
  // G: the whole file back as g gave it, with one change.
  std::string hex = b.ask("g").substr(2, 2 * kRegisterFileSize);
  hex.replace(2 * 8, 16, "efbeadde00000000");  // rbx
  EXPECT_EQ(b.ask("G" + hex), "+" + framed("OK"));
  EXPECT_EQ(b.target.threads[0].cap.regs[dump::Reg::kRbx], 0xdeadbeefu);
  EXPECT_EQ(b.ask("G" + hex.substr(2)), "+" + framed("E01"));
}

TEST(GdbSession, ReadsAndWritesMemoryAndSaysE14WhereNothingIsMapped) {
  Bench b;
  for (std::size_t i = 0; i < b.target.memory.size(); ++i) b.target.memory[i] = static_cast<std::byte>(i);
  EXPECT_EQ(b.ask("m1000,4"), "+" + framed("00010203"));
  EXPECT_EQ(b.ask("m103e,8"), "+" + framed("3e3f"));  // short at the end of what is mapped
  EXPECT_EQ(b.ask("m2000,4"), "+" + framed("E14"));
  EXPECT_EQ(b.ask("M1001,2:abcd"), "+" + framed("OK"));
  EXPECT_EQ(b.target.memory[1], std::byte{0xab});
  EXPECT_EQ(b.target.memory[2], std::byte{0xcd});
  EXPECT_EQ(b.ask("M2000,1:00"), "+" + framed("E14"));
  EXPECT_EQ(b.ask("M1000,2:ab"), "+" + framed("E01"));  // the length says 2 bytes
  EXPECT_EQ(b.ask("m1000"), "+" + framed("E01"));
}

TEST(GdbSession, ListsThreadsWithTheirNamesEscapedForXml) {
  Bench b;
  EXPECT_EQ(b.ask("qfThreadInfo"), "+" + framed("m3039,303a"));
  EXPECT_EQ(b.ask("qsThreadInfo"), "+" + framed("l"));
  EXPECT_EQ(b.ask("qC"), "+" + framed("QC3039"));
  EXPECT_EQ(b.ask("T303a"), "+" + framed("OK"));
  EXPECT_EQ(b.ask("T1"), "+" + framed("E01"));
  EXPECT_EQ(b.ask("qXfer:threads:read::0,fff"),
            "+" + framed("l<?xml version=\"1.0\"?>\n<threads>\n<thread id=\"3039\" name=\"crashy\"/>\n"
                         "<thread id=\"303a\" name=\"worker&lt;1&gt;\"/>\n</threads>\n"));
  // In pieces: m while more follows, l for the last.
  EXPECT_EQ(b.ask("qXfer:threads:read::0,5"), "+" + framed("m<?xml"));
  EXPECT_EQ(b.ask("qXfer:threads:read::5,5"), "+" + framed("m vers"));
  EXPECT_EQ(b.ask("qXfer:threads:read::1000,5"), "+" + framed("l"));
}

TEST(GdbSession, ServesTheTargetDescriptionAndTheTargetsObjects) {
  Bench b;
  const std::string desc(target_description());
  EXPECT_EQ(b.ask("qXfer:features:read:target.xml:0,fff"), "+" + framed("l" + binary_escaped(desc)));
  EXPECT_EQ(b.ask("qXfer:features:read:other.xml:0,fff"), "+" + framed("E00"));
  b.target.exec_file = "/usr/bin/crashy";
  EXPECT_EQ(b.ask("qXfer:exec-file:read:1092:0,fff"), "+" + framed("l/usr/bin/crashy"));
  EXPECT_EQ(b.target.last_annex, "1092");
  // Binary data travels escaped: '#' (0x23) as "}\x03".
  b.target.auxv = std::string("\x21\x23\x00\x7d", 4);
  const std::string reply = b.ask("qXfer:auxv:read::0,fff");
  EXPECT_EQ(reply, "+" + framed(std::string("l\x21}\x03\x00}\x5d", 7)));
  EXPECT_EQ(b.ask("qXfer:memory-map:read::0,fff"), "+" + framed(""));
}

TEST(GdbSession, BinaryRepliesCarryNoLooseAckOrNakCharacter) {
  // A library list names libstdc++ and ld-linux-x86-64: split over
  // datagrams, a piece without its frame's start must hold no '+' (gdb,
  // waiting for an acknowledgement, would take it for one and pair its
  // next packet with a stale reply) and no '-'. Text replies keep theirs.
  Bench b;
  b.target.libraries =
      "<library-list-svr4 version=\"1.0\"><library name=\"/lib/x86_64-linux-gnu/libstdc++.so.6\" lm=\"0x1\" "
      "l_addr=\"0x7f0000000000\" l_ld=\"0x7f0000200000\"/><library name=\"/lib64/ld-linux-x86-64.so.2\" "
      "lm=\"0x2\" l_addr=\"0x0\" l_ld=\"0x0\"/></library-list-svr4>";
  const std::string reply = b.ask("qXfer:libraries-svr4:read::0,fff");
  ASSERT_EQ(reply, "+" + framed("l" + binary_escaped(b.target.libraries)));
  const std::string body = reply.substr(2, reply.size() - 5);  // between "+$" and "#cc"
  EXPECT_EQ(body.find('+'), std::string::npos) << body;
  EXPECT_EQ(body.find('-'), std::string::npos) << body;
  // gdb's unescaping gives the list back byte for byte.
  std::string data = body.substr(1);
  data.resize(wire::rsp_unescape(std::span<char>(data.data(), data.size())));
  EXPECT_EQ(data, b.target.libraries);
  // The same characters in a text reply are not escaped.
  EXPECT_NE(b.ask(kQSupported).find("read+;"), std::string::npos);
}

TEST(GdbSession, InsertsAndRemovesSoftwareBreakpointsOnly) {
  Bench b;
  EXPECT_EQ(b.ask("Z0,401136,1"), "+" + framed("OK"));
  b.feed_raw("+");
  EXPECT_EQ(b.ask("Z0,401136,1"), "+" + framed("OK"));  // again: still one
  ASSERT_EQ(b.target.breakpoints.size(), 1u);
  EXPECT_EQ(b.target.breakpoints[0], 0x401136u);
  EXPECT_EQ(b.ask("Z1,401136,1"), "+" + framed(""));  // hardware: not offered
  EXPECT_EQ(b.ask("z0,401136,1"), "+" + framed("OK"));
  EXPECT_TRUE(b.target.breakpoints.empty());
  for (int i = 0; i < 4; ++i) ASSERT_EQ(b.ask("Z0," + std::to_string(1000 + i) + ",1"), "+" + framed("OK"));
  EXPECT_EQ(b.ask("Z0,2000,1"), "+" + framed("E0e"));  // the table is full
}

TEST(GdbSession, VContResumesWithoutAReplyAndTheNextStopAnswersIt) {
  Bench b;
  b.target.stop = StopEvent{SIGTRAP, 0x3039, false};
  EXPECT_EQ(b.ask("vCont?"), "+" + framed("vCont;c;C;s;S"));
  EXPECT_EQ(b.ask("vCont;s:303a;c"), "+");
  EXPECT_EQ(b.session.state(), SessionState::kResumed);
  EXPECT_EQ(b.session.resume().step, 0x303a);
  b.target.stop = StopEvent{SIGTRAP, 0x303a, true};
  b.session.on_stop(0);
  EXPECT_EQ(b.out.take(), framed("T05thread:303a;"));  // gdb did not offer swbreak
  EXPECT_EQ(b.session.state(), SessionState::kServing);
  EXPECT_EQ(b.ask("vCont;c"), "+");
  EXPECT_EQ(b.session.resume().step, 0);
  EXPECT_EQ(b.ask("vCont;x"), "+" + framed("E01"));
}

TEST(GdbSession, AnInterruptWhileTheTargetRunsAsksForAStopThatAnswersIt) {
  Bench b;
  EXPECT_EQ(b.ask("vCont;c"), "+");
  EXPECT_FALSE(b.session.interrupt_asked());
  b.feed_raw("\x03");
  EXPECT_EQ(b.out.take(), "");  // nothing until the target stopped
  EXPECT_TRUE(b.session.interrupt_asked());
  b.target.stop = StopEvent{SIGINT, 0x3039, false};
  b.session.on_stop(0);
  EXPECT_EQ(b.out.take(), framed("T02thread:3039;"));
  EXPECT_FALSE(b.session.interrupt_asked());
  EXPECT_EQ(b.session.stats().interrupts, 1u);
}

TEST(GdbSession, TellsABreakpointStopWhenGdbOffersSwbreak) {
  Bench b;
  b.ask(kQSupported);
  b.target.stop = StopEvent{SIGTRAP, 0x3039, true};
  EXPECT_EQ(b.ask("?"), "+" + framed("T05thread:3039;swbreak:;"));
}

TEST(GdbSession, KillAndDetachEndTheSession) {
  {
    Bench b;
    EXPECT_EQ(b.ask("k"), "+");
    EXPECT_EQ(b.session.state(), SessionState::kKilled);
  }
  {
    Bench b;
    EXPECT_EQ(b.ask("vKill;1092"), "+" + framed("OK"));
    EXPECT_EQ(b.session.state(), SessionState::kKilled);
  }
  {
    Bench b;
    EXPECT_EQ(b.ask("D"), "+" + framed("OK"));
    EXPECT_EQ(b.session.state(), SessionState::kDetached);
  }
}

TEST(GdbSession, AnswersUnknownPacketsWithTheEmptyReply) {
  Bench b;
  EXPECT_EQ(b.ask("vMustReplyEmpty"), "+$#00");
  EXPECT_EQ(b.ask("qTStatus"), "+$#00");
  EXPECT_EQ(b.ask("X1000,0:"), "+$#00");
  EXPECT_EQ(b.session.stats().unsupported, 3u);
  EXPECT_EQ(b.ask("qAttached"), "+" + framed("1"));
}

TEST(GdbSession, SendsTheLastReplyAgainOnNakAndAfterTheTimeoutUntilAcknowledged) {
  Bench b;
  const std::string reply = framed("QC3039");
  EXPECT_EQ(b.ask("qC", 1000), "+" + reply);
  EXPECT_FALSE(b.session.settled());
  b.feed_raw("-", 2000);
  EXPECT_EQ(b.out.take(), reply);
  b.session.tick(2000 + 299'999'999);  // not yet
  EXPECT_EQ(b.out.take(), "");
  b.session.tick(2000 + 300'000'000);
  EXPECT_EQ(b.out.take(), reply);
  b.feed_raw("+", 400'000'000);
  EXPECT_TRUE(b.session.settled());
  b.session.tick(2'000'000'000);
  EXPECT_EQ(b.out.take(), "");
  EXPECT_EQ(b.session.stats().resends, 2u);
  EXPECT_EQ(b.session.stats().naks, 1u);
}

TEST(GdbSession, AcknowledgesAPacketInTheSameSendAsItsReply) {
  Bench b;
  b.out.sends = 0;
  EXPECT_EQ(b.ask("qC"), "+" + framed("QC3039"));
  EXPECT_EQ(b.out.sends, 1);
  EXPECT_EQ(b.ask("vCont;c"), "+");  // no reply: the '+' alone
  EXPECT_EQ(b.out.sends, 2);
}

TEST(GdbSession, ACopyOfAPacketBeforeItsReplyCouldBeAcknowledgedIsNotAnsweredAgain) {
  Bench b;
  const std::string reply = framed("QC3039");
  EXPECT_EQ(b.ask("qC", 1'000'000'000), "+" + reply);
  // Both copies waited for a slow stub: gdb gets the reply already sent;
  // a second one would answer its next packet.
  EXPECT_EQ(b.ask("qC", 1'010'000'000), "");
  EXPECT_EQ(b.session.stats().copies, 1u);
  // Later, unacknowledged: the reply was lost, gdb asks again and is served.
  EXPECT_EQ(b.ask("qC", 3'000'000'000), "+" + reply);
  // Acknowledged: the same packet again is a new question.
  b.feed_raw("+", 3'001'000'000);
  EXPECT_EQ(b.ask("qC", 3'002'000'000), "+" + reply);
  EXPECT_EQ(b.session.stats().copies, 1u);
}

TEST(GdbSession, APacketWithoutAReplyStillSettlesTheLastReply) {
  Bench b;
  EXPECT_EQ(b.ask("qC", 0), "+" + framed("QC3039"));
  // gdb's '+' for it was lost; then it continues the target.
  EXPECT_EQ(b.ask("vCont;c", 1000), "+");
  EXPECT_TRUE(b.session.settled());
  b.session.tick(2'000'000'000);
  EXPECT_EQ(b.out.take(), "") << "an old reply while gdb waits for the stop reply would be taken for it";
  EXPECT_EQ(b.session.stats().resends, 0u);
}

TEST(GdbSession, GivesUpResendingAfterItsBudget) {
  FakeTarget t;
  t.add_thread(1, "a");
  t.stop = StopEvent{SIGSEGV, 1, false};
  RecordingTransport out;
  Session s(t, out, SessionConfig{.resend_after_ns = 10, .resends = 2});
  const std::string f = framed("?");
  s.feed(std::as_bytes(std::span(f.data(), f.size())), 0);
  out.take();
  for (std::int64_t now = 10; now <= 100; now += 10) s.tick(now);
  EXPECT_EQ(out.take(), framed("T0bthread:1;") + framed("T0bthread:1;"));
  EXPECT_TRUE(s.settled());
}

TEST(GdbSession, AnswersADamagedPacketWithNakAndServesTheNextOne) {
  Bench b;
  b.feed_raw("$qC#00");
  EXPECT_EQ(b.out.take(), "-");
  EXPECT_EQ(b.ask("qC"), "+" + framed("QC3039"));
  // Longer than the buffer: dropped whole, answered '-'.
  b.feed_raw(framed(std::string(kPacketSize + 100, 'a')));
  EXPECT_EQ(b.out.take(), "-");
  EXPECT_EQ(b.session.stats().bad_packets, 2u);
  EXPECT_EQ(b.session.stats().packets, 1u);
}

TEST(GdbSession, ServesWithoutAllocating) {
  Bench b;
  b.ask(kQSupported);  // warm up the test's own strings
  const std::string g = framed("g"), x = framed("qXfer:threads:read::0,fff"), m = framed("m1000,10");
  std::string stream = g + x + m + "+-" + framed("vCont;c");
  b.out.sent.reserve(1 << 16);
  {
    np::testing::AllocGuard guard;
    b.session.feed(std::as_bytes(std::span(stream.data(), stream.size())), 5);
    b.session.tick(1'000'000'000);
  }
  EXPECT_EQ(b.session.stats().packets, 5u);
}

}  // namespace
}  // namespace np::gdb
