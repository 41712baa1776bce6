// Link- and network-layer addresses as value types over bytes.
//
// An address is its bytes in wire order, never a host integer of unknown byte
// order. Parsing from text is for setup (CLI, option strings); formatting is
// allocation-free so it can run on the crash path. IpAddr holds either
// family, for what takes both (a target, a received datagram's ends).
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

// An IPv6 address (RFC 4291).
class Ipv6Addr {
 public:
  static constexpr std::size_t kLen = 16;

  constexpr Ipv6Addr() noexcept = default;
  constexpr explicit Ipv6Addr(std::array<std::byte, kLen> b) noexcept : bytes_(b) {}
  // From eight 16-bit groups, as the text form writes them.
  constexpr Ipv6Addr(std::uint16_t a, std::uint16_t b, std::uint16_t c, std::uint16_t d, std::uint16_t e,
                     std::uint16_t f, std::uint16_t g, std::uint16_t h) noexcept {
    const std::uint16_t groups[8] = {a, b, c, d, e, f, g, h};
    for (std::size_t i = 0; i < 8; ++i) {
      bytes_[2 * i] = std::byte(groups[i] >> 8);
      bytes_[2 * i + 1] = std::byte(groups[i] & 0xff);
    }
  }

  static constexpr Ipv6Addr any() noexcept { return {}; }
  // ff02::1, every node on the link (RFC 4291 section 2.7.1).
  static constexpr Ipv6Addr all_nodes() noexcept { return {0xff02, 0, 0, 0, 0, 0, 0, 1}; }

  // Reads 16 bytes; the caller guarantees the length. Context: any.
  static Ipv6Addr from_bytes(std::span<const std::byte> b) noexcept;

  // RFC 4291 section 2.2: eight hex groups, one "::" for a run of zero
  // groups, the last 32 bits as a dotted quad. No zone ("%eth0"), no
  // brackets. Context: setup.
  static std::optional<Ipv6Addr> parse(std::string_view text) noexcept;

  constexpr const std::array<std::byte, kLen>& bytes() const noexcept { return bytes_; }
  constexpr std::uint8_t operator[](std::size_t i) const noexcept {
    return std::to_integer<std::uint8_t>(bytes_[i]);
  }
  constexpr std::uint16_t group(std::size_t i) const noexcept {
    return static_cast<std::uint16_t>(((*this)[2 * i] << 8) | (*this)[2 * i + 1]);
  }

  constexpr bool is_unspecified() const noexcept { return *this == Ipv6Addr{}; }
  constexpr bool is_loopback() const noexcept { return *this == Ipv6Addr{0, 0, 0, 0, 0, 0, 0, 1}; }
  constexpr bool is_multicast() const noexcept { return (*this)[0] == 0xff; }
  // fe80::/10 (RFC 4291 section 2.5.6).
  constexpr bool is_link_local() const noexcept { return (*this)[0] == 0xfe && ((*this)[1] & 0xc0) == 0x80; }
  // ::ffff:0:0/96 (RFC 4291 section 2.5.5.2).
  constexpr bool is_v4_mapped() const noexcept {
    for (std::size_t i = 0; i < 10; ++i) {
      if ((*this)[i] != 0) return false;
    }
    return (*this)[10] == 0xff && (*this)[11] == 0xff;
  }
  // The solicited-node multicast address a neighbour solicitation for this
  // address is sent to: ff02::1:ff00:0/104 with its low 24 bits (RFC 4291
  // section 2.7.1).
  constexpr Ipv6Addr solicited_node() const noexcept {
    Ipv6Addr m{0xff02, 0, 0, 0, 0, 1, 0xff00, 0};
    for (std::size_t i = 13; i < kLen; ++i) m.bytes_[i] = bytes_[i];
    return m;
  }

  // RFC 5952: lower case, no leading zeros, the longest run of two or more
  // zero groups (the first of equal runs) as "::", an IPv4-mapped address
  // as ::ffff:10.0.0.1. Context: any.
  FixedText<48> text() const noexcept;
  std::string to_string() const { return std::string(text().view()); }

  friend constexpr auto operator<=>(const Ipv6Addr&, const Ipv6Addr&) = default;

 private:
  std::array<std::byte, kLen> bytes_{};
};

enum class IpFamily : std::uint8_t { kV4, kV6 };

// An IPv4 or an IPv6 address. The default is IPv4's unspecified 0.0.0.0,
// so that code written for IPv4 keeps its meaning. Two addresses of
// different families are never equal.
class IpAddr {
 public:
  constexpr IpAddr() noexcept = default;
  constexpr IpAddr(const Ipv4Addr& a) noexcept : family_(IpFamily::kV4) {  // NOLINT: implicit by design
    for (std::size_t i = 0; i < Ipv4Addr::kLen; ++i) bytes_[i] = a.bytes()[i];
  }
  constexpr IpAddr(const Ipv6Addr& a) noexcept : family_(IpFamily::kV6), bytes_(a.bytes()) {}  // NOLINT

  // A dotted quad, or IPv6 text when it has a ':' (as Linux's netconsole
  // tells them apart). Context: setup.
  static std::optional<IpAddr> parse(std::string_view text) noexcept;

  constexpr IpFamily family() const noexcept { return family_; }
  constexpr bool is_v4() const noexcept { return family_ == IpFamily::kV4; }
  constexpr bool is_v6() const noexcept { return family_ == IpFamily::kV6; }
  // The address as its family's type. Precondition: that family.
  constexpr Ipv4Addr v4() const noexcept { return Ipv4Addr({bytes_[0], bytes_[1], bytes_[2], bytes_[3]}); }
  constexpr Ipv6Addr v6() const noexcept { return Ipv6Addr(bytes_); }
  // The address's bytes: 4 or 16.
  constexpr std::span<const std::byte> bytes() const noexcept {
    return std::span(bytes_).first(is_v4() ? Ipv4Addr::kLen : Ipv6Addr::kLen);
  }

  constexpr bool is_unspecified() const noexcept { return is_v4() ? v4().is_unspecified() : v6().is_unspecified(); }
  constexpr bool is_loopback() const noexcept { return is_v4() ? v4().is_loopback() : v6().is_loopback(); }
  constexpr bool is_multicast() const noexcept { return is_v4() ? v4().is_multicast() : v6().is_multicast(); }
  // IPv4's limited broadcast; IPv6 has none.
  constexpr bool is_broadcast() const noexcept { return is_v4() && v4().is_broadcast(); }

  // Its family's text form. Context: any.
  FixedText<48> text() const noexcept;
  std::string to_string() const { return std::string(text().view()); }

  friend constexpr bool operator==(const IpAddr&, const IpAddr&) = default;

  // "10.0.0.1:6665", "[fd77::1]:6665" (RFC 5952 section 6). Context: setup.
  std::string with_port(std::uint16_t port) const;

 private:
  IpFamily family_ = IpFamily::kV4;
  std::array<std::byte, Ipv6Addr::kLen> bytes_{};  // an IPv4 address in the first 4, the rest zero
};

}  // namespace np
