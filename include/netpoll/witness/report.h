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

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "netpoll/witness/tracer.h"

namespace np::witness {

struct ReportLimits {
  std::size_t frames = 64;    // per thread
  std::size_t threads = 64;   // records for other threads at most (the rest are counted)
};

// Debug information loaded before anything crashes. Naming a frame's
// source line is most of a report's cost: a library's separate debug file
// must be found, decompressed and its address ranges read (glibc's takes
// about 150 ms here). The information belongs to a file, not to a process,
// so the runner loads it ahead, offline, on threads of its own: the
// program's executable as soon as it is known and the libraries the runner
// itself has mapped (libc, libstdc++, libm, libgcc_s: what almost every
// program maps too). A file first met at a crash is loaded then, once.
class DebugInfoCache {
 public:
  DebugInfoCache();
  ~DebugInfoCache();
  DebugInfoCache(const DebugInfoCache&) = delete;
  DebugInfoCache& operator=(const DebugInfoCache&) = delete;

  // Starts loading `path` on a thread of its own (once per path).
  void warm(const std::string& path);
  // Every shared library this process has mapped.
  void warm_own_libraries();
  // "file:line" for an address of the file at `path` (its own addresses,
  // as the file's program headers give them), or "" when unknown. Waits
  // for the file's loading to finish.
  std::string source_line(const std::string& path, std::uint64_t file_address);

 private:
  struct File;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<File>> files_;
  std::vector<std::thread> workers_;
};

// What the program wrote through stdio's stdout (fd 1) or stderr (fd 2)
// and its C library had not flushed yet: the bytes in glibc's FILE buffer
// (_IO_2_1_stdout_, found in the program's symbols; its magic checked). A
// program whose stdout is a pipe buffers whole blocks, and a crash would
// otherwise lose its last lines with its memory. "" when there are none or
// they cannot be found (another C library, no symbols).
std::string unflushed_output(pid_t pid, int fd);

// The records for `stop` (every thread of stop.pid is in a ptrace stop of
// the calling thread). Never empty: without an unwinder the first record
// still names the signal and the registers, and says why there is no
// backtrace. With `cache`, source lines come from it.
std::vector<std::string> crash_records(const CrashStop& stop, ReportLimits limits = {},
                                       DebugInfoCache* cache = nullptr);

}  // namespace np::witness
