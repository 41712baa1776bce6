// netpoll recv TARGET: print the datagrams a netpoll receive hook gets.
#include <poll.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "cli.h"
#include "client_options.h"
#include "commands.h"

namespace np::tools {
namespace {

constexpr const char* kHelp =
    "usage: netpoll recv TARGET [options]\n"
    "\n"
    "Receives through netpoll's validated receive path and prints one line\n"
    "per datagram its hook gets: SRC-IP:SRC-PORT ([SRC-IP]:SRC-PORT for IPv6),\n"
    "a space, the payload (one trailing newline dropped; a backslash as \\\\;\n"
    "other control bytes and non-ASCII as \\xHH). Also answers ARP (IPv6:\n"
    "neighbour solicitations) for the local IP.\n"
    "\n"
    "TARGET: [port]@[local-ip]/[dev],[peer-port]@<peer-ip>/ where port is\n"
    "the local port to receive on and peer-ip the only sender accepted\n"
    "(0.0.0.0, or :: for IPv6: anyone), e.g. 6666@10.0.0.2/eth0,@0.0.0.0/ or\n"
    "6666@fd77::5/eth0,@::/\n"
    "\n"
    "options:\n"
    "  --count N            stop after N datagrams (exit 1 if the timeout comes first)\n"
    "  --timeout S          stop after S seconds\n"
    "  --raw                write payloads as they are, without SRC or escaping\n"
    "  --trap               trap mode: consume every frame, answer ARP after each poll\n";

}  // namespace

int cmd_recv(int argc, char** argv) {
  ArgParser args;
  declare_client_options(args);
  args.option("count").option("timeout").flag("raw").flag("trap").flag("help");
  args.parse(argc, argv, 2);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    std::fputs(kClientOptionsHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("expected one TARGET");
  const std::uint64_t count = args.get_uint("count", 0, 1, UINT64_MAX);
  const double timeout = args.get_seconds("timeout", 0);
  const bool raw = args.has("raw");

  auto cfg = client_config(args, args.positional()[0], "netpoll recv");
  cfg.resolve_remote_mac = false;
  cfg.device.service_thread = false;  // we poll here, so the hook runs on this thread
  std::uint64_t got = 0;
  cfg.rx_hook = [&got, raw](core::Netpoll&, const core::RxInfo& info, std::span<const std::byte> payload) {
    std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
    if (raw) {
      std::fwrite(text.data(), 1, text.size(), stdout);
    } else {
      if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
      std::printf("%s %s\n", info.src_ip.with_port(info.src_port).c_str(), printable(text).c_str());
    }
    ++got;
  };
  auto np = core::Netpoll::setup(std::move(cfg));
  if (!np) {
    std::fprintf(stderr, "%s\n", np.error().message.c_str());
    return 1;
  }
  if (!args.has("quiet")) std::fputs((*np)->describe().c_str(), stderr);
  if (args.has("trap")) (*np)->shared().set_trap(true);

  install_stop_signals();
  const auto start = std::chrono::steady_clock::now();
  const int fd = (*np)->shared().device().fd();
  while (!stop_requested() && (count == 0 || got < count)) {
    if (timeout > 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= timeout) break;
    if ((*np)->poll() == 0) {
      std::fflush(stdout);
      pollfd pfd{fd, POLLIN, 0};
      ::poll(&pfd, fd >= 0 ? 1 : 0, 20);
    }
  }
  std::fflush(stdout);
  if (args.has("stats")) {
    std::fprintf(stderr, "{\"client\":%s,\"device\":%s}\n", (*np)->stats_json().c_str(),
                 (*np)->shared().stats_json().c_str());
  }
  return count_exit_status("recv", "datagrams", timeout, got, count);
}

}  // namespace np::tools
