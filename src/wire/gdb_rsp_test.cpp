#include "netpoll/wire/gdb_rsp.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace np::wire {
namespace {

// Golden streams: the checksums were computed independently with
//   python3 -c "print('%02x' % (sum(P.encode('latin1')) % 256))"
// for each payload P. gdb 13's first packet is the qSupported below.
constexpr std::string_view kQSupported =
    "qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;"
    "vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+";

struct Seen {
  std::vector<RspEvent> events;
  std::vector<std::string> packets;
};

Seen decode(RspDecoder& d, std::string_view stream, std::size_t chunk = SIZE_MAX) {
  Seen s;
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    const auto piece = stream.substr(at, chunk);
    d.feed(std::as_bytes(std::span(piece.data(), piece.size())), [&](RspEvent e) {
      s.events.push_back(e);
      if (e == RspEvent::kPacket) s.packets.emplace_back(d.payload());
    });
    if (chunk == SIZE_MAX) break;
  }
  return s;
}

TEST(RspDecoder, ReadsGdbsPacketsAcksAndInterrupts) {
  std::array<char, 512> buf;
  RspDecoder d(buf);
  const std::string stream = "+$" + std::string(kQSupported) + "#ec+$?#3f-\x03$m7fff0000,4#f6";
  const Seen s = decode(d, stream);
  ASSERT_EQ(s.events.size(), 7u);
  EXPECT_EQ(s.events[0], RspEvent::kAck);
  EXPECT_EQ(s.events[1], RspEvent::kPacket);
  EXPECT_EQ(s.events[2], RspEvent::kAck);
  EXPECT_EQ(s.events[3], RspEvent::kPacket);
  EXPECT_EQ(s.events[4], RspEvent::kNak);
  EXPECT_EQ(s.events[5], RspEvent::kInterrupt);
  EXPECT_EQ(s.events[6], RspEvent::kPacket);  // ending in the stream's last byte
  ASSERT_EQ(s.packets.size(), 3u);
  EXPECT_EQ(s.packets[0], kQSupported);
  EXPECT_EQ(s.packets[1], "?");
  EXPECT_EQ(s.packets[2], "m7fff0000,4");
  EXPECT_EQ(d.stats().packets, 3u);
  EXPECT_EQ(d.stats().stray_bytes, 0u);
}

TEST(RspDecoder, APacketSplitAcrossDatagramsAtEveryByteIsTheSame) {
  const std::string stream = "$S05#b8$OK#9A";  // upper-case checksum digits are fine
  for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    std::array<char, 16> buf;
    RspDecoder d(buf);
    const Seen s = decode(d, stream, chunk);
    ASSERT_EQ(s.packets.size(), 2u) << chunk;
    EXPECT_EQ(s.packets[0], "S05");
    EXPECT_EQ(s.packets[1], "OK");
  }
}

TEST(RspDecoder, ABadChecksumIsReportedAndCounted) {
  std::array<char, 16> buf;
  RspDecoder d(buf);
  const Seen s = decode(d, "$g#68$g#6x$g#67");
  ASSERT_EQ(s.events.size(), 3u);
  EXPECT_EQ(s.events[0], RspEvent::kBadChecksum);
  EXPECT_EQ(s.events[1], RspEvent::kBadChecksum);
  EXPECT_EQ(s.events[2], RspEvent::kPacket);
  EXPECT_EQ(d.stats().bad_checksums, 2u);
}

TEST(RspDecoder, APacketCutShortByANewOneIsBadAndTheNewOneCounts) {
  std::array<char, 16> buf;
  RspDecoder d(buf);
  const Seen s = decode(d, "$m1000,$g#67");  // the rest of the first was lost
  ASSERT_EQ(s.events.size(), 2u);
  EXPECT_EQ(s.events[0], RspEvent::kBadChecksum);
  EXPECT_EQ(s.events[1], RspEvent::kPacket);
  ASSERT_EQ(s.packets.size(), 1u);
  EXPECT_EQ(s.packets[0], "g");
}

TEST(RspDecoder, APacketLongerThanTheBufferIsDroppedWholeThenTheNextIsRead) {
  std::array<char, 4> buf;
  RspDecoder d(buf);
  // "12345": checksum 0xff; then "?".
  const Seen s = decode(d, "$12345#ff$?#3f");
  ASSERT_EQ(s.events.size(), 2u);
  EXPECT_EQ(s.events[0], RspEvent::kOverflow);
  EXPECT_EQ(s.events[1], RspEvent::kPacket);
  EXPECT_EQ(s.packets[0], "?");
  EXPECT_EQ(d.stats().overflows, 1u);
}

TEST(RspDecoder, BytesOutsidePacketsAreCountedAndIgnored) {
  std::array<char, 16> buf;
  RspDecoder d(buf);
  const Seen s = decode(d, "hello\n#00$?#3f");
  ASSERT_EQ(s.packets.size(), 1u);
  EXPECT_EQ(d.stats().stray_bytes, 9u);
}

TEST(RspEncode, FramesWithTheChecksumAndEscapesTheFourSpecialBytes) {
  std::array<char, 64> out;
  auto framed = [&](std::string_view p) {
    const std::size_t n = rsp_encode(p, out);
    return std::string(out.data(), n);
  };
  EXPECT_EQ(framed("OK"), "$OK#9a");
  EXPECT_EQ(framed(""), "$#00");
  EXPECT_EQ(framed("S05"), "$S05#b8");
  // '#' goes as "}\x03": the checksum covers the bytes as sent.
  EXPECT_EQ(framed("a#b"), "$a}\x03" "b#43");
  EXPECT_EQ(framed("$}*"), "$}\x04}]}\x0a#e2");
}

TEST(RspEncode, RefusesABufferTooSmallForTheWholeFrame) {
  std::array<char, 5> out;
  EXPECT_EQ(rsp_encode("OK", out), 0u);  // needs 6
  std::array<char, 6> exact;
  EXPECT_EQ(rsp_encode("OK", exact), 6u);
  std::array<char, 6> escaped;  // "$}\x03#80": the escape counts
  EXPECT_EQ(rsp_encode("#", escaped), 6u);
  EXPECT_EQ(std::string(escaped.data(), 6), "$}\x03#80");
  std::array<char, 5> short_by_the_escape;
  EXPECT_EQ(rsp_encode("#", short_by_the_escape), 0u);
}

TEST(RspEncode, WhatItFramesTheDecoderReadsBackByteForByte) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::string payload(rng() % 300, '\0');
    for (auto& c : payload) c = static_cast<char>(rng());
    std::vector<char> framed(2 * payload.size() + 8);
    const std::size_t n = rsp_encode(payload, framed);
    ASSERT_GT(n, 0u);
    std::array<char, 1024> buf;
    RspDecoder d(buf);
    std::string got;
    d.feed(std::as_bytes(std::span(framed.data(), n)), [&](RspEvent e) {
      ASSERT_EQ(e, RspEvent::kPacket);
      std::string raw(d.payload());
      raw.resize(rsp_unescape(raw));
      got = raw;
    });
    EXPECT_EQ(got, payload) << round;
  }
}

TEST(RspUnescape, UndoesEscapesInPlaceAndDropsATrailingEscape) {
  std::string s = "a}\x03" "b}";
  s.resize(rsp_unescape(s));
  EXPECT_EQ(s, "a#b");
}

TEST(RspEncode, BinaryDataAlsoEscapesAckAndNakCharacters) {
  char out[64];
  const std::size_t text = rsp_encode("a+b-c", out);
  EXPECT_EQ(std::string_view(out, text), "$a+b-c#7e");
  const std::size_t bin = rsp_encode("a+b-c", out, RspPayload::kBinary);
  const std::string_view framed(out, bin);
  EXPECT_EQ(framed.substr(0, 8), std::string_view("$a}\x0b" "b}\x0d" "c", 8));
  EXPECT_EQ(framed.find('+'), std::string_view::npos);
  EXPECT_EQ(framed.find('-'), std::string_view::npos);
  std::string back(framed.substr(1, bin - 4));
  back.resize(rsp_unescape(std::span<char>(back.data(), back.size())));
  EXPECT_EQ(back, "a+b-c");
}

}  // namespace
}  // namespace np::wire
