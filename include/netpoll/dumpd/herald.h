// The herald's description: what a netdump client says about the dump it
// is about to send (wire/debugnet.h, HERALD's payload).
//
// The payload is "key=value" lines of printable ASCII, each ended by '\n'.
// Known keys: kind (crash | live | kernel), program, pid, signal, threads,
// size (the file's length in bytes), host, acks (ranges: the client takes
// range acknowledgements, wire/debugnet.h; another word is not an error,
// the client gets plain acks). Unknown keys are skipped, so a newer client
// may say more. Every key is optional; a missing number is 0
// and a missing name is empty.
//
// The parser is strict, because the bytes come from anyone who can reach
// the herald port and the names end up in file names and log lines:
//  - at most kMaxDescription bytes, every byte printable ASCII or '\n',
//    the last one '\n' (a cut-off payload is refused, not guessed at);
//  - a line without '=' or with an empty key is refused;
//  - a known key given twice is refused;
//  - numbers are decimal digits only, without sign or leading '+', within
//    their range (pid and threads < 2^31, signal < 128, size < 2^63);
//  - names (program, host) hold at most kMaxName bytes;
//  - kind is one of the three words.
// Nothing here allocates beyond DumpInfo's strings, which are bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "netpoll/base/result.h"

namespace np::dumpd {

inline constexpr std::size_t kMaxDescription = 2048;
inline constexpr std::size_t kMaxName = 255;
// A name as it goes into a file name (sanitised_name()).
inline constexpr std::size_t kMaxFileName = 64;

struct DumpInfo {
  std::string kind;     // crash, live or kernel; empty when not said
  std::string program;  // as sent: printable ASCII, at most kMaxName bytes
  std::string host;     // likewise
  std::uint32_t pid = 0;
  std::uint32_t signal = 0;
  std::uint32_t threads = 0;
  std::uint64_t size = 0;  // the file's length as announced; 0: not said
  bool range_acks = false;  // acks=ranges: one range ack may answer a run of packets
};

// Parses a herald's payload. kTooBig: longer than kMaxDescription;
// kMalformed: anything else the rules above refuse. Context: setup (it
// fills DumpInfo's strings; never more than kMaxName bytes each).
[[nodiscard]] Result<DumpInfo> parse_description(std::span<const std::byte> payload);

// The description as a client writes it (tests and tools; keys in the
// order above, zero numbers and empty names left out). Context: setup.
std::string format_description(const DumpInfo& info);

// `name` made safe as one component of a file name: letters, digits and
// "._+-" are kept, every other byte becomes '_', a leading '.' becomes '_'
// (never "." or ".." or a hidden file), at most kMaxFileName bytes; an empty
// name becomes `fallback`. Context: setup.
std::string sanitised_name(std::string_view name, std::string_view fallback = "unknown");

}  // namespace np::dumpd
