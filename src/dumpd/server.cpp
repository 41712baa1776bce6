#include "netpoll/dumpd/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "netpoll/base/clock.h"
#include "netpoll/base/human.h"
#include "netpoll/base/json.h"
#include "netpoll/base/write_all.h"
#include "netpoll/wire/debugnet.h"

extern char** environ;

namespace np::dumpd {
namespace {

constexpr unsigned kBatch = 64;
// The largest UDP payload over IPv4 is 65507 bytes: no DATA is cut.
constexpr std::size_t kDatagramMax = 65536;
// Batches taken from one socket before the others get their turn.
constexpr int kRoundsPerWake = 16;
// Bytes of a session after which its writeback is started (not waited for).
constexpr std::uint64_t kWritebackEvery = 16 << 20;
// --exec scripts running at once; more are not started (counted failed).
constexpr std::size_t kMaxChildren = 64;

// An address as the session socket needs it: a v4-mapped IPv6 address
// (a dual-stack herald socket's view of an IPv4 client) as plain IPv4.
sockaddr_storage plain(const void* addr, unsigned len) {
  sockaddr_storage out{};
  std::memcpy(&out, addr, std::min<std::size_t>(len, sizeof out));
  if (out.ss_family == AF_INET6) {
    const auto& s6 = reinterpret_cast<const sockaddr_in6&>(out);
    if (IN6_IS_ADDR_V4MAPPED(&s6.sin6_addr)) {
      sockaddr_in s4{};
      s4.sin_family = AF_INET;
      s4.sin_port = s6.sin6_port;
      std::memcpy(&s4.sin_addr, &s6.sin6_addr.s6_addr[12], 4);
      out = {};
      std::memcpy(&out, &s4, sizeof s4);
    }
  }
  return out;
}

socklen_t length_of(const sockaddr_storage& a) {
  return a.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

std::string address_text(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (a.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(a).sin_addr, buf, sizeof buf);
  } else if (a.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, buf, sizeof buf);
  }
  return buf;
}

std::uint16_t port_of(const sockaddr_storage& a) {
  return ntohs(a.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(a).sin_port
                                      : reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
}

bool same_peer(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family || port_of(a) != port_of(b)) return false;
  if (a.ss_family == AF_INET) {
    return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in&>(b).sin_addr.s_addr;
  }
  return IN6_ARE_ADDR_EQUAL(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr,
                            &reinterpret_cast<const sockaddr_in6&>(b).sin6_addr);
}

std::string seconds_text(std::int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ns) / 1e9);
  return buf;
}

std::string rate_text(std::uint64_t bytes, std::int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB/s", ns > 0 ? static_cast<double>(bytes) * 1e3 / static_cast<double>(ns) : 0.0);
  return buf;
}

// The UTC time as file names and JSON carry it.
std::string utc(std::int64_t realtime_ns, const char* format) {
  const time_t t = static_cast<time_t>(realtime_ns / 1'000'000'000);
  tm parts{};
  ::gmtime_r(&t, &parts);
  char buf[32];
  std::strftime(buf, sizeof buf, format, &parts);
  return buf;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// mkdir -p, each new directory 0700 (cores hold a process's memory).
bool make_dirs(const std::string& path) {
  for (std::size_t at = 1; at <= path.size(); ++at) {
    if (at != path.size() && path[at] != '/') continue;
    const std::string part = path.substr(0, at);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return false;
  }
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string signal_text(std::uint32_t sig) {
  if (sig == 0) return "none";
  const char* abbrev = ::sigabbrev_np(static_cast<int>(sig));
  return std::to_string(sig) + (abbrev != nullptr ? std::string(" (SIG") + abbrev + ")" : std::string());
}

}  // namespace

struct Server::Buffers {
  std::vector<std::byte> data = std::vector<std::byte>(kBatch * kDatagramMax);
  mmsghdr msgs[kBatch]{};
  iovec iov[kBatch]{};
  sockaddr_storage addrs[kBatch]{};
  alignas(cmsghdr) char control[kBatch][256]{};
  // A batch's acks, sent together: 4 bytes each, or 8 for a range.
  std::byte acks[kBatch][wire::debugnet::kAckRangeLen]{};
  mmsghdr ack_msgs[kBatch]{};
  iovec ack_iov[kBatch]{};
  // A batch's contiguous writes, one pwritev.
  iovec writes[kBatch]{};

  Buffers() {
    for (unsigned i = 0; i < kBatch; ++i) {
      iov[i] = {data.data() + i * kDatagramMax, kDatagramMax};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      ack_iov[i] = {acks[i], wire::debugnet::kAckLen};
      ack_msgs[i].msg_hdr.msg_iov = &ack_iov[i];
      ack_msgs[i].msg_hdr.msg_iovlen = 1;
    }
  }
  // Before each recvmmsg: the kernel rewrote the lengths.
  void reset(bool with_names) {
    for (unsigned i = 0; i < kBatch; ++i) {
      msgs[i].msg_hdr.msg_name = with_names ? &addrs[i] : nullptr;
      msgs[i].msg_hdr.msg_namelen = with_names ? sizeof addrs[i] : 0;
      msgs[i].msg_hdr.msg_control = control[i];
      msgs[i].msg_hdr.msg_controllen = sizeof control[i];
      msgs[i].msg_hdr.msg_flags = 0;
    }
  }
  std::span<const std::byte> datagram(unsigned i) const {
    return {data.data() + i * kDatagramMax, msgs[i].msg_len};
  }
};

struct Server::Client {
  Client(const Limits& limits, std::uint32_t seqno, std::int64_t now_ns) : machine(limits, seqno, now_ns) {}
  ~Client() {
    if (sock >= 0) ::close(sock);
    if (file >= 0) ::close(file);
  }
  Session machine;
  DumpInfo info;
  sockaddr_storage peer{};
  std::string peer_ip;
  int sock = -1;
  int file = -1;
  std::string dir;   // DIR/<client address>
  std::string base;  // dir/<time>-<pid>-<program>
  std::string started_utc;
  std::string failure;  // what the failed I/O said
  std::uint32_t rx_drops = 0;  // the socket's SO_RXQ_OVFL total so far
  std::uint64_t unsynced = 0;  // bytes written since writeback was last started
  std::int64_t next_progress_ns = 0;
  bool kept = false;  // its files are in their final place
  std::string label() const { return peer_ip + " " + sanitised_name(info.program) + " pid " + std::to_string(info.pid); }
};

Server::Server(const Options& options) : options_(options), buffers_(std::make_unique<Buffers>()) {
  clients_.reserve(options_.max_clients);
  children_.reserve(kMaxChildren);
}

Server::~Server() {
  clients_.clear();
  if (fd_ >= 0) ::close(fd_);
}

SetupResult<std::unique_ptr<Server>> Server::open(const Options& options) {
  if (options.max_clients == 0 || options.max_clients > kMaxClients)
    return setup_error(Errc::kInvalidArgument, "max_clients must be from 1 to " + std::to_string(kMaxClients));
  // File offsets are off_t: a length past its range could never be written.
  if (options.limits.max_size > (std::uint64_t{1} << 62))
    return setup_error(Errc::kInvalidArgument, "max_size must be at most 2^62 bytes");
  std::unique_ptr<Server> s(new Server(options));
  sockaddr_storage sa{};
  socklen_t len = 0;
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, options.bind.c_str(), &v4) == 1) {
    auto& a = reinterpret_cast<sockaddr_in&>(sa);
    a.sin_family = AF_INET;
    a.sin_addr = v4;
    a.sin_port = htons(options.port);
    len = sizeof a;
  } else if (::inet_pton(AF_INET6, options.bind.c_str(), &v6) == 1) {
    auto& a = reinterpret_cast<sockaddr_in6&>(sa);
    a.sin6_family = AF_INET6;
    a.sin6_addr = v6;
    a.sin6_port = htons(options.port);
    len = sizeof a;
  } else {
    return setup_error(Errc::kInvalidArgument, "--bind '" + options.bind + "': not an IPv4 or IPv6 address");
  }
  if (!make_dirs(options.dir)) {
    return setup_error(Errc::kIo, "cannot make the dump directory " + options.dir + ": " + std::strerror(errno));
  }
  s->family_ = sa.ss_family;
  s->fd_ = ::socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s->fd_ < 0) return setup_error(Errc::kIo, std::string("socket: ") + std::strerror(errno));
  const int one = 1, zero = 0;
  // Where each herald was sent: the session socket answers from there.
  ::setsockopt(s->fd_, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
  if (sa.ss_family == AF_INET6) {
    ::setsockopt(s->fd_, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    ::setsockopt(s->fd_, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
  }
  ::setsockopt(s->fd_, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  if (::bind(s->fd_, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    return setup_error(errno == EACCES ? Errc::kPermission : Errc::kExists,
                       "cannot listen on " + options.bind + " port " + std::to_string(options.port) + ": " +
                           std::strerror(errno));
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  ::getsockname(s->fd_, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  s->port_ = port_of(bound);
  return s;
}

void Server::say(const std::string& line) const {
  if (options_.log) options_.log(line);
}

void Server::setup_failed(const std::string& why) {
  // Not once per herald: a client resends it, and a broken directory
  // would fill the log. Again when it changes or 10 s later.
  const std::int64_t now = monotonic_ns();
  if (why != last_setup_log_ || now - last_setup_log_ns_ >= 10'000'000'000) {
    say("cannot open a session: " + why);
    last_setup_log_ = why;
    last_setup_log_ns_ = now;
  }
  stats_.refused.setup_failed.add();  // after the line, as every count here
}

void Server::note_drops(int fd_index, std::uint32_t total) {
  std::uint32_t& seen = fd_index < 0 ? herald_drops_ : clients_[static_cast<std::size_t>(fd_index)]->rx_drops;
  if (total > seen) stats_.errors.kernel_drops.add(total - seen);
  seen = total;
}

void Server::run(const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) poll_once(monotonic_ns());
  const std::int64_t now = monotonic_ns();
  for (auto& c : clients_) {
    if (c->machine.state() == Session::State::kReceiving) end_partial(*c, End::kStopped, now);
  }
  clients_.clear();
  open_sessions_.store(0, std::memory_order_relaxed);
  reap_children();
}

void Server::poll_once(std::int64_t now) {
  // Wake for the earliest deadline, and every 100 ms to see `stop`.
  std::int64_t wait_ns = 100'000'000;
  for (const auto& c : clients_) wait_ns = std::min(wait_ns, c->machine.deadline_ns() - now);
  pollfd fds[1 + kMaxClients];
  const std::size_t n_clients = clients_.size();  // at most kMaxClients
  fds[0] = {fd_, POLLIN, 0};
  for (std::size_t i = 0; i < n_clients; ++i) fds[i + 1] = {clients_[i]->sock, POLLIN, 0};
  const int timeout_ms = wait_ns <= 0 ? 0 : static_cast<int>((wait_ns + 999'999) / 1'000'000);
  int ready = 0;
  if (options_.spin_ns > 0 && n_clients > 0) {
    const std::int64_t spin_end = now + options_.spin_ns;
    do {
      ready = ::poll(fds, n_clients + 1, 0);
    } while (ready == 0 && monotonic_ns() < spin_end);
  }
  if (ready == 0) ready = ::poll(fds, n_clients + 1, timeout_ms);
  if (ready > 0) {
    // Heralds first: a new client appended to clients_ keeps the indices
    // of fds valid, and nothing is removed before the sweep below.
    if (fds[0].revents != 0) drain_heralds();
    for (std::size_t i = 0; i < n_clients; ++i) {
      if (fds[i + 1].revents != 0 && clients_[i]->machine.state() != Session::State::kClosed) drain_client(*clients_[i]);
    }
  }
  now = monotonic_ns();
  for (auto& c : clients_) {
    if (c->machine.state() == Session::State::kClosed || now < c->machine.deadline_ns()) {
      if (c->machine.state() == Session::State::kReceiving) progress(*c, now);
      continue;
    }
    if (c->machine.expire(now) == End::kIdle) keep(*c, false, now);
  }
  std::erase_if(clients_, [](const auto& c) { return c->machine.state() == Session::State::kClosed; });
  open_sessions_.store(static_cast<unsigned>(clients_.size()), std::memory_order_relaxed);
  if (!children_.empty()) reap_children();
}

void Server::drain_heralds() {
  Buffers& b = *buffers_;
  for (int round = 0; round < kRoundsPerWake; ++round) {
    b.reset(true);
    const int n = ::recvmmsg(fd_, b.msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    const std::int64_t now = monotonic_ns();
    for (int i = 0; i < n; ++i) {
      const msghdr& h = b.msgs[i].msg_hdr;
      sockaddr_storage local{};
      unsigned local_len = 0;
      bool have_v4_local = false;
      for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
          std::uint32_t dropped = 0;
          std::memcpy(&dropped, CMSG_DATA(c), sizeof dropped);
          note_drops(-1, dropped);
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
          // ipi_spec_dst: the local address an answer goes out from (the
          // destination, or for a broadcast the interface's address).
          in_pktinfo pi{};
          std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
          auto& a = reinterpret_cast<sockaddr_in&>(local);
          local = {};
          a.sin_family = AF_INET;
          a.sin_addr = pi.ipi_spec_dst;
          local_len = sizeof a;
          have_v4_local = true;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && !have_v4_local) {
          in6_pktinfo pi{};
          std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
          auto& a = reinterpret_cast<sockaddr_in6&>(local);
          local = {};
          a.sin6_family = AF_INET6;
          a.sin6_addr = pi.ipi6_addr;
          local_len = sizeof a;
        }
      }
      if ((h.msg_flags & MSG_TRUNC) != 0) {
        stats_.refused.truncated.add();
        continue;
      }
      const auto d = b.datagram(static_cast<unsigned>(i));
      herald(d.data(), d.size(), &b.addrs[i], h.msg_namelen, local_len != 0 ? &local : nullptr, local_len, now);
    }
    if (static_cast<unsigned>(n) < kBatch) return;
  }
}

void Server::herald(const std::byte* data, std::size_t len, const void* peer_addr, unsigned peer_len,
                    const void* local, unsigned local_len, std::int64_t now) {
  auto h = check_herald({data, len}, options_.limits);
  if (!h) {
    refusal_counter(stats_.refused, h.error()).add();
    return;
  }
  const sockaddr_storage peer = plain(peer_addr, peer_len);
  std::size_t active = 0;
  for (auto& c : clients_) {
    if (c->machine.state() == Session::State::kClosed) continue;
    if (same_peer(c->peer, peer) && c->info.pid == h->info.pid) {
      if (c->machine.herald_again(h->seqno, now)) {
        // Its first ack was lost: the same answer from the same port.
        stats_.dumps.heralds_resent.add();
        send_ack(c->sock, c->peer, h->seqno);
        return;
      }
      // It started over (after data), or a lingering session's client
      // begins a new dump: the old one ends here.
      if (c->machine.state() == Session::State::kReceiving) {
        end_partial(*c, End::kRestarted, now);
      } else {
        (void)c->machine.expire(now);
      }
      continue;
    }
    ++active;
  }
  if (active >= options_.max_clients) {
    // A finished session only lingers to answer a repeated FINISHED: the
    // oldest one makes room.
    Client* oldest = nullptr;
    for (auto& c : clients_) {
      if (c->machine.state() == Session::State::kFinished &&
          (oldest == nullptr || c->machine.ended_ns() < oldest->machine.ended_ns()))
        oldest = c.get();
    }
    if (oldest == nullptr) {
      stats_.refused.too_many_clients.add();
      return;
    }
    (void)oldest->machine.expire(now);
  }
  auto c = open_client(*h, &peer, length_of(peer), local, local_len, now);
  if (!c) return;
  stats_.dumps.sessions.add();
  const DumpInfo& i = c->info;
  const std::string from = c->peer.ss_family == AF_INET6 ? "[" + c->peer_ip + "]" : c->peer_ip;
  say("dump started: " + from + ":" + std::to_string(port_of(c->peer)) + " " +
      (i.program.empty() ? std::string("(no program)") : i.program) + " pid " + std::to_string(i.pid) +
      ", signal " + signal_text(i.signal) + ", " + std::to_string(i.threads) + " threads, kind " +
      (i.kind.empty() ? "?" : i.kind) + ", host " + (i.host.empty() ? "?" : i.host) + ", " +
      (i.size != 0 ? human_bytes(i.size) : std::string("size not said")) + " -> " + c->base + ".core");
  const int sock = c->sock;
  const sockaddr_storage to = c->peer;
  clients_.push_back(std::move(c));
  open_sessions_.store(static_cast<unsigned>(clients_.size()), std::memory_order_relaxed);
  // Counted before it is answered: whoever sees the answer sees the counts.
  send_ack(sock, to, h->seqno);
}

void Server::send_ack(int sock, const sockaddr_storage& to, std::uint32_t seqno) {
  const std::uint32_t ack = htonl(seqno);
  stats_.dumps.acks.add();
  if (::sendto(sock, &ack, sizeof ack, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&to), length_of(to)) !=
      sizeof ack)
    stats_.errors.acks_failed.add();
}

std::unique_ptr<Server::Client> Server::open_client(const Herald& h, const void* peer_addr, unsigned peer_len,
                                                    const void* local_addr, unsigned local_len, std::int64_t now) {
  auto c = std::make_unique<Client>(options_.limits, h.seqno, now);
  c->info = h.info;
  c->peer = plain(peer_addr, peer_len);
  c->peer_ip = address_text(c->peer);
  c->next_progress_ns = now + options_.progress_ns;
  // The socket: same family as the client, from the address it sent to.
  sockaddr_storage local{};
  if (local_addr != nullptr) local = plain(local_addr, local_len);
  if (local.ss_family != c->peer.ss_family) {
    local = {};
    local.ss_family = c->peer.ss_family;  // the wildcard address
  }
  c->sock = ::socket(c->peer.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (c->sock < 0) {
    setup_failed(std::string("socket: ") + std::strerror(errno));
    return nullptr;
  }
  const int one = 1;
  if (::setsockopt(c->sock, SOL_SOCKET, SO_RCVBUFFORCE, &options_.rcvbuf, sizeof options_.rcvbuf) != 0)
    ::setsockopt(c->sock, SOL_SOCKET, SO_RCVBUF, &options_.rcvbuf, sizeof options_.rcvbuf);
  ::setsockopt(c->sock, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  // Datagrams of the session's flow that arrive together (a client's
  // segmented transmission, or a NIC's receive offload) come up as one, with
  // the size of its pieces (UDP_GRO): one receive, not one each. Kernels
  // without it hand them up one by one.
  ::setsockopt(c->sock, IPPROTO_UDP, UDP_GRO, &one, sizeof one);
  if (::bind(c->sock, reinterpret_cast<sockaddr*>(&local), length_of(local)) != 0) {
    // Not an address of ours to bind (it was sent to a broadcast or
    // multicast address): the kernel picks.
    sockaddr_storage any{};
    any.ss_family = c->peer.ss_family;
    if (::bind(c->sock, reinterpret_cast<sockaddr*>(&any), length_of(any)) != 0) {
      setup_failed(std::string("bind: ") + std::strerror(errno));
      return nullptr;
    }
  }
  // The file: a name no other dump has.
  c->dir = options_.dir + "/" + c->peer_ip;
  if (!make_dirs(c->dir)) {
    setup_failed("cannot make " + c->dir + ": " + std::strerror(errno));
    return nullptr;
  }
  const std::int64_t wall = realtime_ns();
  c->started_utc = utc(wall, "%Y-%m-%dT%H:%M:%SZ");
  const std::string stem =
      c->dir + "/" + utc(wall, "%Y%m%dT%H%M%SZ") + "-" + std::to_string(h.info.pid) + "-" + sanitised_name(h.info.program);
  for (int n = 1; n <= 100 && c->file < 0; ++n) {
    const std::string base = n == 1 ? stem : stem + "-" + std::to_string(n);
    if (exists(base + ".core") || exists(base + ".core.partial") || exists(base + ".json")) continue;
    c->file = ::open((base + ".core.part").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (c->file >= 0) {
      c->base = base;
    } else if (errno != EEXIST) {
      setup_failed("cannot create " + base + ".core.part: " + std::strerror(errno));
      return nullptr;
    }
  }
  if (c->file < 0) {
    setup_failed("no free name for " + stem + ".core");
    return nullptr;
  }
  return c;
}

void Server::drain_client(Client& c) {
  Buffers& b = *buffers_;
  const std::size_t index = static_cast<std::size_t>(
      std::find_if(clients_.begin(), clients_.end(), [&](const auto& p) { return p.get() == &c; }) - clients_.begin());
  for (int round = 0; round < kRoundsPerWake && c.machine.state() != Session::State::kClosed; ++round) {
    b.reset(true);
    const int n = ::recvmmsg(c.sock, b.msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;  // empty
    const std::int64_t now = monotonic_ns();
    // The batch's writes: a run of contiguous pieces, one pwritev.
    std::uint64_t run_offset = 0, run_len = 0;
    unsigned run_pieces = 0;
    // The batch's acks (at most one per packet), sent before its last write.
    unsigned acks = 0;
    AckRuns runs(c.info.range_acks);
    const auto send_acks = [&] {
      if (acks == 0) return;
      stats_.dumps.acks.add(acks);  // before: whoever sees an ack sees it counted
      for (unsigned i = 0; i < acks; ++i) {
        b.ack_msgs[i].msg_hdr.msg_name = &c.peer;
        b.ack_msgs[i].msg_hdr.msg_namelen = length_of(c.peer);
      }
      const int sent = ::sendmmsg(c.sock, b.ack_msgs, acks, MSG_DONTWAIT);
      const unsigned ok = sent > 0 ? static_cast<unsigned>(sent) : 0;
      if (ok < acks) stats_.errors.acks_failed.add(acks - ok);
      acks = 0;
    };
    const auto put_ack = [&](const AckRun& r) {
      // A batch of datagrams holding many pieces each (UDP_GRO) may need
      // more acks than one sendmmsg takes.
      if (acks == kBatch) send_acks();
      const std::span<std::byte> out(b.acks[acks]);
      b.ack_iov[acks].iov_len = r.first == r.last ? wire::emit_debugnet_ack(r.first, out).size()
                                                  : wire::emit_debugnet_ack_range({r.first, r.last}, out).size();
      ++acks;
    };
    const auto flush = [&]() -> bool {
      iovec* iov = b.writes;
      unsigned pieces = run_pieces;
      while (run_len > 0) {
        const ssize_t w = ::pwritev(c.file, iov, static_cast<int>(pieces), static_cast<off_t>(run_offset));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          const int err = w < 0 ? errno : ENOSPC;  // no progress: the file system is full
          c.failure = std::string("write: ") + std::strerror(err);
          stats_.errors.write_errors.add();
          if (err == ENOSPC || err == EDQUOT) stats_.errors.disk_full.add();
          return false;
        }
        auto done = static_cast<std::size_t>(w);
        stats_.dumps.bytes.add(done);
        c.unsynced += done;
        run_offset += done;
        run_len -= done;
        while (pieces > 0 && done >= iov->iov_len) {
          done -= iov->iov_len;
          ++iov;
          --pieces;
        }
        if (done > 0) {
          iov->iov_base = static_cast<char*>(iov->iov_base) + done;
          iov->iov_len -= done;
        }
      }
      run_pieces = 0;
      // Writeback started as the dump comes in, without waiting for it:
      // FINISHED's fsync then has little left to do, and does not hold
      // the other sessions up for the whole file.
      if (c.unsynced >= kWritebackEvery) {
        ::sync_file_range(c.file, 0, 0, SYNC_FILE_RANGE_WRITE);
        c.unsynced = 0;
      }
      return true;
    };
    bool failed = false;
    for (int i = 0; i < n && !failed; ++i) {
      const msghdr& h = b.msgs[i].msg_hdr;
      std::size_t piece = 0;  // UDP_GRO: the size of the datagrams it holds
      for (cmsghdr* cm = CMSG_FIRSTHDR(&h); cm != nullptr; cm = CMSG_NXTHDR(const_cast<msghdr*>(&h), cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL) {
          std::uint32_t dropped = 0;
          std::memcpy(&dropped, CMSG_DATA(cm), sizeof dropped);
          note_drops(static_cast<int>(index), dropped);
        } else if (cm->cmsg_level == IPPROTO_UDP && cm->cmsg_type == UDP_GRO) {
          int size = 0;
          std::memcpy(&size, CMSG_DATA(cm), sizeof size);
          if (size > 0) piece = static_cast<std::size_t>(size);
        }
      }
      if ((h.msg_flags & MSG_TRUNC) != 0) {
        stats_.refused.truncated.add();
        continue;
      }
      if (!same_peer(plain(h.msg_name, h.msg_namelen), c.peer)) {
        stats_.refused.stranger.add();
        continue;
      }
      // Each piece a datagram of its own (one, without UDP_GRO; an empty
      // datagram too, which the session refuses and counts).
      std::span<const std::byte> rest = b.datagram(static_cast<unsigned>(i));
      if (piece == 0) piece = rest.size();
      do {
        const std::span<const std::byte> one = rest.first(std::min(piece, rest.size()));
        rest = rest.subspan(one.size());
        const Step s = c.machine.receive(one, now);
        if (s.refused != Refusal::kNone) {
          refusal_counter(stats_.refused, s.refused).add();
          continue;
        }
        stats_.dumps.packets.add();
        if (s.duplicate) stats_.dumps.duplicates.add();
        if (s.out_of_window) stats_.dumps.out_of_window.add();
        if (!s.data.empty()) {
          if ((run_pieces == kBatch || (run_pieces > 0 && s.offset != run_offset + run_len)) && !flush()) {
            failed = true;
            break;
          }
          if (run_pieces == 0) {
            run_offset = s.offset;
            run_len = 0;
          }
          b.writes[run_pieces++] = {const_cast<std::byte*>(s.data.data()), s.data.size()};
          run_len += s.data.size();
        }
        if (s.end != End::kNone) {
          failed = !flush();
          if (!failed) {
            finish(c, s.end, s.final_size, now);
            failed = c.machine.state() == Session::State::kClosed;
          }
        }
        if (!failed && s.ack) {
          if (const auto r = runs.add(s.ack_seqno)) put_ack(*r);
        }
      } while (!rest.empty() && !failed);
    }
    // The batch's acks go out before its last write, so that the client
    // fills its next window while this one is written. An ack says the
    // server has the packet, not that it is on disk (nor is what is in the
    // page cache): the dump is complete only when FINISHED is acknowledged,
    // which is after every write and the file's fsync. A write that fails
    // ends the session, partial, and FINISHED is never acknowledged.
    if (!failed) {
      if (const auto r = runs.close()) put_ack(*r);
      send_acks();
      failed = !flush();
    }
    if (failed) {
      end_partial(c, End::kWriteFailed, now);
      return;
    }
    if (static_cast<unsigned>(n) < kBatch) return;
  }
}

void Server::finish(Client& c, End end, std::uint64_t final_size, std::int64_t now) {
  // Complete: exactly FINISHED's length (the tail the client never sent is
  // a hole). Gave up: never shorter than what arrived.
  const std::uint64_t length = end == End::kComplete ? final_size : std::max(final_size, c.machine.extent());
  if (::ftruncate(c.file, static_cast<off_t>(length)) != 0 || ::fsync(c.file) != 0) {
    const int err = errno;
    c.failure = std::string("finishing the file: ") + std::strerror(err);
    stats_.errors.write_errors.add();
    if (err == ENOSPC || err == EDQUOT) stats_.errors.disk_full.add();
    c.machine.abort(End::kWriteFailed, now);
    keep(c, false, now);
    return;
  }
  keep(c, end == End::kComplete, now);
}

void Server::end_partial(Client& c, End end, std::int64_t now) {
  c.machine.abort(end, now);
  keep(c, false, now);
}

int Server::write_json(Client& c, bool complete, std::int64_t now) {
  struct stat st {};
  ::fstat(c.file, &st);
  const SessionCounters& n = c.machine.counters();
  const DumpInfo& i = c.info;
  JsonWriter j;
  j.begin_object();
  j.field_bool("complete", complete);
  if (!complete) {
    const std::string reason = c.failure.empty() ? std::string(end_text(c.machine.end()))
                                                 : std::string(end_text(c.machine.end())) + ": " + c.failure;
    j.field("reason", reason);
  }
  j.field("core", c.base.substr(c.dir.size() + 1) + (complete ? ".core" : ".core.partial"));
  j.field("client", c.peer_ip).field("client_port", port_of(c.peer));
  j.field("kind", i.kind).field("program", i.program).field("pid", i.pid).field("signal", i.signal);
  j.field("threads", i.threads).field("host", i.host).field("size", i.size);
  j.field("bytes_written", n.bytes).field("file_size", static_cast<std::uint64_t>(st.st_size));
  j.field("started", c.started_utc);
  j.field_json("seconds", seconds_text(now - c.machine.started_ns()));
  j.field("packets", n.packets).field("duplicates", n.duplicates).field("out_of_window", n.out_of_window);
  j.field("refused", n.refused);
  j.end_object();
  const std::string tmp = c.base + ".json.tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const bool ok = fd >= 0 && write_all(fd, j.str() + "\n") && ::fsync(fd) == 0;
  int err = ok ? 0 : (errno != 0 ? errno : EIO);
  if (fd >= 0) ::close(fd);
  if (ok && ::rename(tmp.c_str(), (c.base + ".json").c_str()) != 0) err = errno;
  if (err != 0) ::unlink(tmp.c_str());
  return err;
}

void Server::keep(Client& c, bool complete, std::int64_t now) {
  if (c.kept || c.file < 0) return;
  c.kept = true;
  const std::int64_t took = now - c.machine.started_ns();
  const SessionCounters& n = c.machine.counters();
  if (!complete && !c.machine.any_data()) {
    ::unlink((c.base + ".core.part").c_str());
    ::close(c.file);
    c.file = -1;
    // The line before the count: whoever sees the count finds the line.
    say("dump abandoned: " + c.label() + ": " + end_text(c.machine.end()) + " before any data; nothing kept");
    stats_.dumps.empty.add();
    return;
  }
  if (!complete) ::fsync(c.file);  // complete: finish() did
  const int json_err = write_json(c, complete, now);
  if (json_err != 0) {
    stats_.errors.write_errors.add();
    if (json_err == ENOSPC || json_err == EDQUOT) stats_.errors.disk_full.add();
  }
  const std::string core = c.base + (complete ? ".core" : ".core.partial");
  if (::rename((c.base + ".core.part").c_str(), core.c_str()) != 0) {
    say("cannot rename " + c.base + ".core.part: " + std::strerror(errno));
  }
  fsync_dir(c.dir);
  ::close(c.file);
  c.file = -1;
  if (complete) {
    say("dump complete: " + c.label() + ": " + human_bytes(c.machine.final_size()) + " in " + seconds_text(took) +
        " s, " + rate_text(n.bytes, took) + ", " + count_text(n.packets, "packet") + ", " +
        count_text(n.duplicates, "duplicate") + " -> " + core);
    stats_.dumps.complete.add();
  } else {
    say("dump partial: " + c.label() + ": " + end_text(c.machine.end()) + (c.failure.empty() ? "" : " (" + c.failure + ")") +
        "; " + human_bytes(n.bytes) + " in " + seconds_text(took) + " s -> " + core);
    stats_.dumps.partial.add();
  }
  if (json_err != 0) say("cannot write " + c.base + ".json: " + std::strerror(json_err));
  if (!options_.exec.empty()) run_exec(c, complete);
}

void Server::run_exec(const Client& c, bool complete) {
  // Each line before its count: whoever sees the count finds the line.
  if (children_.size() >= kMaxChildren) {
    say("exec: " + std::to_string(kMaxChildren) + " scripts still running; not run for " + c.base);
    stats_.dumps.exec_failed.add();
    return;
  }
  std::string args[] = {options_.exec, complete ? "complete" : "partial",
                        c.base + (complete ? ".core" : ".core.partial"), c.base + ".json", c.peer_ip};
  char* argv[] = {args[0].data(), args[1].data(), args[2].data(), args[3].data(), args[4].data(), nullptr};
  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  const int err = ::posix_spawn(&pid, options_.exec.c_str(), &fa, nullptr, argv, environ);
  ::posix_spawn_file_actions_destroy(&fa);
  if (err != 0) {
    say("exec: cannot run " + options_.exec + ": " + std::strerror(err));
    stats_.dumps.exec_failed.add();
    return;
  }
  stats_.dumps.exec_run.add();
  children_.push_back(pid);
}

void Server::reap_children() {
  std::erase_if(children_, [&](int pid) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) != pid) return false;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      say("exec: " + options_.exec + " (pid " + std::to_string(pid) + ") " +
          (WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                             : "was killed by signal " + std::to_string(WTERMSIG(status))));
      stats_.dumps.exec_failed.add();  // after its line (see run_exec)
    }
    return true;
  });
}

void Server::progress(Client& c, std::int64_t now) {
  if (now < c.next_progress_ns) return;
  c.next_progress_ns = now + options_.progress_ns;
  const std::uint64_t got = c.machine.counters().bytes;
  std::string of;
  if (c.info.size != 0) {
    of = " of " + human_bytes(c.info.size) + " (" + std::to_string(got * 100 / c.info.size) + "%)";
  }
  say("dump progress: " + c.label() + ": " + human_bytes(got) + of + ", " +
      rate_text(got, now - c.machine.started_ns()));
}

}  // namespace np::dumpd
