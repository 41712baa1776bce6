// AllocGuard: proves that a stretch of code allocates nothing on the heap.
//
// The test binary replaces global operator new/delete and, in builds without
// AddressSanitizer (which owns malloc there), malloc and friends too, so
// that allocations by the C library are seen as well. Counting is per thread:
// a guard sees only allocations made by the thread that created it.
//
//   np::testing::AllocGuard guard;
//   device->transmit(frame);
//   EXPECT_EQ(guard.stop(), 0u);   // stop before gtest itself allocates
#pragma once

#include <cstdint>

namespace np::testing {

class AllocGuard {
 public:
  AllocGuard() noexcept;
  ~AllocGuard();
  AllocGuard(const AllocGuard&) = delete;
  AllocGuard& operator=(const AllocGuard&) = delete;

  // Stops counting and returns the number of allocations seen.
  std::uint64_t stop() noexcept;

 private:
  bool active_ = true;
  std::uint64_t start_ = 0;
};

// True when malloc itself is counted (not only operator new).
bool alloc_guard_sees_malloc() noexcept;

}  // namespace np::testing
