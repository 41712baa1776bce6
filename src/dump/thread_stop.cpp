#include "netpoll/dump/thread_stop.h"

#include <asm/prctl.h>
#include <cpuid.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

#include "netpoll/base/clock.h"
#include "proc_file.h"

namespace np::dump::detail {
namespace {

// uc_flags bits the x86-64 kernel sets in a signal frame.
constexpr unsigned long kUcFpXstate = 0x1;     // fpregs is an XSAVE area with a software header
constexpr unsigned long kUcSigcontextSs = 0x2;  // the frame's ss is real
constexpr std::uint32_t kFpXstateMagic1 = 0x46505853;  // at byte 464 of a frame's FXSAVE image
constexpr std::uint32_t kFpXstateMagic2 = 0x46505845;  // right after the XSAVE area
constexpr std::int64_t kHandlerNapNs = 100'000'000;

// The writers the handler serves (each on a signal of its own: the core
// writer, the gdb stub and remote commands' stacks), and how many
// handlers are using them.
constexpr std::size_t kMaxStoppers = 3;
constinit std::atomic<StopControl*> g_controls[kMaxStoppers] = {};
constinit std::atomic<int> g_inside{0};

pid_t raw_getpid() noexcept { return static_cast<pid_t>(::syscall(SYS_getpid)); }

std::uint32_t* futex_word(std::atomic<std::uint32_t>& a) noexcept {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  return reinterpret_cast<std::uint32_t*>(&a);
}

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t seen, std::int64_t ns) noexcept {
  const timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  ::syscall(SYS_futex, futex_word(word), FUTEX_WAIT_PRIVATE, seen, &ts, nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept {
  ::syscall(SYS_futex, futex_word(word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
}

std::uint32_t load32(const std::byte* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::uint64_t load64(const std::byte* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

SegmentRegs own_segments() noexcept {
  SegmentRegs s;
  unsigned long base = 0;
  if (::syscall(SYS_arch_prctl, ARCH_GET_FS, &base) == 0) s.fs_base = base;
  base = 0;
  if (::syscall(SYS_arch_prctl, ARCH_GET_GS, &base) == 0) s.gs_base = base;
  asm volatile("mov %%ss, %0" : "=r"(s.ss));
  asm volatile("mov %%ds, %0" : "=r"(s.ds));
  asm volatile("mov %%es, %0" : "=r"(s.es));
  asm volatile("mov %%fs, %0" : "=r"(s.fs));
  asm volatile("mov %%gs, %0" : "=r"(s.gs));
  return s;
}

// The bytes 464..511 of a core's XSAVE image: XCR0, then zeros.
void set_software_bytes(std::byte* fp, std::uint32_t fp_len, std::uint64_t xcr0) noexcept {
  std::memset(fp + kXstateXcr0Offset, 0, kFxsaveSize - kXstateXcr0Offset);
  if (fp_len > kFxsaveSize) std::memcpy(fp + kXstateXcr0Offset, &xcr0, sizeof xcr0);
}

bool same_gen_or_later(std::uint32_t released, std::uint32_t gen) noexcept {
  return static_cast<std::int32_t>(released - gen) >= 0;
}

void answer(StopControl& c, const siginfo_t& si, ucontext_t& uc) noexcept {
  const auto token = reinterpret_cast<std::uintptr_t>(si.si_value.sival_ptr);
  const auto gen = static_cast<std::uint32_t>(token >> 32);
  const std::size_t index = token & 0xffffffffu;
  if (gen != c.generation.load(std::memory_order_acquire) || index >= c.slot_count) return;  // stale or not ours
  ThreadSlot& slot = c.slots[index];
  std::uint64_t expected = slot_state(gen, kSignalled);
  // Only the winner of this swap writes the slot; after the writer took
  // it back (kAbandoned) the swap fails and the thread just goes on.
  if (!slot.state.compare_exchange_strong(expected, slot_state(gen, kFilling), std::memory_order_acq_rel)) return;
  if (slot.cap.tid != current_tid()) {
    slot.state.store(slot_state(gen, kAbandoned), std::memory_order_release);
    return;
  }
  capture_from_frame(slot.cap, uc, c.fp_capacity, c.xcr0);
  slot.state.store(slot_state(gen, kFilled), std::memory_order_release);
  c.answered.fetch_add(1, std::memory_order_release);
  futex_wake(c.answered, 1);
  // Held until the writer lets this generation go, or its hold limit
  // (which it may move later while it works) passes. The time bounds the
  // loop; the count guards against a clock that does not move.
  bool let_go = false;
  for (int round = 0; round < 1 << 20; ++round) {
    const std::uint32_t released = c.released.load(std::memory_order_acquire);
    if (same_gen_or_later(released, gen)) {
      let_go = true;
      break;
    }
    const std::int64_t now = monotonic_ns();
    const std::int64_t until = c.hold_until_ns.load(std::memory_order_acquire);
    if (now >= until) break;
    futex_wait(c.released, released, std::min(until - now, kHandlerNapNs));
  }
  if (!c.resume_with_capture) return;
  // Let go by the writer: it may have changed the registers (gdb's G and
  // P, the trap flag of a step). Held past the limit: as we were.
  if (let_go) restore_to_frame(slot.cap, uc);
  slot.state.store(slot_state(gen, kResumed), std::memory_order_release);
}

void on_stop_signal(int sig, siginfo_t* si, void* context) {
  const int saved_errno = errno;
  g_inside.fetch_add(1, std::memory_order_seq_cst);
  StopControl* c = nullptr;
  for (auto& slot : g_controls) {
    StopControl* candidate = slot.load(std::memory_order_seq_cst);
    if (candidate != nullptr && candidate->signal == sig) c = candidate;
  }
  // Only what this process queued (SI_QUEUE from our own pid) is a stop
  // request; anything else sent on this signal is ignored.
  if (c != nullptr && si != nullptr && context != nullptr && si->si_code == SI_QUEUE && si->si_pid == raw_getpid())
    answer(*c, *si, *static_cast<ucontext_t*>(context));
  g_inside.fetch_sub(1, std::memory_order_seq_cst);
  errno = saved_errno;
}

}  // namespace

pid_t current_tid() noexcept { return static_cast<pid_t>(::syscall(SYS_gettid)); }

XsaveInfo xsave_info() noexcept {
  XsaveInfo x;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) == 0 || (c & bit_OSXSAVE) == 0) return x;
  unsigned lo = 0, hi = 0;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  x.xcr0 = (std::uint64_t{hi} << 32) | lo;
  if (__get_cpuid_count(0xd, 0, &a, &b, &c, &d) == 0) return x;
  // EBX: the size for what XCR0 enables now; ECX: for every supported
  // component. A sanity cap keeps a strange answer from sizing tables.
  constexpr std::size_t kCap = 64 * 1024;
  x.size = std::clamp<std::size_t>(b, kXsaveHeaderEnd, kCap);
  x.max_size = std::clamp<std::size_t>(std::max(b, c), kXsaveHeaderEnd, kCap);
  for (unsigned i = 2; i < 64 && x.components < x.layout.size(); ++i) {
    if ((x.xcr0 >> i & 1) == 0 || __get_cpuid_count(0xd, i, &a, &b, &c, &d) == 0 || a == 0) continue;
    x.layout[x.components++] = XsaveComponent{i, a, b};
  }
  return x;
}

void capture_from_frame(ThreadCapture& cap, const ucontext_t& uc, std::size_t fp_capacity,
                        std::uint64_t xcr0) noexcept {
  const SegmentRegs seg = own_segments();
  cap.regs = user_regs_from_gregs(std::span<const long long, 23>(uc.uc_mcontext.gregs),
                                  (uc.uc_flags & kUcSigcontextSs) != 0, seg);
  std::memcpy(&cap.sigmask, &uc.uc_sigmask, sizeof cap.sigmask);
  cap.fp_len = 0;
  const auto* f = reinterpret_cast<const std::byte*>(uc.uc_mcontext.fpregs);
  if (f != nullptr && cap.fp != nullptr && fp_capacity >= kFxsaveSize) {
    std::uint32_t len = kFxsaveSize;
    std::uint64_t features = xcr0;
    // An XSAVE area says so in its FXSAVE image's software bytes; its
    // size is checked against our room and against the second magic the
    // kernel puts right after it.
    if ((uc.uc_flags & kUcFpXstate) != 0 && load32(f + kXstateXcr0Offset) == kFpXstateMagic1) {
      const std::uint32_t size = load32(f + kXstateXcr0Offset + 16);
      if (size >= kXsaveHeaderEnd && size <= fp_capacity && load32(f + size) == kFpXstateMagic2) {
        len = size;
        features = load64(f + kXstateXcr0Offset + 8);
        if (xcr0 != 0) features &= xcr0;
      }
    }
    std::memcpy(cap.fp, f, len);
    set_software_bytes(cap.fp, len, features);
    cap.fp_len = len;
  }
  cap.fp_dirty = false;
  cap.valid = true;
}

void restore_to_frame(const ThreadCapture& cap, ucontext_t& uc) noexcept {
  const UserRegs& r = cap.regs;
  greg_t* g = uc.uc_mcontext.gregs;
  const auto put = [&](int at, Reg reg) { g[at] = static_cast<greg_t>(r[reg]); };
  put(REG_R8, Reg::kR8);
  put(REG_R9, Reg::kR9);
  put(REG_R10, Reg::kR10);
  put(REG_R11, Reg::kR11);
  put(REG_R12, Reg::kR12);
  put(REG_R13, Reg::kR13);
  put(REG_R14, Reg::kR14);
  put(REG_R15, Reg::kR15);
  put(REG_RDI, Reg::kRdi);
  put(REG_RSI, Reg::kRsi);
  put(REG_RBP, Reg::kRbp);
  put(REG_RBX, Reg::kRbx);
  put(REG_RDX, Reg::kRdx);
  put(REG_RAX, Reg::kRax);
  put(REG_RCX, Reg::kRcx);
  put(REG_RSP, Reg::kRsp);
  put(REG_RIP, Reg::kRip);
  put(REG_EFL, Reg::kEflags);  // sigreturn keeps only the flags a program may set
  auto* f = reinterpret_cast<std::byte*>(uc.uc_mcontext.fpregs);
  if (!cap.fp_dirty || f == nullptr || cap.fp == nullptr || cap.fp_len < kFxsaveSize) return;
  // The FXSAVE image's registers: control, status, tag, opcode, the last
  // instruction and operand pointers and MXCSR (bytes 0..27), then st0-7
  // and xmm0-15 (32..415). MXCSR_MASK (28) and the software bytes the
  // kernel checks on sigreturn (464..) stay the frame's; MXCSR keeps to
  // the mask (a reserved bit set would make sigreturn fail).
  std::uint32_t mxcsr = load32(cap.fp + 24);
  const std::uint32_t mask = load32(f + 28);
  if (mask != 0) mxcsr &= mask;
  std::memcpy(f, cap.fp, 24);
  std::memcpy(f + 24, &mxcsr, sizeof mxcsr);
  std::memcpy(f + 32, cap.fp + 32, 416 - 32);
  // In an XSAVE frame the header says which components the area holds;
  // x87 and SSE (bits 0 and 1) must be marked, or XRSTOR would load their
  // initial state instead of what was written.
  if ((uc.uc_flags & kUcFpXstate) != 0 && load32(f + kXstateXcr0Offset) == kFpXstateMagic1) {
    std::uint64_t bv = load64(f + kFxsaveSize);
    bv |= 0x3;
    std::memcpy(f + kFxsaveSize, &bv, sizeof bv);
  }
}

[[gnu::noinline]] std::size_t capture_self(ThreadCapture& cap, std::size_t fp_capacity, std::uint64_t xcr0,
                                           std::size_t xsave_size, std::span<std::byte> stack_copy) noexcept {
  ucontext_t uc;
  std::memset(&uc, 0, sizeof uc);
  // The registers as they are when getcontext returns here; a debugger
  // then finds this function at the top of the stack, its callers below.
  ::getcontext(&uc);
  const SegmentRegs seg = own_segments();
  cap.regs = user_regs_from_gregs(std::span<const long long, 23>(uc.uc_mcontext.gregs), false, seg);
  // This frame and its callers' as they are now, read without touching
  // them (the copy stops short at the top of the stack's mapping).
  iovec local{stack_copy.data(), stack_copy.size()};
  iovec remote{reinterpret_cast<void*>(cap.regs[Reg::kRsp]), stack_copy.size()};
  const long copied = ::syscall(SYS_process_vm_readv, raw_getpid(), &local, 1, &remote, 1, 0);
  std::uint16_t cs = 0;
  asm volatile("mov %%cs, %0" : "=r"(cs));
  cap.regs[Reg::kCs] = cs;
  std::memcpy(&cap.sigmask, &uc.uc_sigmask, sizeof cap.sigmask);
  cap.fp_len = 0;
  if (cap.fp != nullptr && fp_capacity >= kFxsaveSize) {
    if (xcr0 != 0 && xsave_size <= fp_capacity) {
      // XSAVE skips components in their initial state; what it does not
      // write must read as zeros.
      std::memset(cap.fp, 0, xsave_size);
      asm volatile("xsave64 (%0)"
                   :
                   : "r"(cap.fp), "a"(static_cast<std::uint32_t>(xcr0)), "d"(static_cast<std::uint32_t>(xcr0 >> 32))
                   : "memory");
      cap.fp_len = static_cast<std::uint32_t>(xsave_size);
    } else {
      std::memset(cap.fp, 0, kFxsaveSize);
      asm volatile("fxsave64 (%0)" : : "r"(cap.fp) : "memory");
      cap.fp_len = kFxsaveSize;
    }
    set_software_bytes(cap.fp, cap.fp_len, xcr0);
  }
  cap.valid = true;
  return copied > 0 ? static_cast<std::size_t>(copied) : 0;
}

SetupResult<void> install_stop_handler(StopControl& control, struct sigaction& old) {
  const int sig = control.signal;
  if (sig < SIGRTMIN || sig > SIGRTMAX)
    return setup_error(Errc::kInvalidArgument, "the stop signal must be a real-time signal (" +
                                                   std::to_string(SIGRTMIN) + ".." + std::to_string(SIGRTMAX) +
                                                   "), not " + std::to_string(sig));
  if (::sigaction(sig, nullptr, &old) != 0)
    return setup_error(Errc::kIo, "sigaction(" + std::to_string(sig) + "): " + std::strerror(errno));
  const bool has_handler = (old.sa_flags & SA_SIGINFO) != 0
                               ? old.sa_sigaction != nullptr
                               : (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN);
  if (has_handler)
    return setup_error(Errc::kExists, "signal " + std::to_string(sig) +
                                          " already has a handler; choose another stop signal for the core writer");
  // One writer per signal (the check above: its handler would be ours),
  // two at most.
  std::atomic<StopControl*>* taken = nullptr;
  for (auto& slot : g_controls) {
    StopControl* none = nullptr;
    if (slot.compare_exchange_strong(none, &control, std::memory_order_seq_cst)) {
      taken = &slot;
      break;
    }
  }
  if (taken == nullptr)
    return setup_error(Errc::kExists,
                       "three thread stoppers (a core writer, a gdb stub, remote commands' stacks) already exist in "
                       "this process");
  struct sigaction sa {};
  sa.sa_sigaction = on_stop_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(sig, &sa, nullptr) != 0) {
    const int e = errno;
    taken->store(nullptr, std::memory_order_seq_cst);
    return setup_error(Errc::kIo, "sigaction(" + std::to_string(sig) + "): " + std::strerror(e));
  }
  return {};
}

void uninstall_stop_handler(StopControl& control, const struct sigaction& old, std::int64_t wait_ns) noexcept {
  bool found = false;
  for (auto& slot : g_controls) {
    StopControl* mine = &control;
    found = found || slot.compare_exchange_strong(mine, nullptr, std::memory_order_seq_cst);
  }
  if (!found) return;
  // Ignoring a signal drops what is queued of it, so a stop request still
  // pending for a thread that blocks the signal cannot reach the old
  // disposition (for a real-time signal by default: the process dies).
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  ::sigaction(control.signal, &ign, nullptr);
  ::sigaction(control.signal, &old, nullptr);
  const std::int64_t until = monotonic_ns() + wait_ns;
  for (int round = 0; round < 100'000 && g_inside.load(std::memory_order_seq_cst) != 0; ++round) {
    if (monotonic_ns() >= until) break;
    nap(std::chrono::milliseconds(1));
  }
}

Result<void> send_stop(const StopControl& control, pid_t tid, std::uint32_t gen, std::size_t slot) noexcept {
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  const pid_t pid = raw_getpid();
  info.si_signo = control.signal;
  info.si_code = SI_QUEUE;
  info.si_pid = pid;
  info.si_uid = static_cast<uid_t>(::syscall(SYS_getuid));
  info.si_value.sival_ptr = reinterpret_cast<void*>((std::uintptr_t{gen} << 32) | slot);
  if (::syscall(SYS_rt_tgsigqueueinfo, pid, tid, control.signal, &info) == 0) return {};
  if (errno == ESRCH) return fail(Errc::kNotFound);   // the thread has ended
  if (errno == EAGAIN) return fail(Errc::kNoBuffer);  // the queue of pending signals is full
  return fail(Errc::kIo);
}

void release_threads(StopControl& control, std::uint32_t gen) noexcept {
  control.released.store(gen, std::memory_order_release);
  futex_wake(control.released, INT_MAX);
}

std::uint32_t wait_for_answers(StopControl& control, std::uint32_t want, std::int64_t until_ns) noexcept {
  constexpr std::int64_t kNapNs = 10'000'000;
  std::uint32_t seen = control.answered.load(std::memory_order_acquire);
  for (int round = 0; round < 1 << 20 && seen < want; ++round) {
    const std::int64_t now = monotonic_ns();
    if (now >= until_ns) break;
    futex_wait(control.answered, seen, std::min(until_ns - now, kNapNs));
    seen = control.answered.load(std::memory_order_acquire);
  }
  return seen;
}

Result<std::size_t> list_threads(std::span<pid_t> out, std::span<std::byte> scratch) noexcept {
  auto dir = open_read("/proc/self/task", O_DIRECTORY);
  if (!dir) return fail(dir.error());
  std::size_t count = 0;
  // A process has a bounded number of threads; the cap guards the loop.
  for (int round = 0; round < 1 << 16; ++round) {
    const long n = ::syscall(SYS_getdents64, dir->get(), scratch.data(), scratch.size());
    if (n == 0) return count;
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(Errc::kIo);
    }
    const auto len = static_cast<std::size_t>(n);
    // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2),
    // d_type (1), d_name (NUL-terminated).
    for (std::size_t at = 0; at + 20 <= len;) {
      std::uint16_t reclen = 0;
      std::memcpy(&reclen, scratch.data() + at + 16, sizeof reclen);
      if (reclen < 20 || at + reclen > len) return fail(Errc::kMalformed);
      const char* name = reinterpret_cast<const char*>(scratch.data() + at + 19);
      const std::size_t name_room = reclen - 19;
      std::uint64_t tid = 0;
      std::size_t digits = 0;
      while (digits < name_room && digits < 10 && name[digits] >= '0' && name[digits] <= '9')
        tid = tid * 10 + static_cast<std::uint64_t>(name[digits++] - '0');
      if (digits > 0 && digits < name_room && name[digits] == '\0' && tid > 0 && tid <= INT_MAX) {
        if (count < out.size()) out[count] = static_cast<pid_t>(tid);
        ++count;
      }
      at += reclen;
    }
  }
  return fail(Errc::kIo);
}

}  // namespace np::dump::detail
