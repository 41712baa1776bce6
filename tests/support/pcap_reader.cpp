#include "pcap_reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/udp.h"

namespace np::testing {

std::vector<CapturedDatagram> read_udp_pcap(const std::string& path) {
  std::vector<CapturedDatagram> out;
  std::ifstream in(path, std::ios::binary);
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (file.size() < 24) {
    ADD_FAILURE() << "cannot read pcap file " << path;
    return out;
  }
  std::uint32_t magic = 0;
  std::memcpy(&magic, file.data(), 4);
  if (magic != 0xa1b2c3d4) {  // microsecond pcap, our byte order (little-endian captures)
    ADD_FAILURE() << path << ": not a little-endian classic pcap file";
    return out;
  }
  for (std::size_t at = 24; at + 16 <= file.size();) {
    std::uint32_t incl = 0;
    std::memcpy(&incl, file.data() + at + 8, 4);
    at += 16;
    if (at + incl > file.size()) break;
    const auto frame = std::as_bytes(std::span(file.data() + at, incl));
    at += incl;
    auto eth = wire::EthernetFrame<const std::byte>::check(frame);
    if (!eth || eth->ethertype() != wire::ethertype::kIpv4) continue;
    auto ip = wire::Ipv4Packet<const std::byte>::check(eth->payload());
    if (!ip || ip->protocol() != wire::ip_proto::kUdp) continue;
    auto udp = wire::UdpPacket<const std::byte>::check(ip->payload());
    if (!udp) continue;
    const auto p = udp->payload();
    out.push_back({std::string(reinterpret_cast<const char*>(p.data()), p.size()), ip->ident(), ip->ttl(),
                   ip->dont_frag(), udp->src_port(), udp->dst_port(), udp->checksum()});
  }
  return out;
}

std::string test_data(const std::string& name) { return std::string(NP_TEST_DATA_DIR) + "/" + name; }

}  // namespace np::testing
