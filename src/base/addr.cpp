#include "netpoll/base/addr.h"

#include <algorithm>
#include <cstring>

#include "netpoll/base/hex.h"

namespace np {
namespace {


}  // namespace

MacAddr MacAddr::from_bytes(std::span<const std::byte> b) noexcept {
  std::array<std::byte, kLen> a;
  std::copy_n(b.begin(), kLen, a.begin());
  return MacAddr(a);
}

std::optional<MacAddr> MacAddr::parse(std::string_view text) noexcept {
  // Exactly "xx:xx:xx:xx:xx:xx" (17 characters); one separator style.
  if (text.size() != 17) return std::nullopt;
  const char sep = text[2];
  if (sep != ':' && sep != '-') return std::nullopt;
  std::array<std::byte, kLen> a;
  for (std::size_t i = 0; i < kLen; ++i) {
    const int hi = hex_digit(text[i * 3]);
    const int lo = hex_digit(text[i * 3 + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    if (i + 1 < kLen && text[i * 3 + 2] != sep) return std::nullopt;
    a[i] = static_cast<std::byte>(hi * 16 + lo);
  }
  return MacAddr(a);
}

FixedText<18> MacAddr::text() const noexcept {
  FixedText<18> t;
  for (std::size_t i = 0; i < kLen; ++i) {
    if (i != 0) t.append(':');
    t.append_hex((*this)[i], 2);
  }
  return t;
}

Ipv4Addr Ipv4Addr::from_bytes(std::span<const std::byte> b) noexcept {
  std::array<std::byte, kLen> a;
  std::copy_n(b.begin(), kLen, a.begin());
  return Ipv4Addr(a);
}

Ipv4Addr Ipv4Addr::from_network_u32(std::uint32_t be) noexcept {
  std::array<std::byte, kLen> a;
  std::memcpy(a.data(), &be, kLen);
  return Ipv4Addr(a);
}

std::uint32_t Ipv4Addr::to_network_u32() const noexcept {
  std::uint32_t be;
  std::memcpy(&be, bytes_.data(), kLen);
  return be;
}

std::optional<Ipv4Addr> Ipv4Addr::parse(std::string_view text) noexcept {
  std::array<std::byte, kLen> a;
  std::size_t pos = 0;
  for (std::size_t part = 0; part < kLen; ++part) {
    if (part != 0) {
      if (pos >= text.size() || text[pos] != '.') return std::nullopt;
      ++pos;
    }
    unsigned value = 0;
    std::size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      value = value * 10 + static_cast<unsigned>(text[pos] - '0');
      ++pos;
      if (++digits > 3 || value > 255) return std::nullopt;
    }
    if (digits == 0) return std::nullopt;
    a[part] = static_cast<std::byte>(value);
  }
  if (pos != text.size()) return std::nullopt;
  return Ipv4Addr(a);
}

FixedText<16> Ipv4Addr::text() const noexcept {
  FixedText<16> t;
  for (std::size_t i = 0; i < kLen; ++i) {
    if (i != 0) t.append('.');
    t.append_uint((*this)[i]);
  }
  return t;
}

}  // namespace np
