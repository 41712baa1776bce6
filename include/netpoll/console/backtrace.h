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
// callers' frames are at higher addresses), at an unreadable frame, at a
// zero return address, at a "return address" whose preceding bytes are no
// call instruction (every real one follows a call; garbage rarely does), or
// when `out` is full: a corrupt chain cannot loop or run on.
//
// The interrupted function may have no frame of its own: g++ 12 sets up
// none in a leaf function that touches no stack, even with
// -fno-omit-frame-pointer, and every function is frameless at its first
// instruction. Its return address is then at RSP and RBP still points at
// its caller's frame, so the RBP walk alone would skip the caller — the
// frame that passed the bad pointer. backtrace_from_context() therefore
// takes the word at RSP as frame 1 when the instruction bytes before it are
// a call that went to the interrupted function: a direct `call rel32`, or
// `call *disp32(%rip)` (-fno-plt code, sanitizer interceptors), whose
// target, through a PLT stub if it is one, lies at most 64 KiB below RIP.
// When RIP itself is unreadable (a call through a bad function pointer
// faults on the fetch), any call instruction before that word will do.
//
// Limits, honestly:
//  - Code built without frame pointers (most distributions build glibc and
//    libstdc++ that way) keeps no RBP chain: its frames are missing, and a
//    walk that starts inside such code ends early or, in the rare case that
//    RBP holds an address of two words that look like a frame, lists a
//    wrong frame or two before it stops.
//    netpoll itself is built with -fno-omit-frame-pointer (CMakeLists.txt).
//  - A frameless function that pushed registers, or one reached through a
//    function pointer in a register (`call *%rax`: the target cannot be
//    checked), still loses its caller; so does a fault between `push rbp`
//    and `mov rbp, rsp`.
//  - backtrace_here() inside a signal handler ends at the signal frame
//    (the handler returns to the kernel's trampoline, which no call
//    precedes, and may run on an alternate stack); use
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
// interrupted instruction (RIP); out[1...] are return addresses: the one at
// RSP if the interrupted function is frameless (see above), then those found
// from RBP. Returns how many entries were written; out.size() bounds the
// depth. Context: any.
std::size_t backtrace_from_context(const ucontext_t& uc, std::span<std::uintptr_t> out) noexcept;

// The caller's frames: out[0] is the return address into the function that
// called backtrace_here(), out[1] the one into its caller, and so on (all
// return addresses: symbolize pc - 1). Context: any.
std::size_t backtrace_here(std::span<std::uintptr_t> out) noexcept;

}  // namespace np::console
