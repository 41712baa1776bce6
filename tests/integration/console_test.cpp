// The netconsole logger against the kernel: the six test records of
// tests/data/CAPTURES.md sent over veth reach a kernel UDP socket and socat
// exactly as Linux's own netconsole would have sent them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "net_helpers.h"
#include "netns.h"
#include "netpoll/console/logger.h"
#include "netpoll/wire/netconsole.h"

namespace np::console {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;
namespace nc = np::wire::netconsole;

const std::vector<std::string> kSixRecords = {
    "nctest: M1 short message",
    "nctest: M2 long " + std::string(972, 'y'),
    "nctest: M3 bin " + std::string(900, '\x01') + " END",
    "nctest: M4 tab[\t] backslash[\\] utf8[\xc3\xa9] semicolon[;] comma[,]",
    "nctest: M5 first line\nnctest: M5 second line",
    "nctest: M6 daemon.err message",
};

std::unique_ptr<Logger> logger_in(const Netns& ns, const std::string& target) {
  ScopedNetns in(ns);
  LoggerConfig cfg;
  TargetConfig t;
  t.target = core::parse_targets(target)->targets.at(0);
  cfg.targets.push_back(t);
  auto lg = Logger::create(std::move(cfg));
  EXPECT_TRUE(lg) << (lg ? "" : lg.error().message);
  return lg ? std::move(*lg) : nullptr;
}

void log_six(Logger& lg) {
  for (std::size_t i = 0; i < kSixRecords.size(); ++i) {
    lg.log_text(i == 5 ? Facility::kDaemon : Facility::kUser, i == 5 ? Level::kErr : Level::kInfo, kSixRecords[i]);
  }
  ASSERT_TRUE(lg.flush(3s));
}

std::string escaped(std::string_view text) {
  std::string out(nc::escaped_length(text), '\0');
  nc::escape(text, out);
  return out;
}

TEST(ConsoleOverVeth, AKernelSocketReceivesTheSixTestRecordsByteForByte) {
  VethBed bed;
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  auto lg = logger_in(bed.a, "+6665@/np0,6666@10.77.0.2/" + bed.b_mac);
  ASSERT_TRUE(lg);
  log_six(*lg);
  std::vector<std::string> got;
  std::string from;
  while (auto d = peer.receive(500ms, &from)) {
    got.emplace_back(reinterpret_cast<const char*>(d->data()), d->size());
    EXPECT_EQ(from, "10.77.0.1:6665");
  }
  ASSERT_EQ(got.size(), 1u + 2u + 4u + 1u + 1u + 1u);  // as Linux split them
  // Reassemble and compare every body with the Linux escaping of the text.
  std::vector<std::string> bodies;
  std::vector<nc::Parsed> heads;
  for (const auto& d : got) {
    auto p = nc::parse_extended(d);
    ASSERT_TRUE(p) << d;
    EXPECT_LE(d.size(), nc::kMaxDatagram);
    if (p->fragmented && p->frag_offset > 0) {
      ASSERT_EQ(p->frag_offset, bodies.back().size());
      bodies.back() += p->body;
    } else {
      bodies.emplace_back(p->body);
      heads.push_back(*p);
    }
  }
  ASSERT_EQ(bodies.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(bodies[i], escaped(kSixRecords[i]) + "\n") << "record " << i + 1;
    EXPECT_EQ(heads[i].seq, i);
  }
  EXPECT_EQ(heads[5].facility, 3);
  EXPECT_EQ(heads[5].level, 3);
  EXPECT_EQ(got[5].substr(0, 3), "14,");  // a fragment header repeats the record's
}

TEST(ConsoleOverVeth, SocatReceivesThemToo) {
  VethBed bed;
  const std::string file = "/tmp/np-socat-" + std::to_string(::getpid()) + ".bin";
  // socat writes every datagram it receives to the file, back to back.
  const std::string cmd = bed.b.exec() + "timeout 10 socat -u UDP4-RECV:6666,bind=10.77.0.2 OPEN:" + file +
                          ",creat,trunc >/dev/null 2>&1 & echo $!";
  std::string pid_text;
  ASSERT_EQ(sh(cmd, &pid_text), 0);
  std::this_thread::sleep_for(300ms);  // socat binds
  auto lg = logger_in(bed.a, "+6665@/np0,6666@10.77.0.2/" + bed.b_mac);
  ASSERT_TRUE(lg);
  log_six(*lg);
  std::this_thread::sleep_for(300ms);
  sh("kill " + pid_text + " 2>/dev/null");
  std::ifstream in(file, std::ios::binary);
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ::unlink(file.c_str());
  for (std::size_t i = 0; i < 6; ++i) {
    // Each unfragmented record's escaped text is in the stream whole.
    if (i == 1 || i == 2) continue;
    EXPECT_NE(data.find(";" + escaped(kSixRecords[i]) + "\n"), std::string::npos) << "record " << i + 1;
  }
  EXPECT_NE(data.find(",ncfrag=0/989;nctest: M2 long"), std::string::npos);
  EXPECT_NE(data.find(",ncfrag=0/3620;nctest: M3 bin \\x01"), std::string::npos);
  EXPECT_NE(data.find("27,5,"), std::string::npos);  // daemon.err, seq 5
}

}  // namespace
}  // namespace np::console
