#include "netpoll/wire/ipv6.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "golden.h"
#include "netpoll/base/bytes.h"
#include "netpoll/wire/udp.h"

namespace np::wire {
namespace {

using ConstIp6 = Ipv6Packet<const std::byte>;
using ConstUdp6 = UdpPacket<const std::byte>;
const Ipv6Addr kSrc6(0xfd77, 0, 0, 0, 0, 0, 0, 1);
const Ipv6Addr kDst6(0xfd77, 0, 0, 0, 0, 0, 0, 2);

std::span<const std::byte> golden_ip6() { return std::span(golden::kUdp6Frame).subspan(golden::kUdp6FrameIpOffset); }
std::span<const std::byte> golden_udp6() {
  return std::span(golden::kUdp6Frame).subspan(golden::kUdp6FrameUdpOffset);
}

std::vector<std::byte> golden_ip6_copy() {
  auto ip = golden_ip6();
  return {ip.begin(), ip.end()};
}

TEST(Ipv6Packet, ReadsEveryFieldOfGoldenHeader) {
  auto p = ConstIp6::check(golden_ip6());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->version(), 6);
  EXPECT_EQ(p->traffic_class(), 0);
  EXPECT_EQ(p->flow_label(), 0u);
  EXPECT_EQ(p->payload_len(), 15);
  EXPECT_EQ(p->next_header(), ip_proto::kUdp);
  EXPECT_EQ(p->hop_limit(), 32);
  EXPECT_EQ(p->src(), kSrc6);
  EXPECT_EQ(p->dst(), kDst6);
  EXPECT_FALSE(p->has_extension_header());
  EXPECT_EQ(p->payload().size(), 15u);
  EXPECT_EQ(p->payload().data(), golden_udp6().data());
}

TEST(Ipv6Packet, ReadsTrafficClassAndFlowLabelApart) {
  auto ip = golden_ip6_copy();
  Ipv6Packet<std::byte>::new_unchecked(ip).set_version_class_flow(6, 0xb8, 0xabcde);
  EXPECT_EQ(ip[0], std::byte{0x6b});
  EXPECT_EQ(ip[1], std::byte{0x8a});
  auto p = ConstIp6::check(ip);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->version(), 6);
  EXPECT_EQ(p->traffic_class(), 0xb8);
  EXPECT_EQ(p->flow_label(), 0xabcdeu);
}

TEST(Ipv6Packet, RejectsEveryTruncation) {
  // Cut inside the fixed header: truncated; after it, the payload length
  // says more than the buffer holds.
  const auto ip = golden_ip6();
  for (std::size_t n = 0; n < ip.size(); ++n) {
    auto p = ConstIp6::check(ip.first(n));
    ASSERT_FALSE(p) << n;
    EXPECT_EQ(p.error(), n < 40 ? Errc::kTruncated : Errc::kBadLength) << n;
  }
}

TEST(Ipv6Packet, TrimsLinkLayerPadding) {
  auto ip = golden_ip6_copy();
  ip.resize(80, std::byte{0});
  auto p = ConstIp6::check(ip);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->payload().size(), 15u);
}

TEST(Ipv6Packet, RejectsEveryVersionButSix) {
  for (unsigned v = 0; v < 16; ++v) {
    auto ip = golden_ip6_copy();
    ip[0] = std::byte(v << 4);
    auto p = ConstIp6::check(ip);
    if (v == 6) {
      EXPECT_TRUE(p);
    } else {
      ASSERT_FALSE(p) << v;
      EXPECT_EQ(p.error(), Errc::kBadVersion) << v;
    }
  }
}

TEST(Ipv6Packet, RecognisesExtensionHeaderInGoldenPacket) {
  auto p = ConstIp6::check(golden::kIpv6HopByHop);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->next_header(), ip_proto::kHopByHop);
  EXPECT_TRUE(p->has_extension_header());
  EXPECT_EQ(Ipv6Repr::parse(*p).error(), Errc::kExtensionHeader);
}

TEST(Ipv6Repr, RefusesEveryExtensionHeaderAndNothingElse) {
  const std::uint8_t extension[] = {0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254};
  for (unsigned nh = 0; nh < 256; ++nh) {
    auto ip = golden_ip6_copy();
    Ipv6Packet<std::byte>::new_unchecked(ip).set_next_header(static_cast<std::uint8_t>(nh));
    const bool is_ext = std::find(std::begin(extension), std::end(extension), nh) != std::end(extension);
    const auto r = Ipv6Repr::parse(*ConstIp6::check(ip));
    EXPECT_EQ(r.has_value(), !is_ext) << nh;
    if (!r) {
      EXPECT_EQ(r.error(), Errc::kExtensionHeader) << nh;
    }
  }
}

TEST(Ipv6Repr, ParsesGoldenHeader) {
  auto r = Ipv6Repr::parse(*ConstIp6::check(golden_ip6()));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (Ipv6Repr{kSrc6, kDst6, ip_proto::kUdp, 15, 32, 0, 0}));
}

TEST(Ipv6Repr, EmitsGoldenHeaderIntoDirtyBuffer) {
  const Ipv6Repr repr{kSrc6, kDst6, ip_proto::kUdp, 15};  // netpoll's hop limit 32 and flow label 0
  std::vector<std::byte> buf(60, std::byte{0xa5});
  const auto payload = repr.emit(buf);
  EXPECT_EQ(payload.data(), buf.data() + 40);
  EXPECT_EQ(payload.size(), 15u);
  const auto ip = golden_ip6();
  EXPECT_TRUE(std::equal(buf.begin(), buf.begin() + 40, ip.begin()));
  EXPECT_EQ(buf[40], std::byte{0xa5});
}

TEST(Ipv6Repr, RoundTrips) {
  const Ipv6Repr repr{*Ipv6Addr::parse("2001:db8::99"), *Ipv6Addr::parse("fe80::1:2"), ip_proto::kIcmpv6, 200, 255,
                      0x2e, 0x12345};
  std::vector<std::byte> buf(240, std::byte{0xa5});
  repr.emit(buf);
  EXPECT_EQ(Ipv6Repr::parse(*ConstIp6::check(buf)), repr);
}

TEST(Ipv6, MapsMulticastGroupsToEthernetAddresses) {
  // RFC 2464 section 7: 33:33 and the group's last 32 bits.
  EXPECT_EQ(ipv6_multicast_mac(*Ipv6Addr::parse("ff02::1:ff00:1")), MacAddr(0x33, 0x33, 0xff, 0, 0, 1));
  EXPECT_EQ(ipv6_multicast_mac(Ipv6Addr::all_nodes()), MacAddr(0x33, 0x33, 0, 0, 0, 1));
}

// UDP over IPv6 (wire/udp.h with the IPv6 pseudo-header).

TEST(Udp6, VerifiesGoldenChecksumOverTheIpv6PseudoHeader) {
  auto p = ConstUdp6::check(golden_udp6());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->checksum(), 0x1288);
  EXPECT_TRUE(p->verify_checksum(kSrc6, kDst6));
  EXPECT_FALSE(p->verify_checksum(kDst6, kSrc6 == kDst6 ? kSrc6 : *Ipv6Addr::parse("fd77::3")));
  auto r = UdpRepr::parse(*p, kSrc6, kDst6);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->src_port, 6665);
  EXPECT_EQ(r->dst_port, 6666);
  EXPECT_EQ(as_text(r->payload), "netpoll");
}

TEST(Udp6, EmitsGoldenDatagramIntoDirtyBuffer) {
  const UdpRepr repr{6665, 6666, as_bytes("netpoll")};
  std::vector<std::byte> buf(repr.buffer_len() + 4, std::byte{0xa5});
  const auto out = repr.emit(buf, kSrc6, kDst6);
  EXPECT_EQ(out.size(), 15u);
  const auto g = golden_udp6();
  EXPECT_TRUE(std::equal(out.begin(), out.end(), g.begin(), g.end()));
  EXPECT_EQ(buf[15], std::byte{0xa5});
}

TEST(Udp6, SendsAComputedZeroAsAllOnes) {
  const auto ip = *ConstIp6::check(golden::kUdp6ZeroChecksum);
  const auto u = *ConstUdp6::check(ip.payload());
  EXPECT_EQ(u.checksum(), 0xffff);
  const UdpRepr repr{6665, 6666, u.payload()};
  std::vector<std::byte> buf(repr.buffer_len(), std::byte{0xa5});
  repr.emit(buf, kSrc6, kDst6);
  EXPECT_EQ(load_be16(buf, 6), 0xffff);
  EXPECT_TRUE(UdpRepr::parse(*ConstUdp6::check(buf), kSrc6, kDst6));
}

TEST(Udp6, RefusesAZeroChecksumThatIpv4WouldTake) {
  auto u = std::vector<std::byte>(golden_udp6().begin(), golden_udp6().end());
  UdpPacket<std::byte>::new_unchecked(u).set_checksum(0);
  const auto p = *ConstUdp6::check(u);
  EXPECT_EQ(UdpRepr::parse(p, kSrc6, kDst6).error(), Errc::kNoChecksum);
  EXPECT_FALSE(p.verify_checksum(kSrc6, kDst6));
  EXPECT_TRUE(UdpRepr::parse(p, Ipv4Addr(10, 0, 0, 1), Ipv4Addr(10, 0, 0, 2)));  // RFC 768: none computed
}

TEST(Udp6, RejectsEachCorruptedByte) {
  for (std::size_t i = 0; i < golden_udp6().size(); ++i) {
    auto u = std::vector<std::byte>(golden_udp6().begin(), golden_udp6().end());
    u[i] ^= std::byte{0x01};
    auto p = ConstUdp6::check(u);
    if (!p) continue;  // a length byte: the view refuses it
    EXPECT_FALSE(UdpRepr::parse(*p, kSrc6, kDst6)) << "byte " << i;
  }
}

TEST(Udp6, ChecksumsRandomDatagramsOfOddAndEvenLengthsThatVerify) {
  std::mt19937 rng(66);
  for (std::size_t len = 0; len < 64; ++len) {
    std::vector<std::byte> data(len);
    for (auto& b : data) b = std::byte(rng() & 0xff);
    std::array<std::byte, 16> s{}, d{};
    for (auto& b : s) b = std::byte(rng() & 0xff);
    for (auto& b : d) b = std::byte(rng() & 0xff);
    const UdpRepr repr{static_cast<std::uint16_t>(rng()), static_cast<std::uint16_t>(rng()), data};
    std::vector<std::byte> buf(repr.buffer_len());
    repr.emit(buf, Ipv6Addr(s), Ipv6Addr(d));
    // A naive reference: the pseudo-header and datagram as 16-bit words.
    std::vector<std::byte> all(s.begin(), s.end());
    all.insert(all.end(), d.begin(), d.end());
    const std::uint32_t n = static_cast<std::uint32_t>(buf.size());
    for (int shift : {24, 16, 8, 0}) all.push_back(std::byte((n >> shift) & 0xff));
    all.insert(all.end(), {std::byte{0}, std::byte{0}, std::byte{0}, std::byte{17}});
    all.insert(all.end(), buf.begin(), buf.end());
    if (all.size() % 2) all.push_back(std::byte{0});
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < all.size(); i += 2)
      sum += (std::to_integer<std::uint32_t>(all[i]) << 8) | std::to_integer<std::uint32_t>(all[i + 1]);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    EXPECT_EQ(sum, 0xffffu) << len;
  }
}

}  // namespace
}  // namespace np::wire
