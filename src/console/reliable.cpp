#include "netpoll/console/reliable.h"

#include <algorithm>
#include <cstring>

#include "netpoll/base/assert.h"

namespace np::console {

// ---------------------------------------------------------------------------
// RetransmitWindow

RetransmitWindow::RetransmitWindow(std::size_t records, std::size_t max_text)
    : capacity_(records),
      max_text_(max_text),
      region_(GuardedRegion::must_map(sizeof(Entry) * records + 64 + records * max_text, "a retransmit window")) {
  NP_ASSERT(records > 0 && max_text > 0);
  entries_ = region_.make_array<Entry>(records);
  text_ = static_cast<char*>(region_.take(records * max_text, 64));
  NP_ASSERT(entries_ != nullptr && text_ != nullptr);
}

bool RetransmitWindow::push(std::uint64_t seq, std::uint32_t msgid, std::chrono::steady_clock::time_point resend_after,
                            const RecordMeta& meta, std::string_view text) noexcept {
  bool evicted = false;
  if (count_ == capacity_) {
    head_ = (head_ + 1) % capacity_;
    --count_;
    evicted = true;
  }
  const std::size_t s = slot(count_);
  Entry& e = entries_[s];
  e.seq = seq;
  e.msgid = msgid;
  e.resend_after = resend_after;
  e.meta = meta;
  const std::size_t n = std::min(text.size(), max_text_);
  std::memcpy(text_ + s * max_text_, text.data(), n);
  e.meta.text_len = static_cast<std::uint32_t>(n);
  ++count_;
  return evicted;
}

std::size_t RetransmitWindow::release_through(std::uint64_t ack) noexcept {
  // The first record numbered above `ack` (binary search: numbers increase).
  std::size_t gone = 0;
  std::size_t hi = count_;
  while (gone < hi) {
    const std::size_t mid = gone + (hi - gone) / 2;
    if (at(mid).seq <= ack) {
      gone = mid + 1;
    } else {
      hi = mid;
    }
  }
  head_ = (head_ + gone) % capacity_;
  count_ -= gone;
  return gone;
}

std::size_t RetransmitWindow::lower_bound(std::uint64_t seq) const noexcept {
  std::size_t lo = 0;
  std::size_t hi = count_;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (at(mid).seq < seq) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

std::optional<std::size_t> RetransmitWindow::find(std::uint64_t seq) const noexcept {
  const std::size_t i = lower_bound(seq);
  if (i < count_ && at(i).seq == seq) return i;
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// ResponseMailbox

bool ResponseMailbox::offer(std::string_view response, std::uint64_t ack) noexcept {
  const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
  if (tail - head_.load(std::memory_order_acquire) == kSlots || response.size() > kMaxResponse) {
    overflow_ack_.store(ack, std::memory_order_relaxed);
    overflow_set_.store(true, std::memory_order_release);
    overflows_.add();
    return false;
  }
  Slot& s = slots_[tail % kSlots];
  std::memcpy(s.bytes, response.data(), response.size());
  s.len = response.size();
  tail_.store(tail + 1, std::memory_order_release);
  return true;
}

std::optional<std::string_view> ResponseMailbox::front() const noexcept {
  const std::uint64_t head = head_.load(std::memory_order_relaxed);
  if (head == tail_.load(std::memory_order_acquire)) return std::nullopt;
  const Slot& s = slots_[head % kSlots];
  return std::string_view(s.bytes, s.len);
}

void ResponseMailbox::pop() noexcept {
  const std::uint64_t head = head_.load(std::memory_order_relaxed);
  if (head != tail_.load(std::memory_order_acquire)) head_.store(head + 1, std::memory_order_release);
}

std::optional<std::uint64_t> ResponseMailbox::take_overflow_ack() noexcept {
  if (!overflow_set_.exchange(false, std::memory_order_acq_rel)) return std::nullopt;
  return overflow_ack_.load(std::memory_order_relaxed);
}

}  // namespace np::console
