#include "netpoll/command/verifier.h"

#include <gtest/gtest.h>

#include <vector>

#include "alloc_guard.h"
#include "netpoll/base/bytes.h"
#include "../wire/golden.h"

namespace np::command {
namespace {

namespace cm = wire::command;

// The golden request's key (bytes 0..31) and times.
Key golden_key() {
  Key k;
  k.id = 0x1a2b3c4d;
  for (std::size_t i = 0; i < kSecretLen; ++i) k.secret[i] = static_cast<unsigned char>(i);
  return k;
}
constexpr std::int64_t kGoldenTime = 0x1122334455667788;

KeyRing ring_of(const Key& k) {
  KeyRing r;
  EXPECT_TRUE(r.add(k));
  return r;
}

// A request sealed with `k`.
std::vector<std::byte> sealed_request(const Key& k, std::uint64_t counter, std::int64_t ts, std::string_view body) {
  std::vector<std::byte> out(cm::kHeaderLen + body.size() + cm::kMacLen);
  EXPECT_EQ(seal_request(k, counter, static_cast<std::uint64_t>(ts), as_bytes(body), out).size(), out.size());
  return out;
}

TEST(Verifier, AcceptsTheGoldenRequestWhoseMacPythonsHmacMade) {
  Verifier v(ring_of(golden_key()), {}, 0);
  auto r = v.verify(wire::golden::kCommandRequest, kGoldenTime);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(r->key_id, 0x1a2b3c4du);
  EXPECT_EQ(r->counter, 0x0102030405060708u);
  EXPECT_EQ(as_text(r->body), "level 4");
  EXPECT_EQ(v.accepted(), 1u);
  EXPECT_EQ(v.drops().total(), 0u);
}

TEST(Verifier, SealMakesTheGoldenMac) {
  const auto d = sealed_request(golden_key(), 0x0102030405060708, kGoldenTime, "level 4");
  EXPECT_EQ(d, std::vector<std::byte>(wire::golden::kCommandRequest.begin(), wire::golden::kCommandRequest.end()));
}

TEST(Verifier, NoSingleFlippedBitIsEverAccepted) {
  Verifier v(ring_of(golden_key()), {}, 0);
  std::vector<std::byte> d(wire::golden::kCommandRequest.begin(), wire::golden::kCommandRequest.end());
  for (std::size_t i = 0; i < d.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      d[i] ^= std::byte(1 << bit);
      EXPECT_FALSE(v.verify(d, kGoldenTime)) << i << "." << bit;
      d[i] ^= std::byte(1 << bit);
    }
  }
  EXPECT_EQ(v.accepted(), 0u);
  EXPECT_EQ(v.drops().total(), d.size() * 8);
  // The key id's bits find no key; the length field's change the length;
  // every other bit breaks the MAC.
  EXPECT_EQ(v.drops().value(CommandDrop::kUnknownKey), 32u);
  EXPECT_EQ(v.drops().value(CommandDrop::kBadMac) + v.drops().value(CommandDrop::kTruncated) +
                v.drops().value(CommandDrop::kMalformed) + v.drops().value(CommandDrop::kUnknownKey),
            d.size() * 8);
}

TEST(Verifier, CountsEachReasonAndRunsNothing) {
  const Key k = golden_key();
  Key other = k;
  other.secret[0] ^= 1;
  Key stranger = k;
  stranger.id = 0x99;
  const std::int64_t now = 2'000'000'000'000'000'000;
  Verifier v(ring_of(k), {}, now - 60'000'000'000);
  const auto good = sealed_request(k, now, now, "t");
  ASSERT_TRUE(v.verify(good, now));
  // replayed: the same bytes again
  EXPECT_EQ(v.verify(good, now).error(), CommandDrop::kReplay);
  // an older counter, fresh otherwise
  EXPECT_EQ(v.verify(sealed_request(k, now - 1, now, "t"), now).error(), CommandDrop::kReplay);
  // forged: another secret under the right key id
  EXPECT_EQ(v.verify(sealed_request(other, now + 1, now, "t"), now).error(), CommandDrop::kBadMac);
  // a key id nobody gave
  EXPECT_EQ(v.verify(sealed_request(stranger, now + 2, now, "t"), now).error(), CommandDrop::kUnknownKey);
  // stale: 31 s old, and 31 s ahead
  EXPECT_EQ(v.verify(sealed_request(k, now + 3, now - 31'000'000'000, "t"), now).error(), CommandDrop::kStale);
  EXPECT_EQ(v.verify(sealed_request(k, now + 4, now + 31'000'000'000, "t"), now).error(), CommandDrop::kStale);
  // truncated: one byte short of header + MAC, and a real one cut
  EXPECT_EQ(v.verify(std::span(good).first(63), now).error(), CommandDrop::kTruncated);
  EXPECT_EQ(v.verify(std::span(good).first(good.size() - 1), now).error(), CommandDrop::kTruncated);
  // oversized: a body beyond 256 bytes, even with a good MAC
  EXPECT_EQ(v.verify(sealed_request(k, now + 5, now, std::string(257, 'x')), now).error(), CommandDrop::kOversized);
  const auto& d = v.drops();
  EXPECT_EQ(d.value(CommandDrop::kReplay), 2u);
  EXPECT_EQ(d.value(CommandDrop::kBadMac), 1u);
  EXPECT_EQ(d.value(CommandDrop::kUnknownKey), 1u);
  EXPECT_EQ(d.value(CommandDrop::kStale), 2u);
  EXPECT_EQ(d.value(CommandDrop::kTruncated), 2u);
  EXPECT_EQ(d.value(CommandDrop::kOversized), 1u);
  EXPECT_EQ(v.accepted(), 1u);
  // Within the window, a later counter is taken: nothing above changed that.
  EXPECT_TRUE(v.verify(sealed_request(k, now + 6, now + 29'000'000'000, "t"), now));
}

TEST(Verifier, RefusesCountersFromBeforeItStartedLessTheWindow) {
  const Key k = golden_key();
  const std::int64_t start = 2'000'000'000'000'000'000;
  Verifier v(ring_of(k), {}, start);
  // Made 31 s before the process started: a capture from a previous run.
  EXPECT_EQ(v.verify(sealed_request(k, start - 31'000'000'000, start, "t"), start).error(), CommandDrop::kReplay);
  EXPECT_TRUE(v.verify(sealed_request(k, start - 29'000'000'000, start, "t"), start));
}

TEST(Verifier, AForgedFloodAllocatesNothing) {
  const Key k = golden_key();
  Key forger = k;
  forger.secret[5] ^= 0x40;
  const std::int64_t now = 2'000'000'000'000'000'000;
  Verifier v(ring_of(k), {}, now);
  std::vector<std::vector<std::byte>> flood;
  for (int i = 0; i < 100; ++i) flood.push_back(sealed_request(forger, now + 1 + i, now, std::string(256, 'f')));
  np::testing::AllocGuard guard;
  for (const auto& d : flood) static_cast<void>(v.verify(d, now));
  EXPECT_EQ(guard.stop(), 0u);
  EXPECT_EQ(v.drops().value(CommandDrop::kBadMac), 100u);
}

}  // namespace
}  // namespace np::command
