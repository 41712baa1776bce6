#include "netpoll/receiver/worker.h"

#include <arpa/inet.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <pthread.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "netpoll/base/clock.h"

namespace np::receiver {
namespace {

constexpr unsigned kBatch = 64;
constexpr std::size_t kDatagramMax = 4096;  // netconsole sends at most 1000 bytes
// How often the socket's drop count is read (SO_MEMINFO). Asked of every
// datagram (SO_RXQ_OVFL) it cost about a tenth of a short record's time.
constexpr auto kDropsInterval = std::chrono::milliseconds(20);

}  // namespace

struct Worker::Buffers {
  std::vector<char> data = std::vector<char>(kBatch * kDatagramMax);
  mmsghdr msgs[kBatch]{};
  iovec iov[kBatch]{};
  sockaddr_storage addrs[kBatch]{};

  Buffers() {
    for (unsigned i = 0; i < kBatch; ++i) {
      iov[i] = {data.data() + i * kDatagramMax, kDatagramMax};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
  }
};

Worker::Worker(unsigned id, const Options& options, Shared& shared)
    : id_(id), options_(options), shared_(shared), buffers_(std::make_unique<Buffers>()),
      engine_(options_, shared_, *this) {}

Worker::~Worker() {
  if (fd_ >= 0) ::close(fd_);
}

bool Worker::respond(const SourceEntry& e, std::string_view datagram) noexcept {
  return ::sendto(fd_, datagram.data(), datagram.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&e.peer),
                  e.peer_len) == static_cast<ssize_t>(datagram.size());
}

SetupResult<std::unique_ptr<Worker>> Worker::open(unsigned id, const Options& options, Shared& shared) {
  std::unique_ptr<Worker> w(new Worker(id, options, shared));
  sockaddr_storage sa{};
  socklen_t len = 0;
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, options.bind.c_str(), &v4) == 1) {
    auto& s = reinterpret_cast<sockaddr_in&>(sa);
    s.sin_family = AF_INET;
    s.sin_addr = v4;
    s.sin_port = htons(options.port);
    len = sizeof s;
  } else if (::inet_pton(AF_INET6, options.bind.c_str(), &v6) == 1) {
    auto& s = reinterpret_cast<sockaddr_in6&>(sa);
    s.sin6_family = AF_INET6;
    s.sin6_addr = v6;
    s.sin6_port = htons(options.port);
    len = sizeof s;
  } else {
    return setup_error(Errc::kInvalidArgument, "--bind '" + options.bind + "': not an IPv4 or IPv6 address");
  }
  const int one = 1, zero = 0;
  if (id == 0) {
    // SO_REUSEPORT would let this receiver join another one's group on the
    // same port (as root, any process may) and take half its sources: the
    // first worker checks with a plain bind that the port is free.
    const int probe = ::socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sa.ss_family == AF_INET6) ::setsockopt(probe, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    const bool free = probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&sa), len) == 0;
    const int err = errno;
    if (probe >= 0) ::close(probe);
    if (!free) {
      return setup_error(err == EACCES ? Errc::kPermission : Errc::kExists,
                         "cannot listen on " + options.bind + " port " + std::to_string(options.port) + ": " +
                             std::strerror(err));
    }
  }
  w->fd_ = ::socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (w->fd_ < 0) return setup_error(Errc::kIo, std::string("socket: ") + std::strerror(errno));
  ::setsockopt(w->fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (sa.ss_family == AF_INET6) ::setsockopt(w->fd_, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  // A receive buffer sized for bursts: the default (~200 KiB) is the loss
  // netconsd sees at every rate. Forced past rmem_max when we may.
  if (::setsockopt(w->fd_, SOL_SOCKET, SO_RCVBUFFORCE, &options.rcvbuf, sizeof options.rcvbuf) != 0)
    ::setsockopt(w->fd_, SOL_SOCKET, SO_RCVBUF, &options.rcvbuf, sizeof options.rcvbuf);
  if (::bind(w->fd_, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    return setup_error(errno == EACCES ? Errc::kPermission : Errc::kExists,
                       "cannot listen on " + options.bind + " port " + std::to_string(options.port) + ": " +
                           std::strerror(errno));
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  ::getsockname(w->fd_, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  w->bound_port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in&>(bound).sin_port
                                                    : reinterpret_cast<sockaddr_in6&>(bound).sin6_port);
  return w;
}

void Worker::read_kernel_drops() {
  std::uint32_t mem[SK_MEMINFO_VARS]{};
  socklen_t len = sizeof mem;
  if (::getsockopt(fd_, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 || len <= SK_MEMINFO_DROPS * sizeof mem[0]) return;
  // A running total for the socket: keep the latest.
  Counter& drops = engine_.stats().kernel_drops;
  if (mem[SK_MEMINFO_DROPS] > drops.value()) drops.add(mem[SK_MEMINFO_DROPS] - drops.value());
}

void Worker::run() {
  Buffers& b = *buffers_;
  WorkerStats& stats = engine_.stats();
  auto next_drops = np::listen::Clock::now();
  ::pthread_setname_np(::pthread_self(), ("listen-" + std::to_string(id_)).c_str());
  bool busy = false;
  while (!shared_.stop.load(std::memory_order_relaxed)) {
    if (busy) {
      nap(kBatchNap);  // see kBatchNap
    } else {
      pollfd pfd{fd_, POLLIN, 0};
      ::poll(&pfd, 1, engine_.idle(ReceiveTime::now(), 50));
    }
    busy = false;
    for (int round = 0; round < 64 && !shared_.stop.load(std::memory_order_relaxed); ++round) {
      for (unsigned i = 0; i < kBatch; ++i) {
        b.msgs[i].msg_hdr.msg_name = &b.addrs[i];
        b.msgs[i].msg_hdr.msg_namelen = sizeof b.addrs[i];
      }
      const int n = ::recvmmsg(fd_, b.msgs, kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) break;
      busy = true;
      const ReceiveTime at = ReceiveTime::now();  // one receive time per batch
      for (int i = 0; i < n; ++i) {
        const msghdr& h = b.msgs[i].msg_hdr;
        if ((h.msg_flags & MSG_TRUNC) != 0) {
          stats.truncated.add();
          continue;
        }
        engine_.datagram(From{b.addrs[i], h.msg_namelen},
                         std::string_view(b.data.data() + i * kDatagramMax, b.msgs[i].msg_len), at);
      }
      engine_.end_batch(at);
      if (static_cast<unsigned>(n) < kBatch) break;
    }
    const ReceiveTime now = ReceiveTime::now();
    engine_.tick(now);
    if (now.steady >= next_drops) {
      read_kernel_drops();
      next_drops = now.steady + kDropsInterval;
    }
  }
  // Stopping: deliver what every source holds.
  engine_.stop(ReceiveTime::now());
  read_kernel_drops();
}

std::string stats_report(std::span<const std::unique_ptr<Worker>> workers, ReportFormat format) {
  std::vector<const Engine*> engines;
  for (const auto& w : workers) engines.push_back(&w->engine());
  return engines_report(engines, format).finish();
}

}  // namespace np::receiver
