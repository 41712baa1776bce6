#include "netpoll/base/addr.h"

#include <algorithm>
#include <cstring>

#include "netpoll/base/hex.h"

namespace np {

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

Ipv6Addr Ipv6Addr::from_bytes(std::span<const std::byte> b) noexcept {
  std::array<std::byte, kLen> a;
  std::copy_n(b.begin(), kLen, a.begin());
  return Ipv6Addr(a);
}

std::optional<Ipv6Addr> Ipv6Addr::parse(std::string_view text) noexcept {
  // Groups before and after the one "::", then the zeros between them.
  std::array<std::uint16_t, 8> head{}, tail{};
  std::size_t nhead = 0, ntail = 0;
  bool gap = false;
  std::size_t pos = 0;
  if (text.starts_with("::")) {
    gap = true;
    pos = 2;
  }
  while (pos < text.size()) {
    auto& groups = gap ? tail : head;
    std::size_t& n = gap ? ntail : nhead;
    if (nhead + ntail >= 8) return std::nullopt;
    // The last 32 bits as a dotted quad (RFC 4291 section 2.2, form 3).
    const std::string_view rest = text.substr(pos);
    if (rest.find('.') != std::string_view::npos && rest.find(':') == std::string_view::npos) {
      const auto v4 = Ipv4Addr::parse(rest);
      if (!v4 || nhead + ntail + 2 > 8) return std::nullopt;
      groups[n++] = static_cast<std::uint16_t>(((*v4)[0] << 8) | (*v4)[1]);
      groups[n++] = static_cast<std::uint16_t>(((*v4)[2] << 8) | (*v4)[3]);
      pos = text.size();
      break;
    }
    unsigned value = 0;
    std::size_t digits = 0;
    while (pos < text.size() && hex_digit(text[pos]) >= 0) {
      value = value * 16 + static_cast<unsigned>(hex_digit(text[pos]));
      ++pos;
      if (++digits > 4) return std::nullopt;
    }
    if (digits == 0) return std::nullopt;
    groups[n++] = static_cast<std::uint16_t>(value);
    if (pos == text.size()) break;
    if (text[pos] != ':') return std::nullopt;
    ++pos;
    if (pos < text.size() && text[pos] == ':') {
      if (gap) return std::nullopt;  // a second "::"
      gap = true;
      ++pos;
    } else if (pos == text.size()) {
      return std::nullopt;  // a single trailing ':'
    }
  }
  if (gap ? nhead + ntail > 7 : nhead != 8) return std::nullopt;
  std::array<std::uint16_t, 8> g{};
  for (std::size_t i = 0; i < nhead; ++i) g[i] = head[i];
  for (std::size_t i = 0; i < ntail; ++i) g[8 - ntail + i] = tail[i];
  return Ipv6Addr(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]);
}

FixedText<48> Ipv6Addr::text() const noexcept {
  FixedText<48> t;
  if (is_v4_mapped()) {
    t.append("::ffff:");
    t.append(Ipv4Addr::from_bytes(std::span(bytes_).subspan(12)).text().view());
    return t;
  }
  // RFC 5952 section 4.2: the longest run of zero groups, two at least.
  std::size_t best = 8, best_len = 0;
  for (std::size_t i = 0; i < 8;) {
    std::size_t j = i;
    while (j < 8 && group(j) == 0) ++j;
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
    i = j == i ? i + 1 : j;
  }
  if (best_len < 2) best = 8;
  for (std::size_t i = 0; i < 8; ++i) {
    if (i == best) {
      t.append("::");
      i += best_len - 1;
      continue;
    }
    if (i != 0 && i != best + best_len) t.append(':');
    t.append_hex(group(i));
  }
  return t;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) noexcept {
  if (text.find(':') != std::string_view::npos) {
    if (auto a = Ipv6Addr::parse(text)) return IpAddr(*a);
    return std::nullopt;
  }
  if (auto a = Ipv4Addr::parse(text)) return IpAddr(*a);
  return std::nullopt;
}

std::string IpAddr::with_port(std::uint16_t port) const {
  const std::string ip = to_string();
  return (is_v6() ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

FixedText<48> IpAddr::text() const noexcept {
  if (is_v6()) return v6().text();
  FixedText<48> t;
  t.append(v4().text().view());
  return t;
}

}  // namespace np
