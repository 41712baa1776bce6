// Pacing: a sender that waits instead of dropping.
//
// A rate limit (console/logger.h: RateLimit) drops what comes too fast; a
// Pacer tells a sender how long to wait before its next record so that no
// more than so many records (or bytes) a second leave, which a sender that
// can wait (one reading standard input: the pipe fills, the writer waits)
// prefers to losing records in a slow receiver's socket buffer.
//
// The schedule is GCRA's (the generic cell rate algorithm, ITU-T I.371
// Annex A): a theoretical time `due_` moves on by each item's cost
// (its units over the rate), and the next item may go once `now` is within
// `slack` of it. The slack is the largest burst (items worth that much time
// may go back to back, after an idle spell) and lets a sender that overslept
// catch up without losing rate; it is small (2 ms by default) because a
// burst is what a receiver's buffer has to absorb.
//
// Time is passed in (a test moves its own); nothing allocates.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace np::console {

struct Pace {
  std::uint64_t per_second = 0;  // 0: off
  bool bytes = false;            // per_second counts bytes (a line and its newline), not records
  bool enabled() const noexcept { return per_second > 0; }
};

// "2000" or "2000/s": records a second; "64000B/s", "500KB/s", "2MB/s":
// bytes a second (K is 1000, M 1000000; "/s" may be left out). Nothing for
// anything else, zero, or more than 10^9 a second. Context: any.
std::optional<Pace> parse_pace(std::string_view text) noexcept;

class Pacer {
 public:
  using Time = std::chrono::steady_clock::time_point;
  static constexpr std::chrono::nanoseconds kDefaultSlack = std::chrono::milliseconds(2);

  // An enabled pace; `slack` not negative. Context: any.
  explicit Pacer(Pace pace, std::chrono::nanoseconds slack = kDefaultSlack) noexcept;

  // How long from `now` until the next item may go; zero when it may go
  // now. Context: any.
  std::chrono::nanoseconds wait(Time now) const noexcept;
  // An item of `units` (1 for a record; its bytes) goes at `now`.
  // Context: any.
  void sent(Time now, std::uint64_t units) noexcept;

 private:
  Pace pace_;
  std::chrono::nanoseconds slack_;
  Time due_{};                // where the schedule has got to
  std::uint64_t carry_ = 0;   // nanoseconds' remainder (in 1/per_second), so the long-run rate is exact
};

}  // namespace np::console
