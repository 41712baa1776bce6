// Frame-pointer backtraces (see backtrace.h).
#include "netpoll/console/backtrace.h"

#include <sys/uio.h>
#include <unistd.h>

#include "posix.h"

namespace np::console {
namespace {

// Copies `len` bytes of our own memory at `addr` into `dst`. False, never a
// fault, when any of it is not mapped readable: the kernel does the access
// and reports EFAULT. Context: any.
bool safe_read(pid_t self, std::uintptr_t addr, void* dst, std::size_t len) noexcept {
  iovec local{dst, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return ::process_vm_readv(self, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

// Appends the return addresses of the RBP chain starting at `fp` to out[n...].
// x86-64 frame layout after `push rbp; mov rbp, rsp`: [fp] is the caller's
// saved RBP, [fp + 8] the return address into the caller.
std::size_t walk(pid_t self, std::uintptr_t fp, std::span<std::uintptr_t> out, std::size_t n) noexcept {
  while (n < out.size()) {
    if (fp == 0 || fp % alignof(std::uintptr_t) != 0) break;
    std::uintptr_t frame[2];  // saved RBP, return address
    if (!safe_read(self, fp, frame, sizeof frame)) break;
    if (frame[1] == 0) break;  // the outermost frame (_start, clone) ends with a zero return address
    out[n++] = frame[1];
    if (frame[0] <= fp) break;
    fp = frame[0];
  }
  return n;
}

}  // namespace

std::size_t backtrace_from_context(const ucontext_t& uc, std::span<std::uintptr_t> out) noexcept {
  if (out.empty()) return 0;
  ErrnoSaver keep_errno;
  const pid_t self = ::getpid();  // not cached: a forked child must read its own memory
  const auto& regs = uc.uc_mcontext.gregs;
  const auto pc = static_cast<std::uintptr_t>(regs[REG_RIP]);
  std::size_t n = 0;
  out[n++] = pc;
  unsigned char probe;
  if (n < out.size() && !safe_read(self, pc, &probe, 1)) {
    std::uintptr_t ret;
    if (safe_read(self, static_cast<std::uintptr_t>(regs[REG_RSP]), &ret, sizeof ret) && ret != 0) out[n++] = ret;
  }
  return walk(self, static_cast<std::uintptr_t>(regs[REG_RBP]), out, n);
}

// noinline: it must have a frame of its own, whose return address is the
// caller's pc.
[[gnu::noinline]] std::size_t backtrace_here(std::span<std::uintptr_t> out) noexcept {
  ErrnoSaver keep_errno;
  return walk(::getpid(), reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)), out, 0);
}

}  // namespace np::console
