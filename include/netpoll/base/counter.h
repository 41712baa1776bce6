// Counter: a statistics counter with one writer and any number of readers.
//
// Data-path statistics are bumped by the one thread that owns that side of a
// device or client, and read by whoever prints them. A relaxed load+store is
// enough for that and costs no more than a plain increment (no locked
// read-modify-write on the hot path). Counters bumped from several threads
// use SharedCounter instead.
#pragma once

#include <atomic>
#include <cstdint>

namespace np {

class Counter {
 public:
  // Context: any (one writer thread).
  void add(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }
  void reset() noexcept { v_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class SharedCounter {
 public:
  // Context: any (any thread).
  void add(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }
  void reset() noexcept { v_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// A count with two kinds of writer: the holder of a lock (one thread at a
// time: a plain increment, as Counter) and any other thread (a locked
// add, as SharedCounter). The send path counts a datagram the first way
// when it transmits under the device's transmit lock, the second when it
// queues it. Context: any.
class SplitCounter {
 public:
  void add(std::uint64_t n = 1) noexcept { shared_.add(n); }
  // Only while holding the lock that makes this thread the one writer.
  void add_held(std::uint64_t n = 1) noexcept { held_.add(n); }
  std::uint64_t value() const noexcept { return held_.value() + shared_.value(); }
  void reset() noexcept {
    held_.reset();
    shared_.reset();
  }

 private:
  Counter held_;
  SharedCounter shared_;
};

}  // namespace np
