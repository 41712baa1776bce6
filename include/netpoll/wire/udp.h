// UDP datagrams over IPv4 (RFC 768) and IPv6 (RFC 8200 section 8.1).
//
// The checksum covers a pseudo-header (source and destination address,
// protocol, UDP length), the UDP header and the data. RFC 768: a transmitted
// checksum that computes to zero is sent as all ones (0xffff), and a received
// checksum of zero means the sender computed none. Over IPv6 the checksum is
// mandatory: a received zero is refused (kNoChecksum), RFC 8200 section 8.1.
//
// Context: any.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "netpoll/base/addr.h"
#include "netpoll/base/assert.h"
#include "netpoll/base/bytes.h"
#include "netpoll/base/result.h"
#include "netpoll/wire/checksum.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/ipv6.h"

namespace np::wire {

// The addresses a UDP pseudo-header is made of: one family per datagram.
template <class A>
concept UdpPseudoAddr = std::is_same_v<A, Ipv4Addr> || std::is_same_v<A, Ipv6Addr>;

template <class B>
class UdpPacket {
  static_assert(std::is_same_v<std::remove_const_t<B>, std::byte>);

 public:
  static constexpr std::size_t kHeaderLen = 8;

  static constexpr UdpPacket new_unchecked(std::span<B> buf) noexcept
    requires(!std::is_const_v<B>) {
    NP_ASSERT(buf.size() >= kHeaderLen);
    return UdpPacket(buf);
  }

  // Checks the length field: at least the header, at most the buffer. (A
  // netpoll receiver further requires it to equal the IP payload length.)
  [[nodiscard]] static constexpr Result<UdpPacket> check(std::span<B> buf) noexcept {
    if (buf.size() < kHeaderLen) return fail(Errc::kTruncated);
    const UdpPacket p(buf);
    if (p.length() < kHeaderLen || p.length() > buf.size()) return fail(Errc::kBadLength);
    return p;
  }

  constexpr std::uint16_t src_port() const noexcept { return load_be16(buf_, 0); }
  constexpr std::uint16_t dst_port() const noexcept { return load_be16(buf_, 2); }
  constexpr std::uint16_t length() const noexcept { return load_be16(buf_, 4); }
  constexpr std::uint16_t checksum() const noexcept { return load_be16(buf_, 6); }
  // The data, `length() - 8` bytes.
  constexpr std::span<B> payload() const noexcept { return buf_.subspan(kHeaderLen, length() - kHeaderLen); }
  // Header and data as covered by the length field.
  constexpr std::span<B> datagram() const noexcept { return buf_.first(length()); }

  // True if the checksum verifies, or over IPv4 is absent (zero). Context: any.
  template <UdpPseudoAddr A>
  constexpr bool verify_checksum(const A& src, const A& dst) const noexcept {
    if (checksum() == 0) return std::is_same_v<A, Ipv4Addr>;
    return pseudo_header(src, dst, ip_proto::kUdp, length()).add(datagram()).sum() == 0xffff;
  }

  constexpr void set_src_port(std::uint16_t v) noexcept requires(!std::is_const_v<B>) { store_be16(buf_, 0, v); }
  constexpr void set_dst_port(std::uint16_t v) noexcept requires(!std::is_const_v<B>) { store_be16(buf_, 2, v); }
  constexpr void set_length(std::uint16_t v) noexcept requires(!std::is_const_v<B>) { store_be16(buf_, 4, v); }
  constexpr void set_checksum(std::uint16_t v) noexcept requires(!std::is_const_v<B>) { store_be16(buf_, 6, v); }
  // Stores the checksum of a finished sum (pseudo-header and datagram, the
  // field counted as zero); a computed 0 is stored as 0xffff (RFC 768: a
  // zero field means none was computed).
  constexpr void set_checksum_of(const Checksum& sum) noexcept requires(!std::is_const_v<B>) {
    const std::uint16_t c = sum.finish();
    set_checksum(c == 0 ? 0xffff : c);
  }

  // Computes and stores the checksum over the pseudo-header and datagram;
  // a computed 0 is stored as 0xffff (RFC 768). Precondition: length() is set
  // and the data is in place.
  template <UdpPseudoAddr A>
  constexpr void fill_checksum(const A& src, const A& dst) noexcept
    requires(!std::is_const_v<B>) {
    set_checksum(0);
    set_checksum_of(pseudo_header(src, dst, ip_proto::kUdp, length()).add(datagram()));
  }

 private:
  constexpr explicit UdpPacket(std::span<B> buf) noexcept : buf_(buf) {}
  std::span<B> buf_;
};

struct UdpRepr {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::span<const std::byte> payload;

  // Verifies the checksum against the addresses it was sent between: over
  // IPv4 if present, over IPv6 always (a zero is kNoChecksum). The payload
  // refers into the packet's buffer.
  template <UdpPseudoAddr A>
  [[nodiscard]] static Result<UdpRepr> parse(const UdpPacket<const std::byte>& p, const A& src,
                                             const A& dst) noexcept {
    if (std::is_same_v<A, Ipv6Addr> && p.checksum() == 0) return fail(Errc::kNoChecksum);
    if (!p.verify_checksum(src, dst)) return fail(Errc::kBadChecksum);
    return UdpRepr{p.src_port(), p.dst_port(), p.payload()};
  }

  constexpr std::size_t buffer_len() const noexcept { return UdpPacket<std::byte>::kHeaderLen + payload.size(); }

  // Writes header and payload at the start of `buf` and the checksum over
  // them. The payload may already be in place (payload.data() == buf + 8):
  // then it is not copied. The checksum reads the payload where `payload`
  // points, not the copy just written (a load from a store still in
  // flight stalls). Precondition: buf holds buffer_len() bytes and
  // buffer_len() <= 65535; the payload does not overlap the header.
  // Context: any.
  template <UdpPseudoAddr A>
  std::span<std::byte> emit(std::span<std::byte> buf, const A& src, const A& dst) const noexcept {
    NP_ASSERT(buf.size() >= buffer_len() && buffer_len() <= 0xffff);
    auto out = buf.first(buffer_len());
    auto p = UdpPacket<std::byte>::new_unchecked(out);
    auto data = out.subspan(UdpPacket<std::byte>::kHeaderLen);
    if (!payload.empty() && payload.data() != data.data())
      std::memmove(data.data(), payload.data(), payload.size());
    const auto len = static_cast<std::uint16_t>(buffer_len());
    p.set_src_port(src_port);
    p.set_dst_port(dst_port);
    p.set_length(len);
    // The header's words from the values (the checksum field as zero).
    p.set_checksum_of(
        pseudo_header(src, dst, ip_proto::kUdp, len).add_u16(src_port).add_u16(dst_port).add_u16(len).add(payload));
    return out;
  }
};

}  // namespace np::wire
