// The netconsole logger over the in-memory wire: the far end is a plain
// device whose frames are parsed with wire/ (Ethernet, IPv4, UDP, then the
// netconsole format), so every assertion is on what crosses the wire.
#include "netpoll/console/logger.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "alloc_guard.h"
#include "net_helpers.h"
#include "netpoll/dev/open.h"
#include "netpoll/wire/netconsole.h"
#include "pcap_reader.h"
#include "test_support.h"
#include "testing.h"

namespace np::console {
namespace {

using namespace std::chrono_literals;
namespace nc = np::wire::netconsole;

// The receiving end of the wire.
class Far {
 public:
  // The far end's receive ring holds `slots` frames (tests read it at the end).
  explicit Far(const std::string& wire, std::size_t slots = 4096) {
    auto d = dev::open_device("pair:" + wire + "?mac=02:00:00:00:00:02&slots=" + std::to_string(slots));
    EXPECT_TRUE(d) << (d ? "" : d.error().message);
    dev_ = std::move(*d);
  }
  // Every UDP payload that arrived, in order, with its destination port.
  std::vector<std::string> take(std::uint16_t port = 0) {
    dev_->receive(100000, [&](std::span<const std::byte> f) {
      auto u = np::testing::parse_udp(f);
      if (!u) return;
      got_.push_back({u->dst_port, std::string(reinterpret_cast<const char*>(u->payload.data()), u->payload.size())});
    });
    std::vector<std::string> out;
    for (const auto& [p, d] : got_) {
      if (port == 0 || p == port) out.push_back(d);
    }
    return out;
  }

 private:
  std::unique_ptr<dev::Device> dev_;
  std::vector<std::pair<std::uint16_t, std::string>> got_;
};

TargetConfig target(const std::string& text) {
  auto t = core::parse_targets(text);
  EXPECT_TRUE(t) << (t ? "" : t.error().message);
  TargetConfig tc;
  tc.target = t->targets.at(0);
  return tc;
}

LoggerConfig config(const std::string& wire, std::vector<std::string> targets) {
  LoggerConfig c;
  for (auto& t : targets) {
    const auto at = t.find("DEV");
    if (at != std::string::npos) t.replace(at, 3, "pair:" + wire);
    c.targets.push_back(target(t));
  }
  c.sender_thread = false;  // tests drain by hand: deterministic
  c.release = "6.1.0-test";
  c.device.service_thread = false;
  return c;
}

// Reassembles a list of extended datagrams into (header of first, body) per
// record, checking the fragment rules on the way.
struct Message {
  nc::Parsed first;
  std::string body;
  std::size_t datagrams = 0;
};
std::vector<Message> reassemble(const std::vector<std::string>& datagrams) {
  std::vector<Message> out;
  for (const auto& d : datagrams) {
    EXPECT_LE(d.size(), nc::kMaxDatagram);
    const auto p = parsed(d);
    if (p.fragmented && p.frag_offset > 0) {
      EXPECT_FALSE(out.empty());
      if (out.empty()) continue;
      EXPECT_EQ(out.back().first.seq, p.seq);
      EXPECT_EQ(p.frag_offset, out.back().body.size()) << "fragments must follow each other";
      EXPECT_EQ(p.frag_total, out.back().first.frag_total);
      out.back().body += p.body;
      ++out.back().datagrams;
      continue;
    }
    if (p.fragmented) {
      EXPECT_EQ(p.frag_offset, 0u);
    }
    out.push_back({p, std::string(p.body), 1});
  }
  for (const auto& m : out) {
    if (m.first.fragmented) {
      EXPECT_EQ(m.body.size(), m.first.frag_total) << "offset + length == total ends it";
    }
  }
  return out;
}

TEST(Logger, SendsExtendedRecordsWithHeaderFieldsAndEscapedText) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto lg = make(config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"}));
  ASSERT_TRUE(lg);
  lg->log(Level::kWarning, "disk {} is {}% full", "sda", 93);
  lg->log(Facility::kDaemon, Level::kErr, "tab\there");
  EXPECT_EQ(lg->drain(), 2u);
  const auto got = far.take();
  ASSERT_EQ(got.size(), 2u);
  const auto a = parsed(got[0]);
  EXPECT_EQ(a.facility, 1);  // user
  EXPECT_EQ(a.level, 4);
  EXPECT_EQ(a.seq, 0u);
  EXPECT_FALSE(a.continuation);
  EXPECT_EQ(a.body, "disk sda is 93% full\n");
  EXPECT_EQ(got[0].substr(0, 5), "12,0,");
  const auto b = parsed(got[1]);
  EXPECT_EQ(b.seq, 1u);
  EXPECT_EQ(got[1].substr(0, 5), "27,1,");  // daemon.err, as Linux's <27>
  EXPECT_EQ(b.body, "tab\\x09here\n");
  // The timestamp is microseconds since boot, like the kernel's.
  timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  const std::uint64_t now_us = static_cast<std::uint64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
  EXPECT_LE(a.timestamp_us, now_us);
  EXPECT_GT(a.timestamp_us + 10'000'000, now_us);
  EXPECT_EQ(lg->target_stats(0).records.value(), 2u);
  EXPECT_EQ(lg->target_stats(0).datagrams.value(), 2u);
}

// The six test records of tests/data/CAPTURES.md, sent by our logger: the
// bodies are byte-identical to what Linux sent, and our fragments follow
// its rules (offsets and totals in body bytes, cuts inside escapes allowed,
// every datagram at most 1000 bytes).
TEST(Logger, TheSixTestRecordsMatchTheLinuxCapture) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto lg = make(config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"}));
  ASSERT_TRUE(lg);
  // The kernel's bodies of the same records, from the capture.
  std::map<std::uint64_t, std::string> kernel;
  std::vector<std::string> kernel_datagrams;
  for (const auto& d : np::testing::read_udp_pcap(np::testing::test_data("linux-6.1-netconsole-ext.pcap"))) {
    if (d.payload.find("nctest: ") != std::string::npos || d.payload.rfind("14,35", 0) == 0 ||
        d.payload.rfind("14,36", 0) == 0 || d.payload.rfind("27,36", 0) == 0) {
      kernel_datagrams.push_back(d.payload);
    }
  }
  const auto linux_msgs = reassemble(kernel_datagrams);
  std::vector<const Message*> tests;
  for (const auto& m : linux_msgs) {
    if (m.body.rfind("nctest: ", 0) == 0) tests.push_back(&m);
  }
  ASSERT_EQ(tests.size(), 6u);

  const std::string m2(988 - 16, 'z');  // the length of Linux's M2 text, our own letters
  lg->log(Level::kInfo, "nctest: M1 short message");
  lg->log_text(Facility::kUser, Level::kInfo, "nctest: M2 long " + m2);
  lg->log_text(Facility::kUser, Level::kInfo, "nctest: M3 bin " + std::string(900, '\x01') + " END");
  lg->log(Level::kInfo, "nctest: M4 tab[\t] backslash[\\] utf8[\xc3\xa9] semicolon[;] comma[,]");
  lg->log(Level::kInfo, "nctest: M5 first line\nnctest: M5 second line");
  lg->log(Facility::kDaemon, Level::kErr, "nctest: M6 daemon.err message");
  EXPECT_EQ(lg->drain(), 6u);
  const auto ours = reassemble(far.take());
  ASSERT_EQ(ours.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    SCOPED_TRACE("record M" + std::to_string(i + 1));
    EXPECT_EQ(ours[i].first.facility, tests[i]->first.facility);
    EXPECT_EQ(ours[i].first.level, tests[i]->first.level);
    EXPECT_EQ(ours[i].first.fragmented, tests[i]->first.fragmented);
    EXPECT_EQ(ours[i].datagrams, tests[i]->datagrams);
    if (i == 1) {
      // Same length and shape; the letters of the long line are ours.
      EXPECT_EQ(ours[i].body.size(), tests[i]->body.size());
      EXPECT_EQ(ours[i].first.frag_total, tests[i]->first.frag_total);
    } else {
      EXPECT_EQ(ours[i].body, tests[i]->body);
      EXPECT_EQ(ours[i].first.frag_total, tests[i]->first.frag_total);
    }
  }
  EXPECT_EQ(ours[1].first.frag_total, 989u);   // 988 text bytes + '\n'
  EXPECT_EQ(ours[2].first.frag_total, 3620u);  // 900 x "\x01" escaped
  EXPECT_EQ(ours[4].body, "nctest: M5 first line\\x0anctest: M5 second line\n");
}

TEST(Logger, BasicFormatSendsTheTextCutAt1000Bytes) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto c = config(wire, {"6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
  c.max_text = 2048;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  lg->log(Level::kInfo, "short line");
  lg->log_text(Facility::kUser, Level::kInfo, std::string(1500, 'b'));
  lg->drain();
  const auto got = far.take();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "short line\n");
  EXPECT_EQ(got[1], std::string(1000, 'b'));
  EXPECT_EQ(got[2], std::string(500, 'b') + "\n");
}

TEST(Logger, ReleaseUserdataAndSysdataInLinuxOrder) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto c = config(wire, {"+r6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
  c.targets[0].userdata = {{"host", "web-7"}, {"dc", "east"}};
  c.targets[0].sysdata = Sysdata{true, true, true, true};
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  std::thread([&] {
    pthread_setname_np(pthread_self(), "worker-3");
    lg->log(Level::kInfo, "hello");
  }).join();
  lg->log(Level::kInfo, "again");
  lg->drain();
  const auto got = far.take();
  ASSERT_EQ(got.size(), 2u);
  const auto p = parsed(got[0]);
  EXPECT_EQ(p.release, "6.1.0-test");
  EXPECT_EQ(got[0].rfind("6.1.0-test,14,0,", 0), 0u);
  const std::string body(p.body);
  const auto cpu_at = body.find(" cpu=");
  ASSERT_NE(cpu_at, std::string::npos);
  EXPECT_EQ(body.substr(0, cpu_at), "hello\n host=web-7\n dc=east\n");
  const auto rest = body.substr(body.find('\n', cpu_at) + 1);
  EXPECT_EQ(rest, " taskname=worker-3\n release=6.1.0-test\n msgid=0\n");
  EXPECT_NE(std::string(parsed(got[1]).body).find(" msgid=1\n"), std::string::npos);
}

TEST(Logger, MsgidIsPerTargetAndWrapsAt32Bits) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto c = config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02",
                         "+6665@10.0.0.1/DEV,7777@10.0.0.2/02:00:00:00:00:02"});
  std::atomic<std::uint32_t> msgids[2];
  msgids[0] = 0xffffffffu;
  msgids[1] = 5;
  c.shared_msgid = msgids;
  for (auto& t : c.targets) t.sysdata.msgid = true;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  lg->log(Level::kInfo, "a");
  lg->log(Level::kInfo, "b");
  lg->drain();
  const auto first = far.take(6666);
  const auto second = far.take(7777);
  ASSERT_EQ(first.size(), 2u);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(parsed(first[0]).body, "a\n msgid=4294967295\n");
  EXPECT_EQ(parsed(first[1]).body, "b\n msgid=0\n");
  EXPECT_EQ(parsed(second[0]).body, "a\n msgid=5\n");
  EXPECT_EQ(parsed(second[1]).body, "b\n msgid=6\n");
}

TEST(Logger, RingOverflowIsCountedAndLeavesASequenceGap) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto c = config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
  c.ring_records = 4;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 6; ++i) lg->log(Level::kInfo, "r{}", i);  // r4, r5 find the ring full
  EXPECT_EQ(lg->ring_overflows(), 2u);
  lg->drain();
  lg->log(Level::kInfo, "after");
  lg->drain();
  std::vector<std::uint64_t> seqs;
  std::vector<std::string> bodies;
  for (const auto& d : far.take()) {
    seqs.push_back(parsed(d).seq);
    bodies.emplace_back(parsed(d).body);
  }
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{0, 1, 2, 3, 6}));
  EXPECT_EQ(bodies.back(), "after\n");
}

TEST(Logger, RateLimitDropsCountsAndLeavesAGap) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto c = config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02",
                         "+6665@10.0.0.1/DEV,7777@10.0.0.2/02:00:00:00:00:02"});
  c.targets[0].rate = RateLimit{std::chrono::seconds(60), 3};  // 3 now, then one per 20 s
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 10; ++i) lg->log(Level::kInfo, "m{}", i);
  lg->drain();
  const auto limited = far.take(6666);
  const auto free = far.take(7777);
  EXPECT_EQ(limited.size(), 3u);
  EXPECT_EQ(free.size(), 10u);  // the limit is per target
  EXPECT_EQ(lg->target_stats(0).dropped.value(), 7u);
  EXPECT_EQ(lg->target_stats(0).records.value(), 3u);
  EXPECT_EQ(lg->target_stats(1).dropped.value(), 0u);
  // The crash path bypasses it.
  lg->crash_send(Level::kEmerg, "crash record");
  const auto after = far.take(6666);
  ASSERT_EQ(after.size(), 4u);
  EXPECT_EQ(parsed(after[3]).body, "crash record\n");
  EXPECT_EQ(parsed(after[3]).level, 0);
  EXPECT_EQ(parsed(after[3]).seq, 10u);
}

TEST(Logger, CutsTooLongTextAndCountsIt) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto c = config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
  c.max_text = 16;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  lg->log(Level::kInfo, "{}", "0123456789abcdefXYZ");
  lg->drain();
  const auto got = far.take();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(parsed(got[0]).body, "0123456789abcdef\n");
  EXPECT_EQ(lg->stats().truncated.value(), 1u);
}

// log() formats in place: a text longer than the slot is cut, and not
// inside a character (é's first byte is the slot's last).
TEST(Logger, LogCutsBetweenCharacters) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto c = config(wire, {"6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
  c.max_text = 16;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  lg->log(Level::kInfo, "{}", "0123456789abcde\xc3\xa9");
  lg->drain();
  EXPECT_EQ(far.take(), (std::vector<std::string>{"0123456789abcde\n"}));
  EXPECT_EQ(lg->stats().truncated.value(), 1u);
}

// log_text() sends a text longer than max_text whole, in several records:
// the first flagged 'c', the others '+', cut where piece_length() says
// (here before é, whose escaped bytes would not fit).
TEST(Logger, ALongTextGoesAsContinuationRecordsCutBetweenCharacters) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto c = config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
  c.max_text = 32;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  const std::string first = "0123456789012345678901234567890";  // 31 bytes, then é would take 8
  lg->log_text(Facility::kUser, Level::kInfo, first + "\xc3\xa9" + "tail" + std::string(30, 'z'));
  lg->log_text(Facility::kUser, Level::kInfo, "next");
  EXPECT_EQ(lg->drain(), 4u);
  const auto got = far.take();
  ASSERT_EQ(got.size(), 4u);
  struct Want {
    const char* flag;
    std::string body;
  };
  const Want wants[] = {{",c;", first + "\n"},
                        {",+;", "\\xc3\\xa9tail" + std::string(20, 'z') + "\n"},  // 8 + 4 + 20 = 32
                        {",+;", std::string(10, 'z') + "\n"},
                        {",-;", "next\n"}};
  for (std::size_t i = 0; i < got.size(); ++i) {
    const auto p = parsed(got[i]);
    EXPECT_EQ(p.seq, i);
    EXPECT_NE(got[i].find(wants[i].flag), std::string::npos) << got[i];
    EXPECT_EQ(p.body, wants[i].body);
  }
  EXPECT_EQ(lg->stats().continued.value(), 3u);
  EXPECT_EQ(lg->stats().truncated.value(), 0u);
  EXPECT_NE(lg->stats_json().find("\"truncated\":0,\"continued\":3"), std::string::npos) << lg->stats_json();
}

// By default a record's body stays within kMaxBody, the most netconsd
// takes: 8190 bytes of text and the newline, less what userdata and
// sysdata take; a longer line is several records that join into it.
TEST(Logger, RecordsStayWithinWhatNetconsdTakesByDefault) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto lg = make(config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"}));
  ASSERT_TRUE(lg);
  EXPECT_EQ(lg->max_text(), 8190u);
  lg->log_text(Facility::kUser, Level::kInfo, std::string(8190, 'x'));
  lg->log_text(Facility::kUser, Level::kInfo, std::string(8191, 'y'));
  lg->drain();
  const auto got = reassemble(far.take());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].body, std::string(8190, 'x') + "\n");
  EXPECT_EQ(got[0].body.size(), nc::kMaxBody);
  EXPECT_EQ(got[0].datagrams, 9u);  // in 1000-byte fragments, as Linux sends it
  EXPECT_FALSE(got[0].first.continuation);
  EXPECT_EQ(got[1].body, std::string(8190, 'y') + "\n");
  EXPECT_TRUE(got[1].first.continuation && !got[1].first.follows);
  EXPECT_EQ(got[2].body, "y\n");
  EXPECT_TRUE(got[2].first.continuation && got[2].first.follows);

  // Userdata and sysdata take their room; text that is sent escaped counts
  // four a byte.
  const auto wire2 = unique_wire("logger-test");
  Far far2(wire2);
  auto c = config(wire2, {"+r6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
  c.targets[0].userdata = {{"host", "web-7"}};
  c.targets[0].sysdata = Sysdata{true, true, true, true};
  auto lg2 = make(std::move(c));
  ASSERT_TRUE(lg2);
  EXPECT_EQ(lg2->max_text(), 8191u - (1 + 12 + 16 + 27 + (9 + 10 + 1) + 18));  // " host=web-7\n", sysdata lines
  std::string line;
  for (int i = 0; line.size() < 70000; ++i) line += "frame " + std::to_string(i) + " \"caf\xc3\xa9\" \\ \xe2\x82\xac\t";
  lg2->log_text(Facility::kUser, Level::kInfo, line);
  lg2->drain();
  const auto pieces = reassemble(far2.take());
  ASSERT_GT(pieces.size(), 9u);
  EXPECT_EQ(lg2->stats().continued.value(), pieces.size());
  std::string joined;
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_LE(pieces[i].body.size(), nc::kMaxBody) << i;
    EXPECT_TRUE(pieces[i].first.continuation);
    EXPECT_EQ(pieces[i].first.follows, i > 0);
    const std::string text = pieces[i].body.substr(0, pieces[i].body.find('\n'));
    std::string raw(text.size(), '\0');
    raw.resize(nc::unescape(text, raw));
    joined += raw;
  }
  EXPECT_EQ(joined, line);
}

// The basic format has no header to flag pieces with: each goes without
// its newline, so the datagrams are the line and one newline, as if it had
// been one record.
TEST(Logger, BasicFormatSendsALongLineAsOneStreamOfText) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto lg = make(config(wire, {"6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"}));
  ASSERT_TRUE(lg);
  std::string line;
  for (int i = 0; line.size() < 20000; ++i) line += "b" + std::to_string(i) + " \xc3\xa9 ";
  lg->log_text(Facility::kUser, Level::kInfo, line);
  lg->log_text(Facility::kUser, Level::kInfo, "next");
  lg->drain();
  std::string stream;
  for (const auto& d : far.take()) {
    EXPECT_LE(d.size(), nc::kMaxDatagram);
    stream += d;
  }
  EXPECT_EQ(stream, line + "\nnext\n");
  EXPECT_GE(lg->stats().continued.value(), 3u);  // é counts four: fewer than 8190 bytes a record
}

// A rate-limited target takes or drops a line in several records whole:
// its first record takes the token.
TEST(Logger, RateLimitLetsALineInSeveralRecordsThroughWhole) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto c = config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
  c.targets[0].rate = RateLimit{std::chrono::hours(1), 1};
  c.max_text = 16;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  lg->log_text(Facility::kUser, Level::kInfo, std::string(40, 'a'));
  lg->log_text(Facility::kUser, Level::kInfo, std::string(40, 'b'));
  lg->drain();
  const auto got = far.take();
  ASSERT_EQ(got.size(), 3u);
  for (const auto& d : got) EXPECT_EQ(parsed(d).body.substr(0, 1), "a");
  EXPECT_EQ(lg->target_stats(0).dropped.value(), 3u);
}

TEST(Logger, RefusesBadUserdataNamingTheTarget) {
  const auto wire = unique_wire("logger-test");
  auto c = config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
  c.targets[0].userdata = {{std::string(54, 'k'), "v"}};
  auto lg = Logger::create(std::move(c));
  ASSERT_FALSE(lg);
  EXPECT_EQ(lg.error().message, "netconsole: target 1 '+6665@10.0.0.1/pair:" + wire +
                                    ",6666@10.0.0.2/02:00:00:00:00:02': userdata key '" + std::string(54, 'k') +
                                    "' must be 1..53 bytes without '=', space or newline");
}

TEST(Logger, LogAllocatesNothing) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto lg = make(config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"}));
  ASSERT_TRUE(lg);
  lg->log(Level::kInfo, "warm {}", 1);  // the thread's name is read once
  lg->drain();
  const std::string_view sv = "a string view";
  np::testing::AllocGuard guard;
  for (int i = 0; i < 50; ++i) {
    lg->log(Level::kInfo, "int {} neg {} float {:.3f} str {} sv {} ptr {} hex {:#x}", i, -i, 3.14159, "text", sv,
            static_cast<const void*>(&guard), 255);
    lg->log_text(Facility::kUser, Level::kDebug, "plain text");
  }
  const std::size_t sent = lg->drain();
  const auto allocations = guard.stop();
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(sent, 100u);
  const auto got = far.take();
  ASSERT_EQ(got.size(), 101u);
  EXPECT_EQ(parsed(got[1]).body, "int 0 neg 0 float 3.142 str text sv a string view ptr " +
                                     fmt::format("{}", static_cast<const void*>(&guard)) + " hex 0xff\n");
}

// netpoll run's pump waits for ring room instead of dropping: it sleeps
// while the ring is full and wakes once the sender has freed slots.
TEST(Logger, WaitForRoomSleepsWhileTheRingIsFullAndWakesWhenItDrains) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto c = config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
  c.ring_records = 8;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  EXPECT_TRUE(lg->wait_for_room(8, 0ms)) << "an empty ring has room at once";
  for (int i = 0; i < 8; ++i) lg->log(Level::kInfo, "r{}", i);
  const auto before = std::chrono::steady_clock::now();
  EXPECT_FALSE(lg->wait_for_room(1, 30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - before, 30ms) << "it waited for the timeout";
  std::atomic<bool> woke{false};
  std::thread waiter([&] { woke = lg->wait_for_room(8, 10s); });
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(woke.load()) << "still full";
  EXPECT_EQ(lg->drain(), 8u);
  waiter.join();
  EXPECT_TRUE(woke.load());
  EXPECT_EQ(lg->ring_overflows(), 0u);
  EXPECT_EQ(far.take().size(), 8u);
}

// With the sender thread: a producer that waits for room whenever the ring
// is full loses nothing, however small the ring.
TEST(Logger, AProducerThatWaitsForRoomLosesNothing) {
  const auto wire = unique_wire("logger-test");
  Far far(wire, 8192);
  auto c = config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
  c.ring_records = 16;
  c.sender_thread = true;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 5000; ++i) {
    if (lg->pending() >= lg->ring_records()) {
      ASSERT_TRUE(lg->wait_for_room(1, 10s));
    }
    lg->log(Level::kInfo, "m{}", i);
  }
  ASSERT_TRUE(lg->flush(10s));
  EXPECT_EQ(lg->ring_overflows(), 0u);
  const auto got = far.take();
  ASSERT_EQ(got.size(), 5000u);
  EXPECT_EQ(parsed(got[4999]).body, "m4999\n");
}

TEST(Logger, SenderThreadDeliversAndFlushWaitsForIt) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto c = config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
  c.sender_thread = true;
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) lg->log(Level::kInfo, "t{} m{}", t, i);
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(lg->flush(5s));
  const auto got = far.take();
  EXPECT_EQ(got.size() + lg->ring_overflows(), 800u);
  // Sequence numbers go up by one, or jump where the ring overflowed.
  std::uint64_t expected = 0;
  for (const auto& d : got) {
    const auto s = parsed(d).seq;
    EXPECT_GE(s, expected);
    expected = s + 1;
  }
  EXPECT_EQ(expected, 800u);
}

}  // namespace
}  // namespace np::console

namespace np::console {
namespace {

TEST(Logger, CrashPathEntryPointsAllocateNothing) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto c = config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
  c.targets[0].sysdata = Sysdata{true, true, true, true};
  auto lg = make(std::move(c));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 10; ++i) lg->log(Level::kInfo, "before the crash {}", i);
  std::string report(3000, 'r');  // a crash record that fragments
  np::testing::AllocGuard guard;
  lg->crash_take_over(std::chrono::milliseconds(10));
  const std::size_t drained = lg->crash_drain(std::chrono::milliseconds(10));
  lg->crash_send(Level::kEmerg, report);
  const auto allocations = guard.stop();
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(drained, 10u);
  const auto got = far.take();
  ASSERT_EQ(got.size(), 10u + 4u);
  EXPECT_EQ(parsed(got.back()).seq, 10u);
  EXPECT_EQ(parsed(got[10]).level, 0);
}

// The crash path takes over while the sender thread is sending: whichever
// of the two numbers a record, it is numbered once. Every record arrives
// (a resend under the same number is allowed), the numbers have no gap and
// the crash record comes right after the last one. Rounds, because the
// moment of the take-over falls at a different step each time.
TEST(Logger, ACrashDuringSendingNumbersEachRecordOnce) {
  constexpr int kRounds = 40;
  constexpr int kRecords = 64;
  for (int round = 0; round < kRounds; ++round) {
    const auto wire = unique_wire("logger-test");
    Far far(wire);
    auto c = config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
    c.sender_thread = true;
    auto lg = make(std::move(c));
    ASSERT_TRUE(lg);
    for (int i = 0; i < kRecords; ++i) lg->log(Level::kInfo, "r{}", i);
    // Let the sender get a varying way into the ring first.
    for (int spin = 0; spin < round * 200; ++spin) __builtin_ia32_pause();
    lg->crash_take_over(std::chrono::milliseconds(10));
    lg->crash_drain(std::chrono::milliseconds(10));
    lg->crash_send(Level::kEmerg, "the crash");
    std::map<std::uint64_t, std::string> by_seq;
    for (const auto& d : far.take()) {
      const auto p = parsed(d);
      const auto [at, fresh] = by_seq.emplace(p.seq, std::string(p.body));
      if (!fresh) {
        EXPECT_EQ(at->second, p.body) << "round " << round << ": seq " << p.seq << " given twice";
      }
    }
    ASSERT_EQ(by_seq.size(), static_cast<std::size_t>(kRecords + 1)) << "round " << round;
    std::uint64_t expected = 0;
    for (const auto& [seq, body] : by_seq) {
      EXPECT_EQ(seq, expected) << "round " << round << ": a gap";
      const std::string want = (seq < kRecords ? "r" + std::to_string(seq) : "the crash") + "\n";
      EXPECT_EQ(body, want) << "round " << round;
      ++expected;
    }
  }
}

// The same moment, made certain: a sender thread caught between taking
// ticket 0's number and noting it. The crash path waits for the note and
// sends the record under that number; a sender that never finishes costs
// a gap (a number given to nothing), never a number given twice; and once
// the crash has begun the sender takes no number at all.
std::vector<std::uint64_t> seqs_of(Far& far) {
  std::vector<std::uint64_t> out;
  for (const auto& d : far.take()) out.push_back(parsed(d).seq);
  return out;
}

TEST(Logger, ACrashWaitsForTheNumberASenderIsNoting) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto lg = make(config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"}));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 3; ++i) lg->log(Level::kInfo, "r{}", i);
  LoggerTesting::NumberingPause sender(*lg, 0);
  std::atomic<bool> begun{false};
  std::thread t([&] {
    begun = sender.begin();
    std::this_thread::sleep_for(20ms);
    sender.finish();
  });
  while (!begun) std::this_thread::yield();
  lg->crash_take_over(10ms);
  EXPECT_EQ(lg->crash_drain(2s), 3u);
  lg->crash_send(Level::kEmerg, "the crash");
  t.join();
  EXPECT_EQ(seqs_of(far), (std::vector<std::uint64_t>{0, 1, 2, 3}));
}

TEST(Logger, ASenderThatNeverNotesItsNumberCostsAGapNotADuplicate) {
  const auto wire = unique_wire("logger-test");
  Far far(wire);
  auto lg = make(config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"}));
  ASSERT_TRUE(lg);
  for (int i = 0; i < 3; ++i) lg->log(Level::kInfo, "r{}", i);
  LoggerTesting::NumberingPause sender(*lg, 0);
  bool begun = false;
  std::thread t([&] { begun = sender.begin(); });
  t.join();  // a thread that stopped for good between the steps
  ASSERT_TRUE(begun);
  lg->crash_take_over(10ms);
  EXPECT_EQ(lg->crash_drain(20ms), 3u);
  lg->crash_send(Level::kEmerg, "the crash");
  EXPECT_EQ(seqs_of(far), (std::vector<std::uint64_t>{1, 2, 3, 4}));
  sender.finish();  // it lets go at last: still no number for a sender now
  LoggerTesting::NumberingPause late(*lg, 3);
  std::thread t2([&] { begun = late.begin(); });
  t2.join();
  EXPECT_FALSE(begun) << "no number for the sender once the crash has begun";
}

// A device with no room (the far end reads slowly, its ring holds 16
// frames) makes the sender wait instead of losing records: every record
// arrives, in order, and none is counted as a transmit error.
TEST(Logger, ADeviceWithoutRoomSlowsTheSenderInsteadOfLosingRecords) {
  const std::string wire = unique_wire("logger-test");
  Far far(wire, 16);
  LoggerConfig c = config(wire, {"+6665@10.0.0.1/DEV,6666@10.0.0.2/02:00:00:00:00:02"});
  c.sender_thread = true;
  c.device.service_thread = true;  // it sends what the device's queue holds
  auto lg = make(std::move(c));
  ASSERT_NE(lg, nullptr);
  constexpr int kRecords = 300;
  for (int i = 0; i < kRecords; ++i) lg->log(Level::kInfo, "record {}", i);
  std::vector<std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.size() < static_cast<std::size_t>(kRecords) && std::chrono::steady_clock::now() < deadline) {
    got = far.take();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a slow reader
  }
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) {
    EXPECT_EQ(parsed(got[static_cast<std::size_t>(i)]).body, "record " + std::to_string(i) + "\n");
  }
  EXPECT_EQ(lg->target_stats(0).tx_errors.value(), 0u);
  EXPECT_EQ(lg->target_stats(0).records.value(), static_cast<std::uint64_t>(kRecords));
}

}  // namespace
}  // namespace np::console
