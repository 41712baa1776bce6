#include "netpoll/console/crash.h"

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

#include "netpoll/base/text.h"
#include "netpoll/console/crash_report.h"
#include "netpoll/console/symbolizer.h"

namespace np::console {
namespace {

constexpr std::size_t kMaxDrainFds = 4;

// Everything the handler reads, made at install. Plain globals: a signal
// handler has no other way to find its state.
struct Installed {
  Logger* logger = nullptr;
  std::chrono::milliseconds device_wait{};
  std::chrono::milliseconds record_wait{};
  std::chrono::milliseconds resend_budget{};
  std::array<int, kMaxDrainFds> drain_fds{};
  std::size_t drain_count = 0;
  std::atomic<std::uint32_t>* peer_idle = nullptr;
  std::chrono::milliseconds peer_wait{};
  std::atomic<std::uint32_t>* report_count = nullptr;
  std::size_t altstack_size = 0;
  // Never freed: a crash may come during exit, after static destructors.
  Symbolizer* symbolizer = nullptr;
  std::vector<int> signals;
  struct sigaction old[NSIG] = {};
  bool installed[NSIG] = {};
};

Installed g_state;
std::mutex g_install_mutex;  // setup only: never taken by the handler
std::atomic<pid_t> g_crashing{0};
FixedText<Logger::kMaxCrashText> g_report;  // the crash record; static so the stack stays small

pid_t raw_gettid() noexcept { return static_cast<pid_t>(::syscall(SYS_gettid)); }

std::int64_t now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void nap_ms(long ms) noexcept {
  timespec ts{ms / 1000, (ms % 1000) * 1'000'000};
  ::nanosleep(&ts, nullptr);
}

void die_as_we_would_have(int sig, const siginfo_t* si, pid_t me) noexcept {
  ::sigaction(sig, &g_state.old[sig], nullptr);
  // A fault the kernel raised happens again when we return: the restored
  // disposition then decides, exactly as without us. Anything else (abort,
  // kill) is raised again; it is blocked until the handler returns.
  const bool synchronous = (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE) && si->si_code > 0;
  if (!synchronous) ::syscall(SYS_tgkill, ::getpid(), me, sig);
}

// netpoll run: the program's last lines are in its output pipes or in the
// runner's hands; let them be numbered before the crash record is.
void wait_for_peer() noexcept {
  if (g_state.drain_count == 0 && g_state.peer_idle == nullptr) return;
  const std::int64_t deadline = now_ns() + std::chrono::nanoseconds(g_state.peer_wait).count();
  while (now_ns() < deadline) {
    bool pending = false;
    for (std::size_t i = 0; i < g_state.drain_count; ++i) {
      int unread = 0;
      if (::ioctl(g_state.drain_fds[i], FIONREAD, &unread) == 0 && unread > 0) pending = true;
    }
    if (!pending && (g_state.peer_idle == nullptr || g_state.peer_idle->load(std::memory_order_acquire) != 0)) return;
    nap_ms(1);
  }
}

void on_fatal_signal(int sig, siginfo_t* si, void* context) {
  const int saved_errno = errno;
  const pid_t me = raw_gettid();
  pid_t first = 0;
  if (!g_crashing.compare_exchange_strong(first, me, std::memory_order_acq_rel)) {
    if (first != me) {
      // Another thread is reporting its crash and will take the process
      // down; wait for that (bounded), then die on our own.
      for (int i = 0; i < 100; ++i) nap_ms(100);
    }
    // A second fault inside our own handler: give up reporting.
    die_as_we_would_have(sig, si, me);
    errno = saved_errno;
    return;
  }
  if (g_state.report_count != nullptr) g_state.report_count->fetch_add(1, std::memory_order_relaxed);
  Logger& lg = *g_state.logger;
  lg.crash_take_over(g_state.device_wait);
  lg.crash_drain(g_state.record_wait);
  wait_for_peer();
  g_report.clear();
  format_crash_report(*si, static_cast<const ucontext_t*>(context), g_state.symbolizer, g_report);
  lg.crash_send(Level::kEmerg, g_report.view());
  if (g_state.resend_budget.count() > 0) lg.crash_resend_unacked(g_state.record_wait, g_state.resend_budget);
  die_as_we_would_have(sig, si, me);
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

SetupResult<bool> prepare_thread() {
  if (t_altstack.base != nullptr) return true;
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t want = g_state.altstack_size != 0 ? g_state.altstack_size : 64 * 1024;
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
  return true;
}

SetupResult<bool> install_crash_handler(Logger& logger, CrashConfig cfg) {
  std::lock_guard lock(g_install_mutex);
  if (g_state.logger != nullptr)
    return setup_error(Errc::kExists, "a crash handler is already installed (one logger per process)");
  if (cfg.drain_fds.size() > kMaxDrainFds)
    return setup_error(Errc::kInvalidArgument, "at most 4 descriptors to drain before the crash record");
  for (const int sig : cfg.signals) {
    if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP)
      return setup_error(Errc::kInvalidArgument, "signal " + std::to_string(sig) + " cannot be handled");
  }
  g_state.altstack_size = cfg.altstack_size;
  if (auto st = prepare_thread(); !st) return std::unexpected(st.error());
  if (cfg.symbolize && g_state.symbolizer == nullptr) {
    auto sym = Symbolizer::load();
    if (!sym) return std::unexpected(sym.error());
    g_state.symbolizer = sym->release();
  }
  g_state.device_wait = cfg.device_wait;
  g_state.record_wait = cfg.record_wait;
  g_state.resend_budget = cfg.resend_budget;
  g_state.drain_count = cfg.drain_fds.size();
  for (std::size_t i = 0; i < cfg.drain_fds.size(); ++i) g_state.drain_fds[i] = cfg.drain_fds[i];
  g_state.peer_idle = cfg.peer_idle;
  g_state.peer_wait = cfg.peer_wait;
  g_state.report_count = cfg.report_count;
  g_state.signals = cfg.signals;
  g_state.logger = &logger;
  // Warm the report path once, so nothing in it is first used (lazily
  // bound, page-faulted in) from inside a handler.
  siginfo_t warm{};
  warm.si_signo = SIGSEGV;
  g_report.clear();
  format_crash_report(warm, nullptr, g_state.symbolizer, g_report);
  g_report.clear();

  struct sigaction sa {};
  sa.sa_sigaction = on_fatal_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (const int sig : cfg.signals) sigaddset(&sa.sa_mask, sig);  // one crash report at a time per thread
  for (const int sig : cfg.signals) {
    if (::sigaction(sig, &sa, &g_state.old[sig]) != 0) {
      const int e = errno;
      uninstall_crash_handler();
      return setup_error(Errc::kIo, "sigaction(" + std::to_string(sig) + "): " + std::strerror(e));
    }
    g_state.installed[sig] = true;
  }
  return true;
}

void uninstall_crash_handler() {
  for (int sig = 1; sig < NSIG; ++sig) {
    if (!g_state.installed[sig]) continue;
    ::sigaction(sig, &g_state.old[sig], nullptr);
    g_state.installed[sig] = false;
  }
  g_state.logger = nullptr;
}

void crash_logger_gone(const Logger* logger) {
  std::lock_guard lock(g_install_mutex);
  if (g_state.logger == logger) uninstall_crash_handler();
}

}  // namespace np::console
