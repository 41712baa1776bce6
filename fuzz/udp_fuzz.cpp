// Fuzzes the UDP view and Repr. The first 8 input bytes are the pseudo-
// header's source and destination addresses, the rest is the datagram.
// No crash on any input; a datagram that parses re-emits byte-identical
// payload with a checksum that verifies.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "netpoll/wire/udp.h"

using namespace np;
using namespace np::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 8) return 0;
  const std::span<const std::byte> all(reinterpret_cast<const std::byte*>(data), size);
  const Ipv4Addr src = Ipv4Addr::from_bytes(all.subspan(0, 4));
  const Ipv4Addr dst = Ipv4Addr::from_bytes(all.subspan(4, 4));
  auto p = UdpPacket<const std::byte>::check(all.subspan(8));
  if (!p) return 0;
  if (p->length() < 8 || p->length() > size - 8) std::abort();
  auto repr = UdpRepr::parse(*p, src, dst);
  if (!repr) return 0;
  std::vector<std::byte> out(repr->buffer_len());
  repr->emit(out, src, dst);
  auto q = UdpPacket<const std::byte>::check(out);
  if (!q || !q->verify_checksum(src, dst) || q->checksum() == 0) std::abort();
  auto again = UdpRepr::parse(*q, src, dst);
  if (!again || again->src_port != repr->src_port || again->dst_port != repr->dst_port ||
      !std::equal(again->payload.begin(), again->payload.end(), repr->payload.begin(), repr->payload.end()))
    std::abort();
  return 0;
}
