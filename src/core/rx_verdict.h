// Private to core: wire's verdicts on a received frame, as drop reasons.
//
// The receive path lets wire make every check (in the order of Linux's
// __netpoll_rx: see each view's check()) and turns the error it gets into a
// reason here, in one table: one pass over the bytes, one truth about why.
// A protocol added beside the others adds its layer and its rows.
#pragma once

#include <cstdint>

#include "netpoll/base/result.h"
#include "netpoll/core/stats.h"

// Private to this layer: hidden, so that libnetpoll.so, which exports
// namespace np:: (src/library/exports.map), does not export it.
#pragma GCC visibility push(hidden)
namespace np::core::detail {

enum class Layer : std::uint8_t { kEthernet, kIpv4, kIpv6, kUdp, kArp, kNdisc, kDispatch };

struct Verdict {
  Layer layer;
  Errc error;
  RxDrop reason;
};

inline constexpr Verdict kVerdicts[] = {
    {Layer::kEthernet, Errc::kTruncated, RxDrop::kRunt},
    {Layer::kIpv4, Errc::kTruncated, RxDrop::kIpTruncated},
    {Layer::kIpv4, Errc::kBadVersion, RxDrop::kIpHeader},
    {Layer::kIpv4, Errc::kBadHeaderLen, RxDrop::kIpHeader},
    {Layer::kIpv4, Errc::kBadChecksum, RxDrop::kIpChecksum},
    {Layer::kIpv4, Errc::kBadLength, RxDrop::kIpLength},
    {Layer::kIpv4, Errc::kFragment, RxDrop::kIpFragment},
    {Layer::kIpv4, Errc::kHasOptions, RxDrop::kIpOptions},
    {Layer::kIpv6, Errc::kTruncated, RxDrop::kIpv6Truncated},
    {Layer::kIpv6, Errc::kBadVersion, RxDrop::kIpv6Header},
    {Layer::kIpv6, Errc::kBadLength, RxDrop::kIpv6Length},
    {Layer::kIpv6, Errc::kExtensionHeader, RxDrop::kIpv6ExtHeader},
    {Layer::kUdp, Errc::kTruncated, RxDrop::kUdpTruncated},
    {Layer::kUdp, Errc::kBadLength, RxDrop::kUdpLength},
    {Layer::kUdp, Errc::kBadChecksum, RxDrop::kUdpChecksum},
    {Layer::kUdp, Errc::kNoChecksum, RxDrop::kUdpNoChecksum},
    {Layer::kArp, Errc::kTruncated, RxDrop::kArpMalformed},
    {Layer::kArp, Errc::kUnsupported, RxDrop::kArpMalformed},
    {Layer::kNdisc, Errc::kTruncated, RxDrop::kNdMalformed},
    {Layer::kNdisc, Errc::kBadChecksum, RxDrop::kNdMalformed},
    {Layer::kNdisc, Errc::kMalformed, RxDrop::kNdMalformed},
    {Layer::kNdisc, Errc::kUnsupported, RxDrop::kIcmpv6Other},
    {Layer::kDispatch, Errc::kNoBuffer, RxDrop::kQueueFull},
    {Layer::kDispatch, Errc::kTooBig, RxDrop::kTooLong},
    {Layer::kDispatch, Errc::kNotFound, RxDrop::kNoHandler},
};

// The reason for `error` at `layer`. Every error wire's checks return is in
// the table (netpoll_test crafts a frame for every reason); an error a
// future wire change adds without a row here counts as the layer's
// catch-all reason rather than going uncounted.
constexpr RxDrop verdict(Layer layer, Errc error) noexcept {
  for (const auto& v : kVerdicts) {
    if (v.layer == layer && v.error == error) return v.reason;
  }
  switch (layer) {
    case Layer::kEthernet: return RxDrop::kRunt;
    case Layer::kIpv4: return RxDrop::kIpHeader;
    case Layer::kIpv6: return RxDrop::kIpv6Header;
    case Layer::kUdp: return RxDrop::kUdpLength;
    case Layer::kArp: return RxDrop::kArpMalformed;
    case Layer::kNdisc: return RxDrop::kNdMalformed;
    case Layer::kDispatch: return RxDrop::kQueueFull;
  }
  return RxDrop::kQueueFull;
}

}  // namespace np::core::detail
#pragma GCC visibility pop
