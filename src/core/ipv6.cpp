// IPv6 in netpoll's own path: the receive checks Linux's netpoll makes of
// an IPv6 frame (version, payload length against the frame, UDP as the
// next header), made by wire; ICMPv6 goes to neighbour discovery
// (ndisc.cpp) through the dispatcher, UDP to udp.cpp. An extension header
// is refused with a reason of its own: netpoll processes none.
#include "frame_layout.h"
#include "netpoll/core/netpoll.h"
#include "rx_verdict.h"

namespace np::core {

using namespace np::wire;
using detail::Layer;
using detail::verdict;

void SharedDevice::handle_ipv6(std::span<const std::byte> frame) noexcept {
  const auto eth = *EthernetFrame<const std::byte>::check(frame);
  const auto pkt = Ipv6Packet<const std::byte>::check(eth.payload());
  if (!pkt) return not_consumed(frame, verdict(Layer::kIpv6, pkt.error()));
  const auto ip = Ipv6Repr::parse(*pkt);
  if (!ip) return not_consumed(frame, verdict(Layer::kIpv6, ip.error()));
  if (ip->next_header == ip_proto::kIcmpv6) {
    // Its own protocol for the dispatcher: trapped, solicitations wait
    // until after the poll as ARP requests do.
    if (auto r = dispatcher_.dispatch(Proto::kNdisc, frame); !r)
      stats_.rx_drops.add(verdict(Layer::kDispatch, r.error()));
    return;
  }
  if (ip->next_header != ip_proto::kUdp) return not_consumed(frame, RxDrop::kNotUdp);
  receive_udp(frame, eth.src(), ip->src, ip->dst, pkt->payload());
}

}  // namespace np::core
