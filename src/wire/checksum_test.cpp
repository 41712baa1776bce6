#include "netpoll/wire/checksum.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "golden.h"

namespace np::wire {
namespace {

// RFC 1071 section 4.1, written the plainest way: 16-bit big-endian words,
// a trailing odd byte padded with zero, carries folded at the end.
std::uint16_t naive_checksum(const std::vector<std::byte>& data) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < data.size(); i += 2) {
    std::uint32_t word = std::to_integer<std::uint32_t>(data[i]) << 8;
    if (i + 1 < data.size()) word |= std::to_integer<std::uint32_t>(data[i + 1]);
    sum += word;
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

std::vector<std::byte> random_bytes(std::mt19937& rng, std::size_t n) {
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng() & 0xff);
  return v;
}

TEST(Checksum, Rfc1071ExampleSumsToDdf2) {
  // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
  const std::array<std::byte, 8> data{std::byte{0x00}, std::byte{0x01}, std::byte{0xf2}, std::byte{0x03},
                                      std::byte{0xf4}, std::byte{0xf5}, std::byte{0xf6}, std::byte{0xf7}};
  EXPECT_EQ(Checksum().add(data).sum(), 0xddf2);
  EXPECT_EQ(checksum(data), 0x220d);
}

TEST(Checksum, EmptyInputGivesAllOnes) { EXPECT_EQ(checksum({}), 0xffff); }

TEST(Checksum, MatchesNaiveReferenceOnSeededRandomData) {
  std::mt19937 rng(20261122);
  for (int round = 0; round < 2000; ++round) {
    const std::size_t n = rng() % 1600;  // odd and even lengths
    const auto data = random_bytes(rng, n);
    ASSERT_EQ(checksum(data), naive_checksum(data)) << "length " << n;
  }
}

TEST(Checksum, AnySplitOfTheBufferGivesTheSameResult) {
  std::mt19937 rng(7);
  for (int round = 0; round < 500; ++round) {
    const std::size_t n = rng() % 300;
    const auto data = random_bytes(rng, n);
    // Cut into up to 6 pieces at random points, some of odd length.
    Checksum c;
    std::size_t pos = 0;
    for (int piece = 0; piece < 5 && pos < n; ++piece) {
      const std::size_t len = rng() % (n - pos + 1);
      c.add(std::span(data).subspan(pos, len));
      pos += len;
    }
    c.add(std::span(data).subspan(pos));
    ASSERT_EQ(c.finish(), naive_checksum(data)) << "length " << n;
  }
}

TEST(Checksum, OneByteAtATimeMatchesWhole) {
  std::mt19937 rng(99);
  const auto data = random_bytes(rng, 257);
  Checksum c;
  for (const std::byte b : data) c.add(std::span(&b, 1));
  EXPECT_EQ(c.finish(), naive_checksum(data));
}

TEST(Checksum, LargeInputDoesNotLoseCarries) {
  // 64 KiB of 0xff: every word is 0xffff, the sum must fold to 0xffff.
  std::vector<std::byte> data(65536, std::byte{0xff});
  EXPECT_EQ(Checksum().add(data).sum(), 0xffff);
  EXPECT_EQ(checksum(data), naive_checksum(data));
}

TEST(Checksum, GoldenIpv4HeaderVerifies) {
  const auto header = std::span(golden::kUdpFrame).subspan(golden::kUdpFrameIpOffset, 20);
  EXPECT_EQ(Checksum().add(header).sum(), 0xffff);
}

TEST(Checksum, PseudoHeaderMatchesGoldenUdpChecksum) {
  const auto udp = std::span(golden::kUdpFrame).subspan(golden::kUdpFrameUdpOffset);
  const auto sum =
      pseudo_header(Ipv4Addr(10, 0, 0, 1), Ipv4Addr(10, 0, 0, 2), 17, static_cast<std::uint16_t>(udp.size()))
          .add(udp)
          .sum();
  EXPECT_EQ(sum, 0xffff);
}

}  // namespace
}  // namespace np::wire
