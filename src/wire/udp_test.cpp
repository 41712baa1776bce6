#include "netpoll/wire/udp.h"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

#include "netpoll/base/bytes.h"
#include "golden.h"

namespace np::wire {
namespace {

using ConstUdp = UdpPacket<const std::byte>;
const Ipv4Addr kSrc(10, 0, 0, 1);
const Ipv4Addr kDst(10, 0, 0, 2);

std::span<const std::byte> golden_udp() { return std::span(golden::kUdpFrame).subspan(golden::kUdpFrameUdpOffset); }

std::vector<std::byte> golden_udp_copy() {
  auto u = golden_udp();
  return {u.begin(), u.end()};
}

TEST(UdpPacket, ReadsEveryFieldOfGoldenDatagram) {
  auto p = ConstUdp::check(golden_udp());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->src_port(), 6665);
  EXPECT_EQ(p->dst_port(), 6666);
  EXPECT_EQ(p->length(), 15);
  EXPECT_EQ(p->checksum(), 0xf977);
  EXPECT_EQ(as_text(p->payload()), "netpoll");
  EXPECT_TRUE(p->verify_checksum(kSrc, kDst));
}

TEST(UdpPacket, RejectsEveryTruncation) {
  const auto u = golden_udp();
  for (std::size_t n = 0; n < u.size(); ++n) {
    auto p = ConstUdp::check(u.first(n));
    ASSERT_FALSE(p) << n;
    // Cut inside the header: truncated; after it, the length field says
    // more than the buffer holds.
    EXPECT_EQ(p.error(), n < 8 ? Errc::kTruncated : Errc::kBadLength) << n;
  }
}

TEST(UdpPacket, RejectsLengthFieldBelowHeader) {
  auto u = golden_udp_copy();
  u[5] = std::byte{7};
  EXPECT_EQ(ConstUdp::check(u).error(), Errc::kBadLength);
}

TEST(UdpPacket, RejectsLengthFieldBeyondBuffer) {
  auto u = golden_udp_copy();
  u[5] = std::byte{16};
  EXPECT_EQ(ConstUdp::check(u).error(), Errc::kBadLength);
}

TEST(UdpRepr, ParsesGoldenDatagram) {
  auto r = UdpRepr::parse(*ConstUdp::check(golden_udp()), kSrc, kDst);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->src_port, 6665);
  EXPECT_EQ(r->dst_port, 6666);
  EXPECT_EQ(as_text(r->payload), "netpoll");
}

TEST(UdpRepr, RejectsEachCorruptedByte) {
  const auto u = golden_udp();
  for (std::size_t i = 0; i < u.size(); ++i) {
    if (i == 4 || i == 5) continue;  // length: covered by the length tests
    auto copy = golden_udp_copy();
    copy[i] ^= std::byte{0x01};
    auto r = UdpRepr::parse(*ConstUdp::check(copy), kSrc, kDst);
    ASSERT_FALSE(r) << "byte " << i;
    EXPECT_EQ(r.error(), Errc::kBadChecksum);
  }
}

TEST(UdpRepr, RejectsWrongPseudoHeaderAddress) {
  EXPECT_EQ(UdpRepr::parse(*ConstUdp::check(golden_udp()), kSrc, Ipv4Addr(10, 0, 0, 3)).error(), Errc::kBadChecksum);
}

TEST(UdpRepr, ZeroChecksumMeansNoneOnReceive) {
  auto u = golden_udp_copy();
  u[6] = std::byte{0};
  u[7] = std::byte{0};
  u[8] ^= std::byte{0xff};  // payload changed: would fail a real checksum
  EXPECT_TRUE(UdpRepr::parse(*ConstUdp::check(u), kSrc, kDst));
}

TEST(UdpRepr, ComputedZeroIsSentAsAllOnes) {
  const auto golden = std::span(golden::kUdpZeroChecksum).subspan(20);
  const std::array<std::byte, 2> payload{std::byte{0xb7}, std::byte{0xc4}};
  const UdpRepr repr{6665, 6666, payload};
  std::array<std::byte, 10> buf;
  buf.fill(std::byte{0xa5});
  repr.emit(buf, kSrc, kDst);
  EXPECT_EQ(buf[6], std::byte{0xff});
  EXPECT_EQ(buf[7], std::byte{0xff});
  EXPECT_TRUE(std::equal(buf.begin(), buf.end(), golden.begin()));
  EXPECT_TRUE(UdpRepr::parse(*ConstUdp::check(buf), kSrc, kDst));
}

TEST(UdpRepr, EmitsGoldenDatagramIntoDirtyBuffer) {
  const UdpRepr repr{6665, 6666, as_bytes("netpoll")};
  std::vector<std::byte> buf(24, std::byte{0xa5});
  const auto out = repr.emit(buf, kSrc, kDst);
  ASSERT_EQ(out.size(), 15u);
  const auto u = golden_udp();
  EXPECT_TRUE(std::equal(out.begin(), out.end(), u.begin()));
  EXPECT_EQ(buf[15], std::byte{0xa5});
}

TEST(UdpRepr, EmitsWithPayloadAlreadyInPlace) {
  std::vector<std::byte> buf(15, std::byte{0xa5});
  const auto msg = as_bytes("netpoll");
  std::copy(msg.begin(), msg.end(), buf.begin() + 8);
  const UdpRepr repr{6665, 6666, std::span<const std::byte>(buf).subspan(8)};
  repr.emit(buf, kSrc, kDst);
  const auto u = golden_udp();
  EXPECT_TRUE(std::equal(buf.begin(), buf.end(), u.begin()));
}

TEST(UdpRepr, RoundTrips) {
  const std::string_view msg = "odd-length payload!";
  const UdpRepr repr{1234, 53, as_bytes(msg)};
  std::vector<std::byte> buf(repr.buffer_len(), std::byte{0xa5});
  repr.emit(buf, Ipv4Addr(192, 0, 2, 1), Ipv4Addr(198, 51, 100, 7));
  auto r = UdpRepr::parse(*ConstUdp::check(buf), Ipv4Addr(192, 0, 2, 1), Ipv4Addr(198, 51, 100, 7));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->src_port, 1234);
  EXPECT_EQ(r->dst_port, 53);
  EXPECT_EQ(as_text(r->payload), msg);
}

}  // namespace
}  // namespace np::wire
