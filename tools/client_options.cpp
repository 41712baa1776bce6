#include "client_options.h"

#include <chrono>
#include <cstdio>

namespace np::tools {

const char* const kClientOptionsHelp =
    "  --carrier-timeout S  wait at most S seconds for carrier after bringing\n"
    "                       a down interface up (default 4)\n"
    "  --arp-tries N        ARP requests when resolving the target MAC (default 3)\n"
    "  --arp-interval S     seconds between them (default 1)\n"
    "  --no-broadcast       fail instead of falling back to ff:ff:ff:ff:ff:ff\n"
    "  --pool N             transmit frames preallocated (default 32)\n"
    "  --queue N            deferred transmit queue bound (default 24)\n"
    "  --quiet              no setup messages on stderr\n"
    "  --stats              statistics as JSON on stderr at exit\n";

void declare_client_options(ArgParser& args) {
  args.option("carrier-timeout").option("arp-tries").option("arp-interval").flag("no-broadcast");
  args.option("pool").option("queue").flag("quiet").flag("stats");
}

core::ClientConfig client_config(const ArgParser& args, const std::string& target, const std::string& name) {
  auto parsed = core::parse_targets(target);
  if (!parsed) throw UsageError(parsed.error().message);
  if (parsed->targets.size() != 1) throw UsageError("expected one target, got " + std::to_string(parsed->targets.size()));
  const bool quiet = args.has("quiet");
  if (!quiet) {
    for (const auto& w : parsed->warnings) std::fprintf(stderr, "%s: %s\n", name.c_str(), w.c_str());
  }
  core::ClientConfig c;
  c.name = name;
  c.target = parsed->targets[0];
  c.device.carrier_timeout =
      std::chrono::milliseconds(static_cast<long>(args.get_seconds("carrier-timeout", 4) * 1000));
  c.resolve.tries = static_cast<int>(args.get_uint("arp-tries", 3, 1, 100));
  c.resolve.interval = std::chrono::milliseconds(static_cast<long>(args.get_seconds("arp-interval", 1) * 1000));
  c.resolve.allow_broadcast = !args.has("no-broadcast");
  c.device.pool_frames = args.get_uint("pool", 32, 2, 4096);
  c.device.deferred_limit = args.get_uint("queue", std::min<std::uint64_t>(24, c.device.pool_frames - 1), 1,
                                          c.device.pool_frames);
  if (!quiet) c.log = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };
  return c;
}

}  // namespace np::tools
