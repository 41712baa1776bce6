// netpoll bench console: records per second from Logger::log() to the wire
// over a veth pair, and the latency of log() itself, next to the send
// path's own rate measured in the same run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bench_net.h"
#include "cli.h"
#include "commands.h"
#include "netpoll/console/logger.h"

namespace np::tools {
namespace {

constexpr const char* kHelp =
    "usage: netpoll bench console [--seconds S] [--peer drop|socket]\n"
    "\n"
    "Over a veth pair between two namespaces it creates (and removes):\n"
    "  send path        netpoll send_udp, 64-byte payloads, 64 per kick (as\n"
    "                   `netpoll bench send` measures it): the reference\n"
    "  console          records/s from log() to the wire: one thread logs a\n"
    "                   steady stream, keeping the ring at most half full, the\n"
    "                   logger's sender thread sends (extended format, ~70-byte\n"
    "                   datagrams)\n"
    "  log() latency    p50, p99, p99.9 and max of single log() calls, while\n"
    "                   the sender runs: paced at half the sustained rate, and\n"
    "                   flat out (ring full: the call drops and counts)\n"
    "  AF_XDP           the send path and the console again over xdp:npb0\n"
    "                   (an AF_XDP socket on the same interface), in the\n"
    "                   same slices\n"
    "  --seconds S      per phase (default 3)\n"
    "  --peer           drop (default) or socket, as for bench send\n";

struct Percentiles {
  double p50, p99, p999, max;
};

Percentiles percentiles(std::vector<std::uint32_t>& ns) {
  if (ns.empty()) return {0, 0, 0, 0};
  std::sort(ns.begin(), ns.end());
  const auto at = [&](double q) { return static_cast<double>(ns[static_cast<std::size_t>(q * (ns.size() - 1))]); };
  return {at(0.50), at(0.99), at(0.999), static_cast<double>(ns.back())};
}

}  // namespace

int bench_console(int argc, char** argv) {
  ArgParser args;
  args.option("seconds").option("peer").flag("help");
  args.parse(argc, argv, 3);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const double seconds = args.get_seconds("seconds", 3);
  const std::string peer_mode = args.get("peer").value_or("drop");
  if (peer_mode != "drop" && peer_mode != "socket") throw UsageError("--peer must be drop or socket");
  if (::geteuid() != 0) {
    print_error("bench console", "needs root: it creates network namespaces and uses AF_PACKET");
    return 1;
  }
  BenchNet net;
  if (!net.ok) {
    print_error("bench console", "could not create the veth pair between two namespaces");
    return 1;
  }
  std::string error;
  const std::string peer_mac = net.prepare_peer(peer_mode == "drop", error);
  if (peer_mac.empty()) {
    print_error("bench console", error);
    return 1;
  }
  const std::string device = "packet:npb0?bypass=1";

  // Both set up first: the send path's client (the reference: 64-byte
  // payloads, 64 per kick) and the logger. They share the device.
  std::unique_ptr<core::Netpoll> np;
  std::unique_ptr<console::Logger> lg;
  {
    InNetns in(net.a);
    core::ClientConfig cfg;
    cfg.target = core::parse_targets("6665@10.99.0.1/" + device + ",6666@10.99.0.2/" + peer_mac)->targets[0];
    cfg.device.service_thread = false;
    auto r = core::Netpoll::setup(std::move(cfg));
    if (!r) {
      print_error("bench console", r.error().message);
      return 1;
    }
    np = std::move(*r);
    console::LoggerConfig lc;
    lc.name = "bench";
    lc.ring_records = 4096;
    console::TargetConfig t;
    t.target = core::parse_targets("+6665@10.99.0.1/" + device + ",6666@10.99.0.2/" + peer_mac)->targets[0];
    lc.targets.push_back(std::move(t));
    auto l = console::Logger::create(std::move(lc));
    if (!l) {
      print_error("bench console", l.error().message);
      return 1;
    }
    lg = std::move(*l);
  }
  // The same pair over AF_XDP (absent, with the reason printed, where the
  // interface takes no XDP program).
  std::unique_ptr<core::Netpoll> npx;
  std::unique_ptr<console::Logger> lgx;
  std::string xdp_error;
  {
    InNetns in(net.a);
    core::ClientConfig cfg;
    cfg.target = core::parse_targets("6665@10.99.0.1/xdp:npb0,6666@10.99.0.2/" + peer_mac)->targets[0];
    cfg.device.service_thread = false;
    auto r = core::Netpoll::setup(std::move(cfg));
    if (r) {
      npx = std::move(*r);
      console::LoggerConfig lc;
      lc.name = "bench";
      lc.ring_records = 4096;
      console::TargetConfig t;
      t.target = core::parse_targets("+6665@10.99.0.1/xdp:npb0,6666@10.99.0.2/" + peer_mac)->targets[0];
      lc.targets.push_back(std::move(t));
      auto l = console::Logger::create(std::move(lc));
      if (l) {
        lgx = std::move(*l);
      } else {
        xdp_error = l.error().message;
        npx.reset();
      }
    } else {
      xdp_error = r.error().message;
    }
  }
  const std::vector<std::byte> payload(64, std::byte{'x'});
  std::uint64_t burst = 0;
  const auto send_one = [&] {
    const auto f = ++burst % 64 == 0 ? core::Flush::kNow : core::Flush::kLater;
    return np->send_udp(payload, f).has_value() ? 1u : 0u;
  };
  const auto send_one_xdp = [&] {
    const auto f = ++burst % 64 == 0 ? core::Flush::kNow : core::Flush::kLater;
    return npx->send_udp(payload, f).has_value() ? 1u : 0u;
  };

  // Sustained: a steady stream as fast as the sender takes it. The producer
  // keeps the ring at most half full (a producer hammering a full ring
  // measures cache-line fights, not logging). Interleaved with the send
  // path in 100 ms slices, so that both see the same machine.
  const std::uint64_t half = lg->ring_records() / 2;
  const auto start_over = lg->ring_overflows();
  Slice send_total, console_total, send_total_xdp, console_total_xdp;
  std::uint64_t i = 0;
  // One slice of each: the send path, then the console, on one device.
  const auto slice = [&](core::Netpoll& client, console::Logger& logger, const std::function<std::uint64_t()>& one,
                         Slice& send_sum, Slice& console_sum) {
    const auto& records = logger.target_stats(0).records;
    logger.flush(std::chrono::seconds(1));  // each slice has the device to itself
    const Slice s = measure(0.1, one);
    client.flush();
    send_sum.datagrams += s.datagrams;
    send_sum.seconds += s.seconds;

    const auto before = records.value();
    const auto t0 = std::chrono::steady_clock::now();
    const auto end = t0 + std::chrono::milliseconds(100);
    while (std::chrono::steady_clock::now() < end) {
      if (logger.pending() >= half) {
        // Nap rather than spin: polling the sender's progress in a tight
        // loop would bounce its counters' cache lines on every record.
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        continue;
      }
      for (int k = 0; k < 64; ++k) logger.log(console::Level::kInfo, "bench record {} of the console benchmark", i++);
    }
    // What the stream left in the ring goes out before the clock stops.
    logger.flush(std::chrono::seconds(1));
    console_sum.datagrams += records.value() - before;
    console_sum.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const int slices = std::max(1, static_cast<int>(seconds / 0.1 + 0.5));
  for (int round = 0; round < slices; ++round) {
    slice(*np, *lg, send_one, send_total, console_total);
    if (npx) slice(*npx, *lgx, send_one_xdp, send_total_xdp, console_total_xdp);
  }
  const double send_rate = static_cast<double>(send_total.datagrams) / send_total.seconds;
  const double console_rate = static_cast<double>(console_total.datagrams) / console_total.seconds;
  const auto overflows = lg->ring_overflows() - start_over;
  lg->flush(std::chrono::seconds(5));

  // Latency of single calls: paced at half the sustained rate, then flat out.
  const auto sample = [&](double rate) {
    std::vector<std::uint32_t> ns;
    ns.reserve(static_cast<std::size_t>(seconds * std::max(rate, 1e6)) + 1024);
    const auto begin = std::chrono::steady_clock::now();
    const auto stop = begin + std::chrono::duration<double>(seconds);
    std::uint64_t n = 0;
    for (auto now = begin; now < stop; now = std::chrono::steady_clock::now()) {
      if (rate > 0) {
        const auto due = begin + std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * static_cast<double>(n) / rate));
        if (now < due) continue;  // spin: sleeping would measure the scheduler
      }
      const auto a = std::chrono::steady_clock::now();
      lg->log(console::Level::kInfo, "bench record {} of the console benchmark", n);
      const auto b = std::chrono::steady_clock::now();
      ns.push_back(static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count()));
      ++n;
    }
    lg->flush(std::chrono::seconds(5));
    return ns;
  };
  auto paced = sample(console_rate / 2);
  auto flat = sample(0);
  const Percentiles pp = percentiles(paced);
  const Percentiles pf = percentiles(flat);

  std::printf("netpoll bench console: veth (peer: %s), %.1f s per phase\n\n",
              peer_mode == "drop" ? "drops at ingress" : "UDP socket", seconds);
  std::printf("%-40s %14.0f /s\n", "send path (64-byte datagrams, 64/kick)", send_rate);
  std::printf("%-40s %14.0f /s  (%.1f%% of the send path; %llu dropped at a full ring)\n",
              "console records, log() to the wire", console_rate, 100.0 * console_rate / send_rate,
              static_cast<unsigned long long>(overflows));
  if (npx) {
    const double send_rate_xdp = static_cast<double>(send_total_xdp.datagrams) / send_total_xdp.seconds;
    const double console_rate_xdp = static_cast<double>(console_total_xdp.datagrams) / console_total_xdp.seconds;
    std::printf("%-40s %14.0f /s  (%.2fx the send path over AF_PACKET)\n", "send path over AF_XDP", send_rate_xdp,
                send_rate_xdp / send_rate);
    std::printf("%-40s %14.0f /s  (%.1f%% of its send path; %.2fx the console over AF_PACKET)\n",
                "console records over AF_XDP", console_rate_xdp, 100.0 * console_rate_xdp / send_rate_xdp,
                console_rate_xdp / console_rate);
  } else {
    std::printf("no AF_XDP rows: %s\n", xdp_error.c_str());
  }
  std::printf("\n%-28s %10s %10s %10s %10s %12s\n", "log() latency (ns)", "p50", "p99", "p99.9", "max", "calls");
  std::printf("%-28s %10.0f %10.0f %10.0f %10.0f %12zu\n", "paced at half that rate", pp.p50, pp.p99, pp.p999, pp.max,
              paced.size());
  std::printf("%-28s %10.0f %10.0f %10.0f %10.0f %12zu\n", "flat out", pf.p50, pf.p99, pf.p999, pf.max, flat.size());
  std::printf("\n(steady_clock::now() around each call adds ~20-40 ns to every figure)\n");
  std::printf("targets: log() p99 < 1 us: %s (%.0f ns paced); console >= 80%% of the send path: %s (%.1f%%)\n",
              pp.p99 < 1000 ? "met" : "NOT met", pp.p99, console_rate >= 0.8 * send_rate ? "met" : "NOT met",
              100.0 * console_rate / send_rate);
  return 0;
}

}  // namespace np::tools
