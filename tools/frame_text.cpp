#include "frame_text.h"

#include <cstdio>
#include <string_view>

#include "cli.h"
#include "netpoll/wire/arp.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/udp.h"

namespace np::tools {
namespace {

using namespace np::wire;

std::string hex16(std::uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", v);
  return buf;
}

std::string describe_arp(std::span<const std::byte> bytes) {
  auto p = ArpPacket<const std::byte>::check(bytes);
  if (!p) return std::string("ARP ") + to_string(p.error());
  auto r = ArpRepr::parse(*p);
  if (!r) return "ARP unsupported (hw " + std::to_string(p->hardware_type()) + ", op " +
                 std::to_string(p->operation()) + ")";
  if (r->op == ArpOp::kRequest) {
    return "ARP request who-has " + r->target_ip.to_string() + " tell " + r->source_ip.to_string();
  }
  return "ARP reply " + r->source_ip.to_string() + " is-at " + r->source_mac.to_string();
}

std::string describe_ipv4(std::span<const std::byte> bytes, std::size_t max_payload) {
  auto p = Ipv4Packet<const std::byte>::check(bytes);
  if (!p) return std::string("IPv4 ") + to_string(p.error());
  auto r = Ipv4Repr::parse(*p);
  std::string s = "IPv4 ";
  if (!r) {
    return s + p->src().to_string() + " > " + p->dst().to_string() + " " + to_string(r.error());
  }
  if (r->protocol != ip_proto::kUdp) {
    return s + r->src.to_string() + " > " + r->dst.to_string() + " proto " + std::to_string(r->protocol) + " " +
           std::to_string(r->payload_len) + " bytes";
  }
  auto u = UdpPacket<const std::byte>::check(p->payload());
  if (!u) return s + r->src.to_string() + " > " + r->dst.to_string() + " UDP " + to_string(u.error());
  s += r->src.to_string() + ":" + std::to_string(u->src_port()) + " > " + r->dst.to_string() + ":" +
       std::to_string(u->dst_port()) + " UDP ";
  auto ur = UdpRepr::parse(*u, r->src, r->dst);
  if (!ur) return s + to_string(ur.error());
  const std::string_view text(reinterpret_cast<const char*>(ur->payload.data()), ur->payload.size());
  return s + std::to_string(ur->payload.size()) + ": " + printable(text, max_payload);
}

}  // namespace

std::string describe_frame(std::span<const std::byte> frame, std::size_t max_payload) {
  auto f = EthernetFrame<const std::byte>::check(frame);
  if (!f) return "runt frame of " + std::to_string(frame.size()) + " bytes";
  std::string s = f->src().to_string() + " > " + f->dst().to_string() + " ";
  switch (f->ethertype()) {
    case ethertype::kArp: return s + describe_arp(f->payload());
    case ethertype::kIpv4: return s + describe_ipv4(f->payload(), max_payload);
    case ethertype::kIpv6: return s + "IPv6 " + std::to_string(f->payload().size()) + " bytes";
    default: return s + "ethertype " + hex16(f->ethertype()) + " " + std::to_string(f->payload().size()) + " bytes";
  }
}

}  // namespace np::tools
