// Fuzzes the IPv4 view and Repr: no crash on any header (options,
// fragments, lying length fields), and a parsed header re-emits to one that
// parses back to the same Repr with a verifying checksum.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "netpoll/wire/ipv4.h"

using namespace np;
using namespace np::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  auto p = Ipv4Packet<const std::byte>::check(in);
  if (!p) return 0;
  if (p->header_len() < 20 || p->total_len() > size) std::abort();
  (void)p->options();
  (void)p->payload();
  (void)p->verify_checksum();
  auto repr = Ipv4Repr::parse(*p);
  if (!repr) return 0;
  if (p->has_options() || p->is_fragment()) std::abort();
  std::vector<std::byte> out(repr->buffer_len());
  repr->emit(out);
  auto q = Ipv4Packet<const std::byte>::check(out);
  if (!q || !q->verify_checksum()) std::abort();
  auto again = Ipv4Repr::parse(*q);
  if (!again || !(*again == *repr)) std::abort();
  return 0;
}
