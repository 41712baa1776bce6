#include "netpoll/wire/command.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <vector>

#include "netpoll/base/bytes.h"
#include "golden.h"

namespace np::wire {
namespace {

using ConstCommand = CommandDatagram<const std::byte>;
namespace cm = command;

std::vector<std::byte> command_copy(std::span<const std::byte> b) { return {b.begin(), b.end()}; }

TEST(CommandDatagram, ReadsEveryFieldOfTheGoldenRequest) {
  auto d = ConstCommand::check(golden::kCommandRequest);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->version(), 1);
  EXPECT_EQ(d->kind(), cm::kRequest);
  EXPECT_EQ(d->flags(), 0);
  EXPECT_EQ(d->key_id(), 0x1a2b3c4du);
  EXPECT_EQ(d->counter(), 0x0102030405060708u);
  EXPECT_EQ(d->timestamp_ns(), 0x1122334455667788u);
  EXPECT_EQ(d->part(), 0);
  EXPECT_EQ(as_text(d->body()), "level 4");
  EXPECT_EQ(d->authenticated().size(), 39u);
  EXPECT_EQ(d->mac().size(), 32u);
  EXPECT_EQ(d->mac()[0], std::byte{0x3b});  // the MAC's first byte, as hmac made it
}

TEST(CommandDatagram, ReadsTheGoldenReplysPartAndLastFlag) {
  auto d = ConstCommand::check(golden::kCommandReply);
  ASSERT_TRUE(d);
  auto r = CommandRepr::parse(*d);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, cm::kReply);
  EXPECT_TRUE(r->last);
  EXPECT_EQ(r->part, 3);
  EXPECT_EQ(as_text(r->body), "ok");
}

TEST(CommandDatagram, RejectsEveryTruncation) {
  for (std::size_t n = 0; n < golden::kCommandRequest.size(); ++n) {
    auto d = ConstCommand::check(std::span(golden::kCommandRequest).first(n));
    ASSERT_FALSE(d) << n;
    // Below header + MAC, or a body length that says more than is there.
    EXPECT_EQ(d.error(), Errc::kTruncated) << n;
  }
}

TEST(CommandDatagram, RejectsTrailingBytesAndAnyBodyLengthThatDisagrees) {
  auto d = command_copy(golden::kCommandRequest);
  d.push_back(std::byte{0});
  EXPECT_EQ(ConstCommand::check(d).error(), Errc::kBadLength);
  d.pop_back();
  d[31] = std::byte{6};
  EXPECT_EQ(ConstCommand::check(d).error(), Errc::kBadLength);
  d[30] = d[31] = std::byte{0xff};
  EXPECT_EQ(ConstCommand::check(d).error(), Errc::kTruncated);
}

TEST(CommandRepr, ParsesTheGoldenRequest) {
  auto r = CommandRepr::parse(*ConstCommand::check(golden::kCommandRequest));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, cm::kRequest);
  EXPECT_FALSE(r->last);
  EXPECT_EQ(r->key_id, 0x1a2b3c4du);
  EXPECT_EQ(r->counter, 0x0102030405060708u);
  EXPECT_EQ(r->timestamp_ns, 0x1122334455667788u);
  EXPECT_EQ(as_text(r->body), "level 4");
}

TEST(CommandRepr, RefusesAnotherMagicVersionKindOrARequestWithReplyFields) {
  const auto parse_with = [](std::size_t at, std::uint8_t v) {
    auto d = command_copy(golden::kCommandRequest);
    d[at] = std::byte{v};
    return CommandRepr::parse(*ConstCommand::check(d));
  };
  EXPECT_EQ(parse_with(0, 'N').error(), Errc::kMalformed);
  EXPECT_EQ(parse_with(4, 2).error(), Errc::kBadVersion);
  EXPECT_EQ(parse_with(5, 3).error(), Errc::kUnsupported);
  EXPECT_EQ(parse_with(5, 0).error(), Errc::kUnsupported);
  EXPECT_EQ(parse_with(6, 1).error(), Errc::kUnsupported);   // a request has no last flag
  EXPECT_EQ(parse_with(7, 1).error(), Errc::kUnsupported);   // reserved
  EXPECT_EQ(parse_with(29, 1).error(), Errc::kUnsupported);  // a request has no part
}

TEST(CommandRepr, EmitsTheGoldenBytesIntoADirtyBufferButTheMac) {
  CommandRepr r;
  r.kind = cm::kReply;
  r.last = true;
  r.key_id = 0x1a2b3c4d;
  r.counter = 0x0102030405060708;
  r.timestamp_ns = 0x1122334455667788;
  r.part = 3;
  r.body = as_bytes("ok");
  std::array<std::byte, 128> buf;
  buf.fill(std::byte{0xa5});
  const auto out = r.emit(buf);
  ASSERT_EQ(out.size(), golden::kCommandReply.size());
  EXPECT_TRUE(std::equal(out.begin(), out.end() - 32, golden::kCommandReply.begin()));
  EXPECT_TRUE(std::all_of(out.end() - 32, out.end(), [](std::byte b) { return b == std::byte{0}; }));
  EXPECT_EQ(buf[out.size()], std::byte{0xa5});  // nothing past it
}

TEST(CommandRepr, RoundTripsWithTheBodyAlreadyInPlace) {
  std::array<std::byte, 128> buf;
  buf.fill(std::byte{0xa5});
  const std::string_view text = "stacks";
  std::memcpy(buf.data() + cm::kHeaderLen, text.data(), text.size());
  CommandRepr r;
  r.key_id = 7;
  r.counter = 9;
  r.timestamp_ns = 11;
  r.body = std::span<const std::byte>(buf).subspan(cm::kHeaderLen, text.size());
  const auto out = r.emit(buf);
  auto back = CommandRepr::parse(*ConstCommand::check(std::span<const std::byte>(out)));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->key_id, 7u);
  EXPECT_EQ(back->counter, 9u);
  EXPECT_EQ(back->timestamp_ns, 11u);
  EXPECT_EQ(as_text(back->body), "stacks");
}

}  // namespace
}  // namespace np::wire
