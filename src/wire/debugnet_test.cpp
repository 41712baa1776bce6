#include "netpoll/wire/debugnet.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <string_view>
#include <vector>

#include "netpoll/base/bytes.h"
#include "golden.h"

namespace np::wire {
namespace {

using ConstMessage = DebugnetMessage<const std::byte>;
namespace dn = debugnet;

// python3 -c "import struct; print(struct.pack('>IIQII', 3, 0x01020304,
//   0x1122334455667788, 7, 0x99aabbcc) + b'netpoll')"
// A DATA message: every header field holds distinct bytes, so a field read
// from the wrong place or in the wrong order cannot pass.
constexpr std::uint8_t kDataRaw[] = {0x00, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03, 0x04, 0x11, 0x22, 0x33,
                                     0x44, 0x55, 0x66, 0x77, 0x88, 0x00, 0x00, 0x00, 0x07, 0x99, 0xaa,
                                     0xbb, 0xcc, 0x6e, 0x65, 0x74, 0x70, 0x6f, 0x6c, 0x6c};
constexpr auto kData = golden::bytes(kDataRaw);

// python3 -c "import struct; print(struct.pack('>I', 0xdeadbeef))"
constexpr std::uint8_t kAckRaw[] = {0xde, 0xad, 0xbe, 0xef};
constexpr auto kAck = golden::bytes(kAckRaw);

std::string_view as_text(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::vector<std::byte> copy_of(std::span<const std::byte> b) { return {b.begin(), b.end()}; }

TEST(DebugnetMessage, ReadsEveryFieldOfGoldenData) {
  auto m = ConstMessage::check(kData);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), dn::kData);
  EXPECT_EQ(m->seqno(), 0x01020304u);
  EXPECT_EQ(m->offset(), 0x1122334455667788u);
  EXPECT_EQ(m->len(), 7u);
  EXPECT_EQ(m->aux2(), 0x99aabbccu);
  EXPECT_EQ(as_text(m->payload()), "netpoll");
}

TEST(DebugnetMessage, RejectsEveryTruncation) {
  for (std::size_t n = 0; n < kData.size(); ++n) {
    auto m = ConstMessage::check(std::span(kData).first(n));
    ASSERT_FALSE(m) << n;
    // Inside the header: truncated; after it, len says more than is there.
    EXPECT_EQ(m.error(), n < ConstMessage::kHeaderLen ? Errc::kTruncated : Errc::kBadLength) << n;
  }
}

TEST(DebugnetMessage, RejectsLenBeyondTheBuffer) {
  auto d = copy_of(kData);
  d[19] = std::byte{8};  // one more than the 7 bytes there
  EXPECT_EQ(ConstMessage::check(d).error(), Errc::kBadLength);
  // The largest len: no wrap-around lets it through.
  d[16] = d[17] = d[18] = d[19] = std::byte{0xff};
  EXPECT_EQ(ConstMessage::check(d).error(), Errc::kBadLength);
}

TEST(DebugnetMessage, TakesTrailingBytesAsPaddingOutsideThePayload) {
  auto d = copy_of(kData);
  d.push_back(std::byte{0x21});
  auto m = ConstMessage::check(d);
  ASSERT_TRUE(m);
  EXPECT_EQ(as_text(m->payload()), "netpoll");
}

TEST(DebugnetMessage, AHeaderAloneIsAMessageWithAnEmptyPayload) {
  auto d = copy_of(std::span(kData).first(24));
  d[19] = std::byte{0};
  auto m = ConstMessage::check(d);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->payload().empty());
}

TEST(DebugnetRepr, ParsesGoldenData) {
  auto r = DebugnetRepr::parse(*ConstMessage::check(kData));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, dn::kData);
  EXPECT_EQ(r->seqno, 0x01020304u);
  EXPECT_EQ(r->offset, 0x1122334455667788u);
  EXPECT_EQ(r->aux2, 0x99aabbccu);
  EXPECT_EQ(as_text(r->payload), "netpoll");
  EXPECT_EQ(r->buffer_len(), kData.size());
}

TEST(DebugnetRepr, RefusesEveryTypeItDoesNotKnow) {
  for (const std::uint32_t type : {0u, 4u, 5u, 0x100u, 0x03000000u, 0xffffffffu}) {
    auto d = copy_of(kData);
    store_be32(d, 0, type);
    auto m = ConstMessage::check(d);
    ASSERT_TRUE(m) << type;  // the view has no opinion on the type
    EXPECT_EQ(DebugnetRepr::parse(*m).error(), Errc::kUnsupported) << type;
  }
  for (const std::uint32_t type : {dn::kHerald, dn::kFinished, dn::kData}) {
    auto d = copy_of(kData);
    store_be32(d, 0, type);
    EXPECT_TRUE(DebugnetRepr::parse(*ConstMessage::check(d))) << type;
  }
}

TEST(DebugnetRepr, EmitsGoldenDataIntoDirtyBuffer) {
  const DebugnetRepr r{dn::kData, 0x01020304, 0x1122334455667788, 0x99aabbcc, as_bytes("netpoll")};
  std::vector<std::byte> buf(40, std::byte{0xa5});
  const auto out = r.emit(buf);
  ASSERT_EQ(out.size(), kData.size());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), kData.begin()));
  for (std::size_t i = out.size(); i < buf.size(); ++i) EXPECT_EQ(buf[i], std::byte{0xa5}) << i;
}

TEST(DebugnetRepr, EmitsWithThePayloadAlreadyInPlace) {
  std::vector<std::byte> buf(kData.size(), std::byte{0xa5});
  const auto msg = as_bytes("netpoll");
  std::copy(msg.begin(), msg.end(), buf.begin() + 24);
  const DebugnetRepr r{dn::kData, 0x01020304, 0x1122334455667788, 0x99aabbcc,
                       std::span<const std::byte>(buf).subspan(24)};
  r.emit(buf);
  EXPECT_TRUE(std::equal(buf.begin(), buf.end(), kData.begin()));
}

// A payload that starts inside the header's bytes (built at the front of
// the buffer): it must be moved before the header is written over it.
TEST(DebugnetRepr, EmitsAPayloadThatLiesWhereTheHeaderGoes) {
  std::vector<std::byte> buf(kData.size(), std::byte{0xa5});
  const auto msg = as_bytes("netpoll");
  std::copy(msg.begin(), msg.end(), buf.begin() + 3);
  const DebugnetRepr r{dn::kData, 0x01020304, 0x1122334455667788, 0x99aabbcc,
                       std::span<const std::byte>(buf).subspan(3, 7)};
  r.emit(buf);
  EXPECT_TRUE(std::equal(buf.begin(), buf.end(), kData.begin())) << as_text(std::span(buf).subspan(24));
}

TEST(DebugnetRepr, RoundTripsEachType) {
  const std::string_view desc = "kind=crash\nprogram=crashy\npid=4242\n";
  for (const std::uint32_t type : {dn::kHerald, dn::kFinished, dn::kData}) {
    const DebugnetRepr r{type, 77, (std::uint64_t{1} << 40) + 3, type == dn::kHerald ? 1u : 0u,
                         type == dn::kFinished ? std::span<const std::byte>() : as_bytes(desc)};
    std::vector<std::byte> buf(r.buffer_len(), std::byte{0xa5});
    r.emit(buf);
    auto back = DebugnetRepr::parse(*ConstMessage::check(buf));
    ASSERT_TRUE(back) << type;
    EXPECT_EQ(back->type, type);
    EXPECT_EQ(back->seqno, 77u);
    EXPECT_EQ(back->offset, (std::uint64_t{1} << 40) + 3);
    EXPECT_EQ(back->aux2, r.aux2);
    EXPECT_EQ(as_text(back->payload), as_text(r.payload));
  }
}

TEST(DebugnetAck, ParsesGoldenAck) {
  auto a = parse_debugnet_ack(kAck);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 0xdeadbeefu);
}

TEST(DebugnetAck, EmitsGoldenAckIntoDirtyBuffer) {
  std::array<std::byte, 8> buf;
  buf.fill(std::byte{0xa5});
  const auto out = emit_debugnet_ack(0xdeadbeef, buf);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), kAck.begin()));
  EXPECT_EQ(buf[4], std::byte{0xa5});
  EXPECT_EQ(*parse_debugnet_ack(out), 0xdeadbeefu);
}

TEST(DebugnetAck, OnlyExactlyFourBytesAreAnAck) {
  std::array<std::byte, 32> buf{};
  for (std::size_t n = 0; n <= buf.size(); ++n) {
    auto a = parse_debugnet_ack(std::span(buf).first(n));
    EXPECT_EQ(a.has_value(), n == dn::kAckLen) << n;
    if (!a) {
      EXPECT_EQ(a.error(), Errc::kBadLength);
    }
  }
}

// Length tells an ack from a message: four bytes are never a message.
TEST(DebugnetAck, AFourBytePayloadIsAnAckAndNothingElse) {
  EXPECT_TRUE(parse_debugnet_ack(kAck));
  EXPECT_EQ(ConstMessage::check(kAck).error(), Errc::kTruncated);
  // And a whole message is never an ack.
  EXPECT_FALSE(parse_debugnet_ack(kData));
  EXPECT_FALSE(parse_debugnet_ack(std::span(kData).first(24)));
}

// netpoll's range ack: first and last, big-endian. Made with Python:
//   struct.pack('>II', 0x102, 0x141)
constexpr std::array<std::byte, 8> kAckRange = {std::byte{0x00}, std::byte{0x00}, std::byte{0x01}, std::byte{0x02},
                                                std::byte{0x00}, std::byte{0x00}, std::byte{0x01}, std::byte{0x41}};

TEST(DebugnetAckRange, ParsesAndEmitsTheGoldenRangeIntoADirtyBuffer) {
  const auto r = parse_debugnet_ack_range(kAckRange);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 0x102u);
  EXPECT_EQ(r->last, 0x141u);  // 64 numbers: a whole window
  std::array<std::byte, 12> buf;
  buf.fill(std::byte{0xa5});
  const auto out = emit_debugnet_ack_range(*r, buf);
  ASSERT_EQ(out.size(), 8u);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), kAckRange.begin()));
  EXPECT_EQ(buf[8], std::byte{0xa5});
}

TEST(DebugnetAckRange, RefusesEveryOtherLengthAndEveryRunNoSenderHas) {
  std::array<std::byte, 32> buf{};
  for (std::size_t n = 0; n <= buf.size(); ++n) {
    if (n == dn::kAckRangeLen) continue;
    const auto r = parse_debugnet_ack_range(std::span(buf).first(n));
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error(), Errc::kBadLength) << n;
  }
  const auto range = [](std::uint32_t first, std::uint32_t last) {
    std::array<std::byte, 8> b;
    return parse_debugnet_ack_range(emit_debugnet_ack_range({first, last}, b));
  };
  EXPECT_TRUE(range(7, 7));
  EXPECT_TRUE(range(1, 64));
  EXPECT_EQ(range(0, 3).error(), Errc::kMalformed);   // no packet is number 0
  EXPECT_EQ(range(9, 8).error(), Errc::kMalformed);   // backwards
  EXPECT_EQ(range(1, 65).error(), Errc::kMalformed);  // longer than a window
  EXPECT_EQ(range(5, 0xffffffff).error(), Errc::kMalformed);
  // Neither a plain ack nor a message: a debugnet peer that does not know
  // ranges sees neither.
  EXPECT_FALSE(parse_debugnet_ack(kAckRange));
  EXPECT_FALSE(ConstMessage::check(kAckRange));
}

}  // namespace
}  // namespace np::wire
