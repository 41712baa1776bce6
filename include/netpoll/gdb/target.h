// What the gdb stub's session (session.h) debugs and talks through, as two
// small interfaces: the session is pure protocol logic, so its tests run
// it against a fake target and a transport that records bytes, and the
// stub (stub.h) against the stopped process (process_target.h) and
// netpoll's UDP path.
//
// Every call is made while the target is stopped, from the one thread
// that serves gdb. Context: any (implementations allocate nothing, take
// no lock and may run in a fatal-signal handler).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "netpoll/base/result.h"

namespace np::gdb {

// Why the target stopped, as the stop reply tells gdb.
struct StopEvent {
  int signal = 0;        // the host's signal number (SIGTRAP for a breakpoint or a step)
  pid_t thread = 0;      // the thread that stopped (gdb's current thread)
  bool breakpoint = false;  // an int3 of a Z0 breakpoint (the pc is set back onto it)
};

// How the target goes on: every thread runs; `step`, when not 0, is the
// thread that executes one instruction and stops again (the trap flag).
struct Resume {
  pid_t step = 0;
};

// The objects gdb reads with qXfer that the target supplies (the target
// description and the thread list the session makes itself).
enum class XferObject : std::uint8_t { kAuxv, kLibrariesSvr4, kExecFile };

class Target {
 public:
  virtual pid_t pid() const noexcept = 0;
  virtual std::size_t thread_count() const noexcept = 0;
  // The i-th thread's id (i < thread_count()) and its name (comm, read
  // when the thread stopped; may be empty).
  virtual pid_t thread_id(std::size_t i) const noexcept = 0;
  virtual std::string_view thread_name(std::size_t i) const noexcept = 0;
  virtual StopEvent stop_event() const noexcept = 0;

  // Register `regno` (registers.h) of thread `tid` into `out`: its size;
  // kNotFound for an unknown thread, kUnsupported when its registers are
  // not known (a thread that did not stop in time): gdb is told
  // "unavailable".
  virtual Result<std::size_t> read_register(pid_t tid, int regno, std::span<std::byte> out) noexcept = 0;
  virtual Result<void> write_register(pid_t tid, int regno, std::span<const std::byte> in) noexcept = 0;

  // Memory, never faulting: the bytes read from `addr` (fewer at the end
  // of what is mapped; kIo when not even the first is readable). A write
  // is whole or fails.
  virtual Result<std::size_t> read_memory(std::uint64_t addr, std::span<std::byte> out) noexcept = 0;
  virtual Result<void> write_memory(std::uint64_t addr, std::span<const std::byte> in) noexcept = 0;

  // Software breakpoints (int3). Inserting one twice is one breakpoint;
  // removing one that is not there succeeds. kNoBuffer: the table is full.
  virtual Result<void> insert_breakpoint(std::uint64_t addr) noexcept = 0;
  virtual Result<void> remove_breakpoint(std::uint64_t addr) noexcept = 0;

  // Up to out.size() bytes of `object` from `offset`: the bytes given (0
  // past its end). `annex`: the qXfer annex as gdb sent it.
  virtual Result<std::size_t> read_object(XferObject object, std::string_view annex, std::uint64_t offset,
                                          std::span<char> out) noexcept = 0;

 protected:
  ~Target() = default;
};

// gdb's byte stream, outgoing. Context: any.
class Transport {
 public:
  virtual void send(std::span<const char> bytes) noexcept = 0;

 protected:
  ~Transport() = default;
};

}  // namespace np::gdb
