// torture_child SCENARIO [--logger TARGET] [--lines N]: programs that die
// in hostile ways, for the torture suite. Each scenario prints "line 1" ...
// "line N" (N = 3 unless --lines says otherwise) on a line-buffered stdout,
// so that every line has reached a pipe, then does its hostile act and
// crashes; "line N" is the last thing it prints before the crash. Nothing
// else goes to stdout; diagnostics go to stderr.
//
// Without --logger it is a plain program: what `netpoll run` runs, and the
// control that shows how the program dies without netpoll. With --logger
// TARGET (a netconsole option string) it first creates a netpoll logger on
// TARGET and installs the crash handler, then logs every "line K" too; the
// hostile act comes after that setup, since the point is that netpoll's
// crash path survives it. With --logger every thread the program starts
// calls prepare_thread() first, as `netpoll run` does for the program's
// threads.
//
// Each crash happens in a named, never-inlined function, so that a
// backtrace can be checked for it: column "faults in" names it ("from": the
// function of ours below it; "(abort in malloc) malloc_until_abort": the
// signal arises in libc, called by that function of ours). The whole file
// is built with -fstack-protector-all (stack-smash needs the canary check).
//
//   scenario                signal   whole program  faults in
//   heap-overflow-segv      SIGSEGV  killed, 139    crash_null_write, from heap_overflow_segv
//   heap-overflow-malloc    SIGABRT  killed, 134    (abort in malloc) malloc_until_abort
//   heap-wipe               SIGSEGV  killed, 139    wipe_heap_and_crash
//   anon-wipe               SIGSEGV  killed, 139    wipe_anon_and_crash
//   double-free             SIGABRT  killed, 134    (abort in free) free_twice
//   stack-smash             SIGABRT  killed, 134    (abort in __stack_chk_fail) smash_stack_frame
//   stack-overflow-main     SIGSEGV  killed, 139    recurse_forever
//   stack-overflow-thread   SIGSEGV  killed, 139    recurse_forever, in a second thread
//   abort-printing-threads  SIGABRT  killed, 134    (abort) abort_while_threads_print
//   sigbus                  SIGBUS   killed, 135    touch_truncated_mapping
//   sigill                  SIGILL   killed, 132    execute_ud2
//   sigfpe                  SIGFPE   killed, 136    divide_by_zero
//   kill-segv               SIGSEGV  killed, 139    (kill) kill_self_segv; si_code SI_USER
//   crash-in-handler        SIGSEGV  killed, 139    crash_null_write, from on_sigusr1
//   all-blocked             SIGSEGV  killed, 139    crash_null_write, from block_all_and_crash
//   own-handler-reraise     SIGSEGV  killed, 139    crash_null_write, from own_handler_and_crash
//   closed-fds              SIGSEGV  killed, 139    crash_null_write, from close_fds_and_crash
//   reused-fds              SIGSEGV  killed, 139    crash_null_write, from reuse_fds_and_crash
//   fork-crash              none     exit 0         child: crash_null_write, from crash_forked_child;
//                                                   the child dies of SIGSEGV
//   uncaught-exception      SIGABRT  killed, 134    (abort in std::terminate) throw_uncaught
//   two-threads             SIGSEGV  killed, 139    crash_null_write, from crash_together's threads
//   exit-zero               none     exit 0         -
// ("killed, 139": what a shell reports, 128 + the signal; a core dump may
// be written, as ulimit -c allows.)
//
// Notes on single scenarios:
// - all-blocked: the kernel finds SIGSEGV blocked, resets it to SIG_DFL and
//   kills the process: no handler (netpoll's included) runs.
// - own-handler-reraise: the program's handler replaces netpoll's for
//   SIGSEGV; it writes "own handler" to stderr and dies by SIGSEGV.
// - fork-crash: the parent prints "line 1..N", the child "child line 1..N"
//   (and logs them, with --logger) and crashes; the parent then prints
//   "parent saw child signal 11" and exits 0.
// - abort-printing-threads: 8 threads print "thread T line K" through stdio
//   without pause; "line N" is the main thread's last line, not the last
//   line on stdout.
// - heap-overflow-segv: with --logger the block may be one freed during
//   setup, among netpoll's objects, which the overflow then breaks.
// - heap-overflow-malloc: overflows a block right before the top chunk
//   (block_before_top), so that glibc aborts from inside malloc.
// - anon-wipe, heap-wipe: with --logger, netpoll's own memory is wiped too.
//   Other threads (netpoll's sender) lose their stacks and may fault first.
//
// The sanitizer build compiles this file without instrumentation (its
// memory errors are its crashes, not sanitizer reports), but ASan's
// allocator replaces glibc's: heap-overflow-malloc ends in its fallback
// abort(), double-free in ASan's report (exit 1; SIGABRT with
// ASAN_OPTIONS=abort_on_error=1), heap-wipe finds no [heap] and only
// crashes, and anon-wipe wipes ASan's state too.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "netpoll/console/crash.h"
#include "netpoll/console/logger.h"

namespace {

using namespace np::console;
using namespace std::chrono_literals;

// What every scenario gets: the logger (null without --logger) and N.
struct Run {
  Logger* logger = nullptr;
  long lines = 3;
};

// Volatile, so that the compiler cannot see what these lead to.
volatile std::uintptr_t g_bad_address = 0x10;  // in the null page; not null, which UBSan would check
volatile bool g_forever = true;
volatile int g_zero = 0;
// stack-smash: 16 bytes more than smash_stack_frame's buffer holds. That
// reaches the canary (GCC puts arrays next to it) but not the return
// address, so a backtrace through the frame stays readable.
volatile std::size_t g_smash_len = 32;

void say(const char* text) {
  if (::write(STDERR_FILENO, text, std::strlen(text)) < 0) {
  }
}

void print_lines(const Run& run, const char* prefix = "") {
  for (long k = 1; k <= run.lines; ++k) {
    std::printf("%sline %ld\n", prefix, k);
    if (run.logger != nullptr) run.logger->log(Level::kInfo, "{}line {}", prefix, k);
  }
}

// A thread of the program: with --logger it gets an alternate signal stack
// first, so that its stack overflow can be reported.
template <class F>
std::thread start_thread(const Run& run, F body) {
  return std::thread([&run, body] {
    if (run.logger != nullptr) {
      if (auto r = prepare_thread(); !r) say("torture_child: prepare_thread failed\n");
    }
    body();
  });
}

[[gnu::noinline, gnu::noclone]] void crash_null_write() { *reinterpret_cast<volatile int*>(g_bad_address) = 1; }

// Calls `crash` and stays on the stack below it (no tail call), so the
// scenario's function shows in a backtrace.
template <class F>
void call_crash(F crash) {
  crash();
  asm volatile("" ::: "memory");
}

// --- heap ---------------------------------------------------------------

// Writes 96 bytes of 0x41 past the end of a 64-byte block: over the next
// chunk's header (glibc keeps it right after the block).
[[gnu::noinline, gnu::noclone]] void overflow_heap_block(void* block) {
  volatile unsigned char* volatile p = static_cast<unsigned char*>(block);
  for (std::size_t i = 64; i < 64 + 96; ++i) p[i] = 0x41;
}

int heap_overflow_segv(const Run& run) {
  print_lines(run);
  overflow_heap_block(std::malloc(64));
  call_crash(crash_null_write);
  return 1;
}

// A 64-byte block right before glibc's top chunk, so that the overflow
// breaks the top chunk's size, which the next malloc served from the top
// checks. A fresh malloc(64) is there in a plain program, but with --logger
// it comes from a chunk freed during setup, among netpoll's objects. So
// blocks are taken until one is. (glibc's layout: a chunk's size word sits
// 8 bytes before the memory malloc returns; the main arena's top chunk is
// the last chunk, ending at the program break.) Null when none is found:
// another allocator (ASan's) or layout.
void* block_before_top() {
  for (int i = 0; i < 4096; ++i) {
    const auto brk = reinterpret_cast<std::uintptr_t>(::sbrk(0));  // malloc may move it
    const auto block = reinterpret_cast<std::uintptr_t>(std::malloc(64));
    if (block == 0 || block > brk) continue;
    const std::uintptr_t next = block - 16 + (*reinterpret_cast<const std::size_t*>(block - 8) & ~std::size_t{7});
    if (next + 16 > brk) continue;
    const std::size_t top = *reinterpret_cast<const std::size_t*>(next + 8) & ~std::size_t{7};
    if (next + top == brk) return reinterpret_cast<void*>(block);
  }
  return nullptr;
}

// Allocates until glibc notices the broken top chunk ("malloc(): corrupted
// top size") and aborts from inside malloc (holding the arena's lock, when
// the program has threads).
// Should glibc not notice (another allocator, another layout), the program
// aborts here: the scenario always dies by SIGABRT.
[[gnu::noinline, gnu::noclone]] void malloc_until_abort() {
  static constexpr std::size_t kSizes[] = {24, 100, 500, 1000, 4000, 0x18000};
  for (int round = 0; round < 16; ++round) {
    for (const std::size_t size : kSizes) {
      void* volatile p = std::malloc(size + round);
      (void)p;
    }
  }
  say("torture_child: malloc did not notice the overflow; aborting\n");
  std::abort();
}

int heap_overflow_malloc(const Run& run) {
  print_lines(run);
  void* block = block_before_top();
  if (block == nullptr) {
    say("torture_child: no block before the top chunk; overflowing another\n");
    block = std::malloc(64);
  }
  overflow_heap_block(block);
  malloc_until_abort();
  return 1;
}

[[gnu::noinline, gnu::noclone]] void free_twice() {
  void* volatile p = std::malloc(32);
  std::free(p);
  std::free(p);  // glibc: "free(): double free detected in tcache 2"
  asm volatile("" ::: "memory");
}

int double_free(const Run& run) {
  print_lines(run);
  free_twice();
  return 1;
}

// --- memory wipes -------------------------------------------------------
// /proc/self/maps is read with open/read into a stack buffer and parsed
// into a stack array before anything is wiped. The wipe and the crash after
// it are written out in one function that never returns: after the wipe
// no libc call may run (its state is gone) and no function may return (the
// thread's stack canary in TLS may be gone: every canary check would fail).

constexpr std::size_t kMapsBytes = 64 * 1024;  // longer maps are cut
constexpr std::size_t kMaxRegions = 512;
// An anonymous mapping larger than this is a reserve (ASan's shadow, say):
// writing it all would commit it. Skipped.
constexpr std::uintptr_t kMaxWipe = 64u << 20;

struct Region {
  std::uintptr_t start = 0;
  std::uintptr_t end = 0;
};

std::size_t read_maps(char* buf, std::size_t cap) {
  const int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::size_t len = 0;
  while (len < cap) {
    const ssize_t n = ::read(fd, buf + len, cap - len);
    if (n <= 0) break;
    len += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return len;
}

// One line of /proc/self/maps: "start-end perms offset dev inode   path".
struct MapsLine {
  Region range;
  std::string_view perms;
  std::string_view path;
};

std::uintptr_t parse_hex(std::string_view& s) {
  std::uintptr_t v = 0;
  while (!s.empty()) {
    const char c = s.front();
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      break;
    }
    v = v * 16 + static_cast<std::uintptr_t>(d);
    s.remove_prefix(1);
  }
  return v;
}

std::string_view next_field(std::string_view& s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  const std::size_t end = std::min(s.find(' '), s.size());
  const std::string_view field = s.substr(0, end);
  s.remove_prefix(end);
  return field;
}

bool parse_maps_line(std::string_view s, MapsLine& out) {
  out.range.start = parse_hex(s);
  if (s.empty() || s.front() != '-') return false;
  s.remove_prefix(1);
  out.range.end = parse_hex(s);
  out.perms = next_field(s);
  for (int i = 0; i < 3; ++i) next_field(s);  // offset, dev, inode
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  out.path = s;
  return out.perms.size() == 4 && out.range.end > out.range.start;
}

template <class F>
void for_each_mapping(std::string_view text, F f) {
  while (!text.empty()) {
    const std::size_t nl = std::min(text.find('\n'), text.size());
    MapsLine m;
    if (parse_maps_line(text.substr(0, nl), m)) f(m);
    text.remove_prefix(std::min(nl + 1, text.size()));
  }
}

[[gnu::noinline, gnu::noclone]] void wipe_heap_and_crash() {
  char maps[kMapsBytes];
  const std::string_view text(maps, read_maps(maps, sizeof maps));
  Region heap;
  for_each_mapping(text, [&](const MapsLine& m) {
    if (m.path == "[heap]") heap = m.range;
  });
  if (heap.end == 0) say("torture_child: no [heap] mapping to wipe\n");
  for (auto* p = reinterpret_cast<volatile std::uint64_t*>(heap.start);
       p < reinterpret_cast<volatile std::uint64_t*>(heap.end); ++p) {
    *p = 0x4141414141414141;
  }
  volatile std::uintptr_t bad = 0x10;
  *reinterpret_cast<volatile int*>(bad) = 1;
}

int heap_wipe(const Run& run) {
  print_lines(run);
  wipe_heap_and_crash();
  return 1;
}

// Wipes every private read-write anonymous mapping ([heap] and [anon:...]
// included): malloc's arenas, other threads' stacks, TLS, the parts of
// .bss beyond the file, netpoll's rings. Not this thread's stack, nor
// anything not writable (guard pages, PROT_NONE reserves, [vvar]) or
// file-backed.
[[gnu::noinline, gnu::noclone]] void wipe_anon_and_crash() {
  char maps[kMapsBytes];
  const std::string_view text(maps, read_maps(maps, sizeof maps));
  Region regions[kMaxRegions];
  std::size_t count = 0;
  const auto here = reinterpret_cast<std::uintptr_t>(&maps);
  for_each_mapping(text, [&](const MapsLine& m) {
    const bool anonymous = m.path.empty() || m.path == "[heap]" || m.path.starts_with("[anon:");
    const bool writable = m.perms[0] == 'r' && m.perms[1] == 'w' && m.perms[3] == 'p';
    const bool our_stack = m.range.start <= here && here < m.range.end;
    if (anonymous && writable && !our_stack && m.range.end - m.range.start <= kMaxWipe && count < kMaxRegions) {
      regions[count++] = m.range;
    }
  });
  for (std::size_t i = 0; i < count; ++i) {
    for (auto* p = reinterpret_cast<volatile std::uint64_t*>(regions[i].start);
         p < reinterpret_cast<volatile std::uint64_t*>(regions[i].end); ++p) {
      *p = 0x4141414141414141;
    }
  }
  volatile std::uintptr_t bad = 0x10;
  *reinterpret_cast<volatile int*>(bad) = 1;
}

int anon_wipe(const Run& run) {
  print_lines(run);
  wipe_anon_and_crash();
  return 1;
}

// --- stack --------------------------------------------------------------

// Returns, so that the canary is checked: __stack_chk_fail aborts.
[[gnu::noinline, gnu::noclone]] void smash_stack_frame() {
  char buf[16];
  char* volatile p = buf;
  for (std::size_t i = 0; i < g_smash_len; ++i) p[i] = 'A';
  asm volatile("" : : "r"(buf) : "memory");
}

int stack_smash(const Run& run) {
  print_lines(run);
  smash_stack_frame();
  return 1;
}

[[gnu::noinline, gnu::noclone]] int recurse_forever(int depth) {
  volatile char frame[4096];
  frame[0] = static_cast<char>(depth);
  if (!g_forever) return frame[0];
  return recurse_forever(depth + 1) + frame[0];
}

int stack_overflow_main(const Run& run) {
  print_lines(run);
  return recurse_forever(0);
}

int stack_overflow_thread(const Run& run) {
  print_lines(run);
  start_thread(run, [] { recurse_forever(0); }).join();
  return 1;
}

// --- threads ------------------------------------------------------------

[[gnu::noinline, gnu::noclone]] void abort_while_threads_print(const Run& run) {
  for (int t = 1; t <= 8; ++t) {
    start_thread(run, [t] {
      for (long k = 1;; ++k) std::printf("thread %d line %ld\n", t, k);
    }).detach();
  }
  std::this_thread::sleep_for(50ms);
  print_lines(run);
  std::abort();
}

int abort_printing_threads(const Run& run) {
  abort_while_threads_print(run);
  return 1;
}

// Both threads fault at (nearly) the same moment.
[[gnu::noinline, gnu::noclone]] void crash_together(const Run& run) {
  std::atomic<int> ready{0};
  auto body = [&ready] {
    ready.fetch_add(1);
    while (ready.load() < 2) {
    }
    call_crash(crash_null_write);
  };
  std::thread a = start_thread(run, body);
  std::thread b = start_thread(run, body);
  a.join();
  b.join();
}

int two_threads(const Run& run) {
  print_lines(run);
  crash_together(run);
  return 1;
}

// --- signals ------------------------------------------------------------

// A page of a file that is truncated to nothing after it was mapped.
[[gnu::noinline, gnu::noclone]] void touch_truncated_mapping() {
  char path[] = "/tmp/torture_child-sigbus-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) return say("torture_child: mkstemp failed\n");
  ::unlink(path);
  if (::ftruncate(fd, 4096) != 0) return say("torture_child: ftruncate failed\n");
  void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (page == MAP_FAILED) return say("torture_child: mmap failed\n");
  if (::ftruncate(fd, 0) != 0) return say("torture_child: ftruncate failed\n");
  *static_cast<volatile char*>(page) = 1;
}

int sigbus(const Run& run) {
  print_lines(run);
  call_crash(touch_truncated_mapping);
  return 1;
}

[[gnu::noinline, gnu::noclone]] void execute_ud2() { __builtin_trap(); }

int sigill(const Run& run) {
  print_lines(run);
  call_crash(execute_ud2);
  return 1;
}

[[gnu::noinline, gnu::noclone]] int divide_by_zero() {
  volatile int one = 1;
  return one / g_zero;
}

int sigfpe(const Run& run) {
  print_lines(run);
  return divide_by_zero() + 1;
}

// kill() to the process: the kernel gives it to the main thread (this one,
// which does not block it) on the way back from the system call.
[[gnu::noinline, gnu::noclone]] void kill_self_segv() {
  ::kill(::getpid(), SIGSEGV);
  for (;;) ::pause();
}

int kill_segv(const Run& run) {
  print_lines(run);
  call_crash(kill_self_segv);
  return 1;
}

[[gnu::noinline, gnu::noclone]] void on_sigusr1(int) { call_crash(crash_null_write); }

int crash_in_handler(const Run& run) {
  struct sigaction sa {};
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGUSR1, &sa, nullptr);
  print_lines(run);
  ::raise(SIGUSR1);
  return 1;
}

[[gnu::noinline, gnu::noclone]] void block_all_and_crash() {
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, nullptr);
  call_crash(crash_null_write);
}

int all_blocked(const Run& run) {
  print_lines(run);
  block_all_and_crash();
  return 1;
}

void own_segv_handler(int) {
  say("own handler\n");
  ::signal(SIGSEGV, SIG_DFL);
  ::raise(SIGSEGV);  // pending until this handler returns, then kills
}

[[gnu::noinline, gnu::noclone]] void own_handler_and_crash() {
  struct sigaction sa {};
  sa.sa_handler = own_segv_handler;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGSEGV, &sa, nullptr);
  call_crash(crash_null_write);
}

int own_handler_reraise(const Run& run) {
  print_lines(run);
  own_handler_and_crash();
  return 1;
}

// --- descriptors --------------------------------------------------------

constexpr int kLastFd = 1024;

[[gnu::noinline, gnu::noclone]] void close_fds_and_crash() {
  for (int fd = 3; fd <= kLastFd; ++fd) ::close(fd);
  call_crash(crash_null_write);
}

int closed_fds(const Run& run) {
  print_lines(run);
  close_fds_and_crash();
  return 1;
}

// Descriptors 3..40 become files: /dev/null, and unnamed temporary files
// that a write to a reused descriptor would quietly land in.
[[gnu::noinline, gnu::noclone]] void reuse_fds_and_crash() {
  for (int fd = 3; fd <= kLastFd; ++fd) ::close(fd);
  for (int i = 0; i < 64; ++i) {
    int fd = i % 2 == 0 ? ::open("/tmp", O_TMPFILE | O_RDWR, 0600) : -1;
    if (fd < 0) fd = ::open("/dev/null", O_RDWR);
    if (fd < 0 || fd >= 40) break;
  }
  call_crash(crash_null_write);
}

int reused_fds(const Run& run) {
  print_lines(run);
  reuse_fds_and_crash();
  return 1;
}

// --- processes ----------------------------------------------------------

[[gnu::noinline, gnu::noclone]] void crash_forked_child(const Run& run) {
  print_lines(run, "child ");
  call_crash(crash_null_write);
}

int fork_crash(const Run& run) {
  print_lines(run);
  const pid_t pid = ::fork();
  if (pid < 0) {
    say("torture_child: fork failed\n");
    return 1;
  }
  if (pid == 0) {
    crash_forked_child(run);
    ::_exit(1);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) {
    say("torture_child: waitpid failed\n");
    return 1;
  }
  if (!WIFSIGNALED(status)) {
    std::fprintf(stderr, "torture_child: the child exited with %d\n", WEXITSTATUS(status));
    return 1;
  }
  std::printf("parent saw child signal %d\n", WTERMSIG(status));
  return 0;
}

[[gnu::noinline, gnu::noclone]] void throw_uncaught() { throw std::runtime_error("torture"); }

int uncaught_exception(const Run& run) {
  print_lines(run);
  throw_uncaught();
  return 1;
}

int exit_zero(const Run& run) {
  print_lines(run);
  return 0;
}

struct Scenario {
  std::string_view name;
  int (*run)(const Run&);
};

constexpr Scenario kScenarios[] = {
    {"heap-overflow-segv", heap_overflow_segv},
    {"heap-overflow-malloc", heap_overflow_malloc},
    {"heap-wipe", heap_wipe},
    {"anon-wipe", anon_wipe},
    {"double-free", double_free},
    {"stack-smash", stack_smash},
    {"stack-overflow-main", stack_overflow_main},
    {"stack-overflow-thread", stack_overflow_thread},
    {"abort-printing-threads", abort_printing_threads},
    {"sigbus", sigbus},
    {"sigill", sigill},
    {"sigfpe", sigfpe},
    {"kill-segv", kill_segv},
    {"crash-in-handler", crash_in_handler},
    {"all-blocked", all_blocked},
    {"own-handler-reraise", own_handler_reraise},
    {"closed-fds", closed_fds},
    {"reused-fds", reused_fds},
    {"fork-crash", fork_crash},
    {"uncaught-exception", uncaught_exception},
    {"two-threads", two_threads},
    {"exit-zero", exit_zero},
};

int usage() {
  std::fprintf(stderr, "usage: torture_child SCENARIO [--logger TARGET] [--lines N]\nscenarios:");
  for (const Scenario& s : kScenarios) std::fprintf(stderr, " %.*s", static_cast<int>(s.name.size()), s.name.data());
  std::fprintf(stderr, "\n");
  return 2;
}

// The logger on `targets`, with netpoll's crash handler installed; null
// after printing why it could not be set up.
std::unique_ptr<Logger> make_logger(const char* targets) {
  auto parsed = np::core::parse_targets(targets);
  if (!parsed) {
    std::fprintf(stderr, "torture_child: %s\n", parsed.error().message.c_str());
    return nullptr;
  }
  LoggerConfig cfg;
  cfg.name = "torture_child";
  for (auto& t : parsed->targets) {
    TargetConfig tc;
    tc.target = std::move(t);
    cfg.targets.push_back(std::move(tc));
  }
  auto lg = Logger::create(std::move(cfg));
  if (!lg) {
    std::fprintf(stderr, "torture_child: %s\n", lg.error().message.c_str());
    return nullptr;
  }
  if (auto r = install_crash_handler(**lg); !r) {
    std::fprintf(stderr, "torture_child: %s\n", r.error().message.c_str());
    return nullptr;
  }
  return std::move(*lg);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc < 2) return usage();
  const Scenario* scenario = nullptr;
  for (const Scenario& s : kScenarios) {
    if (s.name == argv[1]) scenario = &s;
  }
  if (scenario == nullptr) return usage();
  const char* logger_target = nullptr;
  Run run;
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--logger" && i + 1 < argc) {
      logger_target = argv[++i];
    } else if (arg == "--lines" && i + 1 < argc) {
      char* end = nullptr;
      run.lines = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || run.lines < 0 || run.lines > 1'000'000) return usage();
    } else {
      return usage();
    }
  }
  std::unique_ptr<Logger> logger;
  if (logger_target != nullptr) {
    logger = make_logger(logger_target);
    if (!logger) return 2;
    run.logger = logger.get();
  }
  return scenario->run(run);
}
