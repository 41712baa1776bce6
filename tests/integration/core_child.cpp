// core_child MODE CORE_PATH: a program that writes its own core with
// np::dump::CoreWriter into CORE_PATH, for tests/integration/
// core_dump_test.cpp, which opens the core with gdb; core_child kernel:
// the same process leaves its core to the kernel (core_pattern), for
// tests/integration/serial/core_pattern_test.cpp.
//
// What gdb must find: a global with a known value, a heap string with
// known text, three threads blocked in functions with recognisable names
// (one each in read(2), nanosleep(2) and a condition variable), and the
// thread that wrote the core:
//   live   the main thread dumps from dump_live_from_epsilon() and the
//          process goes on; it prints "ready PID" and waits for its
//          standard input to close (so that gcore can take a reference
//          core of it), then exits 0;
//   crash  the main thread faults in crash_in_delta_function(); the
//          SIGSEGV handler dumps, lets the other threads go, and returns
//          with the default action restored: the process dies of SIGSEGV
//          (and the kernel writes its own core, a reference, where
//          allowed);
//   kernel as crash, without a handler and without CORE_PATH: RLIMIT_CORE
//          is raised to its hard limit first (a core_pattern pipe takes
//          any limit but 1; a file needs room for the core), it prints
//          "ready PID" once the threads wait, and the kernel writes the
//          core;
//   heap   the main thread overruns a heap block into the next block's
//          header, then frees that block; malloc finds its metadata
//          broken and aborts: the SIGABRT handler dumps.
//   plain  as kernel, the limit left alone: for a core made by someone
//          else (netpoll run --dump's preloaded crash path).
// The sink writes every piece where its offset says (pwrite) and the
// file is cut to the core's size at the end, as netpoll dumpd does.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "netpoll/base/clock.h"
#include "netpoll/dump/core_writer.h"
#include "parked_threads.h"

// What gdb prints: names kept global (and used) on purpose.
int core_child_global = 424242;
char* core_child_heap_string = nullptr;

namespace {

std::unique_ptr<np::dump::CoreWriter> g_writer;
int g_core_fd = -1;
volatile std::uintptr_t g_bad_address = 0x18;

void say(std::string_view s) { [[maybe_unused]] const ssize_t w = ::write(STDOUT_FILENO, s.data(), s.size()); }

void say_number(std::uint64_t v) {
  char buf[24];
  int n = 0;
  do {
    buf[sizeof buf - 1 - n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < 20);
  say(std::string_view(buf + sizeof buf - n, static_cast<std::size_t>(n)));
}

bool sink(std::uint64_t offset, std::span<const std::byte> bytes) {
  return ::pwrite(g_core_fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)) ==
         static_cast<ssize_t>(bytes.size());
}

// Dumps; prints the summary. Returns the core's size, 0 on failure.
std::uint64_t dump(const siginfo_t* si, const ucontext_t* uc) {
  const std::int64_t t0 = np::monotonic_ns();
  const auto b = g_writer->begin(si, uc, t0 + 5'000'000'000);
  const std::int64_t t1 = np::monotonic_ns();
  if (!b) {
    say("begin failed: ");
    say(np::to_string(b.error()));
    say("\n");
    return 0;
  }
  auto to_file = [](std::uint64_t offset, std::span<const std::byte> bytes) { return sink(offset, bytes); };
  const auto e = g_writer->emit(to_file, np::monotonic_ns() + 20'000'000'000);
  if (!e) {
    say("emit failed: ");
    say(np::to_string(e.error()));
    say("\n");
    return 0;
  }
  const std::int64_t t2 = np::monotonic_ns();
  if (::ftruncate(g_core_fd, static_cast<off_t>(e->size)) != 0) return 0;
  say("dumped threads=");
  say_number(e->threads);
  say(" without_registers=");
  say_number(e->threads_without_registers);
  say(" mappings=");
  say_number(e->mappings);
  say(" size=");
  say_number(e->size);
  say(" sent=");
  say_number(e->bytes_sent);
  say(" bound=");
  say_number(e->bytes_to_send);
  say(" zero_pages=");
  say_number(e->zero_pages_skipped);
  say(" unreadable=");
  say_number(e->unreadable_pages);
  say(" begin_us=");
  say_number(static_cast<std::uint64_t>((t1 - t0) / 1000));
  say(" emit_us=");
  say_number(static_cast<std::uint64_t>((t2 - t1) / 1000));
  say("\n");
  return e->size;
}

void on_fatal(int sig, siginfo_t* si, void* uc) {
  dump(si, static_cast<const ucontext_t*>(uc));
  g_writer->end();
  // Test only: give the released threads time to be back in their system
  // calls before the kernel writes its own core (the reference).
  np::nap(std::chrono::milliseconds(100));
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(sig, &dfl, nullptr);
  // SIGSEGV faults again on return; abort() raises SIGABRT again itself.
}

[[gnu::noinline]] void crash_in_delta_function() {
  *reinterpret_cast<volatile int*>(g_bad_address) = core_child_global;
  g_ready.fetch_add(1000);
}

[[gnu::noinline]] void corrupt_heap_then_free() {
  auto* a = static_cast<char*>(std::malloc(40));
  auto* b = static_cast<char*>(std::malloc(40));
  // Runs 16 bytes past `a`: over `b`'s chunk header (its size word).
  std::memset(a, 0x41, static_cast<std::size_t>(b - a));
  std::free(b);  // malloc sees the broken size and aborts
  g_ready.fetch_add(1000);
}

[[gnu::noinline]] void dump_live_from_epsilon() {
  if (dump(nullptr, nullptr) == 0) std::exit(3);
  g_writer->end();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::string_view(argv[1]) == "plain" || std::string_view(argv[1]) == "kernel")) {
    if (std::string_view(argv[1]) == "kernel") {
      // `ulimit -c` as high as it goes (raising the hard limit needs
      // CAP_SYS_RESOURCE, which a container may not have).
      rlimit core{};
      if (::getrlimit(RLIMIT_CORE, &core) != 0 || core.rlim_max == 0) {
        std::fprintf(stderr, "RLIMIT_CORE: no core allowed\n");
        return 2;
      }
      core.rlim_cur = core.rlim_max;
      if (::setrlimit(RLIMIT_CORE, &core) != 0) {
        std::perror("setrlimit RLIMIT_CORE");
        return 2;
      }
    }
    core_child_heap_string = static_cast<char*>(std::malloc(64));
    std::strcpy(core_child_heap_string, "netpoll core child heap string");
    start_threads();
    say("ready ");
    say_number(static_cast<std::uint64_t>(::getpid()));
    say("\n");
    crash_in_delta_function();
    return 4;  // not reached
  }
  if (argc != 3) {
    std::fprintf(stderr, "usage: core_child live|crash|heap CORE_PATH | core_child plain|kernel\n");
    return 2;
  }
  const std::string_view mode = argv[1];
  core_child_heap_string = static_cast<char*>(std::malloc(64));
  std::strcpy(core_child_heap_string, "netpoll core child heap string");
  g_core_fd = ::open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (g_core_fd < 0) {
    std::perror(argv[2]);
    return 2;
  }
  auto w = np::dump::CoreWriter::make();
  if (!w) {
    std::fprintf(stderr, "%s\n", w.error().message.c_str());
    return 2;
  }
  g_writer = std::move(*w);
  start_threads();

  if (mode == "live") {
    dump_live_from_epsilon();
    say("ready ");
    say_number(static_cast<std::uint64_t>(::getpid()));
    say("\n");
    char c;
    while (::read(STDIN_FILENO, &c, 1) > 0) {
    }
    std::_Exit(0);  // the blocked threads are not joined
  }
  // The handler runs on a stack of its own, as a crash path's would.
  static char altstack[256 * 1024];
  stack_t st{};
  st.ss_sp = altstack;
  st.ss_size = sizeof altstack;
  ::sigaltstack(&st, nullptr);
  struct sigaction sa {};
  sa.sa_sigaction = on_fatal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGSEGV, &sa, nullptr);
  ::sigaction(SIGABRT, &sa, nullptr);
  if (mode == "crash") crash_in_delta_function();
  if (mode == "heap") corrupt_heap_then_free();
  return 4;  // not reached
}
