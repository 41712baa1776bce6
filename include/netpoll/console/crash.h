// The last-breath crash path: when the process receives a fatal signal,
// send what the logger still holds, then a crash record, then die exactly
// as the process would have.
//
// A crashing program may have written over anything its pointers reach,
// so the handler trusts nothing it did not put out of their way: its own
// state, the logger, the devices and every buffer it uses live in guarded
// mappings (base/guarded.h), what never changes after install is sealed
// read-only, what it reads back is checked, and every loop is bounded.
//
// The handler runs on an alternate signal stack (a stack overflow can be
// reported) and, within a deadline, without allocating and without waiting
// on any lock another thread may hold:
//   1. one crashing thread handles the crash; a second one waits for the
//      process to die (at most the deadline and a second);
//   2. a timer to this thread starts the deadline (CrashConfig::deadline);
//      when it fires, or when the handler itself faults, the report ends
//      at once and the process dies of its first signal (step 8);
//   3. the logger is taken over (Logger::crash_take_over): the sender
//      thread stops at its next record; a target on a packet device sends
//      through its own crash route (core/crash_route.h), any other through
//      its device in emergency mode; every descriptor is checked to be
//      still netpoll's (a closed or reused one is never written);
//   4. every record still in the ring is sent (crash_drain);
//   5. a crash record at level emerg: signal and code, fault address,
//      thread id and name, registers, a backtrace from call-frame
//      information (cfi_unwind.h) named by the symbolizer (crash_report.h);
//   6. reliable targets (logger.h): every record the receiver has not
//      acknowledged is sent once more, oldest first, marked ncemg=1, for at
//      most `resend_budget` (crash_resend_unacked). No response is waited
//      for: nothing would poll for it, and a dying process cannot wait;
//   7. the after-report hook, when set (netdump's core), under a deadline
//      of its own;
//   8. the previous disposition is restored and the signal re-raised: a
//      fault the kernel raised (si_code > 0) by returning, so the faulting
//      instruction runs again; anything else with tgkill to this thread.
//      Same signal, same core dump, same exit status seen by the parent.
//
// x86-64 Linux. The handler is process-wide: one logger at a time.
#pragma once

#include <signal.h>
#include <ucontext.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "netpoll/base/result.h"
#include "netpoll/console/logger.h"

namespace np::console {

struct CrashConfig {
  // SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT; add others (SIGTRAP,
  // SIGSYS, SIGQUIT, ...) here to opt in.
  std::vector<int> signals{SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
  std::size_t altstack_size = 64 * 1024;
  // How long another thread may keep a device's transmit lock.
  std::chrono::milliseconds device_wait{50};
  // How long to wait for a record another thread is still writing (and
  // for the sender thread to finish a change to a retransmit window).
  std::chrono::milliseconds record_wait{20};
  // The whole report's time budget. When it runs out (a hang, a device that
  // never accepts) or the handler faults, the report is abandoned and the
  // process dies of its original signal, as it would have without netpoll.
  // SIGALRM is the deadline's timer signal while a report runs.
  std::chrono::milliseconds deadline{2000};
  // Reliable targets: how long the handler may spend sending the
  // unacknowledged records once more, after the crash record. 0: not at all.
  std::chrono::milliseconds resend_budget{200};
  bool symbolize = true;  // read symbol tables at install (setup)
  // netpoll run: before the crash record, wait until these descriptors'
  // pipes are empty and *peer_idle is nonzero (the runner has sent every
  // line it read), at most `peer_wait`; so the record comes after the
  // program's last output.
  std::vector<int> drain_fds;
  std::atomic<std::uint32_t>* peer_idle = nullptr;
  std::chrono::milliseconds peer_wait{500};
  // Counted up when the handler begins a report (netpoll run's shared
  // memory: the runner learns that a crash record is on its way).
  std::atomic<std::uint32_t>* report_count = nullptr;
  // Runs after the report (step 6), before the process dies: netdump's
  // core (netdump/dumper.h: Dumper::on_crash with the Dumper as `arg`).
  // The deadline starts again for it with `after_report_deadline`; when
  // that passes or it faults, the process dies as it would have. It must
  // keep the handler's rules: no heap, no lock, bounded. Context: any.
  void (*after_report)(void* arg, const siginfo_t* si, const ucontext_t* ctx) noexcept = nullptr;
  void* after_report_arg = nullptr;
  std::chrono::milliseconds after_report_deadline{120'000};
  // A last line of the crash record (netpoll run --gdb: the command that
  // attaches gdb to the stopped process). Fixed at install; at most 255
  // bytes (longer is refused).
  std::string report_trailer;
};

// Installs the handler for `cfg.signals` and gives the calling thread an
// alternate signal stack. The logger must outlive the installation.
// Context: setup.
[[nodiscard]] SetupResult<void> install_crash_handler(Logger& logger, CrashConfig cfg = {});

// Restores the dispositions install_crash_handler replaced. A Logger that
// is destroyed while installed uninstalls it first. Context: setup.
void uninstall_crash_handler();
void crash_logger_gone(const Logger* logger);  // called by ~Logger

// Gives the calling thread an alternate signal stack of the installed
// size (threads do not inherit one): call it at the start of every thread
// whose stack overflow should be reported. `netpoll run` does it for every
// thread of the program it runs. Context: setup.
[[nodiscard]] SetupResult<void> prepare_thread();

}  // namespace np::console
