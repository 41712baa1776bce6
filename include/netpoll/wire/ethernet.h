// Ethernet II frames (IEEE 802.3 clause 3.2 with an EtherType >= 0x0600).
//
// Two levels, as everywhere in wire/: EthernetFrame is a checked view over
// bytes with an accessor for every field; EthernetRepr holds the facts the
// stack acts on and parses/emits them. The FCS is not part of the frame:
// every backend we drive (AF_PACKET, TAP, qemu's socket netdev) strips it.
//
// Context: any (no allocation, no system calls).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "netpoll/base/addr.h"
#include "netpoll/base/assert.h"
#include "netpoll/base/bytes.h"
#include "netpoll/base/result.h"

namespace np::wire {

namespace ethertype {
inline constexpr std::uint16_t kIpv4 = 0x0800;
inline constexpr std::uint16_t kArp = 0x0806;
inline constexpr std::uint16_t kVlan = 0x8100;
inline constexpr std::uint16_t kIpv6 = 0x86dd;
}  // namespace ethertype

template <class B>
class EthernetFrame {
  static_assert(std::is_same_v<std::remove_const_t<B>, std::byte>);

 public:
  static constexpr std::size_t kHeaderLen = 14;

  // A view over a buffer being built, before its fields hold valid
  // values: for emitting only. Precondition: buf.size() >= kHeaderLen.
  static constexpr EthernetFrame new_unchecked(std::span<B> buf) noexcept
    requires(!std::is_const_v<B>) {
    NP_ASSERT(buf.size() >= kHeaderLen);
    return EthernetFrame(buf);
  }

  [[nodiscard]] static constexpr Result<EthernetFrame> check(std::span<B> buf) noexcept {
    if (buf.size() < kHeaderLen) return fail(Errc::kTruncated);
    return EthernetFrame(buf);
  }

  MacAddr dst() const noexcept { return MacAddr::from_bytes(buf_.subspan(0, 6)); }
  MacAddr src() const noexcept { return MacAddr::from_bytes(buf_.subspan(6, 6)); }
  constexpr std::uint16_t ethertype() const noexcept { return load_be16(buf_, 12); }
  constexpr std::span<B> payload() const noexcept { return buf_.subspan(kHeaderLen); }
  constexpr std::span<B> bytes() const noexcept { return buf_; }

  void set_dst(const MacAddr& m) noexcept requires(!std::is_const_v<B>) { put(0, m); }
  void set_src(const MacAddr& m) noexcept requires(!std::is_const_v<B>) { put(6, m); }
  constexpr void set_ethertype(std::uint16_t v) noexcept requires(!std::is_const_v<B>) {
    store_be16(buf_, 12, v);
  }

 private:
  constexpr explicit EthernetFrame(std::span<B> buf) noexcept : buf_(buf) {}
  void put(std::size_t off, const MacAddr& m) noexcept {
    for (std::size_t i = 0; i < MacAddr::kLen; ++i) buf_[off + i] = m.bytes()[i];
  }
  std::span<B> buf_;
};

struct EthernetRepr {
  MacAddr src;
  MacAddr dst;
  std::uint16_t ethertype = 0;

  // Ethernet II only: an 802.3 length field (< 0x0600) is kUnsupported.
  [[nodiscard]] static Result<EthernetRepr> parse(const EthernetFrame<const std::byte>& f) noexcept {
    if (f.ethertype() < 0x0600) return fail(Errc::kUnsupported);
    return EthernetRepr{f.src(), f.dst(), f.ethertype()};
  }

  static constexpr std::size_t header_len() noexcept { return EthernetFrame<std::byte>::kHeaderLen; }

  // Writes the header at the start of `buf` and returns the payload area.
  // Precondition: buf.size() >= header_len(). Context: any.
  std::span<std::byte> emit(std::span<std::byte> buf) const noexcept {
    NP_ASSERT(buf.size() >= header_len());
    auto f = EthernetFrame<std::byte>::new_unchecked(buf);
    f.set_dst(dst);
    f.set_src(src);
    f.set_ethertype(ethertype);
    return f.payload();
  }

  friend bool operator==(const EthernetRepr&, const EthernetRepr&) = default;
};

}  // namespace np::wire
