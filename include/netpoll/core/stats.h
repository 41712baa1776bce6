// Statistics of the core: drops by reason, traffic, queues, dispatch.
//
// Drops are verdicts, not errors (STYLE.md): each has a reason, a counter,
// and a snake_case name used in JSON and text output. Nothing on the data
// path logs; everything is counted.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "netpoll/base/counter.h"
#include "netpoll/base/json.h"

#include <atomic>

namespace np::core {

// Why the receive path did not deliver a frame, in the order the checks are
// made (the seed's __netpoll_rx, plus the refusals a netpoll target needs).
enum class RxDrop : std::uint8_t {
  kRunt,          // shorter than an Ethernet header
  kOtherHost,     // unicast to another MAC (PACKET_OTHERHOST)
  kNotIp,         // neither IPv4, IPv6 nor ARP
  kIpTruncated,   // shorter than the IPv4 header it announces
  kIpHeader,      // version is not 4 or IHL < 5
  kIpChecksum,    // header checksum does not verify
  kIpLength,      // total length beyond the frame or shorter than the header
  kIpFragment,    // a fragment: netpoll does not reassemble
  kIpOptions,     // header options: netpoll does not process them
  kIpv6Truncated,   // shorter than the 40-byte IPv6 header
  kIpv6Header,      // an IPv6 frame whose version is not 6
  kIpv6Length,      // payload length beyond the frame
  kIpv6ExtHeader,   // an extension header: netpoll processes none
  kNotUdp,        // another IP protocol (IPv6: next header neither UDP nor ICMPv6)
  kUdpTruncated,  // no room for a UDP header
  kUdpLength,     // UDP length differs from the IP payload length
  kUdpNoChecksum, // UDP over IPv6 without a checksum (zero): RFC 8200 forbids it
  kUdpChecksum,   // UDP checksum present and wrong
  kNoClient,      // valid UDP that no client's local IP, remote IP and port match
  kArpMalformed,  // ARP that is truncated or not Ethernet/IPv4
  kArpIgnored,    // ARP request for no client's address, or for loopback/multicast
  kNdMalformed,   // a neighbour solicitation/advertisement failing RFC 4861's checks
  kNdIgnored,     // a solicitation for no client's address, an advertisement for nobody here
  kIcmpv6Other,   // ICMPv6 other than neighbour discovery: netpoll answers none
  kQueueFull,     // a dispatch queue was full
  kTooLong,       // longer than a dispatch queue's slot
  kNoHandler,     // no handler for its protocol
  kCount
};

// Why the send path could not transmit a frame.
enum class TxDrop : std::uint8_t {
  kTooBig,       // payload does not fit the device MTU
  kNoBuffer,     // the frame pool stayed empty after 10 reclaim attempts
  kQueueFull,    // the deferred queue was full
  kDeviceError,  // the device refused the frame (TxStatus::kError)
  kShutdown,     // still queued when the device was released
  kCount
};

const char* to_string(RxDrop r) noexcept;
const char* to_string(TxDrop r) noexcept;

template <class Reason, class C = Counter>
class ReasonCounters {
 public:
  static constexpr std::size_t kSize = static_cast<std::size_t>(Reason::kCount);
  // Context: any.
  void add(Reason r, std::uint64_t n = 1) noexcept { c_[static_cast<std::size_t>(r)].add(n); }
  std::uint64_t value(Reason r) const noexcept { return c_[static_cast<std::size_t>(r)].value(); }
  std::uint64_t total() const noexcept {
    std::uint64_t t = 0;
    for (const auto& c : c_) t += c.value();
    return t;
  }
  // Calls f(reason, count) for every reason, in enum order, zeros included.
  // Context: any (if f is).
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < kSize; ++i) f(static_cast<Reason>(i), c_[i].value());
  }

 private:
  std::array<C, kSize> c_{};
};

// A gauge that remembers its extreme: queue depth high-water, pool
// low-water. Context: any.
class Watermark {
 public:
  void set_initial(std::uint64_t v) noexcept { mark_.store(v, std::memory_order_relaxed); }
  void note_high(std::uint64_t v) noexcept {
    std::uint64_t cur = mark_.load(std::memory_order_relaxed);
    while (v > cur && !mark_.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
  }
  void note_low(std::uint64_t v) noexcept {
    std::uint64_t cur = mark_.load(std::memory_order_relaxed);
    while (v < cur && !mark_.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
  }
  std::uint64_t value() const noexcept { return mark_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> mark_{0};
};

// Per protocol, as FreeBSD's netisr counts: dispatched = handled (directly
// or from the queue), direct = handled in the receive call, queued = put on
// the protocol's queue, deferred = handled later from that queue, dropped =
// queue full.
struct DispatchCounters {
  Counter dispatched;
  Counter direct;
  Counter queued;
  Counter deferred;
  Counter dropped;
};

// The JSON writer is base's (base/json.h); this name is kept for callers
// that still say core::JsonWriter.
using np::JsonWriter;

}  // namespace np::core
