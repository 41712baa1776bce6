// Private to core: where the headers of the frames netpoll sends sit, and
// the small helpers the core's files share.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "netpoll/base/addr.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/udp.h"

namespace np::core::detail {

inline constexpr std::size_t kEthLen = wire::EthernetFrame<std::byte>::kHeaderLen;
inline constexpr std::size_t kIpv4UdpOffset = kEthLen + wire::Ipv4Repr::kHeaderLen;
inline constexpr std::size_t kIpv4PayloadOffset = kIpv4UdpOffset + wire::UdpPacket<std::byte>::kHeaderLen;

// A MAC in one atomic word.
inline std::uint64_t pack_mac(const MacAddr& m) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < MacAddr::kLen; ++i) v = (v << 8) | m[i];
  return v;
}

inline MacAddr unpack_mac(std::uint64_t v) noexcept {
  std::array<std::byte, MacAddr::kLen> b;
  for (std::size_t i = MacAddr::kLen; i-- > 0;) {
    b[i] = static_cast<std::byte>(v & 0xff);
    v >>= 8;
  }
  return MacAddr(b);
}

}  // namespace np::core::detail
