// The witness's tracer (see tracer.h).
#include "netpoll/witness/tracer.h"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace np::witness {
namespace {

bool is_stop_signal(int sig) noexcept { return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU; }

// The fields of /proc/TID/status a verdict needs.
struct TaskStatus {
  pid_t tgid = 0;
  std::uint64_t ignored = 0;  // SigIgn
  std::uint64_t caught = 0;   // SigCgt
  bool ok = false;
};

TaskStatus read_status(pid_t tid) {
  TaskStatus s;
  std::ifstream in("/proc/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    const std::string value = line.substr(colon + 1);
    if (key == "Tgid") s.tgid = static_cast<pid_t>(std::strtol(value.c_str(), nullptr, 10));
    if (key == "SigIgn") s.ignored = std::strtoull(value.c_str(), nullptr, 16);
    if (key == "SigCgt") {
      s.caught = std::strtoull(value.c_str(), nullptr, 16);
      s.ok = true;
    }
  }
  return s;
}

bool has(std::uint64_t mask, int sig) noexcept { return sig >= 1 && sig <= 64 && ((mask >> (sig - 1)) & 1) != 0; }

std::vector<pid_t> list_threads(pid_t pid) {
  std::vector<pid_t> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    out.push_back(static_cast<pid_t>(std::atol(e->d_name)));
  }
  ::closedir(d);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

bool default_action_kills(int sig) noexcept {
  switch (sig) {
    case SIGCHLD:
    case SIGCONT:
    case SIGURG:
    case SIGWINCH:
    case SIGSTOP:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
      return false;
    default:
      return sig >= 1 && sig <= 64;
  }
}

std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::optional<bool> is_dynamic_elf(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  Elf64_Ehdr eh{};
  std::optional<bool> verdict;
  if (::pread(fd, &eh, sizeof eh, 0) == sizeof eh && std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
      eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phentsize == sizeof(Elf64_Phdr) && eh.e_phnum < 256) {
    verdict = false;
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
      Elf64_Phdr ph{};
      if (::pread(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof ph)) != sizeof ph) break;
      if (ph.p_type == PT_INTERP) verdict = true;
    }
  }
  ::close(fd);
  return verdict;
}

// What the tracer thread and the spawning thread share.
struct Tracer::State {
  TracerHooks hooks;
  TracerConfig cfg;
  pid_t pid = 0;
  bool traced = false;
  bool thread_less = false;  // spawned untraced on the caller's thread: wait() reaps
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  int status = 0;

  // The hooks are the owner's: after ~Tracer they are not called (the
  // tracer thread may go on tracing what the program forked).
  std::mutex hooks_mutex;
  bool hooks_live = true;

  void finish(int st) {
    {
      std::lock_guard hl(hooks_mutex);
      if (hooks_live && hooks.on_exit) hooks.on_exit(st);
    }
    std::lock_guard lock(mutex);
    status = st;
    done = true;
    done_cv.notify_all();
  }

  void loop();
  void handle_crash(pid_t tid, const siginfo_t& si, pid_t tgid);
};

namespace {

// The child's side of spawn(): only async-signal-safe calls between fork
// and execve (other threads of ours may hold locks that would never be
// released in the child).
struct Launch {
  std::string path;
  std::vector<std::string> argv_s, env_t, env_u;
  std::vector<char*> argv, envp_traced, envp_untraced;
  int stdout_fd = -1, stderr_fd = -1;

  explicit Launch(const SpawnSpec& spec)
      : path(resolve_program(spec.path)), argv_s(spec.argv), env_t(spec.env_traced), env_u(spec.env_untraced),
        stdout_fd(spec.stdout_fd), stderr_fd(spec.stderr_fd) {
    if (path.empty()) path = spec.path;  // execve reports ENOENT
    argv = c_strings(argv_s);
    envp_traced = c_strings(env_t);
    envp_untraced = c_strings(env_u);
  }

  // Forks a child that waits for a byte on a pipe ('t': traced) before it
  // runs the program; `go` gets the pipe's write end, `exec_status` the
  // read end of a pipe that brings back execve's errno (EOF: it ran).
  pid_t fork_waiting(int& go, int& exec_status) {
    int g[2], e[2];
    if (::pipe2(g, O_CLOEXEC) != 0) return -1;
    if (::pipe2(e, O_CLOEXEC) != 0) {
      ::close(g[0]);
      ::close(g[1]);
      return -1;
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (stdout_fd >= 0) ::dup2(stdout_fd, STDOUT_FILENO);
      if (stderr_fd >= 0) ::dup2(stderr_fd, STDERR_FILENO);
      char how = 'u';
      while (::read(g[0], &how, 1) < 0 && errno == EINTR) {
      }
      ::execve(path.c_str(), argv.data(), how == 't' ? envp_traced.data() : envp_untraced.data());
      const int err = errno;
      [[maybe_unused]] const ssize_t w = ::write(e[1], &err, sizeof err);
      ::_exit(127);
    }
    ::close(g[0]);
    ::close(e[1]);
    if (pid < 0) {
      ::close(g[1]);
      ::close(e[0]);
      return -1;
    }
    go = g[1];
    exec_status = e[0];
    return pid;
  }

  // Lets the child run the program; returns execve's errno (0: it ran).
  static int release(int go, int exec_status, bool traced) {
    const char how = traced ? 't' : 'u';
    [[maybe_unused]] const ssize_t w = ::write(go, &how, 1);
    ::close(go);
    int exec_errno = 0;
    ssize_t got;
    while ((got = ::read(exec_status, &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
    }
    ::close(exec_status);
    return got == sizeof exec_errno ? exec_errno : 0;
  }
};

std::string why_refused(int err) {
  std::string why = std::string("ptrace: ") + std::strerror(err);
  if (std::ifstream scope("/proc/sys/kernel/yama/ptrace_scope"); scope) {
    int level = 0;
    scope >> level;
    why += " (/proc/sys/kernel/yama/ptrace_scope is " + std::to_string(level) + ")";
  }
  return why;
}

}  // namespace

SetupResult<std::unique_ptr<Tracer>> Tracer::spawn(const SpawnSpec& spec, bool trace, TracerHooks hooks,
                                                   TracerConfig cfg) {
  std::unique_ptr<Tracer> t(new Tracer());
  t->state_ = std::make_shared<State>();
  t->state_->hooks = std::move(hooks);
  t->state_->cfg = cfg;
  auto launch = std::make_shared<Launch>(spec);

  if (!trace) {
    int go = -1, exec_status = -1;
    const pid_t pid = launch->fork_waiting(go, exec_status);
    if (pid < 0) return setup_error(Errc::kIo, std::string("fork: ") + std::strerror(errno));
    t->spawned_.pid = t->state_->pid = pid;
    t->state_->thread_less = true;
    t->spawned_.exec_error = Launch::release(go, exec_status, false);
    return t;
  }
  // The tracer thread forks and attaches: ptrace requests are answered
  // only for the thread that attached, and it waits (__WNOTHREAD) only for
  // its own children and tracees, so that tracers on other threads of
  // this process never take each other's events.
  std::promise<std::pair<Spawned, std::string>> started;
  auto result = started.get_future();
  std::thread([state = t->state_, launch, &started] {
    Spawned sp;
    int go = -1, exec_status = -1;
    const pid_t pid = launch->fork_waiting(go, exec_status);
    if (pid < 0) {
      started.set_value({sp, std::string("fork: ") + std::strerror(errno)});
      return;
    }
    sp.pid = state->pid = pid;
    constexpr long kOptions = PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC;
    const int rc = ::ptrace(PTRACE_SEIZE, pid, nullptr, reinterpret_cast<void*>(kOptions)) == 0 ? 0 : errno;
    sp.traced = rc == 0;
    if (rc != 0) sp.why_not = why_refused(rc);
    sp.exec_error = Launch::release(go, exec_status, sp.traced);
    state->traced = sp.traced;
    started.set_value({sp, ""});
    // Untraced, the program is still this thread's child: wait() reaps it here.
    state->loop();
  }).detach();
  auto [sp, error] = result.get();
  if (!error.empty()) return setup_error(Errc::kIo, error);
  t->spawned_ = sp;
  return t;
}

Tracer::~Tracer() {
  std::lock_guard hl(state_->hooks_mutex);
  state_->hooks_live = false;
}

int Tracer::wait() {
  if (state_->thread_less) {
    int st = 0;
    while (::waitpid(spawned_.pid, &st, 0) < 0 && errno == EINTR) {
    }
    state_->finish(st);
    return st;
  }
  std::unique_lock lock(state_->mutex);
  state_->done_cv.wait(lock, [&] { return state_->done; });
  return state_->status;
}

void Tracer::State::loop() {
  for (;;) {
    int st = 0;
    const pid_t tid = ::waitpid(-1, &st, __WALL | __WNOTHREAD);
    if (tid < 0) {
      if (errno == EINTR) continue;
      return;  // ECHILD: nobody left to trace
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      if (tid == pid) finish(st);
      continue;
    }
    if (!WIFSTOPPED(st)) continue;
    const int sig = WSTOPSIG(st);
    const int event = st >> 16;
    if (event == PTRACE_EVENT_STOP) {
      // A group stop stays a stop (job control); the other event stops
      // (a new thread or process, our own interrupt) resume.
      ::ptrace(is_stop_signal(sig) ? PTRACE_LISTEN : PTRACE_CONT, tid, nullptr, nullptr);
      continue;
    }
    if (event != 0) {  // clone, fork, vfork, exec
      if (event == PTRACE_EVENT_EXEC && tid == pid) {
        std::lock_guard hl(hooks_mutex);
        if (hooks_live && hooks.on_exec) hooks.on_exec(tid);
      }
      ::ptrace(PTRACE_CONT, tid, nullptr, nullptr);
      continue;
    }
    // A signal-delivery stop: the signal goes on to the program after this.
    siginfo_t si{};
    if (::ptrace(PTRACE_GETSIGINFO, tid, nullptr, &si) == 0) {
      const TaskStatus ts = read_status(tid);
      const bool fatal = ts.ok && !has(ts.caught, sig) && !has(ts.ignored, sig) && default_action_kills(sig);
      if (fatal) handle_crash(tid, si, ts.tgid);
    }
    ::ptrace(PTRACE_CONT, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig)));
  }
}

void Tracer::State::handle_crash(pid_t tid, const siginfo_t& si, pid_t tgid) {
  CrashStop stop;
  stop.pid = tgid;
  stop.tid = tid;
  stop.info = si;
  stop.threads.push_back(tid);
  // Every other thread of the process: interrupt, then collect its stop.
  // How each one resumes afterwards: a signal it stopped with goes on to
  // it, a group stop stays one.
  struct Held {
    int resume_signal = 0;
    bool listen = false;
  };
  std::map<pid_t, Held> held;
  std::vector<pid_t> waiting;
  for (const pid_t t : list_threads(tgid)) {
    if (t == tid) continue;
    if (::ptrace(PTRACE_INTERRUPT, t, nullptr, nullptr) == 0) waiting.push_back(t);
  }
  const auto deadline = std::chrono::steady_clock::now() + cfg.stop_wait;
  while (!waiting.empty()) {
    for (auto it = waiting.begin(); it != waiting.end();) {
      int st = 0;
      const pid_t r = ::waitpid(*it, &st, __WALL | __WNOTHREAD | WNOHANG);
      if (r == *it && WIFSTOPPED(st)) {
        Held h;
        const int event = st >> 16;
        if (event == PTRACE_EVENT_STOP) {
          h.listen = is_stop_signal(WSTOPSIG(st));
        } else if (event == 0) {
          h.resume_signal = WSTOPSIG(st);  // it was about to take a signal of its own
        }
        held[*it] = h;
        stop.threads.push_back(*it);
        it = waiting.erase(it);
      } else if (r == *it || (r < 0 && errno == ECHILD)) {
        it = waiting.erase(it);  // gone
      } else {
        ++it;
      }
    }
    if (waiting.empty() || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  stop.not_stopped = waiting;
  ::ptrace(PTRACE_GETREGS, tid, nullptr, &stop.regs);
  {
    std::lock_guard hl(hooks_mutex);
    if (hooks_live && hooks.on_crash) hooks.on_crash(stop);
  }
  for (const auto& [t, h] : held) {
    if (h.listen) {
      ::ptrace(PTRACE_LISTEN, t, nullptr, nullptr);
    } else {
      ::ptrace(PTRACE_CONT, t, nullptr, reinterpret_cast<void*>(static_cast<long>(h.resume_signal)));
    }
  }
}

}  // namespace np::witness
