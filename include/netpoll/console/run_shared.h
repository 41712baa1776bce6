// The contract between `netpoll run` and the preloaded library inside the
// program it runs (libnetpoll_preload.so).
//
// Used when the runner does not trace the program (--no-trace, or tracing
// refused): the runner forwards the program's output lines as records; the
// library installs the crash path inside the program, whose crash record
// the program sends itself, over its own socket on the same device. Both
// number their records from the stream's counters (stream_state.h: a file
// or a memfd, mapped by both), so the receiver sees one sequence. Before its crash record, the crashing program
// waits (bounded) until its output pipes are empty and the runner says it
// has sent every line it read (runner_idle), so the crash record is
// numbered after the program's last output.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace np::console {

inline constexpr std::size_t kRunMaxTargets = 8;
inline constexpr std::uint32_t kRunMagic = 0x4e505234;  // "NPR4"

struct RunShared {
  std::uint32_t magic = kRunMagic;
  std::atomic<std::uint32_t> runner_idle{1};
  // Crashes the program's crash path began to report: the runner tells a
  // death it heard about from one it did not.
  std::atomic<std::uint32_t> crash_reports{0};
  // --dump: how the core went (kDump*), its bytes sent and milliseconds,
  // and why not (an np::Errc) when it failed.
  std::atomic<std::uint32_t> dump_state{0};
  std::atomic<std::uint32_t> dump_error{0};
  std::atomic<std::uint64_t> dump_bytes{0};
  std::atomic<std::uint64_t> dump_ms{0};
  // The console level both loggers read (Logger's shared_console_level):
  // a remote `level` command in the program changes what the runner sends.
  std::atomic<std::uint8_t> console_level{8};
};
inline constexpr std::uint32_t kDumpNone = 0, kDumpSending = 1, kDumpComplete = 2, kDumpFailed = 3,
                                kDumpUnanswered = 4;

// Environment of the program (the runner sets, the library reads):
inline constexpr const char* kRunEnvShm = "NETPOLL_RUN_SHM";          // descriptor of the RunShared memfd
inline constexpr const char* kRunEnvStream = "NETPOLL_RUN_STREAM";    // descriptor of the StreamCounters
inline constexpr const char* kRunEnvTargets = "NETPOLL_RUN_TARGETS";  // ';'-separated, MACs and IPs resolved
inline constexpr const char* kRunEnvFacility = "NETPOLL_RUN_FACILITY";
inline constexpr const char* kRunEnvSysdata = "NETPOLL_RUN_SYSDATA";
inline constexpr const char* kRunEnvUserdata = "NETPOLL_RUN_USERDATA";  // key=value pairs separated by \x1f
// netpoll run --dump: the core's way to the dump server, as a target string
// ("20024@LOCAL_IP/DEVICE,PORT@SERVER_IP/").
inline constexpr const char* kRunEnvDump = "NETPOLL_RUN_DUMP";
inline constexpr const char* kRunEnvDumpDeadline = "NETPOLL_RUN_DUMP_DEADLINE";  // seconds
// netpoll run --gdb: the gdb stub's device, address and port, as a target
// string ("PORT@LOCAL_IP/DEVICE"), how long it waits for gdb (seconds),
// and the line the crash record ends with (the command that attaches).
inline constexpr const char* kRunEnvGdb = "NETPOLL_RUN_GDB";
inline constexpr const char* kRunEnvGdbWait = "NETPOLL_RUN_GDB_WAIT";
inline constexpr const char* kRunEnvGdbAttach = "NETPOLL_RUN_GDB_ATTACH";
// netpoll run --commands: the key file's path; the program takes remote
// commands on its first target's local address and port.
inline constexpr const char* kRunEnvCommands = "NETPOLL_RUN_COMMANDS";
// The runner's pid: a process whose parent it is, is the program it
// started; the gdb stub's port and the commands' are that program's, and
// the processes the program starts in turn keep the console's crash path
// (and --dump) without them.
inline constexpr const char* kRunEnvRunner = "NETPOLL_RUN_RUNNER";

}  // namespace np::console
