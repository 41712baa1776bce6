// The UDP tunnel against plain kernel UDP sockets in this process. (Two
// processes talking over the tunnel: tests/integration/udp_tunnel_test.cpp.)
#include "netpoll/dev/udp_tunnel.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "alloc_guard.h"
#include "frames.h"
#include "netpoll/dev/open.h"

namespace np::dev {
namespace {

using np::testing::Bytes;
using np::testing::pattern;

// A UDP socket on 127.0.0.1 that plays the far end of a tunnel.
class Peer {
 public:
  explicit Peer(std::uint16_t port = 0) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Peer() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  std::uint16_t port() const { return port_; }
  void send_to(std::uint16_t port, const Bytes& b) const {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    ASSERT_EQ(::sendto(fd_, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a),
              static_cast<ssize_t>(b.size()));
  }
  // One datagram, waiting at most a second.
  Bytes recv() const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) return {};
    Bytes b(70000);
    const ssize_t n = ::recv(fd_, b.data(), b.size(), 0);
    b.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    return b;
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A port nobody listens on (bound, read, released).
std::uint16_t unused_port() {
  Peer p;
  return p.port();
}

std::string spec(std::uint16_t local, std::uint16_t remote, std::string_view options = "") {
  return "udp:127.0.0.1:" + std::to_string(local) + "@127.0.0.1:" + std::to_string(remote) + std::string(options);
}

std::unique_ptr<UdpTunnelDevice> open_tunnel(std::uint16_t local, std::uint16_t remote, UdpTunnelOptions o = {}) {
  const std::string s = spec(local, remote);
  auto d = open_udp_tunnel_device(s, std::string_view(s).substr(4), o);
  EXPECT_TRUE(d.has_value()) << (d ? "" : d.error().message);
  return d ? std::move(*d) : nullptr;
}

// Receives until `want` frames arrived or a second passed.
std::vector<Bytes> receive(Device& d, std::size_t want) {
  std::vector<Bytes> out;
  for (int round = 0; round < 100 && out.size() < want; ++round) {
    pollfd p{d.fd(), POLLIN, 0};
    ::poll(&p, 1, 10);
    d.receive(want - out.size(), [&](std::span<const std::byte> f) { out.emplace_back(f.begin(), f.end()); });
  }
  return out;
}

TEST(UdpTunnel, DefaultMacNamesTheLocalEndpoint) {
  EXPECT_EQ(udp_tunnel_default_mac(Ipv4Addr(127, 0, 0, 1), 7001), MacAddr(0x02, 0, 0, 1, 0x1b, 0x59));
  EXPECT_EQ(udp_tunnel_default_mac(Ipv4Addr(10, 1, 2, 3), 0x1234), MacAddr(0x02, 1, 2, 3, 0x12, 0x34));
  const std::uint16_t port = unused_port();
  auto d = open_device(spec(port, 9));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ((*d)->mac(), MacAddr(0x02, 0, 0, 1, static_cast<std::uint8_t>(port >> 8),
                                 static_cast<std::uint8_t>(port & 0xff)));
  EXPECT_TRUE((*d)->mac().is_unicast());
  EXPECT_EQ((*d)->mtu(), 1500u);
  EXPECT_EQ((*d)->ifindex(), 0);
  EXPECT_GE((*d)->fd(), 0);
  EXPECT_EQ((*d)->name(), spec(port, 9));
  EXPECT_TRUE((*d)->link().usable());
}

TEST(UdpTunnel, MacAndMtuOptionsAreHonoured) {
  const std::uint16_t port = unused_port();
  auto d = open_device(spec(port, 9, "?mac=02:aa:bb:cc:dd:ee&mtu=9000"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ((*d)->mac(), MacAddr(0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee));
  EXPECT_EQ((*d)->mtu(), 9000u);
}

TEST(UdpTunnel, EachFrameIsOneDatagramBothWays) {
  Peer peer;
  auto t = open_tunnel(unused_port(), peer.port());
  ASSERT_TRUE(t);
  const Bytes out = pattern(1514, 1);
  ASSERT_EQ(t->transmit(out), TxStatus::kOk);
  EXPECT_EQ(peer.recv(), out);  // no header, no length prefix

  // The tunnel sends from LOCAL, so the peer learns where to answer.
  const Bytes in1 = pattern(60, 2), in2 = pattern(14, 3);
  sockaddr_in local{};
  socklen_t len = sizeof local;
  ::getsockname(t->fd(), reinterpret_cast<sockaddr*>(&local), &len);
  peer.send_to(ntohs(local.sin_port), in1);
  peer.send_to(ntohs(local.sin_port), in2);
  EXPECT_EQ(receive(*t, 2), (std::vector<Bytes>{in1, in2}));
  EXPECT_EQ(t->stats().tx_frames.value(), 1u);
  EXPECT_EQ(t->stats().tx_bytes.value(), 1514u);
  EXPECT_EQ(t->stats().rx_frames.value(), 2u);
  EXPECT_EQ(t->stats().rx_bytes.value(), 74u);
}

TEST(UdpTunnel, OversizedRuntAndForeignDatagramsAreNotDelivered) {
  Peer peer;
  const std::uint16_t local = unused_port();
  UdpTunnelOptions o;
  o.mtu = 100;
  auto t = open_tunnel(local, peer.port(), o);
  ASSERT_TRUE(t);
  peer.send_to(local, pattern(115, 1));  // mtu + 15: one byte too long
  peer.send_to(local, pattern(13, 2));   // shorter than an Ethernet header
  peer.send_to(local, pattern(114, 3));  // exactly mtu + 14
  {
    Peer stranger;  // not REMOTE: connect() has the kernel drop it
    stranger.send_to(local, pattern(60, 4));
  }
  EXPECT_EQ(receive(*t, 1), std::vector<Bytes>{pattern(114, 3)});
  EXPECT_EQ(t->stats().rx_dropped.value(), 2u);
  EXPECT_EQ(t->stats().rx_frames.value(), 1u);
  // Loopback delivers during sendto(): had the stranger's datagram got
  // through, it would be waiting now.
  EXPECT_EQ(t->receive(8, [](std::span<const std::byte>) {}), 0u);
}

TEST(UdpTunnel, FramesTooLongOrTooShortAreErrors) {
  Peer peer;
  UdpTunnelOptions o;
  o.mtu = 100;
  auto t = open_tunnel(unused_port(), peer.port(), o);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->transmit(pattern(115, 1)), TxStatus::kError);
  EXPECT_EQ(t->transmit(pattern(13, 1)), TxStatus::kError);
  EXPECT_EQ(t->stats().tx_errors.value(), 2u);
  EXPECT_EQ(t->transmit(pattern(114, 1)), TxStatus::kOk);
  EXPECT_EQ(peer.recv(), pattern(114, 1));
}

TEST(UdpTunnel, APeerNotListeningLosesFramesButNeverWedgesTheDevice) {
  const std::uint16_t remote = unused_port();  // nobody there: ICMP port unreachable
  auto t = open_tunnel(unused_port(), remote);
  ASSERT_TRUE(t);
  for (std::uint8_t i = 0; i < 10; ++i) {
    EXPECT_EQ(t->transmit(pattern(60, i)), TxStatus::kOk) << int(i);
  }
  // Loopback answers at once, so nearly every send found the report of the
  // one before; each was consumed and the frame sent again.
  EXPECT_GE(t->tunnel_stats().tx_refused.value(), 1u);
  EXPECT_EQ(t->stats().tx_frames.value(), 10u);
  EXPECT_EQ(t->stats().tx_errors.value(), 0u);
  EXPECT_EQ(t->stats().tx_busy.value(), 0u);
  // The last frame's report may still be pending: receive() consumes it
  // and reports nothing received, not an error.
  EXPECT_EQ(t->receive(8, [](std::span<const std::byte>) {}), 0u);
  EXPECT_LE(t->tunnel_stats().rx_refused.value(), 1u);
  EXPECT_LE(t->tunnel_stats().tx_refused.value() + t->tunnel_stats().rx_refused.value(), 10u);

  // The peer starts listening: frames flow, nothing is stuck.
  Peer peer(remote);
  EXPECT_EQ(t->transmit(pattern(60, 42)), TxStatus::kOk);
  EXPECT_EQ(peer.recv(), pattern(60, 42));
}

TEST(UdpTunnel, ALocalPortInUseIsRefusedByName) {
  Peer holder;
  const std::string s = spec(holder.port(), 9);
  auto d = open_device(s);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, Errc::kExists);
  EXPECT_EQ(d.error().message, "device string '" + s + "': cannot bind 127.0.0.1:" + std::to_string(holder.port()) +
                                   ": Address already in use");
}

TEST(UdpTunnel, SendAndReceiveAllocateNothing) {
  Peer peer;
  const std::uint16_t local = unused_port();
  auto t = open_tunnel(local, peer.port());
  ASSERT_TRUE(t);
  const Bytes frame = pattern(1514, 9);
  for (int i = 0; i < 8; ++i) peer.send_to(local, frame);
  ::usleep(1000);
  std::size_t got = 0;
  testing::AllocGuard guard;
  for (int i = 0; i < 8; ++i) t->transmit(frame);
  t->receive(64, [&](std::span<const std::byte> f) { got += f.size(); });
  t->poll();
  (void)t->link();
  EXPECT_EQ(guard.stop(), 0u);
  EXPECT_EQ(got, 8u * 1514u);
}

}  // namespace
}  // namespace np::dev
