// ARP in netpoll's own path: answering requests for a client's address and
// learning from replies (the cache and resolution, for both families, are
// in neighbour.cpp).
#include "frame_layout.h"
#include "netpoll/base/clock.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/wire/arp.h"
#include "rx_verdict.h"

namespace np::core {

using namespace np::wire;
using detail::Layer;
using detail::verdict;

void SharedDevice::handle_arp(std::span<const std::byte> frame) noexcept {
  const auto eth = *EthernetFrame<const std::byte>::check(frame);
  const auto pkt = ArpPacket<const std::byte>::check(eth.payload());
  if (!pkt) return not_consumed(frame, verdict(Layer::kArp, pkt.error()));
  const auto arp = ArpRepr::parse(*pkt);
  if (!arp) return not_consumed(frame, verdict(Layer::kArp, arp.error()));

  if (arp->op == ArpOp::kReply) {
    stats_.arp_replies_seen.add();
    neighbours_.learn(arp->source_ip, arp->source_mac, monotonic_ns());  // our resolver waits for these
    if (owner_of(arp->target_ip) == nullptr && eth.dst() != mac_) return not_consumed(frame, RxDrop::kArpIgnored);
    return;
  }
  // A request. Never answer for loopback or multicast addresses.
  if (arp->target_ip.is_loopback() || arp->target_ip.is_multicast()) return not_consumed(frame, RxDrop::kArpIgnored);
  if (owner_of(arp->target_ip) == nullptr) return not_consumed(frame, RxDrop::kArpIgnored);
  // RFC 826: the requester tells us its mapping; keep it.
  neighbours_.learn(arp->source_ip, arp->source_mac, monotonic_ns());
  // One reply is enough even if several clients share the address.
  if (send_arp(static_cast<int>(ArpOp::kReply), arp->target_ip, arp->source_mac, arp->source_ip, arp->source_mac))
    stats_.arp_replies_sent.add();
}

Result<void> SharedDevice::send_arp(int op, const Ipv4Addr& sender_ip, const MacAddr& target_mac,
                                    const Ipv4Addr& target_ip, const MacAddr& dst_mac) noexcept {
  auto idx = take_own_frame();
  if (!idx) return fail(Errc::kNoBuffer);
  auto frame = pool_.frame(*idx);
  auto arp_area = EthernetRepr{mac_, dst_mac, ethertype::kArp}.emit(frame);
  ArpRepr{static_cast<ArpOp>(op), mac_, sender_ip, target_mac, target_ip}.emit(arp_area);
  return send_frame(*idx, detail::kEthLen + ArpRepr::kLen, -1);
}

}  // namespace np::core
