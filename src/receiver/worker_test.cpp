// A worker on the loopback interface, in-process: what it writes to a
// source's file and to syslog, and what its statistics say.
#include "netpoll/receiver/worker.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.h"
#include "test_support.h"

namespace np::receiver {
namespace {

using namespace std::chrono_literals;
using test::LoopbackSocket;
using np::testing::TempDir;

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}


// A worker running on a thread of its own until stop().
class Running {
 public:
  // start = false: the worker's socket is open, nothing reads it until start().
  explicit Running(const Options& o, bool start = true) {
    auto w = Worker::open(0, o, shared_);
    EXPECT_TRUE(w) << (w ? "" : w.error().message);
    if (w) workers_.push_back(std::move(*w));
    if (start) this->start();
  }
  void start() {
    if (!workers_.empty()) thread_ = std::thread([this] { workers_[0]->run(); });
  }
  ~Running() { stop(); }
  Worker& worker() { return *workers_.at(0); }
  std::span<const std::unique_ptr<Worker>> workers() const { return workers_; }
  std::uint64_t records() {
    np::listen::SourceStats s;
    worker().add_totals(s);
    return s.records.value();
  }
  // Waits (bounded) until `n` records were delivered.
  bool wait_records(std::uint64_t n) {
    for (int i = 0; i < 500 && records() < n; ++i) std::this_thread::sleep_for(10ms);
    return records() >= n;
  }
  void stop() {
    shared_.stop = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  Shared shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::thread thread_;
};

Options loopback() {
  Options o;
  o.bind = "127.0.0.1";
  o.port = 0;
  o.to_stdout = false;
  return o;
}

TEST(Worker, WritesEachSourcesRecordsToItsFileAndForwardsThemToSyslog) {
  TempDir dir;
  LoopbackSocket syslog(SOCK_DGRAM);
  ASSERT_TRUE(syslog.ok());
  Options o = loopback();
  o.dir = dir.path().string();
  o.syslog = SyslogTarget{false, "127.0.0.1", syslog.port()};
  Running r(o);
  LoopbackSocket src(SOCK_DGRAM);
  ASSERT_TRUE(src.ok());
  const std::uint16_t port = r.worker().bound_port();
  ASSERT_NE(port, 0);
  ASSERT_TRUE(src.send_to(port, "30,0,100,-;first\n"));
  ASSERT_TRUE(src.send_to(port, "30,1,200,-;second\n"));
  ASSERT_TRUE(src.send_to(port, "30,3,400,-;fourth\n"));  // 2 never comes
  ASSERT_TRUE(r.wait_records(3));
  r.stop();
  const std::string file = read_file(dir.path() / ("127.0.0.1_" + std::to_string(src.port()) + ".log"));
  const std::string who = " 127.0.0.1:" + std::to_string(src.port()) + " ";
  // <time> <source> daemon.info <seq> <text>, the gap between.
  const auto lines = [&] {
    std::vector<std::string> v;
    for (std::size_t at = 0, nl; (nl = file.find('\n', at)) != std::string::npos; at = nl + 1)
      v.push_back(file.substr(at + 27, nl - at - 27));  // the time cut off
    return v;
  }();
  EXPECT_EQ(lines, (std::vector<std::string>{who + "daemon.info 0 first", who + "daemon.info 1 second",
                                             who + "gap 2..2 (1 missing)", who + "daemon.info 3 fourth"}))
      << file;
  for (const char* text : {"first", "second", "fourth"}) {
    const auto got = syslog.receive(1s);
    ASSERT_TRUE(got.has_value()) << text;
    EXPECT_EQ(got->rfind("<30>1 ", 0), 0u) << *got;
    EXPECT_EQ(got->substr(got->size() - std::strlen(text) - 1), std::string(" ") + text) << *got;
  }
  const std::string report = stats_report(r.workers(), OutputFormat::kText);
  EXPECT_EQ(report.rfind("netpoll listen: records 3, datagrams 3, fragments 0, reassembled 0, gaps 1, gap records 1, ",
                         0),
            0u)
      << report;
  EXPECT_NE(report.find("; kernel drops 0, truncated 0, sources seen 1, sources evicted 0, ncrx responses 0, "
                        "ncrx responses failed 0, output errors 0, syslog sent 3, syslog dropped 0\n"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("\n  127.0.0.1:" + std::to_string(src.port()) + ": records 3, "), std::string::npos) << report;
}

TEST(Worker, EvictsTheOldestSourceAndKeepsItsCountsInTheTotals) {
  Options o = loopback();
  o.max_sources = 1;
  o.limits.reorder_timeout = 10ms;
  Running r(o);
  const std::uint16_t port = r.worker().bound_port();
  LoopbackSocket a(SOCK_DGRAM), b(SOCK_DGRAM);
  ASSERT_TRUE(a.send_to(port, "14,0,1,-;from a\n"));
  ASSERT_TRUE(r.wait_records(1));
  ASSERT_TRUE(b.send_to(port, "14,0,1,-;from b\n"));
  ASSERT_TRUE(r.wait_records(2));
  r.stop();
  const std::string json = stats_report(r.workers(), OutputFormat::kJson);
  EXPECT_EQ(json.rfind(R"({"total":{"records":2,"datagrams":2,)", 0), 0u) << json;
  EXPECT_NE(json.find(R"("sources":2,"sources_evicted":1,)"), std::string::npos) << json;
  // Only b is still tracked.
  EXPECT_NE(json.find(R"("sources":{"127.0.0.1:)" + std::to_string(b.port()) + R"(":{"records":1,)"),
            std::string::npos)
      << json;
  EXPECT_EQ(json.find("127.0.0.1:" + std::to_string(a.port())), std::string::npos) << json;
}

TEST(Worker, CountsTheDatagramsTheKernelDroppedOnItsSocket) {
  Options o = loopback();
  o.rcvbuf = 4096;  // the kernel doubles it: a few datagrams' worth
  Running r(o, false);
  const std::uint16_t port = r.worker().bound_port();
  LoopbackSocket src(SOCK_DGRAM);
  ASSERT_TRUE(src.ok());
  constexpr int kSent = 300;  // before the worker reads any: most overflow
  for (int i = 0; i < kSent; ++i) ASSERT_TRUE(src.send_to(port, "14," + std::to_string(i) + ",1,-;burst\n"));
  r.start();
  ASSERT_TRUE(r.wait_records(1));
  std::this_thread::sleep_for(100ms);  // the socket read empty, the count read again
  const std::uint64_t mid = r.worker().stats().kernel_drops.value();
  r.stop();
  const std::uint64_t records = r.records(), drops = r.worker().stats().kernel_drops.value();
  EXPECT_GT(drops, 0u);
  EXPECT_EQ(mid, drops) << "read while running, not only at the end";
  EXPECT_EQ(records + drops, static_cast<std::uint64_t>(kSent)) << records << " records, " << drops << " drops";
  const std::string report = stats_report(r.workers(), OutputFormat::kText);
  EXPECT_NE(report.find("; kernel drops " + std::to_string(drops) + ", "), std::string::npos) << report;
}

// Output is held for fewer, larger writes, but not for the next datagram:
// a record that comes alone reaches its file while the worker waits.
TEST(Worker, WritesARecordThatComesAloneWithoutWaitingForMore) {
  TempDir dir;
  Options o = loopback();
  o.dir = dir.path().string();
  Running r(o);
  LoopbackSocket src(SOCK_DGRAM);
  ASSERT_TRUE(src.ok());
  ASSERT_TRUE(src.send_to(r.worker().bound_port(), "14,0,1,-;alone\n"));
  const auto file = dir.path() / ("127.0.0.1_" + std::to_string(src.port()) + ".log");
  std::string got;
  for (int i = 0; i < 200 && got.find(" alone\n") == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
    got = read_file(file);
  }
  EXPECT_NE(got.find(" user.info 0 alone\n"), std::string::npos) << got;
}

TEST(Worker, RefusesAnAddressThatIsNotOne) {
  Shared shared;
  Options o = loopback();
  o.bind = "localhost";
  const auto w = Worker::open(0, o, shared);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().message, "--bind 'localhost': not an IPv4 or IPv6 address");
}

}  // namespace
}  // namespace np::receiver
