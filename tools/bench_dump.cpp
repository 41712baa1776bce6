// netpoll bench dump: a whole netdump, client and server, over a veth pair,
// next to the raw send path and a kernel TCP stream moving as many bytes
// over the same veth.
//
//   dump  a process of its own (this binary, --child) holds --mib MiB of
//         non-zero memory and makes a Dumper::dump_live() of itself to a
//         `netpoll dumpd` in the peer namespace, which writes the core to
//         --dir. Timed in the dumping process, from dump_live()'s call
//         (the threads stopped, the mappings read) to its return (FINISHED
//         acknowledged, which dumpd does after the file's fsync).
//   dump-1 the same with StreamConfig::segment_offload off: every packet
//         a transmission of its own.
//   raw   netpoll's send path in this process (a Netpoll on the same
//         device, as `netpoll bench send` drives it): --mib MiB in
//         datagrams of the largest payload, 64 per kick.
//   tcp   a kernel TCP connection from a to a socket in b that reads and
//         discards: --mib MiB, from connect() to the receiver's last byte.
//
// Runs alternate the order of the three; the table has medians.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/tcp.h>  // tcp_info with tcpi_segs_out (glibc's lacks it)
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_net.h"
#include "cli.h"
#include "commands.h"
#include "netpoll/base/clock.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/netdump/dumper.h"

namespace np::tools {
namespace {

constexpr const char* kHelp =
    "usage: netpoll bench dump [--mib N] [--runs R] [--dir DIR] [--peer drop|socket]\n"
    "\n"
    "A netdump end to end over a veth pair between two network namespaces it\n"
    "creates (and removes, also after a failure or ctrl-C), next to the raw\n"
    "send path and a kernel TCP stream over the same veth, moving as many bytes:\n"
    "  dump  a process started for each run holds N MiB of non-zero memory and\n"
    "        dumps itself (Dumper::dump_live(), AF_PACKET on the veth) to a\n"
    "        `netpoll dumpd` in the peer namespace writing to DIR; timed in the\n"
    "        dumping process from the call to the acknowledged FINISHED (dumpd\n"
    "        acknowledges it after the file's fsync). Its bytes are the core's\n"
    "        that travel: the N MiB and the process's own memory. Full packets\n"
    "        in a row go out as segmented transmissions (UDP GSO), which dumpd\n"
    "        takes whole (UDP_GRO)\n"
    "  dump-1 the same, every packet sent on its own (segment_offload off)\n"
    "  raw   netpoll's send path (bench send's: a Netpoll on the same device,\n"
    "        64 datagrams per kick) sending N MiB in datagrams of the largest\n"
    "        payload the MTU allows\n"
    "  tcp   a kernel TCP connection sending N MiB to a socket in the peer\n"
    "        namespace that reads and discards them\n"
    "Each run takes the four in another order; the table has the median of\n"
    "the runs (and their least and greatest MB/s): MB/s (10^6 bytes), packets\n"
    "per second (dump: DATA packets, first sends; raw: datagrams; tcp:\n"
    "segments of the MSS), retransmits (dump: after the ack timeout / after a\n"
    "later packet's ack; tcp: the connection's), and each against raw. Target:\n"
    "the dump at 0.5x raw or more. Also the CPU time the dumping process and\n"
    "dumpd took while each kind of dump ran, against its time (both ends poll\n"
    "a while before they sleep, so waiting shows as CPU too).\n"
    "Needs root (namespaces, AF_PACKET).\n"
    "\n"
    "  --mib N          MiB of non-zero memory in the dumping process (default 256)\n"
    "  --runs R         runs of each method (default 5)\n"
    "  --dir DIR        where dumpd writes (default: the temporary directory; the\n"
    "                   cores are removed after each run)\n"
    "  --peer drop      raw: the peer drops its datagrams at ingress (nftables),\n"
    "                   as bench send does by default (default)\n"
    "  --peer socket    raw: the peer's UDP socket takes them\n";

constexpr std::uint16_t kRawPort = 6666;
constexpr std::uint16_t kTcpPort = 5001;
// Bounds: a dumping process has this long to be ready, a dump to end.
constexpr std::chrono::seconds kReadyLimit{30};
constexpr std::chrono::seconds kDumpDeadline{60};
constexpr std::chrono::seconds kMethodLimit{90};

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// CPU time of this process so far (user and system), seconds.
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU time of every thread of process `pid` so far (the scheduler's
// count, /proc/PID/task/*/schedstat), seconds.
double cpu_seconds_of(pid_t pid) {
  double total = 0;
  std::error_code ec;
  for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    FILE* f = std::fopen((t.path() / "schedstat").c_str(), "r");
    if (f == nullptr) continue;
    unsigned long long ns = 0;
    if (std::fscanf(f, "%llu", &ns) == 1) total += static_cast<double>(ns) / 1e9;
    std::fclose(f);
  }
  return total;
}

// --- the dumping process --------------------------------------------------

// `netpoll bench dump --child TARGET --mib N [--one-by-one]`: fills N MiB, sets up a
// Dumper to TARGET, prints "ready", dumps itself when a line arrives on
// stdin and prints the outcome:
//   ok|failed BYTES_SENT CORE_SIZE SECONDS PACKETS RETRANSMITS FAST_RESENDS CPU_SECONDS
int dump_child(const std::string& target, std::size_t mib, bool one_by_one) {
  const std::size_t len = mib << 20;
  auto* mem = static_cast<std::uint64_t*>(
      ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (mem == MAP_FAILED) return 1;
  // Not zero anywhere (an odd multiplier of i + 1 never makes 0 mod 2^64),
  // so that every page travels.
  for (std::size_t i = 0; i < len / 8; ++i) mem[i] = (i + 1) * 0x9e3779b97f4a7c15ull;
  auto parsed = core::parse_targets(target);
  if (!parsed || parsed->targets.size() != 1) {
    std::fprintf(stderr, "bench dump child: bad target %s\n", target.c_str());
    return 1;
  }
  netdump::DumperConfig cfg;
  cfg.stream.client.name = "bench dump";
  cfg.stream.client.target = parsed->targets[0];
  cfg.stream.segment_offload = !one_by_one;
  cfg.deadline = kDumpDeadline;
  auto dumper = netdump::Dumper::setup(std::move(cfg));
  if (!dumper) {
    std::fprintf(stderr, "bench dump child: %s\n", dumper.error().message.c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  char line[16];
  if (std::fgets(line, sizeof line, stdin) == nullptr) return 0;
  const auto& st = (*dumper)->stream().stats();
  const double cpu0 = cpu_seconds();
  const auto t0 = Clock::now();
  const netdump::DumpOutcome out = (*dumper)->dump_live();
  const double seconds = since(t0);
  const double cpu = cpu_seconds() - cpu0;
  std::printf("%s %llu %llu %.6f %llu %llu %llu %.6f\n", out.complete ? "ok" : "failed",
              static_cast<unsigned long long>(out.core.bytes_sent), static_cast<unsigned long long>(out.core.size),
              seconds, static_cast<unsigned long long>(st.packets.value()),
              static_cast<unsigned long long>(st.retransmits.value()),
              static_cast<unsigned long long>(st.fast_resends.value()), cpu);
  std::fflush(stdout);
  // Read by the mapping's last byte: the memory is the point of the process.
  return mem[len / 8 - 1] == 0 ? 1 : 0;
}

// --- processes in a namespace ----------------------------------------------

// This program started again in namespace `ns` with its stdin and stdout
// on pipes (stderr too with `with_stderr`, else shared with ours); killed
// (SIGKILL) if this process dies first, and by the destructor if still
// running.
class Child {
 public:
  Child(const std::string& ns, std::vector<std::string> args, bool with_stderr = false) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0) return;
    if (::pipe2(out, O_CLOEXEC) != 0) {
      ::close(in[0]);
      ::close(in[1]);
      return;
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string ns_path = "/var/run/netns/" + ns;
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int fd = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) ::_exit(127);
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      if (with_stderr) ::dup2(out[1], 2);
      ::execv("/proc/self/exe", argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    if (pid_ < 0) {
      ::close(in[1]);
      ::close(out[0]);
      return;
    }
    to_ = in[1];
    from_ = out[0];
  }
  ~Child() {
    if (to_ >= 0) ::close(to_);
    if (from_ >= 0) ::close(from_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool ok() const { return pid_ > 0 && from_ >= 0; }
  bool say(std::string_view line) const {
    return ::write(to_, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  }
  // The next line of its stdout (without the newline); nothing at its end,
  // at `limit`, or once a stop was requested.
  std::optional<std::string> line(std::chrono::milliseconds limit) {
    const auto until = Clock::now() + limit;
    for (int rounds = 0; rounds < 1'000'000; ++rounds) {
      if (const auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0 || stop_requested()) return std::nullopt;
      pollfd p{from_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100))) <= 0) continue;
      char b[512];
      const ssize_t n = ::read(from_, b, sizeof b);
      if (n <= 0) return std::nullopt;
      buf_.append(b, static_cast<std::size_t>(n));
    }
    return std::nullopt;
  }
  // Ends it: SIGTERM, then (after `grace`) SIGKILL. Its exit status.
  int stop(std::chrono::milliseconds grace) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    const auto until = Clock::now() + grace;
    int st = 0;
    while (::waitpid(pid_, &st, WNOHANG) == 0) {
      if (Clock::now() >= until) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
        break;
      }
      nap(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    return st;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int to_ = -1;
  int from_ = -1;
  std::string buf_;
};

// --- one run of each method --------------------------------------------------

struct Sample {
  bool ok = false;
  double seconds = 0;
  std::uint64_t bytes = 0;
  std::uint64_t packets = 0;
  std::uint64_t retransmits = 0;
  std::uint64_t fast_resends = 0;
  std::uint64_t core_size = 0;
  double client_cpu = 0;  // the dump: the dumping process's CPU seconds
  double server_cpu = 0;  // ... and dumpd's in the meantime
  std::string error;
};

Sample run_dump(const BenchNet& net, const std::string& target, std::size_t mib, const std::string& dir,
                pid_t dumpd, bool one_by_one) {
  Sample s;
  std::vector<std::string> args = {"netpoll", "bench", "dump", "--child", target, "--mib", std::to_string(mib)};
  if (one_by_one) args.push_back("--one-by-one");
  Child child(net.a, std::move(args));
  if (!child.ok()) {
    s.error = "cannot start the dumping process";
    return s;
  }
  const auto ready = child.line(kReadyLimit);
  if (!ready || *ready != "ready") {
    s.error = "the dumping process did not get ready";
    return s;
  }
  const double server0 = cpu_seconds_of(dumpd);
  if (!child.say("go\n")) {
    s.error = "cannot tell the dumping process to dump";
    return s;
  }
  const auto result = child.line(kMethodLimit);
  s.server_cpu = cpu_seconds_of(dumpd) - server0;
  if (!result) {
    s.error = "the dumping process did not answer";
    return s;
  }
  std::istringstream in(*result);
  std::string verdict;
  std::uint64_t packets = 0;
  in >> verdict >> s.bytes >> s.core_size >> s.seconds >> packets >> s.retransmits >> s.fast_resends >> s.client_cpu;
  s.packets = packets > 2 ? packets - 2 : 0;  // DATA alone: not the herald nor FINISHED
  s.ok = verdict == "ok" && in;
  if (!s.ok) s.error = "the dump failed: " + *result;
  // The cores take room; the next run makes its own.
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) std::filesystem::remove_all(e.path(), ec);
  return s;
}

Sample run_raw(const BenchNet& net, const std::string& device, const std::string& peer_mac, std::uint64_t bytes) {
  Sample s;
  std::unique_ptr<core::Netpoll> np;
  {
    InNetns in(net.a);
    core::ClientConfig cfg;
    cfg.name = "bench dump: raw";
    auto t = core::parse_targets("6665@10.99.0.1/" + device + "," + std::to_string(kRawPort) + "@10.99.0.2/" +
                                 peer_mac);
    if (!t) {
      s.error = t.error().message;
      return s;
    }
    cfg.target = t->targets[0];
    cfg.device.service_thread = false;
    auto r = core::Netpoll::setup(std::move(cfg));
    if (!r) {
      s.error = r.error().message;
      return s;
    }
    np = std::move(*r);
  }
  const std::vector<std::byte> payload(np->max_payload(), std::byte{0x5a});
  const std::uint64_t datagrams = (bytes + payload.size() - 1) / payload.size();
  const auto t0 = Clock::now();
  const auto until = t0 + kMethodLimit;
  std::uint64_t sent = 0;
  for (std::uint64_t i = 0; sent < datagrams; ++i) {
    const auto flush = (i + 1) % 64 == 0 ? core::Flush::kNow : core::Flush::kLater;
    if (np->send_udp(payload, flush)) {
      ++sent;
    } else {
      np->poll();  // the pool is empty: reclaim what the device sent
    }
    if (i % 4096 == 0 && (Clock::now() >= until || stop_requested())) break;
  }
  np->flush();
  s.seconds = since(t0);
  s.ok = sent == datagrams;
  if (!s.ok) s.error = "raw: sent " + std::to_string(sent) + " of " + std::to_string(datagrams) + " datagrams";
  s.bytes = sent * payload.size();
  s.packets = sent;
  return s;
}

// The receiving end of the TCP runs, in b: accepts one connection per run
// and reads it to its end.
class TcpSink {
 public:
  explicit TcpSink(const BenchNet& net) {
    InNetns in(net.b);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = peer_addr();
    a.sin_port = htons(kTcpPort);
    ok_ = in.ok() && fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, 4) == 0;
  }
  ~TcpSink() {
    if (fd_ >= 0) ::close(fd_);
  }
  TcpSink(const TcpSink&) = delete;
  TcpSink& operator=(const TcpSink&) = delete;
  bool ok() const { return ok_; }

  // Reads one connection to its end (bounded by `limit`); bytes read, and
  // when the last arrived.
  void serve(std::chrono::seconds limit) {
    got = 0;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(limit).count())) <= 0) return;
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    timeval tv{static_cast<time_t>(limit.count()), 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::vector<std::byte> buf(1 << 20);
    const auto until = Clock::now() + limit;
    while (Clock::now() < until) {
      const ssize_t n = ::recv(c, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      got += static_cast<std::uint64_t>(n);
      last = Clock::now();
    }
    ::close(c);
  }
  std::uint64_t got = 0;
  Clock::time_point last;

 private:
  int fd_ = -1;
  bool ok_ = false;
};

Sample run_tcp(const BenchNet& net, TcpSink& sink, std::uint64_t bytes) {
  Sample s;
  std::thread receiver([&] { sink.serve(std::chrono::duration_cast<std::chrono::seconds>(kMethodLimit)); });
  int fd = -1;
  {
    InNetns in(net.a);
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  timeval tv{static_cast<time_t>(std::chrono::seconds(kMethodLimit).count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::vector<std::byte> buf(1 << 20, std::byte{0x5a});
  sockaddr_in to = peer_addr();
  to.sin_port = htons(kTcpPort);
  const auto t0 = Clock::now();
  std::uint64_t sent = 0;
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
    while (sent < bytes && !stop_requested()) {
      const ssize_t n = ::send(fd, buf.data(), std::min<std::uint64_t>(buf.size(), bytes - sent), MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::uint64_t>(n);
    }
  }
  tcp_info ti{};
  socklen_t tl = sizeof ti;
  if (fd >= 0) {
    ::shutdown(fd, SHUT_WR);
    ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl);
  }
  receiver.join();  // the sink has read to the end (or given up)
  if (fd >= 0) ::close(fd);
  s.ok = sent == bytes && sink.got == bytes;
  if (!s.ok) s.error = "tcp: sent " + std::to_string(sent) + ", received " + std::to_string(sink.got) + " of " +
                       std::to_string(bytes) + " bytes";
  s.seconds = std::chrono::duration<double>(sink.last - t0).count();
  s.bytes = sink.got;
  s.packets = ti.tcpi_segs_out;
  s.retransmits = ti.tcpi_total_retrans;
  return s;
}

// --- the table ----------------------------------------------------------------

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Method {
  const char* name;
  std::vector<Sample> samples;
  std::size_t failed = 0;
  double mbs() const {
    std::vector<double> v;
    for (const auto& s : samples) v.push_back(static_cast<double>(s.bytes) / s.seconds / 1e6);
    return median(v);
  }
};

void print_sample(const char* name, std::size_t run, const Sample& s) {
  if (!s.ok) {
    std::printf("  run %zu %-6s failed: %s\n", run + 1, name, s.error.c_str());
  } else {
    std::printf("  run %zu %-6s %8.1f MB/s  %7.3f s  %10llu packets  %llu/%llu retransmits", run + 1, name,
                static_cast<double>(s.bytes) / s.seconds / 1e6, s.seconds, static_cast<unsigned long long>(s.packets),
                static_cast<unsigned long long>(s.retransmits), static_cast<unsigned long long>(s.fast_resends));
    if (s.client_cpu > 0) {
      std::printf("  CPU: client %.0f%%, dumpd %.0f%%", 100 * s.client_cpu / s.seconds, 100 * s.server_cpu / s.seconds);
    }
    std::printf("\n");
  }
  std::fflush(stdout);
}

}  // namespace

int bench_dump(int argc, char** argv) {
  ArgParser args;
  args.option("mib").option("runs").option("dir").option("peer").option("child").flag("one-by-one").flag("help");
  args.parse(argc, argv, 3);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const std::size_t mib = args.get_uint("mib", 256, 1, 64 * 1024);
  if (const auto target = args.get("child")) return dump_child(*target, mib, args.has("one-by-one"));
  const std::size_t runs = args.get_uint("runs", 5, 1, 100);
  const std::string peer_mode = args.get("peer").value_or("drop");
  if (peer_mode != "drop" && peer_mode != "socket") throw UsageError("--peer must be drop or socket");
  if (::geteuid() != 0) {
    print_error("bench dump", "needs root: it creates network namespaces and uses AF_PACKET");
    return 1;
  }
  const bool own_dir = !args.has("dir");
  const std::string dir =
      args.get("dir").value_or((std::filesystem::temp_directory_path() / ("np-bench-dump-" + std::to_string(::getpid()))).string());
  install_stop_signals();
  BenchNet net;
  if (!net.ok) {
    print_error("bench dump", "could not create the veth pair between two namespaces");
    return 1;
  }
  std::string error;
  const std::string peer_mac = net.prepare_peer(false, error);
  if (peer_mac.empty()) {
    print_error("bench dump", error.empty() ? "cannot read the peer's MAC address" : error);
    return 1;
  }
  // dumpd answers from b's kernel: no ARP either way.
  run_cmd("ip -n " + net.b + " neigh replace 10.99.0.1 lladdr " + mac_in(net.a, "npb0") + " dev npb1 nud permanent");
  if (peer_mode == "drop" &&
      (run_cmd("ip netns exec " + net.b + " nft add table netdev npbench") != 0 ||
       run_cmd("ip netns exec " + net.b + " nft 'add chain netdev npbench raw { type filter hook ingress device npb1 "
               "priority 0; }'") != 0 ||
       run_cmd("ip netns exec " + net.b + " nft add rule netdev npbench raw udp dport " + std::to_string(kRawPort) +
               " drop") != 0)) {
    print_error("bench dump", "cannot install the nftables ingress drop in the peer (is nftables installed?)");
    return 1;
  }
  int raw_sink = -1;  // --peer socket: takes the raw datagrams (unread: they are counted and dropped there)
  if (peer_mode == "socket") {
    InNetns in(net.b);
    raw_sink = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in sa = peer_addr();
    sa.sin_port = htons(kRawPort);
    if (::bind(raw_sink, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      print_error("bench dump", "cannot bind the raw path's receiving socket");
      return 1;
    }
  }
  TcpSink tcp_sink(net);
  if (!tcp_sink.ok()) {
    print_error("bench dump", "cannot listen for TCP in the peer namespace");
    return 1;
  }
  struct RemoveDir {
    std::string dir;
    bool own;
    ~RemoveDir() {
      std::error_code ec;
      if (own) std::filesystem::remove_all(dir, ec);
    }
  } remove_dir{dir, own_dir};
  Child dumpd(net.b, {"netpoll", "dumpd", "--dir", dir, "--bind", "10.99.0.2", "--quiet", "--timeout", "3600"},
              true);
  const auto hello = dumpd.ok() ? dumpd.line(std::chrono::seconds(10)) : std::nullopt;
  if (!hello) {
    print_error("bench dump", "netpoll dumpd did not start in the peer namespace");
    return 1;
  }
  const std::string device = "packet:npb0?bypass=1";
  const std::string target = "20024@10.99.0.1/" + device + ",20023@10.99.0.2/" + peer_mac;
  const std::uint64_t bytes = std::uint64_t{mib} << 20;

  std::printf("netpoll bench dump: %zu MiB of non-zero memory, %zu runs, over veth (%s)\n", mib, runs,
              device.c_str());
  std::printf("dumpd (pid %d) in the peer namespace writes to %s; raw: the peer %s\n", dumpd.pid(), dir.c_str(),
              peer_mode == "drop" ? "drops at ingress" : "UDP socket takes them");
  std::fflush(stdout);
  constexpr std::size_t kMethods = 4;
  Method methods[kMethods] = {{"dump", {}}, {"dump-1", {}}, {"raw", {}}, {"tcp", {}}};
  for (std::size_t run = 0; run < runs && !stop_requested(); ++run) {
    for (std::size_t k = 0; k < kMethods && !stop_requested(); ++k) {
      const std::size_t m = (run + k) % kMethods;
      Sample s;
      if (m <= 1) {
        s = run_dump(net, target, mib, dir, dumpd.pid(), m == 1);
      } else if (m == 2) {
        s = run_raw(net, device, peer_mac, bytes);
        if (raw_sink >= 0) {
          std::byte drain[2048];
          for (int i = 0; i < 1'000'000 && ::recv(raw_sink, drain, sizeof drain, MSG_DONTWAIT) > 0; ++i) {
          }
        }
      } else {
        s = run_tcp(net, tcp_sink, bytes);
      }
      print_sample(methods[m].name, run, s);
      if (s.ok) {
        methods[m].samples.push_back(s);
      } else {
        ++methods[m].failed;
      }
    }
  }
  dumpd.stop(std::chrono::seconds(5));
  if (raw_sink >= 0) ::close(raw_sink);

  const double raw = methods[2].mbs();
  std::printf("\n%-6s %10s %19s %12s %16s %8s %7s\n", "method", "MB/s", "(least-most)", "packets/s",
              "retransmits", "vs raw", "failed");
  for (const auto& m : methods) {
    if (m.samples.empty()) {
      std::printf("%-6s %10s %19s %12s %16s %8s %7zu\n", m.name, "-", "", "", "", "", m.failed);
      continue;
    }
    std::vector<double> mbs, pps, re, fast;
    for (const auto& s : m.samples) {
      mbs.push_back(static_cast<double>(s.bytes) / s.seconds / 1e6);
      pps.push_back(static_cast<double>(s.packets) / s.seconds);
      re.push_back(static_cast<double>(s.retransmits));
      fast.push_back(static_cast<double>(s.fast_resends));
    }
    char range[40], retrans[40];
    std::snprintf(range, sizeof range, "(%.0f-%.0f)", *std::min_element(mbs.begin(), mbs.end()),
                  *std::max_element(mbs.begin(), mbs.end()));
    if (&m == &methods[0] || &m == &methods[1]) {
      std::snprintf(retrans, sizeof retrans, "%.0f + %.0f fast", median(re), median(fast));
    } else if (&m == &methods[3]) {
      std::snprintf(retrans, sizeof retrans, "%.0f", median(re));
    } else {
      std::snprintf(retrans, sizeof retrans, "-");
    }
    std::printf("%-6s %10.1f %19s %12.0f %16s %7.2fx %7zu\n", m.name, median(mbs), range, median(pps), retrans,
                raw > 0 ? median(mbs) / raw : 0.0, m.failed);
  }
  for (const Method* m : {&methods[0], &methods[1]}) {
    if (m->samples.empty()) continue;
    std::vector<double> client, server;
    for (const auto& s : m->samples) {
      client.push_back(100 * s.client_cpu / s.seconds);
      server.push_back(100 * s.server_cpu / s.seconds);
    }
    std::printf("\n%s: core of %.1f MiB, %.1f MiB of it sent (pages of zeros stay home); CPU while it ran\n"
                "(median, %% of its time): the dumping process %.0f%%, dumpd %.0f%%",
                m->name, static_cast<double>(m->samples.back().core_size) / (1 << 20),
                static_cast<double>(m->samples.back().bytes) / (1 << 20), median(client), median(server));
  }
  std::printf("\n");
  if (raw > 0 && !methods[0].samples.empty()) {
    const double ratio = methods[0].mbs() / raw;
    std::printf("target: dump >= 0.5x raw: %s (%.2fx)\n", ratio >= 0.5 ? "met" : "NOT met", ratio);
  }
  if (stop_requested()) std::printf("(stopped)\n");
  const bool all_failed = std::all_of(std::begin(methods), std::end(methods),
                                      [](const Method& m) { return m.samples.empty(); });
  return all_failed ? 1 : 0;
}

}  // namespace np::tools
