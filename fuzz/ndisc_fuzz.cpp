// Fuzzes neighbour discovery's parser. The input is an IPv6 packet (the
// fixed header gives the addresses and hop limit the checks need); its
// payload is the ICMPv6 message. No crash on any message (options of any
// length, truncations); one that parses obeys RFC 4861's rules and
// re-emits to a message that parses back to the same Repr.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "netpoll/wire/ndisc.h"

using namespace np;
using namespace np::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  auto p = Ipv6Packet<const std::byte>::check(in);
  if (!p) return 0;
  auto ip = Ipv6Repr::parse(*p);
  if (!ip) return 0;
  auto icmp = Icmpv6Packet<const std::byte>::check(p->payload());
  if (!icmp) return 0;
  auto nd = NdiscRepr::parse(*icmp, *ip);
  if (!nd) return 0;
  if (ip->hop_limit != 255 || icmp->code() != 0 || nd->target.is_multicast() || icmp->size() < 24) std::abort();
  if (!icmp->verify_checksum(ip->src, ip->dst)) std::abort();
  std::vector<std::byte> out(nd->buffer_len());
  nd->emit(out, ip->src, ip->dst);
  auto again = NdiscRepr::parse(*Icmpv6Packet<const std::byte>::check(out), *ip);
  if (!again || !(*again == *nd)) std::abort();
  return 0;
}
