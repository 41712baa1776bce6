// Fuzzes the metrics endpoint's reading of a request head
// (metrics/http_request.h): whatever connects may send any bytes. No crash;
// a request found lies inside the head's first line, its method is not
// empty, neither holds a space, and the path holds no query string.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "netpoll/metrics/http_request.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view head(reinterpret_cast<const char*>(data), size);
  const auto r = np::metrics::parse_request_head(head);
  if (r.has_value() && !np::metrics::head_complete(head)) std::abort();
  if (!r) return 0;
  const std::string_view line = head.substr(0, head.find('\n'));
  const auto inside = [&](std::string_view part) {
    return part.data() >= line.data() && part.data() + part.size() <= line.data() + line.size();
  };
  if (r->method.empty()) std::abort();
  if (!inside(r->method) || !inside(r->path)) std::abort();
  if (r->method.find(' ') != std::string_view::npos || r->path.find(' ') != std::string_view::npos) std::abort();
  if (r->path.find('?') != std::string_view::npos) std::abort();
  return 0;
}
