#include "netpoll/gdb/stub.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "netpoll/base/clock.h"
#include "netpoll/base/text.h"
#include "netpoll/wire/gdb_rsp.h"

namespace np::gdb {
namespace {

// Frames handled per poll of the device.
constexpr std::size_t kPollBudget = 64;
// The longest a wait for frames sleeps before the loop looks again.
constexpr std::int64_t kMaxWaitNs = 10'000'000;
// Held threads wait this much past the stub's deadline when nobody lets
// them go (the process is dying, or the stub itself was cut short).
constexpr std::int64_t kHoldMarginNs = 5'000'000'000;

constinit std::atomic<Stub*> g_stub{nullptr};

pid_t raw_gettid() noexcept { return static_cast<pid_t>(::syscall(SYS_gettid)); }

void on_trap_signal(int, siginfo_t* si, void* context);

}  // namespace

// The peer and the way to it: the session's Transport. Replies go out in
// datagrams of at most the device's payload size (gdb reads a stream).
class Stub::Link final : public Transport, public InGuardedMemory<Stub::Link> {
 public:
  explicit Link(core::Netpoll& np) noexcept : np_(np) {}
  void send(std::span<const char> bytes) noexcept override {
    if (!has_peer) return;
    const std::size_t max = std::max<std::size_t>(np_.max_payload(), 64);
    for (std::size_t at = 0; at < bytes.size(); at += max) {
      const auto piece = bytes.subspan(at, std::min(max, bytes.size() - at));
      if (!np_.send_udp_to(peer, std::as_bytes(piece), core::Flush::kNow)) ++send_errors;
    }
  }
  void forget() noexcept { has_peer = false; }

  core::Netpoll& np_;
  bool has_peer = false;
  core::UdpEndpoint peer;
  std::uint64_t send_errors = 0;
  // A scratch decoder that tells whether a stranger's datagram holds a
  // valid packet (then it becomes the peer).
  std::array<char, kPacketSize + 32> probe{};
};

Stub::Stub(StubConfig cfg) : cfg_(std::move(cfg)) {}

Stub::~Stub() {
  if (watcher_started_) {
    stop_watching_.store(true);
    pthread_join(watcher_, nullptr);
  }
  Stub* me = this;
  g_stub.compare_exchange_strong(me, nullptr);
  if (trap_installed_) ::sigaction(SIGTRAP, &old_trap_, nullptr);
  if (port_holder_ >= 0) ::close(port_holder_);
}

SetupResult<std::unique_ptr<Stub>> Stub::setup(StubConfig cfg) {
  if (cfg.wait.count() <= 0 || cfg.linger.count() < 0)
    return setup_error(Errc::kInvalidArgument, "the gdb stub's wait must be positive");
  // Nobody else sends on this device; the serving thread polls it.
  cfg.client.device.service_thread = false;
  // gdb's packets come one at a time and gdb waits for each answer: each
  // is handed over as it comes, not when a ring's block is full.
  cfg.client.device.rx_copy = true;
  // Replies sent from the receive hook wait in the deferred queue until
  // the poll ends: room for a burst of them.
  cfg.client.device.pool_frames = std::max<std::size_t>(cfg.client.device.pool_frames, 128);
  cfg.client.device.deferred_limit = std::max<std::size_t>(cfg.client.device.deferred_limit, 96);
  // The peer's MAC comes with its frames.
  cfg.client.resolve_remote_mac = false;
  if (cfg.client.name == "netpoll") cfg.client.name = "gdb stub";
  if (cfg.client.target.local_ip.is_v6() || cfg.client.target.remote_ip.is_v6())
    return setup_error(Errc::kUnsupported, "the gdb stub is IPv4 only: give it an IPv4 address");
  Stub* none = nullptr;
  if (g_stub.load() != nullptr) return setup_error(Errc::kExists, "a gdb stub already exists in this process");
  std::unique_ptr<Stub> s(new Stub(std::move(cfg)));
  core::ClientConfig client = std::move(s->cfg_.client);  // the client keeps it
  Stub* self = s.get();
  client.rx_hook = [self](core::Netpoll&, const core::RxInfo& info, std::span<const std::byte> payload) {
    self->on_datagram(info, payload);
  };
  auto np = core::Netpoll::setup(std::move(client), s->registry_);
  if (!np) return std::unexpected(np.error());
  s->np_ = std::move(*np);
  // Hold the port in the host's stack (see stub.h); an address the host
  // does not own gets no ICMP from it anyway.
  s->port_holder_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s->port_holder_ < 0) return setup_error(Errc::kIo, std::string("socket: ") + std::strerror(errno));
  int small = 1;  // the kernel's minimum
  ::setsockopt(s->port_holder_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(s->np_->local_port());
  std::memcpy(&a.sin_addr, s->np_->local_ip().bytes().data(), 4);
  if (::bind(s->port_holder_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    ::close(s->port_holder_);
    s->port_holder_ = -1;
    if (e != EADDRNOTAVAIL)
      return setup_error(e == EADDRINUSE ? Errc::kExists : Errc::kIo,
                         "UDP port " + std::to_string(s->np_->local_port()) + " at " + s->np_->local_ip().to_string() +
                             " in this host's stack: " + std::strerror(e));
  }
  auto target = ProcessTarget::setup(s->cfg_.target);
  if (!target) return std::unexpected(target.error());
  s->target_ = std::move(*target);
  // Both in guarded mappings of their own, off the program's heap.
  s->link_.reset(new Link(*s->np_));
  s->session_.reset(new Session(*s->target_, *s->link_, s->cfg_.session));
  if (!g_stub.compare_exchange_strong(none, self))
    return setup_error(Errc::kExists, "a gdb stub already exists in this process");
  if (s->cfg_.break_in) {
    struct sigaction sa {};
    sa.sa_sigaction = on_trap_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(SIGTRAP, &sa, &s->old_trap_) != 0)
      return setup_error(Errc::kIo, std::string("sigaction(SIGTRAP): ") + std::strerror(errno));
    s->trap_installed_ = true;
    // gdb waiting for a stop hears how the program ended.
    ::on_exit([](int status, void*) { if (Stub* st = g_stub.load()) st->on_program_exit(status); }, nullptr);
    if (s->cfg_.watch) {
      if (const int e = pthread_create(&s->watcher_, nullptr, &Stub::watch_main, self); e != 0)
        return setup_error(Errc::kIo, std::string("the gdb stub's watching thread: ") + std::strerror(e));
      s->watcher_started_ = true;
    }
  }
  return s;
}

bool Stub::take_turn(pid_t me, std::int64_t wait_ns) noexcept {
  const std::int64_t until = monotonic_ns() + wait_ns;
  for (int round = 0; round < 1 << 22; ++round) {
    pid_t none = 0;
    if (serving_.compare_exchange_strong(none, me)) return true;
    if (monotonic_ns() >= until) return false;
    nap(std::chrono::microseconds(200));
  }
  return false;
}

void* Stub::watch_main(void* self) noexcept {
  pthread_setname_np(pthread_self(), "np-gdb-watch");
  static_cast<Stub*>(self)->watch();
  return nullptr;
}

// While the program runs and gdb waits for it to stop, takes in what gdb
// sends (its interrupt; a packet it sends again because our '+' was lost
// gets its '+'). An interrupt stops the program by a SIGTRAP to its main
// thread, which then serves. Otherwise it stays out of the way: it naps
// without touching the device, whose frames wait for the next stop.
void Stub::watch() noexcept {
  const pid_t me = raw_gettid();
  while (!stop_watching_.load()) {
    bool ask = false;
    bool active = false;
    if (take_turn(me, 0)) {
      active = link_->has_peer && session_->state() == SessionState::kResumed && !interrupting_.load();
      if (active) {
        now_ns_ = monotonic_ns();
        np_->poll(kPollBudget);
        session_->tick(now_ns_);
        ask = session_->interrupt_asked();
      }
      serving_.store(0);
    }
    if (ask && !interrupting_.exchange(true)) {
      ::syscall(SYS_tgkill, ::getpid(), ::getpid(), SIGTRAP);
      continue;
    }
    if (active) {
      np_->wait_for_frames(monotonic_ns() + 50'000'000, kMaxWaitNs);
    } else {
      nap(std::chrono::milliseconds(20));
    }
  }
}

std::string Stub::address() const {
  return np_->local_ip().to_string() + ":" + std::to_string(np_->local_port());
}

std::string Stub::attach_command(const std::string& program) const {
  return "gdb " + program + " -ex 'target remote udp:" + address() + "'";
}

void Stub::say(std::string_view text) const noexcept {
  [[maybe_unused]] const ssize_t w = ::write(STDERR_FILENO, text.data(), text.size());
}

void Stub::grant(const IpAddr& ip, std::int64_t until_ns) noexcept {
  std::uint32_t word = 0;  // 0.0.0.0: no sender has it
  if (ip.is_v4()) std::memcpy(&word, ip.bytes().data(), sizeof word);
  granted_until_ns_.store(0, std::memory_order_release);  // never the new address with the old time
  granted_ip_.store(word, std::memory_order_release);
  granted_until_ns_.store(until_ns, std::memory_order_release);
}

void Stub::on_datagram(const core::RxInfo& info, std::span<const std::byte> payload) noexcept {
  Link& l = *link_;
  if (cfg_.granted_only) {
    std::uint32_t from = 0;  // the stub's client is IPv4
    std::memcpy(&from, info.src_ip.bytes().data(), sizeof from);
    if (from != granted_ip_.load(std::memory_order_acquire) ||
        monotonic_ns() >= granted_until_ns_.load(std::memory_order_acquire)) {
      stats_.strangers.add();
      return;
    }
  }
  if (l.has_peer) {
    if (info.src_ip != l.peer.ip || info.src_port != l.peer.port) {
      stats_.strangers.add();
      return;
    }
    stats_.datagrams.add();
    session_->feed(payload, now_ns_);
    return;
  }
  // No peer yet: the first sender of a valid packet becomes it.
  wire::RspDecoder probe(std::span<char>(l.probe));
  bool valid = false;
  probe.feed(payload, [&](wire::RspEvent e) { valid = valid || e == wire::RspEvent::kPacket; });
  if (!valid || info.src_port == 0) {
    // gdb's bare acknowledgements (it opens with '+') are not garbage.
    const bool acks_only = std::all_of(payload.begin(), payload.end(), [](std::byte b) {
      return b == std::byte{'+'} || b == std::byte{'-'};
    });
    if (!acks_only) stats_.garbage.add();
    return;
  }
  l.peer = core::UdpEndpoint{info.src_mac, info.src_ip, info.src_port};
  l.has_peer = true;
  stats_.sessions.add();
  stats_.datagrams.add();
  session_->reset();
  session_->feed(payload, now_ns_);
}

StubEnd Stub::serve(int signal, bool crash, std::int64_t deadline_ns) noexcept {
  Session& s = *session_;
  now_ns_ = monotonic_ns();
  s.on_stop(now_ns_);
  std::int64_t linger_until = 0;
  bool continued = false;
  // Bounded by the deadline; the count guards against a clock that stops.
  for (std::int64_t round = 0; round < (std::int64_t{1} << 26); ++round) {
    now_ns_ = monotonic_ns();
    np_->poll(kPollBudget);
    s.tick(now_ns_);
    const SessionState st = s.state();
    if (st == SessionState::kResumed && !crash) return StubEnd::kResumed;
    if (st != SessionState::kServing) {
      // A crashed program cannot go on: gdb hears that it ended.
      if (st == SessionState::kResumed) {
        s.on_exit(signal, now_ns_);
        continued = true;
      }
      if (linger_until == 0) linger_until = std::min(deadline_ns, now_ns_ + std::chrono::nanoseconds(cfg_.linger).count());
      if (s.settled() || now_ns_ >= linger_until)
        return s.state() == SessionState::kDetached ? StubEnd::kDetached
               : continued                          ? StubEnd::kContinued
                                                    : StubEnd::kKilled;
    }
    if (now_ns_ >= deadline_ns) {
      stats_.timeouts.add();
      return StubEnd::kTimeout;
    }
    np_->wait_for_frames(linger_until != 0 ? std::min(linger_until, deadline_ns) : deadline_ns, kMaxWaitNs);
  }
  return StubEnd::kTimeout;
}

void Stub::on_crash(void* arg, const siginfo_t* si, const ucontext_t* ctx) noexcept {
  if (arg != nullptr && si != nullptr && ctx != nullptr) static_cast<Stub*>(arg)->serve_crash(si, ctx);
}

StubEnd Stub::serve_crash(const siginfo_t* si, const ucontext_t* ctx) noexcept {
  // The watcher may be polling this moment: it lets go at once.
  if (!take_turn(raw_gettid(), 200'000'000)) return last_end_ = StubEnd::kError;
  crash_ = true;
  const std::int64_t deadline = monotonic_ns() + std::chrono::nanoseconds(cfg_.wait).count();
  stats_.stops.add();
  target_->remove_all_breakpoints();
  static_cast<void>(target_->stop(si->si_signo, *ctx, deadline + kHoldMarginNs));
  FixedText<160> line;
  line.append("netpoll gdb: stopped by signal ").append_int(si->si_signo).append(", ");
  line.append_uint(target_->thread_count()).append(target_->thread_count() == 1 ? " thread" : " threads");
  line.append("; waiting ");
  line.append_uint(static_cast<std::uint64_t>(cfg_.wait.count() / 1000)).append(" s for gdb at udp:");
  say(line.view());
  FixedText<64> where;
  const Ipv4Addr local = np_->local_ip().v4();  // the stub refuses IPv6 at setup
  const auto& ip = local.bytes();
  for (std::size_t i = 0; i < ip.size(); ++i) {
    if (i > 0) where.append('.');
    where.append_uint(std::to_integer<unsigned>(ip[i]));
  }
  where.append(':').append_uint(np_->local_port()).append('\n');
  say(where.view());
  const StubEnd end = serve(si->si_signo, true, deadline);
  const SessionStats& ss = session_->stats();
  FixedText<256> done;
  done.append("netpoll gdb: session ended (");
  done.append(end == StubEnd::kKilled      ? "killed"
              : end == StubEnd::kDetached  ? "detached"
              : end == StubEnd::kContinued ? "continued: the program dies of its signal"
                                           : "no gdb in time");
  done.append("): packets ").append_uint(ss.packets).append(", resends ").append_uint(ss.resends);
  done.append(", strangers ").append_uint(stats_.strangers.value()).append(", garbage ").append_uint(stats_.garbage.value());
  done.append(", bad packets ").append_uint(ss.bad_packets).append(", copies ").append_uint(ss.copies).append('\n');
  say(done.view());
  last_end_ = end;
  serving_.store(0);
  return end;
}

void Stub::on_program_exit(int status) noexcept {
  if (!take_turn(raw_gettid(), 200'000'000)) return;
  if (!link_->has_peer || session_->state() != SessionState::kResumed) {
    serving_.store(0);
    return;
  }
  now_ns_ = monotonic_ns();
  session_->on_exited(status, now_ns_);
  const std::int64_t until = now_ns_ + std::chrono::nanoseconds(cfg_.linger).count();
  for (int round = 0; round < 1 << 20 && !session_->settled(); ++round) {
    now_ns_ = monotonic_ns();
    if (now_ns_ >= until) break;
    np_->poll(kPollBudget);
    session_->tick(now_ns_);
    np_->wait_for_frames(until, kMaxWaitNs);
  }
  link_->forget();
  serving_.store(0);
}

void Stub::break_in() noexcept {
  if (g_stub.load() == nullptr) return;
  asm volatile("int3");
}

void Stub::on_trap(const siginfo_t& si, ucontext_t& ctx) noexcept {
  const pid_t me = raw_gettid();
  const std::int64_t wait_ns = std::chrono::nanoseconds(cfg_.wait).count();
  // Another thread serves gdb (it stops this one too, inside this
  // handler): wait our turn, then report this trap.
  if (!take_turn(me, wait_ns + kHoldMarginNs)) return;
  // gdb's interrupt, as the watcher delivered it: a stop by SIGINT.
  const bool interrupt = si.si_code == SI_TKILL && si.si_pid == ::getpid() && interrupting_.exchange(false);
  greg_t& rip = ctx.uc_mcontext.gregs[REG_RIP];
  const auto pc = static_cast<std::uint64_t>(rip);
  // An int3 of ours leaves the pc one past it (si_code SI_KERNEL).
  const bool at_breakpoint = si.si_code == SI_KERNEL && target_->has_breakpoint(pc - 1);
  // Our int3s out of memory first (they go back in when gdb resumes us):
  // the stub's own code must not meet one.
  target_->disarm_breakpoints();
  const std::int64_t deadline = monotonic_ns() + wait_ns;
  stats_.stops.add();
  static_cast<void>(target_->stop(interrupt ? SIGINT : SIGTRAP, ctx, deadline + kHoldMarginNs));
  if (at_breakpoint) target_->stopped_at_breakpoint(pc - 1);
  stepping_ = 0;
  const StubEnd end = serve(interrupt ? SIGINT : SIGTRAP, false, deadline);
  last_end_ = end;
  switch (end) {
    case StubEnd::kResumed:
      stepping_ = session_->resume().step;
      target_->resume(session_->resume(), ctx);
      break;
    case StubEnd::kKilled:
      ::syscall(SYS_kill, ::getpid(), SIGKILL);
      break;
    case StubEnd::kDetached:
    case StubEnd::kContinued:  // not in break-in mode
    case StubEnd::kTimeout:
    case StubEnd::kError:
      // The program goes on without a debugger.
      target_->remove_all_breakpoints();
      target_->resume(Resume{}, ctx);
      link_->forget();
      session_->reset();
      break;
  }
  serving_.store(0);
}

namespace {

void on_trap_signal(int, siginfo_t* si, void* context) {
  const int saved_errno = errno;
  Stub* s = g_stub.load();
  if (s != nullptr && si != nullptr && context != nullptr) {
    s->on_trap(*si, *static_cast<ucontext_t*>(context));
  }
  errno = saved_errno;
}

}  // namespace

}  // namespace np::gdb
