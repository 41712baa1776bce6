// netpoll dumpd: the dump server for netpoll's crash path (and any client
// of FreeBSD debugnet's netdump protocol).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "cli.h"
#include "commands.h"
#include "metrics_option.h"
#include "netpoll/base/clock.h"
#include "netpoll/dumpd/server.h"

namespace np::tools {
namespace {

constexpr const char* kHelp =
    "usage: netpoll dumpd [options]\n"
    "\n"
    "Receives crash dumps (ELF cores) that netpoll's crash path streams over\n"
    "UDP with FreeBSD debugnet's protocol (netdump: a herald, then data at file\n"
    "offsets, each acknowledged, then finished), from many clients at once, and\n"
    "writes each one to a sparse file with a .json beside it.\n"
    "\n"
    "  --dir DIR            where dumps go (default /var/crash/netpoll); each is\n"
    "                       DIR/<client address>/<UTC time>-<pid>-<program>.core\n"
    "  --port N             the herald port (default 20023); each client then\n"
    "                       talks to a port of its own\n"
    "  --bind ADDR          address to listen on (default :: = every IPv6 and IPv4)\n"
    "  --max-size BYTES     the largest dump taken; a suffix K, M, G or T counts in\n"
    "                       powers of 1024 (default 64G); data past it is refused\n"
    "  --max-clients N      dumps in progress at once; more heralds are refused\n"
    "                       (default 16, at most 1024)\n"
    "  --idle S             a dump whose client is silent this long ends partial\n"
    "                       (default 30)\n"
    "  --exec SCRIPT        after each dump kept, run (not waited for)\n"
    "                       SCRIPT complete|partial CORE JSON CLIENT\n"
    "  --spin US            while dumps arrive, look for datagrams this many\n"
    "                       microseconds before sleeping (default 100; 0: sleep\n"
    "                       at once): a sleeping server answers late\n"
    "  --quiet              no line per dump (started, progress, complete, partial)\n"
    "  --stats-interval S   print statistics every S seconds (and on SIGUSR1, at exit)\n"
    "  --stats-format text|json  (default text; statistics go to standard error)\n"
    "  --timeout S          stop after S seconds\n"
    "\n"
    "Files, in DIR/<client address>/ (directories 0700, files 0600: a core\n"
    "holds a process's memory):\n"
    "  NAME.core.part       while the dump comes in; only the bytes sent take\n"
    "                       space (the client leaves out pages of zeros)\n"
    "  NAME.core            complete: cut to the length the client finished with,\n"
    "                       flushed to disk, then renamed into place\n"
    "  NAME.core.partial    the client gave up or went silent (--idle), a write\n"
    "                       failed (a full disk), or dumpd stopped\n"
    "  NAME.json            beside either: program, pid, signal, threads, kind,\n"
    "                       host, size, bytes written, file size, seconds,\n"
    "                       packets, duplicates, complete (true or false) and the\n"
    "                       reason when it is not\n"
    "A dump that ends before any data keeps nothing.\n"
    "\n"
    "Standard error has a line per dump event and, at exit (SIGINT, SIGTERM),\n"
    "the statistics: sessions, complete, partial, bytes, packets, acks,\n"
    "duplicates, every datagram refused by its reason (none is answered or\n"
    "written), and the server's own errors (writes, a full disk, acks).\n";

volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_dump = 0;
void on_stop(int) { g_stop = 1; }
void on_usr1(int) { g_dump = 1; }

// "1048576", "512M", "64G": bytes, a suffix in powers of 1024.
std::uint64_t parse_size(const std::string& name, const std::string& text) {
  const auto bad = [&] {
    return UsageError("--" + name + " '" + text + "': expected bytes, e.g. 1048576, 512M or 64G");
  };
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 19) throw bad();
  unsigned shift = 0;
  const std::string suffix = text.substr(digits);
  if (suffix == "K" || suffix == "k") {
    shift = 10;
  } else if (suffix == "M" || suffix == "m") {
    shift = 20;
  } else if (suffix == "G" || suffix == "g") {
    shift = 30;
  } else if (suffix == "T" || suffix == "t") {
    shift = 40;
  } else if (!suffix.empty()) {
    throw bad();
  }
  const std::uint64_t n = std::stoull(text.substr(0, digits));
  constexpr std::uint64_t kMax = std::uint64_t{1} << 62;
  if (n == 0 || n > (kMax >> shift)) {
    throw UsageError("--" + name + " '" + text + "': expected from 1 byte to 4096T");
  }
  return n << shift;
}

}  // namespace

int cmd_dumpd(int argc, char** argv) {
  ArgParser args;
  args.option("dir").option("port").option("bind").option("max-size").option("max-clients").option("idle");
  args.option("exec").option("spin").flag("quiet").option("stats-interval").option("stats-format").option("timeout").flag("help");
  declare_metrics_options(args);
  args.parse(argc, argv, 2);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    std::fputs("\nServing the statistics:\n", stdout);
    std::fputs(kMetricsOptionHelp, stdout);
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  dumpd::Options o;
  o.dir = args.get("dir").value_or(o.dir);
  if (o.dir.empty()) throw UsageError("--dir needs a directory");
  o.port = static_cast<std::uint16_t>(args.get_uint("port", 20023, 0, 65535));
  o.bind = args.get("bind").value_or("::");
  if (auto s = args.get("max-size")) o.limits.max_size = parse_size("max-size", *s);
  o.max_clients = static_cast<unsigned>(args.get_uint("max-clients", 16, 1, dumpd::kMaxClients));
  const double idle = args.get_seconds("idle", 30);
  if (idle <= 0) throw UsageError("--idle '" + *args.get("idle") + "': expected more than 0 seconds");
  o.limits.idle_ns = static_cast<std::int64_t>(idle * 1e9);
  // A repeated FINISHED (its ack lost) is answered for a while; never
  // longer than a silent client is waited for.
  o.limits.linger_ns = std::min<std::int64_t>(o.limits.idle_ns, 5'000'000'000);
  if (auto e = args.get("exec")) {
    if (e->empty()) throw UsageError("--exec needs a program");
    if (::access(e->c_str(), X_OK) != 0)
      throw UsageError("--exec '" + *e + "': " + std::strerror(errno) + " (a path to an executable)");
    o.exec = *e;
  }
  o.spin_ns = static_cast<std::int64_t>(args.get_uint("spin", 100, 0, 1'000'000)) * 1000;
  const double interval = args.get_seconds("stats-interval", 0);
  const double timeout = args.get_seconds("timeout", 0);
  const std::string stats_format = args.get("stats-format").value_or("text");
  if (stats_format != "text" && stats_format != "json") throw UsageError("--stats-format must be text or json");
  if (!args.has("quiet")) o.log = [](const std::string& line) { std::fprintf(stderr, "netpoll dumpd: %s\n", line.c_str()); };

  auto server = dumpd::Server::open(o);
  if (!server) {
    print_error("dumpd", server.error().message);
    return 1;
  }
  auto& s = **server;
  const auto print_stats = [&] {
    const std::string report = stats_format == "json" ? dumpd::stats_json(s.stats()) : dumpd::stats_text(s.stats());
    std::fputs(report.c_str(), stderr);
    std::fflush(stderr);
  };
  char limit[64];
  std::snprintf(limit, sizeof limit, "%.1f GiB", static_cast<double>(o.limits.max_size) / (1ull << 30));
  std::fprintf(stderr, "netpoll dumpd: %s port %u, dumps to %s (at most %u clients, %s a dump, idle %g s)\n",
               o.bind.c_str(), s.port(), o.dir.c_str(), o.max_clients, limit, idle);

  auto metrics = start_metrics(args, "dumpd", [&s] { return dumpd::stats_metrics(s.stats()); });
  if (!metrics) {
    print_error("dumpd", metrics.error().message);
    return 1;
  }

  struct sigaction sa {};
  sa.sa_handler = on_stop;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  sa.sa_handler = on_usr1;
  ::sigaction(SIGUSR1, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::atomic<bool> stop{false};
  std::thread serving([&] { s.run(stop); });
  const auto start = std::chrono::steady_clock::now();
  auto next_stats = start + std::chrono::duration<double>(interval);
  while (!g_stop) {
    nap(std::chrono::milliseconds(20));
    const auto now = std::chrono::steady_clock::now();
    if (timeout > 0 && std::chrono::duration<double>(now - start).count() >= timeout) break;
    if (g_dump) {
      g_dump = 0;
      print_stats();
    }
    if (interval > 0 && now >= next_stats) {
      print_stats();
      next_stats = now + std::chrono::duration<double>(interval);
    }
  }
  stop.store(true);
  serving.join();
  print_stats();
  return 0;
}

}  // namespace np::tools
