// Backtraces that are safe to take inside a fatal-signal handler.
//
// Both functions walk the chain of saved frame pointers (x86-64: RBP points
// at the caller's saved RBP, the return address sits just above it). glibc's
// backtrace() cannot be used on the crash path: its first call dlopen()s
// libgcc_s (allocating, taking the loader's lock), and the unwinder it uses
// reads memory without checking it. Here every stack read is done with
// process_vm_readv(2) on our own pid, so a garbage frame pointer makes the
// read fail and ends the walk instead of faulting inside the handler.
//
// The walk stops at the first frame pointer that is null, misaligned (not a
// multiple of 8) or not above the previous one (stacks grow down, so
// callers' frames are at higher addresses), at a zero return address, at an
// unreadable frame, or when `out` is full: a corrupt chain cannot loop.
//
// Limits, honestly:
//  - Code built without frame pointers (most distributions build glibc and
//    libstdc++ that way) keeps no RBP chain: its frames are missing, and a
//    walk that starts inside such code may end early or, if RBP holds an
//    unrelated stack address, list a few wrong frames before it stops.
//    netpoll itself is built with -fno-omit-frame-pointer (CMakeLists.txt).
//  - A fault in a function's prologue, before it saved RBP, loses the
//    caller of the faulting function (RBP still holds the caller's frame).
//  - backtrace_here() inside a signal handler cannot cross the signal
//    frame reliably (the handler may run on an alternate stack); use
//    backtrace_from_context() with the handler's ucontext there.
//  - process_vm_readv may be refused by a seccomp filter; the trace then
//    holds only what needs no read (the context's pc).
// Both keep errno as they found it. x86-64 Linux only.
#pragma once

#include <ucontext.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace np::console {

// The frames of the code a signal interrupted: out[0] is the exact pc of the
// interrupted instruction (RIP); out[1...] are return addresses found from
// RBP. When RIP itself is unreadable — a call through a bad function
// pointer, which faults on the fetch before the callee saved anything — the
// word at RSP is that call's return address and comes next (after a return
// to a smashed address it is whatever lay above, one wrong frame at most).
// Returns how many entries were written; out.size() bounds the depth.
// Context: any.
std::size_t backtrace_from_context(const ucontext_t& uc, std::span<std::uintptr_t> out) noexcept;

// The caller's frames: out[0] is the return address into the function that
// called backtrace_here(), out[1] the one into its caller, and so on (all
// return addresses: symbolize pc - 1). Context: any.
std::size_t backtrace_here(std::span<std::uintptr_t> out) noexcept;

}  // namespace np::console
