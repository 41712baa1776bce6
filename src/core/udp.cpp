// UDP in netpoll's own path, over either IP: the seed's checks (the UDP
// length is the IP payload's, exactly; the checksum over the family's
// pseudo-header, which IPv6 makes mandatory), then delivery to the clients
// the datagram is for.
#include "netpoll/core/netpoll.h"
#include "netpoll/wire/udp.h"
#include "rx_verdict.h"

namespace np::core {

using namespace np::wire;
using detail::Layer;
using detail::verdict;

void SharedDevice::receive_udp(std::span<const std::byte> frame, const MacAddr& src_mac, const IpAddr& src,
                               const IpAddr& dst, std::span<const std::byte> udp_bytes) noexcept {
  const auto up = UdpPacket<const std::byte>::check(udp_bytes);
  if (!up) return not_consumed(frame, verdict(Layer::kUdp, up.error()));
  // __netpoll_rx: the UDP length is the IP payload's, exactly.
  if (up->length() != udp_bytes.size()) return not_consumed(frame, RxDrop::kUdpLength);
  const auto udp = src.is_v4() ? UdpRepr::parse(*up, src.v4(), dst.v4()) : UdpRepr::parse(*up, src.v6(), dst.v6());
  if (!udp) return not_consumed(frame, verdict(Layer::kUdp, udp.error()));

  const RxInfo info{src_mac, src, udp->src_port, dst, udp->dst_port};
  if (!deliver(info, udp->payload)) not_consumed(frame, RxDrop::kNoClient);
}

}  // namespace np::core
