// IPv4 in netpoll's own path: the receive checks of the seed's __netpoll_rx
// (made by wire, in its order; refusals it lacked: fragments, options), then
// UDP's (udp.cpp). The headers of a datagram netpoll sends are written by
// frame_layout.h's emit_udp_frame.
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
  receive_udp(frame, eth.src(), ip->src, ip->dst, pkt->payload());
}

}  // namespace np::core
