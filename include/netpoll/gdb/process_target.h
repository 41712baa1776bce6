// The stopped process as gdb sees it (target.h's Target): this process,
// with every thread but the serving one held in the stop signal's handler
// (dump/thread_stop.h), the serving thread's registers taken from its
// signal frame.
//
//   threads    /proc/self/task at stop time, in its order (the main thread
//              first), each with its name (/proc/self/task/TID/comm, read
//              then into fixed buffers) and its registers; one that does not
//              answer the stop signal in time is listed without registers;
//   memory     read with process_vm_readv(2) on our own pid: an unmapped or
//              unreadable address is an error value, never a fault; written
//              with pwrite(2) on /proc/self/mem, opened at setup, which
//              writes through page protections (a breakpoint into read-only
//              text) and fails cleanly on what is not mapped; reads show the
//              original bytes under inserted breakpoints;
//   breakpoints a table of fixed size. gdb inserts and removes them while
//              the process is stopped; their int3s go into memory (the
//              original byte kept) only when it runs on (resume()), and come
//              out again as soon as it stops (disarm_breakpoints(), the
//              first thing a trap does), so that the stub's own code, which
//              runs while the process is stopped, never meets one;
//   stepping   resume() sets the trap flag in the stepping thread's saved
//              eflags; every held thread goes on with the registers gdb left
//              in its capture (thread_stop.h: resume_with_capture), the
//              serving thread with those written into its own signal frame;
//   objects    auxv (/proc/self/auxv) and the program's path
//              (/proc/self/exe) read at setup; the shared libraries
//              (qXfer:libraries-svr4) from the dynamic linker's r_debug and
//              its link_map list, read through the same safe reads.
//
// One per process (its stop signal's handler is process-wide); a core
// writer may exist beside it, on its own signal. Context: as marked.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <ucontext.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "netpoll/base/guarded.h"
#include "netpoll/base/result.h"
#include "netpoll/gdb/target.h"

namespace np::gdb {

struct ProcessTargetConfig {
  std::size_t max_threads = 256;  // threads shown; more are left out (counted)
  std::size_t max_breakpoints = 64;
  // The real-time signal that stops the other threads: the program must
  // not use it. Not the core writer's (SIGRTMIN + 7): both may exist in a
  // process (netpoll run --gdb --dump).
  int stop_signal = SIGRTMIN + 8;
  std::chrono::milliseconds thread_wait{200};  // for the threads to answer it
};

struct ProcessTargetState;

class ProcessTarget final : public Target, public InGuardedMemory<ProcessTarget> {
 public:
  // Maps the tables, installs the stop signal's handler, opens
  // /proc/self/mem, reads auxv and the program's path. Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<ProcessTarget>> setup(const ProcessTargetConfig& cfg = {});
  ~ProcessTarget();
  ProcessTarget(const ProcessTarget&) = delete;
  ProcessTarget& operator=(const ProcessTarget&) = delete;

  // Stops every other thread (held until resume(), or `hold_until_ns`
  // when resume() never comes) and takes the calling thread's registers
  // from `ctx`, its signal frame. `signal`: why (SIGTRAP for a trap).
  // Context: any (a signal handler).
  [[nodiscard]] Result<void> stop(int signal, const ucontext_t& ctx, std::int64_t hold_until_ns) noexcept;

  // Marks the stop as a breakpoint: the calling thread's pc set back onto
  // the int3 at `addr`. Context: any.
  void stopped_at_breakpoint(std::uint64_t addr) noexcept;

  // Lets every thread go with the registers gdb left, `how.step` with
  // the trap flag set; the calling thread's own go into `ctx`, which its
  // handler returns to. Context: any.
  void resume(const Resume& how, ucontext_t& ctx) noexcept;

  // Lets the held threads go as they were (no registers changed).
  // Context: any.
  void release() noexcept;

  // An int3 of ours in memory at `addr`? Context: any.
  bool has_breakpoint(std::uint64_t addr) const noexcept;
  // Puts the int3 of every breakpoint gdb inserted into memory / takes
  // them out again (the breakpoints stay inserted for gdb). Context: any.
  void arm_breakpoints() noexcept;
  void disarm_breakpoints() noexcept;
  // Forgets every breakpoint (the original bytes back). Context: any.
  void remove_all_breakpoints() noexcept;

  // Threads that did not answer the stop signal in time / did not fit.
  std::uint32_t threads_without_registers() const noexcept;
  std::uint32_t threads_left_out() const noexcept;
  // The program's path (/proc/self/exe at setup). Context: any.
  std::string_view program() const noexcept;

  // Target.
  pid_t pid() const noexcept override;
  std::size_t thread_count() const noexcept override;
  pid_t thread_id(std::size_t i) const noexcept override;
  std::string_view thread_name(std::size_t i) const noexcept override;
  StopEvent stop_event() const noexcept override;
  Result<std::size_t> read_register(pid_t tid, int regno, std::span<std::byte> out) noexcept override;
  Result<void> write_register(pid_t tid, int regno, std::span<const std::byte> in) noexcept override;
  Result<std::size_t> read_memory(std::uint64_t addr, std::span<std::byte> out) noexcept override;
  Result<void> write_memory(std::uint64_t addr, std::span<const std::byte> in) noexcept override;
  Result<void> insert_breakpoint(std::uint64_t addr) noexcept override;
  Result<void> remove_breakpoint(std::uint64_t addr) noexcept override;
  Result<std::size_t> read_object(XferObject object, std::string_view annex, std::uint64_t offset,
                                  std::span<char> out) noexcept override;

 private:
  ProcessTarget() = default;
  GuardedRegion region_;
  ProcessTargetState* s_ = nullptr;
};

}  // namespace np::gdb
