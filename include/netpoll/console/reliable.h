// The sender's half of netconsd's reliable mode (ncrx): the memory a
// reliable target keeps, in two fixed-size pieces.
//
// RetransmitWindow: the records a target sent and the receiver has not
// acknowledged yet, oldest first, with everything needed to build their
// datagrams again byte for byte under the same sequence number (meta, text,
// msgid). Fixed at setup: `records` entries of `max_text` text bytes each.
// When it is full the oldest record is pushed out (the caller counts it):
// keeping a record never waits for the receiver. Sequence numbers in it
// increase from oldest to newest (a logger numbers its records in send
// order), so a number is found by binary search.
//
// ResponseMailbox: "ncrx" responses on their way from the device's polling
// thread (the client's rx hook) to the thread that sends (the logger's
// sender thread, or drain()). A single-producer, single-consumer ring of
// kSlots datagrams; the producer side is serialised by the device's receive
// lock (one poll at a time), the consumer is the logger's one sending
// thread. A response that finds it full is not queued, but its ack-seq is
// kept (the newest one wins) and the overflow counted: the receiver repeats
// its list of missing records in its next response.
//
// Neither allocates after construction. Context: any, except the
// constructors (setup).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "netpoll/base/counter.h"
#include "netpoll/base/guarded.h"
#include "netpoll/console/record_ring.h"
#include "netpoll/wire/netconsole.h"

namespace np::console {

class RetransmitWindow {
 public:
  struct Entry {
    std::uint64_t seq = 0;
    std::uint32_t msgid = 0;      // the sysdata msgid it was sent with (if the target sends one)
    std::chrono::steady_clock::time_point resend_after{};  // asked for again before this, it is not resent
    RecordMeta meta;              // meta.text_len bytes of text() belong to it
  };

  // Context: setup.
  RetransmitWindow(std::size_t records, std::size_t max_text);

  // Keeps a record as the newest; `text` beyond max_text is cut. When the
  // window is full the oldest record is forgotten first: returns true then.
  // Context: any.
  bool push(std::uint64_t seq, std::uint32_t msgid, std::chrono::steady_clock::time_point resend_after,
            const RecordMeta& meta, std::string_view text) noexcept;

  // Forgets every record numbered `ack` or lower; returns how many.
  // Context: any.
  std::size_t release_through(std::uint64_t ack) noexcept;

  // Position (0 = oldest) of the first record numbered `seq` or higher;
  // size() if none. Context: any.
  std::size_t lower_bound(std::uint64_t seq) const noexcept;
  // Position of the record numbered `seq`, or nothing. Context: any.
  std::optional<std::size_t> find(std::uint64_t seq) const noexcept;

  Entry& at(std::size_t i) noexcept { return entries_[slot(i)]; }
  const Entry& at(std::size_t i) const noexcept { return entries_[slot(i)]; }
  std::string_view text(std::size_t i) const noexcept {
    const std::size_t len = entries_[slot(i)].meta.text_len;
    return {text_ + slot(i) * max_text_, len <= max_text_ ? len : max_text_};
  }

  // The crash path reads the window of a program that may have written
  // over it: a count beyond the capacity is taken as empty. Context: any.
  std::size_t size() const noexcept { return count_ <= capacity_ ? count_ : 0; }
  bool empty() const noexcept { return count_ == 0; }
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t max_text() const noexcept { return max_text_; }

 private:
  std::size_t slot(std::size_t i) const noexcept { return (head_ + i) % capacity_; }

  std::size_t capacity_;
  std::size_t max_text_;
  GuardedRegion region_;  // entries and text, away from the malloc heap
  Entry* entries_ = nullptr;
  char* text_ = nullptr;
  std::size_t head_ = 0;   // the oldest record's slot
  std::size_t count_ = 0;
};

class ResponseMailbox {
 public:
  static constexpr std::size_t kSlots = 16;
  // A response is at most one datagram of wire::netconsole::kMaxDatagram.
  static constexpr std::size_t kMaxResponse = wire::netconsole::kMaxDatagram;

  ResponseMailbox() = default;
  ResponseMailbox(const ResponseMailbox&) = delete;
  ResponseMailbox& operator=(const ResponseMailbox&) = delete;

  // Producer: queues a response whose ack-seq the caller parsed (`ack`).
  // False when the mailbox is full: then only `ack` is kept (replacing an
  // ack kept before) and the overflow is counted. `response` must be at most
  // kMaxResponse bytes. Context: any (one producer at a time).
  bool offer(std::string_view response, std::uint64_t ack) noexcept;

  // Consumer: the oldest queued response, valid until pop(). Context: any
  // (the one consumer).
  std::optional<std::string_view> front() const noexcept;
  void pop() noexcept;
  // Consumer: the ack kept from responses that found the mailbox full
  // (newer than anything queued before them), once. Context: any.
  std::optional<std::uint64_t> take_overflow_ack() noexcept;

  // Anything for the consumer? Context: any.
  bool pending() const noexcept {
    return head_.load(std::memory_order_acquire) != tail_.load(std::memory_order_acquire) ||
           overflow_set_.load(std::memory_order_acquire);
  }
  std::uint64_t overflows() const noexcept { return overflows_.value(); }

 private:
  struct Slot {
    std::size_t len = 0;
    char bytes[kMaxResponse];
  };
  Slot slots_[kSlots];
  alignas(64) std::atomic<std::uint64_t> head_{0};  // next to take (consumer)
  alignas(64) std::atomic<std::uint64_t> tail_{0};  // next to fill (producer)
  std::atomic<std::uint64_t> overflow_ack_{0};
  std::atomic<bool> overflow_set_{false};
  SharedCounter overflows_;
};

}  // namespace np::console
