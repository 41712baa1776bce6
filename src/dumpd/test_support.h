// Helpers for the dumpd tests (src/dumpd/*_test.cpp): debugnet messages
// built with wire/debugnet.h's emit, as a client sends them, and a client's
// kernel UDP socket on loopback.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "netpoll/base/bytes.h"
#include "netpoll/wire/debugnet.h"

namespace np::dumpd::test {

namespace dn = np::wire::debugnet;

inline std::vector<std::byte> message(std::uint32_t type, std::uint32_t seqno, std::uint64_t offset,
                                      std::span<const std::byte> payload, std::uint32_t aux2 = 0) {
  const np::wire::DebugnetRepr r{type, seqno, offset, aux2, payload};
  std::vector<std::byte> out(r.buffer_len());
  r.emit(out);
  return out;
}

inline std::vector<std::byte> herald(std::uint32_t seqno, std::string_view description, std::uint32_t revision = 1) {
  return message(dn::kHerald, seqno, 0, as_bytes(description), revision);
}

inline std::vector<std::byte> data(std::uint32_t seqno, std::uint64_t offset, std::string_view bytes) {
  return message(dn::kData, seqno, offset, as_bytes(bytes));
}

inline std::vector<std::byte> finished(std::uint32_t seqno, std::uint64_t length, bool gave_up = false) {
  return message(dn::kFinished, seqno, length, {}, gave_up ? 1 : 0);
}

// A client's kernel UDP socket on 127.0.0.1 (a port the kernel picks, or
// `port`), speaking to the server on loopback.
class UdpPeer {
 public:
  explicit UdpPeer(std::uint16_t port = 0) : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~UdpPeer() {
    if (fd_ >= 0) ::close(fd_);
  }
  UdpPeer(const UdpPeer&) = delete;
  UdpPeer& operator=(const UdpPeer&) = delete;

  bool ok() const { return ok_; }
  std::uint16_t port() const { return port_; }

  bool send_to(std::uint16_t port, std::span<const std::byte> d) const {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return ::sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) ==
           static_cast<ssize_t>(d.size());
  }

  // Sends `d` as datagrams of `segment_size` bytes each (the last may be
  // shorter) in one system call (UDP_SEGMENT): over loopback they reach a
  // socket that asked for UDP_GRO as one datagram with the segment size.
  bool send_segments_to(std::uint16_t port, std::span<const std::byte> d, std::uint16_t segment_size) const {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    iovec iov{const_cast<std::byte*>(d.data()), d.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(std::uint16_t))]{};
    msghdr m{};
    m.msg_name = &a;
    m.msg_namelen = sizeof a;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    cmsghdr* cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = IPPROTO_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof segment_size);
    std::memcpy(CMSG_DATA(cm), &segment_size, sizeof segment_size);
    return ::sendmsg(fd_, &m, 0) == static_cast<ssize_t>(d.size());
  }

  struct Ack {
    std::uint32_t seqno;
    std::uint16_t from_port;
  };
  // The next datagram within `timeout` (poll(2), no blind sleep) if it is
  // an ack (4 bytes); anything else is skipped.
  std::optional<Ack> ack(std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() < 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      std::byte buf[64];
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const ssize_t n = ::recvfrom(fd_, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len);
      if (n == 4) return Ack{load_be32(std::span<const std::byte>(buf, 4), 0), ntohs(from.sin_port)};
    }
  }
  // Sends and waits for the ack of `seqno` (others skipped), resending
  // every 200 ms, up to `tries` times: the client's retransmission.
  std::optional<Ack> exchange(std::uint16_t port, std::span<const std::byte> d, std::uint32_t seqno,
                              int tries = 10) const {
    for (int t = 0; t < tries; ++t) {
      if (!send_to(port, d)) return std::nullopt;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
      while (std::chrono::steady_clock::now() < deadline) {
        auto a = ack(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
        if (a && a->seqno == seqno) return a;
      }
    }
    return std::nullopt;
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
  std::uint16_t port_ = 0;
};

}  // namespace np::dumpd::test
