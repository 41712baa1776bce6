// ICMPv6 (RFC 4443) as far as neighbour discovery (RFC 4861) needs it:
// neighbour solicitations and advertisements with their link-layer
// address options, IPv6's ARP.
//
// Icmpv6Packet views any ICMPv6 message (type, code, checksum over the
// IPv6 pseudo-header) and the fields the two neighbour messages share (the
// flags word, the target address, the options). NdiscRepr is what netpoll
// acts on: a solicitation or an advertisement that passes the validity
// checks of RFC 4861 sections 7.1.1 and 7.1.2, with the Ethernet address
// its option carries. Every other ICMPv6 message is kUnsupported.
//
// Context: any.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>

#include "netpoll/base/addr.h"
#include "netpoll/base/assert.h"
#include "netpoll/base/bytes.h"
#include "netpoll/base/result.h"
#include "netpoll/wire/checksum.h"
#include "netpoll/wire/ipv6.h"

namespace np::wire {

namespace icmpv6_type {
inline constexpr std::uint8_t kDestUnreachable = 1;
inline constexpr std::uint8_t kEchoRequest = 128;
inline constexpr std::uint8_t kEchoReply = 129;
inline constexpr std::uint8_t kRouterSolicit = 133;
inline constexpr std::uint8_t kRouterAdvert = 134;
inline constexpr std::uint8_t kNeighbourSolicit = 135;
inline constexpr std::uint8_t kNeighbourAdvert = 136;
}  // namespace icmpv6_type

// Neighbour discovery's option types (RFC 4861 section 4.6).
namespace ndisc_option {
inline constexpr std::uint8_t kSourceLinkAddr = 1;
inline constexpr std::uint8_t kTargetLinkAddr = 2;
}  // namespace ndisc_option

template <class B>
class Icmpv6Packet {
  static_assert(std::is_same_v<std::remove_const_t<B>, std::byte>);

 public:
  static constexpr std::size_t kHeaderLen = 4;
  // A solicitation or advertisement up to its options: header, flags or
  // reserved word, target address (RFC 4861 sections 4.3 and 4.4).
  static constexpr std::size_t kNdiscLen = 24;

  static constexpr Icmpv6Packet new_unchecked(std::span<B> buf) noexcept
    requires(!std::is_const_v<B>) {
    NP_ASSERT(buf.size() >= kHeaderLen);
    return Icmpv6Packet(buf);
  }

  // The buffer is the whole message (the IPv6 payload): type, code and
  // checksum present, or kTruncated.
  [[nodiscard]] static constexpr Result<Icmpv6Packet> check(std::span<B> buf) noexcept {
    if (buf.size() < kHeaderLen) return fail(Errc::kTruncated);
    return Icmpv6Packet(buf);
  }

  constexpr std::uint8_t type() const noexcept { return load_u8(buf_, 0); }
  constexpr std::uint8_t code() const noexcept { return load_u8(buf_, 1); }
  constexpr std::uint16_t checksum() const noexcept { return load_be16(buf_, 2); }
  constexpr std::span<B> bytes() const noexcept { return buf_; }

  // RFC 4443 section 2.3: the message and the IPv6 pseudo-header with next
  // header 58 sum to 0xffff. Context: any.
  constexpr bool verify_checksum(const Ipv6Addr& src, const Ipv6Addr& dst) const noexcept {
    return pseudo_header(src, dst, ip_proto::kIcmpv6, static_cast<std::uint32_t>(buf_.size())).add(buf_).sum() ==
           0xffff;
  }

  // The neighbour messages' fields. Precondition: size() >= kNdiscLen.
  constexpr std::size_t size() const noexcept { return buf_.size(); }
  constexpr std::uint8_t ndisc_flags() const noexcept { return load_u8(buf_, 4); }
  Ipv6Addr ndisc_target() const noexcept { return Ipv6Addr::from_bytes(buf_.subspan(8, 16)); }
  constexpr std::span<B> ndisc_options() const noexcept { return buf_.subspan(kNdiscLen); }

  constexpr void set_type(std::uint8_t v) noexcept requires(!std::is_const_v<B>) { store_u8(buf_, 0, v); }
  constexpr void set_code(std::uint8_t v) noexcept requires(!std::is_const_v<B>) { store_u8(buf_, 1, v); }
  constexpr void set_checksum(std::uint16_t v) noexcept requires(!std::is_const_v<B>) { store_be16(buf_, 2, v); }
  constexpr void fill_checksum(const Ipv6Addr& src, const Ipv6Addr& dst) noexcept requires(!std::is_const_v<B>) {
    set_checksum(0);
    set_checksum(pseudo_header(src, dst, ip_proto::kIcmpv6, static_cast<std::uint32_t>(buf_.size())).add(buf_).finish());
  }

 private:
  constexpr explicit Icmpv6Packet(std::span<B> buf) noexcept : buf_(buf) {}
  std::span<B> buf_;
};

struct NdiscRepr {
  enum class Kind : std::uint8_t { kSolicit, kAdvert };
  // The advertisement's flags (RFC 4861 section 4.4).
  static constexpr std::uint8_t kRouterFlag = 0x80;
  static constexpr std::uint8_t kSolicitedFlag = 0x40;
  static constexpr std::uint8_t kOverrideFlag = 0x20;
  // A link-layer address option for Ethernet: type, length 1 (8 bytes),
  // the MAC (RFC 2464 section 6).
  static constexpr std::size_t kLinkAddrOptionLen = 8;

  Kind kind = Kind::kSolicit;
  Ipv6Addr target;
  // The solicitation's source link-layer address, the advertisement's
  // target link-layer address; absent when the option is.
  std::optional<MacAddr> link_addr;
  bool router = false;     // advertisements only
  bool solicited = false;
  bool override_entry = false;

  // A message that is no solicitation or advertisement is kUnsupported.
  // Then the validity checks of RFC 4861 sections 7.1.1 and 7.1.2, in
  // Linux's order (icmpv6_rcv's checksum, then ndisc_rcv's): the checksum
  // (kBadChecksum), hop limit 255 and code 0 (kMalformed), 24 bytes at
  // least (kTruncated), a target that is not multicast, options of
  // non-zero length within the message, a solicitation from the
  // unspecified address sent to a solicited-node address and without a
  // source link-layer option, an advertisement to a multicast address
  // without the solicited flag (each kMalformed). Options other than the
  // message's link-layer option are skipped, as section 4.6 asks; a
  // link-layer option of another length than Ethernet's is not read.
  [[nodiscard]] static Result<NdiscRepr> parse(const Icmpv6Packet<const std::byte>& p, const Ipv6Repr& ip) noexcept {
    const std::uint8_t type = p.type();
    if (type != icmpv6_type::kNeighbourSolicit && type != icmpv6_type::kNeighbourAdvert)
      return fail(Errc::kUnsupported);
    if (!p.verify_checksum(ip.src, ip.dst)) return fail(Errc::kBadChecksum);
    if (ip.hop_limit != Ipv6Repr::kNdiscHopLimit || p.code() != 0) return fail(Errc::kMalformed);
    if (p.size() < Icmpv6Packet<const std::byte>::kNdiscLen) return fail(Errc::kTruncated);
    NdiscRepr r;
    r.kind = type == icmpv6_type::kNeighbourSolicit ? Kind::kSolicit : Kind::kAdvert;
    r.target = p.ndisc_target();
    if (r.target.is_multicast()) return fail(Errc::kMalformed);
    const std::uint8_t want = r.kind == Kind::kSolicit ? ndisc_option::kSourceLinkAddr : ndisc_option::kTargetLinkAddr;
    bool has_link_option = false;
    auto opts = p.ndisc_options();
    while (!opts.empty()) {
      if (opts.size() < 2) return fail(Errc::kMalformed);
      const std::size_t len = std::size_t{load_u8(opts, 1)} * 8;
      if (len == 0 || len > opts.size()) return fail(Errc::kMalformed);
      if (load_u8(opts, 0) == want) {
        has_link_option = true;
        if (len == kLinkAddrOptionLen) r.link_addr = MacAddr::from_bytes(opts.subspan(2, MacAddr::kLen));
      }
      opts = opts.subspan(len);
    }
    if (r.kind == Kind::kSolicit) {
      // A solicitation from :: is duplicate address detection's (RFC 4862).
      if (ip.src.is_unspecified() && (ip.dst != r.target.solicited_node() || has_link_option))
        return fail(Errc::kMalformed);
      return r;
    }
    const std::uint8_t flags = p.ndisc_flags();
    r.router = (flags & kRouterFlag) != 0;
    r.solicited = (flags & kSolicitedFlag) != 0;
    r.override_entry = (flags & kOverrideFlag) != 0;
    if (ip.dst.is_multicast() && r.solicited) return fail(Errc::kMalformed);
    return r;
  }

  constexpr std::size_t buffer_len() const noexcept {
    return Icmpv6Packet<std::byte>::kNdiscLen + (link_addr ? kLinkAddrOptionLen : 0);
  }

  // Writes the message with its checksum for `ip`'s addresses at the start
  // of `buf`; returns the bytes written. Precondition: buf holds
  // buffer_len() bytes. Context: any.
  std::span<std::byte> emit(std::span<std::byte> buf, const Ipv6Addr& src, const Ipv6Addr& dst) const noexcept {
    NP_ASSERT(buf.size() >= buffer_len());
    auto out = buf.first(buffer_len());
    auto p = Icmpv6Packet<std::byte>::new_unchecked(out);
    const bool solicit = kind == Kind::kSolicit;
    p.set_type(solicit ? icmpv6_type::kNeighbourSolicit : icmpv6_type::kNeighbourAdvert);
    p.set_code(0);
    const std::uint8_t flags = solicit ? 0
                                       : static_cast<std::uint8_t>((router ? kRouterFlag : 0) |
                                                                   (solicited ? kSolicitedFlag : 0) |
                                                                   (override_entry ? kOverrideFlag : 0));
    store_be32(out, 4, std::uint32_t{flags} << 24);
    for (std::size_t i = 0; i < Ipv6Addr::kLen; ++i) out[8 + i] = target.bytes()[i];
    if (link_addr) {
      store_u8(out, 24, solicit ? ndisc_option::kSourceLinkAddr : ndisc_option::kTargetLinkAddr);
      store_u8(out, 25, 1);
      for (std::size_t i = 0; i < MacAddr::kLen; ++i) out[26 + i] = link_addr->bytes()[i];
    }
    p.fill_checksum(src, dst);
    return out;
  }

  friend bool operator==(const NdiscRepr&, const NdiscRepr&) = default;
};

}  // namespace np::wire
