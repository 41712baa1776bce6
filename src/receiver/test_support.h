// Helpers shared by the receiver tests (src/receiver/*_test.cpp): sockets
// on the loopback interface of the test's own namespace, on ports the
// kernel picks, and records to feed.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "netpoll/listen/source.h"
#include "netpoll/receiver/output.h"

namespace np::receiver::test {

// 2026-11-22T05:12:01.123456Z (Python's calendar.timegm((2026, 11, 22, 5, 12, 1))).
inline constexpr std::int64_t kWhenUs = 1795324321123456;
inline constexpr std::string_view kWhen = "2026-11-22T05:12:01.123456Z";
// A datagram from 10.77.0.2:6665 received at kWhen.
inline const FormatContext kContext{"10.77.0.2:6665", kWhenUs};

inline np::listen::Record record(std::uint64_t seq, std::string_view text) {
  np::listen::Record r;
  r.seq = seq;
  r.facility = 3;  // daemon
  r.level = 3;     // err
  r.timestamp_us = 1000 + seq;
  r.text = text;
  return r;
}

// A socket bound to 127.0.0.1 on a port the kernel chose.
class LoopbackSocket {
 public:
  explicit LoopbackSocket(int type) : fd_(::socket(AF_INET, type | SOCK_CLOEXEC, 0)) {
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind_ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    if (type == SOCK_STREAM) ::listen(fd_, 8);
  }
  // Binds a new socket to a port given back by another (SO_REUSEADDR).
  LoopbackSocket(int type, std::uint16_t port) : fd_(::socket(AF_INET, type | SOCK_CLOEXEC, 0)), port_(port) {
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    bind_ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (type == SOCK_STREAM) ::listen(fd_, 8);
  }
  ~LoopbackSocket() { close(); }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;

  bool ok() const { return fd_ >= 0 && bind_ok_; }
  int fd() const { return fd_; }
  std::uint16_t port() const { return port_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send_to(std::uint16_t port, std::string_view data) const {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return ::sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) ==
           static_cast<ssize_t>(data.size());
  }

  // The next datagram within `timeout`, or nothing.
  std::optional<std::string> receive(std::chrono::milliseconds timeout) const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    std::string buf(65536, '\0');
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }

  // A listening socket's first connection, read until `want` bytes came
  // or `timeout` passed.
  std::string accept_and_read(std::size_t want, std::chrono::milliseconds timeout) const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return {};
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return {};
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
      pollfd q{c, POLLIN, 0};
      if (::poll(&q, 1, 50) != 1) continue;
      char buf[4096];
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    ::close(c);
    return got;
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  bool bind_ok_ = false;
};

}  // namespace np::receiver::test
