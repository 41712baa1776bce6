// The AF_PACKET backend against the Linux kernel, over a veth pair.
//
// Namespace `a` holds np0 (10.77.0.1), where our device is opened; namespace
// `b` holds np1 (10.77.0.2), whose kernel stack is the peer: its UDP sockets
// receive what we send (so it has accepted our checksums) and send what we
// must receive. The device is opened inside `a` and then used from the test
// thread, which is back in the host's namespace: that is the promise
// packet.h makes.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "alloc_guard.h"
#include "net_helpers.h"
#include "netns.h"
#include "netpoll/dev/open.h"
#include "netpoll/dev/packet.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/udp.h"

namespace np::dev {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;

constexpr std::uint16_t kOurPort = 6665;
constexpr std::uint16_t kPeerPort = 6666;

// Helpers: tests/support/net_helpers.h

// --- the bed ----------------------------------------------------------------

class PacketDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(bed.a_mac.empty());
    ASSERT_FALSE(bed.b_mac.empty());
    ours = Endpoint{*MacAddr::parse(bed.a_mac), *Ipv4Addr::parse(bed.a_ip), kOurPort};
    peer = Endpoint{*MacAddr::parse(bed.b_mac), *Ipv4Addr::parse(bed.b_ip), kPeerPort};
  }

  std::unique_ptr<Device> open(const std::string& spec) { return open_in(bed.a, spec); }
  void expect_drops_counted(Device& dev);

  std::unique_ptr<Device> open(const PacketOptions& options) {
    ScopedNetns in(bed.a);
    auto dev = open_packet_device("packet:" + bed.a_if, bed.a_if, options);
    if (!dev) {
      ADD_FAILURE() << dev.error().message;
      return nullptr;
    }
    return std::move(*dev);
  }

  VethBed bed;
  Endpoint ours, peer;
};

// --- tests --------------------------------------------------------------------

TEST_F(PacketDeviceTest, ReportsTheInterfaceItWasOpenedOn) {
  auto dev = open("packet:np0");
  ASSERT_TRUE(dev);
  std::string ifindex;
  np::testing::sh(bed.a.exec() + "cat /sys/class/net/np0/ifindex", &ifindex);
  EXPECT_EQ(dev->name(), "packet:np0");
  EXPECT_EQ(dev->mac(), ours.mac);
  EXPECT_EQ(dev->mtu(), 1500u);
  EXPECT_EQ(dev->ifindex(), std::stoi(ifindex));
  EXPECT_GE(dev->fd(), 0);
  EXPECT_TRUE(dev->link().usable());
}

TEST_F(PacketDeviceTest, KernelSocketReceivesOurDatagramsExactly) {
  auto dev = open("packet:np0");
  ASSERT_TRUE(dev);
  UdpSocket sock(bed.b, bed.b_ip, kPeerPort);

  const std::vector<std::vector<std::byte>> payloads = {bytes_of("netpoll"), bytes_of("x"), pattern(1400, 3),
                                                        pattern(1471, 9)};
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    const auto frame = udp_frame(ours, peer, payloads[i], static_cast<std::uint16_t>(i + 1));
    bytes += frame.size();
    ASSERT_EQ(dev->transmit(frame), TxStatus::kOk) << "payload " << i;
    std::string from;
    const auto got = sock.receive(2000ms, &from);
    ASSERT_TRUE(got) << "the peer's kernel never delivered payload " << i << " (" << payloads[i].size()
                     << " bytes): bad checksum or frame";
    EXPECT_EQ(*got, payloads[i]);
    EXPECT_EQ(from, "10.77.0.1:6665");
  }
  EXPECT_EQ(dev->stats().tx_frames.value(), payloads.size());
  EXPECT_EQ(dev->stats().tx_bytes.value(), bytes);
  EXPECT_EQ(dev->stats().tx_busy.value(), 0u);
  EXPECT_EQ(dev->stats().tx_errors.value(), 0u);
}

TEST_F(PacketDeviceTest, ReceivesKernelDatagramsWithVerifiedChecksums) {
  // With the receive ring and without it (rx=copy).
  for (const std::string spec : {"packet:np0", "packet:np0?rx=copy"}) {
    SCOPED_TRACE(spec);
    auto dev = open(spec);
    ASSERT_TRUE(dev);
    UdpSocket sock(bed.b, bed.b_ip, kPeerPort);

    // Over veth the sender's stack leaves the UDP checksum to "hardware";
    // the device must hand us frames whose checksums verify.
    for (const auto& payload : {bytes_of("odd-length!"), pattern(1400, 5)}) {
      ASSERT_TRUE(sock.send_to(bed.a_ip, kOurPort, payload));
      const auto [got, broken] = receive_udp(*dev, kOurPort, 2000ms);
      ASSERT_TRUE(got) << "no datagram of " << payload.size() << " bytes; IPv4/UDP frames failing checks: "
                       << broken.size() << (broken.empty() ? "" : std::string(" first: ") + to_string(broken[0]));
      EXPECT_TRUE(broken.empty()) << to_string(broken[0]);
      EXPECT_EQ(got->payload, payload);
      EXPECT_NE(got->checksum, 0) << "the checksum must have been there to verify";
      EXPECT_EQ(got->src, peer.ip);
      EXPECT_EQ(got->dst, ours.ip);
      EXPECT_EQ(got->src_port, kPeerPort);
      EXPECT_EQ(got->src_mac, peer.mac);
      EXPECT_EQ(got->dst_mac, ours.mac);
    }
    EXPECT_GE(dev->stats().rx_frames.value(), 2u);
    EXPECT_EQ(dev->stats().rx_dropped.value(), 0u);
  }
}

TEST_F(PacketDeviceTest, DoesNotSeeOutgoingFrames) {
  // With the receive ring and without it (rx=copy).
  for (const std::string spec : {"packet:np0", "packet:np0?rx=copy"}) {
    SCOPED_TRACE(spec);
    auto dev = open(spec);
    ASSERT_TRUE(dev);
    UdpSocket peer_sock(bed.b, bed.b_ip, kPeerPort);
    UdpSocket local_sock(bed.a, bed.a_ip, 7000);  // namespace a's own stack

    const auto own = bytes_of("own frame");
    const auto local = bytes_of("local stack frame");
    const auto sentinel = bytes_of("sentinel from the peer");
    ASSERT_EQ(dev->transmit(udp_frame(ours, peer, own)), TxStatus::kOk);
    ASSERT_TRUE(local_sock.send_to(bed.b_ip, kPeerPort, local));
    // Both left through np0: the peer has them.
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(peer_sock.receive(2000ms)) << "frame " << i << " never reached the peer";

    // Anything np0 sent went through the packet tap before the peer could
    // answer, so once the peer's sentinel is here, an echo would be too.
    ASSERT_TRUE(peer_sock.send_to(bed.a_ip, kOurPort, sentinel));
    int echoes = 0;
    const bool ok = receive_until(*dev, 2000ms, [&](std::span<const std::byte> f) {
      auto udp = parse_udp(f);
      if (!udp) return false;
      if (udp->payload == own || udp->payload == local) ++echoes;
      return udp->payload == sentinel;
    });
    ASSERT_TRUE(ok) << "the sentinel never arrived";
    EXPECT_EQ(echoes, 0);
  }
}

TEST_F(PacketDeviceTest, SmallBudgetResumesWhereItStopped) {
  auto dev = open("packet:np0");
  ASSERT_TRUE(dev);
  UdpSocket sock(bed.b, bed.b_ip, kPeerPort);
  // Resolve ARP first, so the burst below leaves the peer back to back and
  // lands in one ring block.
  ASSERT_TRUE(sock.send_to(bed.a_ip, kOurPort, bytes_of("warm-up")));
  ASSERT_TRUE(receive_udp(*dev, kOurPort, 2000ms).udp);

  constexpr int kCount = 6;
  for (int i = 0; i < kCount; ++i) ASSERT_TRUE(sock.send_to(bed.a_ip, kOurPort, bytes_of("seq " + std::to_string(i))));

  std::vector<std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + 2000ms;
  while (got.size() < kCount && std::chrono::steady_clock::now() < deadline) {
    std::size_t handed = 0;
    const std::size_t n = dev->receive(1, [&](std::span<const std::byte> f) {
      ++handed;
      auto u = parse_udp(f);
      if (u && u->dst_port == kOurPort)
        got.emplace_back(reinterpret_cast<const char*>(u->payload.data()), u->payload.size());
    });
    ASSERT_LE(n, 1u);
    ASSERT_EQ(n, handed);
    if (n == 0) {
      pollfd p{dev->fd(), POLLIN, 0};
      ::poll(&p, 1, 50);
    }
  }
  std::vector<std::string> want;
  for (int i = 0; i < kCount; ++i) want.push_back("seq " + std::to_string(i));
  EXPECT_EQ(got, want);
}

TEST_F(PacketDeviceTest, CountsFramesTheKernelDroppedForWantOfRoom) {
  // A small ring, and without a ring (rx=copy) a small socket queue.
  for (const bool ring : {true, false}) {
    SCOPED_TRACE(ring ? "ring" : "rx=copy");
    PacketOptions small;
    small.rx_ring = ring;
    small.rx_blocks = 2;
    small.rx_block_size = 8192;  // a handful of 1 KB frames per block
    auto dev = open(small);
    ASSERT_TRUE(dev);
    const int queue = 4096;  // the kernel doubles it: a few 1 KB frames
    if (!ring) {
      ASSERT_EQ(::setsockopt(dev->fd(), SOL_SOCKET, SO_RCVBUF, &queue, sizeof queue), 0);
    }
    expect_drops_counted(*dev);
  }
}

// Floods `dev` from the peer without receiving, then drains it: every
// flood frame was delivered or counted as dropped.
void PacketDeviceTest::expect_drops_counted(Device& dev) {
  UdpSocket sock(bed.b, bed.b_ip, kPeerPort);
  ASSERT_TRUE(sock.send_to(bed.a_ip, kOurPort, bytes_of("warm-up")));
  ASSERT_TRUE(receive_udp(dev, kOurPort, 2000ms).udp);
  ASSERT_EQ(dev.stats().rx_dropped.value(), 0u);

  // Flood without receiving: the ring's blocks or the socket's queue fill,
  // the kernel drops the rest.
  constexpr std::uint64_t kFlood = 300;
  const auto filler = pattern(1000, 1);
  for (std::uint64_t i = 0; i < kFlood; ++i) ASSERT_TRUE(sock.send_to(bed.a_ip, kOurPort, filler));

  std::uint64_t flood_seen = 0;
  const auto count_flood = [&](std::span<const std::byte> f) {
    auto u = parse_udp(f);
    if (u && u->dst_port == kOurPort && u->payload == filler) ++flood_seen;
  };
  // Drain until the wire has been quiet for 100 ms.
  for (int rounds = 0; rounds < 100; ++rounds) {
    if (dev.receive(64, count_flood) > 0) continue;
    pollfd p{dev.fd(), POLLIN, 0};
    if (::poll(&p, 1, 100) == 0) break;
  }
  // The kernel reports its drops on the next block it closes (or, without
  // a ring, with the next frame it queues), so the count is complete once
  // the sentinel has been received.
  const auto sentinel = bytes_of("after the flood");
  ASSERT_TRUE(sock.send_to(bed.a_ip, kOurPort, sentinel));
  ASSERT_TRUE(receive_until(dev, 2000ms, [&](std::span<const std::byte> f) {
    count_flood(f);
    auto u = parse_udp(f);
    return u && u->payload == sentinel;
  })) << "the sentinel never arrived";

  const std::uint64_t dropped = dev.stats().rx_dropped.value();
  EXPECT_GT(flood_seen, 0u);
  EXPECT_LT(flood_seen, kFlood);
  EXPECT_GT(dropped, 0u);
  // Every flood frame was either delivered or counted (the count may also
  // hold a few unrelated frames dropped meanwhile, e.g. ARP).
  EXPECT_GE(flood_seen + dropped, kFlood);
}

TEST_F(PacketDeviceTest, SaysWhichReceiveModesThereAre) {
  ScopedNetns in(bed.a);
  auto dev = open_device("packet:np0?rx=fast");
  ASSERT_FALSE(dev);
  EXPECT_NE(dev.error().message.find("expected ring or copy"), std::string::npos) << dev.error().message;
}

TEST_F(PacketDeviceTest, FullRingIsBusyAndABusyFrameIsNotSent) {
  // A very slow qdisc holds transmitted frames, so their slots stay the
  // kernel's and the two-slot ring fills.
  ASSERT_TRUE(sh_ok(bed.a.exec() + "tc qdisc add dev np0 root tbf rate 8kbit burst 1600 limit 100000"));
  PacketOptions tiny;
  tiny.tx_frames = 2;
  auto dev = open(tiny);
  ASSERT_TRUE(dev);
  UdpSocket sock(bed.b, bed.b_ip, kPeerPort);

  std::vector<std::vector<std::byte>> accepted;
  std::vector<std::byte> refused;
  for (int i = 0; i < 8 && refused.empty(); ++i) {
    auto payload = pattern(1000, static_cast<std::uint8_t>(i));
    const TxStatus s = dev->transmit(udp_frame(ours, peer, payload));
    ASSERT_NE(s, TxStatus::kError);
    (s == TxStatus::kOk ? accepted.emplace_back(std::move(payload)) : refused = std::move(payload));
  }
  ASSERT_FALSE(refused.empty()) << "a 2-slot ring behind an 8 kbit/s qdisc never reported busy";
  EXPECT_GE(accepted.size(), 2u);
  EXPECT_EQ(dev->stats().tx_busy.value(), 1u);
  EXPECT_EQ(dev->stats().tx_frames.value(), accepted.size());

  // Open the tap; the retried frame must go out exactly once, after the
  // ones that were taken.
  ASSERT_TRUE(sh_ok(bed.a.exec() + "tc qdisc change dev np0 root tbf rate 1gbit burst 100000 limit 100000"));
  TxStatus retry = TxStatus::kBusy;
  for (int i = 0; i < 200 && retry == TxStatus::kBusy; ++i) {
    retry = dev->transmit(udp_frame(ours, peer, refused));
    if (retry == TxStatus::kBusy) std::this_thread::sleep_for(10ms);  // the qdisc drains on its own clock
  }
  ASSERT_EQ(retry, TxStatus::kOk);
  accepted.push_back(refused);

  std::vector<std::vector<std::byte>> received;
  while (auto got = sock.receive(received.size() < accepted.size() ? 3000ms : 200ms)) received.push_back(*got);
  EXPECT_EQ(received, accepted);
}

TEST_F(PacketDeviceTest, LinkFollowsTheInterfaceAndDownIsBusyNotLost) {
  auto dev = open("packet:np0");
  ASSERT_TRUE(dev);
  UdpSocket sock(bed.b, bed.b_ip, kPeerPort);
  ASSERT_TRUE(dev->link().usable());

  ASSERT_TRUE(sh_ok(bed.a.exec() + "ip link set np0 down"));
  const LinkState down = dev->link();
  EXPECT_FALSE(down.running);
  EXPECT_FALSE(down.carrier);
  // link() also clears the error the kernel left on the socket; otherwise
  // poll(2) would report POLLERR on fd() for ever. (POLLIN may be there:
  // frames the peer kernel sent while the link was up, such as its IPv6
  // neighbour discovery, sit in the ring.)
  pollfd p{dev->fd(), POLLIN, 0};
  ::poll(&p, 1, 0);
  EXPECT_EQ(p.revents & (POLLERR | POLLHUP | POLLNVAL), 0) << "revents " << p.revents;

  const auto lost = bytes_of("sent while down");
  EXPECT_EQ(dev->transmit(udp_frame(ours, peer, lost)), TxStatus::kBusy);
  EXPECT_EQ(dev->stats().tx_busy.value(), 1u);
  EXPECT_EQ(dev->stats().tx_frames.value(), 0u);
  dev->poll();

  ASSERT_TRUE(sh_ok(bed.a.exec() + "ip link set np0 up"));
  ASSERT_TRUE(wait_link(*dev, true, 3000ms)) << "link never came back";
  const auto after = bytes_of("sent after up");
  ASSERT_EQ(dev->transmit(udp_frame(ours, peer, after)), TxStatus::kOk);
  const auto got = sock.receive(2000ms);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, after) << "the frame refused while down must not have been kept";
  EXPECT_FALSE(sock.receive(100ms)) << "a second datagram arrived";

  // Receiving works again too.
  ASSERT_TRUE(sock.send_to(bed.a_ip, kOurPort, bytes_of("back")));
  EXPECT_TRUE(receive_udp(*dev, kOurPort, 2000ms).udp);
}

TEST_F(PacketDeviceTest, RefusesFramesLongerThanTheMtu) {
  auto dev = open("packet:np0");
  ASSERT_TRUE(dev);
  std::vector<std::byte> frame(dev->mtu() + Device::kEthHeaderLen + 1, std::byte{0});
  EXPECT_EQ(dev->transmit(frame), TxStatus::kError);
  EXPECT_EQ(dev->transmit(std::span(frame).first(10)), TxStatus::kError);
  EXPECT_EQ(dev->stats().tx_errors.value(), 2u);
  EXPECT_EQ(dev->stats().tx_frames.value(), 0u);
  // Exactly mtu + 14 is fine.
  EXPECT_EQ(dev->transmit(std::span(frame).first(dev->mtu() + Device::kEthHeaderLen)), TxStatus::kOk);
}

TEST(PacketDevice, UnknownInterfaceIsNamedInTheError) {
  Netns ns("nope");
  ScopedNetns in(ns);
  auto dev = open_device("packet:np-nope0");
  ASSERT_FALSE(dev);
  EXPECT_EQ(dev.error().code, Errc::kNoSuchDevice);
  EXPECT_EQ(dev.error().message, "no such interface: np-nope0");
}

TEST(PacketDevice, RefusesAnInterfaceThatIsNotEthernet) {
  Netns ns("lo");
  ScopedNetns in(ns);
  auto dev = open_device("packet:lo");
  ASSERT_FALSE(dev);
  EXPECT_EQ(dev.error().code, Errc::kUnsupported);
  EXPECT_EQ(dev.error().message, "packet:lo: lo is not an Ethernet interface (link type 772)");
}

TEST(PacketDevice, WithoutCapNetRawSaysWhatIsMissing) {
  const auto error = open_error_without(CAP_NET_RAW, "packet:np0");
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, Errc::kPermission);
  EXPECT_EQ(error->message, "packet:np0: AF_PACKET needs CAP_NET_RAW (run as root)");
}

TEST_F(PacketDeviceTest, DataPathAllocatesNothing) {
  // With the receive ring and without it (rx=copy).
  for (const std::string spec : {"packet:np0", "packet:np0?rx=copy"}) {
    SCOPED_TRACE(spec);
    auto dev = open(spec);
    ASSERT_TRUE(dev);
    UdpSocket sock(bed.b, bed.b_ip, kPeerPort);
    const auto frame = udp_frame(ours, peer, bytes_of("no allocation"));
    ASSERT_TRUE(sock.send_to(bed.a_ip, kOurPort, bytes_of("incoming")));

    // Frames are copied into storage made before the guard is armed. Other
    // traffic (the peer's ARP, IPv6 neighbour discovery) may come first, so
    // the guarded region receives until the kernel's datagram is seen
    // (bounded; poll(2) between rounds allocates nothing either).
    FrameStore frames;
    std::size_t received = 0;
    bool found = false;
    TxStatus sent = TxStatus::kError;
    LinkState link;
    AllocGuard guard;
    sent = dev->transmit(frame);
    for (int round = 0; round < 200 && !found; ++round) {
      received += dev->receive(16, [&](std::span<const std::byte> f) {
        frames.keep(f);
        // Views only: parse_udp() would allocate its result.
        auto eth = wire::EthernetFrame<const std::byte>::check(f);
        if (!eth || eth->ethertype() != wire::ethertype::kIpv4) return;
        auto ip = wire::Ipv4Packet<const std::byte>::check(eth->payload());
        if (!ip || ip->protocol() != wire::ip_proto::kUdp) return;
        auto udp = wire::UdpPacket<const std::byte>::check(ip->payload());
        found = found || (udp && udp->payload().size() == 8 && std::memcmp(udp->payload().data(), "incoming", 8) == 0);
      });
      pollfd p{dev->fd(), POLLIN, 0};
      if (!found) ::poll(&p, 1, 10);
    }
    dev->poll();
    link = dev->link();
    const std::uint64_t allocations = guard.stop();

    EXPECT_EQ(allocations, 0u);
    EXPECT_EQ(sent, TxStatus::kOk);
    EXPECT_GE(received, 1u);
    EXPECT_TRUE(link.usable());
    EXPECT_TRUE(found) << "the kernel's datagram was not among the " << frames.kept() << " frames received";
    EXPECT_TRUE(sock.receive(2000ms)) << "the transmitted frame never reached the kernel socket";
  }
}

}  // namespace
}  // namespace np::dev
