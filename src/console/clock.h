// The clocks and the nap of the logger's sending thread and crash path,
// read straight from clock_gettime(2) and nanosleep(2): both are
// async-signal-safe, so the crash path may use them. Internal to the
// console layer (logger.cpp, logger_crash.cpp). Context: any.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace np::console {

// CLOCK_MONOTONIC in nanoseconds: deadlines and waits.
inline std::int64_t monotonic_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Microseconds since boot, the clock of the kernel's own records.
inline std::uint64_t boottime_us() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

inline void nap(std::chrono::microseconds d) noexcept {
  timespec ts{static_cast<time_t>(d.count() / 1'000'000), static_cast<long>(d.count() % 1'000'000) * 1000};
  ::nanosleep(&ts, nullptr);
}

}  // namespace np::console
