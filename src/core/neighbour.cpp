// Neighbours of a shared device, both families: the cache, and resolving a
// next hop's MAC at setup by asking (an ARP request, a neighbour
// solicitation) a few times and waiting for the answer the receive path
// learns.
#include <cstring>

#include "frame_layout.h"
#include "netpoll/base/clock.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/wire/arp.h"
#include "netpoll/wire/ndisc.h"

namespace np::core {

// ---------------------------------------------------------------------------
// NeighbourCache

NeighbourCache::Key NeighbourCache::Key::of(const IpAddr& ip) noexcept {
  std::array<std::byte, Ipv6Addr::kLen> b{};
  const auto bytes = ip.bytes();
  std::memcpy(b.data(), bytes.data(), bytes.size());
  Key k;
  k.family = ip.is_v4() ? 4 : 6;
  std::memcpy(&k.hi, b.data(), 8);
  std::memcpy(&k.lo, b.data() + 8, 8);
  return k;
}

// Writer: the polling thread only. Readers: any thread (seqlock).
void NeighbourCache::learn(const IpAddr& ip, const MacAddr& mac, std::int64_t now_ns) noexcept {
  if (ip.is_unspecified() || !mac.is_unicast()) return;
  const Key key = Key::of(ip);
  Entry* target = nullptr;
  Entry* oldest = &entries_[0];
  for (auto& e : entries_) {
    const Key k = e.key();
    if (k == key) {
      target = &e;
      break;
    }
    if (k.family == 0 && target == nullptr) target = &e;
    if (e.learned_ns.load(std::memory_order_relaxed) < oldest->learned_ns.load(std::memory_order_relaxed)) oldest = &e;
  }
  if (target == nullptr) target = oldest;
  target->seq.fetch_add(1, std::memory_order_acq_rel);
  target->family.store(key.family, std::memory_order_relaxed);
  target->hi.store(key.hi, std::memory_order_relaxed);
  target->lo.store(key.lo, std::memory_order_relaxed);
  target->mac.store(detail::pack_mac(mac), std::memory_order_relaxed);
  target->learned_ns.store(now_ns, std::memory_order_relaxed);
  target->seq.fetch_add(1, std::memory_order_release);
}

std::optional<MacAddr> NeighbourCache::lookup(const IpAddr& ip, std::int64_t since_ns) const noexcept {
  const Key key = Key::of(ip);
  for (const auto& e : entries_) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      const std::uint32_t s1 = e.seq.load(std::memory_order_acquire);
      if (s1 & 1u) continue;
      const Key k = e.key();
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
// Resolution

Result<void> SharedDevice::solicit(const IpAddr& target, const IpAddr& local_ip) noexcept {
  if (target.is_v4()) {
    auto r = send_arp(static_cast<int>(wire::ArpOp::kRequest), local_ip.v4(), MacAddr(), target.v4(),
                      MacAddr::broadcast());
    if (r) stats_.arp_requests_sent.add();
    return r;
  }
  // RFC 4861 section 7.2.2: to the target's solicited-node address, with
  // our link-layer address.
  const Ipv6Addr group = target.v6().solicited_node();
  auto r = send_ndisc(wire::NdiscRepr{wire::NdiscRepr::Kind::kSolicit, target.v6(), mac_}, local_ip.v6(), group,
                      wire::ipv6_multicast_mac(group));
  if (r) stats_.nd_solicits_sent.add();
  return r;
}

Result<MacAddr> SharedDevice::resolve_neighbour(const IpAddr& target, const IpAddr& local_ip,
                                                const ResolveConfig& cfg) {
  for (int attempt = 0; attempt < cfg.tries; ++attempt) {
    const std::int64_t sent_at = monotonic_ns();
    static_cast<void>(solicit(target, local_ip));  // a lost request is a try that gets no answer
    const std::int64_t deadline = sent_at + std::chrono::nanoseconds(cfg.interval).count();
    while (monotonic_ns() < deadline) {
      poll();
      if (auto mac = neighbours_.lookup(target, sent_at)) return *mac;
      nap(std::chrono::milliseconds(1));
    }
  }
  return fail(Errc::kTimeout);
}

}  // namespace np::core
