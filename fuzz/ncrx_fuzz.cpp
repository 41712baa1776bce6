// Fuzzes parse_ncrx, the reader of a receiver's reliable-mode response
// ("ncrxACK [MISSING...]"), on arbitrary bytes: no crash; when it accepts,
// formatting what it read gives a response that parses to the same
// acknowledgement and to the missing numbers that fit in one response.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "netpoll/wire/netconsole.h"

namespace nc = np::wire::netconsole;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::uint64_t ack = 0;
  std::vector<std::uint64_t> missing;
  if (!nc::parse_ncrx(in, ack, [&](std::uint64_t s) { missing.push_back(s); })) return 0;
  char out[nc::kMaxDatagram];
  const std::size_t n = nc::format_ncrx(ack, missing, out);
  if (n == 0) std::abort();  // "ncrx" and one number always fit
  std::uint64_t ack2 = 0;
  std::vector<std::uint64_t> missing2;
  if (!nc::parse_ncrx(std::string_view(out, n), ack2, [&](std::uint64_t s) { missing2.push_back(s); })) std::abort();
  if (ack2 != ack || missing2.size() > missing.size()) std::abort();
  for (std::size_t i = 0; i < missing2.size(); ++i) {
    if (missing2[i] != missing[i]) std::abort();
  }
  return 0;
}
