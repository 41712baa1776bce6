// The TAP backend against the Linux kernel, in a namespace of its own.
//
// The test thread enters a fresh namespace only to open the device (and to
// make kernel sockets); the kernel side of the TAP gets 10.78.0.1/24 and our
// end plays 10.78.0.2 with the device's MAC. Everything else runs from the
// host's namespace, through the device's descriptors.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <poll.h>

#include <chrono>
#include <string>
#include <vector>

#include "alloc_guard.h"
#include "net_helpers.h"
#include "netns.h"
#include "netpoll/dev/open.h"
#include "netpoll/dev/tap.h"

namespace np::dev {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;

constexpr std::uint16_t kLocalPort = 6665;
constexpr std::uint16_t kKernelPort = 6666;
const std::string kKernelIp = "10.78.0.1";
const std::string kOurIp = "10.78.0.2";

// Helpers: tests/support/net_helpers.h

// --- the bed ----------------------------------------------------------------

class TapDeviceTest : public ::testing::Test {
 protected:
  // Opens `spec` inside the namespace; the device outlives the scope.
  std::unique_ptr<Device> open(const std::string& spec) { return open_in(ns, spec); }

  SetupResult<std::unique_ptr<Device>> try_open(const std::string& spec) {
    ScopedNetns in(ns);
    return open_device(spec);
  }

  // Opens tap:np-tap0 and gives the kernel side its address.
  std::unique_ptr<Device> open_addressed() {
    auto dev = open("tap:np-tap0");
    if (!dev) return nullptr;
    if (!sh_ok("ip -n " + ns.name() + " addr add " + kKernelIp + "/24 dev np-tap0")) return nullptr;
    kernel_mac = *MacAddr::parse(np::testing::mac_of(ns, "np-tap0"));
    ours = Endpoint{dev->mac(), *Ipv4Addr::parse(kOurIp), kLocalPort};
    kernel = Endpoint{kernel_mac, *Ipv4Addr::parse(kKernelIp), kKernelPort};
    return dev;
  }

  Netns ns{"tap"};
  MacAddr kernel_mac;
  Endpoint ours, kernel;
};

// --- tests --------------------------------------------------------------------

TEST_F(TapDeviceTest, CreatesTheInterfaceUpWithItsOwnMac) {
  auto dev = open("tap:np-tap0");
  ASSERT_TRUE(dev);
  std::string flags, ifindex;
  sh("ip netns exec " + ns.name() + " cat /sys/class/net/np-tap0/flags", &flags);
  sh("ip netns exec " + ns.name() + " cat /sys/class/net/np-tap0/ifindex", &ifindex);
  EXPECT_EQ(std::stoul(flags, nullptr, 16) & 0x1, 0x1u) << "IFF_UP";
  EXPECT_EQ(dev->name(), "tap:np-tap0");
  EXPECT_EQ(dev->ifindex(), std::stoi(ifindex));
  EXPECT_EQ(dev->mtu(), 1500u);
  EXPECT_GE(dev->fd(), 0);
  EXPECT_TRUE(dev->link().usable());
  // Our end is another machine: locally administered, unicast, and not the
  // kernel side's address.
  EXPECT_EQ(dev->mac()[0], 0x02);
  EXPECT_NE(dev->mac(), *MacAddr::parse(np::testing::mac_of(ns, "np-tap0")));
}

TEST_F(TapDeviceTest, DerivedMacIsStablePerNameAndCanBeGiven) {
  MacAddr first, again, other;
  {
    auto dev = open("tap:np-tap0");
    ASSERT_TRUE(dev);
    first = dev->mac();
  }
  {
    auto dev = open("tap:np-tap0");
    ASSERT_TRUE(dev);
    again = dev->mac();
  }
  {
    auto dev = open("tap:np-tap1");
    ASSERT_TRUE(dev);
    other = dev->mac();
  }
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);
  EXPECT_TRUE(first.is_unicast());
  auto given = open("tap:np-tap0?mac=02:00:00:00:00:42");
  ASSERT_TRUE(given);
  EXPECT_EQ(given->mac(), MacAddr(0x02, 0, 0, 0, 0, 0x42));
}

TEST_F(TapDeviceTest, KernelSocketReceivesOurDatagramsExactly) {
  auto dev = open_addressed();
  ASSERT_TRUE(dev);
  UdpSocket sock(ns, kKernelIp, kKernelPort);
  const std::vector<std::vector<std::byte>> payloads = {bytes_of("netpoll"), bytes_of("x"), pattern(1400, 1),
                                                        pattern(1472, 2)};
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    ASSERT_EQ(dev->transmit(udp_frame(ours, kernel, payloads[i])), TxStatus::kOk) << "payload " << i;
    std::string from;
    const auto got = sock.receive(2000ms, &from);
    ASSERT_TRUE(got) << "the kernel never delivered payload " << i << " (" << payloads[i].size() << " bytes)";
    EXPECT_EQ(*got, payloads[i]);
    EXPECT_EQ(from, "10.78.0.2:6665");
  }
  EXPECT_EQ(dev->stats().tx_frames.value(), payloads.size());
  EXPECT_EQ(dev->stats().tx_errors.value(), 0u);
}

TEST_F(TapDeviceTest, AnswersTheKernelsArpAndReceivesItsDatagrams) {
  auto dev = open_addressed();
  ASSERT_TRUE(dev);
  UdpSocket sock(ns, kKernelIp, kKernelPort);
  for (const auto& payload : {bytes_of("odd-length!"), pattern(1400, 3)}) {
    ASSERT_TRUE(sock.send_to(kOurIp, kLocalPort, payload));
    const auto [got, broken] = receive_udp(*dev, kLocalPort, 3000ms, &ours);
    ASSERT_TRUE(got) << "no datagram of " << payload.size() << " bytes";
    EXPECT_TRUE(broken.empty()) << to_string(broken[0]);
    EXPECT_EQ(got->payload, payload);
    EXPECT_NE(got->checksum, 0);
    EXPECT_EQ(got->src, kernel.ip);
    EXPECT_EQ(got->dst, ours.ip);
    EXPECT_EQ(got->src_port, kKernelPort);
    EXPECT_EQ(got->src_mac, kernel_mac);
    EXPECT_EQ(got->dst_mac, ours.mac);
  }
  // The kernel learnt our MAC from the reply.
  std::string neigh;
  sh("ip -n " + ns.name() + " neigh show " + kOurIp + " dev np-tap0", &neigh);
  EXPECT_NE(neigh.find(ours.mac.to_string()), std::string::npos) << neigh;
}

TEST_F(TapDeviceTest, AttachesToAnExistingPersistentTapAndLeavesItThere) {
  ASSERT_TRUE(sh_ok("ip -n " + ns.name() + " tuntap add dev np-ptap0 mode tap"));
  std::string ifindex;
  sh("ip netns exec " + ns.name() + " cat /sys/class/net/np-ptap0/ifindex", &ifindex);
  {
    auto dev = open("tap:np-ptap0?up=0");
    ASSERT_TRUE(dev);
    EXPECT_EQ(dev->ifindex(), std::stoi(ifindex));
    EXPECT_FALSE(dev->link().running) << "up=0 must leave it down";
    // A second reader on a single-queue TAP is refused, by name.
    auto second = try_open("tap:np-ptap0");
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, Errc::kExists);
    EXPECT_EQ(second.error().message, "tap:np-ptap0: TAP interface np-ptap0 is already attached to another process");
  }
  EXPECT_TRUE(interface_exists(ns, "np-ptap0")) << "a persistent TAP must survive its reader";

  // One we create ourselves goes away with the device.
  {
    auto dev = open("tap:np-tmp0");
    ASSERT_TRUE(dev);
    EXPECT_TRUE(interface_exists(ns, "np-tmp0"));
  }
  EXPECT_FALSE(interface_exists(ns, "np-tmp0"));
}

TEST_F(TapDeviceTest, RefusesAnInterfaceThatIsNotATap) {
  ASSERT_TRUE(sh_ok("ip -n " + ns.name() + " link add np-veth0 type veth peer name np-veth1"));
  ASSERT_TRUE(sh_ok("ip -n " + ns.name() + " tuntap add dev np-tun0 mode tun"));
  auto veth = try_open("tap:np-veth0");
  ASSERT_FALSE(veth);
  EXPECT_EQ(veth.error().code, Errc::kUnsupported);
  EXPECT_EQ(veth.error().message,
            "tap:np-veth0: interface np-veth0 exists and is not a TAP device (it is a veth device)");
  auto tun = try_open("tap:np-tun0");
  ASSERT_FALSE(tun);
  EXPECT_EQ(tun.error().code, Errc::kUnsupported);
  EXPECT_EQ(tun.error().message,
            "tap:np-tun0: interface np-tun0 exists and is not a TAP device (it is a TUN (layer 3) device)");
  auto lo = try_open("tap:lo");
  ASSERT_FALSE(lo);
  EXPECT_EQ(lo.error().message, "tap:lo: interface lo exists and is not a TAP device");
  auto long_name = try_open("tap:np-much-too-long0");
  ASSERT_FALSE(long_name);
  EXPECT_EQ(long_name.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(long_name.error().message,
            "tap:np-much-too-long0: interface name 'np-much-too-long0' is longer than 15 characters");
}

TEST_F(TapDeviceTest, KernelSideDownIsBusyAndNothingIsKept) {
  auto dev = open_addressed();
  ASSERT_TRUE(dev);
  UdpSocket sock(ns, kKernelIp, kKernelPort);
  ASSERT_TRUE(sh_ok("ip -n " + ns.name() + " link set np-tap0 down"));
  const LinkState down = dev->link();
  EXPECT_FALSE(down.running);
  EXPECT_FALSE(down.carrier);
  EXPECT_EQ(dev->transmit(udp_frame(ours, kernel, bytes_of("sent while down"))), TxStatus::kBusy);
  EXPECT_EQ(dev->stats().tx_busy.value(), 1u);
  EXPECT_EQ(dev->stats().tx_frames.value(), 0u);

  ASSERT_TRUE(sh_ok("ip -n " + ns.name() + " link set np-tap0 up"));
  EXPECT_TRUE(dev->link().usable());
  const auto after = bytes_of("sent after up");
  ASSERT_EQ(dev->transmit(udp_frame(ours, kernel, after)), TxStatus::kOk);
  const auto got = sock.receive(2000ms);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, after);
  EXPECT_FALSE(sock.receive(100ms)) << "a second datagram arrived";
}

TEST_F(TapDeviceTest, RefusesFramesLongerThanTheMtu) {
  auto dev = open("tap:np-tap0");
  ASSERT_TRUE(dev);
  std::vector<std::byte> frame(dev->mtu() + Device::kEthHeaderLen + 1, std::byte{0});
  EXPECT_EQ(dev->transmit(frame), TxStatus::kError);
  EXPECT_EQ(dev->transmit(std::span(frame).first(13)), TxStatus::kError);
  EXPECT_EQ(dev->stats().tx_errors.value(), 2u);
  EXPECT_EQ(dev->stats().tx_frames.value(), 0u);
}

TEST_F(TapDeviceTest, WithoutCapNetAdminSaysWhatIsMissing) {
  const auto error = open_error_without(CAP_NET_ADMIN, "tap:np-tap9", &ns);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, Errc::kPermission);
  EXPECT_EQ(error->message, "tap:np-tap9: creating TAP interface np-tap9 needs CAP_NET_ADMIN (run as root)");
  EXPECT_FALSE(interface_exists(ns, "np-tap9"));
}

TEST_F(TapDeviceTest, DataPathAllocatesNothing) {
  auto dev = open_addressed();
  ASSERT_TRUE(dev);
  UdpSocket sock(ns, kKernelIp, kKernelPort);
  ASSERT_TRUE(sh_ok("ip -n " + ns.name() + " neigh add " + kOurIp + " lladdr " + ours.mac.to_string() +
                    " dev np-tap0"));
  const auto frame = udp_frame(ours, kernel, bytes_of("no allocation"));
  ASSERT_TRUE(sock.send_to(kOurIp, kLocalPort, bytes_of("incoming")));
  pollfd p{dev->fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1);

  // Frames are copied into storage made before the guard is armed.
  FrameStore frames;
  std::size_t received = 0;
  TxStatus sent = TxStatus::kError;
  LinkState link;
  AllocGuard guard;
  sent = dev->transmit(frame);
  received = dev->receive(FrameStore::kSlots, [&](std::span<const std::byte> f) { frames.keep(f); });
  dev->poll();
  link = dev->link();
  const std::uint64_t allocations = guard.stop();

  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(sent, TxStatus::kOk);
  EXPECT_GE(received, 1u);
  EXPECT_TRUE(link.usable());
  bool found = false;
  for (std::size_t i = 0; i < frames.held(); ++i) {
    auto udp = parse_udp(frames.frame(i));
    found = found || (udp && udp->payload == bytes_of("incoming"));
  }
  EXPECT_TRUE(found) << "the kernel's datagram was not among the " << frames.kept() << " frames received";
  EXPECT_TRUE(sock.receive(2000ms)) << "the transmitted frame never reached the kernel socket";
}

}  // namespace
}  // namespace np::dev
