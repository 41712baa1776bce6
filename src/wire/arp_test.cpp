#include "netpoll/wire/arp.h"

#include <gtest/gtest.h>

#include <vector>

#include "golden.h"

namespace np::wire {
namespace {

using ConstArp = ArpPacket<const std::byte>;

std::span<const std::byte> arp_of_request_frame() { return std::span(golden::kArpRequestFrame).subspan(14); }

TEST(ArpPacket, ReadsEveryFieldOfGoldenRequest) {
  auto p = ConstArp::check(arp_of_request_frame());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->hardware_type(), 1);
  EXPECT_EQ(p->protocol_type(), 0x0800);
  EXPECT_EQ(p->hardware_len(), 6);
  EXPECT_EQ(p->protocol_len(), 4);
  EXPECT_EQ(p->operation(), 1);
  EXPECT_EQ(p->len(), 28u);
  EXPECT_EQ(MacAddr::from_bytes(p->source_hw_addr()), MacAddr(2, 0, 0, 0, 0, 1));
  EXPECT_EQ(Ipv4Addr::from_bytes(p->source_proto_addr()), Ipv4Addr(10, 0, 0, 1));
  EXPECT_EQ(MacAddr::from_bytes(p->target_hw_addr()), MacAddr());
  EXPECT_EQ(Ipv4Addr::from_bytes(p->target_proto_addr()), Ipv4Addr(10, 0, 0, 2));
}

TEST(ArpPacket, RejectsEveryTruncation) {
  for (std::size_t n = 0; n < 28; ++n) {
    auto p = ConstArp::check(std::span(golden::kArpReply).first(n));
    ASSERT_FALSE(p) << n;
    EXPECT_EQ(p.error(), Errc::kTruncated);
  }
  EXPECT_TRUE(ConstArp::check(golden::kArpReply));
}

TEST(ArpPacket, AddressLengthsBeyondBufferAreTruncation) {
  auto arp = golden::kArpReply;
  arp[4] = std::byte{16};  // claims 16-byte hardware addresses
  EXPECT_EQ(ConstArp::check(arp).error(), Errc::kTruncated);
}

TEST(ArpRepr, ParsesGoldenReply) {
  auto r = ArpRepr::parse(*ConstArp::check(golden::kArpReply));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->op, ArpOp::kReply);
  EXPECT_EQ(r->source_mac, MacAddr(2, 0, 0, 0, 0, 2));
  EXPECT_EQ(r->source_ip, Ipv4Addr(10, 0, 0, 2));
  EXPECT_EQ(r->target_mac, MacAddr(2, 0, 0, 0, 0, 1));
  EXPECT_EQ(r->target_ip, Ipv4Addr(10, 0, 0, 1));
}

TEST(ArpRepr, AcceptsIeee802HardwareType) {
  auto arp = golden::kArpReply;
  arp[1] = std::byte{6};
  EXPECT_TRUE(ArpRepr::parse(*ConstArp::check(arp)));
}

TEST(ArpRepr, RefusesOtherHardwareProtocolLengthsAndOperations) {
  const std::pair<std::size_t, std::uint8_t> edits[] = {
      {1, 0x20},  // hardware type 0x0020 (InfiniBand)
      {2, 0x86},  // protocol type 0x8600
      {4, 0x08},  // hardware length 8
      {5, 0x10},  // protocol length 16
      {7, 0x03},  // operation 3 (RARP request)
  };
  for (const auto& [off, value] : edits) {
    std::vector<std::byte> arp(golden::kArpReply.begin(), golden::kArpReply.end());
    arp.resize(64, std::byte{0});  // room for longer addresses
    arp[off] = std::byte{value};
    auto p = ConstArp::check(arp);
    ASSERT_TRUE(p) << off;
    EXPECT_EQ(ArpRepr::parse(*p).error(), Errc::kUnsupported) << "byte " << off;
  }
}

TEST(ArpRepr, EmitsGoldenReplyIntoDirtyBuffer) {
  const ArpRepr repr{ArpOp::kReply, MacAddr(2, 0, 0, 0, 0, 2), Ipv4Addr(10, 0, 0, 2), MacAddr(2, 0, 0, 0, 0, 1),
                     Ipv4Addr(10, 0, 0, 1)};
  std::vector<std::byte> buf(40, std::byte{0xa5});
  const auto out = repr.emit(buf);
  ASSERT_EQ(out.size(), 28u);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), golden::kArpReply.begin()));
  EXPECT_EQ(buf[28], std::byte{0xa5});
}

TEST(ArpRepr, RoundTrips) {
  const ArpRepr repr{ArpOp::kRequest, MacAddr(0x52, 0x54, 0, 0x12, 0x34, 0x56), Ipv4Addr(192, 168, 1, 9), MacAddr(),
                     Ipv4Addr(192, 168, 1, 1)};
  std::array<std::byte, 28> buf;
  buf.fill(std::byte{0xa5});
  repr.emit(buf);
  EXPECT_EQ(ArpRepr::parse(*ConstArp::check(buf)), repr);
}

}  // namespace
}  // namespace np::wire
