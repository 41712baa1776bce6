#include "netpoll/metrics/http_request.h"

namespace np::metrics {

bool head_complete(std::string_view received) noexcept {
  return received.find("\r\n\r\n") != std::string_view::npos || received.find("\n\n") != std::string_view::npos;
}

std::optional<HttpRequest> parse_request_head(std::string_view head) noexcept {
  if (!head_complete(head)) return std::nullopt;
  // The request line alone: nothing past its end counts.
  const std::string_view line = head.substr(0, head.find('\n'));
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return std::nullopt;
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return std::nullopt;
  std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));
  return HttpRequest{line.substr(0, sp1), path};
}

}  // namespace np::metrics
