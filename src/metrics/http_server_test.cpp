#include "netpoll/metrics/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace np::metrics {
namespace {

// Sends `request` to 127.0.0.1:port and returns all the server answers.
std::string http_exchange(std::uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return answer;
}

TEST(HttpServer, AnswersGetMetricsWithThePageMadeAtEachScrape) {
  int scrapes = 0;
  auto s = HttpServer::start("127.0.0.1:0", [&scrapes] { return "x_total " + std::to_string(++scrapes) + "\n"; });
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_NE((*s)->port(), 0);
  EXPECT_EQ(http_exchange((*s)->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 10\r\n"
            "Connection: close\r\n\r\nx_total 1\n");
  EXPECT_NE(http_exchange((*s)->port(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n").find("\r\n\r\nx_total 2\n"),
            std::string::npos);
  EXPECT_EQ((*s)->requests(), 2u);
}

TEST(HttpServer, RefusesOtherPathsAndMethods) {
  auto s = HttpServer::start("127.0.0.1:0", [] { return std::string("page\n"); });
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(http_exchange((*s)->port(), "GET /other HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u);
  EXPECT_EQ(http_exchange((*s)->port(), "POST /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0),
            0u);
  const std::string head = http_exchange((*s)->port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_NE(head.find("Content-Length: 5\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << head;  // no body
}

TEST(HttpServer, ClosesAClientThatSendsNoWholeRequest) {
  auto s = HttpServer::start("127.0.0.1:0", [] { return std::string("page\n"); });
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(http_exchange((*s)->port(), "GET /metrics HTTP/1.1\r\n"), "");  // after its second
  EXPECT_EQ(http_exchange((*s)->port(), std::string(9000, 'x')), "");
  EXPECT_EQ((*s)->requests(), 0u);
}

TEST(HttpServer, RefusesAnAddressItCannotUse) {
  for (const char* bad : {"9466", "localhost:9466", "::1:9466", "127.0.0.1:70000", "127.0.0.1:"}) {
    auto s = HttpServer::start(bad, [] { return std::string(); });
    ASSERT_FALSE(s) << bad;
    EXPECT_EQ(s.error().message.rfind(std::string("metrics address '") + bad + "': ", 0), 0u) << s.error().message;
  }
  auto v6 = HttpServer::start("[::1]:0", [] { return std::string(); });
  ASSERT_TRUE(v6) << v6.error().message;
}

}  // namespace
}  // namespace np::metrics
