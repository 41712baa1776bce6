// Bytes and frames for device tests: patterns, numbered frames whose bytes
// tell a damaged, repeated or reordered frame apart, draining a device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "netpoll/dev/device.h"

namespace np::testing {

using Bytes = std::vector<std::byte>;

// n bytes of a recognisable pattern: byte i is seed + 7 i (mod 256).
Bytes pattern(std::size_t n, std::uint8_t seed);
// The bytes of `s`.
Bytes bytes_of(std::string_view s);

// A frame of `size` bytes: destination 02:00:00:00:00:(3 - src_last),
// source 02:00:00:00:00:src_last, ethertype 0x88b5 (local experimental),
// then the 4-byte sequence number and a pattern that depends on it. A frame
// shorter than 18 bytes is that frame cut short.
Bytes numbered_frame(std::uint32_t seq, std::size_t size = 60, std::uint8_t src_last = 1);

// The sequence number of a numbered_frame() of at least 18 bytes.
std::uint32_t seq_of(std::span<const std::byte> frame);

// Receives, `budget` frames a call, until the device has nothing more.
std::vector<Bytes> drain(dev::Device& d, std::size_t budget = 64);

}  // namespace np::testing
