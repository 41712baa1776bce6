#include "netpoll/core/stats.h"

#include <cstdio>

namespace np::core {

const char* to_string(RxDrop r) noexcept {
  switch (r) {
    case RxDrop::kRunt: return "runt";
    case RxDrop::kOtherHost: return "other_host";
    case RxDrop::kNotIpv4: return "not_ipv4";
    case RxDrop::kIpTruncated: return "ip_truncated";
    case RxDrop::kIpHeader: return "ip_header";
    case RxDrop::kIpChecksum: return "ip_checksum";
    case RxDrop::kIpLength: return "ip_length";
    case RxDrop::kIpFragment: return "ip_fragment";
    case RxDrop::kIpOptions: return "ip_options";
    case RxDrop::kNotUdp: return "not_udp";
    case RxDrop::kUdpTruncated: return "udp_truncated";
    case RxDrop::kUdpLength: return "udp_length";
    case RxDrop::kUdpChecksum: return "udp_checksum";
    case RxDrop::kNoClient: return "no_client";
    case RxDrop::kArpMalformed: return "arp_malformed";
    case RxDrop::kArpIgnored: return "arp_ignored";
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

void JsonWriter::comma() {
  if (!first_) out_ += ',';
  first_ = false;
}

void JsonWriter::key(const char* k) {
  comma();
  if (k != nullptr) {
    out_ += '"';
    out_ += k;
    out_ += "\":";
  }
}

JsonWriter& JsonWriter::begin_object(const char* k) {
  key(k);
  out_ += '{';
  first_ = true;
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  out_ += '}';
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::field(const char* k, std::uint64_t v) {
  key(k);
  out_ += std::to_string(v);
  return *this;
}

JsonWriter& JsonWriter::field_bool(const char* k, bool v) {
  key(k);
  out_ += v ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::field(const char* k, const std::string& v) {
  key(k);
  out_ += '"';
  for (const char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out_ += '\\';
      out_ += c;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out_ += buf;
    } else {
      out_ += c;
    }
  }
  out_ += '"';
  return *this;
}

}  // namespace np::core
