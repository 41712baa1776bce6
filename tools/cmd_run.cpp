// netpoll run TARGET -- COMMAND [ARGS...]: an unmodified program with its
// output forwarded as netconsole records and netpoll's crash path inside it.
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "client_options.h"
#include "commands.h"
#include "netpoll/console/logger.h"
#include "netpoll/console/run_shared.h"

extern char** environ;

namespace np::tools {
namespace {

constexpr const char* kHelp =
    "usage: netpoll run TARGET[;TARGET...] [options] -- COMMAND [ARGS...]\n"
    "\n"
    "Runs COMMAND with each line of its standard output and standard error\n"
    "sent as a log record (stderr at a higher level), and netpoll's crash\n"
    "path installed inside it through the preloadable library\n"
    "libnetpoll_preload.so: if COMMAND crashes, its last lines and a crash\n"
    "record (signal, fault address, thread, registers, backtrace) reach the\n"
    "targets. The output is also passed through to this terminal. The exit\n"
    "status is COMMAND's; a COMMAND killed by signal N gives 128+N.\n"
    "TARGET is netconsole's option string on a packet device (both this\n"
    "runner and COMMAND open it), e.g. +6665@/eth0,6666@10.0.0.2/\n"
    "\n"
    "options:\n"
    "  --stdout-level L     level of stdout lines (default info)\n"
    "  --stderr-level L     level of stderr lines (default err)\n"
    "  --facility F         (default user)\n"
    "  --userdata KEY=VALUE add \" KEY=VALUE\" to every extended record (repeatable)\n"
    "  --sysdata LIST       any of cpu,taskname,release,msgid\n"
    "  --no-echo            do not pass COMMAND's output through\n"
    "  --reliable           netconsd's reliable mode for the lines this runner\n"
    "                       sends, on every target (extended only): kept until the\n"
    "                       receiver (netpoll listen --ack, netconsd) acknowledges\n"
    "                       them, sent again when it reports them missing, resent\n"
    "                       marked ncemg=1 after 10 s without progress. COMMAND's\n"
    "                       crash record is sent from inside COMMAND, once: best\n"
    "                       effort, never retransmitted\n"
    "  --preload PATH       the library (default: next to this netpoll binary)\n"
    "  --linger S           at exit, wait up to S seconds for records to go out\n"
    "                       (with --reliable: to be acknowledged) (default 2)\n"
    "Dynamically linked programs only (a static one cannot preload).\n";

const char* signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGTRAP: return "SIGTRAP";
    case SIGSYS: return "SIGSYS";
    case SIGPIPE: return "SIGPIPE";
    default: return "signal";
  }
}

std::string default_preload() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (exe.parent_path() / "libnetpoll_preload.so").string();
}

// The sanitizer build's library needs the sanitizer runtime loaded first in
// a program that has none of its own.
std::string sanitizer_runtime() {
#if defined(__SANITIZE_ADDRESS__)
  std::string found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* out) {
        const std::string name = info->dlpi_name != nullptr ? info->dlpi_name : "";
        if (name.find("libasan.so") != std::string::npos) *static_cast<std::string*>(out) = name;
        return 0;
      },
      &found);
  return found;
#else
  return {};
#endif
}

// A line splitter per output stream; lines longer than the record size
// become several records, the later ones marked as continuations.
struct Stream {
  int fd;
  console::Level level;
  int echo_fd;
  std::string partial;
  bool open = true;
};

}  // namespace

int cmd_run(int argc, char** argv) {
  ArgParser args;
  declare_client_options(args);
  args.option("stdout-level").option("stderr-level").option("facility").option("userdata").option("sysdata");
  args.option("preload").option("linger").flag("no-echo").flag("reliable").flag("help");
  args.parse(argc, argv, 2);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    std::fputs(kClientOptionsHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("expected one TARGET (several are separated by ';')");
  if (args.after_dashes().empty()) throw UsageError("expected -- COMMAND [ARGS...]");
  const auto out_level = console::parse_level(args.get("stdout-level").value_or("info"));
  const auto err_level = console::parse_level(args.get("stderr-level").value_or("err"));
  if (!out_level || !err_level) throw UsageError("unknown level in --stdout-level or --stderr-level");
  const std::string facility_name = args.get("facility").value_or("user");
  const auto facility = console::parse_facility(facility_name);
  if (!facility) throw UsageError("--facility '" + facility_name + "': unknown facility");
  console::Sysdata sysdata;
  const std::string sysdata_list = args.get("sysdata").value_or("");
  if (!sysdata_list.empty()) {
    auto s = console::parse_sysdata(sysdata_list);
    if (!s) throw UsageError("--sysdata: " + s.error().message);
    sysdata = *s;
  }
  std::vector<std::pair<std::string, std::string>> userdata;
  std::string userdata_env;
  for (const auto& kv : args.all("userdata")) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos) throw UsageError("--userdata '" + kv + "': expected KEY=VALUE");
    userdata.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    userdata_env += (userdata_env.empty() ? "" : "\x1f") + kv;
  }
  const std::string preload = args.get("preload").value_or(default_preload());
  if (::access(preload.c_str(), R_OK) != 0)
    throw UsageError("cannot read the preload library " + preload + " (give --preload PATH)");
  const double linger = args.get_seconds("linger", 2);
  const bool echo = !args.has("no-echo");

  // The counters both processes number their records from.
  const int shm_fd = ::memfd_create("netpoll-run", 0);  // inherited by COMMAND: no CLOEXEC
  if (shm_fd < 0 || ::ftruncate(shm_fd, sizeof(console::RunShared)) != 0) {
    std::fprintf(stderr, "netpoll run: cannot create shared memory: %s\n", std::strerror(errno));
    return 1;
  }
  void* mem = ::mmap(nullptr, sizeof(console::RunShared), PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
  if (mem == MAP_FAILED) {
    std::fprintf(stderr, "netpoll run: cannot map shared memory: %s\n", std::strerror(errno));
    return 1;
  }
  auto* shared = new (mem) console::RunShared();

  console::LoggerConfig cfg;
  cfg.name = "netpoll run";
  cfg.facility = *facility;
  for (auto& t : parse_target_option(args, args.positional()[0], cfg.name).targets) {
    if (!t.device.empty() && t.device.rfind("packet:", 0) != 0 && t.device.find(':') != std::string::npos &&
        !MacAddr::parse(t.device)) {
      throw UsageError("target '" + t.text + "': netpoll run needs a packet device (the program opens it too)");
    }
    console::TargetConfig tc;
    tc.target = std::move(t);
    tc.sysdata = sysdata;
    tc.userdata = userdata;
    tc.reliable = args.has("reliable");
    cfg.targets.push_back(std::move(tc));
  }
  if (cfg.targets.size() > console::kRunMaxTargets) throw UsageError("at most 8 targets");
  const ClientTuning tuning = client_tuning(args);
  cfg.device = tuning.device;
  cfg.resolve = tuning.resolve;
  cfg.log = tuning.log;
  cfg.shared_seq = &shared->seq;
  cfg.shared_msgid = shared->msgid;
  auto lg = console::Logger::create(std::move(cfg));
  if (!lg) {
    std::fprintf(stderr, "%s\n", lg.error().message.c_str());
    return 1;
  }
  // The program's targets: ours, resolved (local IP, remote MAC), so it
  // needs no ARP of its own.
  std::string child_targets;
  for (std::size_t i = 0; i < (*lg)->target_count(); ++i) {
    const auto& t = (*lg)->target_client(i).target();
    if (!child_targets.empty()) child_targets += ';';
    child_targets += std::string(t.extended ? "+" : "") + (t.release ? "r" : "") + std::to_string(t.local_port) +
                     "@" + t.local_ip.to_string() + "/" + t.device + "," + std::to_string(t.remote_port) + "@" +
                     t.remote_ip.to_string() + "/" + (*lg)->target_client(i).remote_mac().to_string();
  }

  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "netpoll run: pipe: %s\n", std::strerror(errno));
    return 1;
  }
  std::string preload_env = preload;
  const std::string asan = sanitizer_runtime();
  if (!asan.empty()) preload_env = asan + ":" + preload;
  if (const char* existing = std::getenv("LD_PRELOAD"); existing != nullptr && *existing != '\0')
    preload_env += std::string(":") + existing;
  const std::string shm_env = std::to_string(shm_fd);
  std::vector<char*> child_argv;
  for (const auto& a : args.after_dashes()) child_argv.push_back(const_cast<char*>(a.c_str()));
  child_argv.push_back(nullptr);
  const std::string command = args.after_dashes()[0];

  const pid_t pid = ::fork();
  if (pid < 0) {
    std::fprintf(stderr, "netpoll run: fork: %s\n", std::strerror(errno));
    return 1;
  }
  if (pid == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::setenv("LD_PRELOAD", preload_env.c_str(), 1);
    if (!asan.empty()) {
      // The sanitizer runtime we preload must leave the program's fatal
      // signals to our crash path and the kernel, and its exit alone.
      ::setenv("ASAN_OPTIONS",
               "handle_segv=0:handle_abort=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:detect_leaks=0", 1);
    }
    ::setenv(console::kRunEnvShm, shm_env.c_str(), 1);
    ::setenv(console::kRunEnvTargets, child_targets.c_str(), 1);
    ::setenv(console::kRunEnvFacility, facility_name.c_str(), 1);
    if (!sysdata_list.empty()) ::setenv(console::kRunEnvSysdata, sysdata_list.c_str(), 1);
    if (!userdata_env.empty()) ::setenv(console::kRunEnvUserdata, userdata_env.c_str(), 1);
    ::execvp(child_argv[0], child_argv.data());
    std::fprintf(stderr, "netpoll run: cannot run %s: %s\n", child_argv[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  // Our own terminal signals go to the program; we follow it out.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGQUIT, SIG_IGN);

  Stream streams[2] = {{out_pipe[0], *out_level, STDOUT_FILENO, {}}, {err_pipe[0], *err_level, STDERR_FILENO, {}}};
  const std::size_t max_text = 1024;
  const auto log_line = [&](const Stream& s, std::string_view line) {
    bool first = true;
    do {
      (*lg)->log_text(*facility, s.level, line.substr(0, max_text), !first);
      line.remove_prefix(std::min(line.size(), max_text));
      first = false;
    } while (!line.empty());
  };
  char buf[65536];
  const auto finish = [&](Stream& s) {
    // EOF: a last line without its newline is a record too.
    if (!s.partial.empty()) log_line(s, s.partial);
    s.partial.clear();
    s.open = false;
  };
  while (streams[0].open || streams[1].open) {
    pollfd fds[2];
    Stream* which[2];
    nfds_t n = 0;
    for (auto& s : streams) {
      if (!s.open) continue;
      which[n] = &s;
      fds[n++] = {s.fd, POLLIN, 0};
    }
    // Idle means every line read so far has been sent: the program's crash
    // record (console/run_shared.h) may then be numbered.
    const bool idle = (*lg)->pending() == 0;
    shared->runner_idle.store(idle ? 1 : 0, std::memory_order_release);
    if (::poll(fds, n, idle ? 100 : 1) <= 0) continue;
    shared->runner_idle.store(0, std::memory_order_release);  // lines in hand
    for (nfds_t i = 0; i < n; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      Stream& s = *which[i];
      const ssize_t got = ::read(s.fd, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        finish(s);
        continue;
      }
      if (echo) {
        for (ssize_t done = 0; done < got;) {
          const ssize_t w = ::write(s.echo_fd, buf + done, static_cast<std::size_t>(got - done));
          if (w <= 0) break;
          done += w;
        }
      }
      s.partial.append(buf, static_cast<std::size_t>(got));
      std::size_t start = 0;
      for (std::size_t nl; (nl = s.partial.find('\n', start)) != std::string::npos; start = nl + 1) {
        log_line(s, std::string_view(s.partial).substr(start, nl - start));
      }
      s.partial.erase(0, start);
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  int exit_code = 0;
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const std::string what = "netpoll run: " + command + " (pid " + std::to_string(pid) + ") killed by signal " +
                             std::to_string(sig) + " (" + signal_name(sig) + ")" +
                             (WCOREDUMP(status) ? ", core dumped" : "");
    (*lg)->log_text(*facility, console::Level::kCrit, what);
    std::fprintf(stderr, "%s\n", what.c_str());
    exit_code = 128 + sig;
  } else {
    exit_code = WEXITSTATUS(status);
    (*lg)->log_text(*facility, exit_code == 0 ? console::Level::kInfo : console::Level::kNotice,
                    "netpoll run: " + command + " (pid " + std::to_string(pid) + ") exited with status " +
                        std::to_string(exit_code));
  }
  const std::chrono::milliseconds linger_ms(static_cast<long>(linger * 1000));
  const bool reliable = args.has("reliable");
  const bool all_sent = reliable ? (*lg)->wait_acked(linger_ms) : (*lg)->flush(linger_ms);
  if (args.has("stats")) std::fprintf(stderr, "%s\n", (*lg)->stats_json().c_str());
  if (!all_sent)
    std::fprintf(stderr, "netpoll run: records still %s after %g s\n", reliable ? "unsent or unacknowledged" : "unsent",
                 linger);
  return exit_code;
}

}  // namespace np::tools
