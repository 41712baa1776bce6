// IPv6 headers (RFC 8200).
//
// Ipv6Packet views the 40-byte fixed header. Ipv6Repr is what netpoll sends
// and accepts: the fixed header followed directly by the upper layer.
// Extension headers (hop-by-hop, routing, fragment, destination options,
// AH, ESP, mobility, HIP, shim6) are recognised (kExtensionHeader) so that
// the receive path can refuse them with a reason of their own, as a
// netpoll target must: it processes no options and reassembles nothing.
// Linux's netpoll refuses them too (its IPv6 receive check takes UDP as
// the next header only).
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
#include "netpoll/wire/ipv4.h"

namespace np::wire {

namespace ip_proto {
inline constexpr std::uint8_t kHopByHop = 0;
inline constexpr std::uint8_t kIpv6Route = 43;
inline constexpr std::uint8_t kIpv6Fragment = 44;
inline constexpr std::uint8_t kEsp = 50;
inline constexpr std::uint8_t kAh = 51;
inline constexpr std::uint8_t kIcmpv6 = 58;
inline constexpr std::uint8_t kIpv6NoNext = 59;
inline constexpr std::uint8_t kIpv6DestOpts = 60;
inline constexpr std::uint8_t kMobility = 135;
inline constexpr std::uint8_t kHip = 139;
inline constexpr std::uint8_t kShim6 = 140;
inline constexpr std::uint8_t kExperiment1 = 253;
inline constexpr std::uint8_t kExperiment2 = 254;
}  // namespace ip_proto

// The next-header values IANA lists as IPv6 extension headers (RFC 7045
// section 2, RFC 8200 section 4). ESP is one too: nothing after it can be
// read without its key.
constexpr bool is_ipv6_extension_header(std::uint8_t next_header) noexcept {
  switch (next_header) {
    case ip_proto::kHopByHop:
    case ip_proto::kIpv6Route:
    case ip_proto::kIpv6Fragment:
    case ip_proto::kEsp:
    case ip_proto::kAh:
    case ip_proto::kIpv6DestOpts:
    case ip_proto::kMobility:
    case ip_proto::kHip:
    case ip_proto::kShim6:
    case ip_proto::kExperiment1:
    case ip_proto::kExperiment2: return true;
    default: return false;
  }
}

// The Ethernet address an IPv6 multicast address maps to: 33:33 and its
// last 32 bits (RFC 2464 section 7).
constexpr MacAddr ipv6_multicast_mac(const Ipv6Addr& group) noexcept {
  return {0x33, 0x33, group[12], group[13], group[14], group[15]};
}

template <class B>
class Ipv6Packet {
  static_assert(std::is_same_v<std::remove_const_t<B>, std::byte>);

 public:
  static constexpr std::size_t kHeaderLen = 40;

  // A view over a buffer being built, before its fields hold valid
  // values: for emitting only. Precondition: buf.size() >= kHeaderLen.
  static constexpr Ipv6Packet new_unchecked(std::span<B> buf) noexcept
    requires(!std::is_const_v<B>) {
    NP_ASSERT(buf.size() >= kHeaderLen);
    return Ipv6Packet(buf);
  }

  // The checks of a receiver, in the order Linux's ipv6_rcv makes them
  // (and netpoll's IPv6 receive check after it): the 40-byte header present
  // (kTruncated), version 6 (kBadVersion), the payload length not beyond the
  // buffer (kBadLength). A longer buffer is fine: Ethernet pads short
  // frames (payload() trims the padding). IPv6 has no header checksum.
  [[nodiscard]] static constexpr Result<Ipv6Packet> check(std::span<B> buf) noexcept {
    if (buf.size() < kHeaderLen) return fail(Errc::kTruncated);
    const Ipv6Packet p(buf);
    if (p.version() != 6) return fail(Errc::kBadVersion);
    if (kHeaderLen + p.payload_len() > buf.size()) return fail(Errc::kBadLength);
    return p;
  }

  constexpr std::uint8_t version() const noexcept { return load_u8(buf_, 0) >> 4; }
  constexpr std::uint8_t traffic_class() const noexcept {
    return static_cast<std::uint8_t>((load_be16(buf_, 0) >> 4) & 0xff);
  }
  constexpr std::uint32_t flow_label() const noexcept { return load_be32(buf_, 0) & 0xfffffu; }
  constexpr std::uint16_t payload_len() const noexcept { return load_be16(buf_, 4); }
  constexpr std::uint8_t next_header() const noexcept { return load_u8(buf_, 6); }
  constexpr std::uint8_t hop_limit() const noexcept { return load_u8(buf_, 7); }
  Ipv6Addr src() const noexcept { return Ipv6Addr::from_bytes(buf_.subspan(8, 16)); }
  Ipv6Addr dst() const noexcept { return Ipv6Addr::from_bytes(buf_.subspan(24, 16)); }

  constexpr bool has_extension_header() const noexcept { return is_ipv6_extension_header(next_header()); }
  constexpr std::span<B> header() const noexcept { return buf_.first(kHeaderLen); }
  // What follows the fixed header, without link-layer padding.
  constexpr std::span<B> payload() const noexcept { return buf_.subspan(kHeaderLen, payload_len()); }

  // Version, traffic class and flow label share the first 32 bits.
  constexpr void set_version_class_flow(std::uint8_t version, std::uint8_t traffic_class,
                                        std::uint32_t flow_label) noexcept
    requires(!std::is_const_v<B>) {
    store_be32(buf_, 0,
               (std::uint32_t{version} << 28) | (std::uint32_t{traffic_class} << 20) | (flow_label & 0xfffffu));
  }
  constexpr void set_payload_len(std::uint16_t v) noexcept requires(!std::is_const_v<B>) { store_be16(buf_, 4, v); }
  constexpr void set_next_header(std::uint8_t v) noexcept requires(!std::is_const_v<B>) { store_u8(buf_, 6, v); }
  constexpr void set_hop_limit(std::uint8_t v) noexcept requires(!std::is_const_v<B>) { store_u8(buf_, 7, v); }
  void set_src(const Ipv6Addr& a) noexcept requires(!std::is_const_v<B>) { put(8, a); }
  void set_dst(const Ipv6Addr& a) noexcept requires(!std::is_const_v<B>) { put(24, a); }

 private:
  constexpr explicit Ipv6Packet(std::span<B> buf) noexcept : buf_(buf) {}
  void put(std::size_t off, const Ipv6Addr& a) noexcept {
    for (std::size_t i = 0; i < Ipv6Addr::kLen; ++i) buf_[off + i] = a.bytes()[i];
  }
  std::span<B> buf_;
};

struct Ipv6Repr {
  static constexpr std::size_t kHeaderLen = 40;
  // Linux's netpoll sends its datagrams with hop limit 32 and flow label 0
  // (netpoll_send_udp); neighbour discovery needs 255 (RFC 4861 section 7.1).
  static constexpr std::uint8_t kNetpollHopLimit = 32;
  static constexpr std::uint8_t kNdiscHopLimit = 255;

  Ipv6Addr src;
  Ipv6Addr dst;
  std::uint8_t next_header = 0;
  std::uint16_t payload_len = 0;
  std::uint8_t hop_limit = kNetpollHopLimit;
  std::uint8_t traffic_class = 0;
  std::uint32_t flow_label = 0;

  // What a netpoll receiver refuses of a checked header: an extension
  // header (kExtensionHeader); it processes none.
  [[nodiscard]] static Result<Ipv6Repr> parse(const Ipv6Packet<const std::byte>& p) noexcept {
    if (p.has_extension_header()) return fail(Errc::kExtensionHeader);
    return Ipv6Repr{p.src(),       p.dst(),           p.next_header(), p.payload_len(),
                    p.hop_limit(), p.traffic_class(), p.flow_label()};
  }

  constexpr std::size_t buffer_len() const noexcept { return kHeaderLen + payload_len; }

  // Writes the 40-byte header at the start of `buf`; returns the payload
  // area (payload_len bytes). Precondition: buf holds buffer_len() bytes.
  // Context: any.
  std::span<std::byte> emit(std::span<std::byte> buf) const noexcept {
    NP_ASSERT(buf.size() >= buffer_len());
    auto p = Ipv6Packet<std::byte>::new_unchecked(buf.first(kHeaderLen));
    p.set_version_class_flow(6, traffic_class, flow_label);
    p.set_payload_len(payload_len);
    p.set_next_header(next_header);
    p.set_hop_limit(hop_limit);
    p.set_src(src);
    p.set_dst(dst);
    return buf.subspan(kHeaderLen, payload_len);
  }

  friend bool operator==(const Ipv6Repr&, const Ipv6Repr&) = default;
};

}  // namespace np::wire
