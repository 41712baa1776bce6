// The template against the core's one frame builder: the same bytes for
// every datagram.
#include "netpoll/core/frame_template.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "frame_layout.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/udp.h"

namespace np::core {
namespace {

std::vector<std::byte> random_bytes(std::mt19937& rng, std::size_t n) {
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng() & 0xff);
  return v;
}

void expect_same_frames(const IpAddr& src, const IpAddr& dst, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const MacAddr src_mac(0x02, 0, 0, 0, 0, 0x0a);
  const MacAddr dst_mac(0x02, 0, 0, 0, 0, 0x0b);
  FrameTemplate t;
  t.prepare(src_mac, dst_mac, src, 6665, dst, 6666);
  ASSERT_EQ(t.header_len(), detail::udp_payload_offset(src.family()));
  for (int round = 0; round < 500; ++round) {
    // Every length up to a full frame, odd and even; idents across the range.
    const auto payload = random_bytes(rng, round < 100 ? static_cast<std::size_t>(round) : rng() % 1473);
    const auto ident = static_cast<std::uint16_t>(rng());
    std::vector<std::byte> want(1600), got(1600, std::byte{0xee});
    const std::size_t want_len =
        detail::emit_udp_frame(want, src_mac, dst_mac, {src, 6665}, {dst, 6666}, src.is_v4() ? ident : 0, payload);
    const std::size_t got_len = t.fill(got, ident, payload);
    ASSERT_EQ(got_len, want_len) << "payload " << payload.size();
    want.resize(want_len);
    got.resize(got_len);
    ASSERT_EQ(got, want) << "payload " << payload.size() << ", ident " << ident;
  }
}

TEST(FrameTemplate, WritesWhatTheFrameBuilderWritesOverIpv4) {
  expect_same_frames(Ipv4Addr(10, 0, 0, 1), Ipv4Addr(10, 0, 0, 2), 1);
  // Addresses whose sums carry.
  expect_same_frames(Ipv4Addr(255, 255, 255, 254), Ipv4Addr(255, 255, 0, 255), 2);
}

TEST(FrameTemplate, WritesWhatTheFrameBuilderWritesOverIpv6) {
  expect_same_frames(*Ipv6Addr::parse("fd00::1"), *Ipv6Addr::parse("fd00::2"), 3);
  expect_same_frames(*Ipv6Addr::parse("ffff:ffff::fffe"), *Ipv6Addr::parse("fdff:ffff:ffff::ffff"), 4);
}

TEST(FrameTemplate, AChecksumOfZeroIsSentAsAllOnes) {
  // RFC 768: a computed zero goes on the wire as 0xffff. Search the
  // two-byte payloads for one whose checksum computes to zero.
  const Ipv4Addr src(10, 0, 0, 1), dst(10, 0, 0, 2);
  FrameTemplate t;
  t.prepare(MacAddr(2, 0, 0, 0, 0, 1), MacAddr(2, 0, 0, 0, 0, 2), src, 1, dst, 2);
  std::vector<std::byte> frame(64);
  bool found = false;
  for (unsigned v = 0; v <= 0xffff && !found; ++v) {
    const std::array<std::byte, 2> payload{std::byte(v >> 8), std::byte(v & 0xff)};
    const std::size_t len = t.fill(frame, 7, payload);
    const auto udp = wire::UdpPacket<const std::byte>::check(std::span<const std::byte>(frame).subspan(34, len - 34));
    ASSERT_TRUE(udp);
    if (udp->checksum() == 0xffff) {
      found = true;
      EXPECT_TRUE(udp->verify_checksum(src, dst));
    }
    ASSERT_NE(udp->checksum(), 0) << "payload " << v;
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace np::core
