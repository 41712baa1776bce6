#include "netpoll/console/record_ring.h"

#include "netpoll/base/assert.h"

namespace np::console {

RecordRing::RecordRing(std::size_t slots, std::size_t max_text)
    : slots_(slots),
      max_text_(max_text),
      region_(GuardedRegion::must_map(sizeof(Slot) * slots + 64 + slots * max_text, "the record ring")) {
  NP_ASSERT(slots > 0 && max_text > 0);
  slots_mem_ = region_.make_array<Slot>(slots);
  text_mem_ = static_cast<char*>(region_.take(slots * max_text, 64));
  NP_ASSERT(slots_mem_ != nullptr && text_mem_ != nullptr);
  for (std::size_t i = 0; i < slots; ++i) slots_mem_[i].turn.store(2 * i, std::memory_order_relaxed);  // free for ticket i
}

bool RecordRing::claim(Claim& out) noexcept {
  std::uint64_t t = next_.load(std::memory_order_relaxed);
  // Every try but the first is a race lost to another producer; turns
  // that never make sense (overwritten slots) end in a counted drop.
  for (std::size_t tries = 0; tries < 64 + slots_; ++tries) {
    Slot& s = slot(t);
    const std::uint64_t turn = s.turn.load(std::memory_order_acquire);
    if (turn == 2 * t) {
      if (next_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) {
        s.meta.drops_before = pending_drops_.exchange(0, std::memory_order_acq_rel);
        out = Claim{t, &s.meta, std::span<char>(text_of(t), max_text_)};
        return true;
      }
      continue;  // another producer took t; t now holds the new value
    }
    if (turn < 2 * t) {
      // The slot still holds ticket t - slots(): the consumer is a whole
      // ring behind. Drop this record, and say so in the next one.
      pending_drops_.fetch_add(1, std::memory_order_acq_rel);
      overflow_.add();
      return false;
    }
    t = next_.load(std::memory_order_relaxed);  // we were behind: look again
  }
  pending_drops_.fetch_add(1, std::memory_order_acq_rel);
  overflow_.add();
  return false;
}

void RecordRing::publish(const Claim& c) noexcept { slot(c.ticket).turn.store(2 * c.ticket + 1, std::memory_order_release); }

void RecordRing::release(std::uint64_t t) noexcept {
  slot(t).turn.store(2 * (t + slots_), std::memory_order_release);
}

}  // namespace np::console
