// safe_read: copy our own memory without trusting the address.
//
// The crash-path walkers (backtrace.cpp, cfi_unwind.cpp) read stack words
// and unwind tables whose addresses came from a process that just broke.
// process_vm_readv(2) on our own pid lets the kernel do each access: an
// unmapped or unreadable address fails the call with EFAULT instead of
// raising a second fault inside the handler. It may set errno; callers
// that run in a signal handler keep errno with an ErrnoSaver.
// Internal to the console layer. x86-64 Linux (any Linux, in fact).
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

namespace np::console {

// Copies `len` bytes of our own memory at `addr` into `dst`. False, never a
// fault, when any of it is not mapped readable: the kernel does the access
// and reports EFAULT. `self` is getpid(), taken by the caller per walk (not
// cached across a fork). Context: any.
inline bool safe_read(pid_t self, std::uintptr_t addr, void* dst, std::size_t len) noexcept {
  iovec local{dst, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return ::process_vm_readv(self, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

}  // namespace np::console
