#include "frames.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "netpoll/base/bytes.h"

namespace np::testing {

Bytes pattern(std::size_t n, std::uint8_t seed) {
  Bytes v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::byte(static_cast<std::uint8_t>(seed + i * 7));
  return v;
}

Bytes bytes_of(std::string_view s) {
  const auto b = as_bytes(s);
  return {b.begin(), b.end()};
}

std::unique_ptr<dev::PairDevice> open_pair_end(std::string_view wire, dev::PairOptions o) {
  auto d = dev::open_pair_device("pair:" + std::string(wire), wire, o);
  EXPECT_TRUE(d.has_value()) << (d ? "" : d.error().message);
  return d ? std::move(*d) : nullptr;
}

Bytes numbered_frame(std::uint32_t seq, std::size_t size, std::uint8_t src_last) {
  Bytes f(size);
  const std::uint8_t head[14] = {2, 0, 0, 0, 0, static_cast<std::uint8_t>(3 - src_last), 2, 0, 0, 0, 0, src_last,
                                 0x88, 0xb5};
  std::memcpy(f.data(), head, std::min<std::size_t>(14, size));
  for (std::size_t i = 14; i < size; ++i) {
    f[i] = std::byte(static_cast<std::uint8_t>(i < 18 ? seq >> (8 * (17 - i)) : seq * 31 + i));
  }
  return f;
}

std::uint32_t seq_of(std::span<const std::byte> f) {
  return (std::to_integer<std::uint32_t>(f[14]) << 24) | (std::to_integer<std::uint32_t>(f[15]) << 16) |
         (std::to_integer<std::uint32_t>(f[16]) << 8) | std::to_integer<std::uint32_t>(f[17]);
}

std::vector<Bytes> drain(dev::Device& d, std::size_t budget) {
  std::vector<Bytes> out;
  while (d.receive(budget, [&](std::span<const std::byte> f) { out.emplace_back(f.begin(), f.end()); }) > 0) {
  }
  return out;
}

void FrameStore::keep(std::span<const std::byte> frame) noexcept {
  const std::size_t slot = kept_ % kSlots;
  lens_[slot] = std::min(frame.size(), kSlotSize);
  std::memcpy(frames_[slot].data(), frame.data(), lens_[slot]);
  ++kept_;
}

std::span<const std::byte> FrameStore::frame(std::size_t i) const noexcept {
  const std::size_t slot = (kept_ - held() + i) % kSlots;
  return {frames_[slot].data(), lens_[slot]};
}

}  // namespace np::testing
