// netpoll listen: a netconsole receiver for real Linux traffic.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "metrics_option.h"
#include "netpoll/devlisten/device_receiver.h"
#include "netpoll/receiver/worker.h"

namespace np::tools {
namespace {

using namespace np::receiver;

constexpr const char* kHelp =
    "usage: netpoll listen [options]\n"
    "\n"
    "Receives netconsole records (Linux's extended and basic formats, and\n"
    "netpoll's own) from any number of sources over UDP (IPv4 and IPv6):\n"
    "reassembles fragments, undoes escapes, orders each source's records and\n"
    "reports gaps, duplicates and restarts, and writes every record out.\n"
    "Records reach standard output and the files about 10 ms at most after\n"
    "their datagram (held for fewer, larger writes); syslog gets them at once.\n"
    "\n"
    "  --port N             UDP port (default 6666)\n"
    "  --bind ADDR          address to listen on (default :: = every IPv6 and IPv4)\n"
    "  --workers N          receiving threads; each source stays on one (default: CPUs)\n"
    "  --format text|json   text: <time> <source> <facility>.<level> <seq> <text>,\n"
    "                       a backslash as \\\\, control bytes and invalid UTF-8 as \\xHH;\n"
    "                       json: one object per record with every parsed field;\n"
    "                       \"text\" is valid UTF-8 (U+FFFD for a byte that is not);\n"
    "                       when a byte was so replaced, \"text_base64\" holds the\n"
    "                       exact bytes (likewise release_base64; dictionary_base64,\n"
    "                       userdata_base64, sysdata_base64 as [[key,value],...])\n"
    "  --dir DIR            one file per source in DIR (SOURCE.log or .json)\n"
    "                       instead of standard output (add --stdout for both)\n"
    "  --stdout             also write to standard output when --dir is given\n"
    "  --syslog URL         forward as RFC 5424 syslog: udp://HOST:PORT or\n"
    "                       tcp://HOST:PORT (octet-counted framing)\n"
    "  --ack                reliable mode (netconsd's ncrx): acknowledge each source\n"
    "                       and ask for what is missing; ncemg=1 records accepted late\n"
    "  --stats-interval S   print statistics every S seconds (and on SIGUSR1, at exit)\n"
    "  --stats-format text|json  (default text; statistics go to standard error)\n"
    "  --max-sources N      sources tracked at once, least recently used evicted (default 1024)\n"
    "  --window N           records held per source for reordering (default 256;\n"
    "                       1024 with --ack: at least the sender's retransmit window)\n"
    "  --memory BYTES       memory per source for held records and fragments (default 1048576)\n"
    "  --max-record BYTES   longest record kept; longer ones are counted malformed\n"
    "                       (basic lines: delivered in pieces) (default 65536)\n"
    "  --reorder-timeout MS how long a missing record is waited for (default 500)\n"
    "  --rcvbuf BYTES       socket receive buffer (default 67108864)\n"
    "  --count N            stop after N records\n"
    "  --timeout S          stop after S seconds\n"
    "\n"
    "netpoll's own path, for an interface with no kernel IP configuration (a\n"
    "qemu socket tunnel, a capture NIC, a kernel-bypass host):\n"
    "  --device DEV         receive through netpoll's own path on DEV instead of\n"
    "                       kernel sockets: an interface (eth1 or packet:eth1), a\n"
    "                       TAP device (tap:tap0), frames over UDP (udp:A:P@B:Q,\n"
    "                       qemu's -netdev socket) or any device string netpoll\n"
    "                       takes (see README); needs --ip\n"
    "  --ip ADDR            the IPv4 address to receive on (with --port); netpoll\n"
    "                       answers ARP for it\n"
    "With --device, every frame is checked as netpoll's receive path checks it\n"
    "and each one dropped (not for ADDR:PORT, a bad checksum, not IPv4 or ARP)\n"
    "is counted: the statistics end with the device's and the client's counters\n"
    "(\"netpoll\" in JSON). Reliable mode answers through netpoll's send path, to\n"
    "each source's address and the Ethernet address its frames came from.\n"
    "Records, formats, files, syslog, --count and --timeout are as with sockets.\n"
    "It does not do IPv6, IP fragments or ICMP (a ping gets no answer), and it\n"
    "is one thread: --workers, --bind and --rcvbuf are for kernel sockets.\n";

constexpr const char* kMetricsSourcesHelp =
    "  --metrics-max-sources N  sources listed one by one (netpoll_listen_source_*),\n"
    "                       the first N the statistics list (default 256); the\n"
    "                       totals count every source\n";

volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_dump = 0;
void on_stop(int) { g_stop = 1; }
void on_usr1(int) { g_dump = 1; }

SyslogTarget parse_syslog(const std::string& url) {
  SyslogTarget t;
  std::string rest;
  if (url.rfind("udp://", 0) == 0) {
    rest = url.substr(6);
  } else if (url.rfind("tcp://", 0) == 0) {
    t.tcp = true;
    rest = url.substr(6);
  } else {
    throw UsageError("--syslog '" + url + "': expected udp://HOST:PORT or tcp://HOST:PORT");
  }
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) throw UsageError("--syslog '" + url + "': expected HOST:PORT");
  t.host = rest.substr(0, colon);
  if (t.host.size() > 2 && t.host.front() == '[' && t.host.back() == ']') t.host = t.host.substr(1, t.host.size() - 2);
  try {
    const unsigned long p = std::stoul(rest.substr(colon + 1));
    if (p == 0 || p > 65535) throw std::out_of_range("");
    t.port = static_cast<std::uint16_t>(p);
  } catch (const std::exception&) {
    throw UsageError("--syslog '" + url + "': port must be 1..65535");
  }
  return t;
}

// --device and --ip: netpoll's own path; nothing that only a kernel socket
// has. Throws UsageError.
std::optional<devlisten::DeviceOptions> device_options(const ArgParser& args) {
  if (!args.has("device")) {
    if (args.has("ip")) throw UsageError("--ip is the address netpoll's own path receives on: give --device too");
    return std::nullopt;
  }
  if (args.has("workers")) throw UsageError("--workers: --device receives on one thread (a device has one receive ring)");
  if (args.has("bind")) throw UsageError("--bind is for kernel sockets: --device receives on --ip");
  if (args.has("rcvbuf")) throw UsageError("--rcvbuf is a kernel socket's buffer: --device receives from the device");
  devlisten::DeviceOptions d;
  d.device = *args.get("device");
  if (d.device.empty()) throw UsageError("--device needs a device, e.g. eth1 or udp:127.0.0.1:7001@127.0.0.1:7000");
  const auto ip_text = args.get("ip");
  if (!ip_text) throw UsageError("--device needs --ip ADDR, the IPv4 address to receive on");
  const auto ip = Ipv4Addr::parse(*ip_text);
  if (!ip) {
    throw UsageError("--ip '" + *ip_text + "': " +
                     (ip_text->find(':') != std::string::npos ? "netpoll's own path is IPv4 only"
                                                              : "expected an IPv4 address like 10.0.0.2"));
  }
  if (ip->is_unspecified() || ip->is_loopback() || ip->is_multicast() || ip->is_broadcast())
    throw UsageError("--ip " + *ip_text + ": expected a unicast address of the device's network, not loopback");
  d.ip = *ip;
  d.log = [](const std::string& m) { std::fprintf(stderr, "%s\n", m.c_str()); };
  return d;
}

}  // namespace

int cmd_listen(int argc, char** argv) {
  ArgParser args;
  args.option("port").option("bind").option("workers").option("format").option("dir").flag("stdout");
  args.option("syslog").flag("ack").option("stats-interval").option("stats-format").option("max-sources");
  args.option("window").option("memory").option("max-record").option("reorder-timeout").option("rcvbuf").option("count");
  args.option("timeout").option("device").option("ip").flag("help");
  declare_metrics_options(args);
  args.option("metrics-max-sources");
  args.parse(argc, argv, 2);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    std::fputs("\nServing the statistics:\n", stdout);
    std::fputs(kMetricsOptionHelp, stdout);
    std::fputs(kMetricsSourcesHelp, stdout);
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  Options o;
  o.port = static_cast<std::uint16_t>(args.get_uint("port", 6666, 0, 65535));
  o.bind = args.get("bind").value_or("::");
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  o.workers = static_cast<unsigned>(args.get_uint("workers", cpus, 1, 256));
  const std::string format = args.get("format").value_or("text");
  if (format == "json") {
    o.format = OutputFormat::kJson;
  } else if (format != "text") {
    throw UsageError("--format must be text or json");
  }
  o.dir = args.get("dir").value_or("");
  o.to_stdout = o.dir.empty() || args.has("stdout");
  if (auto s = args.get("syslog")) o.syslog = parse_syslog(*s);
  o.limits.reliable = args.has("ack");
  // Reliable mode: at least netpoll console's retransmit window (1024), so
  // a record can only push the front past numbers the sender has let go.
  o.limits.window = args.get_uint("window", o.limits.reliable ? 1024 : 256, 1, 1 << 16);
  o.limits.memory = args.get_uint("memory", 1 << 20, 64 << 10, 1ull << 32);
  o.limits.reorder_timeout = std::chrono::milliseconds(args.get_uint("reorder-timeout", 500, 1, 3'600'000));
  o.limits.max_record = args.get_uint("max-record", 64 << 10, 1000, 16 << 20);
  if (o.limits.max_record > o.limits.memory) throw UsageError("--max-record must not exceed --memory");
  o.max_sources = args.get_uint("max-sources", 1024, 1, 1 << 20);
  o.rcvbuf = static_cast<int>(args.get_uint("rcvbuf", 64 << 20, 4096, 1u << 30));
  o.count = args.get_uint("count", 0, 1, UINT64_MAX);
  const double timeout = args.get_seconds("timeout", 0);
  const double interval = args.get_seconds("stats-interval", 0);
  const std::string stats_format = args.get("stats-format").value_or("text");
  if (stats_format != "text" && stats_format != "json") throw UsageError("--stats-format must be text or json");
  const OutputFormat stats_as = stats_format == "json" ? OutputFormat::kJson : OutputFormat::kText;
  const std::size_t metrics_sources = args.get_uint("metrics-max-sources", 256, 0, 1 << 20);
  const std::optional<devlisten::DeviceOptions> device_opts = device_options(args);
  if (device_opts && o.port == 0) throw UsageError("--port 0 (a port the kernel picks) is for kernel sockets; --device needs a port");

  if (!o.dir.empty()) {
    struct stat st {};
    if (::stat(o.dir.c_str(), &st) != 0 && ::mkdir(o.dir.c_str(), 0755) != 0) {
      print_error("listen", "cannot create --dir " + o.dir + ": " + std::strerror(errno));
      return 1;
    }
    // One open file per tracked source.
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
      files.rlim_cur = files.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &files);
    }
  }

  Shared shared;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<devlisten::DeviceReceiver> device;
  if (device_opts) {
    auto d = devlisten::DeviceReceiver::open(o, *device_opts, shared);
    if (!d) {
      std::fprintf(stderr, "%s\n", d.error().message.c_str());
      return 1;
    }
    device = std::move(*d);
    std::fprintf(stderr, "netpoll listen: %s, netpoll's own path, one thread%s\n", device->where().c_str(),
                 o.limits.reliable ? ", reliable mode (ncrx)" : "");
  } else {
    for (unsigned i = 0; i < o.workers; ++i) {
      Options per = o;
      if (i > 0 && o.port == 0) per.port = workers[0]->bound_port();  // the same ephemeral port for all
      auto w = Worker::open(i, i == 0 ? o : per, shared);
      if (!w) {
        print_error("listen", w.error().message);
        return 1;
      }
      if (i == 0 && o.port == 0) o.port = (*w)->bound_port();
      workers.push_back(std::move(*w));
    }
    std::fprintf(stderr, "netpoll listen: %s port %u, %u worker%s%s\n", o.bind.c_str(), workers[0]->bound_port(),
                 o.workers, o.workers == 1 ? "" : "s", o.limits.reliable ? ", reliable mode (ncrx)" : "");
  }
  const auto print_stats = [&](OutputFormat format) {
    const std::string report = device ? device->stats_report(format) : stats_report(workers, format);
    std::fputs(report.c_str(), stderr);
    std::fflush(stderr);
  };

  auto metrics = start_metrics(args, "listen", [&] {
    const auto as = ReportFormat::metrics(metrics_sources);
    return device ? device->stats_report(as) : stats_report(workers, as);
  });
  if (!metrics) {
    print_error("listen", metrics.error().message);
    return 1;
  }

  struct sigaction sa {};
  sa.sa_handler = on_stop;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  sa.sa_handler = on_usr1;
  ::sigaction(SIGUSR1, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::vector<std::thread> threads;
  if (device) threads.emplace_back([&device] { device->run(); });
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  const auto start = std::chrono::steady_clock::now();
  auto next_stats = start + std::chrono::duration<double>(interval);
  while (!g_stop && !shared.stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto now = std::chrono::steady_clock::now();
    if (timeout > 0 && std::chrono::duration<double>(now - start).count() >= timeout) break;
    if (g_dump) {
      g_dump = 0;
      print_stats(stats_as);
    }
    if (interval > 0 && now >= next_stats) {
      print_stats(stats_as);
      next_stats = now + std::chrono::duration<double>(interval);
    }
  }
  shared.stop.store(true);
  for (auto& t : threads) t.join();
  print_stats(stats_as);
  return 0;
}

}  // namespace np::tools
