// The witness: a healthy process that watches a program die.
//
// A crash report made inside a dying program can only use what the program
// has not destroyed. A tracer outside it has nothing to fear: netpoll run
// traces the program it runs (ptrace seize of every thread, and of every
// process it forks), sees each signal before the program does, and when a
// signal is about to kill a process it stops every thread of that process
// and hands it to a callback that can read its registers and memory. Then
// it lets the signal through, so the process dies exactly as it would have:
// the same signal, the same core dump, the same exit status for its parent.
//
// "About to kill" is decided at the signal-delivery stop from the process's
// dispositions (/proc/PID/status, SigIgn and SigCgt): a signal that is
// caught runs the program's handler and is not fatal yet (a handler that
// re-raises after resetting the disposition shows up again, as fatal); an
// ignored one is not fatal; otherwise its default action decides (SIGCHLD,
// SIGCONT, SIGURG, SIGWINCH: nothing; the stop signals: stop; everything
// else: end the process, with or without a core). The kernel delivers a
// fault that is blocked or ignored with the default action, so "all signals
// blocked" is seen as fatal. SIGKILL is never seen by anyone: a process
// killed by it dies without a report, and on_exit says so.
//
// Group stops (SIGSTOP, SIGTSTP, ...) stay stops: the tracer listens
// (PTRACE_LISTEN) instead of resuming, as job control expects.
//
// Threads: everything here runs on the tracer's own thread (ptrace requests
// must come from the thread that attached); the callbacks run there too.
// Context: setup throughout (the tracer allocates, reads /proc, sleeps).
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/user.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "netpoll/base/result.h"

namespace np::witness {

// A process about to die of a signal, with every one of its threads
// stopped. The callback may read registers (PTRACE_GETREGS) and memory.
struct CrashStop {
  pid_t pid = 0;        // the process (thread group)
  pid_t tid = 0;        // the thread the signal was delivered to
  siginfo_t info{};     // as delivered
  user_regs_struct regs{};  // of `tid`, at the delivery
  std::vector<pid_t> threads;  // every thread of `pid` that could be stopped, `tid` first
  std::vector<pid_t> not_stopped;  // threads that did not stop in time (not readable)
};

struct TracerHooks {
  // A signal is about to end `stop.pid`; the process resumes, and dies, when
  // this returns.
  std::function<void(const CrashStop& stop)> on_crash;
  // The first process (the one spawn() started) has ended: its wait status.
  std::function<void(int status)> on_exit;
  // The first process has run execve (its first image included): the
  // program now mapped is a new one.
  std::function<void(pid_t pid)> on_exec;
};

struct TracerConfig {
  // How long stopping the other threads of a crashing process may take.
  std::chrono::milliseconds stop_wait{200};
};

// The program the tracer starts: fork, then in the child only dup2 and
// execve (async-signal-safe calls).
struct SpawnSpec {
  std::string path;                 // resolved with PATH if it has no '/'
  std::vector<std::string> argv;
  std::vector<std::string> env_traced;    // the environment when traced
  std::vector<std::string> env_untraced;  // when tracing is refused
  int stdout_fd = -1;               // dup2'ed onto 1 and 2 when >= 0
  int stderr_fd = -1;
};

// What spawn() did.
struct Spawned {
  pid_t pid = 0;
  bool traced = false;
  std::string why_not;  // when not traced: the reason, for a person
  int exec_error = 0;   // errno of a failed execve (the program then exits 127)
};

class Tracer {
 public:
  // Starts the program. With `trace`, a tracer thread seizes it before it
  // runs a single instruction of the program; when the kernel refuses
  // (Yama's ptrace_scope, a seccomp filter, a container), the program runs
  // untraced and why_not says why. Without `trace`, it just runs. Either
  // way on_exit is called once with its wait status (from the tracer's
  // thread, or from wait_untraced()). Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<Tracer>> spawn(const SpawnSpec& spec, bool trace, TracerHooks hooks,
                                                    TracerConfig cfg = {});
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  const Spawned& spawned() const noexcept { return spawned_; }

  // Waits until the program has ended (on_exit has been called) and
  // returns its wait status. Traced, the tracer thread goes on tracing the
  // processes the program forked, until they end.
  int wait();

 private:
  Tracer() = default;

  Spawned spawned_;
  struct State;
  std::shared_ptr<State> state_;  // shared with the tracer thread, which outlives us when processes remain
};

// The path execve would run for `name` (PATH search when it has no '/'),
// or "" when none is found. Context: setup.
std::string resolve_program(const std::string& name);

// Whether the ELF file at `path` asks for a program interpreter (is
// dynamically linked): a static program cannot take a preloaded library.
// nullopt when the file cannot be read as ELF (a script, say). Context: setup.
std::optional<bool> is_dynamic_elf(const std::string& path);

// A signal's default action ends the process (with or without a core).
bool default_action_kills(int sig) noexcept;

}  // namespace np::witness
