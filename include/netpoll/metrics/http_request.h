// The request line of an HTTP/1.x request, as the metrics endpoint
// (http_server.h) reads it from whoever connects: "METHOD PATH HTTP/x.y",
// the head ended by a blank line. Only what the endpoint acts on is kept:
// the method and the path without its query string. Views into `head`.
//
// Context: any (no allocation).
#pragma once

#include <optional>
#include <string_view>

namespace np::metrics {

struct HttpRequest {
  std::string_view method;
  std::string_view path;  // the query string ("?...") left out
};

// The request of a whole head (it holds "\r\n\r\n" or "\n\n"), or nothing
// when its first line has no method and path separated by single spaces.
// Context: any.
[[nodiscard]] std::optional<HttpRequest> parse_request_head(std::string_view head) noexcept;

// True once `received` holds a whole head (its blank line). Context: any.
[[nodiscard]] bool head_complete(std::string_view received) noexcept;

}  // namespace np::metrics
