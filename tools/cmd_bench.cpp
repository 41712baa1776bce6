// netpoll bench: benchmarks that print figures side by side in one run.
//
//   netpoll bench send   datagrams/s through netpoll's send path over a veth
//                        pair, next to a bare AF_PACKET loop on the same
//                        device (the ceiling) and kernel UDP sendto/sendmmsg,
//                        over AF_PACKET and AF_XDP.
//   netpoll bench recv   (bench_recv.cpp) the receive path over AF_PACKET and
//                        AF_XDP at offered rates: received, lost.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "bench_net.h"
#include "cli.h"
#include "commands.h"
#include "netpoll/base/bytes.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/dev/open.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/udp.h"

namespace np::tools {
namespace {

constexpr const char* kHelp =
    "usage: netpoll bench send [--seconds S] [--size N] [--bypass 0|1] [--peer drop|socket]\n"
    "\n"
    "Measures datagrams per second through netpoll's whole send path (pool,\n"
    "headers and checksums, transmit) over a veth pair between two network\n"
    "namespaces it creates (and removes), and in the same run:\n"
    "  bare AF_PACKET   the same device transmitting one prebuilt frame in a\n"
    "                   loop: the ceiling for netpoll\n"
    "  kernel sendto    a UDP socket, one datagram per system call\n"
    "  kernel sendmmsg  a UDP socket, 64 datagrams per system call\n"
    "  AF_XDP           netpoll and the bare loop again over xdp:npb0 (an\n"
    "                   AF_XDP socket, copy mode on veth), the bare loop on\n"
    "                   netpoll's own xdp device (one socket per queue)\n"
    "netpoll and the bare loops run twice: kicking the device for every\n"
    "datagram (send_udp), and once per 64 (send_udp with Flush::kLater, the\n"
    "xmit_more of a sender draining a backlog, as netconsole's does), and\n"
    "netpoll both ways again over IPv6 (fd99::1 to fd99::2, a second client\n"
    "on the same device), set against its IPv4 rows.\n"
    "Each method runs for --seconds in all (default 3), in 100 ms slices taken\n"
    "in turn with the others, so that a slow spell of the machine is shared\n"
    "by all of them; the rate is total datagrams / total time. Needs root\n"
    "(namespaces, AF_PACKET).\n"
    "\n"
    "  --size N      UDP payload bytes (default 64)\n"
    "  --peer drop   the peer namespace drops every frame at ingress (nftables\n"
    "                netdev hook), so each method is charged for its own send\n"
    "                path and the veth, not for the peer's IP/UDP stack, which\n"
    "                veth runs inside the sender's system call (default)\n"
    "  --peer socket the peer's kernel takes every datagram up to a UDP socket\n"
    "  --bypass 0|1  PACKET_QDISC_BYPASS for both AF_PACKET methods (default 1)\n";

int bench_send(int argc, char** argv) {
  ArgParser args;
  args.option("seconds").option("size").option("bypass").option("peer").flag("help");
  args.parse(argc, argv, 3);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const double seconds = args.get_seconds("seconds", 3);
  const std::size_t size = args.get_uint("size", 64, 1, 1472);
  const bool bypass = args.get_uint("bypass", 1, 0, 1) == 1;
  const std::string peer_mode = args.get("peer").value_or("drop");
  if (peer_mode != "drop" && peer_mode != "socket") throw UsageError("--peer must be drop or socket");
  if (::geteuid() != 0) {
    print_error("bench send", "needs root: it creates network namespaces and uses AF_PACKET");
    return 1;
  }
  BenchNet net;
  if (!net.ok) {
    print_error("bench send", "could not create the veth pair between two namespaces");
    return 1;
  }
  std::string error;
  const std::string peer_mac = net.prepare_peer(peer_mode == "drop", error);
  if (peer_mac.empty()) {
    print_error("bench send", error);
    return 1;
  }
  const std::string device = std::string("packet:npb0") + (bypass ? "?bypass=1" : "");
  const std::vector<std::byte> payload(size, std::byte{'x'});

  // IPv6 addresses for the IPv6 rows, usable at once (no duplicate
  // address detection).
  if (run_cmd("ip -n " + net.a + " -6 addr add fd99::1/64 dev npb0 nodad") != 0 ||
      run_cmd("ip -n " + net.b + " -6 addr add fd99::2/64 dev npb1 nodad") != 0) {
    print_error("bench send", "cannot add the IPv6 addresses to the veth pair");
    return 1;
  }
  // Kernel sockets in b drain what arrives, so the peer does real work.
  int sink = -1, sink6 = -1;
  {
    InNetns in(net.b);
    sink = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in sa = peer_addr();
    sink6 = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in6 sa6{};
    sa6.sin6_family = AF_INET6;
    sa6.sin6_port = htons(6666);
    ::inet_pton(AF_INET6, "fd99::2", &sa6.sin6_addr);
    if (::bind(sink, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::bind(sink6, reinterpret_cast<sockaddr*>(&sa6), sizeof sa6) != 0) {
      print_error("bench send", "cannot bind the receiving sockets");
      return 1;
    }
  }

  struct Result {
    const char* name;
    double rate = 0;
    Slice total;
  };
  std::vector<Result> results;
  for (const char* name : {"netpoll, 64 per kick", "bare AF_PACKET, 64/kick", "netpoll, kick each",
                           "bare AF_PACKET, each", "kernel sendto", "kernel sendmmsg (64)",
                           "netpoll IPv6, 64 per kick", "netpoll IPv6, kick each",
                           "netpoll AF_XDP, 64/kick", "bare AF_XDP, 64/kick", "netpoll AF_XDP, kick each",
                           "bare AF_XDP, each"}) {
    results.push_back(Result{name, 0, Slice{}});
  }

  // 1. netpoll, over IPv4 and over IPv6 (one device, two clients)
  const auto client = [&](const std::string& target) -> std::unique_ptr<core::Netpoll> {
    InNetns in(net.a);
    core::ClientConfig cfg;
    cfg.name = "bench";
    auto t = core::parse_targets(target);
    if (!t) {
      print_error("bench send", t.error().message);
      return nullptr;
    }
    cfg.target = t->targets[0];
    cfg.device.service_thread = false;
    auto r = core::Netpoll::setup(std::move(cfg));
    if (!r) {
      print_error("bench send", r.error().message);
      return nullptr;
    }
    return std::move(*r);
  };
  const std::unique_ptr<core::Netpoll> np = client("6665@10.99.0.1/" + device + ",6666@10.99.0.2/" + peer_mac);
  const std::unique_ptr<core::Netpoll> np6 = client("6665@fd99::1/" + device + ",6666@fd99::2/" + peer_mac);
  if (np == nullptr || np6 == nullptr) return 1;
  // 1b. netpoll over AF_XDP on the same interface (its bare loop, below,
  // transmits on this client's device: one AF_XDP socket per queue).
  std::unique_ptr<core::Netpoll> npx;
  std::string xdp_error;
  {
    InNetns in(net.a);
    core::ClientConfig cfg;
    cfg.name = "bench";
    cfg.target = core::parse_targets("6665@10.99.0.1/xdp:npb0,6666@10.99.0.2/" + peer_mac)->targets[0];
    cfg.device.service_thread = false;
    auto r = core::Netpoll::setup(std::move(cfg));
    if (r) {
      npx = std::move(*r);
    } else {
      xdp_error = r.error().message;
    }
  }
  const std::size_t methods_run = npx ? results.size() : 8;
  // 2. bare loop: the frame netpoll would build, prebuilt once.
  std::unique_ptr<dev::Device> bare;
  std::vector<std::byte> frame(42 + size);
  {
    InNetns in(net.a);
    auto d = dev::open_device(device);
    if (!d) {
      print_error("bench send", d.error().message);
      return 1;
    }
    bare = std::move(*d);
    const wire::UdpRepr udp{6665, 6666, payload};
    auto ip = wire::EthernetRepr{bare->mac(), *MacAddr::parse(peer_mac), wire::ethertype::kIpv4}.emit(frame);
    auto u = wire::Ipv4Repr{Ipv4Addr(10, 99, 0, 1), Ipv4Addr(10, 99, 0, 2), wire::ip_proto::kUdp,
                            static_cast<std::uint16_t>(udp.buffer_len()), 64, 1, false, 0}
                 .emit(ip);
    udp.emit(u, Ipv4Addr(10, 99, 0, 1), Ipv4Addr(10, 99, 0, 2));
  }
  // 3 and 4: kernel UDP sockets in a.
  int udp_fd = -1;
  {
    InNetns in(net.a);
    udp_fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  }
  const sockaddr_in to = peer_addr();
  constexpr int kBatch = 64;
  std::vector<mmsghdr> msgs(kBatch);
  std::vector<iovec> iovs(kBatch);
  for (int i = 0; i < kBatch; ++i) {
    iovs[i] = {const_cast<std::byte*>(payload.data()), payload.size()};
    msgs[i].msg_hdr = {};
    msgs[i].msg_hdr.msg_name = const_cast<sockaddr_in*>(&to);
    msgs[i].msg_hdr.msg_namelen = sizeof to;
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  std::vector<std::byte> drain(2048);
  const auto drain_sink = [&] {
    for (const int fd : {sink, sink6}) {
      while (::recv(fd, drain.data(), drain.size(), MSG_DONTWAIT) > 0) {
      }
    }
  };

  std::printf("netpoll bench send: %zu-byte payloads over veth (peer: %s), %.1f s per method in 100 ms slices\n", size,
              peer_mode == "drop" ? "drops at ingress" : "UDP socket", seconds);
  std::fflush(stdout);
  std::uint64_t burst = 0;  // position in a burst of kBatch
  const std::function<std::uint64_t()> methods[] = {
      [&] {
        const auto flush = ++burst % kBatch == 0 ? core::Flush::kNow : core::Flush::kLater;
        return np->send_udp(payload, flush).has_value() ? 1u : 0u;
      },
      [&] {
        const bool last = ++burst % kBatch == 0;
        const auto st = last ? bare->transmit(frame) : bare->transmit_more(frame);
        if (st == dev::TxStatus::kOk) return 1u;
        bare->poll();
        return 0u;
      },
      [&] { return np->send_udp(payload).has_value() ? 1u : 0u; },
      [&] {
        if (bare->transmit(frame) == dev::TxStatus::kOk) return 1u;
        bare->poll();
        return 0u;
      },
      [&] {
        return ::sendto(udp_fd, payload.data(), payload.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                        sizeof to) > 0
                   ? 1u
                   : 0u;
      },
      [&] {
        const int n = ::sendmmsg(udp_fd, msgs.data(), kBatch, 0);
        return n > 0 ? static_cast<unsigned>(n) : 0u;
      },
      [&] {
        const auto flush = ++burst % kBatch == 0 ? core::Flush::kNow : core::Flush::kLater;
        return np6->send_udp(payload, flush).has_value() ? 1u : 0u;
      },
      [&] { return np6->send_udp(payload).has_value() ? 1u : 0u; },
      [&] {
        const auto flush = ++burst % kBatch == 0 ? core::Flush::kNow : core::Flush::kLater;
        return npx->send_udp(payload, flush).has_value() ? 1u : 0u;
      },
      [&] {
        dev::Device& x = npx->shared().device();
        const bool last = ++burst % kBatch == 0;
        const auto st = last ? x.transmit(frame) : x.transmit_more(frame);
        if (st == dev::TxStatus::kOk) return 1u;
        x.poll();
        return 0u;
      },
      [&] { return npx->send_udp(payload).has_value() ? 1u : 0u; },
      [&] {
        dev::Device& x = npx->shared().device();
        if (x.transmit(frame) == dev::TxStatus::kOk) return 1u;
        x.poll();
        return 0u;
      },
  };
  constexpr double kSlice = 0.1;
  const int slices = std::max(1, static_cast<int>(seconds / kSlice + 0.5));
  for (int round = 0; round < slices; ++round) {
    for (std::size_t m = 0; m < methods_run; ++m) {
      const Slice sl = measure(kSlice, methods[m]);
      np->flush();
      np6->flush();
      bare->poll();
      if (npx) {
        npx->flush();
        npx->shared().device().poll();
      }
      drain_sink();
      results[m].total.datagrams += sl.datagrams;
      results[m].total.seconds += sl.seconds;
    }
  }
  results.resize(methods_run);
  for (auto& r : results) r.rate = static_cast<double>(r.total.datagrams) / r.total.seconds;
  const double bare_rate = results[1].rate;
  const double sendto_rate = results[4].rate;
  std::printf("\n%-26s %14s %12s %12s\n", "method", "datagrams/s", "vs bare", "vs sendto");
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    // Each netpoll row against the bare row of its device with the same
    // kick pattern (the AF_XDP bare rows against themselves; IPv6 against
    // IPv4's bare rows, whose frame is 20 bytes shorter); the kernel's rows
    // against bare AF_PACKET.
    const double ceiling = i == 2 || i == 7 ? results[3].rate
                           : i >= 8         ? results[i % 2 == 0 ? i + 1 : i].rate
                                            : bare_rate;
    std::printf("%-26s %14.0f %11.1f%% %11.2fx\n", r.name, r.rate, 100.0 * r.rate / ceiling, r.rate / sendto_rate);
  }
  const auto& st = np->shared().stats();
  std::printf("\nnetpoll drops: %llu (busy retries %llu, deferred %llu)\n",
              static_cast<unsigned long long>(st.tx_drops.total()), static_cast<unsigned long long>(st.tx_retries.value()),
              static_cast<unsigned long long>(st.tx_deferred.value()));
  const double batched = results[0].rate / bare_rate, each = results[2].rate / results[3].rate;
  std::printf("targets (netpoll against bare AF_PACKET): >= 95%% at 64 per kick: %s (%.1f%%); >= 95%% kicking "
              "each: %s (%.1f%%); >= 1.7x sendto: %s (%.2fx)\n",
              batched >= 0.95 ? "met" : "NOT met", 100.0 * batched, each >= 0.95 ? "met" : "NOT met", 100.0 * each,
              results[0].rate >= 1.7 * sendto_rate ? "met" : "NOT met", results[0].rate / sendto_rate);
  const double v6_batched = results[6].rate / results[0].rate, v6_each = results[7].rate / results[2].rate;
  std::printf("IPv6 against IPv4 (netpoll): 64 per kick %.1f%%, kick each %.1f%%; within 5%%: %s\n",
              100.0 * v6_batched, 100.0 * v6_each, v6_batched >= 0.95 && v6_each >= 0.95 ? "met" : "NOT met");
  if (npx) {
    const double xdp_rate = results[8].rate;
    std::printf("targets (netpoll over AF_XDP, 64 per kick): >= 2.5x sendto: %s (%.2fx); >= 1.3x netpoll over "
                "AF_PACKET: %s (%.2fx)\n",
                xdp_rate >= 2.5 * sendto_rate ? "met" : "NOT met", xdp_rate / sendto_rate,
                xdp_rate >= 1.3 * results[0].rate ? "met" : "NOT met", xdp_rate / results[0].rate);
  } else {
    std::printf("no AF_XDP rows: %s\n", xdp_error.c_str());
  }
  ::close(udp_fd);
  ::close(sink);
  ::close(sink6);
  return 0;
}

}  // namespace

constexpr const char* kBenchHelp =
    "usage: netpoll bench BENCHMARK [options]   (netpoll bench BENCHMARK --help for each)\n"
    "\n"
    "Programs that print figures, each set side by side with its physical\n"
    "limit or the alternative, measured in the same run:\n"
    "  send     datagrams/s through the send path against a bare AF_PACKET\n"
    "           loop, kernel sendto/sendmmsg and AF_XDP\n"
    "  recv     receive over AF_PACKET and AF_XDP at given rates: lost or not\n"
    "  console  records/s from log() to the wire and log()'s latency\n"
    "  listen   netpoll listen's CPU per datagram against a bare recvmmsg\n"
    "           drain loop\n"
    "  crash    crash record latency (in-process, witness, floor) and\n"
    "           netpoll run's forwarding rate (--path forward)\n"
    "  dumpd    the dump server's MB/s against a bare acknowledging loop\n"
    "  dump     a core's MB/s against the raw send path and a TCP stream\n"
    "Most need root: they create network namespaces (and remove them).\n";

int cmd_bench(int argc, char** argv) {
  if (argc < 3 || std::string_view(argv[2]) == "--help") {
    std::fputs(kBenchHelp, argc < 3 ? stderr : stdout);
    return argc < 3 ? 2 : 0;
  }
  const std::string_view which = argv[2];
  if (which == "send") return bench_send(argc, argv);
  if (which == "console") return bench_console(argc, argv);
  if (which == "listen") return bench_listen(argc, argv);
  if (which == "crash") return bench_crash(argc, argv);
  if (which == "dumpd") return bench_dumpd(argc, argv);
  if (which == "dump") return bench_dump(argc, argv);
  if (which == "recv") return bench_recv(argc, argv);
  throw UsageError("unknown benchmark '" + std::string(which) +
                   "' (known: send, recv, console, listen, crash, dumpd, dump)");
}

}  // namespace np::tools
