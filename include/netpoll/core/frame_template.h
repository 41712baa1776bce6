// FrameTemplate: the headers of every datagram a client sends to its
// target, written once.
//
// The Ethernet, IP and UDP headers of a client's datagrams differ only in
// their lengths, the IPv4 identification and the two checksums. A template
// holds the rest as bytes, and the checksums' sums over the fixed fields, so
// that a datagram costs a copy of the headers, four stores and the sum of
// its payload. What fill() writes is byte for byte what the core's one
// frame builder (emit_udp_frame) writes for the same datagram; the core's
// tests compare the two.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "netpoll/base/addr.h"
#include "netpoll/wire/checksum.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/ipv6.h"
#include "netpoll/wire/udp.h"

namespace np::core {

class FrameTemplate {
 public:
  // The longest header: Ethernet, IPv6, UDP.
  static constexpr std::size_t kMaxHeaderLen = wire::EthernetFrame<std::byte>::kHeaderLen +
                                               wire::Ipv6Repr::kHeaderLen + wire::UdpPacket<std::byte>::kHeaderLen;

  // Writes the headers from `src_ip`:`src_port` (MAC `src_mac`) to
  // `dst_ip`:`dst_port` (next hop `dst_mac`). Precondition: one family.
  // Context: any.
  void prepare(const MacAddr& src_mac, const MacAddr& dst_mac, const IpAddr& src_ip, std::uint16_t src_port,
               const IpAddr& dst_ip, std::uint16_t dst_port) noexcept;

  // Writes the datagram of `payload` into `frame`; returns the frame's
  // length. Precondition: prepare() was called; the frame holds
  // header_len() + payload.size() bytes, at most 65535 - 48 of payload.
  // Context: any.
  std::size_t fill(std::span<std::byte> frame, std::uint16_t ipv4_ident,
                   std::span<const std::byte> payload) const noexcept {
    std::memcpy(frame.data(), bytes_.data(), len_);
    if (!payload.empty()) std::memcpy(frame.data() + len_, payload.data(), payload.size());  // empty: data() may be null
    const auto udp_len = static_cast<std::uint16_t>(kUdpLen + payload.size());
    if (v4_) {
      auto ip = wire::Ipv4Packet<std::byte>::new_unchecked(frame.subspan(kEthLen, wire::Ipv4Repr::kHeaderLen));
      const auto total = static_cast<std::uint16_t>(wire::Ipv4Repr::kHeaderLen + udp_len);
      ip.set_total_len(total);
      ip.set_ident(ipv4_ident);
      ip.set_checksum(wire::Checksum(ip_sum_).add_u16(total).add_u16(ipv4_ident).finish());
    } else {
      wire::Ipv6Packet<std::byte>::new_unchecked(frame.subspan(kEthLen, wire::Ipv6Repr::kHeaderLen))
          .set_payload_len(udp_len);
    }
    auto udp = wire::UdpPacket<std::byte>::new_unchecked(frame.subspan(len_ - kUdpLen, udp_len));
    udp.set_length(udp_len);
    // The length is in the pseudo-header and in the UDP header.
    udp.set_checksum_of(wire::Checksum(udp_sum_).add_u16(udp_len).add_u16(udp_len).add(payload));
    return len_ + payload.size();
  }

  std::size_t header_len() const noexcept { return len_; }

 private:
  static constexpr std::size_t kEthLen = wire::EthernetFrame<std::byte>::kHeaderLen;
  static constexpr std::size_t kUdpLen = wire::UdpPacket<std::byte>::kHeaderLen;

  std::array<std::byte, kMaxHeaderLen> bytes_{};
  std::size_t len_ = 0;
  bool v4_ = true;
  wire::Checksum ip_sum_;   // the IPv4 header without total length and identification
  wire::Checksum udp_sum_;  // pseudo-header and UDP header without the lengths
};

}  // namespace np::core
