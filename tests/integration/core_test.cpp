// The netpoll core against the Linux kernel, over veth pairs in namespaces.
//
// Namespace `a` holds np0 (kernel address 10.77.0.1) where our clients run
// on packet:np0 and, the same tests again, on xdp:np0 (CoreOverVeth is
// parameterised by the backend); namespace `b` holds np1 (10.77.0.2), whose
// kernel is the peer. Clients that must answer ARP themselves use 10.77.0.5, an address
// the kernel in `a` does not have (so only netpoll answers for it).
// Every client is set up inside `a` (setup reads that namespace's links,
// addresses and routes) and then used from the test thread.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "alloc_guard.h"
#include "inbox.h"
#include "net_helpers.h"
#include "netns.h"
#include "netpoll/base/bytes.h"
#include "netpoll/core/crash_route.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/dev/open.h"
#include "netpoll/wire/ipv4.h"
#include "segments.h"

namespace np::core {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;

struct Log {
  std::vector<std::string> lines;
  SetupLog sink() {
    return [this](const std::string& s) { lines.push_back(s); };
  }
  bool has(const std::string& s) const { return std::find(lines.begin(), lines.end(), s) != lines.end(); }
  std::string all() const {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
};

ClientConfig config(const std::string& target, Inbox* inbox = nullptr, Log* log = nullptr) {
  ClientConfig c;
  auto t = parse_targets(target);
  EXPECT_TRUE(t) << (t ? "" : t.error().message);
  c.target = t->targets.at(0);
  c.resolve.interval = 200ms;
  if (inbox != nullptr) c.rx_hook = inbox->hook();
  if (log != nullptr) c.log = log->sink();
  return c;
}

// The descriptors this process has open.
std::vector<int> open_fds() {
  std::vector<int> fds;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) fds.push_back(std::stoi(e.path().filename()));
  return fds;
}

// As a program that closed `fds` and opened a file under each number: an
// unlinked temporary file dup2'd onto each. Returns the file's own
// descriptor (-1, and a test failure, if it could not be made).
int reuse_for_a_file(const std::vector<int>& fds) {
  char path[] = "/tmp/np-reused-XXXXXX";
  const int file = ::mkstemp(path);
  EXPECT_GE(file, 0) << std::strerror(errno);
  if (file < 0) return -1;
  ::unlink(path);
  for (const int fd : fds) {
    if (fd != file && ::dup2(file, fd) != fd) ADD_FAILURE() << "dup2 onto " << fd << ": " << std::strerror(errno);
  }
  return file;
}

// Nothing was written into the file, and each of `fds` still refers to it
// (netpoll closed none of them); then closes them and the file.
void expect_file_untouched_and_close(const std::vector<int>& fds, int file) {
  EXPECT_EQ(::lseek(file, 0, SEEK_END), 0) << "nothing was written into the file";
  struct stat st {};
  for (const int fd : fds) {
    EXPECT_EQ(::fstat(fd, &st), 0) << "descriptor " << fd << " (now the file) was left alone";
    if (fd != file) ::close(fd);
  }
  ::close(file);
}

SetupResult<std::unique_ptr<Netpoll>> setup_in(const Netns& ns, ClientConfig cfg) {
  ScopedNetns in(ns);
  return Netpoll::setup(std::move(cfg));
}

// The backend under test: "packet" (a bare interface name, as netconsole's
// option string has it) or "xdp".
class CoreOverVeth : public ::testing::TestWithParam<std::string> {
 protected:
  VethBed bed;
  bool xdp() const { return GetParam() == "xdp"; }
  // np0 as this backend names it in a target, with `options` (KEY=VALUE&...).
  std::string np0(const std::string& options = "") const {
    if (xdp()) return "xdp:np0" + (options.empty() ? "" : "?" + options);
    return options.empty() ? "np0" : "packet:np0?" + options;
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, CoreOverVeth, ::testing::Values("packet", "xdp"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// (a)
TEST_P(CoreOverVeth, OurDatagramReachesAKernelSocketExactly) {
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  Log log;
  auto np = setup_in(bed.a, config("6665@/" + np0() + ",6666@10.77.0.2/", nullptr, &log));
  ASSERT_TRUE(np) << np.error().message;
  EXPECT_TRUE(log.has("netpoll: local IP 10.77.0.1")) << log.all();
  EXPECT_TRUE(log.has("netpoll: remote ethernet address " + bed.b_mac + " (ARP reply from 10.77.0.2)")) << log.all();
  EXPECT_EQ((*np)->remote_mac().to_string(), bed.b_mac);

  for (const std::string& msg : {std::string("hello, kernel"), std::string(1, 'x'), std::string(1472, 'y')}) {
    ASSERT_TRUE((*np)->send_udp(as_bytes(msg)));
    std::string from;
    auto got = peer.receive(2000ms, &from);
    ASSERT_TRUE(got) << "nothing arrived for a " << msg.size() << "-byte datagram";
    EXPECT_EQ(as_text(*got), msg);
    EXPECT_EQ(from, "10.77.0.1:6665");
  }
  EXPECT_EQ((*np)->stats().tx_datagrams.value(), 3u);
  EXPECT_EQ((*np)->shared().stats().tx_drops.total(), 0u);
}

// Datagrams sent in segments: over packet: one transmission the kernel
// cuts (UDP GSO through the virtio header), over xdp: one by one. Either
// way the wire carries one datagram per segment, in order, each with its
// own length, checksum and IPv4 identification.
TEST_P(CoreOverVeth, SegmentsGoOutAsDatagramsEachWithItsOwnChecksumAndIdentification) {
  // A veth hands a segmented frame to its peer whole; without its own
  // segmentation the kernel cuts it before, as for a NIC without it, and
  // the peer's side sees the datagrams a wire would carry.
  ASSERT_EQ(sh("ip netns exec " + bed.a.name() + " ethtool -K np0 tx-udp-segmentation off"), 0);
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  // What the wire carries, seen from the peer's side: each datagram's
  // checksum must verify (parse_udp).
  auto wire = open_in(bed.b, "packet:np1");
  ASSERT_TRUE(wire);
  auto np = setup_in(bed.a, config("6665@/" + np0() + ",6666@10.77.0.2/"));
  ASSERT_TRUE(np) << np.error().message;
  std::vector<std::string> msgs;
  for (int i = 0; i < 4; ++i) msgs.push_back(std::string(1000, static_cast<char>('a' + i)));
  msgs.push_back(std::string(321, 'z'));  // the last may be shorter
  send_segments_and_expect_each(**np, peer, msgs, 6666, "10.77.0.1:6665");
  if (::testing::Test::HasFatalFailure()) return;
  std::vector<std::uint16_t> idents;
  std::vector<std::string> payloads;
  std::vector<Errc> broken;
  receive_until(*wire, 2000ms, [&](std::span<const std::byte> frame) {
    const auto u = parse_udp(frame);
    if (!u) {
      if (u.error() != Errc::kUnsupported) broken.push_back(u.error());
      return false;
    }
    if (u->dst_port != 6666) return false;
    idents.push_back(load_be16(frame, 14 + 4));
    payloads.push_back(std::string(as_text(u->payload)));
    return payloads.size() == msgs.size();
  });
  EXPECT_TRUE(broken.empty()) << "a frame failed a check, the first: " << to_string(broken.at(0));
  EXPECT_EQ(payloads, msgs);
  ASSERT_EQ(idents.size(), msgs.size());
  for (std::size_t i = 1; i < idents.size(); ++i) EXPECT_EQ(idents[i], static_cast<std::uint16_t>(idents[0] + i));
  EXPECT_EQ((*np)->stats().tx_datagrams.value(), msgs.size());
  EXPECT_EQ((*np)->shared().stats().tx_frames.value() - (*np)->shared().stats().arp_requests_sent.value(), msgs.size());
  // The kernel took the segmented transmission (a kernel before 6.2 would
  // not, and the device would have said so and sent them one by one).
  EXPECT_EQ((*np)->shared().device().segments_udp(), !xdp());
}

// An interface that does not complete checksums itself gets no segmented
// transmission (the kernel would drop it): the datagrams go one by one.
TEST_P(CoreOverVeth, SegmentsGoOneByOneWhereTheInterfaceComputesNoChecksums) {
  ASSERT_EQ(sh("ip netns exec " + bed.a.name() + " ethtool -K np0 tx off"), 0);
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  auto np = setup_in(bed.a, config("6665@/" + np0() + ",6666@10.77.0.2/"));
  ASSERT_TRUE(np) << np.error().message;
  send_segments_and_expect_each(**np, peer, {std::string(900, 'p'), std::string(900, 'q'), std::string(5, 'r')}, 6666);
  EXPECT_FALSE((*np)->shared().device().segments_udp());
  EXPECT_EQ((*np)->shared().stats().tx_retries.value(), 0u);
}

// The program closed the packet device's sockets and opened a file under
// their numbers: after revalidate() (which the crash path and each dump
// call first) datagrams in segments still go out, one by one through a
// socket of the device's own; the file gets nothing, and the device leaves
// it open when it goes.
TEST(PacketDeviceOverVeth, SegmentsSurviveTheProgramReusingTheDevicesDescriptors) {
  VethBed bed;  // packet: only (the device with a socket for segmented transmissions)
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  const std::vector<int> before = open_fds();
  auto np = setup_in(bed.a, config("6665@/np0,6666@10.77.0.2/"));
  ASSERT_TRUE(np) << np.error().message;
  ASSERT_TRUE((*np)->shared().device().segments_udp());
  // The device's packet sockets: opened by setup, AF_PACKET.
  std::vector<int> ours;
  for (const int fd : open_fds()) {
    int domain = 0;
    socklen_t len = sizeof domain;
    if (std::find(before.begin(), before.end(), fd) == before.end() &&
        ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_PACKET)
      ours.push_back(fd);
  }
  ASSERT_EQ(ours.size(), 2u) << "the ring's socket and the one for segments";
  const int file = reuse_for_a_file(ours);
  ASSERT_GE(file, 0);
  {
    ScopedNetns in(bed.a);
    ASSERT_TRUE((*np)->shared().revalidate());
  }
  EXPECT_FALSE((*np)->shared().device().segments_udp());
  send_segments_and_expect_each(**np, peer, {std::string(1000, 's'), std::string(1000, 't'), std::string(10, 'u')},
                                6666);
  np->reset();
  expect_file_untouched_and_close(ours, file);
}

// The service thread's wake-up descriptor, closed by the program and its
// number reused for a file: revalidate() gives it up, the file gets none of
// the wake-ups of later bursts and is not read or closed, and datagrams
// still go out (the thread kicks on its own timeout).
TEST(PacketDeviceOverVeth, TheServiceThreadsWakeUpIsGivenUpWhenTheProgramReusesIt) {
  VethBed bed;
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  const std::vector<int> before = open_fds();
  auto np = setup_in(bed.a, config("6665@/np0,6666@10.77.0.2/"));
  ASSERT_TRUE(np) << np.error().message;
  std::vector<int> ours;
  for (const int fd : open_fds()) {
    if (std::find(before.begin(), before.end(), fd) != before.end()) continue;
    const std::string link = std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd)).string();
    if (link == "anon_inode:[eventfd]") ours.push_back(fd);
  }
  ASSERT_EQ(ours.size(), 1u) << "the service thread's wake-up";
  const int file = reuse_for_a_file(ours);
  ASSERT_GE(file, 0);
  {
    ScopedNetns in(bed.a);
    ASSERT_TRUE((*np)->shared().revalidate()) << "the device's own descriptors are untouched";
  }
  for (int burst = 0; burst < 3; ++burst) {
    for (int i = 0; i < 4; ++i)
      ASSERT_TRUE((*np)->send_udp(as_bytes("b" + std::to_string(burst) + "-" + std::to_string(i)), Flush::kLater));
    for (int i = 0; i < 4; ++i) {
      auto got = peer.receive(2000ms);
      ASSERT_TRUE(got) << "burst " << burst << " datagram " << i;
      EXPECT_EQ(as_text(*got), "b" + std::to_string(burst) + "-" + std::to_string(i));
    }
  }
  np->reset();
  expect_file_untouched_and_close(ours, file);
}

// (b)
TEST_P(CoreOverVeth, KernelArpsWeAnswerAndOurHookGetsItsDatagram) {
  Inbox inbox;
  auto np = setup_in(bed.a, config("6666@10.77.0.5/" + np0() + ",@0.0.0.0/", &inbox));
  ASSERT_TRUE(np) << np.error().message;
  UdpSocket peer(bed.b, bed.b_ip, 5555);
  ASSERT_TRUE(peer.send_to("10.77.0.5", 6666, as_bytes("who is 10.77.0.5?")));
  ASSERT_TRUE(inbox.wait_for(1)) << (*np)->shared().stats_text();
  EXPECT_EQ(inbox.snapshot()[0], "who is 10.77.0.5?");
  EXPECT_EQ(inbox.infos[0].src_ip, Ipv4Addr(10, 77, 0, 2));
  EXPECT_EQ(inbox.infos[0].src_port, 5555);
  EXPECT_GE((*np)->shared().stats().arp_replies_sent.value(), 1u);
  std::string neigh;
  sh("ip -n " + bed.b.name() + " neigh show 10.77.0.5", &neigh);
  EXPECT_NE(neigh.find(bed.a_mac), std::string::npos) << neigh;  // the kernel cached our reply
}

// (c)
TEST_P(CoreOverVeth, ClientsOnOneDeviceGetTheirOwnPortsAndBothMatchingGetIt) {
  Inbox i1, i2, i3;
  auto c1 = setup_in(bed.a, config("7001@10.77.0.5/" + np0() + ",@0.0.0.0/", &i1));
  auto c2 = setup_in(bed.a, config("7002@10.77.0.5/" + np0() + ",@0.0.0.0/", &i2));
  auto c3 = setup_in(bed.a, config("7002@10.77.0.5/" + np0() + ",@10.77.0.2/", &i3));
  ASSERT_TRUE(c1 && c2 && c3);
  ASSERT_EQ(&(*c1)->shared(), &(*c3)->shared());
  UdpSocket peer(bed.b, bed.b_ip, 5555);
  ASSERT_TRUE(peer.send_to("10.77.0.5", 7001, as_bytes("for 7001")));
  ASSERT_TRUE(peer.send_to("10.77.0.5", 7002, as_bytes("for 7002")));
  ASSERT_TRUE(i1.wait_for(1));
  ASSERT_TRUE(i2.wait_for(1));
  ASSERT_TRUE(i3.wait_for(1));
  std::this_thread::sleep_for(50ms);  // nothing more may arrive
  EXPECT_EQ(i1.snapshot(), (std::vector<std::string>{"for 7001"}));
  EXPECT_EQ(i2.snapshot(), (std::vector<std::string>{"for 7002"}));
  EXPECT_EQ(i3.snapshot(), (std::vector<std::string>{"for 7002"}));
}

// (d) Malformed frames crafted in `b` and sent raw through its own packet
// device: each is dropped and counted under its reason.
TEST_P(CoreOverVeth, MalformedFramesAreDroppedUnderTheRightReason) {
  Inbox inbox;
  auto np = setup_in(bed.a, config("6666@10.77.0.5/" + np0() + ",@0.0.0.0/", &inbox));
  ASSERT_TRUE(np) << np.error().message;
  std::unique_ptr<dev::Device> raw;
  {
    ScopedNetns in(bed.b);
    auto d = dev::open_device("packet:np1");
    ASSERT_TRUE(d) << d.error().message;
    raw = std::move(*d);
  }
  const Endpoint from{*MacAddr::parse(bed.b_mac), Ipv4Addr(10, 77, 0, 2), 5555};
  const Endpoint to{*MacAddr::parse(bed.a_mac), Ipv4Addr(10, 77, 0, 5), 6666};
  const auto good = [&] { return udp_frame(from, to, as_bytes("valid payload")); };
  const auto refill = [](std::vector<std::byte>& f) {
    wire::Ipv4Packet<std::byte>::new_unchecked(std::span(f).subspan(14)).fill_checksum();
  };
  struct Case {
    RxDrop reason;
    std::vector<std::byte> frame;
  };
  std::vector<Case> cases;
  {
    auto f = good();
    f[14 + 10] ^= std::byte{0x55};
    cases.push_back({RxDrop::kIpChecksum, f});
  }
  {
    auto f = good();
    f.back() ^= std::byte{0x01};
    cases.push_back({RxDrop::kUdpChecksum, f});
  }
  {
    auto f = good();
    f.resize(14 + 20 + 8 + 4);  // cut short: IP says more than the frame holds
    cases.push_back({RxDrop::kIpLength, f});
  }
  {
    auto f = good();
    f.insert(f.begin() + 34, 4, std::byte{0x01});  // four NOP options
    auto ip = wire::Ipv4Packet<std::byte>::new_unchecked(std::span(f).subspan(14));
    ip.set_version_and_header_len(4, 24);
    ip.set_total_len(static_cast<std::uint16_t>(f.size() - 14));
    refill(f);
    cases.push_back({RxDrop::kIpOptions, f});
  }
  {
    auto f = good();
    f[14 + 20 + 5] = std::byte{static_cast<std::uint8_t>(std::to_integer<unsigned>(f[14 + 20 + 5]) - 1)};
    cases.push_back({RxDrop::kUdpLength, f});
  }
  {
    auto f = good();
    wire::Ipv4Packet<std::byte>::new_unchecked(std::span(f).subspan(14)).set_frag(false, true, 0);
    refill(f);
    cases.push_back({RxDrop::kIpFragment, f});
  }
  if (!xdp()) {
    // Over AF_XDP netpoll never sees it: its XDP program passes a datagram
    // no client claimed on to the kernel (the coexistence tests check that).
    const Endpoint elsewhere{to.mac, Ipv4Addr(10, 77, 0, 6), 6666};
    cases.push_back({RxDrop::kNoClient, udp_frame(from, elsewhere, as_bytes("foreign destination"))});
  }
  const auto& stats = (*np)->shared().stats();
  for (const auto& c : cases) {
    const auto before = stats.rx_drops.value(c.reason);
    ASSERT_EQ(raw->transmit(c.frame), dev::TxStatus::kOk);
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (stats.rx_drops.value(c.reason) == before && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    EXPECT_EQ(stats.rx_drops.value(c.reason), before + 1) << to_string(c.reason);
  }
  ASSERT_EQ(raw->transmit(good()), dev::TxStatus::kOk);
  ASSERT_TRUE(inbox.wait_for(1));
  EXPECT_EQ(inbox.snapshot(), (std::vector<std::string>{"valid payload"}));
}

// (e)
TEST_P(CoreOverVeth, LinkDownQueuesToTheBoundAndLinkUpDeliversInOrder) {
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  auto cfg = config("6665@/" + np0() + ",6666@10.77.0.2/" + bed.b_mac);
  cfg.device.deferred_limit = 16;
  auto np = setup_in(bed.a, std::move(cfg));
  ASSERT_TRUE(np) << np.error().message;
  ASSERT_TRUE(sh_ok(bed.a.exec() + "ip link set np0 down"));
  int refused = 0;
  for (int i = 0; i < 20; ++i) {
    if (!(*np)->send_udp(as_bytes("queued " + std::to_string(i)))) ++refused;
  }
  EXPECT_EQ(refused, 4);
  EXPECT_EQ((*np)->shared().deferred_depth(), 16u);
  EXPECT_EQ((*np)->shared().stats().tx_drops.value(TxDrop::kQueueFull), 4u);
  EXPECT_FALSE(peer.receive(300ms));  // nothing leaks out while down
  EXPECT_EQ((*np)->shared().deferred_depth(), 16u);

  ASSERT_TRUE(sh_ok(bed.a.exec() + "ip link set np0 up"));
  for (int i = 0; i < 16; ++i) {
    auto got = peer.receive(3000ms);
    ASSERT_TRUE(got) << "datagram " << i << " missing; " << (*np)->shared().stats_text();
    EXPECT_EQ(as_text(*got), "queued " + std::to_string(i));
  }
  // The service thread takes a frame off the queue once its transmit has
  // returned, and the peer may have the frame before that: wait for it.
  for (int i = 0; i < 100 && (*np)->shared().deferred_depth() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ((*np)->shared().deferred_depth(), 0u);
  EXPECT_EQ((*np)->shared().stats().tx_deferred.value(), 16u);
}

// (f) on-link resolution is (a); here: through a gateway, and the fallback.
TEST(CoreRouting, ResolvesTheGatewayMacForAnOffLinkTarget) {
  // a (10.77.0.1) -- r (10.77.0.2 | 10.88.0.1) -- c (10.88.0.2)
  Netns a("a"), r("r"), c("c");
  ASSERT_TRUE(sh_ok("ip link add np0 netns " + a.name() + " type veth peer name np1 netns " + r.name()));
  ASSERT_TRUE(sh_ok("ip link add np2 netns " + r.name() + " type veth peer name np3 netns " + c.name()));
  for (const auto& cmd : {a.exec() + "ip addr add 10.77.0.1/24 dev np0", a.exec() + "ip link set np0 up",
                          r.exec() + "ip addr add 10.77.0.2/24 dev np1", r.exec() + "ip link set np1 up",
                          r.exec() + "ip addr add 10.88.0.1/24 dev np2", r.exec() + "ip link set np2 up",
                          c.exec() + "ip addr add 10.88.0.2/24 dev np3", c.exec() + "ip link set np3 up",
                          r.exec() + "sysctl -qw net.ipv4.ip_forward=1",
                          a.exec() + "ip route add 10.88.0.0/24 via 10.77.0.2",
                          c.exec() + "ip route add 10.77.0.0/24 via 10.88.0.1"}) {
    ASSERT_TRUE(sh_ok(cmd));
  }
  const std::string gw_mac = mac_of(r, "np1");
  UdpSocket far(c, "10.88.0.2", 6666);
  Log log;
  auto np = setup_in(a, config("6665@/np0,6666@10.88.0.2/", nullptr, &log));
  ASSERT_TRUE(np) << np.error().message;
  EXPECT_EQ((*np)->remote_mac().to_string(), gw_mac);
  EXPECT_TRUE(log.has("netpoll: remote IP 10.88.0.2 is off-link: resolving gateway 10.77.0.2")) << log.all();
  ASSERT_TRUE((*np)->send_udp(as_bytes("routed through r")));
  std::string from;
  auto got = far.receive(2000ms, &from);
  ASSERT_TRUE(got);
  EXPECT_EQ(as_text(*got), "routed through r");
  EXPECT_EQ(from, "10.77.0.1:6665");
}

TEST_P(CoreOverVeth, FallsBackToBroadcastWhenNobodyAnswers) {
  Log log;
  auto cfg = config("6665@/" + np0() + ",6666@10.77.0.99/", nullptr, &log);
  cfg.resolve.tries = 2;
  cfg.resolve.interval = 100ms;
  auto np = setup_in(bed.a, std::move(cfg));
  ASSERT_TRUE(np) << np.error().message;
  EXPECT_EQ((*np)->remote_mac(), MacAddr::broadcast());
  EXPECT_TRUE(log.has("netpoll: warning: no ARP reply from 10.77.0.99 after 2 tries: sending to the broadcast "
                      "address ff:ff:ff:ff:ff:ff"))
      << log.all();
  EXPECT_EQ((*np)->shared().stats().arp_requests_sent.value(), 2u);
}

TEST_P(CoreOverVeth, SetupRefusesMissingDevicesSlavesAndAddresslessInterfaces) {
  const auto named = [&](const std::string& ifname) { return xdp() ? "xdp:" + ifname : ifname; };
  auto missing = setup_in(bed.a, config("@/" + named("np9") + ",@10.77.0.2/"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "netpoll: np9 doesn't exist, aborting");

  ASSERT_TRUE(sh_ok(bed.a.exec() + "ip link add npbr0 type bridge"));
  ASSERT_TRUE(sh_ok(bed.a.exec() + "ip link add npv0 type veth peer name npv1"));
  ASSERT_TRUE(sh_ok(bed.a.exec() + "ip link set npv0 master npbr0"));
  auto slave = setup_in(bed.a, config("@/" + named("npv0") + ",@10.77.0.2/"));
  ASSERT_FALSE(slave);
  EXPECT_EQ(slave.error().message, "netpoll: npv0 is a slave device, aborting");

  auto no_ip_cfg = config("@/" + named("npv1") + ",@10.77.0.2/");
  no_ip_cfg.device.carrier_timeout = 100ms;  // npv1's peer is a down bridge port: no carrier comes
  auto no_ip = setup_in(bed.a, std::move(no_ip_cfg));
  ASSERT_FALSE(no_ip);
  EXPECT_EQ(no_ip.error().message, "netpoll: no IP address for npv1, aborting");
}

TEST_P(CoreOverVeth, BringsADownInterfaceUpAndWaitsForCarrier) {
  ASSERT_TRUE(sh_ok(bed.a.exec() + "ip link set np0 down"));
  Log log;
  auto np = setup_in(bed.a, config("6665@/" + np0() + ",6666@10.77.0.2/" + bed.b_mac, nullptr, &log));
  ASSERT_TRUE(np) << np.error().message;
  EXPECT_TRUE(log.has("netpoll: device np0 not up yet, forcing it")) << log.all();
  EXPECT_FALSE(log.has("netpoll: timeout waiting for carrier")) << log.all();
  EXPECT_TRUE((*np)->shared().device().link().usable());
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  ASSERT_TRUE((*np)->send_udp(as_bytes("up again")));
  auto got = peer.receive(2000ms);
  ASSERT_TRUE(got);
  EXPECT_EQ(as_text(*got), "up again");
}

// (g) A receiving client loses nothing while unrelated traffic floods the
// device at kFloodRate frames per second (the rate the README states).
// Over AF_XDP the veth itself may drop frames of every flow under load,
// before the XDP program sees them; those it counts, and only those may
// be missing.
TEST_P(CoreOverVeth, ReceiverLosesNothingUnderAnUnrelatedFlood) {
  constexpr int kFloodRate = 200'000;
  constexpr int kFloodFrames = 200'000;
  constexpr int kOurs = 2'000;
  Inbox inbox;
  // A receive ring that holds the whole flood (256 blocks of 128 KiB; a
  // frame of the flood takes about 144 bytes of it): what is tested is that
  // every frame is examined, counted and ours delivered in order, not how
  // fast a thread is scheduled on a loaded machine (the benchmarks measure
  // the rate).
  // Over AF_XDP the flood never reaches netpoll (no client claims its
  // port: the XDP program passes it to the kernel), which is what is tested
  // there; the receive ring then holds our datagrams many times over.
  auto np = setup_in(bed.a, config("6666@10.77.0.5/" + np0(xdp() ? "" : "rx_blocks=256") + ",@0.0.0.0/", &inbox));
  ASSERT_TRUE(np) << np.error().message;
  std::unique_ptr<dev::Device> flooder;
  {
    ScopedNetns in(bed.b);
    auto d = dev::open_device("packet:np1?tx_frames=1024");
    ASSERT_TRUE(d) << d.error().message;
    flooder = std::move(*d);
  }
  const Endpoint from{*MacAddr::parse(bed.b_mac), Ipv4Addr(10, 77, 0, 2), 5555};
  const Endpoint other{*MacAddr::parse(bed.a_mac), Ipv4Addr(10, 77, 0, 5), 9999};  // a port nobody has
  const auto noise = udp_frame(from, other, as_bytes("unrelated traffic, unrelated traffic"));
  // What the veth dropped before anything on our side saw it: with an XDP
  // program attached, a veth hands frames over through a ring of 256, and
  // drops (counting them as its peer's transmit drops) what does not fit
  // while the receiving side's softirq falls behind on a loaded machine.
  const auto veth_drops = [&] {
    std::string out;
    sh(bed.b.exec() + "cat /sys/class/net/" + bed.b_if + "/statistics/tx_dropped", &out);
    return out.empty() ? std::uint64_t{0} : std::stoull(out);
  };
  const std::uint64_t drops_before = veth_drops();

  std::atomic<int> flood_sent{0};
  std::thread flood([&] {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kFloodFrames;) {
      // Pace: frame i is due at i / kFloodRate seconds.
      const auto due = start + std::chrono::nanoseconds(std::int64_t{i} * 1'000'000'000 / kFloodRate);
      if (std::chrono::steady_clock::now() < due) {
        std::this_thread::sleep_until(due);
        continue;
      }
      if (flooder->transmit(noise) == dev::TxStatus::kOk) {
        ++i;
      } else {
        flooder->poll();
      }
    }
    flood_sent = kFloodFrames;
  });
  UdpSocket peer(bed.b, bed.b_ip, 5556);
  // The peer kernel may reorder the datagrams it holds while it resolves our
  // address (it flushes its ARP queue without stopping new sends), so
  // resolve first: after that, order is the peer's sending order.
  ASSERT_TRUE(peer.send_to("10.77.0.5", 6666, as_bytes("ours first")));
  ASSERT_TRUE(inbox.wait_for(1));
  for (int i = 0; i < kOurs; ++i) {
    ASSERT_TRUE(peer.send_to("10.77.0.5", 6666, as_bytes("ours " + std::to_string(i))));
    if (i % 100 == 99) std::this_thread::sleep_for(5ms);
  }
  flood.join();
  const bool all = inbox.wait_for(kOurs + 1, 5000ms);
  const std::uint64_t kernel_drops = veth_drops() - drops_before;
  const auto got = inbox.snapshot();
  if (xdp() && !all && kernel_drops > 0) {
    // The kernel lost some of ours with the flood, before the XDP program:
    // no more than it counted, and what came is in order.
    EXPECT_GE(got.size() + kernel_drops, static_cast<std::size_t>(kOurs)) << (*np)->shared().stats_text();
    int last = -1;
    for (std::size_t k = 1; k < got.size(); ++k) {
      ASSERT_EQ(got[k].rfind("ours ", 0), 0u) << got[k];
      const int n = std::stoi(got[k].substr(5));
      EXPECT_GT(n, last) << "in order";
      last = n;
    }
  } else {
    EXPECT_TRUE(all) << "received " << inbox.count.load() << " of " << kOurs + 1 << "; the veth dropped "
                     << kernel_drops << "\n" << (*np)->shared().stats_text();
    ASSERT_EQ(got.size(), static_cast<std::size_t>(kOurs + 1));
    for (int i = 0; i < kOurs; ++i) ASSERT_EQ(got[static_cast<std::size_t>(i) + 1], "ours " + std::to_string(i));
  }
  const auto& no_client = (*np)->shared().stats().rx_drops;
  if (xdp()) {
    // None of the flood came to netpoll: ours, and the ARP that resolved
    // 10.77.0.5, and nothing else.
    EXPECT_EQ(no_client.value(RxDrop::kNoClient), 0u);
    EXPECT_LE((*np)->shared().device().stats().rx_frames.value(), static_cast<std::uint64_t>(kOurs + 1 + 8));
    EXPECT_EQ((*np)->shared().device().stats().rx_dropped.value(), 0u);
    return;
  }
  // Every flood frame was seen and counted too (the last may still be in the
  // ring's open block for a moment).
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (no_client.value(RxDrop::kNoClient) < kFloodFrames && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(no_client.value(RxDrop::kNoClient), static_cast<std::uint64_t>(kFloodFrames));
  EXPECT_EQ((*np)->shared().device().stats().rx_dropped.value(), 0u);
}

TEST_P(CoreOverVeth, SendAndPollOnARealDeviceAllocateNothing) {
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  // A hook that only counts (the Inbox's vector would allocate).
  std::atomic<int> received{0};
  std::atomic<std::size_t> received_bytes{0};
  auto cfg = config("6666@10.77.0.5/" + np0() + ",6666@10.77.0.2/" + bed.b_mac);
  cfg.rx_hook = [&](Netpoll&, const RxInfo&, std::span<const std::byte> p) {
    received.fetch_add(1);
    received_bytes.fetch_add(p.size());
  };
  cfg.device.service_thread = false;
  auto np = setup_in(bed.a, std::move(cfg));
  ASSERT_TRUE(np) << np.error().message;
  ASSERT_TRUE((*np)->send_udp(as_bytes("warm up")));
  ASSERT_TRUE(peer.receive(1000ms));
  // The peer's datagrams wait in the device until the guarded polls below
  // take them (the peer knows our MAC: no ARP to wait for).
  ASSERT_TRUE(sh_ok("ip -n " + bed.b.name() + " neigh replace 10.77.0.5 lladdr " + bed.a_mac + " dev " + bed.b_if));
  constexpr int kIncoming = 50;
  for (int i = 0; i < kIncoming; ++i) ASSERT_TRUE(peer.send_to("10.77.0.5", 6666, as_bytes("incoming")));
  std::size_t sent = 0;
  AllocGuard guard;
  for (int i = 0; i < 200; ++i) {
    sent += (*np)->send_udp(as_bytes("no allocation")).has_value();
    (*np)->poll();
  }
  // Bounded: the peer's datagrams are on their way or already waiting.
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (received.load() < kIncoming && std::chrono::steady_clock::now() < until) (*np)->poll();
  const auto allocations = guard.stop();
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(sent, 200u);
  EXPECT_EQ(received.load(), kIncoming);
  EXPECT_EQ(received_bytes.load(), kIncoming * std::string("incoming").size());
  int arrived = 0;
  while (peer.receive(200ms)) ++arrived;
  EXPECT_EQ(arrived, 200);
}

// The crash path's own way out: its own socket and frames; a batch of
// datagrams in one sendmmsg, accepted by the kernel (so its checksums are
// right); a descriptor the program closed and reused is not written.
TEST_P(CoreOverVeth, ACrashRouteSendsABatchAndSurvivesItsDescriptorBeingReused) {
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  auto np = setup_in(bed.a, config("6665@/" + np0() + ",6666@10.77.0.2/"));
  ASSERT_TRUE(np) << np.error().message;
  // The descriptors the route opens: those open after make() and not before.
  const std::vector<int> before = open_fds();
  std::unique_ptr<CrashRoute> route;
  {
    ScopedNetns in(bed.a);
    auto r = CrashRoute::make(**np);
    ASSERT_TRUE(r) << r.error().message;
    route = std::move(*r);
  }
  ASSERT_NE(route, nullptr) << "a packet or xdp device has a crash route";
  const std::uint64_t device_frames = (*np)->shared().stats().tx_frames.value();  // ARP at setup
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(route->send(as_bytes("crash " + std::to_string(i))));
  EXPECT_EQ(route->flush(), 0u);
  for (int i = 0; i < 100; ++i) {
    auto got = peer.receive(2000ms);
    ASSERT_TRUE(got) << "datagram " << i;
    EXPECT_EQ(as_text(*got), "crash " + std::to_string(i));
  }
  EXPECT_EQ(route->sent(), 100u);
  EXPECT_EQ((*np)->shared().stats().tx_frames.value(), device_frames) << "the normal send path was not used";

  // The program closed the route's socket and opened a file under its
  // number: the route opens a socket of its own again; the file gets nothing.
  std::vector<int> ours;
  for (const int fd : open_fds()) {
    if (std::find(before.begin(), before.end(), fd) == before.end()) ours.push_back(fd);
  }
  ASSERT_FALSE(ours.empty());
  const int file = reuse_for_a_file(ours);
  ASSERT_GE(file, 0);
  {
    ScopedNetns in(bed.a);
    ASSERT_TRUE(route->revalidate());
  }
  ASSERT_TRUE(route->send(as_bytes("after")));
  EXPECT_EQ(route->flush(), 0u);
  EXPECT_EQ(route->errors(), 0u);
  auto got = peer.receive(2000ms);
  ASSERT_TRUE(got);
  EXPECT_EQ(as_text(*got), "after");
  route.reset();  // closes only its own new socket: the file stays open
  expect_file_untouched_and_close(ours, file);
}

}  // namespace
}  // namespace np::core
