// IPv4 headers (RFC 791).
//
// Ipv4Packet views any header, options included. Ipv4Repr is what netpoll
// sends and accepts: no options, not fragmented. Options and fragments are
// recognised (kHasOptions, kFragment) so that the receive path can refuse
// them with a reason of their own, as a netpoll target must: it has no
// reassembly and no option processing.
//
// Context: any.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "netpoll/base/addr.h"
#include "netpoll/base/assert.h"
#include "netpoll/base/bytes.h"
#include "netpoll/base/result.h"
#include "netpoll/wire/checksum.h"

namespace np::wire {

namespace ip_proto {
inline constexpr std::uint8_t kIcmp = 1;
inline constexpr std::uint8_t kTcp = 6;
inline constexpr std::uint8_t kUdp = 17;
}  // namespace ip_proto

template <class B>
class Ipv4Packet {
  static_assert(std::is_same_v<std::remove_const_t<B>, std::byte>);

 public:
  static constexpr std::size_t kMinHeaderLen = 20;

  // A view over a buffer being built, before its fields hold valid
  // values: for emitting only. Precondition: buf.size() >= kMinHeaderLen.
  static constexpr Ipv4Packet new_unchecked(std::span<B> buf) noexcept
    requires(!std::is_const_v<B>) {
    NP_ASSERT(buf.size() >= kMinHeaderLen);
    return Ipv4Packet(buf);
  }

  // The checks of a receiver, in the order Linux makes them (ip_rcv and
  // netpoll's __netpoll_rx): a 20-byte header present (kTruncated), version
  // 4 (kBadVersion), IHL at least 5 (kBadHeaderLen), the whole header
  // present (kTruncated), the header checksum (kBadChecksum), then the total
  // length: not below the header and not beyond the buffer (kBadLength). A
  // buffer longer than the total length is fine: Ethernet pads short frames
  // (payload() trims the padding).
  [[nodiscard]] static constexpr Result<Ipv4Packet> check(std::span<B> buf) noexcept {
    if (buf.size() < kMinHeaderLen) return fail(Errc::kTruncated);
    const Ipv4Packet p(buf);
    if (p.version() != 4) return fail(Errc::kBadVersion);
    if (p.header_len() < kMinHeaderLen) return fail(Errc::kBadHeaderLen);
    if (buf.size() < p.header_len()) return fail(Errc::kTruncated);
    if (!p.verify_checksum()) return fail(Errc::kBadChecksum);
    if (p.total_len() < p.header_len() || buf.size() < p.total_len()) return fail(Errc::kBadLength);
    return p;
  }

  constexpr std::uint8_t version() const noexcept { return load_u8(buf_, 0) >> 4; }
  constexpr std::size_t header_len() const noexcept { return std::size_t{load_u8(buf_, 0) & 0x0fu} * 4; }
  constexpr std::uint8_t tos() const noexcept { return load_u8(buf_, 1); }
  constexpr std::uint16_t total_len() const noexcept { return load_be16(buf_, 2); }
  constexpr std::uint16_t ident() const noexcept { return load_be16(buf_, 4); }
  constexpr bool dont_frag() const noexcept { return (load_u8(buf_, 6) & 0x40) != 0; }
  constexpr bool more_frags() const noexcept { return (load_u8(buf_, 6) & 0x20) != 0; }
  // Fragment offset in bytes (the field counts 8-byte units).
  constexpr std::size_t frag_offset() const noexcept { return std::size_t{load_be16(buf_, 6) & 0x1fffu} * 8; }
  constexpr std::uint8_t ttl() const noexcept { return load_u8(buf_, 8); }
  constexpr std::uint8_t protocol() const noexcept { return load_u8(buf_, 9); }
  constexpr std::uint16_t checksum() const noexcept { return load_be16(buf_, 10); }
  Ipv4Addr src() const noexcept { return Ipv4Addr::from_bytes(buf_.subspan(12, 4)); }
  Ipv4Addr dst() const noexcept { return Ipv4Addr::from_bytes(buf_.subspan(16, 4)); }

  constexpr bool has_options() const noexcept { return header_len() > kMinHeaderLen; }
  constexpr bool is_fragment() const noexcept { return more_frags() || frag_offset() != 0; }
  constexpr std::span<B> options() const noexcept {
    return buf_.subspan(kMinHeaderLen, header_len() - kMinHeaderLen);
  }
  constexpr std::span<B> header() const noexcept { return buf_.first(header_len()); }
  // The datagram's payload, without link-layer padding.
  constexpr std::span<B> payload() const noexcept {
    return buf_.subspan(header_len(), total_len() - header_len());
  }

  // RFC 791 section 3.1, "Header Checksum": the header, options included,
  // sums to 0xffff when the stored checksum is right.
  constexpr bool verify_checksum() const noexcept { return Checksum().add(header()).sum() == 0xffff; }

  constexpr void set_version_and_header_len(std::uint8_t version, std::size_t header_len) noexcept
    requires(!std::is_const_v<B>) {
    store_u8(buf_, 0, static_cast<std::uint8_t>((version << 4) | ((header_len / 4) & 0x0f)));
  }
  constexpr void set_tos(std::uint8_t v) noexcept requires(!std::is_const_v<B>) { store_u8(buf_, 1, v); }
  constexpr void set_total_len(std::uint16_t v) noexcept requires(!std::is_const_v<B>) { store_be16(buf_, 2, v); }
  constexpr void set_ident(std::uint16_t v) noexcept requires(!std::is_const_v<B>) { store_be16(buf_, 4, v); }
  // Flags (DF, MF) and the offset in bytes (a multiple of 8).
  constexpr void set_frag(bool dont_frag, bool more_frags, std::size_t offset) noexcept
    requires(!std::is_const_v<B>) {
    const auto v = static_cast<std::uint16_t>((dont_frag ? 0x4000 : 0) | (more_frags ? 0x2000 : 0) |
                                              ((offset / 8) & 0x1fff));
    store_be16(buf_, 6, v);
  }
  constexpr void set_ttl(std::uint8_t v) noexcept requires(!std::is_const_v<B>) { store_u8(buf_, 8, v); }
  constexpr void set_protocol(std::uint8_t v) noexcept requires(!std::is_const_v<B>) { store_u8(buf_, 9, v); }
  constexpr void set_checksum(std::uint16_t v) noexcept requires(!std::is_const_v<B>) { store_be16(buf_, 10, v); }
  void set_src(const Ipv4Addr& a) noexcept requires(!std::is_const_v<B>) { put(12, a); }
  void set_dst(const Ipv4Addr& a) noexcept requires(!std::is_const_v<B>) { put(16, a); }
  constexpr void fill_checksum() noexcept requires(!std::is_const_v<B>) {
    set_checksum(0);
    set_checksum(wire::checksum(header()));
  }

 private:
  constexpr explicit Ipv4Packet(std::span<B> buf) noexcept : buf_(buf) {}
  void put(std::size_t off, const Ipv4Addr& a) noexcept {
    for (std::size_t i = 0; i < Ipv4Addr::kLen; ++i) buf_[off + i] = a.bytes()[i];
  }
  std::span<B> buf_;
};

struct Ipv4Repr {
  static constexpr std::size_t kHeaderLen = 20;  // we never emit options
  static constexpr std::uint8_t kDefaultTtl = 64;

  Ipv4Addr src;
  Ipv4Addr dst;
  std::uint8_t protocol = 0;
  std::uint16_t payload_len = 0;
  std::uint8_t ttl = kDefaultTtl;
  std::uint16_t ident = 0;
  bool dont_frag = false;
  std::uint8_t tos = 0;

  // What a netpoll receiver refuses of a checked header: fragments
  // (kFragment), then options (kHasOptions); it has no reassembly and no
  // option processing.
  [[nodiscard]] static Result<Ipv4Repr> parse(const Ipv4Packet<const std::byte>& p) noexcept {
    if (p.is_fragment()) return fail(Errc::kFragment);
    if (p.has_options()) return fail(Errc::kHasOptions);
    return Ipv4Repr{p.src(), p.dst(), p.protocol(), static_cast<std::uint16_t>(p.payload().size()),
                    p.ttl(), p.ident(), p.dont_frag(), p.tos()};
  }

  constexpr std::size_t buffer_len() const noexcept { return kHeaderLen + payload_len; }

  // Writes a 20-byte header with its checksum at the start of `buf`; returns
  // the payload area (payload_len bytes). Precondition: buf holds
  // buffer_len() bytes and buffer_len() <= 65535. Context: any.
  std::span<std::byte> emit(std::span<std::byte> buf) const noexcept {
    NP_ASSERT(buf.size() >= buffer_len() && buffer_len() <= 0xffff);
    auto p = Ipv4Packet<std::byte>::new_unchecked(buf.first(kHeaderLen));
    p.set_version_and_header_len(4, kHeaderLen);
    p.set_tos(tos);
    p.set_total_len(static_cast<std::uint16_t>(buffer_len()));
    p.set_ident(ident);
    p.set_frag(dont_frag, false, 0);
    p.set_ttl(ttl);
    p.set_protocol(protocol);
    p.set_src(src);
    p.set_dst(dst);
    // The checksum from the fields, not from the bytes just stored: a
    // wide load of narrow stores still in flight waits for them.
    const auto total = static_cast<std::uint16_t>(buffer_len());
    p.set_checksum(Checksum()
                       .add_u16(static_cast<std::uint16_t>(0x4500 | tos))
                       .add_u16(total)
                       .add_u16(ident)
                       .add_u16(dont_frag ? 0x4000 : 0)
                       .add_u16(static_cast<std::uint16_t>(ttl << 8 | protocol))
                       .add(src)
                       .add(dst)
                       .finish());
    return buf.subspan(kHeaderLen, payload_len);
  }

  friend bool operator==(const Ipv4Repr&, const Ipv4Repr&) = default;
};

}  // namespace np::wire
