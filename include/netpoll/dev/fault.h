// Fault injector: a seeded decorator that drops, duplicates, reorders,
// corrupts and delays frames, in both directions.
//
// Deterministic: each direction has its own PRNG stream derived from the
// seed, and draws one decision per frame (the same number of draws whatever
// the settings), so the receive side's faults do not depend on how often
// transmit() was called, and the same seed gives the same faults on every
// run. On transmit, the decision drawn for a frame is kept while the inner
// device answers kBusy: the retried frame meets the same fate, and the fault
// sequence depends on the frames, not on the retries.
//
// What happens to a frame, in this order:
//   drop       the frame is lost; transmit() still answers kOk, as a lossy
//              wire would
//   corrupt    one byte at a random position is XORed with a random
//              non-zero value, in a copy (the caller's buffer is never
//              written): exactly one byte differs
//   reorder    the frame is held back and follows the next frame (or, if
//              none comes, goes out on its own after kReorderMaxHold)
//   delay      the frame is held for `delay` (on receive, from the
//              receive() call that takes it from the inner device); held
//              frames leave in order
//   duplicate  a second copy follows the frame at once
//
// Held frames are released by later transmit()/poll() calls (transmit side)
// or receive() calls (receive side); nothing runs in the background, and
// fd() (the inner device's) does not wake a poller for a delayed frame:
// callers poll with a timeout. Time comes from a clock function passed in
// (steady clock by default), so delay tests need not sleep.
//
// Held frames live in `hold_slots` fixed slots per direction (reorder,
// delay, and a duplicate the inner device had no room for). When they are
// all taken, the frame passes on at once, neither reordered nor delayed
// (nor duplicated), and `overflow` is counted. When the inner device is busy
// as held frames fall due, they stay held and in order: transmit() answers
// kBusy for new frames until they are out. On receive, at most `budget`
// frames are delivered per call; a duplicate beyond the budget is held for
// the next call.
//
// transmit_more() is treated like transmit(): the frame meets its fault at
// once and goes to the inner device's transmit(), so xmit_more batching
// stops at the injector.
//
// Every fault is counted in FaultStats, both directions together.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "netpoll/base/counter.h"
#include "netpoll/base/result.h"
#include "netpoll/dev/decorator.h"

namespace np::dev {

struct FaultOptions {
  double drop = 0;      // probability a frame is lost
  double duplicate = 0; // probability a frame is delivered twice
  double reorder = 0;   // probability a frame is held back behind the next one
  double corrupt = 0;   // probability one byte of the frame is changed
  std::chrono::milliseconds delay{0};  // every frame held this long
  std::uint64_t seed = 1;
  std::size_t hold_slots = 64;  // frames held at once (reorder + delay), per direction
  // Monotonic time source; nullptr means std::chrono::steady_clock.
  std::chrono::nanoseconds (*now)() = nullptr;

  bool any() const noexcept {
    return drop > 0 || duplicate > 0 || reorder > 0 || corrupt > 0 || delay.count() > 0;
  }
};

// How long a frame held for reordering waits for a next frame to follow.
inline constexpr std::chrono::milliseconds kReorderMaxHold{100};

// Bumped by the receive and the transmit thread alike, hence SharedCounter.
struct FaultStats {
  SharedCounter dropped;
  SharedCounter duplicated;
  SharedCounter reordered;
  SharedCounter corrupted;
  SharedCounter delayed;
  SharedCounter overflow;  // hold slots full: frame passed on without reorder/delay/duplicate
};

class FaultDevice : public Decorator {
 public:
  using Decorator::Decorator;

  // Faults injected so far, both directions. (stats() is the inner
  // device's: what actually crossed the wire.) Context: any.
  virtual const FaultStats& fault_stats() const noexcept = 0;
};

// Validates the options: probabilities in [0,1] ("fault injector: drop=1.5
// is not a probability from 0 to 1"), delay from 0 to a day, hold_slots at
// most 65536. Context: setup.
[[nodiscard]] SetupResult<std::unique_ptr<FaultDevice>> wrap_faults(std::unique_ptr<Device> inner, const FaultOptions& options);

}  // namespace np::dev
