// netpoll inject DEVICE: hand-built UDP frames straight onto a device.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "netpoll/dev/open.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/udp.h"

namespace np::tools {
namespace {

constexpr const char* kHelp =
    "usage: netpoll inject DEVICE --from IP[:PORT] --to IP[:PORT] [options] [MESSAGE...]\n"
    "\n"
    "Builds Ethernet/IPv4/UDP frames with netpoll's wire layer and transmits\n"
    "them on DEVICE as they are: no ARP, no queueing. The datagram is the\n"
    "MESSAGE words joined by spaces, or, with no MESSAGE, one datagram per\n"
    "line of standard input.\n"
    "\n"
    "  --from IP[:PORT]   source address (port default 6665)\n"
    "  --to IP[:PORT]     destination address (port default 6666)\n"
    "  --to-mac MAC       destination MAC (default ff:ff:ff:ff:ff:ff)\n"
    "  --from-mac MAC     source MAC (default: the device's)\n"
    "  --count N          send each datagram N times (default 1)\n"
    "\n"
    "example: netpoll inject packet:eth0 --from 10.0.0.1 --to 10.0.0.2 --to-mac 02:00:00:00:00:02 hello\n";

struct Endpoint {
  Ipv4Addr ip;
  std::uint16_t port;
};

Endpoint parse_endpoint(const std::string& opt, const std::string& text, std::uint16_t default_port) {
  const auto colon = text.find(':');
  auto ip = Ipv4Addr::parse(std::string_view(text).substr(0, colon));
  if (!ip) throw UsageError("--" + opt + " '" + text + "': expected IPv4[:PORT]");
  if (colon == std::string::npos) return {*ip, default_port};
  const std::string port = text.substr(colon + 1);
  unsigned long v = 0;
  try {
    std::size_t used = 0;
    v = std::stoul(port, &used);
    if (used != port.size() || v == 0 || v > 65535) throw UsageError("");
  } catch (const std::exception&) {
    throw UsageError("--" + opt + " '" + text + "': port must be 1..65535");
  }
  return {*ip, static_cast<std::uint16_t>(v)};
}

MacAddr parse_mac(const std::string& opt, const std::string& text) {
  auto m = MacAddr::parse(text);
  if (!m) throw UsageError("--" + opt + " '" + text + "': expected a MAC like 02:00:00:00:00:01");
  return *m;
}

}  // namespace

int cmd_inject(int argc, char** argv) {
  ArgParser args;
  args.option("from").option("to").option("to-mac").option("from-mac").option("count").flag("help");
  args.parse(argc, argv, 2);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (args.positional().empty()) throw UsageError("expected a DEVICE");
  if (!args.has("from")) throw UsageError("--from IP[:PORT] is required");
  if (!args.has("to")) throw UsageError("--to IP[:PORT] is required");
  const Endpoint from = parse_endpoint("from", *args.get("from"), 6665);
  const Endpoint to = parse_endpoint("to", *args.get("to"), 6666);
  const MacAddr to_mac = args.has("to-mac") ? parse_mac("to-mac", *args.get("to-mac")) : MacAddr::broadcast();
  const std::uint64_t count = args.get_uint("count", 1, 1, 100'000'000);

  std::vector<std::string> messages;
  if (args.positional().size() > 1) {
    std::string joined;
    for (std::size_t i = 1; i < args.positional().size(); ++i) {
      if (i > 1) joined += ' ';
      joined += args.positional()[i];
    }
    messages.push_back(joined);
  }

  auto dev = dev::open_device(args.positional()[0]);
  if (!dev) {
    print_error("inject", dev.error().message);
    return 1;
  }
  const MacAddr from_mac = args.has("from-mac") ? parse_mac("from-mac", *args.get("from-mac")) : (*dev)->mac();
  const std::size_t max_payload = (*dev)->mtu() - wire::Ipv4Repr::kHeaderLen - wire::UdpPacket<std::byte>::kHeaderLen;

  std::vector<std::byte> frame(dev::Device::kEthHeaderLen + (*dev)->mtu());
  std::uint16_t ident = 1;
  std::uint64_t sent = 0, bytes = 0;
  const auto send_one = [&](const std::string& msg) -> bool {
    if (msg.size() > max_payload) {
      print_error("inject", "message of " + std::to_string(msg.size()) + " bytes does not fit the MTU (at most " +
                                std::to_string(max_payload) + ")");
      return false;
    }
    const wire::UdpRepr udp{from.port, to.port, as_bytes(msg)};
    auto ip_area = wire::EthernetRepr{from_mac, to_mac, wire::ethertype::kIpv4}.emit(frame);
    auto udp_area = wire::Ipv4Repr{from.ip, to.ip, wire::ip_proto::kUdp, static_cast<std::uint16_t>(udp.buffer_len()),
                                   64, ident++, false, 0}
                        .emit(ip_area);
    udp.emit(udp_area, from.ip, to.ip);
    const auto len = dev::Device::kEthHeaderLen + wire::Ipv4Repr::kHeaderLen + udp.buffer_len();
    // A busy device gets up to a second to drain, polled every 50 µs.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    for (;;) {
      const auto st = (*dev)->transmit(std::span<const std::byte>(frame).first(len));
      if (st == dev::TxStatus::kOk) break;
      if (st == dev::TxStatus::kError || std::chrono::steady_clock::now() > deadline) {
        print_error("inject", std::string("transmit failed: device ") + dev::to_string(st));
        return false;
      }
      (*dev)->poll();
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    ++sent;
    bytes += msg.size();
    return true;
  };

  bool ok = true;
  if (!messages.empty()) {
    for (std::uint64_t i = 0; i < count && ok; ++i) ok = send_one(messages[0]);
  } else {
    std::string line;
    while (ok && std::getline(std::cin, line)) {
      for (std::uint64_t i = 0; i < count && ok; ++i) ok = send_one(line);
    }
  }
  (*dev)->poll();
  std::fprintf(stderr, "netpoll inject: sent %llu datagrams (%llu payload bytes) on %s\n",
               static_cast<unsigned long long>(sent), static_cast<unsigned long long>(bytes),
               std::string((*dev)->name()).c_str());
  return ok ? 0 : 1;
}

}  // namespace np::tools
