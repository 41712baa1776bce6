// parse_core_head (dump/core_head.h) on any bytes: the prefix of a core
// that `netpoll coredump` reads from the kernel's pipe. No input may read
// out of bounds, and what the parse reports must hold together.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "netpoll/dump/core_head.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace np::dump;
  const auto bytes = std::as_bytes(std::span(data, size));
  const auto h = parse_core_head(bytes);
  if (!h) {
    if (size >= 64 && h.error() == np::Errc::kTruncated) std::abort();
    return 0;
  }
  if (size < 64 || h->needed < 64) std::abort();
  if (h->headers_read && h->segments != 0 && h->segments_read != h->segments) std::abort();
  if (h->size_known && (h->file_size > kMaxCoreOffset || h->file_size < 64)) std::abort();
  // Complete notes were all in the buffer (an empty segment may lie past it).
  if (h->notes == NoteState::kComplete && h->notes_size != 0 && h->notes_offset + h->notes_size > size) std::abort();
  if (h->notes != NoteState::kNone && h->needed < h->notes_offset + h->notes_size) std::abort();
  // Every thread is a note of at least a header and "CORE\0" padded.
  if (std::uint64_t{h->threads} * 20 > h->notes_size) std::abort();
  // Parsing a longer prefix never counts fewer threads.
  if (size > 64) {
    const auto shorter = parse_core_head(bytes.first(size - 1));
    if (shorter && h->notes != NoteState::kBroken && shorter->threads > h->threads) std::abort();
  }
  return 0;
}
