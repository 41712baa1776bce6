#include "netpoll/base/owner_lock.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace np {
namespace {

thread_local pid_t t_tid = 0;

// A forked child's only thread has a new tid but inherits the cache of the
// thread that forked: forget it in the child.
void forget_tid_in_child() noexcept { t_tid = 0; }
[[maybe_unused]] const int g_atfork_registered = ::pthread_atfork(nullptr, nullptr, forget_tid_in_child);

}  // namespace

pid_t current_tid() noexcept {
  // gettid(2) is async-signal-safe; the cache makes it free after the first
  // call in each thread.
  if (t_tid == 0) t_tid = static_cast<pid_t>(::syscall(SYS_gettid));
  return t_tid;
}

}  // namespace np
