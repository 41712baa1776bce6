// Link- and network-layer addresses as value types over bytes.
//
// An address is its bytes in wire order, never a host integer of unknown byte
// order. Parsing from text is for setup (CLI, option strings); formatting is
// allocation-free so it can run on the crash path.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "netpoll/base/text.h"

namespace np {

class MacAddr {
 public:
  static constexpr std::size_t kLen = 6;

  constexpr MacAddr() noexcept = default;
  constexpr explicit MacAddr(std::array<std::byte, kLen> b) noexcept : bytes_(b) {}
  constexpr MacAddr(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint8_t e,
                    std::uint8_t f) noexcept
      : bytes_{std::byte{a}, std::byte{b}, std::byte{c}, std::byte{d}, std::byte{e}, std::byte{f}} {}

  static constexpr MacAddr broadcast() noexcept { return {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}; }

  // Reads 6 bytes; the caller guarantees the length. Context: any.
  static MacAddr from_bytes(std::span<const std::byte> b) noexcept;

  // "aa:bb:cc:dd:ee:ff" (also '-' separated). Context: setup.
  static std::optional<MacAddr> parse(std::string_view text) noexcept;

  constexpr const std::array<std::byte, kLen>& bytes() const noexcept { return bytes_; }
  constexpr std::uint8_t operator[](std::size_t i) const noexcept {
    return std::to_integer<std::uint8_t>(bytes_[i]);
  }

  constexpr bool is_broadcast() const noexcept { return *this == broadcast(); }
  constexpr bool is_multicast() const noexcept { return ((*this)[0] & 0x01) != 0; }
  constexpr bool is_zero() const noexcept { return *this == MacAddr{}; }
  constexpr bool is_unicast() const noexcept { return !is_multicast() && !is_zero(); }

  // "aa:bb:cc:dd:ee:ff". Context: any.
  FixedText<18> text() const noexcept;
  std::string to_string() const { return std::string(text().view()); }

  friend constexpr auto operator<=>(const MacAddr&, const MacAddr&) = default;

 private:
  std::array<std::byte, kLen> bytes_{};
};

class Ipv4Addr {
 public:
  static constexpr std::size_t kLen = 4;

  constexpr Ipv4Addr() noexcept = default;
  constexpr explicit Ipv4Addr(std::array<std::byte, kLen> b) noexcept : bytes_(b) {}
  constexpr Ipv4Addr(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) noexcept
      : bytes_{std::byte{a}, std::byte{b}, std::byte{c}, std::byte{d}} {}

  static constexpr Ipv4Addr any() noexcept { return {}; }
  static constexpr Ipv4Addr broadcast() noexcept { return {255, 255, 255, 255}; }

  // Reads 4 bytes; the caller guarantees the length. Context: any.
  static Ipv4Addr from_bytes(std::span<const std::byte> b) noexcept;
  // From a value in network byte order as the socket API holds it (in_addr).
  static Ipv4Addr from_network_u32(std::uint32_t be) noexcept;
  std::uint32_t to_network_u32() const noexcept;

  // Dotted quad, exactly four decimal parts 0..255. Context: setup.
  static std::optional<Ipv4Addr> parse(std::string_view text) noexcept;

  constexpr const std::array<std::byte, kLen>& bytes() const noexcept { return bytes_; }
  constexpr std::uint8_t operator[](std::size_t i) const noexcept {
    return std::to_integer<std::uint8_t>(bytes_[i]);
  }

  constexpr bool is_unspecified() const noexcept { return *this == Ipv4Addr{}; }
  constexpr bool is_loopback() const noexcept { return (*this)[0] == 127; }
  constexpr bool is_multicast() const noexcept { return ((*this)[0] & 0xf0) == 0xe0; }
  constexpr bool is_broadcast() const noexcept { return *this == broadcast(); }

  // "10.0.0.1". Context: any.
  FixedText<16> text() const noexcept;
  std::string to_string() const { return std::string(text().view()); }

  friend constexpr auto operator<=>(const Ipv4Addr&, const Ipv4Addr&) = default;

 private:
  std::array<std::byte, kLen> bytes_{};
};

}  // namespace np
