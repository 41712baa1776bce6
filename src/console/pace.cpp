#include "netpoll/console/pace.h"

#include <charconv>

#include "netpoll/base/assert.h"

namespace np::console {

namespace {
constexpr std::uint64_t kMaxPerSecond = 1'000'000'000;
constexpr std::uint64_t kNsPerSecond = 1'000'000'000;
}  // namespace

std::optional<Pace> parse_pace(std::string_view text) noexcept {
  Pace p;
  const char* const end = text.data() + text.size();
  const auto [rest, ec] = std::from_chars(text.data(), end, p.per_second);
  if (ec != std::errc() || rest == text.data()) return std::nullopt;
  std::string_view unit(rest, static_cast<std::size_t>(end - rest));
  if (unit.ends_with("/s")) unit.remove_suffix(2);
  std::uint64_t scale = 1;
  if (!unit.empty()) {
    if (unit == "B") {
    } else if (unit == "KB") {
      scale = 1'000;
    } else if (unit == "MB") {
      scale = 1'000'000;
    } else {
      return std::nullopt;
    }
    p.bytes = true;
  }
  if (p.per_second == 0 || p.per_second > kMaxPerSecond / scale) return std::nullopt;
  p.per_second *= scale;
  return p;
}

Pacer::Pacer(Pace pace, std::chrono::nanoseconds slack) noexcept : pace_(pace), slack_(slack) {
  NP_ASSERT(pace.enabled() && pace.per_second <= kMaxPerSecond && slack.count() >= 0);
}

std::chrono::nanoseconds Pacer::wait(Time now) const noexcept {
  const Time ready = due_ - slack_;
  return ready > now ? std::chrono::nanoseconds(ready - now) : std::chrono::nanoseconds(0);
}

void Pacer::sent(Time now, std::uint64_t units) noexcept {
  // units / rate seconds, in nanoseconds with the remainder carried: whole
  // seconds first, so that nothing overflows (the part is below 10^18).
  const std::uint64_t rate = pace_.per_second;
  const std::uint64_t part = (units % rate) * kNsPerSecond + carry_;
  const std::uint64_t cost = (units / rate) * kNsPerSecond + part / rate;
  carry_ = part % rate;
  // An idle sender starts from now: no credit beyond the slack.
  if (due_ < now) due_ = now;
  due_ += std::chrono::nanoseconds(static_cast<std::int64_t>(cost));
}

}  // namespace np::console
