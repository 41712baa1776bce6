// netpoll run TARGET -- COMMAND [ARGS...]: an unmodified program with its
// output forwarded as netconsole records and netpoll's crash path inside it.
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "client_options.h"
#include "commands.h"
#include "netpoll/command/key.h"
#include "netpoll/console/crash_report.h"
#include "netpoll/console/logger.h"
#include "netpoll/console/run_shared.h"
#include "netpoll/witness/output_merge.h"
#include "netpoll/witness/report.h"
#include "netpoll/witness/tracer.h"
#include "reliable_notice.h"

extern char** environ;

namespace np::tools {
namespace {

constexpr const char* kHelp =
    "usage: netpoll run TARGET[;TARGET...] [options] -- COMMAND [ARGS...]\n"
    "\n"
    "Runs COMMAND with each line of its standard output and standard error\n"
    "sent as a log record (stderr at a higher level). If COMMAND crashes, its\n"
    "last lines and a crash record (signal, fault address, thread, registers,\n"
    "backtrace) reach the targets, then it dies exactly as it would have.\n"
    "The crash is witnessed from outside: this runner traces COMMAND (and\n"
    "every process it forks) with ptrace, sees every signal that is about to\n"
    "kill it, whatever the program did to its memory, its descriptors or its\n"
    "signal handlers, stops every thread and unwinds each one with its\n"
    "call-frame and debug information (demangled names, source lines). Where\n"
    "tracing is refused, or with --no-trace, the crash path runs inside\n"
    "COMMAND instead, through the preloaded libnetpoll_preload.so (dynamically\n"
    "linked programs only). Each line written to the output is also passed\n"
    "through to this terminal. The exit status is COMMAND's; a COMMAND killed\n"
    "by signal N gives 128+N. Tracing costs COMMAND nothing until it takes a\n"
    "signal; each signal it takes then costs a round trip through this runner\n"
    "(tens of microseconds): a program that takes thousands a second may\n"
    "prefer --no-trace.\n"
    "Long lines are sent whole, as netpoll console sends them: a line of up to\n"
    "8190 bytes goes as one record (a record carries at most 8191 bytes of\n"
    "text, newline, userdata and sysdata, the most netconsd takes; a byte\n"
    "outside printable ASCII, or '\\', counts 4), a longer one as several\n"
    "records cut between UTF-8 characters, flagged 'c' then '+' in the\n"
    "extended header (\"continued\" in --stats).\n"
    "Standard output and standard error are two pipes, which keep no time:\n"
    "each stream's lines keep their order, and a line goes before every line\n"
    "of the other stream written after the runner took it in (it looks at both\n"
    "pipes together, and again as soon as it has taken in what it saw); lines\n"
    "of the two written at nearly the same moment may come in either order,\n"
    "standard output's first. Up to 1 MiB of each waits in the runner, in\n"
    "order, while the network (or --pace) is behind; then COMMAND waits on its\n"
    "writes, as on a slow terminal.\n"
    "With --dump HOST[:PORT], a crash also sends COMMAND's core (an ELF core\n"
    "that gdb opens with the program, every thread in it) to netpoll dumpd at\n"
    "HOST (port 20023 by default), after the last lines and the crash record,\n"
    "through netpoll's own path from the TARGET's device and address. The core\n"
    "is made inside COMMAND by the preloaded crash path, so --dump runs COMMAND\n"
    "untraced, as --no-trace does (the crash record is then the in-process\n"
    "one); --dump-deadline S bounds the whole dump (default 120).\n"
    "With --gdb[=PORT], a crashed COMMAND does not die at once: every thread\n"
    "stops and stock gdb can attach to it over UDP (port 6443 by default, on\n"
    "the TARGET's device and address), through netpoll's own path; the crash\n"
    "record ends with the command that does it,\n"
    "  gdb PROGRAM -ex 'target remote udp:IP:PORT'\n"
    "gdb's kill or detach, or --gdb-wait S without one (default 300), and\n"
    "COMMAND dies of its signal as it would have (with --dump, its core is\n"
    "sent first). The first address that sends gdb's protocol is served;\n"
    "others are ignored while it is. Like --dump, --gdb runs COMMAND\n"
    "untraced.\n"
    "With --commands KEYFILE, COMMAND takes authenticated remote commands\n"
    "(netpoll cmd --key KEYFILE IP COMMAND) on the first TARGET's local\n"
    "address and port, through netpoll's own receive path, answered by a\n"
    "thread of netpoll's (np-cmd) even while COMMAND's own threads are stuck:\n"
    "help, stacks (every thread's backtrace), memory, level N (the console\n"
    "level, for this runner's records too), stats, dump (with --dump), gdb\n"
    "(with --gdb: break in, serving only the address that asked), crash,\n"
    "terminate. KEYFILE comes from netpoll keygen and must be mode 0600. Each\n"
    "command and its reply are logged as records; requests that fail\n"
    "verification are dropped, counted and reported at most once a second.\n"
    "With --gdb too, the stub serves only an address a remote gdb (or crash)\n"
    "command came from. Like --dump, --commands runs COMMAND untraced.\n"
    "TARGET is netconsole's option string on a packet or xdp device (both\n"
    "this runner and COMMAND open the interface; with xdp:IF the runner takes\n"
    "AF_XDP and COMMAND packet:IF), e.g. +6665@/eth0,6666@10.0.0.2/\n"
    "\n"
    "options:\n"
    "  --stdout-level L     level of stdout lines (default info)\n"
    "  --stderr-level L     level of stderr lines (default err)\n"
    "  --facility F         (default user)\n"
    "  --userdata KEY=VALUE add \" KEY=VALUE\" to every extended record (repeatable)\n"
    "  --sysdata LIST       any of cpu,taskname,release,msgid\n"
    "  --no-echo            do not pass COMMAND's output through\n"
    "  --reliable           netconsd's reliable mode (ncrx) for the lines this\n"
    "                       runner sends, on every target (extended only): kept\n"
    "                       until the receiver (netpoll listen --ack, or one built\n"
    "                       on netconsd's ncrx library; not netconsd itself)\n"
    "                       acknowledges them, sent again when it reports them\n"
    "                       missing, resent marked ncemg=1 after 10 s without\n"
    "                       progress; a target that acknowledges nothing within 3 s\n"
    "                       of its first record is said so and sent to plainly. The\n"
    "                       crash records are sent once: best effort, never\n"
    "                       retransmitted\n"
    "  --no-trace           do not trace COMMAND (to attach a debugger to it, or\n"
    "                       for a program that traces itself); its crash is then\n"
    "                       reported from inside it\n"
    "  --commands KEYFILE   take remote commands (see above)\n"
    "  --preload PATH       the library (default: next to this netpoll binary, else\n"
    "                       where it is installed, LIBDIR/netpoll/)\n"
    "  --linger S           at exit, wait up to S seconds for records to go out\n"
    "                       (with --reliable: to be acknowledged) (default 2)\n";

// Beside this binary (the build tree), else where `cmake --install` and the
// Debian package put it, found from this binary's directory
// (NP_PRELOAD_FROM_BINDIR, e.g. ../lib/x86_64-linux-gnu/netpoll/...).
// The device the program's side opens for a target of ours: the same, but
// for an xdp: device, whose interface queue the runner's socket holds (one
// AF_XDP socket per queue): the program's crash path, its dump and its gdb
// stub take AF_PACKET on the same interface, which sees what netpoll's XDP
// program passes on.
std::string program_device(const std::string& device) {
  if (device.rfind("xdp:", 0) != 0) return device;
  const std::string ifname = device.substr(4, device.find('?') == std::string::npos ? std::string::npos
                                                                                     : device.find('?') - 4);
  return "packet:" + ifname;
}

std::string default_preload() {
  std::error_code ec;
  const auto dir = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  const auto beside = dir / "libnetpoll_preload.so";
  if (!std::filesystem::exists(beside, ec)) return (dir / NP_PRELOAD_FROM_BINDIR).lexically_normal().string();
  return beside.string();
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

// One output stream of the program: its level and where --echo copies it.
struct Stream {
  console::Level level;
  int echo_fd;
};

// The runner's side of the program's output and of its crash. The main
// thread reads the pipes (witness::OutputMerge: in the order the program
// wrote them, as far as two pipes tell it) and logs their lines; a line
// longer than a record takes becomes several records (Logger::log_text:
// continuation records, 'c' then '+'). The witness (the tracer's thread)
// asks it to take in everything already written before it sends a crash
// record.
class OutputPump {
 public:
  // Up to this much of each stream waits in the runner, its order known,
  // while the network is behind.
  static constexpr std::size_t kHold = 1 << 20;

  OutputPump(console::Logger& lg, console::Facility facility, std::array<int, 2> fds, std::array<Stream, 2> streams,
             bool echo, std::optional<console::Pace> pace)
      : lg_(lg), facility_(facility), merge_(fds, kHold), fds_(fds), streams_(streams), echo_(echo), pace_(pace) {
    wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (pace_) pacer_.emplace(*pace_);
  }
  ~OutputPump() { ::close(wake_); }

  // Once the program runs: our pages are our own again (the fork that
  // started it made them copy-on-write), and the ring and the pipes'
  // buffers are backed now, not one fault at a time under a burst.
  void back_memory() {
    lg_.back_memory();
    merge_.back_memory();
  }

  // Forwards output until both pipes are closed and every line is logged.
  // `idle` says, each time round, whether every line read so far has been
  // sent.
  void run(std::atomic<std::uint32_t>& idle_word) {
    while (merge_.any_open() || merge_.front()) {
      pollfd fds[3];
      nfds_t n = 0;
      fds[n++] = {wake_, POLLIN, 0};
      // While a stream's hold is full its pipe is not read, and the
      // program blocks on a full pipe, as on a slow terminal: nothing it
      // wrote is dropped.
      for (int i = 0; i < 2; ++i) {
        if (merge_.open(i) && merge_.has_room(i)) fds[n++] = {fds_[i], POLLIN, 0};
      }
      const bool idle = lg_.pending() == 0 && !merge_.front();
      idle_word.store(idle ? 1 : 0, std::memory_order_release);
      // Lines waiting for ring room: woken as soon as the sender has made
      // some (a quarter of the ring), then the pipes and a drain request
      // are looked at without waiting; the sender stuck (the network
      // behind), a millisecond at most between looks.
      int timeout_ms = idle ? 100 : 1;
      if (merge_.front() && free_records() == 0) {
        lg_.wait_for_room(1, std::chrono::milliseconds(1));
        timeout_ms = 0;
      }
      const int ready = ::poll(fds, n, timeout_ms);
      if (ready > 0) idle_word.store(0, std::memory_order_release);  // lines in hand
      if (ready > 0 && (fds[0].revents & POLLIN) != 0) serve_drain_request();
      look();
      log_lines();
    }
    serve_drain_request();  // a witness waiting while the pipes closed
  }

  // The witness, after drain_and_flush(): bytes the program had written
  // into its stdio buffer (0: stdout, 1: stderr), which never reached the
  // pipe. Echoed and logged as the pipe's bytes are; a last line without
  // its newline is a record too.
  void take_unflushed(int stream, std::string_view bytes) {
    echo(stream, bytes);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    std::size_t start = 0;
    for (std::size_t nl; start < bytes.size(); start = nl + 1) {
      nl = std::min(bytes.find('\n', start), bytes.size());
      std::size_t at = 0;
      log_from(stream, bytes.substr(start, nl - start), at, deadline);
    }
  }

  // The witness: blocks until every byte in the pipes now has been read
  // and every line of it sent (or `timeout` passes). True if so.
  bool drain_and_flush(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::uint64_t ticket;
    {
      std::lock_guard lock(mutex_);
      ticket = ++requested_;
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t w = ::write(wake_, &one, sizeof one);
    std::unique_lock lock(mutex_);
    if (!cv_.wait_until(lock, deadline, [&] { return served_ >= ticket; })) return false;
    lock.unlock();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return lg_.flush(std::max(left, std::chrono::milliseconds(0)));
  }

 private:
  std::size_t free_records() const {
    const std::uint64_t pending = lg_.pending();
    return pending >= lg_.ring_records() ? 0 : lg_.ring_records() - static_cast<std::size_t>(pending);
  }
  // Logs `line` from `at` on, a record at a time (a long line takes
  // several: Logger::log_piece), each when the ring has room for it: none
  // is dropped. Waits for room until `wait_until`, then returns false with
  // `at` where the line stops; past it, a record the ring has no room
  // for is dropped and counted (the witness cannot wait for ever).
  bool log_from(int stream, std::string_view line, std::size_t& at, std::chrono::steady_clock::time_point wait_until,
                bool drop_after = true) {
    do {
      while (free_records() == 0) {
        if (std::chrono::steady_clock::now() >= wait_until) {
          if (!drop_after) return false;
          break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      at = lg_.log_piece(facility_, streams_[stream].level, line, at);
    } while (at < line.size());
    return true;
  }

  void echo(int stream, std::string_view bytes) {
    if (!echo_) return;
    for (std::size_t done = 0; done < bytes.size();) {
      const ssize_t w = ::write(streams_[stream].echo_fd, bytes.data() + done, bytes.size() - done);
      if (w <= 0) break;
      done += static_cast<std::size_t>(w);
    }
  }

  std::size_t look() {
    return merge_.look([this](int stream, std::string_view bytes) { echo(stream, bytes); });
  }

  // Lines in order, as far as the ring has room now and --pace lets them
  // go (a line cut short goes on from piece_at_ next time).
  void log_lines() {
    for (auto line = merge_.front(); line; line = merge_.front()) {
      if (pacer_ && piece_at_ == 0 && pacer_->wait(std::chrono::steady_clock::now()).count() > 0) return;
      if (!log_from(line->stream, line->text, piece_at_, {}, false)) return;
      if (pacer_) pacer_->sent(std::chrono::steady_clock::now(), pace_->bytes ? line->text.size() + 1 : 1);
      piece_at_ = 0;
      merge_.pop();
    }
  }

  // Everything written so far, and a last line without its newline (the
  // program will write no more of it: it is dying), becomes records.
  void serve_drain_request() {
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t r = ::read(wake_, &count, sizeof count);
    std::uint64_t ticket;
    {
      std::lock_guard lock(mutex_);
      ticket = requested_;
    }
    if (ticket == served_) return;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    for (;;) {
      const std::size_t got = look();
      log_lines();
      if (got == 0 && !pipes_hold_bytes()) break;
      if (std::chrono::steady_clock::now() >= deadline) break;
      if (got == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));  // ring or hold full: let it drain
    }
    merge_.end_partial_lines();
    for (auto line = merge_.front(); line; line = merge_.front()) {
      log_from(line->stream, line->text, piece_at_, deadline);
      piece_at_ = 0;
      merge_.pop();
    }
    std::lock_guard lock(mutex_);
    served_ = ticket;
    cv_.notify_all();
  }

  bool pipes_hold_bytes() const {
    for (int i = 0; i < 2; ++i) {
      int unread = 0;
      if (merge_.open(i) && ::ioctl(fds_[i], FIONREAD, &unread) == 0 && unread > 0) return true;
    }
    return false;
  }

  console::Logger& lg_;
  console::Facility facility_;
  witness::OutputMerge merge_;
  std::array<int, 2> fds_;
  std::array<Stream, 2> streams_;
  bool echo_;
  int wake_ = -1;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t requested_ = 0;
  std::uint64_t served_ = 0;
  std::size_t piece_at_ = 0;  // how much of merge_.front() is logged
  std::optional<console::Pace> pace_;
  std::optional<console::Pacer> pacer_;  // --pace; the witness's last lines are not held back
};

std::vector<std::string> environment_with(const std::vector<std::pair<std::string, std::string>>& set) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view kv(*e);
    bool replaced = false;
    for (const auto& [k, v] : set) replaced = replaced || (kv.substr(0, kv.find('=')) == k);
    if (!replaced) env.emplace_back(kv);
  }
  for (const auto& [k, v] : set) env.push_back(k + "=" + v);
  return env;
}

std::string death_of(int sig, bool core) {
  const char* name = console::signal_name(sig);
  return "killed by signal " + std::to_string(sig) + " (" + (name != nullptr ? name : "signal") + ")" +
         (core ? ", core dumped" : "");
}

// --dump: what became of the core, for the exit record.
std::string dump_outcome(const console::RunShared& shared, const DumpServer& to) {
  const std::string where = to.ip.to_string() + ":" + std::to_string(to.port);
  const auto bytes = shared.dump_bytes.load(std::memory_order_relaxed);
  const auto ms = shared.dump_ms.load(std::memory_order_relaxed);
  switch (shared.dump_state.load(std::memory_order_acquire)) {
    case console::kDumpComplete:
      return "; core sent to " + where + " (" + std::to_string(bytes) + " bytes in " + std::to_string(ms) + " ms)";
    case console::kDumpFailed:
      return "; core not sent whole to " + where + ": " +
             to_string(static_cast<Errc>(shared.dump_error.load(std::memory_order_relaxed))) + " after " +
             std::to_string(bytes) + " bytes";
    case console::kDumpUnanswered:
      return "; core not sent: no dump server answered at " + where + " (" +
             to_string(static_cast<Errc>(shared.dump_error.load(std::memory_order_relaxed))) + ")";
    case console::kDumpSending:
      return "; core to " + where + " cut short (the crash path's deadline, or a fault while sending)";
    default:
      return "; no core sent to " + where + " (the crash path did not get that far)";
  }
}

}  // namespace

int cmd_run(int argc, char** argv) {
  ArgParser args;
  declare_client_options(args);
  args.option("stdout-level").option("stderr-level").option("facility").option("userdata").option("sysdata");
  args.option("preload").option("linger").option("pace").option("dump").option("dump-deadline");
  args.flag_with_value("gdb").option("gdb-wait").option("commands");
  args.flag("no-echo").flag("reliable").flag("no-trace").flag("help");
  declare_stream_options(args);
  args.parse(argc, argv, 2);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    std::fputs(kPaceOptionHelp, stdout);
    std::fputs(kStreamOptionsHelp, stdout);
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
  const std::optional<console::Pace> pace = pace_option(args);
  std::optional<DumpServer> dump;
  if (const auto d = args.get("dump")) dump = parse_dump_server(*d, "--dump");
  std::string dump_deadline = "120";
  if (const auto d = args.get("dump-deadline")) {
    char* end = nullptr;
    const double v = std::strtod(d->c_str(), &end);
    if (d->empty() || *end != '\0' || !(v > 0) || v > 86400)
      throw UsageError("--dump-deadline '" + *d + "': expected seconds, more than 0");
    if (!dump) throw UsageError("--dump-deadline needs --dump HOST[:PORT]");
    dump_deadline = *d;
  }
  std::optional<std::uint16_t> gdb_port;
  if (args.has("gdb")) {
    const std::string p = *args.get("gdb");
    gdb_port = 6443;
    if (!p.empty()) {
      char* end = nullptr;
      const unsigned long v = std::strtoul(p.c_str(), &end, 10);
      if (*end != '\0' || v == 0 || v > 65535) throw UsageError("--gdb=" + p + ": expected a port, 1 to 65535");
      gdb_port = static_cast<std::uint16_t>(v);
    }
  }
  std::string gdb_wait = "300";
  if (const auto w = args.get("gdb-wait")) {
    char* end = nullptr;
    const double v = std::strtod(w->c_str(), &end);
    if (w->empty() || *end != '\0' || !(v > 0) || v > 86400)
      throw UsageError("--gdb-wait '" + *w + "': expected seconds, more than 0");
    if (!gdb_port) throw UsageError("--gdb-wait needs --gdb");
    gdb_wait = *w;
  }
  std::string commands_keys;
  if (const auto k = args.get("commands")) {
    // Read here first: a key the program would refuse is said before it runs.
    auto ring = command::load_key_file(*k);
    if (!ring) throw UsageError("--commands: " + ring.error().message);
    std::error_code ec;
    commands_keys = std::filesystem::absolute(*k, ec).string();
  }
  // The core, the gdb stub and the command server work inside the
  // program, in the preloaded crash path.
  const bool want_trace = !args.has("no-trace") && !dump && !gdb_port && commands_keys.empty();

  // The debug information the witness names frames with, loaded from now
  // on while the runner sets up and the program runs: the program's file
  // and the libraries this runner maps too (libc, libstdc++, ...).
  witness::DebugInfoCache debug_info;
  if (want_trace) {
    if (const std::string exe = witness::resolve_program(args.after_dashes()[0]); !exe.empty()) debug_info.warm(exe);
    debug_info.warm_own_libraries();
  }

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
    if (!t.device.empty() && t.device.rfind("packet:", 0) != 0 && t.device.rfind("xdp:", 0) != 0 &&
        t.device.find(':') != std::string::npos && !MacAddr::parse(t.device)) {
      throw UsageError("target '" + t.text +
                       "': netpoll run needs a packet or xdp device (the program opens the interface too)");
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
  auto stream = open_stream_state(args, cfg);
  if (!stream) {
    std::fprintf(stderr, "netpoll run: %s\n", stream.error().message.c_str());
    return 1;
  }
  // The program maps the counters too: the descriptor must reach it.
  if (::fcntl(stream->fd(), F_SETFD, 0) != 0) {
    std::fprintf(stderr, "netpoll run: cannot pass the stream counters on: %s\n", std::strerror(errno));
    return 1;
  }
  if (args.has("reliable")) cfg.on_reliable_fallback = reliable_fallback_notice("run", cfg.targets);
  cfg.shared_console_level = &shared->console_level;  // a remote `level` in the program changes ours
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
                     "@" + t.local_ip.to_string() + "/" + program_device(t.device) + "," + std::to_string(t.remote_port) + "@" +
                     t.remote_ip.to_string() + "/" + (*lg)->target_client(i).remote_mac().to_string();
  }

  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "netpoll run: pipe: %s\n", std::strerror(errno));
    return 1;
  }
  const std::string command = args.after_dashes()[0];
  witness::SpawnSpec spec;
  spec.path = command;
  spec.argv = args.after_dashes();
  spec.stdout_fd = out_pipe[1];
  spec.stderr_fd = err_pipe[1];
  // Traced, the program runs as it is; untraced, the crash path is
  // preloaded into it.
  spec.env_traced = environment_with({});
  std::string preload_env = preload;
  const std::string asan = sanitizer_runtime();
  if (!asan.empty()) preload_env = asan + ":" + preload;
  if (const char* existing = std::getenv("LD_PRELOAD"); existing != nullptr && *existing != '\0')
    preload_env += std::string(":") + existing;
  std::vector<std::pair<std::string, std::string>> untraced_env = {
      {"LD_PRELOAD", preload_env},
      {console::kRunEnvShm, std::to_string(shm_fd)},
      {console::kRunEnvStream, std::to_string(stream->fd())},
      {console::kRunEnvTargets, child_targets},
      {console::kRunEnvFacility, facility_name},
  };
  if (!asan.empty()) {
    // The sanitizer runtime we preload must leave the program's fatal
    // signals to our crash path and the kernel, and its exit alone.
    untraced_env.emplace_back(
        "ASAN_OPTIONS", "handle_segv=0:handle_abort=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:detect_leaks=0");
  }
  if (dump) {
    // From the first target's device and address (resolved), netdump's
    // client port, to the server, whose MAC the runner resolves now (once,
    // with its messages here, not at the program's start).
    const auto& t = (*lg)->target_client(0).target();
    const std::string dump_target = "20024@" + t.local_ip.to_string() + "/" + program_device(t.device) + "," +
                                    std::to_string(dump->port) + "@" + dump->ip.to_string() + "/";
    core::ClientConfig probe;
    probe.name = "netpoll run --dump";
    probe.target = core::parse_targets(dump_target)->targets.at(0);
    probe.device = tuning.device;
    probe.device.service_thread = false;
    probe.resolve = tuning.resolve;
    probe.log = tuning.log;
    core::Registry own;  // the probe's own device: the logger's is busy
    auto server = core::Netpoll::setup(std::move(probe), own);
    if (!server) {
      std::fprintf(stderr, "netpoll run: --dump: %s\n", server.error().message.c_str());
      return 1;
    }
    untraced_env.emplace_back(console::kRunEnvDump, dump_target + (*server)->remote_mac().to_string());
    untraced_env.emplace_back(console::kRunEnvDumpDeadline, dump_deadline);
  }
  if (gdb_port) {
    // The stub listens on the first target's device and address.
    const auto& t = (*lg)->target_client(0).target();
    const std::string where = t.local_ip.to_string() + ":" + std::to_string(*gdb_port);
    std::string program = witness::resolve_program(command);
    if (program.empty()) program = command;
    untraced_env.emplace_back(console::kRunEnvGdb,
                              std::to_string(*gdb_port) + "@" + t.local_ip.to_string() + "/" + program_device(t.device));
    untraced_env.emplace_back(console::kRunEnvGdbWait, gdb_wait);
    untraced_env.emplace_back(console::kRunEnvGdbAttach, "stopped for gdb (" + gdb_wait + " s): gdb " + program +
                                                             " -ex 'target remote udp:" + where + "'");
  }
  if (!commands_keys.empty()) untraced_env.emplace_back(console::kRunEnvCommands, commands_keys);
  untraced_env.emplace_back(console::kRunEnvRunner, std::to_string(::getpid()));
  if (!sysdata_list.empty()) untraced_env.emplace_back(console::kRunEnvSysdata, sysdata_list);
  if (!userdata_env.empty()) untraced_env.emplace_back(console::kRunEnvUserdata, userdata_env);
  spec.env_untraced = environment_with(untraced_env);

  OutputPump pump(**lg, *facility, {out_pipe[0], err_pipe[0]},
                  {Stream{*out_level, STDOUT_FILENO}, Stream{*err_level, STDERR_FILENO}}, echo, pace);

  // The processes whose crash the witness reported (the program, and any
  // process it forked).
  std::mutex witnessed_mutex;
  std::vector<pid_t> witnessed;
  witness::TracerHooks hooks;
  hooks.on_exec = [&](pid_t pid) {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
    if (!ec) debug_info.warm(exe.string());
  };
  hooks.on_crash = [&](const witness::CrashStop& stop) {
    // Unwinding takes a while (debug files are read); meanwhile the pump
    // takes in the program's last lines, which go out first.
    const std::vector<std::string> records = witness::crash_records(stop, {}, &debug_info);
    pump.drain_and_flush(std::chrono::seconds(1));
    // Then what the program wrote but its C library still held: written
    // before the fault, so before the crash record too.
    for (const int fd : {1, 2}) {
      if (const std::string held = witness::unflushed_output(stop.pid, fd); !held.empty())
        pump.take_unflushed(fd == 1 ? 0 : 1, held);
    }
    (*lg)->flush(std::chrono::seconds(1));
    for (std::size_t i = 0; i < records.size(); ++i) {
      (*lg)->send_now(*facility, i == 0 ? console::Level::kEmerg : console::Level::kCrit, records[i]);
    }
    {
      std::lock_guard lock(witnessed_mutex);
      witnessed.push_back(stop.pid);
    }
    if (echo) std::fprintf(stderr, "netpoll run: %s", records[0].c_str());
  };
  const std::string resolved = witness::resolve_program(command);
  auto tracer = witness::Tracer::spawn(spec, want_trace, std::move(hooks));
  if (!tracer) {
    std::fprintf(stderr, "netpoll run: %s\n", tracer.error().message.c_str());
    return 1;
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  const witness::Spawned& spawned = (*tracer)->spawned();
  if (spawned.exec_error != 0) {
    std::fprintf(stderr, "netpoll run: cannot run %s: %s\n", command.c_str(), std::strerror(spawned.exec_error));
  } else if (!spawned.traced) {
    if (want_trace)
      std::fprintf(stderr, "netpoll run: cannot trace %s (%s): its crash is reported from inside it\n",
                   command.c_str(), spawned.why_not.c_str());
    if (!resolved.empty() && witness::is_dynamic_elf(resolved) == false)
      std::fprintf(stderr,
                   "netpoll run: %s is statically linked: the crash path cannot be preloaded into it; without "
                   "tracing a crash is reported only by the exit record\n",
                   command.c_str());
  }
  // Our own terminal signals go to the program; we follow it out.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGQUIT, SIG_IGN);

  pump.back_memory();
  pump.run(shared->runner_idle);
  const int status = (*tracer)->wait();
  const std::chrono::milliseconds linger_ms(static_cast<long>(linger * 1000));
  const auto linger_end = std::chrono::steady_clock::now() + linger_ms;
  // The exit record comes after every line, into a ring the pump may have
  // just filled: it waits for room (within the linger) rather than being
  // dropped, as the lines before it were not.
  const auto log_exit = [&](console::Level level, const std::string& text) {
    static_cast<void>((*lg)->wait_for_room(1, linger_ms));
    (*lg)->log_text(*facility, level, text);
  };
  int exit_code = 0;
  const std::string who = "netpoll run: " + command + " (pid " + std::to_string(spawned.pid) + ")";
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    std::string what = who + " " + death_of(sig, WCOREDUMP(status));
    // Honest gaps: a death nobody reported says so, and why.
    bool reported = shared->crash_reports.load(std::memory_order_relaxed) > 0;
    {
      std::lock_guard lock(witnessed_mutex);
      reported = reported || std::find(witnessed.begin(), witnessed.end(), spawned.pid) != witnessed.end();
    }
    if (!reported) {
      if (sig == SIGKILL) {
        what += "; no crash record: SIGKILL ends a process before anything can look at it";
      } else if (spawned.traced) {
        what += "; no crash record: the signal was not seen being delivered";
      } else {
        what += "; no crash record: the crash path inside the program did not run (statically linked, the signal "
                "not one it handles, or its handler replaced)";
      }
    }
    if (dump) what += dump_outcome(*shared, *dump);
    log_exit(console::Level::kCrit, what);
    std::fprintf(stderr, "%s\n", what.c_str());
    exit_code = 128 + sig;
  } else {
    exit_code = WEXITSTATUS(status);
    log_exit(exit_code == 0 ? console::Level::kInfo : console::Level::kNotice,
             who + " exited with status " + std::to_string(exit_code));
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::max(linger_end - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration::zero()));
  const bool reliable = args.has("reliable");
  const bool all_sent = reliable ? (*lg)->wait_acked(left) : (*lg)->flush(left);
  // Records held for a target's first answer that never came go out once.
  if (reliable && !all_sent) static_cast<void>((*lg)->fall_back_unanswered(std::chrono::seconds(1)));
  if (args.has("stats")) std::fprintf(stderr, "%s\n", (*lg)->stats_json().c_str());
  if (!all_sent)
    std::fprintf(stderr, "netpoll run: records still %s after %g s\n", reliable ? "unsent or unacknowledged" : "unsent",
                 linger);
  return exit_code;
}

}  // namespace np::tools
