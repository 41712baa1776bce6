// Reads the UDP payloads out of a classic pcap file of Ethernet frames
// (the Linux netconsole captures in tests/data/), using our wire parsers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace np::testing {

struct CapturedDatagram {
  std::string payload;
  std::uint16_t ip_ident = 0;
  std::uint8_t ttl = 0;
  bool dont_frag = false;
  std::uint16_t src_port = 0, dst_port = 0;
  std::uint16_t udp_checksum = 0;
};

// Every IPv4/UDP datagram in the file, in order. Fails the calling test
// (ADD_FAILURE) and returns what it has if the file cannot be read.
std::vector<CapturedDatagram> read_udp_pcap(const std::string& path);

// tests/data/<name>, found from the source tree this test was built from.
std::string test_data(const std::string& name);

}  // namespace np::testing
