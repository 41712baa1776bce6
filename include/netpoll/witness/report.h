// The witness's crash report: what netpoll run sends when a process it
// traces is about to die of a signal.
//
// Every thread of the process is stopped (tracer.h), so each one is
// unwound with the call-frame information of every object it has mapped
// (elfutils' libdwfl: .eh_frame and .debug_frame, the executable's and
// each library's, and Debian's separate debug files under /usr/lib/debug,
// found by build-id), the way eu-stack and systemd-coredump do it. Frames
// are named with demangled function names and, where debug information
// exists, source file and line.
//
// The records, as text (one netconsole record each):
//   crashed: SIGSEGV (SEGV_MAPERR: address not mapped) at address 0x0000000000000000
//   thread 4242 (worker) of process 4240
//   rip 0x... rsp 0x... (the general registers, as the signal found them)
//   r8 0x... ... eflags 0x...
//   backtrace:
//   #0 0x000055d0c0a1b2c3 crash_null_write()+0x13 (torture_child) at tests/integration/torture_child.cpp:88
//   #1 0x000055d0c0a1b400 main+0x42 (torture_child) at tests/integration/torture_child.cpp:301
//   #2 0x00007f0e1c02a1ca __libc_start_call_main+0x7a (libc.so.6) at ../sysdeps/nptl/libc_start_call_main.h:58
//   reported by netpoll run from outside the process (3 threads stopped)
// then one record per other thread:
//   thread 4243 (worker-2) of process 4240, at the crash of thread 4242
//   #0 ...
// A frame in no named function shows "?? (object+offset)"; in no object,
// the address alone. Context: setup (runs in the witness, never in the
// dying process).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "netpoll/witness/tracer.h"

namespace np::witness {

struct ReportLimits {
  std::size_t frames = 64;    // per thread
  std::size_t threads = 64;   // records for other threads at most (the rest are counted)
};

// The records for `stop` (every thread of stop.pid is in a ptrace stop of
// the calling thread). Never empty: without an unwinder the first record
// still names the signal and the registers, and says why there is no
// backtrace.
std::vector<std::string> crash_records(const CrashStop& stop, ReportLimits limits = {});

}  // namespace np::witness
