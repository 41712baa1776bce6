// OwnerLock: a try-lock that knows which thread holds it.
//
// netpoll never blocks on a lock on its data path: it tries, and when the
// lock is taken it retries for a bounded time or defers the work (the seed's
// __netif_tx_trylock). Knowing the owner lets a caller tell "another thread
// is transmitting" (wait a little) from "this very thread was interrupted
// while transmitting" (waiting would deadlock), which the crash path needs.
#pragma once

#include <sys/types.h>

#include <atomic>

namespace np {

namespace detail {
extern thread_local pid_t t_tid;  // 0 until current_tid() first asks
pid_t fetch_tid() noexcept;
}  // namespace detail

// The calling thread's kernel thread id, cached. Context: any.
inline pid_t current_tid() noexcept {
  const pid_t t = detail::t_tid;
  return t != 0 ? t : detail::fetch_tid();
}

class OwnerLock {
 public:
  // Context: any.
  bool try_lock() noexcept {
    pid_t expected = 0;
    return owner_.compare_exchange_strong(expected, current_tid(), std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  void unlock() noexcept { owner_.store(0, std::memory_order_release); }

  // 0 when free. Context: any.
  pid_t owner() const noexcept { return owner_.load(std::memory_order_relaxed); }
  bool held_by_me() const noexcept { return owner() == current_tid(); }

  // Takes the lock whoever holds it. Only for a caller that knows the owner
  // will never touch the protected state again (a fatal-signal handler of a
  // dying process). Returns the previous owner. Context: any.
  pid_t steal() noexcept { return owner_.exchange(current_tid(), std::memory_order_acquire); }

 private:
  std::atomic<pid_t> owner_{0};
};

// Scoped try-lock: `if (OwnerLockGuard g(lock); g) { ... }`.
class OwnerLockGuard {
 public:
  explicit OwnerLockGuard(OwnerLock& l) noexcept : lock_(l), held_(l.try_lock()) {}
  ~OwnerLockGuard() {
    if (held_) lock_.unlock();
  }
  OwnerLockGuard(const OwnerLockGuard&) = delete;
  OwnerLockGuard& operator=(const OwnerLockGuard&) = delete;
  explicit operator bool() const noexcept { return held_; }

 private:
  OwnerLock& lock_;
  bool held_;
};

}  // namespace np
