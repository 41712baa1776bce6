// Frame-pointer backtraces (see backtrace.h).
#include "netpoll/console/backtrace.h"

#include <unistd.h>

#include <cstring>

#include "netpoll/base/errno_saver.h"
#include "safe_read.h"

namespace np::console {
namespace {

// How far below pc the start of a frameless function may lie: leaf
// functions are small, and a tight bound keeps a stray stack word from
// passing for a return address.
constexpr std::uintptr_t kMaxLeafBytes = 64 * 1024;

std::uintptr_t add_disp32(std::uintptr_t base, const unsigned char* disp) noexcept {
  std::int32_t d;
  std::memcpy(&d, disp, sizeof d);
  return base + static_cast<std::uintptr_t>(static_cast<std::intptr_t>(d));
}

// Where the call returning to `ret` went, when its bytes say: `call rel32`
// (E8 d32) or `call *d32(%rip)` (FF 15 d32, -fno-plt code and sanitizer
// interceptors; the pointer is read). 0 for any other instruction.
std::uintptr_t call_target(pid_t self, std::uintptr_t ret) noexcept {
  unsigned char b[6];  // b[5] is the byte just before ret
  if (ret < sizeof b || !safe_read(self, ret - sizeof b, b, sizeof b)) return 0;
  if (b[1] == 0xe8) return add_disp32(ret, b + 2);
  std::uintptr_t target = 0;
  if (b[0] == 0xff && b[1] == 0x15 && safe_read(self, add_disp32(ret, b + 2), &target, sizeof target)) return target;
  return 0;
}

// Where the PLT stub at `at` jumps: `jmp *d32(%rip)` (FF 25 d32), perhaps
// after endbr64 (F3 0F 1E FA) and a bnd prefix (F2), as in .plt.sec. The GOT
// slot it reads holds the bound function (for an IFUNC, the chosen
// implementation). 0 when `at` is no such stub.
std::uintptr_t plt_target(pid_t self, std::uintptr_t at) noexcept {
  unsigned char b[11];
  if (!safe_read(self, at, b, sizeof b)) return 0;
  std::size_t i = 0;
  if (b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa) i = 4;
  if (b[i] == 0xf2) ++i;
  if (b[i] != 0xff || b[i + 1] != 0x25) return 0;
  std::uintptr_t target = 0;
  return safe_read(self, add_disp32(at + i + 6, b + i + 2), &target, sizeof target) ? target : 0;
}

// True when `ret` returns from a call whose target is the function holding
// `pc`: the target, or the PLT stub's target, at most kMaxLeafBytes below.
bool returns_from_call_to(pid_t self, std::uintptr_t ret, std::uintptr_t pc) noexcept {
  const auto holds_pc = [pc](std::uintptr_t f) { return f != 0 && f <= pc && pc - f < kMaxLeafBytes; };
  const std::uintptr_t target = call_target(self, ret);
  return holds_pc(target) || (target != 0 && holds_pc(plt_target(self, target)));
}

// True when the bytes before `ret` are a call of any form: E8 d32, or
// FF /2 with its ModRM, SIB and displacement (2 to 7 bytes; a REX prefix
// before FF does not change the length that ends at ret).
bool follows_a_call(pid_t self, std::uintptr_t ret) noexcept {
  unsigned char b[8];  // b[7] is the byte just before ret
  if (ret < sizeof b || !safe_read(self, ret - sizeof b, b, sizeof b)) return false;
  if (b[3] == 0xe8) return true;
  for (std::size_t k = 2; k <= 7; ++k) {
    const std::size_t at = sizeof b - k;
    const unsigned modrm = b[at + 1];
    if (b[at] != 0xff || ((modrm >> 3) & 7) != 2) continue;
    const unsigned mod = modrm >> 6, rm = modrm & 7;
    std::size_t len = 2;
    if (mod != 3 && rm == 4) {  // a SIB byte follows
      if (k < 3) continue;
      ++len;
      if (mod == 0 && (b[at + 2] & 7) == 5) len += 4;  // SIB without base: disp32
    }
    if (mod == 0 && rm == 5) len += 4;  // RIP-relative disp32
    if (mod == 1) len += 1;
    if (mod == 2) len += 4;
    if (len == k) return true;
  }
  return false;
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
    // Every real return address follows a call instruction. A word that
    // does not means RBP is not a frame pointer here (code built without
    // them uses RBP as a general register): stop rather than list garbage.
    if (!follows_a_call(self, frame[1])) break;
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
  // A frameless function's return address is at RSP (see backtrace.h). If
  // pc cannot be read, the fault was the fetch after a call through a bad
  // pointer, and no target can be checked.
  unsigned char probe;
  const bool pc_readable = safe_read(self, pc, &probe, 1);
  std::uintptr_t at_rsp = 0;
  if (n < out.size() && safe_read(self, static_cast<std::uintptr_t>(regs[REG_RSP]), &at_rsp, sizeof at_rsp) &&
      at_rsp != 0 && (pc_readable ? returns_from_call_to(self, at_rsp, pc) : follows_a_call(self, at_rsp))) {
    out[n++] = at_rsp;
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
