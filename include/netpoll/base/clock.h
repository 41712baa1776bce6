// Clocks and naps that any context may use, a fatal-signal handler included.
//
// clock_gettime(2) and nanosleep(2) are async-signal-safe (signal-safety(7));
// for these clocks clock_gettime goes through the vDSO, so reading the time
// costs no system call. Nothing here allocates, locks or throws.
//
// Which clock: monotonic for deadlines and intervals (it never jumps);
// realtime for timestamps a person or another machine reads (pcap records,
// a receiver's receive time); boottime for the kernel's record timestamps
// (it also counts time spent suspended).
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace np {

namespace clock_detail {
inline std::int64_t read_ns(clockid_t id) noexcept {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace clock_detail

// Nanoseconds of CLOCK_MONOTONIC. Context: any.
inline std::int64_t monotonic_ns() noexcept { return clock_detail::read_ns(CLOCK_MONOTONIC); }

// Nanoseconds since the Unix epoch (CLOCK_REALTIME). Context: any.
inline std::int64_t realtime_ns() noexcept { return clock_detail::read_ns(CLOCK_REALTIME); }

// Nanoseconds since boot, suspended time included (CLOCK_BOOTTIME): the
// clock of the kernel's own log records. Context: any.
inline std::int64_t boottime_ns() noexcept { return clock_detail::read_ns(CLOCK_BOOTTIME); }

// Sleeps for `d` (nanosleep(2)); zero or less returns at once. A signal
// ends the nap early (EINTR is not retried): a caller that naps in a loop
// sees a handler's flag at once. Context: any.
inline void nap(std::chrono::nanoseconds d) noexcept {
  if (d.count() <= 0) return;
  const timespec ts{static_cast<time_t>(d.count() / 1'000'000'000), static_cast<long>(d.count() % 1'000'000'000)};
  ::nanosleep(&ts, nullptr);
}

}  // namespace np
