// The receive path of a shared device: NAPI-style poll, the Ethernet
// demultiplexer, delivery of valid datagrams to clients, and frames netpoll
// does not consume (passed through or counted). The protocols' own checks
// are in ipv4.cpp, ipv6.cpp, udp.cpp, arp.cpp and ndisc.cpp; the reasons in
// rx_verdict.h.
#include "netpoll/core/netpoll.h"
#include "netpoll/wire/ethernet.h"
#include "rx_verdict.h"

namespace np::core {

using detail::Layer;
using detail::verdict;

std::size_t SharedDevice::poll(std::size_t budget) noexcept {
  if (budget == 0) budget = cfg_.poll_budget;
  std::size_t n = 0;
  if (emergency_elsewhere()) return 0;  // hands off the device: a fatal-signal handler owns it
  if (rx_lock_.try_lock()) {
    poll_owner_.store(current_tid(), std::memory_order_relaxed);
    n = dev_->receive(budget, [this](std::span<const std::byte> f) { on_frame(f); });
    poll_owner_.store(0, std::memory_order_relaxed);
    // Queued protocol work (ARP while trapped) runs after the poll, where a
    // reply may be transmitted directly.
    dispatcher_.drain(SIZE_MAX);
    rx_lock_.unlock();
  }
  service_tx();
  return n;
}

void SharedDevice::not_consumed(std::span<const std::byte> frame, RxDrop reason) noexcept {
  if (passthrough_ && !trapped()) {
    stats_.rx_passed.add();
    passthrough_(frame);
    return;
  }
  stats_.rx_drops.add(reason);
}

void SharedDevice::on_frame(std::span<const std::byte> frame) noexcept {
  stats_.rx_frames.add();
  auto eth = wire::EthernetFrame<const std::byte>::check(frame);
  if (!eth) return not_consumed(frame, verdict(Layer::kEthernet, eth.error()));
  const MacAddr dst = eth->dst();
  if (!dst.is_multicast() && dst != mac_) return not_consumed(frame, RxDrop::kOtherHost);
  Proto proto;
  switch (eth->ethertype()) {
    case wire::ethertype::kArp: proto = Proto::kArp; break;
    case wire::ethertype::kIpv4: proto = Proto::kIpv4; break;
    case wire::ethertype::kIpv6: proto = Proto::kIpv6; break;
    default: return not_consumed(frame, RxDrop::kNotIp);
  }
  if (auto r = dispatcher_.dispatch(proto, frame); !r) stats_.rx_drops.add(verdict(Layer::kDispatch, r.error()));
}

bool SharedDevice::deliver(const RxInfo& info, std::span<const std::byte> payload) noexcept {
  int hits = 0;
  for (auto& slot : clients_) {
    Netpoll* c = slot.client.load(std::memory_order_acquire);
    if (c == nullptr || !c->cfg_.rx_hook) continue;
    const TargetOptions& t = c->cfg_.target;
    if (!t.local_ip.is_unspecified() && t.local_ip != info.dst_ip) continue;
    if (!t.remote_ip.is_unspecified() && t.remote_ip != info.src_ip) continue;
    if (t.local_port != 0 && t.local_port != info.dst_port) continue;
    c->stats_.rx_datagrams.add();
    c->stats_.rx_bytes.add(payload.size());
    c->cfg_.rx_hook(*c, info, payload);
    ++hits;
  }
  if (hits > 0) stats_.rx_delivered.add();
  return hits > 0;
}

const Netpoll* SharedDevice::owner_of(const IpAddr& ip) const noexcept {
  for (const auto& slot : clients_) {
    const Netpoll* c = slot.client.load(std::memory_order_acquire);
    if (c != nullptr && c->cfg_.target.local_ip == ip) return c;
  }
  return nullptr;
}

}  // namespace np::core
