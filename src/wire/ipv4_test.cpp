#include "netpoll/wire/ipv4.h"

#include <gtest/gtest.h>

#include <vector>

#include "golden.h"

namespace np::wire {
namespace {

using ConstIp = Ipv4Packet<const std::byte>;

std::span<const std::byte> golden_ip() { return std::span(golden::kUdpFrame).subspan(golden::kUdpFrameIpOffset); }

std::vector<std::byte> golden_ip_copy() {
  auto ip = golden_ip();
  return {ip.begin(), ip.end()};
}

TEST(Ipv4Packet, ReadsEveryFieldOfGoldenHeader) {
  auto p = ConstIp::check(golden_ip());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->version(), 4);
  EXPECT_EQ(p->header_len(), 20u);
  EXPECT_EQ(p->tos(), 0);
  EXPECT_EQ(p->total_len(), 35);
  EXPECT_EQ(p->ident(), 1);
  EXPECT_FALSE(p->dont_frag());
  EXPECT_FALSE(p->more_frags());
  EXPECT_EQ(p->frag_offset(), 0u);
  EXPECT_EQ(p->ttl(), 64);
  EXPECT_EQ(p->protocol(), ip_proto::kUdp);
  EXPECT_EQ(p->checksum(), 0x66c7);
  EXPECT_EQ(p->src(), Ipv4Addr(10, 0, 0, 1));
  EXPECT_EQ(p->dst(), Ipv4Addr(10, 0, 0, 2));
  EXPECT_FALSE(p->has_options());
  EXPECT_FALSE(p->is_fragment());
  EXPECT_TRUE(p->verify_checksum());
  EXPECT_EQ(p->payload().size(), 15u);
}

TEST(Ipv4Packet, RejectsEveryTruncation) {
  // Cut inside the header: truncated; after it, the total length says more
  // than the buffer holds.
  const auto ip = golden_ip();
  for (std::size_t n = 0; n < ip.size(); ++n) {
    auto p = ConstIp::check(ip.first(n));
    ASSERT_FALSE(p) << n;
    EXPECT_EQ(p.error(), n < 20 ? Errc::kTruncated : Errc::kBadLength) << n;
  }
}

TEST(Ipv4Packet, TrimsLinkLayerPadding) {
  auto ip = golden_ip_copy();
  ip.resize(46, std::byte{0});  // Ethernet minimum payload
  auto p = ConstIp::check(ip);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->payload().size(), 15u);
}

TEST(Ipv4Packet, RejectsHeaderLengthBelowFive) {
  auto ip = golden_ip_copy();
  ip[0] = std::byte{0x44};
  EXPECT_EQ(ConstIp::check(ip).error(), Errc::kBadHeaderLen);
}

TEST(Ipv4Packet, RejectsTotalLengthShorterThanHeader) {
  auto ip = golden_ip_copy();
  auto w = Ipv4Packet<std::byte>::new_unchecked(ip);
  w.set_total_len(19);
  w.fill_checksum();
  EXPECT_EQ(ConstIp::check(ip).error(), Errc::kBadLength);
}

TEST(Ipv4Packet, RejectsTotalLengthBeyondBuffer) {
  auto ip = golden_ip_copy();
  auto w = Ipv4Packet<std::byte>::new_unchecked(ip);
  w.set_total_len(36);
  w.fill_checksum();
  EXPECT_EQ(ConstIp::check(ip).error(), Errc::kBadLength);
}

TEST(Ipv4Packet, ChecksInTheOrderOfLinuxsReceivePath) {
  // Version before the header length, the checksum before the total length
  // (as ip_rcv and __netpoll_rx): a header wrong in both ways gets the
  // earlier verdict.
  auto ip = golden_ip_copy();
  ip[0] = std::byte{0x64};  // version 6, IHL 4
  EXPECT_EQ(ConstIp::check(ip).error(), Errc::kBadVersion);
  ip = golden_ip_copy();
  ip[3] = std::byte{36};  // total length beyond the buffer, checksum left stale
  EXPECT_EQ(ConstIp::check(ip).error(), Errc::kBadChecksum);
}

TEST(Ipv4Packet, RecognisesOptionsInGoldenPacket) {
  auto p = ConstIp::check(golden::kIpWithOptions);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->header_len(), 24u);
  EXPECT_TRUE(p->has_options());
  EXPECT_EQ(p->options().size(), 4u);
  EXPECT_EQ(p->options()[0], std::byte{0x07});  // record route
  EXPECT_TRUE(p->verify_checksum());
  EXPECT_EQ(Ipv4Repr::parse(*p).error(), Errc::kHasOptions);
}

TEST(Ipv4Repr, ParsesGoldenHeader) {
  auto r = Ipv4Repr::parse(*ConstIp::check(golden_ip()));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->src, Ipv4Addr(10, 0, 0, 1));
  EXPECT_EQ(r->dst, Ipv4Addr(10, 0, 0, 2));
  EXPECT_EQ(r->protocol, ip_proto::kUdp);
  EXPECT_EQ(r->payload_len, 15);
  EXPECT_EQ(r->ttl, 64);
  EXPECT_EQ(r->ident, 1);
}

TEST(Ipv4Packet, RejectsEachCorruptedHeaderByte) {
  // Flipping any bit of the header breaks the checksum (or an earlier check).
  for (std::size_t i = 0; i < 20; ++i) {
    auto ip = golden_ip_copy();
    ip[i] ^= std::byte{0x10};
    ASSERT_FALSE(ConstIp::check(ip)) << "byte " << i;
  }
}

TEST(Ipv4Packet, RejectsBadChecksum) {
  auto ip = golden_ip_copy();
  ip[11] ^= std::byte{1};
  EXPECT_EQ(ConstIp::check(ip).error(), Errc::kBadChecksum);
}

TEST(Ipv4Packet, RejectsVersionSix) {
  auto ip = golden_ip_copy();
  ip[0] = std::byte{0x65};
  EXPECT_EQ(ConstIp::check(ip).error(), Errc::kBadVersion);
}

TEST(Ipv4Repr, RecognisesFragmentsByFlagAndOffset) {
  for (const bool more : {true, false}) {
    auto ip = golden_ip_copy();
    auto p = Ipv4Packet<std::byte>::check(ip);
    ASSERT_TRUE(p);
    p->set_frag(false, more, more ? 0 : 1480);
    p->fill_checksum();
    auto c = ConstIp::check(ip);
    EXPECT_TRUE(c->is_fragment());
    EXPECT_EQ(Ipv4Repr::parse(*c).error(), Errc::kFragment) << (more ? "MF set" : "offset 1480");
  }
}

TEST(Ipv4Repr, EmitsGoldenHeaderIntoDirtyBuffer) {
  const Ipv4Repr repr{Ipv4Addr(10, 0, 0, 1), Ipv4Addr(10, 0, 0, 2), ip_proto::kUdp, 15, 64, 1, false, 0};
  std::vector<std::byte> buf(40, std::byte{0xa5});
  const auto payload = repr.emit(buf);
  EXPECT_EQ(payload.data(), buf.data() + 20);
  EXPECT_EQ(payload.size(), 15u);
  const auto ip = golden_ip();
  EXPECT_TRUE(std::equal(buf.begin(), buf.begin() + 20, ip.begin()));
  EXPECT_EQ(buf[20], std::byte{0xa5});
}

TEST(Ipv4Repr, EmitsDontFragmentFlag) {
  Ipv4Repr repr{Ipv4Addr(10, 0, 0, 1), Ipv4Addr(10, 0, 0, 2), ip_proto::kUdp, 0, 64, 9, true, 0};
  std::array<std::byte, 20> buf;
  buf.fill(std::byte{0xa5});
  repr.emit(buf);
  EXPECT_EQ(buf[6], std::byte{0x40});
  EXPECT_EQ(buf[7], std::byte{0x00});
  EXPECT_EQ(Ipv4Repr::parse(*ConstIp::check(buf)), repr);
}

TEST(Ipv4Repr, RoundTrips) {
  const Ipv4Repr repr{Ipv4Addr(172, 16, 9, 200), Ipv4Addr(8, 8, 4, 4), ip_proto::kTcp, 100, 3, 0xbeef, false, 0x10};
  std::vector<std::byte> buf(120, std::byte{0xa5});
  repr.emit(buf);
  EXPECT_EQ(Ipv4Repr::parse(*ConstIp::check(buf)), repr);
}

}  // namespace
}  // namespace np::wire
