// Stopping the process's other threads for a core, each in a handler of a
// reserved real-time signal that saves its registers and then waits.
//
// Protocol (one writer at a time; `gen` numbers each dump):
//  writer: publishes gen and how long threads may be held; for each
//    thread it gives a slot the thread's id and the state (gen,
//    kSignalled) (release), then queues the signal to that thread with
//    the token (gen, slot) as the signal's value. It waits (futex on
//    `answered`) up to its own wait limit, then, for every slot still
//    (gen, kSignalled), takes it back by compare-and-swap to
//    (gen, kAbandoned).
//  thread: its handler checks the token against the current gen and
//    claims the slot by compare-and-swap (gen, kSignalled) -> (gen,
//    kFilling); only the winner of that swap writes the slot, so a
//    handler that runs after the writer gave up (the swap fails) writes
//    nothing. It copies its registers, stores (gen, kFilled) (release),
//    counts itself in `answered`, wakes the writer and waits (futex on
//    `released`) until the writer lets gen go or the published hold limit
//    passes, whichever comes first: it never waits forever.
//  writer: reads a slot only after seeing (gen, kFilled) (acquire). A slot
//    found (gen, kFilling) gets a short grace; if it is still being
//    filled, the thread counts as without registers and the slot is not
//    used again while it says kFilling.
//
// The handler is installed once per writer (make) and reaches the
// writer's control block through a global table, by the signal it came
// on: three writers (the core writer, the gdb stub, remote commands'
// stacks) may exist at once,
// each on a signal of its own. A count of handlers inside lets an owner
// unmap its block only when none is using it.
//
// Resuming with changed registers (the gdb stub, gdb/stub.h): when the
// writer sets StopControl::resume_with_capture, a held thread that is let
// go by release_threads() (not by the hold limit) copies its slot's
// registers back into its signal frame before it returns, so that
// sigreturn applies what the writer changed there: general registers,
// rip, eflags (the trap flag of a single step) and, when the writer set
// ThreadCapture::fp_dirty, the x87/SSE part of the FXSAVE image. It then
// marks the slot kResumed: until a slot leaves kFilled the writer must not
// reuse it (the thread may still be reading it). Without the flag (the
// core writer) a thread returns with its frame untouched, as before.
//
// Public for the gdb layer, which stops threads the same way; the
// namespace says it is not an interface for programs.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <ucontext.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "netpoll/base/result.h"
#include "netpoll/dump/elf_core.h"

namespace np::dump::detail {

// One thread's registers as a core needs them.
struct ThreadCapture {
  pid_t tid = 0;
  bool valid = false;  // registers captured (else the thread is listed with zeros)
  UserRegs regs;
  std::uint64_t sigmask = 0;  // the signals it had blocked
  // The FXSAVE image (fp_len 512) or the whole XSAVE area in standard
  // form (fp_len > 512), with XCR0 at kXstateXcr0Offset when it is one.
  std::byte* fp = nullptr;  // fp_capacity bytes, 64-aligned
  std::uint32_t fp_len = 0;
  // The writer changed fp's x87/SSE bytes: resume_with_capture puts them
  // back into the frame too.
  bool fp_dirty = false;
};

enum Phase : std::uint64_t { kFree = 0, kSignalled = 1, kFilling = 2, kFilled = 3, kAbandoned = 4, kResumed = 5 };
constexpr std::uint64_t slot_state(std::uint32_t gen, Phase p) noexcept { return (std::uint64_t{gen} << 8) | p; }
constexpr Phase phase_of(std::uint64_t state) noexcept { return static_cast<Phase>(state & 0xff); }

struct ThreadSlot {
  std::atomic<std::uint64_t> state{slot_state(0, kFree)};
  ThreadCapture cap;
};

// What the writer shares with the handlers.
struct StopControl {
  int signal = 0;
  std::uint64_t xcr0 = 0;          // XGETBV(0), 0 without XSAVE
  std::size_t fp_capacity = 0;     // bytes per capture's fp area
  ThreadSlot* slots = nullptr;
  std::size_t slot_count = 0;
  std::atomic<std::uint32_t> generation{0};
  std::atomic<std::uint32_t> released{0};  // futex word: the last gen let go
  std::atomic<std::uint32_t> answered{0};  // futex word: handlers done with this gen
  std::atomic<std::int64_t> hold_until_ns{0};
  // A released thread resumes with its slot's registers (see above).
  bool resume_with_capture = false;
};

// The processor's XSAVE facts (CPUID leaf 0xD): XCR0, and the bytes an
// XSAVE area of every supported component takes (512 without XSAVE).
// Context: any.
struct XsaveComponent {
  std::uint32_t type = 0;    // its bit in XCR0
  std::uint32_t size = 0;
  std::uint32_t offset = 0;  // in the standard (non-compacted) XSAVE area
};
struct XsaveInfo {
  std::uint64_t xcr0 = 0;
  std::size_t max_size = 512;  // every supported component
  std::size_t size = 512;      // the components XCR0 enables
  // Where each component XCR0 enables (from 2, AVX, on) sits: CPUs
  // differ (AMD packs AVX-512 lower than Intel), and a core says so in
  // NT_X86_XSAVE_LAYOUT, as Linux 6.x writes it.
  std::array<XsaveComponent, 62> layout{};
  std::size_t components = 0;
};
XsaveInfo xsave_info() noexcept;

// Copies a signal frame's registers and FP/XSAVE state into `cap`
// (bounded by capacity); fs_base/gs_base and the selectors the frame
// lacks are the calling thread's, so call it on the thread the frame
// belongs to. Context: any (a signal handler).
void capture_from_frame(ThreadCapture& cap, const ucontext_t& uc, std::size_t fp_capacity,
                        std::uint64_t xcr0) noexcept;

// The reverse, for resuming: writes cap's general registers, rip and
// eflags (and, when cap.fp_dirty, the x87 and SSE registers of its FXSAVE
// image) into the signal frame `uc`, which sigreturn then loads. The
// segment registers and fs/gs bases are left as the frame has them.
// Context: any (a signal handler).
void restore_to_frame(const ThreadCapture& cap, ucontext_t& uc) noexcept;

// The calling thread's own registers, here: a debugger finds this
// function at the top of the thread's stack, its callers below. Their
// frames are gone once it returns and the caller goes on (emit() reuses
// that stack), so it also copies the stack from its stack pointer up,
// into `stack_copy`: the bytes copied, which belong at regs[kRsp].
// Context: any.
// `xsave_size`: the XSAVE area's size for XCR0 (XsaveInfo::size).
std::size_t capture_self(ThreadCapture& cap, std::size_t fp_capacity, std::uint64_t xcr0, std::size_t xsave_size,
                         std::span<std::byte> stack_copy) noexcept;

// Installs the handler for control.signal (refuses one that is already
// handled) and makes `control` the one the handler serves on it.
// Context: setup.
SetupResult<void> install_stop_handler(StopControl& control, struct sigaction& old);
// Serves nobody any more, restores `old` (dropping queued stop signals
// first) and waits, up to `wait_ns`, for handlers still inside to leave.
// Context: setup.
void uninstall_stop_handler(StopControl& control, const struct sigaction& old, std::int64_t wait_ns) noexcept;

// Queues the stop signal with (gen, slot) to thread `tid` of this
// process. Context: any.
[[nodiscard]] Result<void> send_stop(const StopControl& control, pid_t tid, std::uint32_t gen,
                                     std::size_t slot) noexcept;

// Lets every thread held for `gen` go. Context: any.
void release_threads(StopControl& control, std::uint32_t gen) noexcept;

// Waits until `answered` reaches `want` or `until_ns` (monotonic) passes;
// the final count. Context: any.
std::uint32_t wait_for_answers(StopControl& control, std::uint32_t want, std::int64_t until_ns) noexcept;

// The thread ids of this process (/proc/self/task), into `out`, read
// through `scratch`; the number of ids there are, which may exceed
// out.size(). Context: any.
[[nodiscard]] Result<std::size_t> list_threads(std::span<pid_t> out, std::span<std::byte> scratch) noexcept;

pid_t current_tid() noexcept;

}  // namespace np::dump::detail
