#include "netpoll/core/stats.h"

namespace np::core {

const char* to_string(RxDrop r) noexcept {
  switch (r) {
    case RxDrop::kRunt: return "runt";
    case RxDrop::kOtherHost: return "other_host";
    case RxDrop::kNotIp: return "not_ip";
    case RxDrop::kIpTruncated: return "ip_truncated";
    case RxDrop::kIpHeader: return "ip_header";
    case RxDrop::kIpChecksum: return "ip_checksum";
    case RxDrop::kIpLength: return "ip_length";
    case RxDrop::kIpFragment: return "ip_fragment";
    case RxDrop::kIpOptions: return "ip_options";
    case RxDrop::kIpv6Truncated: return "ipv6_truncated";
    case RxDrop::kIpv6Header: return "ipv6_header";
    case RxDrop::kIpv6Length: return "ipv6_length";
    case RxDrop::kIpv6ExtHeader: return "ipv6_ext_header";
    case RxDrop::kNotUdp: return "not_udp";
    case RxDrop::kUdpTruncated: return "udp_truncated";
    case RxDrop::kUdpLength: return "udp_length";
    case RxDrop::kUdpChecksum: return "udp_checksum";
    case RxDrop::kUdpNoChecksum: return "udp_no_checksum";
    case RxDrop::kNoClient: return "no_client";
    case RxDrop::kArpMalformed: return "arp_malformed";
    case RxDrop::kArpIgnored: return "arp_ignored";
    case RxDrop::kNdMalformed: return "nd_malformed";
    case RxDrop::kNdIgnored: return "nd_ignored";
    case RxDrop::kIcmpv6Other: return "icmpv6_other";
    case RxDrop::kQueueFull: return "queue_full";
    case RxDrop::kTooLong: return "too_long";
    case RxDrop::kNoHandler: return "no_handler";
    case RxDrop::kCount: break;
  }
  return "unknown";
}

const char* to_string(TxDrop r) noexcept {
  switch (r) {
    case TxDrop::kTooBig: return "too_big";
    case TxDrop::kNoBuffer: return "no_buffer";
    case TxDrop::kQueueFull: return "queue_full";
    case TxDrop::kDeviceError: return "device_error";
    case TxDrop::kShutdown: return "shutdown";
    case TxDrop::kCount: break;
  }
  return "unknown";
}

}  // namespace np::core
