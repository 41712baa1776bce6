// Private to core: where the headers of the frames netpoll sends sit, the
// one function that writes them, and the small helpers the core's files
// share.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "netpoll/base/addr.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/ipv6.h"
#include "netpoll/wire/udp.h"

// Private to this layer: hidden, so that libnetpoll.so, which exports
// namespace np:: (src/library/exports.map), does not export it.
#pragma GCC visibility push(hidden)
namespace np::core::detail {

inline constexpr std::size_t kEthLen = wire::EthernetFrame<std::byte>::kHeaderLen;
inline constexpr std::size_t kUdpLen = wire::UdpPacket<std::byte>::kHeaderLen;
inline constexpr std::size_t kIpv4UdpOffset = kEthLen + wire::Ipv4Repr::kHeaderLen;
inline constexpr std::size_t kIpv4PayloadOffset = kIpv4UdpOffset + kUdpLen;
inline constexpr std::size_t kIpv6UdpOffset = kEthLen + wire::Ipv6Repr::kHeaderLen;
inline constexpr std::size_t kIpv6PayloadOffset = kIpv6UdpOffset + kUdpLen;

// Where a datagram's payload sits in a frame of the family.
constexpr std::size_t udp_payload_offset(IpFamily f) noexcept {
  return f == IpFamily::kV4 ? kIpv4PayloadOffset : kIpv6PayloadOffset;
}

// One end of a UDP datagram.
struct IpPort {
  IpAddr ip;
  std::uint16_t port = 0;
};

// Writes a datagram of `payload` into `frame`: Ethernet, IP and UDP
// headers, one function per layer, and the payload at
// udp_payload_offset(src.ip's family) (not copied if it is already there);
// returns the frame's length. IPv4 as Linux's netpoll sends it (TTL 64,
// the given identification), IPv6 likewise (hop limit 32, flow label 0).
// The send path and the crash route build every datagram here.
// Precondition: src and dst are of one family; the frame holds the
// datagram. Context: any.
inline std::size_t emit_udp_frame(std::span<std::byte> frame, const MacAddr& src_mac, const MacAddr& dst_mac,
                                  const IpPort& src, const IpPort& dst, std::uint16_t ipv4_ident,
                                  std::span<const std::byte> payload) noexcept {
  const std::size_t at = udp_payload_offset(src.ip.family());
  const wire::UdpRepr udp{src.port, dst.port, payload};
  const auto len = static_cast<std::uint16_t>(udp.buffer_len());
  if (src.ip.is_v4()) {
    auto ip_area = wire::EthernetRepr{src_mac, dst_mac, wire::ethertype::kIpv4}.emit(frame);
    auto udp_area = wire::Ipv4Repr{src.ip.v4(), dst.ip.v4(), wire::ip_proto::kUdp, len, wire::Ipv4Repr::kDefaultTtl,
                                   ipv4_ident, false, 0}
                        .emit(ip_area);
    udp.emit(udp_area, src.ip.v4(), dst.ip.v4());
  } else {
    auto ip_area = wire::EthernetRepr{src_mac, dst_mac, wire::ethertype::kIpv6}.emit(frame);
    auto udp_area = wire::Ipv6Repr{src.ip.v6(), dst.ip.v6(), wire::ip_proto::kUdp, len}.emit(ip_area);
    udp.emit(udp_area, src.ip.v6(), dst.ip.v6());
  }
  return at + payload.size();
}

// The headers of a datagram of `payload_len` bytes that is sent in
// segments (dev::Device::transmit_udp_segments): as emit_udp_frame() writes
// them but without the payload, and with the UDP checksum field holding the
// folded sum of the pseudo-header over the whole length, which the
// segmenter completes for each piece. Returns their length.
// Precondition: the whole fits one IP packet. Context: any.
inline std::size_t emit_udp_headers_for_segments(std::span<std::byte> frame, const MacAddr& src_mac,
                                                 const MacAddr& dst_mac, const IpPort& src, const IpPort& dst,
                                                 std::uint16_t ipv4_ident, std::size_t payload_len) noexcept {
  // The headers of a datagram without payload (the frame holds no more),
  // then the lengths of the whole and the pseudo-header's sum.
  const std::size_t at = emit_udp_frame(frame, src_mac, dst_mac, src, dst, ipv4_ident, {});
  const auto len = static_cast<std::uint16_t>(kUdpLen + payload_len);
  const std::span<std::byte> ip_area = frame.subspan(kEthLen, at - kEthLen - kUdpLen);
  wire::Checksum pseudo;
  if (src.ip.is_v4()) {
    auto ip = wire::Ipv4Packet<std::byte>::new_unchecked(ip_area);
    ip.set_total_len(static_cast<std::uint16_t>(ip_area.size() + len));
    ip.fill_checksum();
    pseudo = wire::pseudo_header(src.ip.v4(), dst.ip.v4(), wire::ip_proto::kUdp, len);
  } else {
    wire::Ipv6Packet<std::byte>::new_unchecked(ip_area).set_payload_len(len);
    pseudo = wire::pseudo_header(src.ip.v6(), dst.ip.v6(), wire::ip_proto::kUdp, len);
  }
  auto udp = wire::UdpPacket<std::byte>::new_unchecked(frame.subspan(at - kUdpLen, kUdpLen));
  udp.set_length(len);
  udp.set_checksum(pseudo.sum());
  return at;
}

// A MAC in one atomic word (its six bytes in memory order: only ever
// unpacked by unpack_mac).
inline std::uint64_t pack_mac(const MacAddr& m) noexcept {
  std::uint64_t v = 0;
  std::memcpy(&v, m.bytes().data(), MacAddr::kLen);
  return v;
}

inline MacAddr unpack_mac(std::uint64_t v) noexcept {
  std::array<std::byte, MacAddr::kLen> b;
  std::memcpy(b.data(), &v, MacAddr::kLen);
  return MacAddr(b);
}

}  // namespace np::core::detail
#pragma GCC visibility pop
