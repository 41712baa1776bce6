// FramePool: the fixed set of full-size transmit frames, made at setup.
//
// The seed keeps 32 preallocated skbs so that the last message gets out
// under memory pressure; ours never allocates at all after setup. Frames are
// named by index; the free list is a lock-free queue, so taking and
// returning a frame is safe from any thread and from a signal handler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "netpoll/base/bounded_queue.h"
#include "netpoll/core/stats.h"

namespace np::core {

class FramePool {
 public:
  using Index = std::uint16_t;

  // Context: setup.
  FramePool(std::size_t frames, std::size_t frame_size);

  // Context: any.
  std::optional<Index> take() noexcept {
    auto i = free_.try_pop();
    if (i) low_water_.note_low(free_.size());
    return i;
  }
  void give_back(Index i) noexcept { free_.try_push(i); }

  std::span<std::byte> frame(Index i) noexcept { return {storage_.get() + std::size_t{i} * frame_size_, frame_size_}; }

  std::size_t frames() const noexcept { return frames_; }
  std::size_t frame_size() const noexcept { return frame_size_; }
  std::size_t available() const noexcept { return free_.size(); }
  // The fewest frames that were ever free at once.
  std::uint64_t low_water() const noexcept { return low_water_.value(); }

 private:
  std::size_t frames_;
  std::size_t frame_size_;
  std::unique_ptr<std::byte[]> storage_;
  BoundedQueue<Index> free_;
  Watermark low_water_;
};

}  // namespace np::core
