// RecordRing: the log records waiting to be sent, in fixed slots.
//
// Producers (log() on any thread, a signal handler included) claim the
// next free slot with a compare-and-swap and write their record straight
// into it: no allocation, no lock, no system call. The single consumer (the
// sender thread, or the crash path after it took over) reads slots in
// ticket order and releases one only after its record has been sent, so a
// record stays until it is sent.
//
// Each slot's `turn` says whose it is: 2T means free for ticket T, 2T+1
// means ticket T is written. When the ring is full a producer drops its
// record without taking a ticket and counts the drop; the next record that
// is written carries that count (drops_before), and the consumer, which
// gives out sequence numbers in ticket order, leaves that many numbers out:
// the receiver sees a gap where records were lost.
//
// The slots and their text live in a guarded mapping (base/guarded.h), not
// on the malloc heap that a dying program overflows; a slot's text is
// found from its index, never from a pointer stored beside it; a length
// read back is cut to the slot's size; and no loop trusts a slot: claim()
// gives up after a fixed number of tries (dropping the record, counted).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "netpoll/base/counter.h"
#include "netpoll/base/guarded.h"

namespace np::console {

struct RecordMeta {
  std::uint64_t timestamp_us = 0;  // CLOCK_BOOTTIME, as the kernel's records
  std::uint32_t drops_before = 0;  // records lost to a full ring just before this one
  std::uint32_t text_len = 0;
  std::uint8_t facility = 1;
  std::uint8_t level = 6;
  // A line longer than a record takes (Logger::log_text) goes in several
  // records: every one of them is a continuation, all but the first follow
  // (the extended header's 'c', then '+'), all but the last have more after
  // them (the basic format leaves their newline out).
  bool continuation = false;
  bool follows = false;
  bool more = false;
  bool truncated = false;          // the text was cut (Logger::log, over max_text)
  bool bypass_rate_limit = false;  // crash records
  std::int32_t cpu = -1;
  std::int32_t tid = 0;
  char taskname[16] = {};
};

class RecordRing {
 public:
  // `slots` records of up to `max_text` bytes each. Context: setup.
  RecordRing(std::size_t slots, std::size_t max_text);
  // Backs every slot with memory again (GuardedRegion::populate), after a
  // fork() made the pages copy-on-write. Context: setup.
  void populate() noexcept { region_.populate(); }

  struct Claim {
    std::uint64_t ticket;
    RecordMeta* meta;
    std::span<char> text;
  };

  // Claims the next slot. False (the drop counted) when the ring is full.
  // Context: any.
  bool claim(Claim& out) noexcept;
  // Makes a claimed record visible to the consumer. Context: any.
  void publish(const Claim& c) noexcept;

  // Consumer side (one consumer at a time). Context: any.
  bool ready(std::uint64_t t) const noexcept {
    return slot(t).turn.load(std::memory_order_acquire) == 2 * t + 1;
  }
  // Claimed by a producer (maybe still being written).
  bool claimed(std::uint64_t t) const noexcept { return t < next_.load(std::memory_order_acquire); }
  const RecordMeta& meta(std::uint64_t t) const noexcept { return slot(t).meta; }
  std::string_view text(std::uint64_t t) const noexcept {
    const std::size_t len = slot(t).meta.text_len;
    return {text_of(t), len <= max_text_ ? len : max_text_};
  }
  // Where ticket t's text starts (for a prefetch: it may be being written).
  const char* text_start(std::uint64_t t) const noexcept { return text_of(t); }
  // Frees ticket t's slot for ticket t + slots(). Also used by the crash
  // path to give up on a claimed record whose producer will never finish
  // (it is the thread that crashed). Context: any.
  void release(std::uint64_t t) noexcept;

  std::uint64_t next_ticket() const noexcept { return next_.load(std::memory_order_acquire); }
  std::size_t slots() const noexcept { return slots_; }
  std::size_t max_text() const noexcept { return max_text_; }
  std::uint64_t overflows() const noexcept { return overflow_.value(); }

 private:
  // `turn` has a cache line of its own: the consumer polls it while a
  // producer writes the record beside it, and sharing a line would make
  // every one of those writes fight the poll.
  struct Slot {
    alignas(64) std::atomic<std::uint64_t> turn{0};
    alignas(64) RecordMeta meta;
  };
  Slot& slot(std::uint64_t t) noexcept { return slots_mem_[t % slots_]; }
  const Slot& slot(std::uint64_t t) const noexcept { return slots_mem_[t % slots_]; }
  char* text_of(std::uint64_t t) const noexcept { return text_mem_ + (t % slots_) * max_text_; }

  std::size_t slots_;
  std::size_t max_text_;
  GuardedRegion region_;
  Slot* slots_mem_ = nullptr;
  char* text_mem_ = nullptr;
  alignas(64) std::atomic<std::uint64_t> next_{0};
  alignas(64) std::atomic<std::uint32_t> pending_drops_{0};
  SharedCounter overflow_;
};

}  // namespace np::console
