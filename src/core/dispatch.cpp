#include "netpoll/core/dispatch.h"

#include <cstring>

#include "netpoll/base/assert.h"

namespace np::core {

const char* to_string(Proto p) noexcept {
  switch (p) {
    case Proto::kArp: return "arp";
    case Proto::kIpv4: return "ipv4";
    case Proto::kIpv6: return "ipv6";
    case Proto::kNdisc: return "ndisc";
    case Proto::kCount: break;
  }
  return "unknown";
}

Dispatcher::Dispatcher(std::size_t queue_slots, std::size_t slot_size) : slots_(queue_slots), slot_size_(slot_size) {
  NP_ASSERT(slot_size <= UINT16_MAX);
  for (auto& e : protos_) {
    e.slots = std::make_unique<std::byte[]>(slots_ * slot_size_);
    e.lengths = std::make_unique<std::uint16_t[]>(slots_);
  }
}

void Dispatcher::register_handler(Proto p, Handler h, Policy policy) {
  entry(p).handler = std::move(h);
  entry(p).policy.store(policy, std::memory_order_relaxed);
}

void Dispatcher::set_policy(Proto p, Policy policy) noexcept { entry(p).policy.store(policy, std::memory_order_relaxed); }

Policy Dispatcher::policy(Proto p) const noexcept { return entry(p).policy.load(std::memory_order_relaxed); }

Result<void> Dispatcher::dispatch(Proto p, std::span<const std::byte> frame) noexcept {
  Entry& e = entry(p);
  if (!e.handler) return fail(Errc::kNotFound);
  if (e.policy.load(std::memory_order_relaxed) == Policy::kDirect) {
    e.counters.direct.add();
    e.counters.dispatched.add();
    e.handler(frame);
    return {};
  }
  if (e.count == slots_ || frame.size() > slot_size_) {
    e.counters.dropped.add();
    return fail(e.count == slots_ ? Errc::kNoBuffer : Errc::kTooBig);
  }
  const std::size_t slot = (e.head + e.count) % slots_;
  std::memcpy(e.slots.get() + slot * slot_size_, frame.data(), frame.size());
  e.lengths[slot] = static_cast<std::uint16_t>(frame.size());
  ++e.count;
  e.counters.queued.add();
  return {};
}

std::size_t Dispatcher::drain(std::size_t budget) noexcept {
  std::size_t done = 0;
  for (auto& e : protos_) {
    while (e.count > 0 && done < budget) {
      const std::size_t slot = e.head;
      e.handler(std::span<const std::byte>(e.slots.get() + slot * slot_size_, e.lengths[slot]));
      e.head = (e.head + 1) % slots_;
      --e.count;
      e.counters.deferred.add();
      e.counters.dispatched.add();
      ++done;
    }
  }
  return done;
}

std::size_t Dispatcher::queued(Proto p) const noexcept { return entry(p).count; }

}  // namespace np::core
