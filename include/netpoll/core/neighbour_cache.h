// The neighbour cache of a shared device: an IPv4 or IPv6 address to its
// MAC, learned from ARP (RFC 826: replies, and the requests netpoll answers,
// whose requester tells its own mapping) and from neighbour discovery
// (RFC 4861: advertisements, and the link-layer option of the
// solicitations netpoll answers).
//
// A fixed table, no allocation: a full table forgets its least recently
// learned entry. One writer (the thread that holds the device's receive
// lock); readers on any thread, without a lock (a seqlock per entry), so a
// sender on the crash path can look up a MAC while a poll is learning one.
// Time is passed in (monotonic nanoseconds), so the cache never reads a
// clock. No reachability state (RFC 4861's NUD): an entry is as good as
// when it was learned, and setup resolves afresh when asked to.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "netpoll/base/addr.h"

namespace np::core {

class NeighbourCache {
 public:
  static constexpr std::size_t kSize = 16;

  // Keeps `mac` for `ip` as learned at `now_ns`. An unspecified address or a
  // multicast/broadcast MAC is not kept. Context: the receive lock's holder.
  void learn(const IpAddr& ip, const MacAddr& mac, std::int64_t now_ns) noexcept;

  // The MAC kept for `ip`, if it was learned at or after `since_ns`.
  // Context: any.
  std::optional<MacAddr> lookup(const IpAddr& ip, std::int64_t since_ns = INT64_MIN) const noexcept;

 private:
  // An address as three words: the family (0 = empty) and its 16 bytes.
  struct Key {
    std::uint64_t family = 0, hi = 0, lo = 0;
    static Key of(const IpAddr& ip) noexcept;
    bool operator==(const Key&) const = default;
  };
  struct Entry {
    std::atomic<std::uint32_t> seq{0};  // odd while being written
    std::atomic<std::uint64_t> family{0};
    std::atomic<std::uint64_t> hi{0};
    std::atomic<std::uint64_t> lo{0};
    std::atomic<std::uint64_t> mac{0};
    std::atomic<std::int64_t> learned_ns{0};
    Key key() const noexcept {
      return {family.load(std::memory_order_relaxed), hi.load(std::memory_order_relaxed),
              lo.load(std::memory_order_relaxed)};
    }
  };
  std::array<Entry, kSize> entries_;
};

}  // namespace np::core
