// netpoll send TARGET [MESSAGE...]: datagrams through the whole netpoll path.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "client_options.h"
#include "commands.h"
#include "netpoll/base/bytes.h"

namespace np::tools {
namespace {

constexpr const char* kHelp =
    "usage: netpoll send TARGET [options] [MESSAGE...]\n"
    "\n"
    "Sends datagrams through netpoll: frames built in a preallocated pool,\n"
    "transmitted on the device directly, busy devices retried, the rest\n"
    "queued and retried in order. The datagram is the MESSAGE words joined\n"
    "by spaces; with no MESSAGE, one datagram per line of standard input.\n"
    "\n"
    "TARGET is netconsole's option string:\n"
    "  [src-port]@[src-ip]/[dev],[tgt-port]@<tgt-ip>/[tgt-mac]\n"
    "  e.g. 6665@10.0.0.1/eth0,6666@10.0.0.2/   (tgt-mac resolved by ARP)\n"
    "       6665@/eth0,6666@fd77::1/             (IPv6: neighbour discovery)\n"
    "\n"
    "options:\n"
    "  --linger S           at exit, wait up to S seconds for queued frames (default 2)\n";

}  // namespace

int cmd_send(int argc, char** argv) {
  ArgParser args;
  declare_client_options(args);
  args.option("linger").flag("help");
  args.parse(argc, argv, 2);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    std::fputs(kClientOptionsHelp, stdout);
    return 0;
  }
  if (args.positional().empty()) throw UsageError("expected a TARGET");
  auto cfg = client_config(args, args.positional()[0], "netpoll send");
  const double linger = args.get_seconds("linger", 2);

  auto np = core::Netpoll::setup(std::move(cfg));
  if (!np) {
    std::fprintf(stderr, "%s\n", np.error().message.c_str());
    return 1;
  }
  if (!args.has("quiet")) std::fputs((*np)->describe().c_str(), stderr);

  std::uint64_t failed = 0;
  const auto send = [&](const std::string& msg) {
    if (auto r = (*np)->send_udp(np::as_bytes(msg)); !r) {
      ++failed;
      if (r.error() == Errc::kTooBig) {
        std::fprintf(stderr, "netpoll send: message of %zu bytes exceeds the %zu bytes a datagram can carry on %s\n",
                     msg.size(), (*np)->max_payload(), (*np)->target().device.c_str());
      }
    }
  };
  if (args.positional().size() > 1) {
    std::string joined;
    for (std::size_t i = 1; i < args.positional().size(); ++i) joined += (i > 1 ? " " : "") + args.positional()[i];
    send(joined);
  } else {
    std::string line;
    while (std::getline(std::cin, line)) send(line);
  }

  // Queued frames go out before we leave, within the linger time.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(linger);
  while ((*np)->shared().deferred_depth() > 0 && std::chrono::steady_clock::now() < deadline) {
    (*np)->shared().service_tx();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const std::size_t left = (*np)->shared().deferred_depth();
  if (left > 0) std::fprintf(stderr, "netpoll send: %zu datagrams still queued at exit (device busy)\n", left);
  if (args.has("stats")) {
    std::fprintf(stderr, "{\"client\":%s,\"device\":%s}\n", (*np)->stats_json().c_str(),
                 (*np)->shared().stats_json().c_str());
  }
  return failed == 0 && left == 0 ? 0 : 1;
}

}  // namespace np::tools
