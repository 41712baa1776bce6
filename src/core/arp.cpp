// ARP in netpoll's own path: the cache, answering requests for a client's
// address, learning from replies, and resolving a next hop at setup.
#include "frame_layout.h"
#include "netpoll/base/clock.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/wire/arp.h"
#include "rx_verdict.h"

namespace np::core {

using namespace np::wire;
using detail::Layer;
using detail::verdict;

// ---------------------------------------------------------------------------
// ArpCache

// Writer: the polling thread only. Readers: any thread (seqlock).
void ArpCache::learn(const Ipv4Addr& ip, const MacAddr& mac, std::int64_t now_ns) noexcept {
  if (ip.is_unspecified() || !mac.is_unicast()) return;
  const std::uint32_t key = ip.to_network_u32();
  Entry* target = nullptr;
  Entry* oldest = &entries_[0];
  for (auto& e : entries_) {
    const std::uint32_t k = e.ip.load(std::memory_order_relaxed);
    if (k == key) {
      target = &e;
      break;
    }
    if (k == 0 && target == nullptr) target = &e;
    if (e.learned_ns.load(std::memory_order_relaxed) < oldest->learned_ns.load(std::memory_order_relaxed)) oldest = &e;
  }
  if (target == nullptr) target = oldest;
  target->seq.fetch_add(1, std::memory_order_acq_rel);
  target->ip.store(key, std::memory_order_relaxed);
  target->mac.store(detail::pack_mac(mac), std::memory_order_relaxed);
  target->learned_ns.store(now_ns, std::memory_order_relaxed);
  target->seq.fetch_add(1, std::memory_order_release);
}

std::optional<MacAddr> ArpCache::lookup(const Ipv4Addr& ip, std::int64_t since_ns) const noexcept {
  const std::uint32_t key = ip.to_network_u32();
  for (const auto& e : entries_) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      const std::uint32_t s1 = e.seq.load(std::memory_order_acquire);
      if (s1 & 1u) continue;
      const std::uint32_t k = e.ip.load(std::memory_order_relaxed);
      const std::uint64_t m = e.mac.load(std::memory_order_relaxed);
      const std::int64_t at = e.learned_ns.load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (e.seq.load(std::memory_order_relaxed) != s1) continue;
      if (k == key && at >= since_ns) return detail::unpack_mac(m);
      break;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// ARP on a shared device

void SharedDevice::handle_arp(std::span<const std::byte> frame) noexcept {
  const auto eth = *EthernetFrame<const std::byte>::check(frame);
  const auto pkt = ArpPacket<const std::byte>::check(eth.payload());
  if (!pkt) return not_consumed(frame, verdict(Layer::kArp, pkt.error()));
  const auto arp = ArpRepr::parse(*pkt);
  if (!arp) return not_consumed(frame, verdict(Layer::kArp, arp.error()));

  if (arp->op == ArpOp::kReply) {
    stats_.arp_replies_seen.add();
    arp_cache_.learn(arp->source_ip, arp->source_mac, monotonic_ns());  // our resolver waits for these
    if (owner_of(arp->target_ip) == nullptr && eth.dst() != mac_) return not_consumed(frame, RxDrop::kArpIgnored);
    return;
  }
  // A request. Never answer for loopback or multicast addresses.
  if (arp->target_ip.is_loopback() || arp->target_ip.is_multicast()) return not_consumed(frame, RxDrop::kArpIgnored);
  if (owner_of(arp->target_ip) == nullptr) return not_consumed(frame, RxDrop::kArpIgnored);
  // RFC 826: the requester tells us its mapping; keep it.
  arp_cache_.learn(arp->source_ip, arp->source_mac, monotonic_ns());
  // One reply is enough even if several clients share the address.
  if (send_arp(static_cast<int>(ArpOp::kReply), arp->target_ip, arp->source_mac, arp->source_ip, arp->source_mac))
    stats_.arp_replies_sent.add();
}

Result<void> SharedDevice::send_arp(int op, const Ipv4Addr& sender_ip, const MacAddr& target_mac,
                                    const Ipv4Addr& target_ip, const MacAddr& dst_mac) noexcept {
  auto idx = take_frame();
  if (!idx) {
    stats_.tx_drops.add(TxDrop::kNoBuffer);
    return fail(Errc::kNoBuffer);
  }
  auto frame = pool_.frame(*idx);
  auto arp_area = EthernetRepr{mac_, dst_mac, ethertype::kArp}.emit(frame);
  ArpRepr{static_cast<ArpOp>(op), mac_, sender_ip, target_mac, target_ip}.emit(arp_area);
  return send_frame(*idx, detail::kEthLen + ArpRepr::kLen, -1);
}

Result<MacAddr> SharedDevice::arp_resolve(const Ipv4Addr& target, const Ipv4Addr& local_ip, const ResolveConfig& cfg) {
  for (int attempt = 0; attempt < cfg.tries; ++attempt) {
    const std::int64_t sent_at = monotonic_ns();
    if (send_arp(static_cast<int>(ArpOp::kRequest), local_ip, MacAddr(), target, MacAddr::broadcast()))
      stats_.arp_requests_sent.add();
    const std::int64_t deadline = sent_at + std::chrono::nanoseconds(cfg.interval).count();
    while (monotonic_ns() < deadline) {
      poll();
      if (auto mac = arp_cache_.lookup(target, sent_at)) return *mac;
      nap(std::chrono::milliseconds(1));
    }
  }
  return fail(Errc::kTimeout);
}

}  // namespace np::core
