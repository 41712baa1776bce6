// FrameTemplate::prepare: the headers from the core's one frame builder,
// then the checksums' fixed parts summed from them.
#include "netpoll/core/frame_template.h"

#include "frame_layout.h"

namespace np::core {

void FrameTemplate::prepare(const MacAddr& src_mac, const MacAddr& dst_mac, const IpAddr& src_ip,
                            std::uint16_t src_port, const IpAddr& dst_ip, std::uint16_t dst_port) noexcept {
  static_assert(kMaxHeaderLen == detail::kIpv6PayloadOffset);
  v4_ = src_ip.is_v4();
  // A datagram without payload; what varies per datagram is then zeroed,
  // so that the sums below are of the fixed fields only.
  len_ = detail::emit_udp_frame(bytes_, src_mac, dst_mac, {src_ip, src_port}, {dst_ip, dst_port}, 0, {});
  const std::span<std::byte> bytes(bytes_.data(), len_);
  auto udp = wire::UdpPacket<std::byte>::new_unchecked(bytes.last(kUdpLen));
  udp.set_length(0);
  udp.set_checksum(0);
  if (v4_) {
    const auto header = bytes.subspan(kEthLen, wire::Ipv4Repr::kHeaderLen);
    auto ip = wire::Ipv4Packet<std::byte>::new_unchecked(header);
    ip.set_total_len(0);
    ip.set_checksum(0);
    ip_sum_ = wire::Checksum().add(header);
    udp_sum_ = wire::pseudo_header(src_ip.v4(), dst_ip.v4(), wire::ip_proto::kUdp, 0).add(bytes.last(kUdpLen));
  } else {
    wire::Ipv6Packet<std::byte>::new_unchecked(bytes.subspan(kEthLen, wire::Ipv6Repr::kHeaderLen)).set_payload_len(0);
    udp_sum_ = wire::pseudo_header(src_ip.v6(), dst_ip.v6(), wire::ip_proto::kUdp, 0).add(bytes.last(kUdpLen));
  }
}

}  // namespace np::core
