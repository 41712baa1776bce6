// Every thread's stack of the running process, for the remote `stacks`
// command: each other thread is stopped for a moment (the core writer's
// way, dump/thread_stop.h, on a real-time signal of its own), its
// registers taken from its signal frame, its stack unwound from them with
// call-frame information and named by the symbolizer (console/
// crash_report.h's format_backtrace), then every thread goes on.
//
// Invariants: nothing is allocated after setup (the slots and the text of
// every thread live in one guarded mapping); a thread holds still at most
// `hold` (its handler lets go by itself after that, whatever happens
// here); the text is made while the threads are held and handed out only
// after they have been let go, so a caller that sends it over the network
// cannot wait on a lock a held thread has. A thread that does not answer
// within `thread_wait` (it blocks the signal, or has left) is listed
// without a stack. One walk at a time (the command thread's).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <memory>
#include <string_view>

#include "netpoll/base/function_ref.h"
#include "netpoll/base/guarded.h"
#include "netpoll/base/result.h"
#include "netpoll/console/cfi_unwind.h"
#include "netpoll/console/symbolizer.h"

namespace np::remote {

struct StacksConfig {
  // Not the core writer's (SIGRTMIN+7) nor the gdb stub's (SIGRTMIN+8):
  // all three may be set up in one process.
  int stop_signal = SIGRTMIN + 9;
  std::size_t max_threads = 256;                 // more are counted, not shown
  std::size_t text_per_thread = 6144;            // bytes of one thread's record
  std::chrono::milliseconds thread_wait{200};    // for the threads to answer
  std::chrono::milliseconds hold{2000};          // the most a thread is held
};

// One thread's record: "thread TID (NAME)\n#0 0x... function+0x.. (object)\n...".
using StackSink = FunctionRef<void(pid_t tid, std::string_view record)>;

class Stacks : public InGuardedMemory<Stacks> {
 public:
  // Maps the slots and installs the stop signal's handler (refused when
  // that signal has a handler already). `sym` and `cfi` name and unwind
  // frames (either may be null: addresses, frame-pointer walk); they must
  // outlive the Stacks. Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<Stacks>> setup(const StacksConfig& cfg, const console::Symbolizer* sym,
                                                                 const console::CfiIndex* cfi);
  ~Stacks();
  Stacks(const Stacks&) = delete;
  Stacks& operator=(const Stacks&) = delete;

  // Stops every other thread, writes each one's record, lets them go,
  // then hands the records to `sink` in the order /proc lists the threads,
  // the calling thread's own first ("thread TID (NAME): running this
  // command"). Returns the threads listed; `left_out` the ones beyond
  // max_threads. Context: any (not from a signal handler).
  std::size_t walk(StackSink sink, std::size_t* left_out = nullptr) noexcept;

 private:
  struct State;
  Stacks() = default;
  GuardedRegion region_;
  State* s_ = nullptr;
};

}  // namespace np::remote
