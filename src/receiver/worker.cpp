#include "netpoll/receiver/worker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "io.h"
#include "netpoll/base/clock.h"
#include "netpoll/receiver/source_table.h"

namespace np::receiver {
namespace {

using np::listen::Clock;

constexpr unsigned kBatch = 64;
constexpr std::size_t kDatagramMax = 4096;       // netconsole sends at most 1000 bytes
constexpr std::size_t kOutputReserve = 1 << 20;  // a worker's output buffer
constexpr std::size_t kFileBufferReserve = 64 << 10;

std::int64_t realtime_us() noexcept { return realtime_ns() / 1000; }

}  // namespace

struct Worker::Impl : np::listen::Sink {
  Worker& w;
  // recvmmsg buffers, made once.
  std::vector<char> data = std::vector<char>(kBatch * kDatagramMax);
  mmsghdr msgs[kBatch]{};
  iovec iov[kBatch]{};
  sockaddr_storage addrs[kBatch]{};
  alignas(cmsghdr) char control[kBatch][CMSG_SPACE(sizeof(std::uint32_t))]{};

  SourceTable table;
  std::vector<SourceEntry*> dirty;  // sources with bytes in their file buffer
  std::string out;                  // standard output, flushed per batch
  std::unique_ptr<SyslogWriter> syslog;
  FormatContext ctx;
  SourceEntry* current = nullptr;  // the source whose datagram is being fed

  explicit Impl(Worker& worker) : w(worker), table(w.options_.max_sources, w.options_.limits) {
    out.reserve(kOutputReserve);
    dirty.reserve(std::min<std::size_t>(w.options_.max_sources, 1 << 16));
    for (unsigned i = 0; i < kBatch; ++i) {
      iov[i] = {data.data() + i * kDatagramMax, kDatagramMax};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    if (w.options_.syslog) syslog = std::make_unique<SyslogWriter>(*w.options_.syslog);
  }

  // --- the Sink: what a source hands over ---------------------------------
  void record(const np::listen::Record& r) override {
    if (w.options_.to_stdout) append_record(out, w.options_.format, ctx, r);
    if (std::string* f = current_file()) append_record(*f, w.options_.format, ctx, r);
    if (syslog) syslog->add(ctx, r);
    if (w.options_.count != 0) {  // --count: a total over every worker
      const std::uint64_t total = w.shared_.records.fetch_add(1, std::memory_order_relaxed) + 1;
      if (total >= w.options_.count) w.shared_.stop.store(true);
    }
  }
  void gap(const np::listen::Gap& g) override {
    if (w.options_.to_stdout) append_gap(out, w.options_.format, ctx, g);
    if (std::string* f = current_file()) append_gap(*f, w.options_.format, ctx, g);
  }
  void reset(std::uint64_t from, std::uint64_t to) override {
    if (w.options_.to_stdout) append_reset(out, w.options_.format, ctx, from, to);
    if (std::string* f = current_file()) append_reset(*f, w.options_.format, ctx, from, to);
  }

  // The file buffer of the source being fed (nullptr: none); a buffer that
  // gets its first bytes joins the list flush_outputs() writes out.
  std::string* current_file() {
    if (current == nullptr || current->file_fd < 0) return nullptr;
    if (current->file_buffer.empty()) dirty.push_back(current);
    return &current->file_buffer;
  }

  void feed_from(SourceEntry& e) {
    current = &e;
    ctx.source = e.address;
  }

  // --- sources --------------------------------------------------------------
  SourceEntry& source_for(const sockaddr_storage& sa, socklen_t len) {
    const SourceKey k = SourceKey::of(sa);
    if (current != nullptr && current->key == k) return *current;
    if (SourceEntry* e = table.find(k)) return *e;
    // A new source: allocation here is per source, never per datagram.
    if (table.full()) evict_oldest();
    SourceEntry& e = table.insert(k, sa, len);
    if (!w.options_.dir.empty()) {
      const std::string path =
          w.options_.dir + "/" + file_name_of(k) + (w.options_.format == OutputFormat::kJson ? ".json" : ".log");
      e.file_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (e.file_fd < 0) w.stats_.output_errors.add();
      e.file_buffer.reserve(kFileBufferReserve);
    }
    w.stats_.sources_seen.add();
    return e;
  }

  void evict_oldest() {
    SourceEntry& victim = table.oldest();
    feed_from(victim);
    victim.source.flush(*this);  // what it holds is delivered before it goes
    flush_file(victim);
    std::erase(dirty, &victim);
    current = nullptr;
    table.evict_oldest();
    w.stats_.sources_evicted.add();
  }

  void respond(SourceEntry& e, Clock::time_point now) {
    if (!w.options_.limits.reliable) return;
    const std::string_view r = e.source.response(now);
    if (r.empty()) return;
    if (::sendto(w.fd_, r.data(), r.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&e.peer), e.peer_len) ==
        static_cast<ssize_t>(r.size())) {
      w.stats_.responses_sent.add();
    } else {
      w.stats_.responses_failed.add();  // the source asks again; its next answer carries the same news
    }
  }

  // --- output -----------------------------------------------------------------
  void flush_file(SourceEntry& e) {
    if (e.file_buffer.empty() || e.file_fd < 0) return;
    if (!write_all(e.file_fd, e.file_buffer)) w.stats_.output_errors.add();
    e.file_buffer.clear();
  }

  void flush_outputs(Clock::time_point now) {
    if (w.options_.discard_output) out.clear();
    if (!out.empty()) {
      std::lock_guard lock(w.shared_.stdout_mutex);
      if (!write_all(STDOUT_FILENO, out)) w.stats_.output_errors.add();
      out.clear();
    }
    for (SourceEntry* e : dirty) flush_file(*e);
    dirty.clear();
    if (syslog) {
      const SyslogWriter::Flushed f = syslog->flush(now);
      w.stats_.syslog_sent.add(f.sent);
      w.stats_.syslog_dropped.add(f.dropped);
    }
  }

  // Timeouts of every source whose deadline has come.
  void tick_all(Clock::time_point now) {
    table.for_each([&](SourceEntry& e) {
      if (e.source.next_deadline() > now && !w.options_.limits.reliable) return;
      feed_from(e);
      e.source.tick(now, *this);
      respond(e, now);
    });
    current = nullptr;
  }
};

Worker::Worker(unsigned id, const Options& options, Shared& shared)
    : id_(id), options_(options), shared_(shared), impl_(std::make_unique<Impl>(*this)) {}

Worker::~Worker() {
  impl_.reset();
  if (fd_ >= 0) ::close(fd_);
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
  ::setsockopt(w->fd_, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
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

void Worker::run() {
  Impl& m = *impl_;
  ::pthread_setname_np(::pthread_self(), ("listen-" + std::to_string(id_)).c_str());
  auto next_tick = Clock::now();
  bool busy = false;
  while (!shared_.stop.load(std::memory_order_relaxed)) {
    if (busy) {
      nap(kBatchNap);  // see kBatchNap
    } else {
      pollfd pfd{fd_, POLLIN, 0};
      ::poll(&pfd, 1, 50);
    }
    busy = false;
    for (int round = 0; round < 64 && !shared_.stop.load(std::memory_order_relaxed); ++round) {
      for (unsigned i = 0; i < kBatch; ++i) {
        m.msgs[i].msg_hdr.msg_name = &m.addrs[i];
        m.msgs[i].msg_hdr.msg_namelen = sizeof m.addrs[i];
        m.msgs[i].msg_hdr.msg_control = m.control[i];
        m.msgs[i].msg_hdr.msg_controllen = sizeof m.control[i];
      }
      const int n = ::recvmmsg(fd_, m.msgs, kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) break;
      busy = true;
      const auto now = Clock::now();
      m.ctx.received_us = realtime_us();  // one receive time per batch
      for (int i = 0; i < n; ++i) {
        const msghdr& h = m.msgs[i].msg_hdr;
        for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
            std::uint32_t dropped = 0;
            std::memcpy(&dropped, CMSG_DATA(c), sizeof dropped);
            // A running total for the socket: keep the latest.
            if (dropped > stats_.kernel_drops.value()) stats_.kernel_drops.add(dropped - stats_.kernel_drops.value());
          }
        }
        const std::size_t len = m.msgs[i].msg_len;
        if ((h.msg_flags & MSG_TRUNC) != 0) {
          stats_.truncated.add();
          continue;
        }
        SourceEntry& e = m.source_for(m.addrs[i], h.msg_namelen);
        m.feed_from(e);
        e.source.datagram(std::string_view(m.data.data() + i * kDatagramMax, len), now, m);
        m.respond(e, now);
      }
      m.current = nullptr;
      m.flush_outputs(now);
      if (static_cast<unsigned>(n) < kBatch) break;
    }
    const auto now = Clock::now();
    if (now >= next_tick) {
      m.ctx.received_us = realtime_us();
      m.tick_all(now);
      m.flush_outputs(now);
      next_tick = now + std::chrono::milliseconds(20);
    }
  }
  // Stopping: deliver what every source holds.
  m.ctx.received_us = realtime_us();
  m.table.for_each([&](SourceEntry& e) {
    m.feed_from(e);
    e.source.flush(m);
  });
  m.current = nullptr;
  m.flush_outputs(Clock::now());
}

void Worker::for_each_source(
    FunctionRef<void(std::string_view address, const np::listen::SourceStats& s)> each) const {
  impl_->table.for_each_locked([&](const SourceEntry& e) { each(e.address, e.source.stats()); });
}

void Worker::add_totals(np::listen::SourceStats& into) const { impl_->table.add_totals(into); }

std::string stats_report(std::span<const std::unique_ptr<Worker>> workers, OutputFormat format) {
  np::listen::SourceStats sources;
  WorkerStats totals;
  for (const auto& w : workers) {
    w->add_totals(sources);
    add_stats(totals, w->stats());
  }
  StatsReport report(format, sources, totals);
  for (const auto& w : workers) {
    w->for_each_source([&](std::string_view address, const np::listen::SourceStats& s) {
      report.add_source(address, s);
    });
  }
  return report.finish();
}

}  // namespace np::receiver
