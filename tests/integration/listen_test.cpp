// netpoll listen as operators run it: a separate process, real sockets in
// namespaces the test makes, real senders (the Linux captures replayed,
// netpoll console and run), and a real rsyslog downstream.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "listener.h"
#include "net_helpers.h"
#include "netns.h"
#include "netpoll/wire/netconsole.h"
#include "pcap_reader.h"

namespace np::tools {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;
namespace nc = np::wire::netconsole;

// --- the Linux captures, replayed over a real socket -----------------------

TEST(Listen, ReplayedLinuxCapturesComeOutAsTheKernelWroteThem) {
  Netns ns("listen");
  TempDir dir;
  const auto ext = read_udp_pcap(test_data("linux-6.1-netconsole-ext.pcap"));
  const auto plain = read_udp_pcap(test_data("linux-6.1-netconsole-plain.pcap"));
  ASSERT_EQ(ext.size(), 352u);
  Listener l(ns, {"--bind", "127.0.0.1", "--format", "json", "--workers", "2", "--timeout", "3"}, dir);
  UdpSocket ext_src(ns, "127.0.0.1", 6665), plain_src(ns, "127.0.0.1", 6667);
  for (const auto& d : ext) ASSERT_TRUE(ext_src.send_to("127.0.0.1", 6666, as_bytes(d.payload)));
  for (const auto& d : plain) ASSERT_TRUE(plain_src.send_to("127.0.0.1", 6666, as_bytes(d.payload)));
  EXPECT_EQ(WEXITSTATUS(l.wait()), 0);
  const std::string out = l.out();
  // 352 datagrams: M2 in 2 fragments and M3 in 4, so 348 records.
  EXPECT_EQ(count_of(out, "\"source\":\"127.0.0.1:6665\",\"format\":\"extended\""), 348u) << l.err();
  // The six test records (tests/data/CAPTURES.md): number, priority, text
  // with its escapes undone (here JSON-escaped again), fragments.
  const auto record_line = [&](std::uint64_t seq) {
    const auto at = out.find("\"seq\":" + std::to_string(seq) + ",");
    return at == std::string::npos ? std::string() : out.substr(at, out.find('\n', at) - at);
  };
  const auto text_of = [](const std::string& line) {
    const auto b = line.find("\"text\":\"") + 8;
    return line.substr(b, line.find("\",\"fragments\":") - b);
  };
  struct Want {
    std::uint64_t seq;
    std::string priority, text;
    int fragments;
  };
  const Want wants[] = {
      {357, "user\",\"level\":\"info", "nctest: M1 short message", 1},
      {359, "user\",\"level\":\"info", "nctest: M3 bin " + [] {
         std::string s;
         for (int i = 0; i < 900; ++i) s += "\\u0001";
         return s;
       }() + " END", 4},
      {360, "user\",\"level\":\"info", "nctest: M4 tab[\\t] backslash[\\\\] utf8[\xc3\xa9] semicolon[;] comma[,]", 1},
      {361, "user\",\"level\":\"info", "nctest: M5 first line\\nnctest: M5 second line", 1},
      {362, "daemon\",\"level\":\"err", "nctest: M6 daemon.err message", 1},
  };
  for (const Want& w : wants) {
    const std::string line = record_line(w.seq);
    EXPECT_NE(line.find("\"facility\":\"" + w.priority + "\""), std::string::npos) << line;
    EXPECT_EQ(text_of(line), w.text) << w.seq;
    EXPECT_NE(line.find("\"fragments\":" + std::to_string(w.fragments) + ","), std::string::npos) << line;
  }
  // M2: a 992-byte line (its newline and the kernel's prefix aside, 988
  // bytes of text) in two fragments.
  const std::string m2 = record_line(358);
  EXPECT_NE(m2.find("\"facility\":\"user\",\"level\":\"info\""), std::string::npos) << m2;
  EXPECT_EQ(text_of(m2).size(), 988u);
  EXPECT_EQ(text_of(m2).rfind("nctest: M2 long 0000-abcdefghijklmno0001-", 0), 0u);
  EXPECT_EQ(text_of(m2).substr(988 - 12), "XXXXXXXX END");
  EXPECT_NE(m2.find("\"fragments\":2,"), std::string::npos);
  EXPECT_NE(out.find("\"dictionary\":{\"SUBSYSTEM\":\"acpi\",\"DEVICE\":\"+acpi:PNP0A03:00\"}"), std::string::npos);
  // Every boot record the kernel sent with dictionary lines has them as fields.
  std::size_t with_dictionary = 0;
  for (const auto& d : ext) with_dictionary += d.payload.find("\n SUBSYSTEM=") != std::string::npos ? 1 : 0;
  EXPECT_GT(with_dictionary, 10u);
  EXPECT_EQ(count_of(out, "\"dictionary\":{\"SUBSYSTEM\":"), with_dictionary);
  EXPECT_NE(out.find("\"event\":\"gap\""), std::string::npos);  // records the kernel filtered by level
  // The plain capture: console lines, the long M2 line joined again.
  EXPECT_NE(out.find("\"source\":\"127.0.0.1:6667\",\"format\":\"basic\""), std::string::npos);
  EXPECT_NE(out.find("nctest: M2 long 0000-abcdefghijklmno"), std::string::npos);
  EXPECT_NE(out.find("jklmnoXXXXXXXX END\""), std::string::npos);
  EXPECT_EQ(count_of(out, "XXXXXXXX END"), 2u);  // once from each capture, each whole
  const std::string err = l.err();
  EXPECT_NE(err.find("malformed 0"), std::string::npos) << err;
}

// Issue 11: bytes that are not UTF-8 (the kernel's 80 9f a0 fe ff) came
// out of --format json as U+FFFD, lost. jq reads every line, and the
// exact bytes come back from text_base64 (dictionary_base64 for a
// dictionary value) with nothing but jq and base64(1).
TEST(Listen, JsonGivesEveryByteBackToJqAndBase64) {
  Netns ns("listen");
  TempDir dir;
  Listener l(ns, {"--bind", "127.0.0.1", "--format", "json", "--timeout", "2"}, dir);
  UdpSocket src(ns, "127.0.0.1", 6665);
  // As Linux writes them: bytes < 0x20, >= 0x7f and '\' escaped as \xHH.
  ASSERT_TRUE(src.send_to("127.0.0.1", 6666,
                          as_bytes("14,0,1,-;bad[\\x80\\x9f\\xa0\\xfe\\xff] text[\\x5cx80] tab[\\x09]\n"
                                   " DEVICE=+pci:\\xfe\\xff\n")));
  ASSERT_TRUE(src.send_to("127.0.0.1", 6666, as_bytes("14,1,2,-;plain \\xc3\\xa9 text\n")));
  l.wait();
  const std::string json = (dir.path() / "stdout").string();
  ASSERT_EQ(count_of(l.out(), "\n"), 2u) << l.out() << l.err();
  std::string out;
  EXPECT_EQ(sh("jq -e -c '{seq, text}' " + json, &out), 0) << out;
  EXPECT_EQ(out,
            "{\"seq\":0,\"text\":\"bad[\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd] text[\\\\x80] "
            "tab[\\t]\"}\n{\"seq\":1,\"text\":\"plain \xc3\xa9 text\"}\n");
  EXPECT_EQ(sh("jq -j 'select(.seq == 0) | .text_base64' " + json + " | base64 -d", &out), 0);
  EXPECT_EQ(out, "bad[\x80\x9f\xa0\xfe\xff] text[\\x80] tab[\t]");
  EXPECT_EQ(sh("jq -j 'select(.seq == 0) | .dictionary_base64[0] | map(@base64d) | .[0]' " + json, &out), 0);
  EXPECT_EQ(out, "DEVICE");
  EXPECT_EQ(sh("jq -j 'select(.seq == 0) | .dictionary_base64[0][1]' " + json + " | base64 -d", &out), 0);
  EXPECT_EQ(out, "+pci:\xfe\xff");
  // A record that is valid UTF-8 has no companion: "text" is exact.
  EXPECT_EQ(sh("jq -j 'select(.seq == 1) | has(\"text_base64\"), \" \", .text' " + json, &out), 0);
  EXPECT_EQ(out, "false plain \xc3\xa9 text");
  // The README's way back to a record's bytes, for either.
  for (const auto& [seq, bytes] : {std::pair<std::string, std::string>{"0", "bad[\x80\x9f\xa0\xfe\xff] text[\\x80] tab[\t]"},
                                   {"1", "plain \xc3\xa9 text"}}) {
    EXPECT_EQ(sh("jq -r 'select(.seq == " + seq + ") | .text_base64 // (.text | @base64)' " + json + " | base64 -d",
                 &out),
              0);
    EXPECT_EQ(out, bytes) << seq;
  }
}

// --- our own senders ------------------------------------------------------------

class ListenOverVeth : public ::testing::Test {
 protected:
  VethBed bed;
  TempDir dir;
};

TEST_F(ListenOverVeth, ReceivesNetpollConsoleInBothFormatsAndNetpollRun) {
  Listener l(bed.b, {"--bind", "10.77.0.2", "--format", "json", "--timeout", "4"}, dir);
  ASSERT_TRUE(sh_ok("printf 'extended one\\nextended two\\n' | " + netpoll_in(bed.a) +
                    " console --quiet --facility local3 --level notice --userdata host=web --sysdata msgid "
                    "'+6665@/np0,6666@10.77.0.2/" + bed.b_mac + "'"));
  ASSERT_TRUE(sh_ok("printf 'basic line\\n' | " + netpoll_in(bed.a) + " console --quiet '6668@/np0,6666@10.77.0.2/" +
                    bed.b_mac + "'"));
  sh(netpoll_in(bed.a) + " run --quiet --no-echo '+6669@/np0,6666@10.77.0.2/" + bed.b_mac +
     "' -- sh -c 'echo before the crash; kill -SEGV $$'");
  l.wait();
  const std::string out = l.out();
  EXPECT_NE(out.find("\"source\":\"10.77.0.1:6665\",\"format\":\"extended\",\"seq\":0,\"facility\":\"local3\","
                     "\"level\":\"notice\""),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\"text\":\"extended two\""), std::string::npos);
  EXPECT_NE(out.find("\"userdata\":{\"host\":\"web\"},\"sysdata\":{\"msgid\":\"1\"}"), std::string::npos) << out;
  EXPECT_NE(out.find("\"source\":\"10.77.0.1:6668\",\"format\":\"basic\""), std::string::npos);
  EXPECT_NE(out.find("\"text\":\"basic line\""), std::string::npos);
  EXPECT_NE(out.find("\"source\":\"10.77.0.1:6669\""), std::string::npos);
  EXPECT_NE(out.find("\"text\":\"before the crash\""), std::string::npos);
  EXPECT_NE(out.find("\"level\":\"emerg\""), std::string::npos);
  EXPECT_NE(out.find("\"text\":\"crashed: SIGSEGV (SI_USER"), std::string::npos) << out;
}

TEST_F(ListenOverVeth, OneFilePerSourceInText) {
  Listener l(bed.b, {"--bind", "10.77.0.2", "--dir", (dir.path() / "logs").string(), "--timeout", "3"}, dir);
  for (const std::string port : {"6665", "6670"}) {
    ASSERT_TRUE(sh_ok("echo from " + port + " | " + netpoll_in(bed.a) + " console --quiet '+" + port +
                      "@/np0,6666@10.77.0.2/" + bed.b_mac + "'"));
  }
  l.wait();
  EXPECT_EQ(l.out(), "");  // nothing on stdout with --dir
  const std::string a = read_file(dir.path() / "logs" / "10.77.0.1_6665.log");
  const std::string b = read_file(dir.path() / "logs" / "10.77.0.1_6670.log");
  EXPECT_NE(a.find(" 10.77.0.1:6665 user.info 0 from 6665\n"), std::string::npos) << a;
  EXPECT_NE(b.find(" 10.77.0.1:6670 user.info 0 from 6670\n"), std::string::npos) << b;
  EXPECT_EQ(a.find("from 6670"), std::string::npos);
}

// Two senders from one source, one after the other: the second goes on
// with the first one's numbers, so a receiver that keys streams by address
// (netpoll listen, netconsd) sees one stream: nothing stale, no reset.
TEST_F(ListenOverVeth, TwoConsoleRunsBackToBackAreOneStream) {
  Listener l(bed.b, {"--bind", "10.77.0.2", "--format", "json", "--timeout", "4", "--stats-format", "json"}, dir);
  const std::string target = "'+6665@/np0,6666@10.77.0.2/" + bed.b_mac + "'";
  ASSERT_TRUE(sh_ok("seq 1 5 | sed 's/^/first /' | " + netpoll_in(bed.a) + " console --quiet --sysdata msgid " +
                    target));
  ASSERT_TRUE(sh_ok("seq 1 5 | sed 's/^/second /' | " + netpoll_in(bed.a) + " console --quiet --sysdata msgid " +
                    target));
  l.wait();
  const std::string out = l.out();
  std::size_t at = 0;
  int seq = 0;
  for (const std::string run : {"first", "second"}) {
    for (int i = 1; i <= 5; ++i, ++seq) {
      const std::string rec = "\"seq\":" + std::to_string(seq) + ",";
      const std::string text = "\"text\":\"" + run + " " + std::to_string(i) + "\"";
      const auto r = out.find(rec, at);
      ASSERT_NE(r, std::string::npos) << rec << " " << text << "\n" << out;
      const auto t = out.find(text, r);
      ASSERT_NE(t, std::string::npos) << text << "\n" << out;
      EXPECT_LT(t, out.find('\n', r)) << text << " is not in the record numbered " << seq;
      EXPECT_NE(out.find("\"msgid\":\"" + std::to_string(seq) + "\"", r), std::string::npos);
      at = t;
    }
  }
  const std::string err = l.err();
  EXPECT_NE(err.find("\"resets\":0,"), std::string::npos) << err;
  EXPECT_NE(err.find("\"stale\":0,"), std::string::npos) << err;
  EXPECT_NE(err.find("\"gaps\":0,"), std::string::npos) << err;
}

// --new-stream numbers from 0 again: the receiver sees what a rebooted
// kernel's numbers look like.
TEST_F(ListenOverVeth, ANewStreamIsAReset) {
  Listener l(bed.b, {"--bind", "10.77.0.2", "--format", "json", "--timeout", "3", "--stats-format", "json"}, dir);
  const std::string target = "'+6671@/np0,6666@10.77.0.2/" + bed.b_mac + "'";
  ASSERT_TRUE(sh_ok("seq 1 5 | " + netpoll_in(bed.a) + " console --quiet " + target));
  ASSERT_TRUE(sh_ok("seq 6 8 | " + netpoll_in(bed.a) + " console --quiet --new-stream " + target));
  l.wait();
  EXPECT_NE(l.err().find("\"resets\":1,"), std::string::npos) << l.err();
  EXPECT_NE(l.err().find("\"records\":8,"), std::string::npos) << l.err();
  EXPECT_NE(l.out().find("\"text\":\"8\""), std::string::npos) << l.out();
}

// --- long lines ---------------------------------------------------------------------

// A JSON string value of listen's output, from the '"' after `key` on:
// the escapes base/json.h writes undone (\uXXXX only for controls there).
std::string json_text(const std::string& line, const std::string& key) {
  const auto begin = line.find("\"" + key + "\":\"");
  if (begin == std::string::npos) return "<no " + key + ">";
  std::string out;
  for (std::size_t i = begin + key.size() + 4; i < line.size() && line[i] != '"'; ++i) {
    if (line[i] != '\\') {
      out += line[i];
      continue;
    }
    const char e = line[++i];
    switch (e) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'u': out += static_cast<char>(std::stoi(line.substr(i + 1, 4), nullptr, 16)); i += 4; break;
      default: out += e;  // " \ /
    }
  }
  return out;
}

// A line of `size` bytes made of `unit` repeated and cut at a unit's end,
// then '.' to the size: whole characters only.
std::string line_of(std::size_t size, const std::string& unit) {
  std::string s;
  while (s.size() + unit.size() <= size) s += unit;
  return s + std::string(size - s.size(), '.');
}

// Stack traces and JSON payloads are long lines: a 3000-byte line arrives
// as one record (in fragments), a 70,000-byte one as records flagged 'c'
// then '+' (listen shows each with "continuation":true) that rejoin into
// it exactly; every record within 8191 bytes, the most netconsd takes. In
// the basic format the line's bytes all arrive, in order.
TEST_F(ListenOverVeth, LongLinesArriveWholeOrAsContinuationRecordsThatRejoinExactly) {
  Listener l(bed.b, {"--bind", "10.77.0.2", "--format", "json", "--timeout", "6"}, dir);
  const std::vector<std::string> lines = {
      "before",
      line_of(3000, "at handler(\"caf\xc3\xa9\") in C:\\srv\\app.cpp:42 | "),
      line_of(70000, "{\"n\":12345,\"s\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"p\":\"C:\\\\tmp\",\"t\":\"\t\"},"),
      "after",
  };
  std::string input;
  for (const auto& line : lines) input += line + "\n";
  std::ofstream(dir.path() / "input", std::ios::binary) << input;
  std::string sent;
  ASSERT_EQ(sh(netpoll_in(bed.a) + " console --stats '+6665@/np0,6666@10.77.0.2/" + bed.b_mac + "' < " +
                   (dir.path() / "input").string() + " 2>&1",
               &sent),
            0)
      << sent;
  ASSERT_TRUE(sh_ok(netpoll_in(bed.a) + " console --quiet '6668@/np0,6666@10.77.0.2/" + bed.b_mac + "' < " +
                    (dir.path() / "input").string()));
  l.wait();
  const std::string out = l.out();
  // Extended records in order, a run of continuation records joined into
  // one line ('c' then '+': listen marks both "continuation"; the input has
  // one such line, so runs cannot touch).
  std::vector<std::string> got;
  std::vector<std::string> record_lines;
  std::size_t continued = 0;
  bool joining = false;
  std::string basic;
  for (std::size_t at = 0, nl; (nl = out.find('\n', at)) != std::string::npos; at = nl + 1) {
    const std::string line = out.substr(at, nl - at);
    const std::string text = json_text(line, "text");
    if (line.find("\"source\":\"10.77.0.1:6668\",\"format\":\"basic\"") != std::string::npos) basic += text;
    const std::string head = "\"source\":\"10.77.0.1:6665\",\"format\":\"extended\",\"seq\":" +
                             std::to_string(record_lines.size()) + ",";
    if (line.find(head) == std::string::npos) continue;
    record_lines.push_back(line);
    EXPECT_LE(nc::escaped_length(text) + 1, nc::kMaxBody) << "record " << record_lines.size() - 1;
    const bool continuation = line.find("\"continuation\":true") != std::string::npos;
    continued += continuation ? 1 : 0;
    if (continuation && joining) {
      got.back() += text;
    } else {
      got.push_back(text);
    }
    joining = continuation;
  }
  ASSERT_EQ(got.size(), lines.size()) << l.err();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_TRUE(got[i] == lines[i]) << "line " << i << ": " << got[i].size() << " bytes of " << lines[i].size();
  }
  // The 3000-byte line: one record (number 1), in fragments.
  ASSERT_GE(record_lines.size(), 4u);
  EXPECT_NE(record_lines[1].find("\"continuation\":false"), std::string::npos) << record_lines[1];
  EXPECT_EQ(record_lines[1].find("\"fragments\":1,"), std::string::npos) << record_lines[1];
  // The 70,000-byte line is every other record: the others are one each.
  EXPECT_EQ(record_lines.size(), 3 + continued);
  EXPECT_GT(continued, 8u);  // more than 8190 bytes a record
  EXPECT_NE(sent.find("\"truncated\":0,\"continued\":" + std::to_string(continued) + ","), std::string::npos) << sent;
  // Basic: no flags to join by; every byte, in order.
  std::string all;
  for (const auto& line : lines) all += line;
  EXPECT_TRUE(basic == all) << basic.size() << " bytes of " << all.size();
}

// --- reliable mode under loss ------------------------------------------------------

TEST_F(ListenOverVeth, ReliableModeDeliversEveryRecordOnceInOrderUnder20PercentLoss) {
  // 20% of the records into b are dropped, and every other ncrx response
  // into a (the listener answers only a handful of times in a run: a random
  // loss of them could as well drop none).
  lose_udp_each_way(bed, 20, "", "udp sport 6666 numgen inc mod 2 0");
  // More records than the sender's retransmit window, so the window's
  // limits are part of the test; the listener runs until the sender has had
  // every record acknowledged (its last answers may be lost too).
  constexpr int kRecords = 2000;
  Listener l(bed.b, {"--bind", "10.77.0.2", "--ack", "--timeout", "90"}, dir);
  std::string lines;
  for (int i = 0; i < kRecords; ++i) lines += "reliable record " + std::to_string(i) + "\n";
  std::ofstream(dir.path() / "input") << lines;
  std::string sender_out;
  const int rc = sh(netpoll_in(bed.a) + " console --reliable --linger 60 --stats '+6665@/np0,6666@10.77.0.2/" +
                        bed.b_mac + "' < " + (dir.path() / "input").string() + " 2>&1",
                    &sender_out);
  EXPECT_EQ(rc, 0) << sender_out;
  EXPECT_NE(sender_out.find("\"acked_seq\":1999,\"unacked\":0,"), std::string::npos) << sender_out;
  EXPECT_NE(sender_out.find("\"window_dropped\":0,"), std::string::npos) << sender_out;
  l.stop();
  expect_each_once_in_order(l.out(), kRecords, "reliable record", l.err());
  // Loss was real: records came again, duplicates were answered.
  const std::string err = l.err();
  EXPECT_NE(err.find("records 2000, "), std::string::npos) << err;
  EXPECT_NE(err.find(", late 0, "), std::string::npos) << err;  // none out of order
  EXPECT_EQ(err.find("ncrx responses 0,"), std::string::npos) << err;  // it did answer
  EXPECT_EQ(sender_out.find("\"retransmitted\":0,"), std::string::npos) << sender_out;
  EXPECT_NE(err.find(", resets 0, "), std::string::npos) << err;
  expect_losses_each_way(bed);
}

// --- a real syslog server downstream --------------------------------------------------

TEST_F(ListenOverVeth, ForwardsRfc5424ToRsyslogOverUdpAndTcp) {
  const auto rs = dir.path() / "rsyslog";
  std::filesystem::create_directories(rs);
  std::ofstream(rs / "rsyslog.conf") << "global(workDirectory=\"" << rs.string() << "\")\n"
                                     << "module(load=\"imudp\")\ninput(type=\"imudp\" port=\"1514\")\n"
                                     << "module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"1514\")\n"
                                     << "action(type=\"omfile\" file=\"" << (rs / "out.log").string()
                                     << "\" template=\"RSYSLOG_SyslogProtocol23Format\")\n";
  ASSERT_TRUE(sh_ok(bed.b.exec() + "rsyslogd -n -f " + (rs / "rsyslog.conf").string() + " -i " +
                    (rs / "pid").string() + " > " + (rs / "log").string() + " 2>&1 &"));
  struct Killer {
    std::filesystem::path pid;
    ~Killer() { sh("kill $(cat " + pid.string() + ") 2>/dev/null"); }
  } killer{rs / "pid"};
  // rsyslog opens its ports (bounded wait).
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    ready = sh(bed.b.exec() + "sh -c \"ss -ltn | grep -q ':1514 ' && ss -lun | grep -q ':1514 '\"") == 0;
    if (!ready) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(ready) << read_file(rs / "log");
  for (const std::string proto : {"udp", "tcp"}) {
    Listener l(bed.b, {"--bind", "10.77.0.2", "--syslog", proto + "://127.0.0.1:1514", "--timeout", "2"}, dir);
    ASSERT_TRUE(sh_ok("echo forwarded over " + proto + " | " + netpoll_in(bed.a) +
                      " console --quiet --facility daemon --level warning '+6665@/np0,6666@10.77.0.2/" + bed.b_mac +
                      "'"));
    l.wait();
    EXPECT_NE(l.err().find(", syslog sent 1, syslog dropped 0\n"), std::string::npos) << l.err();
  }
  std::string log;
  for (int i = 0; i < 100 && count_of(log = read_file(rs / "out.log"), "forwarded over") < 2; ++i)
    std::this_thread::sleep_for(20ms);
  // <28> = daemon.warning; host = the source; our structured data.
  EXPECT_NE(log.find("<28>1 "), std::string::npos) << log;
  EXPECT_NE(log.find(" 10.77.0.1 netconsole - - [netconsole@32473 seq=\"0\" ts=\""), std::string::npos) << log;
  EXPECT_NE(log.find("forwarded over udp"), std::string::npos) << log;
  EXPECT_NE(log.find("forwarded over tcp"), std::string::npos) << log;
}

// --- statistics, bad input, limits, IPv6 -------------------------------------------------

TEST(Listen, PrintsStatisticsOnSigusr1AndAsJsonAtExit) {
  Netns ns("listen");
  TempDir dir;
  Listener l(ns, {"--bind", "127.0.0.1", "--stats-format", "json", "--timeout", "3"}, dir);
  UdpSocket src(ns, "127.0.0.1", 6665);
  ASSERT_TRUE(src.send_to("127.0.0.1", 6666, as_bytes("14,0,1,-;hello\n")));
  // A fragment total of 0: malformed.
  ASSERT_TRUE(src.send_to("127.0.0.1", 6666, as_bytes("14,1,2,-,ncfrag=0/0;bad fragment\n")));
  std::this_thread::sleep_for(800ms);  // past the start hold (--reorder-timeout, 500 ms)
  l.signal(SIGUSR1);
  std::this_thread::sleep_for(200ms);
  l.wait();
  const std::string err = l.err();
  // Once on SIGUSR1, once at exit.
  EXPECT_EQ(count_of(err, "{\"total\":{\"records\":1,\"datagrams\":2,"), 2u) << err;
  EXPECT_EQ(count_of(l.out(), "user.info 0 hello\n"), 1u) << l.out();
  EXPECT_NE(err.find("\"malformed\":1"), std::string::npos) << err;
  EXPECT_NE(err.find("\"sources\":{\"127.0.0.1:6665\":{\"records\":1,"), std::string::npos) << err;
}

TEST(Listen, BoundedUnderHostileInputAndEvictsTheOldestSource) {
  Netns ns("listen");
  TempDir dir;
  Listener l(ns, {"--bind", "127.0.0.1", "--max-sources", "2", "--workers", "1", "--timeout", "3"}, dir);
  std::vector<std::unique_ptr<UdpSocket>> sources;
  for (int i = 0; i < 5; ++i) {
    sources.push_back(std::make_unique<UdpSocket>(ns, "127.0.0.1", 7000 + i));
    ASSERT_TRUE(sources.back()->send_to("127.0.0.1", 6666, as_bytes("14," + std::to_string(i) + ",1,-;from " +
                                                                      std::to_string(7000 + i) + "\n")));
  }
  // Garbage of every kind from the newest source: a fragment whose record
  // never completes, a priority out of range, binary noise (console text to
  // a receiver), a fragment total beyond any record.
  for (const std::string& bad : std::vector<std::string>{"14,5,2,-,ncfrag=0/2;x", "999,6,2,-;x",
                                                         std::string("\x00\xff\x01", 3),
                                                         "14,7,2,-,ncfrag=0/99999999;x"}) {
    ASSERT_TRUE(sources[4]->send_to("127.0.0.1", 6666, as_bytes(bad)));
  }
  l.wait();
  const std::string err = l.err();
  EXPECT_NE(err.find("netpoll listen: records 6, datagrams 9, fragments 2, "), std::string::npos) << err;
  EXPECT_NE(err.find(", malformed 2, "), std::string::npos) << err;
  EXPECT_NE(err.find("; kernel drops 0, truncated 0, sources seen 5, sources evicted 3, "), std::string::npos) << err;
  // The finer reasons are in the text too: the fragment that never completed.
  EXPECT_NE(err.find(", incomplete 1, over memory 0, pushed 0, fields dropped 0, basic cut 0; "), std::string::npos)
      << err;
  EXPECT_TRUE(WIFEXITED(l.stop()));
  const std::string out = l.out();
  for (int i = 0; i < 5; ++i) EXPECT_NE(out.find("from " + std::to_string(7000 + i) + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find(" 127.0.0.1:7004 user.info - \\x00\\xff\\x01\n"), std::string::npos) << out;
  EXPECT_NE(out.find(" 127.0.0.1:7004 user.info 4 from 7004\n"), std::string::npos) << out;
  EXPECT_NE(out.find(" 127.0.0.1:7004 gap 5..5 (1 lost)\n"), std::string::npos) << out;  // seen in part
}

TEST(Listen, RefusesAPortAnotherReceiverHolds) {
  Netns ns("listen");
  TempDir dir, dir2;
  Listener first(ns, {"--bind", "127.0.0.1", "--timeout", "3"}, dir);
  // SO_REUSEPORT would have let it share the port (and half the sources).
  Listener second(ns, {"--bind", "127.0.0.1", "--timeout", "3"}, dir2);
  EXPECT_EQ(WEXITSTATUS(second.wait(3000ms)), 1);
  EXPECT_EQ(second.err(), "netpoll listen: cannot listen on 127.0.0.1 port 6666: Address already in use\n");
  UdpSocket src(ns, "127.0.0.1", 6665);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(src.send_to("127.0.0.1", 6666, as_bytes("14," + std::to_string(i) + ",1,-;r\n")));
  first.wait();
  EXPECT_NE(first.err().find("netpoll listen: records 20, "), std::string::npos) << first.err();
}

TEST(Listen, ReceivesOverIpv6) {
  Netns ns("listen");
  TempDir dir;
  Listener l(ns, {"--timeout", "2"}, dir);  // default: "::", IPv6 and IPv4
  std::string out;
  ASSERT_EQ(sh(ns.exec() + "sh -c 'echo \"14,0,1,-;over ipv6\" | socat -u - UDP6-SENDTO:[::1]:6666'", &out), 0) << out;
  ASSERT_EQ(sh(ns.exec() + "sh -c 'echo \"14,0,1,-;over ipv4\" | socat -u - UDP4-SENDTO:127.0.0.1:6666'", &out), 0)
      << out;
  l.wait();
  EXPECT_NE(l.out().find(" [::1]:"), std::string::npos) << l.out();
  EXPECT_NE(l.out().find("user.info 0 over ipv6"), std::string::npos) << l.out();
  EXPECT_NE(l.out().find(" 127.0.0.1:"), std::string::npos);
  EXPECT_NE(l.out().find("user.info 0 over ipv4"), std::string::npos);
}

}  // namespace
}  // namespace np::tools
