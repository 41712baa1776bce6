// crash_child SCENARIO [TARGET]: a program that crashes on purpose, for
// tests/integration/crash_test.cpp. With netpoll's crash path installed it
// logs "last words N" records first; the control scenarios crash the same
// way without netpoll, so the test can compare how each one dies.
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "netpoll/console/crash.h"
#include "netpoll/console/logger.h"
// A test hook of core's (private to core and its tests).
#include "core/testing.h"

namespace {

using namespace np::console;

// Volatile, so that the compiler cannot see that these crash.
volatile std::uintptr_t g_bad_address = 0x10;
volatile bool g_forever = true;

[[gnu::noinline]] void segfault_now() { *reinterpret_cast<volatile int*>(g_bad_address) = 1; }

[[gnu::noinline]] int recurse_forever(int depth) {
  volatile char frame[4096];
  frame[0] = static_cast<char>(depth);
  if (!g_forever) return frame[0];
  return recurse_forever(depth + 1) + frame[0];
}

// Breaks the size of the heap's top chunk, then asks malloc for memory that
// must come from it: malloc finds the corruption and aborts from inside,
// with the arena lock held. (glibc's layout: a chunk's size word sits 8
// bytes before the memory malloc returns; the main arena's top chunk is
// the last chunk, ending at the program break.)
[[gnu::noinline]] void crash_inside_malloc() {
  constexpr std::size_t kBig = 0x18000;  // above every bin, below the mmap threshold
  const auto brk_end = reinterpret_cast<std::uintptr_t>(::sbrk(0));
  for (int attempt = 0; attempt < 64; ++attempt) {
    const auto p = reinterpret_cast<std::uintptr_t>(std::malloc(kBig));
    const std::uintptr_t chunk = p - 16;
    const std::uintptr_t next = chunk + (*reinterpret_cast<std::size_t*>(chunk + 8) & ~std::size_t{7});
    volatile std::uintptr_t next_size = next + 8;
    const std::size_t top = *reinterpret_cast<std::size_t*>(next_size) & ~std::size_t{7};
    if (next + top == reinterpret_cast<std::uintptr_t>(::sbrk(0)) || next + top == brk_end) {
      *reinterpret_cast<std::size_t*>(next_size) = ~std::size_t{0xf};
      void* again = std::malloc(kBig);
      std::printf("%p\n", again);  // not reached
    }
  }
  std::fprintf(stderr, "crash_child: could not reach the top chunk\n");
}

int usage() {
  std::fprintf(stderr, "usage: crash_child SCENARIO [TARGET]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string scenario = argv[1];
  if (scenario == "control-segv") segfault_now();
  if (scenario == "control-stack") return recurse_forever(0);
  if (scenario == "control-abort") std::abort();
  if (scenario == "control-malloc") crash_inside_malloc();
  if (scenario == "control-thread-stack") {
    // A stack overflow in a thread other than main (netpoll run gives every
    // thread an alternate signal stack).
    std::printf("about to overflow a thread's stack\n");
    std::fflush(stdout);
    std::thread([] { recurse_forever(0); }).join();
    return 0;
  }
  if (argc < 3) return usage();

  LoggerConfig cfg;
  cfg.name = "crash_child";
  TargetConfig t;
  auto parsed = np::core::parse_targets(argv[2]);
  if (!parsed) {
    std::fprintf(stderr, "%s\n", parsed.error().message.c_str());
    return 2;
  }
  t.target = parsed->targets[0];
  cfg.targets.push_back(t);
  auto lg = Logger::create(std::move(cfg));
  if (!lg) {
    std::fprintf(stderr, "%s\n", lg.error().message.c_str());
    return 2;
  }
  CrashConfig crash;
  // deadline-*: a report that cannot finish in time. The runner's "idle"
  // word never comes, and the handler would wait 10 s for it.
  std::atomic<std::uint32_t> never_idle{0};
  if (scenario.rfind("deadline-", 0) == 0) {
    crash.peer_idle = &never_idle;
    crash.peer_wait = std::chrono::seconds(10);
    crash.deadline = std::chrono::milliseconds(300);
  }
  if (auto r = install_crash_handler(**lg, crash); !r) {
    std::fprintf(stderr, "%s\n", r.error().message.c_str());
    return 2;
  }
  pthread_setname_np(pthread_self(), "crash-child");

  if (scenario == "heap-segv") {
    for (int i = 1; i <= 3; ++i) (*lg)->log(Level::kInfo, "last words {}", i);
    // Overwrite the chunk's header and the next one's: the heap is broken
    // (through a volatile address, which the compiler cannot check).
    volatile std::uintptr_t chunk = reinterpret_cast<std::uintptr_t>(std::malloc(32)) - 16;
    std::memset(reinterpret_cast<void*>(chunk), 0xff, 96);
    segfault_now();
  }
  if (scenario == "stack-overflow") {
    for (int i = 1; i <= 3; ++i) (*lg)->log(Level::kInfo, "last words {}", i);
    return recurse_forever(0);
  }
  if (scenario == "abort-lock-held" || scenario == "abort-lock-held-deferred") {
    // Another thread holds the device's transmit lock (as one frozen in the
    // middle of a transmit would) and never gives it back.
    std::atomic<bool> held{false};
    std::thread([&] {
      np::core::SharedDeviceTesting::hold_tx_lock((*lg)->target_client(0).shared());
      held = true;
      for (;;) pause();
    }).detach();
    while (!held) std::this_thread::yield();
    for (int i = 1; i <= 3; ++i) (*lg)->log(Level::kInfo, "last words {}", i);
    if (scenario == "abort-lock-held-deferred") {
      // The sender thread got to them first: its sends wait in the device's
      // deferred queue (bounded wait: the test fails if they never do).
      auto& dev = (*lg)->target_client(0).shared();
      for (int i = 0; i < 2000 && dev.deferred_depth() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::abort();
  }
  if (scenario == "crash-in-malloc") {
    for (int i = 1; i <= 3; ++i) (*lg)->log(Level::kInfo, "last words {}", i);
    crash_inside_malloc();
  }
  if (scenario == "burst-segv") {
    // More records than the sender can have sent by the time of the crash.
    for (int i = 1; i <= 500; ++i) (*lg)->log(Level::kInfo, "last words {}", i);
    segfault_now();
  }
  if (scenario == "deadline-segv") {
    for (int i = 1; i <= 3; ++i) (*lg)->log(Level::kInfo, "last words {}", i);
    segfault_now();
  }
  if (scenario == "closed-fds-segv" || scenario == "reused-fds-segv") {
    for (int i = 1; i <= 3; ++i) (*lg)->log(Level::kInfo, "last words {}", i);
    (*lg)->flush(std::chrono::seconds(1));
    // The program closes every descriptor netpoll holds (and, reused,
    // opens files under the same numbers) before it crashes.
    for (int fd = 3; fd <= 1024; ++fd) ::close(fd);
    if (scenario == "reused-fds-segv") {
      for (int i = 0; i < 64; ++i) static_cast<void>(::open("/dev/null", O_WRONLY));
    }
    segfault_now();
  }
  if (scenario == "fault-in-report-abort") {
    // The logger itself overwritten (the heap it lives on was): the report
    // faults inside the handler, which must still die of SIGABRT.
    std::memset(static_cast<void*>(lg->get()), 0x41, 64);
    std::abort();
  }
  std::fprintf(stderr, "crash_child: unknown scenario %s\n", scenario.c_str());
  return 2;
}
