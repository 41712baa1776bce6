// netdump: a process sends an ELF core of itself to `netpoll dumpd`.
//
// A Dumper joins the core writer (dump/core_writer.h: the process's own
// core, made in-process, every thread stopped) to the debugnet stream
// (debugnet/stream.h: netpoll's UDP path, a device of its own). dump()
// stops the other threads and lays the core out, opens a transfer with a
// herald that describes it (kind, program, pid, signal, threads, size,
// host), streams the core's pages as they are read (zero pages never
// travel: the server's file is sparse there), and finishes with the file's
// length. A dump that cannot go on (the server stops answering, the
// deadline passes) tells the server it is partial when it still can.
//
// From a fatal-signal handler (the crash path: console/crash.h calls
// on_crash() after the console's records, see crash_hook()) the threads
// stay stopped until the process dies; on request (a live dump, as gcore
// makes) they go on afterwards and so does the process.
//
// Context: as marked.
#pragma once

#include <signal.h>
#include <ucontext.h>

#include <chrono>
#include <memory>
#include <string>

#include "netpoll/base/guarded.h"
#include "netpoll/base/result.h"
#include "netpoll/base/text.h"
#include "netpoll/debugnet/stream.h"
#include "netpoll/dump/core_writer.h"

namespace np::netdump {

struct DumperConfig {
  debugnet::StreamConfig stream;  // the server: remote IP and herald port (20023), device, local IP
  dump::CoreWriterConfig core;
  std::chrono::milliseconds deadline{120'000};  // one whole dump, herald to FINISHED
};

// What a dump did, for a person or a test.
struct DumpOutcome {
  dump::CoreSummary core;
  bool complete = false;  // every byte acknowledged and FINISHED answered
  bool answered = false;  // the server answered the herald
  Errc error{};           // why not, when not
};

class Dumper : public InGuardedMemory<Dumper> {
 public:
  // Sets up the stream (resolves the server) and the core writer (the
  // stop signal's handler). One Dumper per process. Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<Dumper>> setup(DumperConfig cfg);
  ~Dumper();
  Dumper(const Dumper&) = delete;
  Dumper& operator=(const Dumper&) = delete;

  // A dump of the running process: the other threads stop for its time,
  // then go on. Context: any (not from a signal handler that interrupted
  // a dump: kBusy then).
  DumpOutcome dump_live() noexcept;

  // A dump from a fatal-signal handler: `si` and `ctx` as the handler got
  // them. The other threads stay stopped. Context: any.
  DumpOutcome dump_crash(const siginfo_t* si, const ucontext_t* ctx) noexcept;

  // For console::CrashConfig::after_report: `arg` is the Dumper.
  static void on_crash(void* arg, const siginfo_t* si, const ucontext_t* ctx) noexcept;

  const DumpOutcome& last() const noexcept { return last_; }
  debugnet::Stream& stream() noexcept { return *stream_; }
  // "10.0.0.2:20023 via packet:eth0 from 10.0.0.1:20024". Context: setup.
  std::string describe() const { return stream_->describe(); }

 private:
  explicit Dumper(DumperConfig cfg);
  DumpOutcome run(const siginfo_t* si, const ucontext_t* ctx, bool crash) noexcept;

  DumperConfig cfg_;
  std::unique_ptr<debugnet::Stream> stream_;
  std::unique_ptr<dump::CoreWriter> writer_;
  FixedText<64> host_;  // this machine's name, read at setup
  FixedText<512> herald_;
  DumpOutcome last_;
};

}  // namespace np::netdump
