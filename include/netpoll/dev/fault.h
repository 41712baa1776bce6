// Fault injector: a seeded decorator that drops, duplicates, reorders,
// corrupts and delays frames, in both directions.
//
// Deterministic for a given seed and sequence of calls: the same test sees
// the same faults on every run. Time comes from a clock function passed in
// (steady clock by default), so delay tests need not sleep. Frames held for
// reordering or delay live in a fixed set of slots; when those are full the
// frame passes undelayed and `overflow` is counted. Every fault is counted.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "netpoll/base/counter.h"
#include "netpoll/base/result.h"
#include "netpoll/dev/device.h"

namespace np::dev {

struct FaultOptions {
  double drop = 0;      // probability a frame is lost
  double duplicate = 0; // probability a frame is delivered twice
  double reorder = 0;   // probability a frame is held back behind the next one
  double corrupt = 0;   // probability one byte of the frame is flipped
  std::chrono::milliseconds delay{0};  // every frame held this long
  std::uint64_t seed = 1;
  std::size_t hold_slots = 64;  // frames held at once (reorder + delay), per direction
  // Monotonic time source; nullptr means std::chrono::steady_clock.
  std::chrono::nanoseconds (*now)() = nullptr;

  bool any() const noexcept {
    return drop > 0 || duplicate > 0 || reorder > 0 || corrupt > 0 || delay.count() > 0;
  }
};

struct FaultStats {
  Counter dropped;
  Counter duplicated;
  Counter reordered;
  Counter corrupted;
  Counter delayed;
  Counter overflow;  // hold slots full: frame passed on without reorder/delay
};

class FaultDevice : public Device {
 public:
  virtual const FaultStats& fault_stats() const noexcept = 0;
};

// Validates probabilities (each in [0,1]). Context: setup.
SetupResult<std::unique_ptr<FaultDevice>> wrap_faults(std::unique_ptr<Device> inner, const FaultOptions& options);

}  // namespace np::dev
