// Fuzzes the IPv6 view and Repr and UDP over IPv6 behind them: no crash on
// any header (extension headers, lying payload lengths); a header that
// parses re-emits to one that parses back to the same Repr; a UDP datagram
// after it that parses re-emits with a checksum that verifies, never zero.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "netpoll/wire/ipv6.h"
#include "netpoll/wire/udp.h"

using namespace np;
using namespace np::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  auto p = Ipv6Packet<const std::byte>::check(in);
  if (!p) return 0;
  if (p->version() != 6 || 40u + p->payload_len() > size) std::abort();
  auto repr = Ipv6Repr::parse(*p);
  if (!repr) {
    if (!p->has_extension_header()) std::abort();
    return 0;
  }
  std::vector<std::byte> out(repr->buffer_len());
  repr->emit(out);
  auto again = Ipv6Repr::parse(*Ipv6Packet<const std::byte>::check(out));
  if (!again || !(*again == *repr)) std::abort();

  if (repr->next_header != ip_proto::kUdp) return 0;
  auto u = UdpPacket<const std::byte>::check(p->payload());
  if (!u) return 0;
  auto udp = UdpRepr::parse(*u, repr->src, repr->dst);
  if (!udp) return 0;
  if (u->checksum() == 0) std::abort();  // RFC 8200 section 8.1
  std::vector<std::byte> dgram(udp->buffer_len());
  udp->emit(dgram, repr->src, repr->dst);
  auto q = UdpPacket<const std::byte>::check(dgram);
  if (!q || q->checksum() == 0 || !q->verify_checksum(repr->src, repr->dst)) std::abort();
  auto back = UdpRepr::parse(*q, repr->src, repr->dst);
  if (!back || !std::equal(back->payload.begin(), back->payload.end(), udp->payload.begin(), udp->payload.end()))
    std::abort();
  return 0;
}
