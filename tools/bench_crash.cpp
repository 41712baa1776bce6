// netpoll bench crash: how soon a crash record is on the wire.
//
// A program logs N records (999 plus a last one that carries a timestamp
// taken just before the faulting instruction) and crashes at once. The
// benchmark captures the datagrams in the peer namespace, with the kernel's
// receive timestamps (SO_TIMESTAMPNS on a packet socket; the peer's stack
// drops every frame at ingress, after the capture), and measures from the timestamp in
// the last record to the arrival of the crash record's first datagram:
//   in-process  the program's own crash path (Logger + crash handler):
//               every record still in the ring, then the crash record;
//   witness     netpoll run traces the program, which writes its lines to
//               stdout; the runner forwards them, stops every thread,
//               unwinds them and sends the crash record.
//   forward     netpoll run forwarding a program's output, no crash: lines
//               per second from the program's first write to the arrival
//               of its last line (the runner's pipes-to-wire rate).
// Both clocks are CLOCK_REALTIME on one machine.
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bench_net.h"
#include "cli.h"
#include "commands.h"
#include "netpoll/base/bytes.h"
#include "netpoll/base/clock.h"
#include "netpoll/console/crash.h"
#include "netpoll/core/crash_route.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/console/logger.h"
#include "netpoll/wire/netconsole.h"

namespace np::tools {
namespace {

namespace nc = wire::netconsole;

constexpr const char* kHelp =
    "usage: netpoll bench crash [--runs N] [--records N] [--lines N]\n"
    "                           [--path all|floor|inproc|witness|forward] [--device packet|xdp]\n"
    "\n"
    "A program logs --records records (default 1000; the last one carries a\n"
    "timestamp taken just before the faulting instruction) and crashes at\n"
    "once. Measured in a peer namespace from that timestamp to the kernel's\n"
    "receive timestamp of the crash record's first datagram, --runs times\n"
    "(default 20) for each path:\n"
    "  inproc   the program's own crash path (a Logger and its crash handler)\n"
    "  witness  netpoll run tracing the program, which writes its records as\n"
    "           lines on stdout, a second after it started (the runner has\n"
    "           loaded the debug information it names frames with by then)\n"
    "  witness-cold  the same at once: the report waits for that loading\n"
    "  floor    for comparison: the same records and a crash record as frames\n"
    "           built ahead and pushed from a standing start, 64 per sendmmsg\n"
    "           (the physical limit of this path on this machine)\n"
    "Prints p50 and max of the latency and how many of the records plus the\n"
    "crash record arrived (the least of any run).\n"
    "  forward  netpoll run forwarding --lines lines (default 100000) that a\n"
    "           program writes to its stdout at once, a second after it\n"
    "           started, and then exits: lines/s from its first write to the\n"
    "           arrival of its last line, min(--runs, 5) runs; beside it,\n"
    "           its floor: the same lines as datagrams of the same length,\n"
    "           pushed as prebuilt frames 64 per sendmmsg (the crash route)\n"
    "           through the same veth to the same peer, alternating with\n"
    "           the forward runs\n"
    "  --device packet  every path sends on packet:npb0 (AF_PACKET; default)\n"
    "  --device xdp     every path, the floors too, on xdp:npb0 (AF_XDP, copy\n"
    "                   mode on veth)\n"
    "Needs root (namespaces, AF_PACKET, ptrace).\n";

volatile std::uintptr_t g_null = 0;

// The forward path's first and last lines are at least this long, its
// other lines far shorter: the capture takes only frames this long, and
// the peer's nftables counter counts every line (a capture of every
// frame would cost a core of the two the runner needs).
constexpr std::size_t kForwardMarker = 300;

// The forward path's first line: "first t=" and a field of 20 digits
// that stamp_first_line() fills with the time of the first write.
std::string first_line(const std::string& pad) { return "first t=" + std::string(20, '0') + " " + pad; }
void stamp_first_line(std::string& s) {
  const std::size_t at = s.find("first t=") + std::strlen("first t=");
  const std::string stamp = std::to_string(realtime_ns());
  s.replace(at + 20 - stamp.size(), stamp.size(), stamp);
}

[[gnu::noinline]] void crash_now() { *reinterpret_cast<volatile int*>(g_null) = 1; }

// The crashing program: `netpoll bench crash --child inproc|plain TARGET N`.
int child(const std::string& mode, const std::string& target, std::size_t n) {
  if (mode == "plain-late") {
    // A program that has run for a while before it crashes, as most do.
    ::sleep(1);
    return child("plain", target, n);
  }
  if (mode == "lines") {
    // netpoll run's forwarding: n lines at once (the first carries the
    // time of the first write), then a normal exit. The first and the last
    // line are long: the capture takes only those (kForwardMarker).
    ::sleep(1);
    // The lines are made first; the time goes into the first one just
    // before the first write (20 digits, zero-padded), so that making them
    // is not counted as forwarding.
    const std::string pad(kForwardMarker, '.');
    std::string lines = first_line(pad) + "\n";
    for (std::size_t i = 2; i < n; ++i) lines += "record " + std::to_string(i) + "\n";
    lines += "end " + pad + "\n";
    stamp_first_line(lines);
    for (std::size_t done = 0; done < lines.size();) {
      const ssize_t w = ::write(STDOUT_FILENO, lines.data() + done, lines.size() - done);
      if (w <= 0) return 1;
      done += static_cast<std::size_t>(w);
    }
    return 0;
  }
  if (mode == "plain") {
    std::string lines;
    for (std::size_t i = 1; i < n; ++i) lines += "record " + std::to_string(i) + "\n";
    for (std::size_t done = 0; done < lines.size();) {
      const ssize_t w = ::write(STDOUT_FILENO, lines.data() + done, lines.size() - done);
      if (w <= 0) return 1;
      done += static_cast<std::size_t>(w);
    }
    char last[64];
    const int len = std::snprintf(last, sizeof last, "last t=%lld\n", static_cast<long long>(realtime_ns()));
    [[maybe_unused]] const ssize_t w = ::write(STDOUT_FILENO, last, static_cast<std::size_t>(len));
    crash_now();
    return 1;
  }
  console::LoggerConfig cfg;
  console::TargetConfig t;
  auto parsed = core::parse_targets(target);
  if (!parsed) return 2;
  t.target = parsed->targets[0];
  cfg.targets.push_back(t);
  cfg.ring_records = 2 * n;
  auto lg = console::Logger::create(std::move(cfg));
  if (!lg) {
    std::fprintf(stderr, "%s\n", lg.error().message.c_str());
    return 2;
  }
  if (auto r = console::install_crash_handler(**lg); !r) {
    std::fprintf(stderr, "%s\n", r.error().message.c_str());
    return 2;
  }
  for (std::size_t i = 1; i < n; ++i) (*lg)->log(console::Level::kInfo, "record {}", i);
  (*lg)->log(console::Level::kInfo, "last t={}", realtime_ns());
  crash_now();
  return 1;
}

struct RunResult {
  double latency_ms = -1;  // -1: no crash record or no timestamp
  std::size_t arrived = 0;  // of the program's records and its crash record
  double lines_per_s = 0;   // forward: its n lines over the time they took
};

// Sends `payloads` to `target` from the first namespace through a crash
// route of our own (prebuilt frames, one sendmmsg per 64), from a standing
// start: `stamp` writes the start time into them once the route is ready.
bool push_prebuilt(BenchNet& net, const std::string& target, std::vector<std::string>& payloads,
                   const std::function<void()>& stamp) {
  InNetns in_a(net.a);
  auto parsed = core::parse_targets(target);
  if (!parsed) return false;
  core::ClientConfig cc;
  cc.target = parsed->targets[0];
  cc.device.service_thread = false;
  auto np = core::Netpoll::setup(std::move(cc));
  if (!np) return false;
  auto route = core::CrashRoute::make(**np);
  if (!route || *route == nullptr) return false;
  stamp();
  for (const auto& p : payloads) static_cast<void>((*route)->send(as_bytes(p)));
  (*route)->flush();
  return true;
}

RunResult one_run(BenchNet& net, const std::string& target, const std::string& mode, std::size_t n) {
  RunResult r;
  const bool forwarding = mode == "forward" || mode == "forward-floor";
  const bool in_this_process = mode == "floor" || mode == "forward-floor";
  // The capture: a packet socket on the peer's interface sees every frame
  // before the peer's ingress hook drops it (prepare_peer(true)), so the
  // peer's IP/UDP stack costs the sender nothing.
  int sock = -1;
  {
    InNetns in_b(net.b);
    sock = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    const int on = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    const int rcvbuf = 64 << 20;
    ::setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    sockaddr_ll at{};
    at.sll_family = AF_PACKET;
    at.sll_protocol = htons(ETH_P_ALL);
    at.sll_ifindex = static_cast<int>(::if_nametoindex("npb1"));
    // forward: frames at least kForwardMarker long only.
    sock_filter code[] = {BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
                          BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, kForwardMarker, 0, 1), BPF_STMT(BPF_RET | BPF_K, 0xffff),
                          BPF_STMT(BPF_RET | BPF_K, 0)};
    const sock_fprog prog{static_cast<unsigned short>(std::size(code)), code};
    if (forwarding && sock >= 0 && ::setsockopt(sock, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) {
      ::close(sock);
      return r;
    }
    if (sock < 0 || at.sll_ifindex == 0 || ::bind(sock, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) {
      if (sock >= 0) ::close(sock);
      return r;
    }
  }
  if (mode == "floor") {
    // The physical limit: the same records as prebuilt frames from a
    // standing start, one sendmmsg per 64, through a crash route of our own.
    std::vector<std::string> payloads;
    for (std::size_t i = 0; i + 1 < n; ++i) payloads.push_back("6," + std::to_string(i) + ",0,-;record " + std::to_string(i + 1));
    payloads.push_back("6," + std::to_string(n - 1) + ",0,-;last t=");
    payloads.push_back("0," + std::to_string(n) + ",0,-;crashed: floor");
    if (!push_prebuilt(net, target, payloads, [&] { payloads[n - 1] += std::to_string(realtime_ns()); })) return r;
  }
  const std::int64_t counted_before = forwarding ? net.peer_udp_count() : 0;
  if (mode == "forward-floor") {
    // The forward path's limit: the lines the runner would send, as
    // datagrams of the same length (its extended header: level, number,
    // microseconds since boot), made ahead and pushed as prebuilt frames.
    const std::string pad(kForwardMarker, '.');
    const std::string boot_us = std::to_string(boottime_ns() / 1000);
    std::vector<std::string> payloads;
    payloads.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::string text = i == 0 ? first_line(pad)
                               : i + 1 == n ? "end " + pad
                                            : "record " + std::to_string(i + 1);
      payloads.push_back("6," + std::to_string(i) + "," + boot_us + ",-;" + text);
    }
    if (!push_prebuilt(net, target, payloads, [&] { stamp_first_line(payloads[0]); })) return r;
  }
  const std::string self = "/proc/self/exe";
  char exe[4096] = {};
  if (::readlink(self.c_str(), exe, sizeof exe - 1) <= 0) return r;
  std::vector<std::string> argv_s;
  if (mode == "inproc") {
    argv_s = {exe, "bench", "crash", "--child", "inproc", target, std::to_string(n)};
  } else {
    const char* child_mode = mode == "forward" ? "lines" : mode == "witness-cold" ? "plain" : "plain-late";
    argv_s = {exe, "run", "--quiet", "--no-echo", target, "--", exe, "bench", "crash", "--child",
              child_mode, target, std::to_string(n)};
  }
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t pid = in_this_process ? 0 : ::fork();
  if (pid == 0 && !in_this_process) {
    const rlimit none{0, 0};
    ::setrlimit(RLIMIT_CORE, &none);  // no core files: the bench measures the report
    InNetns in_a(net.a);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  std::int64_t t0 = 0, t1 = 0;
  std::set<std::uint64_t> program_records;
  bool crash_seen = false;
  std::int64_t first_write = 0, end_rx = 0;  // forward
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(12);
  bool exited = in_this_process;
  auto quiet_since = std::chrono::steady_clock::now();
  char buf[4096];
  char control[256];
  while (std::chrono::steady_clock::now() < deadline) {
    if (!exited) {
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        exited = true;
        quiet_since = std::chrono::steady_clock::now();
      }
    }
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t got = ::recvmsg(sock, &msg, MSG_DONTWAIT);
    if (got <= 0) {
      if (exited && std::chrono::steady_clock::now() - quiet_since > std::chrono::milliseconds(300)) break;
      ::usleep(200);
      continue;
    }
    quiet_since = std::chrono::steady_clock::now();
    std::int64_t rx_ns = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
        timespec ts;
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        rx_ns = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
      }
    }
    // IPv4 without options (netpoll sends none), UDP to port 6666.
    constexpr std::size_t kUdpPayload = 14 + 20 + 8;
    if (got < static_cast<ssize_t>(kUdpPayload) || static_cast<unsigned char>(buf[14]) != 0x45 || buf[23] != 17 ||
        static_cast<unsigned char>(buf[36]) != 6666 >> 8 || static_cast<unsigned char>(buf[37]) != (6666 & 0xff))
      continue;
    const auto p = nc::parse_extended(
        std::string_view(buf + kUdpPayload, static_cast<std::size_t>(got) - kUdpPayload));
    if (!p) continue;
    if (p->body.rfind("record ", 0) == 0) program_records.insert(p->seq);
    if (p->body.rfind("first t=", 0) == 0) {
      program_records.insert(p->seq);
      first_write = std::strtoll(std::string(p->body.substr(8)).c_str(), nullptr, 10);
    }
    if (p->body.rfind("end ", 0) == 0) {
      program_records.insert(p->seq);
      end_rx = rx_ns;
    }
    if (p->body.rfind("last t=", 0) == 0) {
      program_records.insert(p->seq);
      t0 = std::strtoll(std::string(p->body.substr(7)).c_str(), nullptr, 10);
    }
    if (p->body.rfind("crashed: ", 0) == 0 && (!p->fragmented || p->frag_offset == 0) && !crash_seen) {
      crash_seen = true;
      t1 = rx_ns;
    }
  }
  if (!exited && pid > 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  ::close(sock);
  r.arrived = program_records.size() + (crash_seen ? 1 : 0);
  if (crash_seen && t0 != 0) r.latency_ms = static_cast<double>(t1 - t0) / 1e6;
  if (forwarding) {
    const std::int64_t counted = net.peer_udp_count();
    r.arrived = counted >= 0 && counted_before >= 0 ? static_cast<std::size_t>(counted - counted_before) : 0;
  }
  if (first_write != 0 && end_rx > first_write) {
    r.latency_ms = static_cast<double>(end_rx - first_write) / 1e6;
    r.lines_per_s = static_cast<double>(n) / (static_cast<double>(end_rx - first_write) / 1e9);
  }
  return r;
}

}  // namespace

int bench_crash(int argc, char** argv) {
  ArgParser args;
  args.option("runs").option("records").option("lines").option("path").option("device").option("child").flag("help");
  args.parse(argc, argv, 3);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const std::size_t n = args.get_uint("records", 1000, 2, 100000);
  if (const auto mode = args.get("child")) {
    if (args.positional().size() < 1) throw UsageError("--child MODE TARGET [N]");
    const std::size_t count = args.positional().size() > 1 ? std::stoul(args.positional()[1]) : n;
    return child(*mode, args.positional()[0], count);
  }
  const std::size_t runs = args.get_uint("runs", 20, 1, 1000);
  const std::size_t lines = args.get_uint("lines", 100000, 2, 10000000);
  std::string path = args.get("path").value_or("all");
  if (path == "both") path = "all";  // its name before the forward path
  if (path != "all" && path != "inproc" && path != "witness" && path != "floor" && path != "forward")
    throw UsageError("--path must be all, floor, inproc, witness or forward");
  const std::string device = args.get("device").value_or("packet");
  if (device != "packet" && device != "xdp") throw UsageError("--device must be packet or xdp");
  if (::geteuid() != 0) {
    print_error("bench crash", "needs root: it creates network namespaces and uses AF_PACKET");
    return 1;
  }
  BenchNet net;
  std::string error;
  const std::string mac = net.ok ? net.prepare_peer(true, error) : "";
  if (!net.ok || mac.empty()) {
    print_error("bench crash", net.ok ? error : "could not create the veth pair between two namespaces");
    return 1;
  }
  const std::string target = "+6665@10.99.0.1/" + device + ":npb0,6666@10.99.0.2/" + mac;
  std::printf("crash record latency: timestamp before the fault -> crash record's first datagram in the peer\n");
  std::printf("sending on %s:npb0\n", device.c_str());
  std::printf("%zu records then a crash, %zu runs per path\n\n", n, runs);
  std::printf("%-13s %10s %10s %10s   %s\n", "path", "p50 ms", "max ms", "failed", "records arrived (least, of N+1)");
  for (const std::string mode : {"floor", "inproc", "witness", "witness-cold"}) {
    if (path != "all" && mode.rfind(path, 0) != 0 && !(path == "inproc" && mode == "floor")) continue;
    std::vector<double> lat;
    std::size_t least = SIZE_MAX, failed = 0;
    for (std::size_t i = 0; i < runs; ++i) {
      const RunResult r = one_run(net, target, mode, n);
      least = std::min(least, r.arrived);
      if (r.latency_ms < 0) {
        ++failed;
      } else {
        lat.push_back(r.latency_ms);
      }
    }
    std::sort(lat.begin(), lat.end());
    const double p50 = lat.empty() ? -1 : lat[lat.size() / 2];
    const double max = lat.empty() ? -1 : lat.back();
    std::printf("%-13s %10.3f %10.3f %10zu   %zu of %zu\n", mode.c_str(), p50, max, failed, least, n + 1);
    std::fflush(stdout);
  }
  if (path == "all" || path == "forward") {
    // The runner's forwarding rate: what the witness rows above pay per
    // line; and its floor, run in turn with it.
    std::vector<double> rates, floor_rates;
    std::size_t least = SIZE_MAX, floor_least = SIZE_MAX;
    const std::size_t forward_runs = std::min<std::size_t>(runs, 5);
    if (!net.count_peer_udp(6666)) {
      print_error("bench crash", "cannot add the nftables counter in the peer");
      return 1;
    }
    for (std::size_t i = 0; i < forward_runs; ++i) {
      const RunResult r = one_run(net, target, "forward", lines);
      least = std::min(least, r.arrived);
      rates.push_back(r.lines_per_s);
      const RunResult f = one_run(net, target, "forward-floor", lines);
      floor_least = std::min(floor_least, f.arrived);
      floor_rates.push_back(f.lines_per_s);
    }
    std::sort(rates.begin(), rates.end());
    std::sort(floor_rates.begin(), floor_rates.end());
    const double p50 = rates[rates.size() / 2], floor_p50 = floor_rates[floor_rates.size() / 2];
    std::printf("\nnetpoll run forwarding: %zu lines written at once to stdout, %zu runs\n", lines, forward_runs);
    std::printf("%-13s %10s %10s %10s   %s\n", "", "p50 /s", "min /s", "max /s",
                "datagrams at the peer (least, of N + the runner's exit record; of N for the floor)");
    std::printf("%-13s %10.0f %10.0f %10.0f   %zu of %zu\n", "forward", p50, rates.front(), rates.back(), least,
                lines + 1);
    std::printf("%-13s %10.0f %10.0f %10.0f   %zu of %zu\n", "floor", floor_p50, floor_rates.front(),
                floor_rates.back(), floor_least, lines);
    std::printf("forward against its floor: %.1f%% (p50 over p50)\n", floor_p50 > 0 ? 100.0 * p50 / floor_p50 : 0.0);
    std::printf("target: >= 600000 lines/s: %s (%.0f)\n", p50 >= 600000 ? "met" : "NOT met", p50);
  }
  return 0;
}

}  // namespace np::tools
