// Crash report: what a fatal signal handler can say about the crash, as
// text, without allocating, locking or calling stdio.
//
//   crashed: SIGSEGV (SEGV_MAPERR: address not mapped) at address 0x0000000000000010
//   thread 12345 (worker-1) of process 12340
//   rip 0x... rsp 0x... rbp 0x... rax 0x... rbx 0x... rcx 0x... rdx 0x... rsi 0x... rdi 0x...
//   r8 0x... r9 0x... ... r15 0x... eflags 0x... trapno 14 err 0x...
//   backtrace:
//   #0 0x000055d0c0a1b2c3 crash_here+0x13 (myprog)
//   #1 0x000055d0c0a1b400 main+0x42 (myprog)
//   #2 0x00007f0e1c02a1ca ?? (libc.so.6+0x271ca)
//   #3 0x00007f0e1c0ff000
//
// The first line names the signal and its si_code; a signal sent by a
// process (SI_USER, SI_TKILL, SI_QUEUE) says which pid sent it, a hardware
// fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE with a kernel fault code) gives the
// faulting address, and nothing else does: for other codes si_addr shares
// its storage with the sender's pid and uid and means nothing. Thread id and
// name come from gettid(2) and prctl(PR_GET_NAME), both plain system calls.
// Registers come from the signal's ucontext (x86-64 general registers).
// The backtrace comes from call-frame information when the caller has an
// index (cfi_unwind.h: through libc, abort() and signal frames), else it is
// backtrace_from_context() (see backtrace.h for what it can miss); names are Symbolizer::lookup(), mangled, with return
// addresses looked up at pc - 1 so that a call ending its function is
// named after its caller. A frame in no function shows "?? (object+offset)",
// ready for `addr2line -e object offset`; a frame in no object, the address.
//
// Everything here is async-signal-safe: no malloc, no stdio, no locks, and
// errno is left as it was. x86-64 Linux only.
#pragma once

#include <signal.h>
#include <ucontext.h>

#include <cstddef>
#include <string_view>

#include "netpoll/base/function_ref.h"
#include "netpoll/base/text.h"
#include "netpoll/console/cfi_unwind.h"
#include "netpoll/console/symbolizer.h"

namespace np::console {

// How many frames a report lists at most.
inline constexpr std::size_t kCrashReportFrames = 64;

// The last line of a report that did not fit its buffer.
inline constexpr std::string_view kCrashReportCut = "[crash report truncated]\n";

// Receives the report in pieces, in order; concatenated, they are the text,
// every line ending in '\n'. Pieces are small (a number, a name), so a sink
// that makes a system call per piece should buffer.
using CrashTextSink = FunctionRef<void(std::string_view)>;

// Writes the report for the signal `si` to `sink`. `uc` is the handler's
// third argument; without it (nullptr) there are no registers and the
// backtrace is of the code calling this function. Without `sym` (nullptr)
// frames are addresses only. Context: any.
void format_crash_report(const siginfo_t& si, const ucontext_t* uc, const Symbolizer* sym,
                         CrashTextSink sink) noexcept;
// The same, with the backtrace from call-frame information (cfi_unwind.h)
// where `cfi` is given and intact; the frame-pointer walk otherwise, or when
// it finds more frames (code with frame pointers but no CFI).
void format_crash_report(const siginfo_t& si, const ucontext_t* uc, const Symbolizer* sym, const CfiIndex* cfi,
                         CrashTextSink sink) noexcept;

// Only the backtrace part of a report: a line per frame ("#0 0x... name+0x1f
// (object)"), from call-frame information where `cfi` is given and intact,
// else (or when it finds more) the frame-pointer walk, for the code whose
// registers `uc` holds (a signal's context, or registers captured from a
// stopped thread: remote commands' `stacks`). Context: any.
void format_backtrace(const ucontext_t& uc, const Symbolizer* sym, const CfiIndex* cfi, CrashTextSink sink) noexcept;

// The pieces of a report, for a reporter outside the process (netpoll
// run's witness) that has its own way to name frames:
//  - the first line ("crashed: SIGSEGV (...) at address 0x...\n");
//  - the two register lines, trapno and err only when `trap` (a signal
//    context has them; registers read with ptrace do not);
//  - "SIGSEGV", ..., or nullptr for a signal without a name here.
// Context: any.
void format_signal_line(const siginfo_t& si, CrashTextSink sink) noexcept;
void format_registers(const ucontext_t& uc, bool trap, CrashTextSink sink) noexcept;
const char* signal_name(int signo) noexcept;

// Appends the report to `out`. A report that does not fit is cut after the
// last piece that leaves room for kCrashReportCut, which ends the text on a
// line of its own; the text never exceeds the buffer. (A report that would
// have fitted all but that room is cut too.) True when the whole report is
// in `out`. Context: any.
template <std::size_t N>
bool format_crash_report(const siginfo_t& si, const ucontext_t* uc, const Symbolizer* sym, const CfiIndex* cfi,
                         FixedText<N>& out) noexcept {
  static_assert(N > kCrashReportCut.size() + 2, "a crash report buffer must hold at least the truncation line");
  constexpr std::size_t kCapacity = N - 1;  // FixedText keeps one byte for the NUL
  bool cut = kCapacity - out.size() < kCrashReportCut.size() + 1;
  format_crash_report(si, uc, sym, cfi, [&](std::string_view piece) {
    // Room for a '\n' and the cut line is kept back for as long as pieces fit.
    if (cut || piece.size() + kCrashReportCut.size() + 1 <= kCapacity - out.size()) {
      if (!cut) out.append(piece);
      return;
    }
    cut = true;
    if (out.size() > 0 && out.view().back() != '\n') out.append('\n');
    out.append(kCrashReportCut);
  });
  return !cut;
}
template <std::size_t N>
bool format_crash_report(const siginfo_t& si, const ucontext_t* uc, const Symbolizer* sym,
                         FixedText<N>& out) noexcept {
  return format_crash_report(si, uc, sym, nullptr, out);
}

}  // namespace np::console
