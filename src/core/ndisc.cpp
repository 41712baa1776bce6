// Neighbour discovery (RFC 4861) in netpoll's own path, IPv6's ARP:
// answering solicitations for a client's address, learning from
// advertisements (the resolver in neighbour.cpp waits for them) and from
// the solicitations answered. No duplicate address detection of our own
// addresses (RFC 4862): a client's address is used at once, as Linux's
// netpoll uses the address it is given.
#include "frame_layout.h"
#include "netpoll/base/clock.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/wire/ndisc.h"
#include "rx_verdict.h"

namespace np::core {

using namespace np::wire;
using detail::Layer;
using detail::verdict;

void SharedDevice::handle_ndisc(std::span<const std::byte> frame) noexcept {
  // The Ethernet and IPv6 headers passed handle_ipv6's checks.
  const auto eth = *EthernetFrame<const std::byte>::check(frame);
  const auto pkt = *Ipv6Packet<const std::byte>::check(eth.payload());
  const auto ip = *Ipv6Repr::parse(pkt);
  const auto icmp = Icmpv6Packet<const std::byte>::check(pkt.payload());
  if (!icmp) return not_consumed(frame, verdict(Layer::kNdisc, icmp.error()));
  const auto nd = NdiscRepr::parse(*icmp, ip);
  if (!nd) return not_consumed(frame, verdict(Layer::kNdisc, nd.error()));

  if (nd->kind == NdiscRepr::Kind::kAdvert) {
    stats_.nd_adverts_seen.add();
    // Section 7.2.5: the target's link-layer address.
    if (nd->link_addr) neighbours_.learn(nd->target, *nd->link_addr, monotonic_ns());
    if (owner_of(ip.dst) == nullptr && eth.dst() != mac_) return not_consumed(frame, RxDrop::kNdIgnored);
    return;
  }
  // A solicitation, for a client's address only (never loopback; a
  // multicast target did not parse).
  if (nd->target.is_loopback() || owner_of(nd->target) == nullptr) return not_consumed(frame, RxDrop::kNdIgnored);
  // Section 7.2.3: the solicitor tells us its mapping; keep it.
  const bool from_unspecified = ip.src.is_unspecified();
  if (!from_unspecified && nd->link_addr) neighbours_.learn(ip.src, *nd->link_addr, monotonic_ns());
  // Section 7.2.4: answered to the solicitor, solicited and override (no
  // router, no anycast address), with our link-layer address; one from ::
  // (another node's duplicate address detection) to all nodes, unsolicited.
  // A solicitation without the option (a unicast reachability probe) is
  // answered at the MAC it came from.
  const Ipv6Addr to = from_unspecified ? Ipv6Addr::all_nodes() : ip.src;
  const MacAddr to_mac = from_unspecified ? ipv6_multicast_mac(to) : nd->link_addr.value_or(eth.src());
  const NdiscRepr advert{NdiscRepr::Kind::kAdvert, nd->target, mac_, false, !from_unspecified, true};
  // One answer is enough even if several clients share the address.
  if (send_ndisc(advert, nd->target, to, to_mac)) stats_.nd_adverts_sent.add();
}

Result<void> SharedDevice::send_ndisc(const NdiscRepr& nd, const Ipv6Addr& src, const Ipv6Addr& dst,
                                      const MacAddr& dst_mac) noexcept {
  auto idx = take_own_frame();
  if (!idx) return fail(Errc::kNoBuffer);
  auto frame = pool_.frame(*idx);
  const auto len = static_cast<std::uint16_t>(nd.buffer_len());
  auto ip_area = EthernetRepr{mac_, dst_mac, ethertype::kIpv6}.emit(frame);
  // Section 7.1: hop limit 255, so that a receiver knows no router forwarded it.
  auto icmp_area = Ipv6Repr{src, dst, ip_proto::kIcmpv6, len, Ipv6Repr::kNdiscHopLimit}.emit(ip_area);
  nd.emit(icmp_area, src, dst);
  return send_frame(*idx, detail::kEthLen + Ipv6Repr::kHeaderLen + len, -1);
}

}  // namespace np::core
