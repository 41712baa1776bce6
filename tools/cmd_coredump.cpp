// netpoll coredump: the kernel's core_pattern pipe helper. The kernel runs
// it for every process that dumps core, the core on its standard input; it
// ships the core over netpoll's UDP path (the debugnet stream, a device of
// its own) to `netpoll dumpd`, and says how that went in one line to the
// kernel log and to standard error (it has no terminal).
//
// The core is read front to back in big reads, once: the ELF header, the
// program headers and the notes (a bounded head, dump/core_head.h) give
// the herald its size and thread count; then every 4 KiB block at a
// 4 KiB-aligned file offset is sent unless it is all zeros (the kernel
// writes the pages it skips as zeros into a pipe; the server's file is
// sparse there). Whatever arrives is sent as it is, a garbled or cut core
// too: the server keeps what came, and FINISHED says partial when the
// input ended before the headers' length.
#include <fcntl.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli.h"
#include "client_options.h"
#include "commands.h"
#include "netpoll/base/clock.h"
#include "netpoll/base/human.h"
#include "netpoll/debugnet/stream.h"
#include "netpoll/dump/core_head.h"
#include "netpoll/dumpd/herald.h"
#include "netpoll/wire/debugnet.h"

namespace np::tools {
namespace {

constexpr const char* kHelp =
    "usage: netpoll coredump --to HOST[:PORT] [options] PID SIGNAL COMM\n"
    "\n"
    "The kernel's core dump helper for the whole host: installed as the pipe\n"
    "program of kernel.core_pattern, it reads the core of each crashing process\n"
    "from standard input and sends it through netpoll's own UDP path (FreeBSD\n"
    "debugnet's protocol) to netpoll dumpd at HOST (port 20023 unless given),\n"
    "which writes it to DIR/<this host's address>/<time>-<PID>-<COMM>.core with\n"
    "a .json beside it (kind kernel, program, pid, signal, threads, size).\n"
    "\n"
    "  echo '|/usr/bin/netpoll coredump --to 10.0.0.2 %P %s %e' \\\n"
    "      > /proc/sys/kernel/core_pattern\n"
    "\n"
    "PID SIGNAL COMM are the kernel's %P %s %e (the pid in the initial pid\n"
    "namespace, the signal's number, the thread's name); everything from PID on\n"
    "is taken as these three, words after COMM as part of COMM (kernels before\n"
    "5.3 split a name with spaces), so put the options first.\n"
    "\n"
    "  --to HOST[:PORT]   the dump server (an IPv4 address)\n"
    "  --device DEV       the interface or netpoll device to send on (default:\n"
    "                     the interface the kernel routes HOST through); its\n"
    "                     first IPv4 address is the source\n"
    "  --local-port N     the source port (default 20024, netdump's)\n"
    "  --netns NAME       enter the network namespace /var/run/netns/NAME first\n"
    "  --timeout S        the whole transfer, herald to finish (default 300)\n"
    "  --quiet            nothing on standard error unless it fails\n"
    "\n"
    "Every core ends in one line in the kernel log (/dev/kmsg, 'netpoll\n"
    "coredump: ...') and on standard error: on success the bytes, seconds and\n"
    "retransmits; on failure why (no answer from the server, the timeout, a cut\n"
    "input). Exit status 0 when the server acknowledged the whole core, 1 when\n"
    "not, 2 for bad arguments.\n"
    "\n"
    "What the kernel does (core(5)): a pipe helper runs as root in the initial\n"
    "namespaces (network, mount, pid) whatever the crashing process's were, so\n"
    "--netns is how it sends from a namespace of its own (containers, tests).\n"
    "RLIMIT_CORE is not applied to a pipe, except that a limit of 1 means no\n"
    "core; /proc/sys/kernel/core_pipe_limit bounds how many cores are piped at\n"
    "once (0: no bound, and the kernel does not wait for the helper). The\n"
    "crashing process is not gone until its core is read: --timeout bounds it.\n"
    "Open a received core with its program: gdb PROGRAM CORE.\n";

constexpr std::size_t kBlock = 4096;             // the unit of zero skipping (a page)
constexpr std::size_t kChunk = std::size_t{1} << 20;  // one fill of the buffer after the head
// The most read before the herald goes: the headers and notes of a process
// with thousands of threads or mappings fit; past it, threads go unsaid.
constexpr std::size_t kHeadMax = std::size_t{8} << 20;

// Options that take a value (the rest are flags); the first word that is
// not an option is PID.
constexpr const char* kValueOptions[] = {"to", "device", "local-port", "netns", "timeout"};

// A helper the kernel starts has no standard output or error: a file
// opened later would get descriptor 1 or 2 and receive our messages.
void keep_standard_descriptors() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0) continue;
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0 && null != fd) {
      ::dup2(null, fd);
      ::close(null);
    }
  }
}

// Says a line to the kernel log (as facility user, `level`) and to
// standard error.
class Voice {
 public:
  void set_quiet(bool q) { quiet_ = q; }
  void success(const std::string& line) { say(6, line, !quiet_); }  // LOG_INFO
  void warning(const std::string& line) { say(4, line, true); }     // LOG_WARNING
  void failure(const std::string& line) { say(3, line, true); }     // LOG_ERR
  // The kernel log only (main() prints usage errors to standard error).
  void failure_to_log(const std::string& line) { say(3, line, false); }

 private:
  static void say(int level, const std::string& line, bool to_stderr) {
    // One write is one record; the kernel takes about 1000 bytes of it.
    std::string record = "<" + std::to_string(level) + ">netpoll coredump: " + line.substr(0, 900) + "\n";
    const int fd = ::open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      [[maybe_unused]] const ssize_t n = ::write(fd, record.data(), record.size());
      ::close(fd);
    }
    if (to_stderr) std::fprintf(stderr, "netpoll coredump: %s\n", line.c_str());
  }
  bool quiet_ = false;
};

// Standard input, read to its end once.
class Input {
 public:
  // Reads into `out` until it is full, the input ends or fails; the bytes
  // read.
  std::size_t fill(std::span<std::byte> out) {
    std::size_t got = 0;
    while (got < out.size() && !ended_) {
      const ssize_t n = ::read(STDIN_FILENO, out.data() + got, out.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ended_ = true;
        if (n < 0) error_ = errno;
        break;
      }
      got += static_cast<std::size_t>(n);
    }
    total_ += got;
    return got;
  }
  bool ended() const { return ended_; }
  int error() const { return error_; }  // errno of a failed read; 0: none
  std::uint64_t total() const { return total_; }

 private:
  bool ended_ = false;
  int error_ = 0;
  std::uint64_t total_ = 0;
};

bool all_zero(std::span<const std::byte> b) {
  std::size_t i = 0;
  for (; i + 8 <= b.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, b.data() + i, 8);
    if (w != 0) return false;
  }
  for (; i < b.size(); ++i) {
    if (b[i] != std::byte{0}) return false;
  }
  return true;
}

std::string seconds_text(std::int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", static_cast<double>(ns) / 1e9);
  return buf;
}

// Printable ASCII for the herald and the log: every other byte as '?'.
std::string printable_name(std::string_view s, std::size_t max) {
  std::string out(s.substr(0, max));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

// A whole decimal number from `min` to `max`, or a usage error naming it.
std::uint32_t kernel_number(const std::string& text, const char* what, std::uint32_t min, std::uint32_t max) {
  std::uint64_t v = 0;
  bool ok = !text.empty() && text.size() <= 10;
  for (const char c : text) {
    if (c < '0' || c > '9') ok = false;
    if (ok) v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (!ok || v < min || v > max)
    throw UsageError(std::string(what) + " '" + text + "': expected a whole number from " + std::to_string(min) +
                     " to " + std::to_string(max) + " (the kernel's " + (what[0] == 'P' ? "%P" : "%s") + ")");
  return static_cast<std::uint32_t>(v);
}

struct Options {
  bool help = false;
  DumpServer server;
  std::string device;
  std::uint16_t local_port = wire::debugnet::kClientPort;
  std::string netns;
  std::chrono::nanoseconds timeout{std::chrono::seconds(300)};
  bool quiet = false;
  std::uint32_t pid = 0;
  std::uint32_t signal = 0;
  std::string comm;
};

Options parse_options(int argc, char** argv) {
  // The options end at the first word that is not one: PID SIGNAL COMM
  // follow, and COMM may begin with "--" (a program may be named so).
  int first_word = 2;
  while (first_word < argc) {
    const std::string_view a = argv[first_word];
    if (a == "--") break;
    if (a.size() <= 2 || !a.starts_with("--")) break;
    const std::string_view name = a.substr(2, a.find('=') == std::string_view::npos ? std::string_view::npos
                                                                                      : a.find('=') - 2);
    const bool takes_value =
        std::find(std::begin(kValueOptions), std::end(kValueOptions), name) != std::end(kValueOptions);
    first_word += takes_value && a.find('=') == std::string_view::npos ? 2 : 1;
  }
  ArgParser args;
  for (const char* o : kValueOptions) args.option(o);
  args.flag("quiet").flag("help");
  args.parse(std::min(first_word, argc), argv, 2);
  Options o;
  if (args.has("help")) {
    o.help = true;
    return o;
  }
  std::vector<std::string> words(argv + std::min(first_word, argc), argv + argc);
  if (!words.empty() && words.front() == "--") words.erase(words.begin());
  const auto to = args.get("to");
  if (!to) throw UsageError("--to HOST[:PORT] is required (the dump server)");
  o.server = parse_dump_server(*to, "--to");
  if (const auto d = args.get("device")) {
    if (d->empty()) throw UsageError("--device '': expected an interface or a netpoll device");
    o.device = *d;
  }
  o.local_port = static_cast<std::uint16_t>(args.get_uint("local-port", o.local_port, 1, 65535));
  if (const auto ns = args.get("netns")) {
    if (ns->empty() || ns->find('/') != std::string::npos || *ns == "." || *ns == "..")
      throw UsageError("--netns '" + *ns + "': expected a name in /var/run/netns");
    o.netns = *ns;
  }
  if (const auto t = args.get("timeout")) {
    char* end = nullptr;
    const double s = std::strtod(t->c_str(), &end);
    if (t->empty() || *end != '\0' || !(s > 0) || s > 86400)
      throw UsageError("--timeout '" + *t + "': expected seconds, more than 0 and at most 86400");
    o.timeout = std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
  }
  o.quiet = args.has("quiet");
  if (words.size() < 3)
    throw UsageError("expected PID SIGNAL COMM (the kernel's %P %s %e) after the options, got " +
                     std::to_string(words.size()) + " word" + (words.size() == 1 ? "" : "s"));
  o.pid = kernel_number(words[0], "PID", 1, 0x7fffffff);
  o.signal = kernel_number(words[1], "SIGNAL", 1, 127);
  o.comm = words[2];
  for (std::size_t i = 3; i < words.size(); ++i) o.comm += " " + words[i];
  return o;
}

// Enters /var/run/netns/NAME; an empty string or the reason it failed.
std::string enter_netns(const std::string& name) {
  const std::string path = "/var/run/netns/" + name;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "cannot open " + path + ": " + std::strerror(errno);
  const int r = ::setns(fd, CLONE_NEWNET);
  const int err = errno;
  ::close(fd);
  if (r != 0) return "cannot enter the network namespace " + name + ": " + std::strerror(err);
  return "";
}

std::string host_name() {
  utsname u{};
  if (::uname(&u) != 0) return "";
  return printable_name(u.nodename, dumpd::kMaxName);
}

}  // namespace

int cmd_coredump(int argc, char** argv) {
  keep_standard_descriptors();
  Voice voice;
  Options o;
  try {
    o = parse_options(argc, argv);
  } catch (const UsageError& e) {
    // As a helper nobody sees standard error: the kernel log says it too.
    voice.failure_to_log(std::string("bad arguments, no core sent: ") + e.what());
    throw;
  }
  if (o.help) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  voice.set_quiet(o.quiet);
  const std::string program = printable_name(o.comm, dumpd::kMaxName);
  const std::string who = program + " pid " + std::to_string(o.pid) + " signal " + std::to_string(o.signal);
  const std::string server = o.server.ip.to_string() + ":" + std::to_string(o.server.port);
  const std::int64_t start = monotonic_ns();
  const std::int64_t deadline = start + o.timeout.count();

  if (!o.netns.empty()) {
    if (const std::string err = enter_netns(o.netns); !err.empty()) {
      voice.failure(who + ": core not sent: " + err);
      return 1;
    }
  }
  // A bigger pipe: fewer, bigger reads (not a pipe, or not allowed: as is).
  (void)::fcntl(STDIN_FILENO, F_SETPIPE_SZ, static_cast<int>(kChunk));

  // The head: the ELF header, the program headers and the notes, as far
  // as they go within kHeadMax.
  std::vector<std::byte> buf(kHeadMax);
  Input in;
  std::size_t have = in.fill(std::span(buf).first(kChunk));
  Result<dump::CoreHead> head = fail(Errc::kTruncated);
  for (;;) {
    head = dump::parse_core_head(std::span(buf).first(have));
    if (!head || in.ended()) break;
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(head->needed, kHeadMax));
    if (have >= want) break;
    have += in.fill(std::span(buf).subspan(have, want - have));
  }
  if (have == 0) {
    voice.failure(who + ": no core on standard input" +
                  (in.error() != 0 ? std::string(" (") + std::strerror(in.error()) + ")" : std::string()) +
                  ", nothing sent");
    return 1;
  }
  // What the head said (nothing when it is not a core).
  dump::CoreHead facts;
  std::string not_a_core;
  if (head) {
    facts = *head;
  } else {
    not_a_core = head.error() == Errc::kTruncated ? "shorter than an ELF header"
                                                  : std::string("not an ELF core (") + to_string(head.error()) + ")";
  }
  const bool size_known = facts.size_known;
  const bool threads_known = facts.notes == dump::NoteState::kComplete;

  std::string herald = "kind=kernel\nprogram=" + program + "\npid=" + std::to_string(o.pid) +
                       "\nsignal=" + std::to_string(o.signal) + "\n";
  if (threads_known) herald += "threads=" + std::to_string(facts.threads) + "\n";
  if (size_known) herald += "size=" + std::to_string(facts.file_size) + "\n";
  if (const std::string host = host_name(); !host.empty()) herald += "host=" + host + "\n";

  debugnet::StreamConfig cfg;
  cfg.client.name = "netpoll coredump";
  cfg.client.target.local_port = o.local_port;
  cfg.client.target.device = o.device;
  cfg.client.target.remote_ip = o.server.ip;
  cfg.client.target.remote_port = o.server.port;
  auto stream = debugnet::Stream::setup(std::move(cfg));
  if (!stream) {
    voice.failure(who + ": core not sent to " + server + ": " + stream.error().message);
    return 1;
  }
  debugnet::Stream& s = **stream;
  const auto herald_bytes = std::as_bytes(std::span(herald.data(), herald.size()));
  if (auto opened = s.open(herald_bytes, deadline); !opened) {
    const std::string why = monotonic_ns() >= deadline
                                ? "the --timeout ran out before the server answered"
                                : "no answer from the server (herald sent " +
                                      std::to_string(s.stats().retransmits.value() + 1) + " times in " +
                                      seconds_text(monotonic_ns() - start) + ")";
    voice.failure(who + ": core not sent to " + server + " (" + s.describe() + "): " + why);
    return 1;
  }

  // Everything, in order: whole blocks while more may come, the rest at
  // the end; runs of blocks that are not all zeros go out as one write.
  std::uint64_t offset = 0, zero_blocks = 0;
  Result<void> sent;
  for (;;) {
    const std::size_t ready = in.ended() ? have : have / kBlock * kBlock;
    const auto part = std::span<const std::byte>(buf).first(ready);
    std::size_t run = 0, at = 0;
    for (; sent && at < part.size(); at += kBlock) {
      const auto block = part.subspan(at, std::min(kBlock, part.size() - at));
      if (!all_zero(block)) continue;
      ++zero_blocks;
      if (at > run) sent = s.write(offset + run, part.subspan(run, at - run), deadline);
      run = at + block.size();
    }
    if (sent && part.size() > run) sent = s.write(offset + run, part.subspan(run), deadline);
    if (!sent) break;
    std::memmove(buf.data(), buf.data() + ready, have - ready);
    have -= ready;
    offset += ready;
    if (in.ended()) break;
    have += in.fill(std::span(buf).subspan(have, kChunk));
  }
  const std::uint64_t read = in.total();
  const std::uint64_t size = std::max<std::uint64_t>(read, size_known ? facts.file_size : 0);
  const bool cut = in.error() != 0 || (size_known && read < facts.file_size);
  Result<void> finished = sent ? s.finish(size, cut, deadline) : fail(Errc::kTimeout);
  if (!sent) s.abandon();
  const auto& st = s.stats();
  const std::uint64_t resent = st.retransmits.value() + st.fast_resends.value();
  const std::string took = seconds_text(monotonic_ns() - start);
  if (!sent || !finished) {
    const std::string why = monotonic_ns() >= deadline
                                ? "the --timeout ran out"
                                : "the server stopped acknowledging (a packet sent " +
                                      std::to_string(debugnet::StreamConfig{}.tries) + " times)";
    voice.failure(who + ": core cut short: " + why + " after " + human_bytes(st.data_bytes.value()) + " sent of " +
                  human_bytes(read) + " read, in " + took + ", " + count_text(resent, "retransmit") + ", to " +
                  server);
    return 1;
  }
  std::string what = human_bytes(size) + " core";
  if (threads_known) what += " (" + count_text(facts.threads, "thread") + ")";
  const std::string line = who + ": " + what + " sent to " + s.describe() + " in " + took + ", " +
                           human_bytes(st.data_bytes.value()) + " in " + count_text(st.packets.value(), "packet") +
                           " (" + count_text(zero_blocks, "zero block") + " skipped), " +
                           count_text(resent, "retransmit");
  if (cut) {
    voice.failure(line + "; the server keeps it as partial: " +
                  (in.error() != 0 ? std::string("reading it failed: ") + std::strerror(in.error())
                                   : "it ended at " + human_bytes(read) + " of " + human_bytes(facts.file_size)));
    return 1;
  }
  if (!not_a_core.empty()) {
    // Sent whole, as it came: what to make of it is for whoever reads it.
    voice.warning(line + "; sent as it came: " + not_a_core);
    return 0;
  }
  voice.success(line);
  return 0;
}

}  // namespace np::tools
