// CoreWriter: an ELF core of the calling process, made by the process
// itself, from a fatal-signal handler (the crash path) or on request
// while it keeps running (as gcore would), handed out as bytes at file
// offsets to a sink. It never writes a file and never allocates after
// make(): the sink decides where the bytes go (netdump's transport sends
// them as UDP datagrams tagged with the offset; a test writes a file).
//
// What the core holds, in the kernel's layout (see elf_core.h and
// proc_maps.h): the ELF header; program headers (one PT_NOTE, then one
// PT_LOAD per mapping of /proc/self/smaps, p_filesz 0 where the memory is
// not dumped, file offsets page-aligned); the notes: for the calling
// thread first (gdb takes the first NT_PRSTATUS for the current thread)
// NT_PRSTATUS, NT_PRPSINFO, NT_SIGINFO (a crash only), NT_AUXV, NT_FILE,
// NT_FPREGSET, NT_X86_XSTATE, then NT_PRSTATUS, NT_FPREGSET and
// NT_X86_XSTATE of every other thread; then the dumped memory, read with
// process_vm_readv(2) on our own pid, so that an unreadable page is an
// error value, never a fault. Unreadable pages and pages of zeros are not
// given to the sink (the file stays sparse there; both are counted);
// holes of anonymous memory (never touched, per /proc/self/pagemap) are
// not even read.
//
// How the other threads are stopped: make() takes a real-time signal
// (config.stop_signal) for a handler of ours; begin() queues it to every
// other thread listed in /proc/self/task; each thread's handler saves
// its registers (general, FXSAVE/XSAVE, fs_base) into a slot made at
// make() and waits until end() lets it go, or until a hold limit passes
// (the latest deadline given to begin()/emit() plus config.hold_after);
// it never waits forever. A thread that does not answer within
// config.thread_wait (it blocks the signal, or is stuck in the kernel)
// is still listed, with zero registers. The calling thread is never
// signalled: its registers come from the fatal signal's context, or, for
// a live dump, from the point in begin() where it captured itself (with a
// copy of its stack above that point, 32 KiB, put back over the live
// stack when emit() reads it: by then begin()'s frames are gone).
//
// A live dump is a signal to every other thread: system calls restart
// (SA_RESTART) where the kernel restarts them, and the others (nanosleep,
// poll and epoll_wait with a timeout, ... see signal(7)) return EINTR,
// as for any handled signal.
//
// Phases: make() (setup) -> begin() -> emit() -> end(), all but make()
// safe in a fatal-signal handler: no heap, no locks, no stdio, raw system
// calls and our own parsing, every loop bounded, the deadlines (monotonic
// ns, passed in) checked. One dump at a time; one CoreWriter per process.
// The program must not use config.stop_signal itself.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "netpoll/base/function_ref.h"
#include "netpoll/base/guarded.h"
#include "netpoll/base/result.h"

namespace np::dump {

// Gets the core's bytes: pieces in increasing offset order, never
// overlapping; a range never given is zeros (the receiver keeps a sparse
// file and extends it to CoreSummary::size). Returns false to abandon the
// dump.
using CoreSink = FunctionRef<bool(std::uint64_t offset, std::span<const std::byte> bytes)>;

struct CoreWriterConfig {
  std::size_t max_threads = 256;    // threads listed; more are counted, not dumped
  std::size_t max_mappings = 4096;  // PT_LOADs; more are counted, not dumped
  // The signal that stops the other threads: real-time (it queues and
  // carries a value), unused by the program. SIGRTMIN + 7 by default: the
  // C library keeps the first real-time signals for itself, and
  // SIGRTMIN + 7 is far from the ones programs usually take first.
  int stop_signal = SIGRTMIN + 7;
  // How long each other thread gets to answer the stop signal (all of
  // them together: they are signalled at once).
  std::chrono::milliseconds thread_wait{200};
  // How long stopped threads wait past the latest deadline the writer
  // was given when end() is not called (after a crash, the process dies
  // first).
  std::chrono::milliseconds hold_after{5000};
  // Read /proc/self/smaps (the do-not-dump and huge-page flags, whether a
  // private file mapping was written to, resident sizes for the progress
  // bound) rather than /proc/self/maps. It costs the kernel a walk of the
  // page tables, bounded by the deadline like everything else.
  bool read_smaps = true;
};

struct CoreSummary {
  // Known after begin(): the herald sent before the data carries it.
  std::uint64_t size = 0;  // the core file's length (end of the last segment)
  std::uint32_t threads = 0;
  std::uint32_t threads_without_registers = 0;
  std::uint32_t threads_left_out = 0;  // beyond max_threads: not in the core
  std::uint32_t mappings = 0;          // PT_LOADs
  std::uint32_t mappings_left_out = 0;  // beyond max_mappings: not in the core
  std::uint32_t files_left_out = 0;     // file mappings without an NT_FILE entry (no room for the name)
  std::uint64_t bytes_to_send = 0;      // upper bound of the bytes given to the sink
  int signal = 0;                       // 0 for a live dump
  pid_t pid = 0;
  char program[16] = {};  // comm, NUL-terminated
  // After emit().
  std::uint64_t bytes_sent = 0;
  std::uint64_t zero_pages_skipped = 0;  // read as zeros, or holes never touched
  std::uint64_t unreadable_pages = 0;
};

struct CoreWriterState;

class CoreWriter : public InGuardedMemory<CoreWriter> {
 public:
  // Installs the stop signal's handler and maps every table, sized by
  // the config. Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<CoreWriter>> make(const CoreWriterConfig& config = {});
  // Lets held threads go, restores the stop signal. Context: setup.
  ~CoreWriter();
  CoreWriter(const CoreWriter&) = delete;
  CoreWriter& operator=(const CoreWriter&) = delete;

  // Stops every other thread and captures its registers, reads the
  // mappings, auxv, coredump_filter, builds the notes and the layout.
  // `si`/`ctx`: the fatal signal's siginfo and the crashing (= calling)
  // thread's ucontext from the signal handler; both null for a live dump
  // (the caller's registers then come from its own context). Fails with
  // kTimeout when the deadline passes, kBusy while another dump runs;
  // threads it stopped stay stopped until end() either way.
  // Context: any.
  [[nodiscard]] Result<CoreSummary> begin(const siginfo_t* si, const ucontext_t* ctx, std::int64_t deadline_ns) noexcept;
  // Streams the core (ELF header, program headers, notes, then each
  // PT_LOAD's pages) to the sink, in increasing offsets. kClosed when the
  // sink gave up, kTimeout at the deadline (summary() tells how far it
  // got), kInvalidArgument without a begin(). Context: any.
  [[nodiscard]] Result<CoreSummary> emit(CoreSink sink, std::int64_t deadline_ns) noexcept;
  // Lets the stopped threads go on (a live dump); after a crash the
  // caller may skip it. Context: any.
  void end() noexcept;

  // The latest summary. Context: any.
  const CoreSummary& summary() const noexcept;

 private:
  CoreWriter() = default;
  GuardedRegion region_;
  CoreWriterState* s_ = nullptr;
};

}  // namespace np::dump
