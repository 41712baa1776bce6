// The ARP cache of a shared device: IPv4 address to MAC, learned from ARP
// replies and from the requests netpoll answers (RFC 826: a requester tells
// its own mapping).
//
// A fixed table, no allocation: a full table forgets its least recently
// learned entry. One writer (the thread that holds the device's receive
// lock); readers on any thread, without a lock (a seqlock per entry), so a
// sender on the crash path can look up a MAC while a poll is learning one.
// Time is passed in (monotonic nanoseconds), so the cache never reads a
// clock.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "netpoll/base/addr.h"

namespace np::core {

class ArpCache {
 public:
  static constexpr std::size_t kSize = 16;

  // Keeps `mac` for `ip` as learned at `now_ns`. An unspecified address or a
  // multicast/broadcast MAC is not kept. Context: the receive lock's holder.
  void learn(const Ipv4Addr& ip, const MacAddr& mac, std::int64_t now_ns) noexcept;

  // The MAC kept for `ip`, if it was learned at or after `since_ns`.
  // Context: any.
  std::optional<MacAddr> lookup(const Ipv4Addr& ip, std::int64_t since_ns = INT64_MIN) const noexcept;

 private:
  struct Entry {
    std::atomic<std::uint32_t> seq{0};  // odd while being written
    std::atomic<std::uint32_t> ip{0};   // network order; 0 = empty
    std::atomic<std::uint64_t> mac{0};
    std::atomic<std::int64_t> learned_ns{0};
  };
  std::array<Entry, kSize> entries_;
};

}  // namespace np::core
