// Protocol dispatch in the spirit of FreeBSD's netisr.
//
// A handler is registered per protocol with a policy: kDirect runs it inside
// the receive call (the frame is still in the device's ring), kQueued copies
// the frame into the protocol's bounded queue and runs the handler when the
// poll loop drains the queues after the receive. A full queue drops the
// frame and counts it. Counters follow netisr: dispatched, direct, queued,
// deferred (handled from the queue), dropped.
//
// Threads: dispatch() and drain() are called by the one thread that holds
// the device's receive lock; set_policy() may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "netpoll/base/inplace_function.h"
#include "netpoll/base/result.h"
#include "netpoll/core/stats.h"

namespace np::core {

// kNdisc: ICMPv6 (neighbour discovery), handed over by the IPv6 handler.
enum class Proto : std::uint8_t { kArp, kIpv4, kIpv6, kNdisc, kCount };
enum class Policy : std::uint8_t { kDirect, kQueued };

const char* to_string(Proto p) noexcept;

class Dispatcher {
 public:
  using Handler = InplaceFunction<void(std::span<const std::byte> frame)>;
  static constexpr std::size_t kProtos = static_cast<std::size_t>(Proto::kCount);

  // `queue_slots` frames of up to `slot_size` bytes per protocol, allocated
  // here. Context: setup.
  Dispatcher(std::size_t queue_slots, std::size_t slot_size);

  // Context: setup.
  void register_handler(Proto p, Handler h, Policy policy);

  // Context: any.
  void set_policy(Proto p, Policy policy) noexcept;
  Policy policy(Proto p) const noexcept;

  // Runs or queues the protocol's handler. A frame it drops, why: no
  // handler (kNotFound), longer than a queue slot (kTooBig), queue full
  // (kNoBuffer). Context: any.
  [[nodiscard]] Result<void> dispatch(Proto p, std::span<const std::byte> frame) noexcept;

  // Runs the handlers of up to `budget` queued frames, oldest first per
  // protocol. Returns how many ran. Context: any.
  std::size_t drain(std::size_t budget) noexcept;

  std::size_t queued(Proto p) const noexcept;
  const DispatchCounters& counters(Proto p) const noexcept { return entry(p).counters; }

 private:
  struct Entry {
    Handler handler;
    std::atomic<Policy> policy{Policy::kDirect};
    std::unique_ptr<std::byte[]> slots;
    std::unique_ptr<std::uint16_t[]> lengths;
    std::size_t head = 0;  // next to drain
    std::size_t count = 0;
    DispatchCounters counters;
  };
  Entry& entry(Proto p) noexcept { return protos_[static_cast<std::size_t>(p)]; }
  const Entry& entry(Proto p) const noexcept { return protos_[static_cast<std::size_t>(p)]; }

  std::size_t slots_;
  std::size_t slot_size_;
  std::array<Entry, kProtos> protos_;
};

}  // namespace np::core
