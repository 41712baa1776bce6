#include "netpoll/metrics/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "netpoll/metrics/http_request.h"


namespace np::metrics {
namespace {

constexpr std::size_t kMaxRequest = 8 << 10;
constexpr auto kRequestTimeout = std::chrono::seconds(1);
constexpr int kStopPollMs = 100;  // how soon the destructor is heard

struct Endpoint {
  sockaddr_storage sa{};
  socklen_t len = 0;
};

// "IPV4:PORT" or "[IPV6]:PORT", numeric.
SetupResult<Endpoint> parse_endpoint(std::string_view text) {
  const auto bad = [&](const char* why) {
    return setup_error(Errc::kInvalidArgument, "metrics address '" + std::string(text) + "': " + why);
  };
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("expected ADDR:PORT, e.g. 127.0.0.1:9466 or [::1]:9466");
  std::string host(text.substr(0, colon));
  const std::string port_text(text.substr(colon + 1));
  char* end = nullptr;
  const unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || port > 65535) return bad("the port must be 0..65535");
  Endpoint e;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    auto& v6 = reinterpret_cast<sockaddr_in6&>(e.sa);
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6.sin6_addr) != 1)
      return bad("not an IPv6 address in brackets");
    e.len = sizeof v6;
  } else {
    auto& v4 = reinterpret_cast<sockaddr_in&>(e.sa);
    v4.sin_family = AF_INET;
    v4.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET, host.c_str(), &v4.sin_addr) != 1)
      return bad("not an IPv4 address (an IPv6 one goes in brackets)");
    e.len = sizeof v4;
  }
  return e;
}

std::string response(std::string_view status, std::string_view type, std::string_view body, bool with_body) {
  std::string r = "HTTP/1.1 ";
  r.append(status).append("\r\nContent-Type: ").append(type);
  r.append("\r\nContent-Length: ").append(std::to_string(body.size())).append("\r\nConnection: close\r\n\r\n");
  if (with_body) r.append(body);
  return r;
}

}  // namespace

SetupResult<std::unique_ptr<HttpServer>> HttpServer::start(std::string_view address, Page page) {
  auto e = parse_endpoint(address);
  if (!e) return std::unexpected(e.error());
  const int fd = ::socket(e->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return setup_error(Errc::kIo, std::string("metrics: socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&e->sa), e->len) != 0 || ::listen(fd, 16) != 0) {
    const int err = errno;
    ::close(fd);
    return setup_error(Errc::kIo, "cannot serve metrics on " + std::string(address) + ": " + std::strerror(err));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  const std::uint16_t port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(bound).sin6_port
                                                               : reinterpret_cast<sockaddr_in&>(bound).sin_port);
  return std::unique_ptr<HttpServer>(new HttpServer(fd, port, std::move(page)));
}

HttpServer::HttpServer(int fd, std::uint16_t port, Page page) : fd_(fd), port_(port), page_(std::move(page)) {
  thread_ = std::thread([this] { run(); });
}

HttpServer::~HttpServer() {
  stop_.store(true);
  thread_.join();
  ::close(fd_);
}

void HttpServer::run() {
  while (!stop_.load()) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, kStopPollMs) <= 0) continue;
    const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    serve(client);
    ::close(client);
  }
}

void HttpServer::serve(int client) {
  // A scraper that stops reading cannot hold this thread: a send blocked
  // longer than a request may take gives up.
  const timeval limit{static_cast<time_t>(kRequestTimeout.count()), 0};
  ::setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  // The request's head, up to its blank line, within the time and size
  // allowed.
  std::string head;
  const auto deadline = std::chrono::steady_clock::now() + kRequestTimeout;
  while (!head_complete(head)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{client, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return;
    char buf[1024];
    const ssize_t n = ::recv(client, buf, sizeof buf, 0);
    if (n <= 0) return;
    head.append(buf, static_cast<std::size_t>(n));
    if (head.size() > kMaxRequest) return;
  }
  const auto request = parse_request_head(head);
  if (!request) return;
  const std::string_view method = request->method, path = request->path;
  requests_.add();
  const bool head_only = method == "HEAD";
  std::string answer;
  if (method != "GET" && !head_only) {
    answer = response("405 Method Not Allowed", "text/plain", "GET /metrics\n", true);
  } else if (path == "/metrics") {
    answer = response("200 OK", "text/plain; version=0.0.4; charset=utf-8", page_(), !head_only);
  } else if (path == "/") {
    answer = response("200 OK", "text/plain", "netpoll: the metrics are at /metrics\n", !head_only);
  } else {
    answer = response("404 Not Found", "text/plain", "not found: the metrics are at /metrics\n", !head_only);
  }
  // MSG_NOSIGNAL: a scraper that went away is no SIGPIPE for the owner.
  for (std::size_t off = 0; off < answer.size();) {
    const ssize_t n = ::send(client, answer.data() + off, answer.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace np::metrics
