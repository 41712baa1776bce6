// netpoll dump DEVICE: print every frame that arrives on a device.
#include <poll.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

#include "cli.h"
#include "commands.h"
#include "frame_text.h"
#include "netpoll/dev/open.h"

namespace np::tools {
namespace {

constexpr const char* kHelp =
    "usage: netpoll dump DEVICE [--count N] [--timeout S] [--full]\n"
    "\n"
    "Prints one line per frame arriving on DEVICE, decoded with netpoll's own\n"
    "wire parsers: seconds since start, MAC addresses, then ARP or IPv4/UDP\n"
    "fields and the payload (a frame that fails a check says which).\n"
    "\n"
    "  --count N     stop after N frames (exit 1 if the timeout comes first)\n"
    "  --timeout S   stop after S seconds\n"
    "  --full        print whole payloads (default: the first 64 bytes)\n"
    "\n"
    "An xdp: device sees only what netpoll's XDP program steers to it, and\n"
    "dump claims nothing: xdp:IF?redirect=all takes every frame of its queue\n"
    "(the kernel then gets none of them while dump runs).\n"
    "\n"
    "example: netpoll dump packet:eth0 --count 10\n";

}  // namespace

int cmd_dump(int argc, char** argv) {
  ArgParser args;
  args.option("count").option("timeout").flag("full").flag("help");
  args.parse(argc, argv, 2);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("expected one DEVICE");
  const std::uint64_t count = args.get_uint("count", 0, 1, UINT64_MAX);
  const double timeout = args.get_seconds("timeout", 0);
  const std::size_t max_payload = args.has("full") ? SIZE_MAX : 64;

  auto dev = dev::open_device(args.positional()[0]);
  if (!dev) {
    print_error("dump", dev.error().message);
    return 1;
  }
  if (const std::string_view d = args.positional()[0]; d.rfind("xdp:", 0) == 0 && d.find("redirect=all") == d.npos) {
    std::fprintf(stderr, "netpoll dump: %s sees only what its XDP program steers to it, and dump claims nothing: "
                         "add ?redirect=all to see every frame of the queue\n", std::string(d).c_str());
  }
  install_stop_signals();

  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  std::uint64_t seen = 0;
  while (!stop_requested() && (count == 0 || seen < count)) {
    if (timeout > 0 && elapsed() >= timeout) break;
    (*dev)->receive(count == 0 ? 64 : std::min<std::uint64_t>(64, count - seen), [&](std::span<const std::byte> f) {
      std::printf("%.6f %s\n", elapsed(), describe_frame(f, max_payload).c_str());
      ++seen;
    });
    std::fflush(stdout);
    pollfd pfd{(*dev)->fd(), POLLIN, 0};
    if (pfd.fd >= 0) ::poll(&pfd, 1, 50);
  }
  const auto& st = (*dev)->stats();
  std::fprintf(stderr, "netpoll dump: %llu frames (device rx %llu, dropped %llu)\n",
               static_cast<unsigned long long>(seen), static_cast<unsigned long long>(st.rx_frames.value()),
               static_cast<unsigned long long>(st.rx_dropped.value()));
  return count_exit_status("dump", "frames", timeout, seen, count);
}

}  // namespace np::tools
