// Big-endian loads and stores on byte spans.
//
// The only way wire code reads or writes a multi-byte field: no casts onto
// packed structs, no host-order integers of unknown origin. Offsets are
// checked by the caller's view (see STYLE.md, "check at construction").
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace np {

constexpr std::uint16_t load_be16(std::span<const std::byte> b, std::size_t off) noexcept {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(b[off]) << 8) |
                                    std::to_integer<unsigned>(b[off + 1]));
}

constexpr std::uint32_t load_be32(std::span<const std::byte> b, std::size_t off) noexcept {
  return (std::uint32_t{std::to_integer<std::uint8_t>(b[off])} << 24) |
         (std::uint32_t{std::to_integer<std::uint8_t>(b[off + 1])} << 16) |
         (std::uint32_t{std::to_integer<std::uint8_t>(b[off + 2])} << 8) |
         std::uint32_t{std::to_integer<std::uint8_t>(b[off + 3])};
}

constexpr void store_be16(std::span<std::byte> b, std::size_t off, std::uint16_t v) noexcept {
  b[off] = static_cast<std::byte>(v >> 8);
  b[off + 1] = static_cast<std::byte>(v & 0xff);
}

constexpr void store_be32(std::span<std::byte> b, std::size_t off, std::uint32_t v) noexcept {
  b[off] = static_cast<std::byte>(v >> 24);
  b[off + 1] = static_cast<std::byte>((v >> 16) & 0xff);
  b[off + 2] = static_cast<std::byte>((v >> 8) & 0xff);
  b[off + 3] = static_cast<std::byte>(v & 0xff);
}

constexpr std::uint8_t load_u8(std::span<const std::byte> b, std::size_t off) noexcept {
  return std::to_integer<std::uint8_t>(b[off]);
}

constexpr void store_u8(std::span<std::byte> b, std::size_t off, std::uint8_t v) noexcept {
  b[off] = static_cast<std::byte>(v);
}

// A span of bytes over text, for tests and tools.
inline std::span<const std::byte> as_bytes(std::string_view s) noexcept {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// Text over a span of bytes (the same bytes), for tests and tools.
inline std::string_view as_text(std::span<const std::byte> b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace np
