// Frame-over-UDP tunnel (see udp_tunnel.h).
//
// Receive drains the socket with recvmmsg(2) into kBatch fixed buffers, so a
// burst costs one system call per kBatch frames and nothing is allocated
// after open. Each buffer is exactly mtu + 14 bytes: a longer datagram comes
// back with MSG_TRUNC and is dropped, never delivered cut short.
#include "netpoll/dev/udp_tunnel.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "posix.h"

namespace np::dev {
namespace {

// Frames handed over per recvmmsg call. 16 covers the seed's receive budget
// in one call; a larger budget just loops.
constexpr std::size_t kBatch = 16;

// Largest UDP payload over IPv4 (65535 - 20 - 8): the largest frame we can
// carry, so mtu + 14 must not exceed it.
constexpr std::size_t kMaxDatagram = 65507;

// Socket buffers we ask for: room for a few hundred full-size frames, so a
// burst from the peer is not lost while we are busy elsewhere. The kernel
// caps the request at net.core.{r,w}mem_max; a smaller buffer still works.
constexpr int kSocketBuffer = 1 << 20;

// Errors that report an ICMP "destination unreachable" for a datagram sent
// earlier (the kernel parks it on the connected socket until the next call).
bool is_unreachable(int err) noexcept {
  return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN;
}

struct Endpoint {
  Ipv4Addr ip;
  std::uint16_t port = 0;
};

// "IP:PORT" -> Endpoint, or the reason it is not one (quoting the bad part).
SetupResult<Endpoint> parse_endpoint(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return setup_error(Errc::kMalformed, "'" + std::string(text) + "' is not IP:PORT");
  }
  const std::string_view ip_text = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  const auto ip = Ipv4Addr::parse(ip_text);
  if (!ip) {
    return setup_error(Errc::kMalformed, "'" + std::string(ip_text) + "' in '" + std::string(text) +
                                             "' is not an IPv4 address");
  }
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return setup_error(Errc::kMalformed, "port '" + std::string(port_text) + "' in '" + std::string(text) +
                                             "' is not a number from 1 to 65535");
  }
  return Endpoint{*ip, static_cast<std::uint16_t>(port)};
}

sockaddr_in to_sockaddr(const Endpoint& e) noexcept {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(e.port);
  sa.sin_addr.s_addr = e.ip.to_network_u32();
  return sa;
}

class UdpTunnel final : public UdpTunnelDevice {
 public:
  UdpTunnel(std::string name, int fd, const MacAddr& mac, std::size_t mtu, const sockaddr_in& remote)
      : name_(std::move(name)),
        fd_(fd),
        fd_id_(fd),
        mac_(mac),
        mtu_(mtu),
        frame_max_(mtu + kEthHeaderLen),
        remote_(remote),
        rx_buf_(new std::byte[kBatch * frame_max_]) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      iov_[i].iov_base = rx_buf_.get() + i * frame_max_;
      iov_[i].iov_len = frame_max_;
      msgs_[i].msg_hdr.msg_iov = &iov_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
      msgs_[i].msg_hdr.msg_name = &from_[i];
    }
  }

  ~UdpTunnel() override {
    if (fd_ >= 0) ::close(fd_);  // one given up by revalidate() is someone else's now
  }

  // A lost socket is given up (a fresh one would send from another port,
  // which the far end may not take for ours): the device stops transmitting.
  bool revalidate() noexcept override {
    if (fd_ >= 0 && !fd_id_.same(fd_)) fd_ = -1;
    return fd_ >= 0;
  }

  std::size_t receive(std::size_t budget, FrameSink sink) noexcept override {
    ErrnoSaver keep_errno;  // may run inside a signal handler
    std::size_t delivered = 0;
    // Each unreachable report is consumed by the call that returns it, so
    // this loop ends; the bound keeps it obviously so.
    int reports_left = 2;
    while (delivered < budget) {
      const std::size_t want = std::min(budget - delivered, kBatch);
      for (std::size_t i = 0; i < want; ++i) {
        // Value-result fields: reset before every call.
        msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
        msgs_[i].msg_hdr.msg_flags = 0;
        msgs_[i].msg_len = 0;
      }
      const int n = ::recvmmsg(fd_, msgs_.data(), static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (is_unreachable(errno) && reports_left-- > 0) {
          tunnel_stats_.rx_refused.add();
          continue;
        }
        break;  // EAGAIN: nothing waiting. Anything else: try again next call.
      }
      for (int i = 0; i < n; ++i) {
        const mmsghdr& m = msgs_[static_cast<std::size_t>(i)];
        const sockaddr_in& from = from_[static_cast<std::size_t>(i)];
        const std::size_t len = m.msg_len;
        const bool from_remote = m.msg_hdr.msg_namelen == sizeof(sockaddr_in) && from.sin_family == AF_INET &&
                                 from.sin_addr.s_addr == remote_.sin_addr.s_addr &&
                                 from.sin_port == remote_.sin_port;
        if ((m.msg_hdr.msg_flags & MSG_TRUNC) != 0 || len < kEthHeaderLen || !from_remote) {
          stats_.rx_dropped.add();
          continue;
        }
        stats_.rx_frames.add();
        stats_.rx_bytes.add(len);
        ++delivered;
        sink(std::span<const std::byte>(rx_buf_.get() + static_cast<std::size_t>(i) * frame_max_, len));
      }
      if (static_cast<std::size_t>(n) < want) break;  // the socket is empty: spare the EAGAIN call
    }
    return delivered;
  }

  TxStatus transmit(std::span<const std::byte> frame) noexcept override {
    ErrnoSaver keep_errno;  // may run inside a signal handler
    if (frame.size() > frame_max_ || frame.size() < kEthHeaderLen) {
      stats_.tx_errors.add();
      return TxStatus::kError;
    }
    // At most two tries: the first may only collect an unreachable report
    // for an earlier frame (the kernel then sends nothing), the second
    // sends this one.
    for (int attempt = 0; attempt < 2; ++attempt) {
      const ssize_t n = ::send(fd_, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n == static_cast<ssize_t>(frame.size())) {
        stats_.tx_frames.add();
        stats_.tx_bytes.add(frame.size());
        return TxStatus::kOk;
      }
      const int err = n < 0 ? errno : EMSGSIZE;  // a short datagram send cannot happen
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
        stats_.tx_busy.add();
        return TxStatus::kBusy;
      }
      if (err == EINTR) continue;
      if (is_unreachable(err)) {
        tunnel_stats_.tx_refused.add();
        if (attempt == 0) continue;
        if (err == ECONNREFUSED) {
          // A second report arrived between our two tries: the peer is
          // still not listening, and this frame goes into the void like the
          // earlier ones. Taking it (kOk) is what a cable with nobody on the
          // far end does; answering kBusy would have callers retry forever.
          stats_.tx_frames.add();
          stats_.tx_bytes.add(frame.size());
          return TxStatus::kOk;
        }
      }
      break;
    }
    stats_.tx_errors.add();
    return TxStatus::kError;
  }

  LinkState link() const noexcept override { return LinkState{.running = true, .carrier = true}; }
  MacAddr mac() const noexcept override { return mac_; }
  std::size_t mtu() const noexcept override { return mtu_; }
  int fd() const noexcept override { return fd_; }
  std::string_view name() const noexcept override { return name_; }
  const DeviceStats& stats() const noexcept override { return stats_; }
  const UdpTunnelStats& tunnel_stats() const noexcept override { return tunnel_stats_; }

 private:
  const std::string name_;
  int fd_;
  FdIdentity fd_id_;
  const MacAddr mac_;
  const std::size_t mtu_;
  const std::size_t frame_max_;
  const sockaddr_in remote_;
  // Receive side only: kBatch buffers of frame_max_ bytes and their headers.
  std::unique_ptr<std::byte[]> rx_buf_;
  std::array<mmsghdr, kBatch> msgs_{};
  std::array<iovec, kBatch> iov_{};
  std::array<sockaddr_in, kBatch> from_{};
  DeviceStats stats_;
  UdpTunnelStats tunnel_stats_;
};

}  // namespace

MacAddr udp_tunnel_default_mac(const Ipv4Addr& local, std::uint16_t port) noexcept {
  // 0x02: locally administered, unicast (IEEE 802 U/L and I/G bits).
  return MacAddr(0x02, local[1], local[2], local[3], static_cast<std::uint8_t>(port >> 8),
                 static_cast<std::uint8_t>(port & 0xff));
}

SetupResult<std::unique_ptr<UdpTunnelDevice>> open_udp_tunnel_device(std::string name, std::string_view endpoints,
                                                                    const UdpTunnelOptions& options) {
  const std::string quoted = "device string '" + name + "'";
  const std::string expected = quoted + ": expected LOCAL_IP:PORT@REMOTE_IP:PORT";
  const auto at = endpoints.find('@');
  if (at == std::string_view::npos || endpoints.find('@', at + 1) != std::string_view::npos) {
    return setup_error(Errc::kMalformed, expected + ", got '" + std::string(endpoints) + "'");
  }
  auto local = parse_endpoint(endpoints.substr(0, at));
  if (!local) return setup_error(Errc::kMalformed, expected + ", " + local.error().message);
  auto remote = parse_endpoint(endpoints.substr(at + 1));
  if (!remote) return setup_error(Errc::kMalformed, expected + ", " + remote.error().message);
  if (remote->ip.is_unspecified()) {
    return setup_error(Errc::kInvalidArgument, quoted + ": remote address 0.0.0.0 cannot be sent to");
  }
  if (options.mtu < 68 || options.mtu + Device::kEthHeaderLen > kMaxDatagram) {
    return setup_error(Errc::kInvalidArgument, quoted + ": mtu " + std::to_string(options.mtu) +
                                                   " is outside 68.." + std::to_string(kMaxDatagram - 14) +
                                                   " (a frame must fit one UDP datagram)");
  }

  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return setup_error(Errc::kIo, quoted + ": cannot create a UDP socket: " + errno_text(errno));
  const int size = kSocketBuffer;
  // Best effort (see kSocketBuffer): a refusal leaves the default, which works.
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);

  const sockaddr_in local_sa = to_sockaddr(*local);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&local_sa), sizeof local_sa) != 0) {
    const int err = errno;
    return setup_error(err == EADDRINUSE ? Errc::kExists : Errc::kIo,
                       quoted + ": cannot bind " + std::string(endpoints.substr(0, at)) + ": " + errno_text(err));
  }
  // connect() makes the kernel drop datagrams from anyone but REMOTE and
  // lets us send with send(); it sends nothing.
  const sockaddr_in remote_sa = to_sockaddr(*remote);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&remote_sa), sizeof remote_sa) != 0) {
    return setup_error(Errc::kIo, quoted + ": cannot connect to " + std::string(endpoints.substr(at + 1)) + ": " +
                                      errno_text(errno));
  }
  const MacAddr mac = options.mac.value_or(udp_tunnel_default_mac(local->ip, local->port));
  return std::unique_ptr<UdpTunnelDevice>(new UdpTunnel(std::move(name), fd.release(), mac, options.mtu, remote_sa));
}

}  // namespace np::dev
