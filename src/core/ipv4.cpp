// IPv4 and UDP in netpoll's own path: the receive checks of the seed's
// __netpoll_rx (made by wire, in its order; refusals it lacked: fragments,
// options), and the headers of a datagram netpoll sends.
#include "frame_layout.h"
#include "netpoll/core/netpoll.h"
#include "rx_verdict.h"

namespace np::core {

using namespace np::wire;
using detail::Layer;
using detail::verdict;

void SharedDevice::handle_ipv4(std::span<const std::byte> frame) noexcept {
  const auto eth = *EthernetFrame<const std::byte>::check(frame);
  const auto pkt = Ipv4Packet<const std::byte>::check(eth.payload());
  if (!pkt) return not_consumed(frame, verdict(Layer::kIpv4, pkt.error()));
  const auto ip = Ipv4Repr::parse(*pkt);
  if (!ip) return not_consumed(frame, verdict(Layer::kIpv4, ip.error()));
  if (ip->protocol != ip_proto::kUdp) return not_consumed(frame, RxDrop::kNotUdp);
  const auto udp_bytes = pkt->payload();
  const auto up = UdpPacket<const std::byte>::check(udp_bytes);
  if (!up) return not_consumed(frame, verdict(Layer::kUdp, up.error()));
  // __netpoll_rx: the UDP length is the IP payload's, exactly.
  if (up->length() != udp_bytes.size()) return not_consumed(frame, RxDrop::kUdpLength);
  const auto udp = UdpRepr::parse(*up, ip->src, ip->dst);
  if (!udp) return not_consumed(frame, verdict(Layer::kUdp, udp.error()));

  const RxInfo info{eth.src(), ip->src, udp->src_port, ip->dst, udp->dst_port};
  if (!deliver(info, udp->payload)) not_consumed(frame, RxDrop::kNoClient);
}

std::size_t SharedDevice::emit_udp_ipv4(std::span<std::byte> frame, const IpPort& src, const IpPort& dst,
                                        const MacAddr& dst_mac, std::size_t payload_len) noexcept {
  // One function per layer, innermost data first (in place: the payload is
  // already where it belongs).
  const UdpRepr udp{src.port, dst.port, frame.subspan(detail::kIpv4PayloadOffset, payload_len)};
  auto ip_area = EthernetRepr{mac_, dst_mac, ethertype::kIpv4}.emit(frame);
  auto udp_area = Ipv4Repr{src.ip, dst.ip, ip_proto::kUdp, static_cast<std::uint16_t>(udp.buffer_len()),
                           Ipv4Repr::kDefaultTtl, next_ip_ident(), false, 0}
                      .emit(ip_area);
  udp.emit(udp_area, src.ip, dst.ip);
  return detail::kIpv4PayloadOffset + payload_len;
}

}  // namespace np::core
