// Fuzzes the ARP view and Repr (RFC 826 with any address sizes): no crash,
// no read past the buffer, and parse -> emit -> parse is the identity.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "netpoll/wire/arp.h"

using namespace np;
using namespace np::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  auto p = ArpPacket<const std::byte>::check(in);
  if (!p) return 0;
  if (p->len() > size) std::abort();
  (void)p->source_hw_addr();
  (void)p->target_proto_addr();
  auto repr = ArpRepr::parse(*p);
  if (!repr) return 0;
  std::vector<std::byte> out(ArpRepr::buffer_len());
  repr->emit(out);
  auto again = ArpRepr::parse(*ArpPacket<const std::byte>::check(out));
  if (!again || !(*again == *repr)) std::abort();
  return 0;
}
