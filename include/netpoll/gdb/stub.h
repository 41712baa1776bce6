// The gdb stub: stock gdb attaches over UDP (`target remote
// udp:IP:PORT`) to this process, stopped, through netpoll's own path.
//
// The stub is a netpoll client on a device of its own (a private
// registry, no service thread: the serving thread polls, as
// debugnet/stream.h does), UDP port 6443 (kgdboe's) by default. It serves
// one peer: with a remote IP in the client's target only that address, else
// the first sender of a valid RSP packet (learned as kgdboe does); from
// then on, until the session ends, every other sender is counted
// (strangers) and ignored, and what the peer sends that is not RSP is
// counted too (session stats). A flood of datagrams cannot make it
// allocate or hang: each poll takes a bounded number of frames and every
// loop has a deadline.
//
// The host's own stack sees the same frames: for an address it owns it
// would answer gdb's datagrams with ICMP port unreachable, and gdb's
// connected socket gives up ("Connection refused"). So the stub also holds
// its port there, a UDP socket bound at setup that it never reads (its
// receive buffer small: what queues there is dropped by the kernel).
//
// Two ways it serves (session.h speaks the protocol, process_target.h is
// the stopped process):
//   on a crash  on_crash() as console::CrashConfig::after_report: every
//               other thread stops, gdb is served until it kills or detaches
//               or `wait` passes, then the hook returns and the process dies
//               of its signal, as it would have. gdb's continue or step
//               cannot bring a crashed program back: the stub answers that it
//               ended with its signal (X) and returns.
//   break-in    break_in() from any thread: it executes int3, and the
//               stub's SIGTRAP handler stops every other thread and serves
//               from the trapped thread. continue and step resume every
//               thread; a breakpoint or a finished step later arrives as
//               SIGTRAP in whichever thread meets it, whose handler then
//               stops the others and answers the waiting gdb; gdb's
//               interrupt (Ctrl-C) meanwhile is heard by a thread of the
//               stub's (StubConfig::watch), which stops the program from
//               its main thread (the stop says SIGINT). kill ends
//               the process (SIGKILL); detach, or `wait` without gdb,
//               takes the breakpoints out and lets the program go on. When
//               the program exits while gdb waits for it to stop, gdb hears
//               the exit status (an on_exit(3) handler, registered by
//               setup(): the stub must still exist then, as a global set
//               after setup() is, whose destructor runs after the handler).
//
// Limits, said plainly: without the watching thread (StubConfig::watch)
// nobody polls while the program runs, so gdb's Ctrl-C is not heard; a
// gdb that connects while the program runs is not heard until the program
// breaks in or traps; the int3s of breakpoints are out of memory while
// the process is stopped (process_target.h), but a breakpoint gdb put into
// code the SIGTRAP handler runs before it takes them out, or after it puts
// them back (the first and last few calls), would trap inside the handler
// and end the process; a signal gdb asks to pass on (C, S) is not
// delivered; while one thread serves, a second thread's trap waits its
// turn (it is shown to gdb stopped inside the handler) and is reported
// after. One stub per process (a core writer may exist beside it).
//
// Context: as marked.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <ucontext.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "netpoll/base/counter.h"
#include "netpoll/base/guarded.h"
#include "netpoll/base/result.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/core/registry.h"
#include "netpoll/gdb/process_target.h"
#include "netpoll/gdb/session.h"

namespace np::gdb {

inline constexpr std::uint16_t kDefaultPort = 6443;

struct StubConfig {
  // The local side: device and local IP (local port: 6443 unless the
  // option string gives another); a remote IP restricts the peer to it.
  core::ClientConfig client;
  // How long the stub waits for gdb and serves it, each time it stops.
  std::chrono::milliseconds wait{300'000};
  // How long a finished session waits for gdb's acknowledgement of the
  // last reply.
  std::chrono::milliseconds linger{2000};
  ProcessTargetConfig target;
  SessionConfig session;
  // Install the SIGTRAP handler for break-in and breakpoints.
  bool break_in = true;
  // With break_in: a thread of the stub's ("np-gdb-watch") polls the
  // device while the program runs and gdb waits for it to stop, so that
  // gdb's interrupt (Ctrl-C) is heard (the stop then says SIGINT).
  bool watch = true;
  // Serve only an address grant() named, until its grant ends (remote
  // commands' `gdb`: the sender of an authenticated command); every
  // other sender is a stranger. Off: the given peer or the first one.
  bool granted_only = false;
};

struct StubStats {
  SharedCounter stops;       // times the process stopped for gdb
  SharedCounter sessions;    // peers learned
  SharedCounter datagrams;   // from the peer
  SharedCounter strangers;   // datagrams from anyone else while a peer is set
  SharedCounter garbage;     // datagrams that held no valid packet when no peer was set
  SharedCounter timeouts;    // stops that ended because `wait` passed
};

// How a stop ended.
// kContinued: gdb continued or stepped a crashed program (it was told
// the program ended with its signal).
enum class StubEnd : std::uint8_t { kResumed, kKilled, kDetached, kContinued, kTimeout, kError };

class Stub : public InGuardedMemory<Stub> {
 public:
  // Opens the stub's device and sets up its target (the stop signal's
  // handler) and, with break_in, the SIGTRAP handler. One per process.
  // Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<Stub>> setup(StubConfig cfg);
  ~Stub();
  Stub(const Stub&) = delete;
  Stub& operator=(const Stub&) = delete;

  // For console::CrashConfig::after_report: `arg` is the Stub. Serves gdb
  // with every thread stopped, then returns (the process then dies).
  // Context: any.
  static void on_crash(void* arg, const siginfo_t* si, const ucontext_t* ctx) noexcept;
  StubEnd serve_crash(const siginfo_t* si, const ucontext_t* ctx) noexcept;

  // Stops the process here and serves gdb (see above); returns when gdb
  // lets the program go on. Needs break_in. Context: any.
  static void break_in() noexcept;

  // With StubConfig::granted_only: `ip` may talk to the stub until
  // `until_ns` (monotonic), in place of any earlier grant (an IPv6 address
  // grants nobody: the stub is IPv4 only). Context: any.
  void grant(const IpAddr& ip, std::int64_t until_ns) noexcept;

  // What a person types: "gdb PROGRAM -ex 'target remote udp:IP:PORT'".
  // Context: setup.
  std::string attach_command(const std::string& program) const;
  // The address gdb connects to: "IP:PORT". Context: setup.
  std::string address() const;

  const StubStats& stats() const noexcept { return stats_; }
  const Session& session() const noexcept { return *session_; }
  ProcessTarget& target() noexcept { return *target_; }
  // The program is exiting with `status` (the on_exit(3) handler; not
  // for callers). Context: any.
  void on_program_exit(int status) noexcept;

  // The SIGTRAP handler's work (not for callers). Context: any.
  void on_trap(const siginfo_t& si, ucontext_t& ctx) noexcept;

  // How the last stop ended.
  StubEnd last_end() const noexcept { return last_end_; }

 private:
  class Link;
  explicit Stub(StubConfig cfg);
  StubEnd serve(int signal, bool crash, std::int64_t deadline_ns) noexcept;
  void on_datagram(const core::RxInfo& info, std::span<const std::byte> payload) noexcept;
  static void* watch_main(void* self) noexcept;
  void watch() noexcept;
  // Takes the right to use the session and the device (serving_), waiting
  // up to `wait_ns` for whoever has it. Context: any.
  bool take_turn(pid_t me, std::int64_t wait_ns) noexcept;
  void say(std::string_view text) const noexcept;

  StubConfig cfg_;
  core::Registry registry_;  // the stub's own: its device is shared with no other client
  std::unique_ptr<core::Netpoll> np_;
  std::unique_ptr<ProcessTarget> target_;
  std::unique_ptr<Link> link_;
  std::unique_ptr<Session> session_;
  int port_holder_ = -1;  // the host stack's socket on our port (see above)
  struct sigaction old_trap_ {};
  bool trap_installed_ = false;
  // The thread that uses the session and the device now (serving gdb, or
  // the watcher polling while the program runs): one at a time.
  std::atomic<pid_t> serving_{0};
  pthread_t watcher_{};
  bool watcher_started_ = false;
  std::atomic<bool> stop_watching_{false};
  std::atomic<bool> interrupting_{false};
  std::atomic<std::uint32_t> granted_ip_{0};  // the address's bytes, in memory order
  std::atomic<std::int64_t> granted_until_ns_{0};  // the watcher sent SIGTRAP for gdb's interrupt
  pid_t stepping_ = 0;             // the thread gdb asked to step
  std::int64_t now_ns_ = 0;        // the serving loop's clock, for the receive hook
  bool crash_ = false;
  StubEnd last_end_ = StubEnd::kResumed;
  StubStats stats_;
};

}  // namespace np::gdb
