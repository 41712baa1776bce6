// The Internet checksum (RFC 1071), computed incrementally.
//
// Data may arrive in pieces of any length: a piece that ends on an odd byte
// leaves that byte pending, and the next piece's first byte completes the
// 16-bit word (RFC 1071 section 2 (A): the sum is independent of how the
// data is split, as long as byte order within words is kept).
//
// Context: any (pure computation).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "netpoll/base/addr.h"

namespace np::wire {

class Checksum {
 public:
  constexpr Checksum() noexcept = default;

  // Adds bytes in wire order. Context: any.
  constexpr Checksum& add(std::span<const std::byte> data) noexcept {
    std::size_t i = 0;
    const std::size_t n = data.size();
    if (odd_ && n > 0) {
      acc_ += std::to_integer<std::uint32_t>(data[0]);
      odd_ = false;
      i = 1;
    }
    if (!std::is_constant_evaluated()) i = add_words(data, i);
    // Four bytes per step into a 64-bit accumulator: carries are folded once
    // at the end (RFC 1071 section 2 (C), deferred carries).
    for (; i + 4 <= n; i += 4) {
      acc_ += (std::to_integer<std::uint32_t>(data[i]) << 8) |
              std::to_integer<std::uint32_t>(data[i + 1]);
      acc_ += (std::to_integer<std::uint32_t>(data[i + 2]) << 8) |
              std::to_integer<std::uint32_t>(data[i + 3]);
    }
    for (; i + 2 <= n; i += 2) {
      acc_ += (std::to_integer<std::uint32_t>(data[i]) << 8) |
              std::to_integer<std::uint32_t>(data[i + 1]);
    }
    if (i < n) {
      acc_ += std::to_integer<std::uint32_t>(data[i]) << 8;
      odd_ = true;
    }
    return *this;
  }

  // Adds a 16-bit word given in host order (it is summed as its wire form).
  // Only valid on a word boundary. Context: any.
  constexpr Checksum& add_u16(std::uint16_t v) noexcept {
    acc_ += v;
    return *this;
  }

  constexpr Checksum& add_u32(std::uint32_t v) noexcept {
    acc_ += v >> 16;
    acc_ += v & 0xffff;
    return *this;
  }

  constexpr Checksum& add(const Ipv4Addr& a) noexcept { return add(std::span(a.bytes())); }
  constexpr Checksum& add(const Ipv6Addr& a) noexcept { return add(std::span(a.bytes())); }

  // The folded one's-complement sum (not inverted). Context: any.
  constexpr std::uint16_t sum() const noexcept {
    std::uint64_t s = acc_;
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return static_cast<std::uint16_t>(s);
  }

  // The value to store in a checksum field: the complement of the sum.
  constexpr std::uint16_t finish() const noexcept { return static_cast<std::uint16_t>(~sum()); }

 private:
  // Sums data[i..] eight bytes at a time as the machine loads them and adds
  // the result in wire order (RFC 1071 section 2 (B): the sum of byte-swapped
  // words is the byte-swapped sum); returns where it stopped. i is on a word
  // boundary of the whole.
  std::size_t add_words(std::span<const std::byte> data, std::size_t i) noexcept {
    const std::size_t n = data.size();
    if (n - i < 16) return i;
    std::uint64_t native = 0;
    for (; i + 8 <= n; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, data.data() + i, sizeof w);
      native += (w & 0xffffffffu) + (w >> 32);  // two 32-bit halves: no carry lost
    }
    while (native >> 16) native = (native & 0xffff) + (native >> 16);
    if constexpr (std::endian::native == std::endian::little) {
      native = ((native & 0xff) << 8) | (native >> 8);
    }
    acc_ += native;
    return i;
  }

  std::uint64_t acc_ = 0;
  bool odd_ = false;
};

// One-shot checksum field value over a buffer. Context: any.
constexpr std::uint16_t checksum(std::span<const std::byte> data) noexcept {
  return Checksum().add(data).finish();
}

// Sum of the IPv4 pseudo-header for TCP/UDP (RFC 768, "pseudo header"):
// source, destination, zero, protocol, transport length. Context: any.
constexpr Checksum pseudo_header(const Ipv4Addr& src, const Ipv4Addr& dst, std::uint8_t protocol,
                                 std::uint16_t length) noexcept {
  Checksum c;
  c.add(src).add(dst).add_u16(protocol).add_u16(length);
  return c;
}

// Sum of the IPv6 pseudo-header for upper-layer checksums (RFC 8200
// section 8.1): source, destination, the upper-layer length as 32 bits,
// three zero bytes and the next header. Context: any.
constexpr Checksum pseudo_header(const Ipv6Addr& src, const Ipv6Addr& dst, std::uint8_t next_header,
                                 std::uint32_t length) noexcept {
  Checksum c;
  c.add(src).add(dst).add_u32(length).add_u16(next_header);
  return c;
}

}  // namespace np::wire
