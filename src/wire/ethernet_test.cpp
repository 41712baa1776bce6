#include "netpoll/wire/ethernet.h"

#include <gtest/gtest.h>

#include <vector>

#include "golden.h"

namespace np::wire {
namespace {

using ConstFrame = EthernetFrame<const std::byte>;

TEST(EthernetFrame, ReadsEveryFieldOfGoldenFrame) {
  auto f = ConstFrame::check(golden::kUdpFrame);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->dst(), MacAddr(0x02, 0, 0, 0, 0, 0x02));
  EXPECT_EQ(f->src(), MacAddr(0x02, 0, 0, 0, 0, 0x01));
  EXPECT_EQ(f->ethertype(), ethertype::kIpv4);
  EXPECT_EQ(f->payload().size(), golden::kUdpFrame.size() - 14);
  EXPECT_EQ(f->payload().data(), golden::kUdpFrame.data() + 14);
}

TEST(EthernetFrame, RejectsEveryTruncation) {
  for (std::size_t n = 0; n < 14; ++n) {
    auto f = ConstFrame::check(std::span(golden::kUdpFrame).first(n));
    ASSERT_FALSE(f) << n;
    EXPECT_EQ(f.error(), Errc::kTruncated);
  }
  EXPECT_TRUE(ConstFrame::check(std::span(golden::kUdpFrame).first(14)));
}

TEST(EthernetRepr, ParsesGoldenArpFrame) {
  auto r = EthernetRepr::parse(*ConstFrame::check(golden::kArpRequestFrame));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->dst, MacAddr::broadcast());
  EXPECT_EQ(r->src, MacAddr(0x02, 0, 0, 0, 0, 0x01));
  EXPECT_EQ(r->ethertype, ethertype::kArp);
}

TEST(EthernetRepr, Refuses8023LengthField) {
  auto frame = golden::kUdpFrame;
  frame[12] = std::byte{0x05};
  frame[13] = std::byte{0xdc};  // 1500: a length, not an EtherType
  EXPECT_EQ(EthernetRepr::parse(*ConstFrame::check(frame)).error(), Errc::kUnsupported);
}

TEST(EthernetRepr, EmitsIntoDirtyBufferExactlyTheGoldenHeader) {
  std::vector<std::byte> buf(golden::kUdpFrame.size(), std::byte{0xa5});
  const EthernetRepr repr{MacAddr(0x02, 0, 0, 0, 0, 0x01), MacAddr(0x02, 0, 0, 0, 0, 0x02), ethertype::kIpv4};
  const auto payload = repr.emit(buf);
  EXPECT_EQ(payload.data(), buf.data() + 14);
  EXPECT_EQ(payload.size(), buf.size() - 14);
  EXPECT_TRUE(std::equal(buf.begin(), buf.begin() + 14, golden::kUdpFrame.begin()));
  EXPECT_EQ(buf[14], std::byte{0xa5});  // nothing past the header was touched
}

TEST(EthernetRepr, RoundTrips) {
  const EthernetRepr repr{MacAddr(1, 2, 3, 4, 5, 6), MacAddr(0xa, 0xb, 0xc, 0xd, 0xe, 0xf), 0x88b5};
  std::array<std::byte, 14> buf;
  buf.fill(std::byte{0xa5});
  repr.emit(buf);
  EXPECT_EQ(EthernetRepr::parse(*ConstFrame::check(buf)), repr);
}

}  // namespace
}  // namespace np::wire
