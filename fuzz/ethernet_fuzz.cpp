// Fuzzes the Ethernet view and Repr: no input may crash them, and whatever
// parses must emit and parse back to the same Repr.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "netpoll/wire/ethernet.h"

using namespace np;
using namespace np::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  auto frame = EthernetFrame<const std::byte>::check(in);
  if (!frame) return 0;
  (void)frame->dst().text();
  (void)frame->src();
  if (frame->payload().size() != size - 14) std::abort();
  auto repr = EthernetRepr::parse(*frame);
  if (!repr) return 0;
  std::vector<std::byte> out(EthernetRepr::header_len());
  repr->emit(out);
  auto again = EthernetRepr::parse(*EthernetFrame<const std::byte>::check(out));
  if (!again || !(*again == *repr)) std::abort();
  return 0;
}
