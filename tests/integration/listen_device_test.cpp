// netpoll listen --device: netconsole received through netpoll's own path,
// on an interface the kernel has no address on (a veth end in a namespace)
// and on a frame-over-UDP tunnel, held against what the kernel socket mode
// makes of the same datagrams: the Linux captures replayed, netpoll
// console, reliable mode under loss, and the ARP that makes the address
// reachable at all.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "listener.h"
#include "net_helpers.h"
#include "netns.h"
#include "pcap_reader.h"

namespace np::tools {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;

// listen's JSON lines, per source, in the order they were written, each
// without its "received" member. That member is the receiver's wall clock
// when the datagram arrived (a gap's or reset's: when it was found), the
// only thing two runs of the same replay may write differently; every
// other member (the source, seq, the sender's timestamp, the text and its
// base64, fragments, late, the fields) is the same datagrams' content
// parsed and must be byte for byte the same. Lines are kept per source
// because the order in which two sources' lines interleave depends on how
// datagrams fall into batches; within a source it is the stream's.
std::map<std::string, std::vector<std::string>> by_source(const std::string& out) {
  static const std::string kReceived = "\"received\":\"";
  std::map<std::string, std::vector<std::string>> lines;
  for (std::size_t at = 0, nl; (nl = out.find('\n', at)) != std::string::npos; at = nl + 1) {
    std::string line = out.substr(at, nl - at);
    if (const auto r = line.find(kReceived); r != std::string::npos) {
      const auto end = line.find("\",", r + kReceived.size());
      if (end != std::string::npos) line.erase(r, end + 2 - r);
    }
    const auto s = line.find("\"source\":\"");
    const std::string source = s == std::string::npos ? "<none>" : line.substr(s + 10, line.find('"', s + 10) - s - 10);
    lines[source].push_back(line);
  }
  return lines;
}

struct Captures {
  std::vector<CapturedDatagram> ext = read_udp_pcap(test_data("linux-6.1-netconsole-ext.pcap"));
  std::vector<CapturedDatagram> plain = read_udp_pcap(test_data("linux-6.1-netconsole-plain.pcap"));
};

// What the replay must give, whichever way it was received: the extended
// capture's 352 datagrams are 348 records (M2 came in 2 fragments, M3 in
// 4), the plain capture's console lines are basic records.
void expect_the_captures_records(const std::map<std::string, std::vector<std::string>>& lines,
                                 const std::string& ext_source, const std::string& plain_source) {
  ASSERT_EQ(lines.count(ext_source), 1u);
  ASSERT_EQ(lines.count(plain_source), 1u);
  std::size_t records = 0, basic = 0;
  for (const auto& l : lines.at(ext_source)) records += l.find("\"format\":\"extended\"") != std::string::npos;
  for (const auto& l : lines.at(plain_source)) basic += l.find("\"format\":\"basic\"") != std::string::npos;
  EXPECT_EQ(records, 348u);
  EXPECT_GT(basic, 300u);
  std::string all;
  for (const auto& l : lines.at(ext_source)) all += l + "\n";
  EXPECT_NE(all.find("\"seq\":357,\"facility\":\"user\",\"level\":\"info\","), std::string::npos);
  EXPECT_NE(all.find("\"text\":\"nctest: M1 short message\",\"fragments\":1,"), std::string::npos);
  EXPECT_NE(all.find("\"seq\":359,"), std::string::npos);
  EXPECT_NE(all.find("\"fragments\":4,"), std::string::npos);  // M3, put together again
}

class ListenDeviceOverVeth : public ::testing::Test {
 protected:
  void SetUp() override {
    // b keeps its veth end but no kernel address: a kernel socket there
    // could not receive anything sent to 10.77.0.2.
    ASSERT_TRUE(sh_ok(bed.b.exec() + "ip addr flush dev " + bed.b_if));
    std::string addrs;
    ASSERT_EQ(sh(bed.b.exec() + "ip -4 -o addr show dev " + bed.b_if, &addrs), 0);
    ASSERT_EQ(addrs, "");
  }
  std::vector<std::string> device_mode(std::vector<std::string> more) const {
    std::vector<std::string> args = {"--device", bed.b_if, "--ip", bed.b_ip};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  // The kernel in a resolves 10.77.0.2 (a datagram to a port nobody
  // receives on sets it off): only netpoll answers ARP for it. Waits
  // (bounded) for the neighbour entry; returns what `ip neigh` says.
  std::string resolve_from_the_kernel() {
    UdpSocket probe(bed.a, bed.a_ip, 5999);
    EXPECT_TRUE(probe.send_to(bed.b_ip, 9, as_bytes("probe")));
    std::string neigh;
    for (int i = 0; i < 200; ++i) {
      sh(bed.a.exec() + "ip neigh show " + bed.b_ip + " dev " + bed.a_if, &neigh);
      if (neigh.find(" lladdr ") != std::string::npos) break;
      std::this_thread::sleep_for(10ms);
    }
    return neigh;
  }

  VethBed bed;
  TempDir dir;
};

TEST_F(ListenDeviceOverVeth, AnswersArpSoTheKernelAndNetpollConsoleResolveItsAddress) {
  Listener l(bed.b, device_mode({"--timeout", "3", "--stats-format", "json"}), dir);
  EXPECT_NE(l.err().find("netpoll listen: 10.77.0.2 port 6666 on np1 (" + bed.b_mac + "), netpoll's own path, one thread\n"),
            std::string::npos)
      << l.err();
  // The kernel next door: the entry it learnt is b's MAC, confirmed.
  const std::string neigh = resolve_from_the_kernel();
  EXPECT_EQ(neigh, "10.77.0.2 lladdr " + bed.b_mac + " REACHABLE \n");  // as ip(8) prints it
  // netpoll console with no MAC in its target resolves it too, and its
  // record arrives.
  std::string console;
  ASSERT_EQ(sh("echo resolved | " + netpoll_in(bed.a) + " console '+6665@/np0,6666@10.77.0.2/' 2>&1", &console), 0);
  EXPECT_NE(console.find("remote ethernet address " + bed.b_mac + " (ARP reply from 10.77.0.2)"), std::string::npos)
      << console;
  l.wait();
  EXPECT_NE(l.out().find(" 10.77.0.1:6665 user.info 0 resolved\n"), std::string::npos) << l.out() << l.err();
  // The probe was not for listen's port: dropped and counted by netpoll's
  // path, in listen's statistics.
  const std::string err = l.err();
  EXPECT_NE(err.find("\"udp_checksum\":0,\"no_client\":1,"), std::string::npos) << err;
  EXPECT_EQ(err.find("\"arp\":{\"replies_sent\":0,"), std::string::npos) << err;
  EXPECT_NE(err.find("\"rx\":{\"datagrams\":1,"), std::string::npos) << err;  // the client's: the record
}

TEST_F(ListenDeviceOverVeth, ReplayedLinuxCapturesComeOutAsTheSocketModeWritesThem) {
  const Captures cap;
  ASSERT_EQ(cap.ext.size(), 352u);
  const auto replay = [&] {
    UdpSocket ext_src(bed.a, bed.a_ip, 6665), plain_src(bed.a, bed.a_ip, 6667);
    for (const auto& d : cap.ext) ASSERT_TRUE(ext_src.send_to(bed.b_ip, 6666, as_bytes(d.payload)));
    for (const auto& d : cap.plain) ASSERT_TRUE(plain_src.send_to(bed.b_ip, 6666, as_bytes(d.payload)));
  };
  const std::vector<std::string> common = {"--format", "json", "--timeout", "3", "--stats-format", "json"};

  // netpoll's own path, on an end with no kernel address. The kernel in a
  // learns b's MAC first: while it resolves, it would hold only a few
  // datagrams.
  std::string device_out, device_err;
  {
    Listener l(bed.b, device_mode(common), dir);
    ASSERT_NE(resolve_from_the_kernel().find(bed.b_mac), std::string::npos);
    replay();
    EXPECT_EQ(WEXITSTATUS(l.wait()), 0);
    device_out = l.out();
    device_err = l.err();
  }
  // The kernel socket mode, the address given back to the kernel.
  std::string socket_out;
  {
    ASSERT_TRUE(sh_ok(bed.b.exec() + "ip addr add " + bed.b_ip + "/24 dev " + bed.b_if));
    std::vector<std::string> args = {"--bind", bed.b_ip};
    args.insert(args.end(), common.begin(), common.end());
    Listener l(bed.b, args, dir);
    replay();
    EXPECT_EQ(WEXITSTATUS(l.wait()), 0);
    socket_out = l.out();
  }
  // Every line has its receive time, which by_source() takes out, once.
  EXPECT_EQ(count_of(device_out, "\"received\":\""), count_of(device_out, "\n"));
  EXPECT_EQ(count_of(socket_out, "\"received\":\""), count_of(socket_out, "\n"));
  const auto device = by_source(device_out);
  const auto socket = by_source(socket_out);
  expect_the_captures_records(socket, "10.77.0.1:6665", "10.77.0.1:6667");
  EXPECT_EQ(device.size(), socket.size());
  for (const auto& [source, lines] : socket) {
    ASSERT_EQ(device.count(source), 1u) << source;
    const auto& got = device.at(source);
    EXPECT_EQ(got.size(), lines.size()) << source;
    for (std::size_t i = 0; i < std::min(got.size(), lines.size()); ++i) {
      ASSERT_EQ(got[i], lines[i]) << source << " line " << i;
    }
  }
  // Nothing lost on the way in, and every frame accounted for.
  EXPECT_NE(device_err.find("\"malformed\":0,"), std::string::npos) << device_err;
  EXPECT_NE(device_err.find("\"backend\":{\"rx_frames\":"), std::string::npos) << device_err;
  EXPECT_NE(device_err.find(",\"rx_dropped\":0,"), std::string::npos) << device_err;
  EXPECT_NE(device_err.find("\"ip_checksum\":0,"), std::string::npos) << device_err;
  EXPECT_NE(device_err.find("\"udp_checksum\":0,\"no_client\":1,"), std::string::npos) << device_err;  // the probe
}

TEST_F(ListenDeviceOverVeth, NetpollConsoleLinesArriveInOrderAndCountStopsIt) {
  Listener l(bed.b, device_mode({"--count", "300", "--timeout", "20"}), dir);
  std::string lines;
  for (int i = 0; i < 300; ++i) lines += "line " + std::to_string(i) + "\n";
  std::ofstream(dir.path() / "input") << lines;
  ASSERT_TRUE(sh_ok(netpoll_in(bed.a) + " console --quiet --new-stream '+6665@/np0,6666@10.77.0.2/" + bed.b_mac +
                    "' < " + (dir.path() / "input").string()));
  EXPECT_EQ(WEXITSTATUS(l.wait()), 0);  // --count: it stops by itself
  const std::string out = l.out();
  expect_each_once_in_order(out, 300, "line", l.err());
  EXPECT_EQ(count_of(out, " 10.77.0.1:6665 user.info "), 300u) << out;
  EXPECT_EQ(count_of(out, "\n"), 300u) << out;
  EXPECT_NE(l.err().find("netpoll listen: records 300, datagrams 300, "), std::string::npos) << l.err();
  EXPECT_NE(l.err().find(", gaps 0, "), std::string::npos) << l.err();
  EXPECT_NE(l.err().find("\n  rx delivered            300\n"), std::string::npos) << l.err();
}

// Both ends are netpoll's own path, so the loss is made where their frames
// still meet the kernel: nftables on each veth end's egress (netdev
// family), 10% of the records into b and of the answers into a.
TEST_F(ListenDeviceOverVeth, ReliableModeAnswersThroughNetpollsSendPathUnderLoss) {
  constexpr int kRecords = 400;
  Listener l(bed.b, device_mode({"--ack", "--timeout", "90"}), dir);
  EXPECT_NE(l.err().find(", reliable mode (ncrx)\n"), std::string::npos) << l.err();
  const std::string target = "'+6665@/np0,6666@10.77.0.2/'";
  // The listener answers only now and then (a handful of responses for the
  // whole run), so a random loss of them could as well drop none: every
  // other answer is lost instead.
  lose_udp_each_way(bed, 10, "", "udp sport 6666 numgen inc mod 2 0");
  std::string lines;
  for (int i = 0; i < kRecords; ++i) lines += "reliable record " + std::to_string(i) + "\n";
  std::ofstream(dir.path() / "input") << lines;
  std::string sender;
  const int rc = sh(netpoll_in(bed.a) + " console --reliable --linger 60 --stats " + target + " < " +
                        (dir.path() / "input").string() + " 2>&1",
                    &sender);
  EXPECT_EQ(rc, 0) << sender;
  EXPECT_NE(sender.find("\"acked_seq\":" + std::to_string(kRecords - 1) + ",\"unacked\":0,"), std::string::npos)
      << sender;
  EXPECT_EQ(sender.find("\"retransmitted\":0,"), std::string::npos) << sender;  // loss was real
  EXPECT_NE(sender.find("\"plain\":false,"), std::string::npos) << sender;      // acknowledged all along
  l.stop();
  expect_each_once_in_order(l.out(), kRecords, "reliable record", l.err());
  const std::string err = l.err();
  EXPECT_NE(err.find("records " + std::to_string(kRecords) + ", "), std::string::npos) << err;
  EXPECT_EQ(err.find("ncrx responses 0,"), std::string::npos) << err;
  EXPECT_NE(err.find("ncrx responses failed 0,"), std::string::npos) << err;
  // The answers left through netpoll's send path: the client's datagrams.
  EXPECT_EQ(err.find("\n  tx datagrams 0,"), std::string::npos) << err;
  EXPECT_NE(err.find(", resets 0, "), std::string::npos) << err;
  expect_losses_each_way(bed);
}

TEST(ListenDevice, RefusesKernelSocketOptionsAndBadAddresses) {
  const std::string bin = NP_NETPOLL_BIN;
  const std::pair<std::string, std::string> cases[] = {
      {"--device np1 --ip 10.0.0.2 --workers 2", "--workers: --device receives on one thread (a device has one receive ring)"},
      {"--device np1 --ip 10.0.0.2 --bind 10.0.0.2", "--bind is for kernel sockets: --device receives on --ip"},
      {"--device np1 --ip 10.0.0.2 --rcvbuf 65536", "--rcvbuf is a kernel socket's buffer: --device receives from the device"},
      {"--device np1", "--device needs --ip ADDR, the IPv4 address to receive on"},
      {"--ip 10.0.0.2", "--ip is the address netpoll's own path receives on: give --device too"},
      {"--device np1 --ip fd00::2", "--ip 'fd00::2': netpoll's own path is IPv4 only"},
      {"--device np1 --ip 10.0.0", "--ip '10.0.0': expected an IPv4 address like 10.0.0.2"},
      {"--device np1 --ip 127.0.0.1", "--ip 127.0.0.1: expected a unicast address of the device's network, not loopback"},
      {"--device np1 --ip 10.0.0.2 --port 0", "--port 0 (a port the kernel picks) is for kernel sockets; --device needs a port"},
  };
  for (const auto& [args, message] : cases) {
    std::string out;
    EXPECT_EQ(sh(bin + " listen " + args + " 2>&1", &out), 2) << args;
    EXPECT_EQ(out, "netpoll listen: " + message + "\nTry 'netpoll listen --help'.\n") << args;
  }
  // The help says what the mode takes and what it does not do.
  std::string help;
  ASSERT_EQ(sh(bin + " listen --help", &help), 0);
  for (const char* says : {"  --device DEV ", "  --ip ADDR ", "answers ARP for it", "It does not do IPv6",
                           "is one thread: --workers, --bind and --rcvbuf are for kernel sockets"}) {
    EXPECT_NE(help.find(says), std::string::npos) << says;
  }
  // A device that is not there: setup says so, exit 1.
  Netns ns("listen-dev");
  std::string out;
  EXPECT_EQ(sh(netpoll_in(ns) + " listen --device np9 --ip 10.0.0.2 2>&1", &out), 1);
  EXPECT_EQ(out, "netpoll listen: np9 doesn't exist, aborting\n");
}

// The frame-over-UDP tunnel (qemu's -netdev socket): the test is the far
// end, sending the captures' datagrams as frames; the kernel socket mode
// gets the same datagrams from a kernel socket, the two addresses on the
// namespace's loopback.
TEST(ListenDeviceOverUdpTunnel, ReplayedLinuxCapturesGiveTheRecordsTheSocketModeGives) {
  const Captures cap;
  ASSERT_EQ(cap.ext.size(), 352u);
  Netns ns("tunnel");
  TempDir dir;
  const std::vector<std::string> common = {"--format", "json", "--timeout", "3"};
  const Endpoint from{*MacAddr::parse("02:00:00:00:00:01"), Ipv4Addr(10, 77, 0, 1), 6665};
  const Endpoint from_plain{from.mac, from.ip, 6667};
  const Endpoint to{*MacAddr::parse("02:00:00:00:00:02"), Ipv4Addr(10, 77, 0, 2), 6666};

  std::string device_out, device_err;
  {
    Listener l(ns,
               {"--device", "udp:127.0.0.1:7001@127.0.0.1:7000?mac=02:00:00:00:00:02", "--ip", "10.77.0.2",
                "--format", "json", "--timeout", "3"},
               dir);
    ASSERT_NE(l.err().find("netpoll listen: 10.77.0.2 port 6666 on udp:127.0.0.1:7001@127.0.0.1:7000?mac=02:00:00:00:00:02 "
                           "(02:00:00:00:00:02), netpoll's own path, one thread\n"),
              std::string::npos)
        << l.err();
    auto far = open_in(ns, "udp:127.0.0.1:7000@127.0.0.1:7001?mac=02:00:00:00:00:01");
    ASSERT_TRUE(far);
    std::size_t sent = 0;
    const auto send = [&](const Endpoint& src, const std::string& payload) {
      const auto frame = udp_frame(src, to, as_bytes(payload), static_cast<std::uint16_t>(sent + 1));
      ASSERT_EQ(far->transmit(frame), dev::TxStatus::kOk);
      // A short breath every 32 frames: the listener's socket buffer
      // holds a few hundred, the test sends faster than anyone reads.
      if (++sent % 32 == 0) std::this_thread::sleep_for(2ms);
    };
    for (const auto& d : cap.ext) send(from, d.payload);
    for (const auto& d : cap.plain) send(from_plain, d.payload);
    EXPECT_EQ(WEXITSTATUS(l.wait()), 0);
    device_out = l.out();
    device_err = l.err();
  }
  std::string socket_out;
  {
    ASSERT_TRUE(sh_ok(ns.exec() + "ip addr add 10.77.0.1/32 dev lo"));
    ASSERT_TRUE(sh_ok(ns.exec() + "ip addr add 10.77.0.2/32 dev lo"));
    std::vector<std::string> args = {"--bind", "10.77.0.2"};
    args.insert(args.end(), common.begin(), common.end());
    Listener l(ns, args, dir);
    UdpSocket ext_src(ns, "10.77.0.1", 6665), plain_src(ns, "10.77.0.1", 6667);
    for (const auto& d : cap.ext) ASSERT_TRUE(ext_src.send_to("10.77.0.2", 6666, as_bytes(d.payload)));
    for (const auto& d : cap.plain) ASSERT_TRUE(plain_src.send_to("10.77.0.2", 6666, as_bytes(d.payload)));
    EXPECT_EQ(WEXITSTATUS(l.wait()), 0);
    socket_out = l.out();
  }
  const auto device = by_source(device_out);
  const auto socket = by_source(socket_out);
  expect_the_captures_records(device, "10.77.0.1:6665", "10.77.0.1:6667");
  EXPECT_TRUE(device == socket) << device_err;
  for (const auto& [source, lines] : socket) {
    if (device.count(source) == 0) continue;
    const auto& got = device.at(source);
    for (std::size_t i = 0; i < std::min(got.size(), lines.size()); ++i) {
      ASSERT_EQ(got[i], lines[i]) << source << " line " << i;
    }
  }
  EXPECT_NE(device_err.find("netpoll listen: records "), std::string::npos) << device_err;
  EXPECT_NE(device_err.find(", malformed 0, "), std::string::npos) << device_err;
  EXPECT_NE(device_err.find("\ndevice udp:127.0.0.1:7001@127.0.0.1:7000?mac=02:00:00:00:00:02 (02:00:00:00:00:02, mtu 1500)\n"),
            std::string::npos)
      << device_err;
  EXPECT_NE(device_err.find("\n  rx delivered            " + std::to_string(cap.ext.size() + cap.plain.size()) + "\n"),
            std::string::npos)
      << device_err;
}

}  // namespace
}  // namespace np::tools
