// gdb_child MODE ...: a program for the gdb stub's tests
// (tests/integration/gdb_test.cpp), which attach stock gdb to it over UDP.
//
// What gdb must find: a global with a known value, a heap string with
// known text, named threads blocked in functions with recognisable names,
// a frame with locals of known values:
//   crash               three named threads ("alpha-reader",
//                       "beta-sleeper", "gamma-waiter") wait; the main
//                       thread faults in crash_in_delta_function(), called
//                       from caller_with_locals(); netpoll run --gdb's
//                       preloaded crash path serves gdb;
//   breakin DEV IP PORT sets up a gdb stub on device DEV, address IP, UDP
//                       PORT (the peer learned), prints "ready", breaks in
//                       (every thread stops until gdb continues), then adds
//                       squares in add_square() four times, prints "total 14"
//                       and exits with status 3;
//   spin DEV IP PORT    as breakin, then starts a thread that spins in
//                       spins_in_epsilon() ("epsilon-spinner"), prints
//                       "running" and spins in
//                       spin_until_told() until gdb sets gdb_child_told
//                       (after interrupting it), prints "told" and exits
//                       with status 4.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "netpoll/base/addr.h"
#include "netpoll/base/clock.h"
#include "netpoll/gdb/stub.h"
#include "parked_threads.h"

// What gdb prints: names kept global (and used) on purpose.
int gdb_child_global = 515151;
char* gdb_child_heap_string = nullptr;
volatile int gdb_child_told = 0;

namespace {

volatile std::uintptr_t g_bad_address = 0x18;
std::unique_ptr<np::gdb::Stub> g_stub;

}  // namespace

// Global, so that gdb names them plainly.
[[gnu::noinline]] void crash_in_delta_function() {
  *reinterpret_cast<volatile int*>(g_bad_address) = 1;
}

[[gnu::noinline]] int caller_with_locals(int depth) {
  volatile int local_counter = 31337;
  volatile long local_twice = 2L * depth;
  crash_in_delta_function();
  return local_counter + static_cast<int>(local_twice);
}

volatile unsigned long gdb_child_spins = 0;

// A thread that never blocks (spin mode): gdb steps it while the others,
// the one that serves gdb among them, stay stopped.
[[gnu::noinline]] void spins_in_epsilon() {
  for (;;) gdb_child_spins = gdb_child_spins + 1;
}

[[gnu::noinline]] void spin_until_told() {
  while (gdb_child_told == 0) {
  }
}

[[gnu::noinline]] int add_square(int i) {
  volatile int square = i * i;
  return square;
}

int main(int argc, char** argv) {
  gdb_child_heap_string = static_cast<char*>(std::malloc(64));
  std::strcpy(gdb_child_heap_string, "netpoll gdb child heap string");
  const std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "crash") {
    start_threads();
    std::printf("crashing\n");
    std::fflush(stdout);
    return caller_with_locals(21);
  }
  if ((mode == "breakin" || mode == "spin") && argc == 5) {
    np::gdb::StubConfig cfg;
    cfg.client.target.device = argv[2];
    const auto ip = np::Ipv4Addr::parse(argv[3]);
    if (!ip) return 2;
    cfg.client.target.local_ip = *ip;
    cfg.client.target.local_port = static_cast<std::uint16_t>(std::atoi(argv[4]));
    cfg.client.target.remote_ip = np::Ipv4Addr{};
    cfg.wait = std::chrono::seconds(60);
    auto stub = np::gdb::Stub::setup(std::move(cfg));
    if (!stub) {
      std::fprintf(stderr, "gdb stub: %s\n", stub.error().message.c_str());
      return 2;
    }
    // Kept until the process ends: gdb hears the exit status from it (its
    // on_exit handler runs before the global is destroyed).
    g_stub = std::move(*stub);
    start_threads();
    std::printf("ready\n");
    std::fflush(stdout);
    np::gdb::Stub::break_in();
    if (mode == "spin") {
      pthread_t t;
      if (pthread_create(&t, nullptr, [](void*) -> void* { spins_in_epsilon(); return nullptr; }, nullptr) != 0)
        return 2;
      pthread_setname_np(t, "epsilon-spinner");
      pthread_detach(t);
      std::printf("running\n");  // gdb let it go: it now waits for the program to stop
      std::fflush(stdout);
      spin_until_told();
      std::printf("told\n");
      std::fflush(stdout);
      return 4;
    }
    int total = 0;
    for (int i = 0; i < 4; ++i) total += add_square(i);
    std::printf("total %d\n", total);
    std::fflush(stdout);
    return 3;
  }
  std::fprintf(stderr, "usage: gdb_child crash | gdb_child breakin|spin DEVICE IP PORT\n");
  return 2;
}
