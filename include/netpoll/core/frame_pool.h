// FramePool: the fixed set of full-size transmit frames, made at setup.
//
// The seed keeps 32 preallocated skbs so that the last message gets out
// under memory pressure; ours never allocates at all after setup. Frames are
// named by index; the free list is a lock-free queue, so taking and
// returning a frame is safe from any thread and from a signal handler.
// Beside them sit two scratch frames that are never in the free list: the
// send path builds a datagram there while it holds the device's transmit
// side (SharedDevice), so a device that is free costs no trip through the
// queue, and the frame it builds in stays in the cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "netpoll/base/bounded_queue.h"
#include "netpoll/base/guarded.h"
#include "netpoll/core/stats.h"

namespace np::core {

class FramePool {
 public:
  using Index = std::uint16_t;

  // Context: setup.
  FramePool(std::size_t frames, std::size_t frame_size);

  // Context: any.
  // An index that is no frame of ours (the queue's memory was overwritten)
  // is dropped, and the pool is a frame short. Context: any.
  std::optional<Index> take() noexcept {
    for (std::size_t tries = 0; tries < frames_; ++tries) {
      auto i = free_.try_pop();
      if (!i) return i;
      if (*i < frames_) {
        low_water_.note_low(free_.size());
        return i;
      }
    }
    return std::nullopt;
  }
  void give_back(Index i) noexcept {
    if (i < frames_) free_.try_push(i);
  }

  std::span<std::byte> frame(Index i) noexcept { return {storage_ + std::size_t{i} * frame_size_, frame_size_}; }

  // Which of the scratch frames: the one for whoever holds the transmit
  // lock the normal way, and the emergency owner's own, so that a thread
  // whose lock was stolen (SharedDevice::enter_emergency) cannot write into
  // the frame the crash path is building.
  enum class Scratch : std::uint8_t { kLocked = 0, kEmergency = 1 };
  std::span<std::byte> scratch(Scratch s) noexcept {
    return {storage_ + (frames_ + static_cast<std::size_t>(s)) * frame_size_, frame_size_};
  }

  std::size_t frames() const noexcept { return frames_; }
  std::size_t frame_size() const noexcept { return frame_size_; }
  std::size_t available() const noexcept { return free_.size(); }
  // The fewest frames that were ever free at once.
  std::uint64_t low_water() const noexcept { return low_water_.value(); }

 private:
  static constexpr std::size_t kScratchFrames = 2;
  std::size_t frames_;
  std::size_t frame_size_;
  GuardedRegion region_;  // the frames, away from the malloc heap
  std::byte* storage_ = nullptr;
  BoundedQueue<Index> free_;
  Watermark low_water_;
};

}  // namespace np::core
