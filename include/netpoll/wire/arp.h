// ARP packets (RFC 826).
//
// ArpPacket views any hardware/protocol address sizes, as the RFC allows;
// ArpRepr is the only variant the stack acts on: Ethernet hardware addresses
// (hardware type 1, or 6 for IEEE 802 networks, which Linux also accepts) and
// IPv4 protocol addresses, operation request or reply.
//
// Context: any.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "netpoll/base/addr.h"
#include "netpoll/base/assert.h"
#include "netpoll/base/bytes.h"
#include "netpoll/base/result.h"
#include "netpoll/wire/ethernet.h"

namespace np::wire {

enum class ArpOp : std::uint16_t { kRequest = 1, kReply = 2 };

namespace arp_hw {
inline constexpr std::uint16_t kEthernet = 1;
inline constexpr std::uint16_t kIeee802 = 6;
}  // namespace arp_hw

template <class B>
class ArpPacket {
  static_assert(std::is_same_v<std::remove_const_t<B>, std::byte>);

 public:
  static constexpr std::size_t kFixedLen = 8;  // up to and including `op`

  // A view over a buffer being built, before its fields hold valid
  // values: for emitting only. Precondition: buf.size() >= kFixedLen.
  static constexpr ArpPacket new_unchecked(std::span<B> buf) noexcept
    requires(!std::is_const_v<B>) {
    NP_ASSERT(buf.size() >= kFixedLen);
    return ArpPacket(buf);
  }

  // Checks that the fixed part and all four variable-length addresses fit.
  [[nodiscard]] static constexpr Result<ArpPacket> check(std::span<B> buf) noexcept {
    if (buf.size() < kFixedLen) return fail(Errc::kTruncated);
    const ArpPacket p(buf);
    if (buf.size() < p.len()) return fail(Errc::kTruncated);
    return p;
  }

  constexpr std::uint16_t hardware_type() const noexcept { return load_be16(buf_, 0); }
  constexpr std::uint16_t protocol_type() const noexcept { return load_be16(buf_, 2); }
  constexpr std::uint8_t hardware_len() const noexcept { return load_u8(buf_, 4); }
  constexpr std::uint8_t protocol_len() const noexcept { return load_u8(buf_, 5); }
  constexpr std::uint16_t operation() const noexcept { return load_be16(buf_, 6); }

  // Total length implied by the address sizes (the rest is padding).
  constexpr std::size_t len() const noexcept {
    return kFixedLen + 2 * std::size_t{hardware_len()} + 2 * std::size_t{protocol_len()};
  }

  constexpr std::span<B> source_hw_addr() const noexcept { return buf_.subspan(sha_off(), hardware_len()); }
  constexpr std::span<B> source_proto_addr() const noexcept { return buf_.subspan(spa_off(), protocol_len()); }
  constexpr std::span<B> target_hw_addr() const noexcept { return buf_.subspan(tha_off(), hardware_len()); }
  constexpr std::span<B> target_proto_addr() const noexcept { return buf_.subspan(tpa_off(), protocol_len()); }

  constexpr void set_hardware_type(std::uint16_t v) noexcept requires(!std::is_const_v<B>) { store_be16(buf_, 0, v); }
  constexpr void set_protocol_type(std::uint16_t v) noexcept requires(!std::is_const_v<B>) { store_be16(buf_, 2, v); }
  constexpr void set_hardware_len(std::uint8_t v) noexcept requires(!std::is_const_v<B>) { store_u8(buf_, 4, v); }
  constexpr void set_protocol_len(std::uint8_t v) noexcept requires(!std::is_const_v<B>) { store_u8(buf_, 5, v); }
  constexpr void set_operation(std::uint16_t v) noexcept requires(!std::is_const_v<B>) { store_be16(buf_, 6, v); }

 private:
  constexpr explicit ArpPacket(std::span<B> buf) noexcept : buf_(buf) {}
  constexpr std::size_t sha_off() const noexcept { return kFixedLen; }
  constexpr std::size_t spa_off() const noexcept { return sha_off() + hardware_len(); }
  constexpr std::size_t tha_off() const noexcept { return spa_off() + protocol_len(); }
  constexpr std::size_t tpa_off() const noexcept { return tha_off() + hardware_len(); }
  std::span<B> buf_;
};

struct ArpRepr {
  static constexpr std::size_t kLen = 28;  // Ethernet/IPv4 form

  ArpOp op = ArpOp::kRequest;
  MacAddr source_mac;
  Ipv4Addr source_ip;
  MacAddr target_mac;
  Ipv4Addr target_ip;

  [[nodiscard]] static Result<ArpRepr> parse(const ArpPacket<const std::byte>& p) noexcept {
    if (p.hardware_type() != arp_hw::kEthernet && p.hardware_type() != arp_hw::kIeee802)
      return fail(Errc::kUnsupported);
    if (p.protocol_type() != ethertype::kIpv4) return fail(Errc::kUnsupported);
    if (p.hardware_len() != MacAddr::kLen || p.protocol_len() != Ipv4Addr::kLen)
      return fail(Errc::kUnsupported);
    if (p.operation() != static_cast<std::uint16_t>(ArpOp::kRequest) &&
        p.operation() != static_cast<std::uint16_t>(ArpOp::kReply))
      return fail(Errc::kUnsupported);
    return ArpRepr{static_cast<ArpOp>(p.operation()), MacAddr::from_bytes(p.source_hw_addr()),
                   Ipv4Addr::from_bytes(p.source_proto_addr()), MacAddr::from_bytes(p.target_hw_addr()),
                   Ipv4Addr::from_bytes(p.target_proto_addr())};
  }

  static constexpr std::size_t buffer_len() noexcept { return kLen; }

  // Writes the 28-byte Ethernet/IPv4 form at the start of `buf`; returns the
  // bytes written. Precondition: buf.size() >= kLen. Context: any.
  std::span<std::byte> emit(std::span<std::byte> buf) const noexcept {
    NP_ASSERT(buf.size() >= kLen);
    auto out = buf.first(kLen);
    store_be16(out, 0, arp_hw::kEthernet);
    store_be16(out, 2, ethertype::kIpv4);
    store_u8(out, 4, MacAddr::kLen);
    store_u8(out, 5, Ipv4Addr::kLen);
    store_be16(out, 6, static_cast<std::uint16_t>(op));
    put(out, 8, source_mac.bytes());
    put(out, 14, source_ip.bytes());
    put(out, 18, target_mac.bytes());
    put(out, 24, target_ip.bytes());
    return out;
  }

  friend bool operator==(const ArpRepr&, const ArpRepr&) = default;

 private:
  template <std::size_t N>
  static void put(std::span<std::byte> out, std::size_t off, const std::array<std::byte, N>& a) noexcept {
    for (std::size_t i = 0; i < N; ++i) out[off + i] = a[i];
  }
};

}  // namespace np::wire
