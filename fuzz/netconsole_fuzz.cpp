// Fuzzes the netconsole extended-format parser, body splitter and
// unescaper: no input may crash them or read outside the datagram, a
// fragment's body must lie within its announced total, and unescape never
// writes more than it read.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "netpoll/wire/netconsole.h"

using namespace np::wire::netconsole;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string out(size, '\0');
  if (unescape(in, out) > size) std::abort();
  if (escaped_length(in) < size) std::abort();
  auto p = parse_extended(in);
  if (!p) return 0;
  if (p->body.data() < in.data() || p->body.data() + p->body.size() > in.data() + in.size()) std::abort();
  if (p->fragmented && p->frag_offset + p->body.size() > p->frag_total) std::abort();
  if (p->facility > 23) std::abort();
  std::size_t fields = 0;
  const auto text = split_body(p->body, [&](std::string_view k, std::string_view v) {
    if (k.find('\n') != std::string_view::npos || v.find('\n') != std::string_view::npos) std::abort();
    ++fields;
  });
  if (text.size() > p->body.size()) std::abort();
  return 0;
}
