#include "netpoll/core/frame_pool.h"

#include "netpoll/base/assert.h"

namespace np::core {

FramePool::FramePool(std::size_t frames, std::size_t frame_size)
    : frames_(frames),
      frame_size_(frame_size),
      region_(GuardedRegion::must_map((frames + kScratchFrames) * frame_size, "the frame pool")),
      storage_(region_.data()),
      free_(frames) {
  NP_ASSERT(frames > 0 && frames <= UINT16_MAX);
  for (std::size_t i = 0; i < frames; ++i) free_.try_push(static_cast<Index>(i));
  low_water_.set_initial(frames);
}

}  // namespace np::core
