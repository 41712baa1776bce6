#include "netpoll/base/owner_lock.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace np {
namespace detail {

thread_local pid_t t_tid = 0;

// gettid(2) is async-signal-safe; the cache makes it free after the first
// call in each thread.
pid_t fetch_tid() noexcept {
  t_tid = static_cast<pid_t>(::syscall(SYS_gettid));
  return t_tid;
}

}  // namespace detail
namespace {

// A forked child's only thread has a new tid but inherits the cache of the
// thread that forked: forget it in the child.
void forget_tid_in_child() noexcept { detail::t_tid = 0; }
[[maybe_unused]] const int g_atfork_registered = ::pthread_atfork(nullptr, nullptr, forget_tid_in_child);

}  // namespace
}  // namespace np
