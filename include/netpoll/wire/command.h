// Remote commands' datagrams: an authenticated request to a process
// running netpoll, and the parts of its reply.
//
// One format both ways, a 32-byte big-endian header, the body, and a
// 32-byte HMAC-SHA-256 over everything before it:
//
//   0      4   5    6     7    8        12        20          28     30         32
//   | magic | ver | kind | flags | rsvd | key id | counter | timestamp | part | body len | body ... | MAC (32) |
//
//   magic      "npcm"
//   ver        1
//   kind       1 request, 2 reply
//   flags      reply: bit 0, the last part of its reply; request: 0
//   key id     which shared key made the MAC (the key file's id)
//   counter    request: strictly increasing per key (replay protection);
//              reply: the counter of the request it answers
//   timestamp  the sender's clock, nanoseconds since the Unix epoch
//   part       reply: 0, 1, ... in order; request: 0
//   body       request: the command as text ("t", "level 4");
//              reply: a piece of the reply's text
//
// The datagram is exactly header + body + MAC: a length field that says
// more than the datagram holds is truncated, one that says less leaves
// trailing bytes (kBadLength). The MAC is not computed here (wire is pure):
// command/verifier.h checks it, before parse() looks at any other field.
//
// Context: any.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "netpoll/base/assert.h"
#include "netpoll/base/bytes.h"
#include "netpoll/base/result.h"

namespace np::wire {

namespace command {
inline constexpr std::array<std::byte, 4> kMagic = {std::byte{'n'}, std::byte{'p'}, std::byte{'c'}, std::byte{'m'}};
inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::uint8_t kRequest = 1;
inline constexpr std::uint8_t kReply = 2;
inline constexpr std::uint8_t kFlagLast = 0x01;
inline constexpr std::size_t kHeaderLen = 32;
inline constexpr std::size_t kMacLen = 32;  // HMAC-SHA-256
// The longest request body: a command name and its arguments.
inline constexpr std::size_t kMaxRequestBody = 256;
// The port a process takes commands on by default: its console source's.
inline constexpr std::uint16_t kDefaultPort = 6665;
}  // namespace command

template <class B>
class CommandDatagram {
  static_assert(std::is_same_v<std::remove_const_t<B>, std::byte>);

 public:
  static constexpr std::size_t kHeaderLen = command::kHeaderLen;
  static constexpr std::size_t kMacLen = command::kMacLen;

  static constexpr CommandDatagram new_unchecked(std::span<B> buf) noexcept
    requires(!std::is_const_v<B>) {
    NP_ASSERT(buf.size() >= kHeaderLen + kMacLen);
    return CommandDatagram(buf);
  }

  // Header and MAC are whole, the body length fits between them, and
  // nothing follows the MAC. Reads the body length only.
  [[nodiscard]] static constexpr Result<CommandDatagram> check(std::span<B> buf) noexcept {
    if (buf.size() < kHeaderLen + kMacLen) return fail(Errc::kTruncated);
    const CommandDatagram d(buf);
    const std::size_t room = buf.size() - kHeaderLen - kMacLen;
    if (d.body_len() > room) return fail(Errc::kTruncated);
    if (d.body_len() < room) return fail(Errc::kBadLength);
    return d;
  }

  constexpr std::span<B> magic() const noexcept { return buf_.first(4); }
  constexpr std::uint8_t version() const noexcept { return load_u8(buf_, 4); }
  constexpr std::uint8_t kind() const noexcept { return load_u8(buf_, 5); }
  constexpr std::uint8_t flags() const noexcept { return load_u8(buf_, 6); }
  constexpr std::uint8_t reserved() const noexcept { return load_u8(buf_, 7); }
  constexpr std::uint32_t key_id() const noexcept { return load_be32(buf_, 8); }
  constexpr std::uint64_t counter() const noexcept { return load_be64(12); }
  constexpr std::uint64_t timestamp_ns() const noexcept { return load_be64(20); }
  constexpr std::uint16_t part() const noexcept { return load_be16(buf_, 28); }
  constexpr std::uint16_t body_len() const noexcept { return load_be16(buf_, 30); }
  constexpr std::span<B> body() const noexcept { return buf_.subspan(kHeaderLen, body_len()); }
  // What the MAC covers: header and body.
  constexpr std::span<B> authenticated() const noexcept { return buf_.first(kHeaderLen + body_len()); }
  constexpr std::span<B> mac() const noexcept { return buf_.subspan(kHeaderLen + body_len(), kMacLen); }

  constexpr void set_magic() noexcept requires(!std::is_const_v<B>) {
    for (std::size_t i = 0; i < 4; ++i) buf_[i] = command::kMagic[i];
  }
  constexpr void set_version(std::uint8_t v) noexcept requires(!std::is_const_v<B>) { store_u8(buf_, 4, v); }
  constexpr void set_kind(std::uint8_t v) noexcept requires(!std::is_const_v<B>) { store_u8(buf_, 5, v); }
  constexpr void set_flags(std::uint8_t v) noexcept requires(!std::is_const_v<B>) { store_u8(buf_, 6, v); }
  constexpr void set_reserved(std::uint8_t v) noexcept requires(!std::is_const_v<B>) { store_u8(buf_, 7, v); }
  constexpr void set_key_id(std::uint32_t v) noexcept requires(!std::is_const_v<B>) { store_be32(buf_, 8, v); }
  constexpr void set_counter(std::uint64_t v) noexcept requires(!std::is_const_v<B>) { store_be64(12, v); }
  constexpr void set_timestamp_ns(std::uint64_t v) noexcept requires(!std::is_const_v<B>) { store_be64(20, v); }
  constexpr void set_part(std::uint16_t v) noexcept requires(!std::is_const_v<B>) { store_be16(buf_, 28, v); }
  constexpr void set_body_len(std::uint16_t v) noexcept requires(!std::is_const_v<B>) { store_be16(buf_, 30, v); }

 private:
  constexpr explicit CommandDatagram(std::span<B> buf) noexcept : buf_(buf) {}
  constexpr std::uint64_t load_be64(std::size_t off) const noexcept {
    return (std::uint64_t{load_be32(buf_, off)} << 32) | load_be32(buf_, off + 4);
  }
  constexpr void store_be64(std::size_t off, std::uint64_t v) noexcept requires(!std::is_const_v<B>) {
    store_be32(buf_, off, static_cast<std::uint32_t>(v >> 32));
    store_be32(buf_, off + 4, static_cast<std::uint32_t>(v));
  }
  std::span<B> buf_;
};

// The facts of a datagram whose MAC verified. parse() refuses another
// magic (kMalformed), another version (kBadVersion), an unknown kind, flags
// or a reserved byte that a request must not carry (kUnsupported). The
// body refers into the checked buffer.
struct CommandRepr {
  std::uint8_t kind = command::kRequest;
  bool last = false;  // replies: the last part
  std::uint32_t key_id = 0;
  std::uint64_t counter = 0;
  std::uint64_t timestamp_ns = 0;
  std::uint16_t part = 0;
  std::span<const std::byte> body;

  [[nodiscard]] static Result<CommandRepr> parse(const CommandDatagram<const std::byte>& d) noexcept {
    const auto m = d.magic();
    if (!std::equal(m.begin(), m.end(), command::kMagic.begin())) return fail(Errc::kMalformed);
    if (d.version() != command::kVersion) return fail(Errc::kBadVersion);
    if (d.reserved() != 0) return fail(Errc::kUnsupported);
    if (d.kind() == command::kRequest) {
      if (d.flags() != 0 || d.part() != 0) return fail(Errc::kUnsupported);
    } else if (d.kind() == command::kReply) {
      if ((d.flags() & ~command::kFlagLast) != 0) return fail(Errc::kUnsupported);
    } else {
      return fail(Errc::kUnsupported);
    }
    return CommandRepr{d.kind(), (d.flags() & command::kFlagLast) != 0, d.key_id(), d.counter(), d.timestamp_ns(),
                       d.part(), d.body()};
  }

  constexpr std::size_t buffer_len() const noexcept { return command::kHeaderLen + body.size() + command::kMacLen; }

  // Writes header and body at the start of `buf` and zeros where the MAC
  // goes (the caller computes it over authenticated()). The body may
  // already be in place (body.data() == buf + 32) or anywhere else,
  // even where the header goes: it is moved first. Precondition: buf
  // holds buffer_len() bytes and the body at most 65535. Context: any.
  std::span<std::byte> emit(std::span<std::byte> buf) const noexcept {
    const std::size_t n = body.size();
    NP_ASSERT(n <= 0xffff && n <= buf.size() && buf.size() - n >= command::kHeaderLen + command::kMacLen);
    auto out = buf.first(command::kHeaderLen + n + command::kMacLen);
    std::byte* data = out.data() + command::kHeaderLen;
    if (n != 0 && body.data() != data) std::memmove(data, body.data(), n);
    auto d = CommandDatagram<std::byte>::new_unchecked(out);
    d.set_magic();
    d.set_version(command::kVersion);
    d.set_kind(kind);
    d.set_flags(kind == command::kReply && last ? command::kFlagLast : 0);
    d.set_reserved(0);
    d.set_key_id(key_id);
    d.set_counter(counter);
    d.set_timestamp_ns(timestamp_ns);
    d.set_part(part);
    d.set_body_len(static_cast<std::uint16_t>(n));
    std::memset(out.data() + command::kHeaderLen + n, 0, command::kMacLen);
    return out;
  }
};

}  // namespace np::wire
