// netpoll bench recv: netpoll's receive path over AF_PACKET and over AF_XDP
// at offered rates, side by side: what arrives, what is lost.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_net.h"
#include "cli.h"
#include "commands.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/dev/open.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/udp.h"

namespace np::tools {
namespace {

constexpr const char* kHelp =
    "usage: netpoll bench recv [--seconds S] [--rates R,R,...] [--size N] [--xdp-options OPTS]\n"
    "\n"
    "Offers UDP datagrams to a netpoll client (10.99.0.5:6666, an address only\n"
    "netpoll has, with its service thread polling, as a receiving client runs)\n"
    "over a veth pair between two namespaces it creates (and removes), at each\n"
    "rate in turn, once over packet:npb0 and once over xdp:npb0; prints what\n"
    "the client received and lost, and the device's own drop count. The\n"
    "sender is a bare AF_PACKET loop in the peer namespace (64 frames per\n"
    "kick, paced); the last rate, max, is as fast as it sends. A backend\n"
    "sustains a rate when the sender could offer 95 % of it and every\n"
    "datagram arrived (over veth the receiving side's work is done in the\n"
    "sender's softirq, so a slow receive path also slows the sender).\n"
    "Needs root.\n"
    "\n"
    "  --seconds S   per rate and backend (default 1)\n"
    "  --rates LIST  datagrams per second (default 50000,100000,200000,400000,max)\n"
    "  --size N      UDP payload bytes (default 64)\n"
    "  --xdp-options OPTS  the xdp device's options, e.g. frames=16384\n";

struct Run {
  std::uint64_t offered = 0;
  std::uint64_t received = 0;
  std::uint64_t device_drops = 0;
  double seconds = 0;
};

}  // namespace

int bench_recv(int argc, char** argv) {
  ArgParser args;
  args.option("seconds").option("rates").option("size").option("xdp-options").flag("help");
  args.parse(argc, argv, 3);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const double seconds = args.get_seconds("seconds", 1);
  const std::size_t size = args.get_uint("size", 64, 1, 1472);
  std::vector<double> rates;  // 0: as fast as the sender goes
  {
    const std::string list = args.get("rates").value_or("50000,100000,200000,400000,max");
    std::size_t at = 0;
    while (at <= list.size()) {
      const std::size_t comma = std::min(list.find(',', at), list.size());
      const std::string item = list.substr(at, comma - at);
      if (item == "max") {
        rates.push_back(0);
      } else {
        char* end = nullptr;
        const double r = std::strtod(item.c_str(), &end);
        if (item.empty() || *end != '\0' || r <= 0) throw UsageError("--rates: '" + item + "' is not a rate");
        rates.push_back(r);
      }
      at = comma + 1;
    }
  }
  if (::geteuid() != 0) {
    print_error("bench recv", "needs root: it creates network namespaces and uses AF_PACKET and AF_XDP");
    return 1;
  }
  BenchNet net;
  if (!net.ok) {
    print_error("bench recv", "could not create the veth pair between two namespaces");
    return 1;
  }
  const std::string xdp_options = args.get("xdp-options").value_or("");
  const std::string xdp_device = "xdp:npb0" + (xdp_options.empty() ? "" : "?" + xdp_options);
  const std::string a_mac = mac_in(net.a, "npb0");
  const std::string b_mac = mac_in(net.b, "npb1");

  // The sender: a bare device in b, one prebuilt frame.
  std::unique_ptr<dev::Device> sender;
  {
    InNetns in(net.b);
    auto d = dev::open_device("packet:npb1?bypass=1&tx_frames=1024");
    if (!d) {
      print_error("bench recv", d.error().message);
      return 1;
    }
    sender = std::move(*d);
  }
  const std::vector<std::byte> payload(size, std::byte{'r'});
  std::vector<std::byte> frame(42 + size);
  {
    const wire::UdpRepr udp{5555, 6666, payload};
    auto ip = wire::EthernetRepr{*MacAddr::parse(b_mac), *MacAddr::parse(a_mac), wire::ethertype::kIpv4}.emit(frame);
    auto u = wire::Ipv4Repr{Ipv4Addr(10, 99, 0, 2), Ipv4Addr(10, 99, 0, 5), wire::ip_proto::kUdp,
                            static_cast<std::uint16_t>(udp.buffer_len()), 64, 1, false, 0}
                 .emit(ip);
    udp.emit(u, Ipv4Addr(10, 99, 0, 2), Ipv4Addr(10, 99, 0, 5));
  }

  const auto run = [&](const std::string& device, double rate, std::string& error) {
    Run out;
    std::atomic<std::uint64_t> got{0};
    std::unique_ptr<core::Netpoll> np;
    {
      InNetns in(net.a);
      core::ClientConfig cfg;
      cfg.name = "bench";
      cfg.target = core::parse_targets("6666@10.99.0.5/" + device + ",@0.0.0.0/")->targets[0];
      cfg.rx_hook = [&got](core::Netpoll&, const core::RxInfo&, std::span<const std::byte>) {
        got.fetch_add(1, std::memory_order_relaxed);
      };
      auto r = core::Netpoll::setup(std::move(cfg));
      if (!r) {
        error = r.error().message;
        return out;
      }
      np = std::move(*r);
    }
    const auto drops_before = np->shared().device().stats().rx_dropped.value();
    const auto start = std::chrono::steady_clock::now();
    const auto stop = start + std::chrono::duration<double>(seconds);
    for (auto now = start; now < stop; now = std::chrono::steady_clock::now()) {
      const double elapsed = std::chrono::duration<double>(now - start).count();
      const auto due = rate > 0 ? static_cast<std::uint64_t>(elapsed * rate) : out.offered + 64;
      if (out.offered >= due) continue;  // spin: the pace is finer than the scheduler's
      const std::uint64_t burst = std::min<std::uint64_t>(due - out.offered, 64);
      for (std::uint64_t k = 0; k < burst; ++k) {
        const auto st = k + 1 == burst ? sender->transmit(frame) : sender->transmit_more(frame);
        if (st != dev::TxStatus::kOk) {
          sender->poll();
          break;
        }
        ++out.offered;
      }
    }
    sender->poll();
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // What is on its way arrives, then the count settles.
    std::uint64_t last = ~0ull;
    for (int i = 0; i < 50 && got.load() != last; ++i) {
      last = got.load();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    out.received = got.load();
    out.device_drops = np->shared().device().stats().rx_dropped.value() - drops_before;
    return out;
  };

  std::printf("netpoll bench recv: %zu-byte datagrams to a netpoll client over veth, %.1f s per rate and backend\n\n",
              size, seconds);
  std::printf("%-12s | %-44s | %-44s\n", "offered/s", "packet:npb0", xdp_device.c_str());
  std::printf("%-12s | %12s %12s %8s %9s | %12s %12s %8s %9s\n", "", "offered", "received", "lost", "dev drops",
              "offered", "received", "lost", "dev drops");
  bool xdp_never_worse = true;
  std::string xdp_error;
  for (const double rate : rates) {
    std::string error;
    const Run p = run("packet:npb0", rate, error);
    if (!error.empty()) {
      print_error("bench recv", error);
      return 1;
    }
    const Run x = xdp_error.empty() ? run(xdp_device, rate, xdp_error) : Run{};
    const auto cells = [](const Run& r) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%12.0f %12.0f %8llu %9llu", static_cast<double>(r.offered) / r.seconds,
                    static_cast<double>(r.received) / r.seconds,
                    static_cast<unsigned long long>(r.offered - std::min(r.offered, r.received)),
                    static_cast<unsigned long long>(r.device_drops));
      return std::string(buf);
    };
    char label[32];
    if (rate > 0) {
      std::snprintf(label, sizeof label, "%.0f", rate);
    } else {
      std::snprintf(label, sizeof label, "max");
    }
    std::printf("%-12s | %s | %s\n", label, cells(p).c_str(), xdp_error.empty() ? cells(x).c_str() : "(no AF_XDP)");
    std::fflush(stdout);
    // A backend sustains a rate when the sender could offer it (95 %: the
    // pacing's own slack) and every datagram arrived. The max row has no
    // rate to hold to: it is shown, not judged.
    const auto sustains = [&](const Run& r) {
      return r.received == r.offered &&
             static_cast<double>(r.offered) >= 0.95 * rate * r.seconds;
    };
    if (rate > 0 && sustains(p) && (!xdp_error.empty() || !sustains(x))) xdp_never_worse = false;
  }
  if (!xdp_error.empty()) std::printf("\nno AF_XDP rows: %s\n", xdp_error.c_str());
  std::printf("\ntarget: AF_XDP sustains every rate AF_PACKET sustains (offered and received without loss): %s\n",
              xdp_never_worse ? "met" : "NOT met");
  return 0;
}

}  // namespace np::tools
