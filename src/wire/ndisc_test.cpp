#include "netpoll/wire/ndisc.h"

#include <gtest/gtest.h>

#include <vector>

#include "golden.h"
#include "netpoll/base/bytes.h"

namespace np::wire {
namespace {

using ConstIcmp6 = Icmpv6Packet<const std::byte>;
const Ipv6Addr kOurs(0xfd77, 0, 0, 0, 0, 0, 0, 1);
const Ipv6Addr kPeer(0xfd77, 0, 0, 0, 0, 0, 0, 2);
const MacAddr kOurMac(2, 0, 0, 0, 0, 1);
const MacAddr kPeerMac(2, 0, 0, 0, 0, 2);

// A frame's IPv6 header as parsed and its ICMPv6 message, copied so that a
// test may change them.
struct Message {
  Ipv6Repr ip;
  std::vector<std::byte> icmp;

  explicit Message(std::span<const std::byte> frame) {
    const auto p = *Ipv6Packet<const std::byte>::check(frame.subspan(14));
    ip = *Ipv6Repr::parse(p);
    icmp.assign(p.payload().begin(), p.payload().end());
  }
  Result<NdiscRepr> parse() const { return NdiscRepr::parse(*ConstIcmp6::check(icmp), ip); }
  // Changes a byte and puts the checksum right again.
  void set(std::size_t at, std::uint8_t v) {
    icmp[at] = std::byte{v};
    Icmpv6Packet<std::byte>::new_unchecked(icmp).fill_checksum(ip.src, ip.dst);
  }
};

TEST(Icmpv6Packet, ReadsEveryFieldOfGoldenSolicitation) {
  const Message m(golden::kNdiscSolicitFrame);
  auto p = ConstIcmp6::check(m.icmp);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->type(), icmpv6_type::kNeighbourSolicit);
  EXPECT_EQ(p->code(), 0);
  EXPECT_EQ(p->checksum(), 0x7ca9);
  EXPECT_TRUE(p->verify_checksum(m.ip.src, m.ip.dst));
  EXPECT_EQ(p->ndisc_target(), kOurs);
  EXPECT_EQ(p->ndisc_options().size(), 8u);
  EXPECT_EQ(m.ip.dst, kOurs.solicited_node());
  EXPECT_EQ(m.ip.hop_limit, 255);
}

TEST(NdiscRepr, ParsesGoldenSolicitationWithItsSourceLinkAddress) {
  const auto r = Message(golden::kNdiscSolicitFrame).parse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, NdiscRepr::Kind::kSolicit);
  EXPECT_EQ(r->target, kOurs);
  EXPECT_EQ(r->link_addr, kPeerMac);
}

TEST(NdiscRepr, ParsesGoldenAdvertisementWithItsFlags) {
  const auto r = Message(golden::kNdiscAdvertFrame).parse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, NdiscRepr::Kind::kAdvert);
  EXPECT_EQ(r->target, kOurs);
  EXPECT_EQ(r->link_addr, kOurMac);
  EXPECT_FALSE(r->router);
  EXPECT_TRUE(r->solicited);
  EXPECT_TRUE(r->override_entry);
}

TEST(NdiscRepr, EmitsGoldenAdvertisementIntoDirtyBuffer) {
  // The answer netpoll gives the golden solicitation: solicited, override.
  const NdiscRepr na{NdiscRepr::Kind::kAdvert, kOurs, kOurMac, false, true, true};
  std::vector<std::byte> buf(na.buffer_len() + 3, std::byte{0xa5});
  const auto out = na.emit(buf, kOurs, kPeer);
  const Message golden(golden::kNdiscAdvertFrame);
  EXPECT_EQ(std::vector<std::byte>(out.begin(), out.end()), golden.icmp);
  EXPECT_EQ(buf[32], std::byte{0xa5});
}

TEST(NdiscRepr, EmitsGoldenSolicitationIntoDirtyBuffer) {
  const NdiscRepr ns{NdiscRepr::Kind::kSolicit, kOurs, kPeerMac};
  std::vector<std::byte> buf(ns.buffer_len(), std::byte{0xa5});
  const auto out = ns.emit(buf, kPeer, kOurs.solicited_node());
  EXPECT_EQ(std::vector<std::byte>(out.begin(), out.end()), Message(golden::kNdiscSolicitFrame).icmp);
}

TEST(NdiscRepr, RoundTripsWithAndWithoutTheOption) {
  for (const bool with : {true, false}) {
    const NdiscRepr r{NdiscRepr::Kind::kAdvert, *Ipv6Addr::parse("2001:db8::7"),
                      with ? std::optional(kPeerMac) : std::nullopt, true, false, true};
    std::vector<std::byte> buf(r.buffer_len(), std::byte{0xa5});
    r.emit(buf, kPeer, Ipv6Addr::all_nodes());
    const Ipv6Repr ip{kPeer, Ipv6Addr::all_nodes(), ip_proto::kIcmpv6, static_cast<std::uint16_t>(buf.size()), 255};
    EXPECT_EQ(NdiscRepr::parse(*ConstIcmp6::check(buf), ip), r) << with;
  }
}

TEST(NdiscRepr, LeavesOtherIcmpv6MessagesAlone) {
  Message m(golden::kNdiscSolicitFrame);
  for (const std::uint8_t type : {icmpv6_type::kEchoRequest, icmpv6_type::kRouterSolicit, std::uint8_t{143}}) {
    m.set(0, type);
    EXPECT_EQ(m.parse().error(), Errc::kUnsupported) << int{type};
  }
}

TEST(NdiscRepr, RefusesEachCorruptedByte) {
  for (std::size_t i = 0; i < 32; ++i) {
    Message m(golden::kNdiscSolicitFrame);
    m.icmp[i] ^= std::byte{0x01};
    const auto r = m.parse();
    ASSERT_FALSE(r) << i;
    EXPECT_EQ(r.error(), i == 0 ? Errc::kUnsupported : Errc::kBadChecksum) << i;  // byte 0 is the type
  }
}

TEST(NdiscRepr, RefusesEveryTruncation) {
  const Message m(golden::kNdiscSolicitFrame);
  EXPECT_EQ(ConstIcmp6::check(std::span(m.icmp).first(3)).error(), Errc::kTruncated);
  for (std::size_t n = 4; n < 24; ++n) {
    auto cut = std::vector<std::byte>(m.icmp.begin(), m.icmp.begin() + static_cast<std::ptrdiff_t>(n));
    Icmpv6Packet<std::byte>::new_unchecked(cut).fill_checksum(m.ip.src, m.ip.dst);
    EXPECT_EQ(NdiscRepr::parse(*ConstIcmp6::check(cut), m.ip).error(), Errc::kTruncated) << n;
  }
}

TEST(NdiscRepr, RefusesWhatRfc4861Section7Refuses) {
  {
    Message m(golden::kNdiscSolicitFrame);
    m.ip.hop_limit = 254;  // from beyond a router
    EXPECT_EQ(m.parse().error(), Errc::kMalformed);
  }
  {
    Message m(golden::kNdiscSolicitFrame);
    m.set(1, 1);  // code
    EXPECT_EQ(m.parse().error(), Errc::kMalformed);
  }
  {
    Message m(golden::kNdiscSolicitFrame);
    m.set(8, 0xff);  // a multicast target
    EXPECT_EQ(m.parse().error(), Errc::kMalformed);
  }
  {
    Message m(golden::kNdiscSolicitFrame);
    m.set(25, 0);  // an option of length 0
    EXPECT_EQ(m.parse().error(), Errc::kMalformed);
  }
  {
    Message m(golden::kNdiscSolicitFrame);
    m.set(25, 2);  // an option longer than the message
    EXPECT_EQ(m.parse().error(), Errc::kMalformed);
  }
  {
    // Duplicate address detection's solicitation, from ::, may carry no
    // source link-layer address.
    Message m(golden::kNdiscSolicitFrame);
    m.ip.src = Ipv6Addr::any();
    m.set(0, icmpv6_type::kNeighbourSolicit);
    EXPECT_EQ(m.parse().error(), Errc::kMalformed);
  }
  {
    // A solicited advertisement is unicast.
    Message m(golden::kNdiscAdvertFrame);
    m.ip.dst = Ipv6Addr::all_nodes();
    m.set(0, icmpv6_type::kNeighbourAdvert);
    EXPECT_EQ(m.parse().error(), Errc::kMalformed);
  }
}

TEST(NdiscRepr, SkipsOptionsItDoesNotKnowAndLinkOptionsOfOtherSizes) {
  Message m(golden::kNdiscSolicitFrame);
  // A nonce option (type 14, RFC 3971) before the link-layer option.
  const std::byte nonce[8] = {std::byte{14}, std::byte{1}, std::byte{1}, std::byte{2},
                              std::byte{3},  std::byte{4}, std::byte{5}, std::byte{6}};
  m.icmp.insert(m.icmp.begin() + 24, std::begin(nonce), std::end(nonce));
  m.ip.payload_len = static_cast<std::uint16_t>(m.icmp.size());
  m.set(0, icmpv6_type::kNeighbourSolicit);
  auto r = m.parse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->link_addr, kPeerMac);
  // A source link-layer option of 16 bytes: not Ethernet's, not read.
  Message wide(golden::kNdiscSolicitFrame);
  wide.icmp.resize(wide.icmp.size() + 8, std::byte{0});
  wide.set(25, 2);
  r = wide.parse();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->link_addr);
}

}  // namespace
}  // namespace np::wire
