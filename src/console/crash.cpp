#include "netpoll/console/crash.h"

#include <pthread.h>
#include <setjmp.h>
#include <ucontext.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

#include "netpoll/base/clock.h"
#include "netpoll/base/guarded.h"
#include "netpoll/base/text.h"
#include "netpoll/console/cfi_unwind.h"
#include "netpoll/console/crash_report.h"
#include "netpoll/console/symbolizer.h"

namespace np::console {
namespace {

constexpr std::size_t kMaxDrainFds = 4;
constexpr std::uint64_t kConfigCanary = 0x4e50435246473031;   // "NPCRFG01"
constexpr std::uint64_t kScratchCanary = 0x4e50435253435231;  // "NPCRSCR1"
// The deadline's timer signal. At a crash the handler takes it over (and
// gives it back if the process lives on): whatever the program used it
// for, it is dying.
constexpr int kDeadlineSignal = SIGALRM;

// What never changes after install: in a guarded mapping, sealed
// read-only, so that a stray write faults instead of landing.
struct Config {
  std::uint64_t canary = kConfigCanary;
  Logger* logger = nullptr;
  std::chrono::milliseconds device_wait{};
  std::chrono::milliseconds record_wait{};
  std::chrono::milliseconds resend_budget{};
  std::chrono::milliseconds deadline{};
  std::array<int, kMaxDrainFds> drain_fds{};
  std::size_t drain_count = 0;
  std::atomic<std::uint32_t>* peer_idle = nullptr;
  std::chrono::milliseconds peer_wait{};
  std::atomic<std::uint32_t>* report_count = nullptr;
  void (*after_report)(void*, const siginfo_t*, const ucontext_t*) noexcept = nullptr;
  void* after_report_arg = nullptr;
  std::chrono::milliseconds after_report_deadline{};
  FixedText<256> report_trailer;
  // Never freed: a crash may come during exit, after static destructors.
  const Symbolizer* symbolizer = nullptr;
  CfiIndex cfi;  // call-frame information of every object loaded at install
  bool have_cfi = false;
  sigset_t handled{};  // the signals of cfg.signals
  struct sigaction old[NSIG] = {};
  bool installed[NSIG] = {};
  std::uint64_t canary_end = kConfigCanary;

  bool intact() const noexcept { return canary == kConfigCanary && canary_end == kConfigCanary && logger != nullptr; }
};

// What the handler writes: in a guarded mapping of its own.
struct Scratch {
  std::uint64_t canary = kScratchCanary;
  std::atomic<pid_t> crashing{0};  // the thread reporting a crash
  // The way out when the deadline passes or the handler faults: back to
  // the frame of the handler that is reporting, which then lets the
  // process die of its original signal.
  sigjmp_buf escape;
  volatile sig_atomic_t escape_armed = 0;
  int timer = -1;  // the kernel's id of the deadline timer
  struct sigaction deadline_old {};
  FixedText<Logger::kMaxCrashText> report;
  std::uint64_t canary_end = kScratchCanary;

  bool intact() const noexcept { return canary == kScratchCanary && canary_end == kScratchCanary; }
};

// The two roots, on a page of their own that is read-only while a handler
// is installed: the only writable globals left are the install mutex and
// the per-thread alternate stacks.
struct alignas(4096) Roots {
  Config* config = nullptr;
  Scratch* scratch = nullptr;
  std::size_t altstack_size = 0;
  char pad[4096 - 3 * sizeof(void*)] = {};
};
static_assert(sizeof(Roots) == 4096);
// Initialised before any code runs (constinit): a preloaded library's
// constructor may install the handler before this file's dynamic
// initialisers would have run, and must not find its state reset after.
constinit Roots g_roots;
constinit std::mutex g_install_mutex;  // setup only: never taken by the handler
constinit GuardedRegion g_config_region;
constinit GuardedRegion g_scratch_region;

void protect_roots(bool read_only) noexcept {
  ::mprotect(&g_roots, sizeof g_roots, read_only ? PROT_READ : PROT_READ | PROT_WRITE);
}

pid_t raw_gettid() noexcept { return static_cast<pid_t>(::syscall(SYS_gettid)); }

bool synchronous_fault(int sig, const siginfo_t* si) noexcept {
  return (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE) && si->si_code > 0;
}

void die_as_we_would_have(const Config& c, int sig, const siginfo_t* si, pid_t me) noexcept {
  ::sigaction(sig, &c.old[sig], nullptr);
  // A fault the kernel raised happens again when we return: the restored
  // disposition then decides, exactly as without us. Anything else (abort,
  // kill) is raised again; it is blocked until the handler returns.
  if (!synchronous_fault(sig, si)) ::syscall(SYS_tgkill, ::getpid(), me, sig);
}

// The deadline counts from now, `d` long (at the start; again for the
// after-report hook).
void restart_deadline(Scratch& s, std::chrono::milliseconds d) noexcept {
  if (s.timer < 0) return;
  const auto ns = std::chrono::nanoseconds(d).count();
  itimerspec its{};
  its.it_value.tv_sec = ns / 1'000'000'000;
  its.it_value.tv_nsec = ns % 1'000'000'000;
  ::syscall(SYS_timer_settime, s.timer, 0, &its, nullptr);
}

// The deadline: a timer that sends kDeadlineSignal to this thread alone.
void arm_deadline(const Config& c, Scratch& s, pid_t me) noexcept {
  struct sigaction sa {};
  sa.sa_sigaction = [](int, siginfo_t* si, void*) {
    Scratch* sc = g_roots.scratch;
    // Only our own timer, on the reporting thread, ends the report.
    if (si->si_code == SI_TIMER && sc != nullptr && sc->escape_armed != 0 &&
        sc->crashing.load(std::memory_order_relaxed) == raw_gettid())
      siglongjmp(sc->escape, 2);
  };
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  ::sigaction(kDeadlineSignal, &sa, &s.deadline_old);
  sigevent ev{};
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = kDeadlineSignal;
  ev._sigev_un._tid = me;
  int id = -1;
  if (::syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &id) != 0) return;  // no deadline but the bounds
  s.timer = id;
  restart_deadline(s, c.deadline);
}

void disarm_deadline(Scratch& s) noexcept {
  s.escape_armed = 0;
  if (s.timer >= 0) ::syscall(SYS_timer_delete, s.timer);
  s.timer = -1;
  ::sigaction(kDeadlineSignal, &s.deadline_old, nullptr);
}

// netpoll run: the program's last lines are in its output pipes or in the
// runner's hands; let them be numbered before the crash record is.
void wait_for_peer(const Config& c) noexcept {
  if (c.drain_count == 0 && c.peer_idle == nullptr) return;
  const std::int64_t deadline = monotonic_ns() + std::chrono::nanoseconds(c.peer_wait).count();
  while (monotonic_ns() < deadline) {
    bool pending = false;
    for (std::size_t i = 0; i < c.drain_count && i < kMaxDrainFds; ++i) {
      int unread = 0;
      if (::ioctl(c.drain_fds[i], FIONREAD, &unread) == 0 && unread > 0) pending = true;
    }
    if (!pending && (c.peer_idle == nullptr || c.peer_idle->load(std::memory_order_acquire) != 0)) return;
    nap(std::chrono::milliseconds(1));
  }
}

void report(const Config& c, Scratch& s, const siginfo_t* si, void* context) noexcept {
  if (c.report_count != nullptr) c.report_count->fetch_add(1, std::memory_order_relaxed);
  Logger& lg = *c.logger;
  lg.crash_take_over(c.device_wait);
  lg.crash_drain(c.record_wait);
  wait_for_peer(c);
  s.report.clear();
  format_crash_report(*si, static_cast<const ucontext_t*>(context), c.symbolizer, c.have_cfi ? &c.cfi : nullptr,
                      s.report);
  if (!c.report_trailer.view().empty()) {
    if (!s.report.view().ends_with('\n')) s.report.append('\n');
    s.report.append(c.report_trailer.view());
  }
  lg.crash_send(Level::kEmerg, s.report.view());
  if (c.resend_budget.count() > 0) lg.crash_resend_unacked(c.record_wait, c.resend_budget);
  if (c.after_report != nullptr) {
    restart_deadline(s, c.after_report_deadline);
    c.after_report(c.after_report_arg, si, static_cast<const ucontext_t*>(context));
  }
}

void on_fatal_signal(int sig, siginfo_t* si, void* context) {
  const int saved_errno = errno;
  const pid_t me = raw_gettid();
  const Config* cp = g_roots.config;
  Scratch* sp = g_roots.scratch;
  if (cp == nullptr || sp == nullptr || !cp->intact() || !sp->intact()) {
    // Our own state is gone: nothing to report with. Die as without us,
    // as far as we still can.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(sig, &dfl, nullptr);
    if (!synchronous_fault(sig, si)) ::syscall(SYS_tgkill, ::getpid(), me, sig);
    errno = saved_errno;
    return;
  }
  const Config& c = *cp;
  Scratch& s = *sp;
  pid_t first = 0;
  if (!s.crashing.compare_exchange_strong(first, me, std::memory_order_acq_rel)) {
    // A fault inside our own report: back to the reporting frame, which
    // lets the process die of its first signal. Never a second report.
    if (first == me && s.escape_armed != 0) siglongjmp(s.escape, 3);
    if (first != me) {
      // Another thread is reporting its crash and will take the process
      // down within its deadline; wait for that, then die on our own.
      const long waits = std::chrono::milliseconds(c.deadline).count() / 100 + 10;
      for (long i = 0; i < waits; ++i) nap(std::chrono::milliseconds(100));
    }
    die_as_we_would_have(c, sig, si, me);
    errno = saved_errno;
    return;
  }
  // The mask saved here (the crash signals blocked) comes back with the
  // escape; while reporting, a fault or the deadline must get through.
  if (sigsetjmp(s.escape, 1) == 0) {
    s.escape_armed = 1;
    arm_deadline(c, s, me);
    sigset_t open = c.handled;
    sigaddset(&open, SIGSEGV);
    sigaddset(&open, SIGBUS);
    sigaddset(&open, SIGILL);
    sigaddset(&open, SIGFPE);
    sigaddset(&open, kDeadlineSignal);
    ::pthread_sigmask(SIG_UNBLOCK, &open, nullptr);
    report(c, s, si, context);
  }
  disarm_deadline(s);
  die_as_we_would_have(c, sig, si, me);
  errno = saved_errno;
}

// One alternate stack per thread, unmapped when the thread ends.
struct AltStack {
  void* base = nullptr;
  std::size_t size = 0;
  ~AltStack() {
    if (base == nullptr) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    ::sigaltstack(&off, nullptr);
    ::munmap(base, size);
  }
};
thread_local AltStack t_altstack;

}  // namespace

SetupResult<void> prepare_thread() {
  if (t_altstack.base != nullptr) return {};
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t want = g_roots.altstack_size != 0 ? g_roots.altstack_size : 64 * 1024;
  const std::size_t size = (want + page - 1) / page * page + page;  // one guard page below
  void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (mem == MAP_FAILED) return setup_error(Errc::kNoBuffer, std::string("cannot map an alternate signal stack: ") +
                                                                 std::strerror(errno));
  ::mprotect(mem, page, PROT_NONE);
  stack_t st{};
  st.ss_sp = static_cast<char*>(mem) + page;
  st.ss_size = size - page;
  if (::sigaltstack(&st, nullptr) != 0) {
    const int e = errno;
    ::munmap(mem, size);
    return setup_error(Errc::kIo, std::string("sigaltstack: ") + std::strerror(e));
  }
  t_altstack.base = mem;
  t_altstack.size = size;
  return {};
}

namespace {

void restore_dispositions_locked() {
  Config* c = g_roots.config;
  if (c == nullptr) return;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (c->installed[sig]) ::sigaction(sig, &c->old[sig], nullptr);
  }
  protect_roots(false);
  g_roots.config = nullptr;
  g_roots.scratch = nullptr;
  g_config_region = GuardedRegion();
  g_scratch_region = GuardedRegion();
}

}  // namespace

SetupResult<void> install_crash_handler(Logger& logger, CrashConfig cfg) {
  std::lock_guard lock(g_install_mutex);
  if (g_roots.config != nullptr)
    return setup_error(Errc::kExists, "a crash handler is already installed (one logger per process)");
  if (cfg.drain_fds.size() > kMaxDrainFds)
    return setup_error(Errc::kInvalidArgument, "at most 4 descriptors to drain before the crash record");
  if (cfg.deadline.count() <= 0) return setup_error(Errc::kInvalidArgument, "the crash deadline must be positive");
  if (cfg.after_report != nullptr && cfg.after_report_deadline.count() <= 0)
    return setup_error(Errc::kInvalidArgument, "the after-report deadline must be positive");
  if (cfg.report_trailer.size() > 255)
    return setup_error(Errc::kInvalidArgument, "the crash record's last line takes at most 255 bytes");
  for (const int sig : cfg.signals) {
    if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP || sig == kDeadlineSignal)
      return setup_error(Errc::kInvalidArgument, "signal " + std::to_string(sig) + " cannot be handled");
  }
  if (auto routes = logger.prepare_crash_routes(); !routes) return std::unexpected(routes.error());
  protect_roots(false);
  g_roots.altstack_size = cfg.altstack_size;
  if (auto st = prepare_thread(); !st) return std::unexpected(st.error());
  static Symbolizer* symbolizer = nullptr;  // loaded once, kept for good
  if (cfg.symbolize && symbolizer == nullptr) {
    auto sym = Symbolizer::load();
    if (!sym) return std::unexpected(sym.error());
    symbolizer = sym->release();
  }
  auto config_region = GuardedRegion::map(sizeof(Config), "the crash path's configuration");
  if (!config_region) return std::unexpected(config_region.error());
  auto scratch_region = GuardedRegion::map(sizeof(Scratch), "the crash path's scratch memory");
  if (!scratch_region) return std::unexpected(scratch_region.error());
  Config* c = config_region->make<Config>();
  Scratch* s = scratch_region->make<Scratch>();
  c->logger = &logger;
  c->device_wait = cfg.device_wait;
  c->record_wait = cfg.record_wait;
  c->resend_budget = cfg.resend_budget;
  c->deadline = cfg.deadline;
  c->drain_count = cfg.drain_fds.size();
  for (std::size_t i = 0; i < cfg.drain_fds.size(); ++i) c->drain_fds[i] = cfg.drain_fds[i];
  c->peer_idle = cfg.peer_idle;
  c->peer_wait = cfg.peer_wait;
  c->report_count = cfg.report_count;
  c->after_report = cfg.after_report;
  c->after_report_arg = cfg.after_report_arg;
  c->after_report_deadline = cfg.after_report_deadline;
  c->report_trailer.append(cfg.report_trailer);
  c->symbolizer = cfg.symbolize ? symbolizer : nullptr;
  // Past the index's capacity the first objects are still indexed: usable.
  const auto cfi = build_cfi_index(c->cfi);
  c->have_cfi = cfi.has_value() || cfi.error() == Errc::kNoBuffer;
  sigemptyset(&c->handled);
  for (const int sig : cfg.signals) sigaddset(&c->handled, sig);
  // Warm the report path once, so nothing in it is first used (lazily
  // bound, page-faulted in) from inside a handler.
  siginfo_t warm{};
  warm.si_signo = SIGSEGV;
  format_crash_report(warm, nullptr, c->symbolizer, c->have_cfi ? &c->cfi : nullptr, s->report);
  s->report.clear();
  if (c->have_cfi) {
    ucontext_t here{};
    std::uintptr_t frames[8];
    if (::getcontext(&here) == 0) static_cast<void>(cfi_backtrace(c->cfi, here, frames));
  }

  struct sigaction sa {};
  sa.sa_sigaction = on_fatal_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sa.sa_mask = c->handled;  // one crash report at a time per thread
  for (const int sig : cfg.signals) {
    if (::sigaction(sig, &sa, &c->old[sig]) != 0) {
      const int e = errno;
      for (int done = 1; done < NSIG; ++done) {
        if (c->installed[done]) ::sigaction(done, &c->old[done], nullptr);
      }
      return setup_error(Errc::kIo, "sigaction(" + std::to_string(sig) + "): " + std::strerror(e));
    }
    c->installed[sig] = true;
  }
  if (!config_region->seal()) return setup_error(Errc::kIo, "cannot seal the crash path's configuration");
  g_config_region = std::move(*config_region);
  g_scratch_region = std::move(*scratch_region);
  g_roots.config = c;
  g_roots.scratch = s;
  protect_roots(true);
  return {};
}

void uninstall_crash_handler() {
  std::lock_guard lock(g_install_mutex);
  restore_dispositions_locked();
}

void crash_logger_gone(const Logger* logger) {
  std::lock_guard lock(g_install_mutex);
  if (g_roots.config != nullptr && g_roots.config->logger == logger) restore_dispositions_locked();
}

}  // namespace np::console
