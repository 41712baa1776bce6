// netpoll console as users run it, against receivers that do not keep up
// with it: one that never acknowledges reliable mode (a plain UDP socket,
// as a plain receiver or netconsd itself is), and one whose small socket
// buffer is read slowly. Over veth between two namespaces, the kernel's
// own counters as the judge.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net_helpers.h"
#include "netns.h"
#include "netpoll/base/clock.h"

namespace np::tools {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;

// A file of `n` lines, "<prefix> <i>", removed with the object.
class Input {
 public:
  Input(const std::string& prefix, int n)
      : path_("/tmp/np-console-flow-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++)) {
    std::ofstream out(path_);
    for (int i = 0; i < n; ++i) out << prefix << ' ' << i << '\n';
  }
  ~Input() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

// What a run of netpoll console did: exit status, stderr, how long it took.
struct Ran {
  int status = -1;
  std::string err;
  std::chrono::milliseconds took{0};
};

// `netpoll console ARGS TARGET < input` in `ns`, ended by timeout(1) after
// `limit` (status 124) should it never end on its own.
Ran console_in(const Netns& ns, const std::string& args, const std::string& target, const Input& input,
               int limit_s = 20) {
  Ran r;
  const auto start = std::chrono::steady_clock::now();
  r.status = sh(ns.exec() + "timeout " + std::to_string(limit_s) + " " + NP_NETPOLL_BIN + " console " + args + " '" +
                    target + "' < " + input.path() + " 2>&1",
                &r.err);
  r.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  return r;
}

class ConsoleFlow : public ::testing::Test {
 protected:
  std::string target() const { return "+6665@/np0,6666@10.77.0.2/" + bed.b_mac; }
  VethBed bed;
};

// --- reliable mode against a receiver that never answers ---------------------

// Every record once, in order of number, with its line: "<prefix> <seq>".
void expect_every_line(const std::map<std::uint64_t, ConsoleRecord>& got, const std::string& prefix, int n) {
  EXPECT_EQ(got.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto it = got.find(static_cast<std::uint64_t>(i));
    ASSERT_NE(it, got.end()) << "record " << i << " never arrived";
    EXPECT_EQ(it->second.text, prefix + " " + std::to_string(i));
  }
}

TEST_F(ConsoleFlow, ReliableToASilentReceiverSaysSoWithinAckWaitAndDeliversEveryLine) {
  // More lines than the retransmit window (1024): the reader used to stop
  // at a full window and wait for ever.
  constexpr int kLines = 1100;
  UdpSocket silent(bed.b, bed.b_ip, 6666);
  DatagramCollector collector(silent);
  const Input input("silent", kLines);
  const Ran r = console_in(bed.a, "--reliable", target(), input);
  const auto got = parse_records(collector.finish());

  EXPECT_EQ(r.status, 1) << r.err;  // not acknowledged
  // The documented rule: no acknowledgement within 3 s (--ack-wait's
  // default) of the first record, then plain sending.
  EXPECT_GE(r.took, 3s);
  EXPECT_LT(r.took, 8s) << r.err;
  EXPECT_NE(r.err.find("netpoll console: no acknowledgement from 10.77.0.2:6666 within 3.0 s of the first record: "
                       "nothing there answers reliable mode (netpoll listen --ack does, and so does a receiver "
                       "built on netconsd's ncrx library; netconsd itself does not); sending without "
                       "acknowledgements from now on\n"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("netpoll console: 1100 records sent without acknowledgement\n"), std::string::npos) << r.err;
  expect_every_line(got, "silent", kLines);
}

TEST_F(ConsoleFlow, ReliableTwentyLinesWithTheDefaultLingerAllReachASilentReceiver) {
  // The start handshake holds every record but the first until the
  // receiver answers; the linger (2 s) ends before --ack-wait (3 s), and
  // the held records go out then, once.
  UdpSocket silent(bed.b, bed.b_ip, 6666);
  DatagramCollector collector(silent);
  const Input input("twenty", 20);
  const Ran r = console_in(bed.a, "--reliable", target(), input);
  const auto got = parse_records(collector.finish());
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_LT(r.took, 5s) << r.err;
  EXPECT_NE(r.err.find("no acknowledgement from 10.77.0.2:6666 within 2.0 s of the first record"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("netpoll console: 20 records sent without acknowledgement\n"), std::string::npos) << r.err;
  expect_every_line(got, "twenty", 20);
}

TEST_F(ConsoleFlow, AckWaitSetsWhenASilentReceiverIsGivenUp) {
  UdpSocket silent(bed.b, bed.b_ip, 6666);
  DatagramCollector collector(silent);
  const Input input("quick", 1100);
  const Ran r = console_in(bed.a, "--reliable --ack-wait 0.5 --stats", target(), input);
  const auto got = parse_records(collector.finish());
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_LT(r.took, 3s) << r.err;
  EXPECT_NE(r.err.find("within 0.5 s of the first record"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"plain\":true,\"unacknowledged\":1100"), std::string::npos) << r.err;
  expect_every_line(got, "quick", 1100);
  // Only for reliable mode, and never zero (reliable mode never waits for ever).
  EXPECT_EQ(console_in(bed.a, "--ack-wait 1", target(), input).status, 2);
  EXPECT_EQ(console_in(bed.a, "--reliable --ack-wait 0", target(), input).status, 2);
}

TEST(ConsoleHelp, NamesWhatAcknowledgesAndTheFlowOptions) {
  std::string help;
  ASSERT_EQ(sh(std::string(NP_NETPOLL_BIN) + " console --help", &help), 0);
  EXPECT_NE(help.find("What acknowledges: netpoll listen\n                       --ack, or a receiver built on "
                      "netconsd's ncrx library;\n                       netconsd itself does not\n"),
            std::string::npos)
      << help;
  EXPECT_EQ(help.find("(netpoll listen --ack, netconsd)"), std::string::npos) << help;
  EXPECT_NE(help.find("  --ack-wait S "), std::string::npos);
  EXPECT_NE(help.find("  --pace RATE "), std::string::npos);
}

// --- pacing against a small buffer read slowly --------------------------------

// A receiver that reads one datagram, then rests `rest`: at most a few
// thousand a second, into a socket buffer of a few hundred small
// datagrams (a stall of a few hundred milliseconds at 1000 a second).
// The kernel counts what found the buffer full (/proc/net/udp's drops).
class SlowReceiver {
 public:
  SlowReceiver(const VethBed& bed, std::chrono::microseconds rest) : bed_(bed), sock_(bed.b, bed.b_ip, 6666) {
    const int bytes = 256 << 10;  // the kernel doubles it
    EXPECT_EQ(::setsockopt(sock_.fd(), SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes), 0);
    reader_ = std::thread([this, rest] {
      char buf[2048];
      // Until it is told to stop and a second passes without a datagram.
      for (int idle = 0; !stop_.load() || idle < 10;) {
        pollfd p{sock_.fd(), POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) {
          ++idle;
          continue;
        }
        idle = 0;
        if (::recv(sock_.fd(), buf, sizeof buf, 0) > 0) ++received_;
        nap(rest);
      }
    });
  }
  ~SlowReceiver() { finish(); }
  // Stops once the buffer is empty; returns the datagrams read.
  std::size_t finish() {
    stop_.store(true);
    if (reader_.joinable()) reader_.join();
    return received_;
  }
  // The socket's drops, from /proc/net/udp in its namespace: 10.77.0.2
  // port 6666 is "02004D0A:1A0A" there; drops is the last column.
  std::uint64_t kernel_drops() const {
    std::string table;
    EXPECT_EQ(sh(bed_.b.exec() + "cat /proc/net/udp", &table), 0);
    std::istringstream lines(table);
    for (std::string line; std::getline(lines, line);) {
      if (line.find(" 02004D0A:1A0A ") == std::string::npos) continue;
      std::istringstream fields(line);
      std::string last;
      for (std::string f; fields >> f;) last = f;
      return std::stoull(last);
    }
    ADD_FAILURE() << "no socket on 10.77.0.2:6666 in\n" << table;
    return 0;
  }

 private:
  const VethBed& bed_;
  UdpSocket sock_;
  std::atomic<bool> stop_{false};
  std::size_t received_ = 0;
  std::thread reader_;
};

constexpr int kBurst = 3000;
constexpr auto kRest = 300us;  // at most ~3000 a second

// Shows that the bed can fail: a burst of 3000 lines leaves far faster
// than the receiver reads, and its buffer overflows.
TEST_F(ConsoleFlow, WithoutPaceABurstOverrunsASlowReceiversSmallBuffer) {
  SlowReceiver rx(bed, kRest);
  const Input input("burst", kBurst);
  const Ran r = console_in(bed.a, "--quiet", target(), input);
  EXPECT_EQ(r.status, 0) << r.err;
  const std::size_t received = rx.finish();
  const std::uint64_t drops = rx.kernel_drops();
  EXPECT_GT(drops, 100u) << "received " << received;
  EXPECT_EQ(received + drops, static_cast<std::size_t>(kBurst));
}

TEST_F(ConsoleFlow, PaceDeliversEveryLineOfABurstToASlowReceiverWithoutADrop) {
  SlowReceiver rx(bed, kRest);
  const Input input("paced", kBurst);
  const Ran r = console_in(bed.a, "--quiet --pace 1000/s", target(), input);
  EXPECT_EQ(r.status, 0) << r.err;
  const std::size_t received = rx.finish();
  EXPECT_EQ(rx.kernel_drops(), 0u) << "received " << received;
  EXPECT_EQ(received, static_cast<std::size_t>(kBurst));
  // It was the pace: 3000 records at 1000 a second take 3 s.
  EXPECT_GE(r.took, 2900ms);
  EXPECT_LT(r.took, 15s);
  // A pace it cannot read is a usage error that says what it wants.
  std::string err;
  EXPECT_EQ(sh(bed.a.exec() + NP_NETPOLL_BIN + " console --pace 2k '" + target() + "' < /dev/null", &err), 2);
  EXPECT_NE(err.find("--pace '2k': expected records a second (2000, 2000/s) or bytes a second (64000B/s, 500KB/s, "
                     "2MB/s)"),
            std::string::npos)
      << err;
}

}  // namespace
}  // namespace np::tools
