// Fuzzes the debugnet header and ack (wire/debugnet.h). No crash on any
// input; the checks say exactly what the header comment promises (4 bytes
// are an ack and nothing else; a message is a whole header and len bytes);
// a message that parses re-emits, into a dirty buffer, to the same facts.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "netpoll/wire/debugnet.h"

using namespace np;
using namespace np::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  const auto ack = parse_debugnet_ack(in);
  if (ack.has_value() != (size == debugnet::kAckLen)) std::abort();
  if (ack) {
    std::byte out[8];
    std::fill(std::begin(out), std::end(out), std::byte{0xa5});
    const auto e = emit_debugnet_ack(*ack, out);
    if (e.size() != 4 || !std::equal(e.begin(), e.end(), in.begin()) || out[4] != std::byte{0xa5}) std::abort();
  }
  // netpoll's range ack: exactly 8 bytes, a run a window long at most,
  // never also a plain ack; it re-emits to the same bytes.
  if (const auto range = parse_debugnet_ack_range(in)) {
    if (size != debugnet::kAckRangeLen || ack || range->first == 0 || range->first > range->last ||
        range->last - range->first >= debugnet::kMaxInFlight)
      std::abort();
    std::byte out[12];
    std::fill(std::begin(out), std::end(out), std::byte{0xa5});
    const auto e = emit_debugnet_ack_range(*range, out);
    if (e.size() != 8 || !std::equal(e.begin(), e.end(), in.begin()) || out[8] != std::byte{0xa5}) std::abort();
  }
  const auto m = DebugnetMessage<const std::byte>::check(in);
  if (size < DebugnetMessage<const std::byte>::kHeaderLen) {
    if (m) std::abort();
    return 0;
  }
  if (!m) return 0;
  if (ack) std::abort();  // never both
  if (m->len() > size - 24 || m->payload().size() != m->len() || m->payload().data() != in.data() + 24) std::abort();
  const auto r = DebugnetRepr::parse(*m);
  if (r.has_value() != (m->type() >= debugnet::kHerald && m->type() <= debugnet::kData)) std::abort();
  if (!r) return 0;
  std::vector<std::byte> out(r->buffer_len() + 3, std::byte{0xa5});
  const auto e = r->emit(out);
  if (e.size() != r->buffer_len() || out[r->buffer_len()] != std::byte{0xa5}) std::abort();
  // The same bytes as the input's header and payload (trailing bytes aside).
  if (!std::equal(e.begin(), e.end(), in.begin())) std::abort();
  const auto again = DebugnetRepr::parse(*DebugnetMessage<const std::byte>::check(e));
  if (!again || again->type != r->type || again->seqno != r->seqno || again->offset != r->offset ||
      again->aux2 != r->aux2 || !std::equal(again->payload.begin(), again->payload.end(), r->payload.begin(), r->payload.end()))
    std::abort();
  return 0;
}
