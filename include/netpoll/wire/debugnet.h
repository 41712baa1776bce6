// The debugnet transport's messages (FreeBSD debugnet, kept wire-compatible):
// what netdump and the dump server exchange over UDP.
//
// A message is a 24-byte big-endian header followed by `len` bytes of
// payload:
//
//   0      4      8              16     20     24
//   | type | seqno | offset       | len  | aux2 | payload ...
//
// An acknowledgement is a UDP payload of exactly 4 bytes: the big-endian
// sequence number it acknowledges. Length tells the two apart: a datagram of
// 4 bytes is an ack, one of 24 or more a message, anything else neither.
//
// netpoll's extension, the range acknowledgement: exactly 8 bytes, the
// first and the last sequence number of a run of packets the server has
// (big-endian; first <= last, at most kMaxInFlight numbers). It takes the
// place of one 4-byte ack per packet of the run: a server answering a
// batch of 40 DATA packets sends one datagram, not 40 (each of which costs
// both hosts a trip through their network stacks). A server sends it only
// to a client whose herald says it takes them (the description line
// "acks=ranges", which netpoll's stream adds itself); a debugnet client
// that does not know it never asks, and would see neither an ack nor a
// message in 8 bytes.
//
// Types: HERALD (1) opens a transfer (sent to the server's herald port; the
// server answers from a fresh port that the client then uses for everything
// else), DATA (3) carries bytes to write at `offset`, FINISHED (2) closes it.
// Sequence numbers start at 1. netpoll's use of the fields (debugnet leaves
// them to its clients):
//   HERALD    payload: the transfer's description, "key=value" lines of
//             printable ASCII, each ended by '\n', unknown keys ignored:
//             kind (crash | live | kernel), program, pid, signal, threads,
//             size (the file's length), host, acks (ranges: the client
//             takes range acknowledgements); aux2: the revision (1).
//   DATA      offset: where the payload goes in the file.
//   FINISHED  offset: the file's final length (a sparse tail is never sent);
//             aux2: 1 if the sender gave up before the end (a partial file).
//
// Context: any.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "netpoll/base/assert.h"
#include "netpoll/base/bytes.h"
#include "netpoll/base/result.h"

namespace np::wire {

namespace debugnet {
inline constexpr std::uint32_t kHerald = 1;
inline constexpr std::uint32_t kFinished = 2;
inline constexpr std::uint32_t kData = 3;
inline constexpr std::size_t kAckLen = 4;
inline constexpr std::size_t kAckRangeLen = 8;
// Packets a sender keeps unacknowledged at most (debugnet's window).
inline constexpr std::size_t kMaxInFlight = 64;
// netdump's ports: the server's herald port and the client's source port.
inline constexpr std::uint16_t kServerPort = 20023;
inline constexpr std::uint16_t kClientPort = 20024;
}  // namespace debugnet

template <class B>
class DebugnetMessage {
  static_assert(std::is_same_v<std::remove_const_t<B>, std::byte>);

 public:
  static constexpr std::size_t kHeaderLen = 24;

  static constexpr DebugnetMessage new_unchecked(std::span<B> buf) noexcept
    requires(!std::is_const_v<B>) {
    NP_ASSERT(buf.size() >= kHeaderLen);
    return DebugnetMessage(buf);
  }

  // The header is whole and `len` fits the buffer (trailing bytes beyond it
  // are tolerated, as UDP padding would be: payload() stops at len).
  [[nodiscard]] static constexpr Result<DebugnetMessage> check(std::span<B> buf) noexcept {
    if (buf.size() < kHeaderLen) return fail(Errc::kTruncated);
    const DebugnetMessage m(buf);
    if (m.len() > buf.size() - kHeaderLen) return fail(Errc::kBadLength);
    return m;
  }

  constexpr std::uint32_t type() const noexcept { return load_be32(buf_, 0); }
  constexpr std::uint32_t seqno() const noexcept { return load_be32(buf_, 4); }
  constexpr std::uint64_t offset() const noexcept {
    return (static_cast<std::uint64_t>(load_be32(buf_, 8)) << 32) | load_be32(buf_, 12);
  }
  constexpr std::uint32_t len() const noexcept { return load_be32(buf_, 16); }
  constexpr std::uint32_t aux2() const noexcept { return load_be32(buf_, 20); }
  constexpr std::span<B> payload() const noexcept { return buf_.subspan(kHeaderLen, len()); }

  constexpr void set_type(std::uint32_t v) noexcept requires(!std::is_const_v<B>) { store_be32(buf_, 0, v); }
  constexpr void set_seqno(std::uint32_t v) noexcept requires(!std::is_const_v<B>) { store_be32(buf_, 4, v); }
  constexpr void set_offset(std::uint64_t v) noexcept requires(!std::is_const_v<B>) {
    store_be32(buf_, 8, static_cast<std::uint32_t>(v >> 32));
    store_be32(buf_, 12, static_cast<std::uint32_t>(v));
  }
  constexpr void set_len(std::uint32_t v) noexcept requires(!std::is_const_v<B>) { store_be32(buf_, 16, v); }
  constexpr void set_aux2(std::uint32_t v) noexcept requires(!std::is_const_v<B>) { store_be32(buf_, 20, v); }

 private:
  constexpr explicit DebugnetMessage(std::span<B> buf) noexcept : buf_(buf) {}
  std::span<B> buf_;
};

// The facts of a message. parse() refuses unknown types; the payload refers
// into the checked buffer.
struct DebugnetRepr {
  std::uint32_t type = 0;
  std::uint32_t seqno = 0;
  std::uint64_t offset = 0;
  std::uint32_t aux2 = 0;
  std::span<const std::byte> payload;

  [[nodiscard]] static Result<DebugnetRepr> parse(const DebugnetMessage<const std::byte>& m) noexcept {
    if (m.type() < debugnet::kHerald || m.type() > debugnet::kData) return fail(Errc::kUnsupported);
    return DebugnetRepr{m.type(), m.seqno(), m.offset(), m.aux2(), m.payload()};
  }

  constexpr std::size_t buffer_len() const noexcept { return DebugnetMessage<std::byte>::kHeaderLen + payload.size(); }

  // Writes header and payload at the start of `buf`; the payload may already
  // be in place (payload.data() == buf + 24) or anywhere else in `buf`,
  // even where the header goes: it is moved before the header is written.
  // Precondition: buf holds buffer_len() bytes. Context: any.
  std::span<std::byte> emit(std::span<std::byte> buf) const noexcept {
    constexpr std::size_t kHeaderLen = DebugnetMessage<std::byte>::kHeaderLen;
    // Checked without computing buffer_len(), which a payload of nearly
    // SIZE_MAX bytes would wrap (g++ sees that path and warns).
    const std::size_t n = payload.size();
    NP_ASSERT(n <= buf.size() && buf.size() - n >= kHeaderLen);
    auto out = buf.first(kHeaderLen + n);
    std::byte* data = out.data() + kHeaderLen;
    if (n != 0 && payload.data() != data) std::memmove(data, payload.data(), n);
    auto m = DebugnetMessage<std::byte>::new_unchecked(out);
    m.set_type(type);
    m.set_seqno(seqno);
    m.set_offset(offset);
    m.set_len(static_cast<std::uint32_t>(payload.size()));
    m.set_aux2(aux2);
    return out;
  }
};

// An acknowledgement: exactly 4 bytes. Context: any.
[[nodiscard]] inline Result<std::uint32_t> parse_debugnet_ack(std::span<const std::byte> buf) noexcept {
  if (buf.size() != debugnet::kAckLen) return fail(Errc::kBadLength);
  return load_be32(buf, 0);
}

inline std::span<std::byte> emit_debugnet_ack(std::uint32_t seqno, std::span<std::byte> buf) noexcept {
  NP_ASSERT(buf.size() >= debugnet::kAckLen);
  store_be32(buf, 0, seqno);
  return buf.first(debugnet::kAckLen);
}

// A range acknowledgement (netpoll's extension, above): every sequence
// number from `first` to `last`.
struct DebugnetAckRange {
  std::uint32_t first = 0;
  std::uint32_t last = 0;
  friend constexpr bool operator==(const DebugnetAckRange&, const DebugnetAckRange&) = default;
};

// Exactly 8 bytes; kBadLength otherwise, kMalformed when first is 0, first
// is past last or the run is longer than a window. Context: any.
[[nodiscard]] inline Result<DebugnetAckRange> parse_debugnet_ack_range(std::span<const std::byte> buf) noexcept {
  if (buf.size() != debugnet::kAckRangeLen) return fail(Errc::kBadLength);
  const DebugnetAckRange r{load_be32(buf, 0), load_be32(buf, 4)};
  if (r.first == 0 || r.first > r.last || r.last - r.first >= debugnet::kMaxInFlight) return fail(Errc::kMalformed);
  return r;
}

inline std::span<std::byte> emit_debugnet_ack_range(DebugnetAckRange r, std::span<std::byte> buf) noexcept {
  NP_ASSERT(buf.size() >= debugnet::kAckRangeLen);
  store_be32(buf, 0, r.first);
  store_be32(buf, 4, r.last);
  return buf.first(debugnet::kAckRangeLen);
}

}  // namespace np::wire
