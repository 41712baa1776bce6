// Three threads parked in three different system calls (read on a pipe
// nobody writes, nanosleep, a condition variable nobody signals), named
// alpha-reader, beta-sleeper and gamma-waiter, for the child programs whose
// every thread a debugger or a core must show: each waits in a function
// of its own whose name the tests look for.
//
// For a child program's one source file (its definitions are that
// program's own).
#pragma once

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>

#include "netpoll/base/clock.h"

namespace {

std::atomic<int> g_ready{0};  // each parked thread adds 1 on its way in
int g_pipe[2] = {-1, -1};
pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
volatile bool g_never = false;

[[gnu::noinline]] void waits_in_alpha_read() {
  g_ready.fetch_add(1);
  char c = 0;
  // read(2) returns only when the pipe is written or closed, never here.
  while (::read(g_pipe[0], &c, 1) != 0 || g_never) {
  }
  g_ready.fetch_add(100);  // work after the call: no tail call hides this frame
}

[[gnu::noinline]] void sleeps_in_beta_nanosleep() {
  g_ready.fetch_add(1);
  for (;;) {
    timespec ts{3600, 0};
    ::nanosleep(&ts, nullptr);
    if (g_never) break;
  }
  g_ready.fetch_add(100);
}

[[gnu::noinline]] void blocks_in_gamma_condvar() {
  pthread_mutex_lock(&g_mutex);
  g_ready.fetch_add(1);
  while (!g_never) pthread_cond_wait(&g_cond, &g_mutex);
  pthread_mutex_unlock(&g_mutex);
  g_ready.fetch_add(100);
}

// Starts the three and returns once they are in their system calls.
void start_threads() {
  if (::pipe(g_pipe) != 0) std::abort();
  struct Body {
    void* (*fn)(void*);
    const char* name;
  };
  const Body bodies[3] = {
      {[](void*) -> void* { waits_in_alpha_read(); return nullptr; }, "alpha-reader"},
      {[](void*) -> void* { sleeps_in_beta_nanosleep(); return nullptr; }, "beta-sleeper"},
      {[](void*) -> void* { blocks_in_gamma_condvar(); return nullptr; }, "gamma-waiter"},
  };
  for (const auto& b : bodies) {
    pthread_t t;
    if (pthread_create(&t, nullptr, b.fn, nullptr) != 0) std::abort();
    pthread_setname_np(t, b.name);
  }
  for (int i = 0; i < 2000 && g_ready.load() < 3; ++i) np::nap(std::chrono::milliseconds(1));
  np::nap(std::chrono::milliseconds(50));  // into their system calls
}

}  // namespace
