// Bytes and frames for device tests: patterns, numbered frames whose bytes
// tell a damaged, repeated or reordered frame apart, draining a device, and
// keeping copies of received frames without allocating.
#pragma once

#include <array>
#include <memory>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "netpoll/dev/device.h"
#include "netpoll/dev/pair.h"

namespace np::testing {

using Bytes = std::vector<std::byte>;

// n bytes of a recognisable pattern: byte i is seed + 7 i (mod 256).
Bytes pattern(std::size_t n, std::uint8_t seed);
// The bytes of `s`.
Bytes bytes_of(std::string_view s);

// One end of the in-process pair wire `wire` (dev/pair.h; a second call
// opens the other end); null, with a test failure, when it cannot open.
std::unique_ptr<dev::PairDevice> open_pair_end(std::string_view wire, dev::PairOptions o = {});

// A frame of `size` bytes: destination 02:00:00:00:00:(3 - src_last),
// source 02:00:00:00:00:src_last, ethertype 0x88b5 (local experimental),
// then the 4-byte sequence number and a pattern that depends on it. A frame
// shorter than 18 bytes is that frame cut short.
Bytes numbered_frame(std::uint32_t seq, std::size_t size = 60, std::uint8_t src_last = 1);

// The sequence number of a numbered_frame() of at least 18 bytes.
std::uint32_t seq_of(std::span<const std::byte> frame);

// Receives, `budget` frames a call, until the device has nothing more.
std::vector<Bytes> drain(dev::Device& d, std::size_t budget = 64);

// Copies of the last kSlots frames offered to keep(), each cut at
// kSlotSize bytes, in storage made up front: a test can keep what it
// receives while an AllocGuard is armed. Context: any.
class FrameStore {
 public:
  static constexpr std::size_t kSlots = 16;
  static constexpr std::size_t kSlotSize = 2048;

  void keep(std::span<const std::byte> frame) noexcept;
  // How many frames keep() was offered, including any no longer held.
  std::size_t kept() const noexcept { return kept_; }
  // How many are held: the last min(kept(), kSlots).
  std::size_t held() const noexcept { return kept_ < kSlots ? kept_ : kSlots; }
  // The i-th frame held, oldest first; i < held().
  std::span<const std::byte> frame(std::size_t i) const noexcept;

 private:
  std::array<std::array<std::byte, kSlotSize>, kSlots> frames_{};
  std::array<std::size_t, kSlots> lens_{};
  std::size_t kept_ = 0;
};

}  // namespace np::testing
