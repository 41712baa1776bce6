#include "listen_worker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <list>
#include <thread>
#include <unordered_map>

#include "listen_format.h"

namespace np::tools::listen {
namespace {

using np::listen::Clock;

constexpr unsigned kBatch = 64;
constexpr std::size_t kDatagramMax = 4096;       // netconsole sends at most 1000 bytes
constexpr std::size_t kOutputReserve = 1 << 20;  // a worker's output buffer
constexpr std::size_t kFileBufferReserve = 64 << 10;

std::int64_t realtime_us() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

// An address and port as one hashable key (IPv4 as its mapped IPv6 form).
struct Key {
  std::uint8_t addr[16] = {};
  std::uint16_t port = 0;
  bool operator==(const Key&) const = default;
};
struct KeyHash {
  std::size_t operator()(const Key& k) const noexcept {
    std::uint64_t h = 1469598103934665603ull;
    for (const std::uint8_t b : k.addr) h = (h ^ b) * 1099511628211ull;
    return (h ^ k.port) * 1099511628211ull;
  }
};

Key key_of(const sockaddr_storage& sa) {
  Key k;
  if (sa.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(sa);
    k.addr[10] = k.addr[11] = 0xff;
    std::memcpy(k.addr + 12, &v4.sin_addr, 4);
    k.port = ntohs(v4.sin_port);
  } else {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(sa);
    std::memcpy(k.addr, &v6.sin6_addr, 16);
    k.port = ntohs(v6.sin6_port);
  }
  return k;
}

// "10.0.0.1:6665" (an IPv4-mapped address as plain IPv4), "[fd00::1]:6665".
std::string address_text(const Key& k) {
  static const std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char buf[INET6_ADDRSTRLEN] = {};
  if (std::memcmp(k.addr, kMapped, 12) == 0) {
    ::inet_ntop(AF_INET, k.addr + 12, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(k.port);
  }
  ::inet_ntop(AF_INET6, k.addr, buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(k.port);
}

std::string file_name_of(const Key& k) {
  std::string s = address_text(k);
  for (char& c : s) {
    if (c == ':' || c == '[' || c == ']') c = '_';
  }
  return s;
}

bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

struct Worker::SourceEntry {
  Key key;
  std::string address;
  std::unique_ptr<np::listen::Source> source;
  sockaddr_storage peer{};
  socklen_t peer_len = 0;
  int file_fd = -1;
  std::string file_buffer;
  std::list<SourceEntry*>::iterator lru;
  ~SourceEntry() {
    if (file_fd >= 0) ::close(file_fd);
  }
};

// Sends formatted syslog messages to one server, from one worker.
class SyslogWriter {
 public:
  explicit SyslogWriter(const SyslogTarget& t) : target_(t) { buffer_.reserve(kOutputReserve); }
  ~SyslogWriter() {
    if (fd_ >= 0) ::close(fd_);
  }
  std::string& buffer() { return buffer_; }
  bool tcp() const { return target_.tcp; }
  // Sends what is buffered; UDP messages were separated with a NUL when
  // buffered (one datagram each).
  void flush(WorkerStats& stats, std::uint64_t messages) {
    if (buffer_.empty()) return;
    if (!connected() && !connect()) {
      stats.syslog_dropped.add(messages);
      buffer_.clear();
      return;
    }
    bool ok = true;
    if (target_.tcp) {
      ok = write_all(fd_, buffer_);
    } else {
      std::size_t start = 0;
      while (start < buffer_.size()) {
        const auto end = buffer_.find('\0', start);
        const std::size_t len = (end == std::string::npos ? buffer_.size() : end) - start;
        ok = ::send(fd_, buffer_.data() + start, len, 0) == static_cast<ssize_t>(len) && ok;
        start += len + 1;
      }
    }
    if (ok) {
      stats.syslog_sent.add(messages);
    } else {
      stats.syslog_dropped.add(messages);
      ::close(fd_);
      fd_ = -1;  // reconnect next time
    }
    buffer_.clear();
  }

 private:
  bool connected() const { return fd_ >= 0; }
  bool connect() {
    const auto now = Clock::now();
    if (now < retry_at_) return false;
    retry_at_ = now + std::chrono::seconds(1);  // at most one attempt a second while it fails
    addrinfo hints{};
    hints.ai_socktype = target_.tcp ? SOCK_STREAM : SOCK_DGRAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(target_.host.c_str(), std::to_string(target_.port).c_str(), &hints, &res) != 0) return false;
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
      if (fd < 0) continue;
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        fd_ = fd;
        break;
      }
      ::close(fd);
    }
    ::freeaddrinfo(res);
    return fd_ >= 0;
  }

  SyslogTarget target_;
  int fd_ = -1;
  std::string buffer_;
  Clock::time_point retry_at_{};
};

struct Worker::Impl : np::listen::Sink {
  Worker& w;
  // recvmmsg buffers, made once.
  std::vector<char> data = std::vector<char>(kBatch * kDatagramMax);
  mmsghdr msgs[kBatch]{};
  iovec iov[kBatch]{};
  sockaddr_storage addrs[kBatch]{};
  alignas(cmsghdr) char control[kBatch][CMSG_SPACE(sizeof(std::uint32_t))]{};

  std::mutex table_mutex;  // the source table's shape: taken on insert/evict and by the printer
  std::unordered_map<Key, std::unique_ptr<SourceEntry>, KeyHash> sources;
  std::list<SourceEntry*> lru;  // most recently used first
  np::listen::SourceStats evicted_totals;

  std::vector<SourceEntry*> dirty;  // sources with bytes in their file buffer
  std::string out;  // stdout, flushed per batch
  std::unique_ptr<SyslogWriter> syslog;
  std::uint64_t syslog_pending = 0;
  FormatContext ctx;
  SourceEntry* current = nullptr;  // the source whose datagram is being fed

  explicit Impl(Worker& worker) : w(worker) {
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
    if (syslog) {
      append_syslog(syslog->buffer(), syslog->tcp(), ctx, r);
      if (!syslog->tcp()) syslog->buffer().push_back('\0');
      ++syslog_pending;
    }
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

  // --- sources --------------------------------------------------------------
  SourceEntry& source_for(const sockaddr_storage& sa, socklen_t len) {
    const Key k = key_of(sa);
    if (current != nullptr && current->key == k) return *current;
    if (auto it = sources.find(k); it != sources.end()) {
      SourceEntry& e = *it->second;
      lru.splice(lru.begin(), lru, e.lru);
      return e;
    }
    // A new source: allocation here is per source, never per datagram.
    std::lock_guard lock(table_mutex);
    if (sources.size() >= w.options_.max_sources) evict_oldest();
    auto e = std::make_unique<SourceEntry>();
    e->key = k;
    e->address = address_text(k);
    e->source = std::make_unique<np::listen::Source>(w.options_.limits);
    e->peer = sa;
    e->peer_len = len;
    if (!w.options_.dir.empty()) {
      const std::string path = w.options_.dir + "/" + file_name_of(k) +
                               (w.options_.format == OutputFormat::kJson ? ".json" : ".log");
      e->file_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (e->file_fd < 0) w.stats_.output_errors.add();
      e->file_buffer.reserve(kFileBufferReserve);
    }
    lru.push_front(e.get());
    e->lru = lru.begin();
    SourceEntry& ref = *e;
    sources.emplace(k, std::move(e));
    w.stats_.sources_seen.add();
    return ref;
  }

  void evict_oldest() {
    SourceEntry* victim = lru.back();
    current = victim;
    ctx.source = victim->address;
    victim->source->flush(*this);  // what it holds is delivered before it goes
    flush_file(*victim);
    std::erase(dirty, victim);
    np::listen::add_stats(evicted_totals, victim->source->stats());
    lru.pop_back();
    if (current == victim) current = nullptr;
    sources.erase(victim->key);
    w.stats_.sources_evicted.add();
  }

  void respond(SourceEntry& e, Clock::time_point now) {
    if (!w.options_.limits.reliable) return;
    const std::string_view r = e.source->response(now);
    if (r.empty()) return;
    if (::sendto(w.fd_, r.data(), r.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&e.peer), e.peer_len) ==
        static_cast<ssize_t>(r.size()))
      w.stats_.responses_sent.add();
  }

  // --- output -----------------------------------------------------------------
  void flush_file(SourceEntry& e) {
    if (e.file_buffer.empty() || e.file_fd < 0) return;
    if (!write_all(e.file_fd, e.file_buffer)) w.stats_.output_errors.add();
    e.file_buffer.clear();
  }

  void flush_outputs() {
    if (w.options_.discard_output) out.clear();
    if (!out.empty()) {
      std::lock_guard lock(w.shared_.stdout_mutex);
      if (!write_all(STDOUT_FILENO, out)) w.stats_.output_errors.add();
      out.clear();
    }
    for (SourceEntry* e : dirty) flush_file(*e);
    dirty.clear();
    if (syslog) {
      syslog->flush(w.stats_, syslog_pending);
      syslog_pending = 0;
    }
  }

  // Timeouts of every source whose deadline has come.
  void tick_all(Clock::time_point now) {
    for (auto& [k, e] : sources) {
      if (e->source->next_deadline() > now && !w.options_.limits.reliable) continue;
      current = e.get();
      ctx.source = e->address;
      e->source->tick(now, *this);
      respond(*e, now);
    }
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
      std::this_thread::sleep_for(kBatchNap);  // see listen_worker.h
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
        m.current = &e;
        m.ctx.source = e.address;
        e.source->datagram(std::string_view(m.data.data() + i * kDatagramMax, len), now, m);
        m.respond(e, now);
      }
      m.current = nullptr;
      m.flush_outputs();
      if (static_cast<unsigned>(n) < kBatch) break;
    }
    const auto now = Clock::now();
    if (now >= next_tick) {
      m.ctx.received_us = realtime_us();
      m.tick_all(now);
      m.flush_outputs();
      next_tick = now + std::chrono::milliseconds(20);
    }
  }
  // Stopping: deliver what every source holds.
  m.ctx.received_us = realtime_us();
  for (auto& [k, e] : m.sources) {
    m.current = e.get();
    m.ctx.source = e->address;
    e->source->flush(m);
  }
  m.current = nullptr;
  m.flush_outputs();
}

void Worker::for_each_source(const std::function<void(const SourceView&)>& each) {
  std::lock_guard lock(impl_->table_mutex);
  for (auto& [k, e] : impl_->sources) each(SourceView{e->address, &e->source->stats()});
}

void Worker::add_totals(np::listen::SourceStats& into) {
  std::lock_guard lock(impl_->table_mutex);
  np::listen::add_stats(into, impl_->evicted_totals);
  for (auto& [k, e] : impl_->sources) np::listen::add_stats(into, e->source->stats());
}

}  // namespace np::tools::listen
