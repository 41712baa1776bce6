// BoundedQueue: a fixed-capacity multi-producer queue of small values,
// lock-free and allocation-free after construction.
//
// The slot-sequence design (each slot carries a sequence number telling
// producers and consumers whose turn it is) makes push and pop wait-free in
// the absence of contention and lock-free under it, so both are safe from a
// signal handler: a thread interrupted mid-push never blocks another thread
// forever, it only leaves its slot unpublished (later pushes still succeed;
// pops stop at the unpublished slot, which is the ordering we want).
//
// Consumers may be several (try_pop), or one that looks before it takes
// (front + pop_front), as the deferred transmit queue does to keep order.
//
// The slots live in a guarded mapping of their own (base/guarded.h), not
// on the malloc heap, and no loop trusts them: a retry loop gives up after
// a fixed number of tries (far more than contention ever causes), so slots
// a dying program overwrote read as "full" or "empty", never as a hang.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "netpoll/base/assert.h"
#include "netpoll/base/guarded.h"

namespace np {

template <class T>
class BoundedQueue {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  // `capacity` is rounded up to a power of two. Context: setup.
  explicit BoundedQueue(std::size_t capacity) {
    std::size_t cap = 2;
    while (cap < capacity) cap <<= 1;
    mask_ = cap - 1;
    region_ = GuardedRegion::must_map(sizeof(Slot) * cap, "a queue");
    slots_ = region_.make_array<Slot>(cap);
    NP_ASSERT(slots_ != nullptr);
    for (std::size_t i = 0; i < cap; ++i) slots_[i].seq.store(i, std::memory_order_relaxed);
  }

  std::size_t capacity() const noexcept { return mask_ + 1; }

  // False when full. Context: any.
  bool try_push(const T& value) noexcept {
    std::size_t pos = tail_.load(std::memory_order_relaxed);
    for (std::size_t tries = 0; tries < max_tries(); ++tries) {
      Slot& s = slots_[pos & mask_];
      const std::size_t seq = s.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          s.value = value;
          s.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
    return false;  // slots that make no sense: taken as full
  }

  // Empty optional when nothing is ready. Context: any.
  std::optional<T> try_pop() noexcept {
    std::size_t pos = head_.load(std::memory_order_relaxed);
    for (std::size_t tries = 0; tries < max_tries(); ++tries) {
      Slot& s = slots_[pos & mask_];
      const std::size_t seq = s.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos + 1);
      if (diff == 0) {
        if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          T v = s.value;
          s.seq.store(pos + mask_ + 1, std::memory_order_release);
          return v;
        }
      } else if (diff < 0) {
        return std::nullopt;  // empty (or the next slot not yet published)
      } else {
        pos = head_.load(std::memory_order_relaxed);
      }
    }
    return std::nullopt;  // slots that make no sense: taken as empty
  }

  // Single-consumer peek: the oldest ready value, not removed. Only for a
  // queue with one consumer at a time (the caller's lock says so).
  // Context: any.
  std::optional<T> front() const noexcept {
    const std::size_t pos = head_.load(std::memory_order_relaxed);
    const Slot& s = slots_[pos & mask_];
    if (s.seq.load(std::memory_order_acquire) != pos + 1) return std::nullopt;
    return s.value;
  }

  // Single-consumer: removes what front() returned. Context: any.
  void pop_front() noexcept {
    const std::size_t pos = head_.load(std::memory_order_relaxed);
    Slot& s = slots_[pos & mask_];
    NP_ASSERT(s.seq.load(std::memory_order_acquire) == pos + 1);
    head_.store(pos + 1, std::memory_order_relaxed);
    s.seq.store(pos + mask_ + 1, std::memory_order_release);
  }

  // Approximate (exact when quiescent). Context: any.
  std::size_t size() const noexcept {
    const std::size_t t = tail_.load(std::memory_order_relaxed);
    const std::size_t h = head_.load(std::memory_order_relaxed);
    return t >= h ? t - h : 0;
  }
  bool empty() const noexcept { return size() == 0; }

 private:
  struct Slot {
    std::atomic<std::size_t> seq{0};
    T value{};
  };
  // Every try but the first is a lost race with another thread, or a slot
  // ahead of the index we read; a few per contending thread is plenty.
  std::size_t max_tries() const noexcept { return 64 + capacity(); }

  GuardedRegion region_;
  Slot* slots_ = nullptr;
  std::size_t mask_ = 0;
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
};

}  // namespace np
