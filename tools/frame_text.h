// One-line, tcpdump-like descriptions of Ethernet frames, built with the
// wire layer's checked views. Used by `netpoll dump`.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace np::tools {

// e.g. "02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 10.0.0.1:6665 > 10.0.0.2:6666 UDP 7: netpoll"
//      "02:..:01 > ff:..:ff ARP request who-has 10.0.0.2 tell 10.0.0.1"
// A frame that fails a check says which ("IPv4 bad checksum").
std::string describe_frame(std::span<const std::byte> frame, std::size_t max_payload = 64);

}  // namespace np::tools
