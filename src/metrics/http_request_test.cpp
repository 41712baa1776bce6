#include "netpoll/metrics/http_request.h"

#include <gtest/gtest.h>

namespace np::metrics {
namespace {

TEST(HttpRequest, ReadsTheMethodAndThePathWithoutItsQuery) {
  const auto r = parse_request_head("GET /metrics?name[]=x HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->path, "/metrics");
  const auto h = parse_request_head("HEAD / HTTP/1.0\n\n");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->method, "HEAD");
  EXPECT_EQ(h->path, "/");
}

TEST(HttpRequest, RefusesAHeadThatIsNotWholeOrHasNoRequestLine) {
  EXPECT_FALSE(parse_request_head("GET /metrics HTTP/1.1\r\n"));  // no blank line yet
  EXPECT_FALSE(parse_request_head("GET\r\n\r\n"));
  EXPECT_FALSE(parse_request_head("GET /metrics\r\n\r\n"));       // no version
  EXPECT_FALSE(parse_request_head(" /metrics HTTP/1.1\r\n\r\n"));  // no method
  EXPECT_FALSE(parse_request_head("GET  HTTP/1.1\r\n\r\n"));       // no path
  // A path is not looked for past the request line.
  EXPECT_FALSE(parse_request_head("GET\r\nX: /metrics y\r\n\r\n"));
  EXPECT_FALSE(parse_request_head(""));
}

}  // namespace
}  // namespace np::metrics
