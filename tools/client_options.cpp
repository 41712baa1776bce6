#include "client_options.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

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

core::ParsedTargets parse_target_option(const ArgParser& args, const std::string& text, const std::string& name) {
  auto parsed = core::parse_targets(text);
  if (!parsed) throw UsageError(parsed.error().message);
  if (!args.has("quiet")) {
    for (const auto& w : parsed->warnings) std::fprintf(stderr, "%s: %s\n", name.c_str(), w.c_str());
  }
  return std::move(*parsed);
}

ClientTuning client_tuning(const ArgParser& args) {
  ClientTuning t;
  t.device.carrier_timeout =
      std::chrono::milliseconds(static_cast<long>(args.get_seconds("carrier-timeout", 4) * 1000));
  t.resolve.tries = static_cast<int>(args.get_uint("arp-tries", 3, 1, 100));
  t.resolve.interval = std::chrono::milliseconds(static_cast<long>(args.get_seconds("arp-interval", 1) * 1000));
  t.resolve.allow_broadcast = !args.has("no-broadcast");
  t.device.pool_frames = args.get_uint("pool", 32, 2, 4096);
  t.device.deferred_limit = args.get_uint("queue", std::min<std::uint64_t>(24, t.device.pool_frames - 1), 1,
                                          t.device.pool_frames);
  if (!args.has("quiet")) t.log = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };
  return t;
}

core::ClientConfig client_config(const ArgParser& args, const std::string& target, const std::string& name) {
  auto parsed = parse_target_option(args, target, name);
  if (parsed.targets.size() != 1) throw UsageError("expected one target, got " + std::to_string(parsed.targets.size()));
  const ClientTuning tuning = client_tuning(args);
  core::ClientConfig c;
  c.name = name;
  c.target = parsed.targets[0];
  c.device = tuning.device;
  c.resolve = tuning.resolve;
  c.log = tuning.log;
  return c;
}

void declare_stream_options(ArgParser& args) { args.option("stream-state").flag("new-stream"); }

const char* const kPaceOptionHelp =
    "  --pace RATE          send no faster than RATE, and read the input no faster\n"
    "                       either (nothing is dropped: the writer waits): N or\n"
    "                       N/s records a second, NB/s, NKB/s or NMB/s bytes of\n"
    "                       input a second (K = 1000); bursts of at most 2 ms\n"
    "                       worth. Retransmissions are not paced\n";

std::optional<console::Pace> pace_option(const ArgParser& args) {
  const auto text = args.get("pace");
  if (!text) return std::nullopt;
  auto pace = console::parse_pace(*text);
  if (!pace) {
    throw UsageError("--pace '" + *text + "': expected records a second (2000, 2000/s) or bytes a second "
                     "(64000B/s, 500KB/s, 2MB/s)");
  }
  return pace;
}

const char* const kStreamOptionsHelp =
    "  --stream-state PATH  where the stream's sequence number and msgids are kept\n"
    "                       between runs (default: one file per source and targets\n"
    "                       in $NETPOLL_STREAM_DIR, else /run/netpoll/streams, or\n"
    "                       $XDG_RUNTIME_DIR/netpoll/streams when /run is not\n"
    "                       writable): a run goes on where the last one from that\n"
    "                       source to those targets stopped, so receivers (netpoll\n"
    "                       listen, netconsd) see one stream; runs at the same time\n"
    "                       share the counter\n"
    "  --new-stream         number from 0, in this process alone, as a rebooted\n"
    "                       kernel does (receivers see a new stream: a reset)\n";

SetupResult<console::StreamState> open_stream_state(const ArgParser& args, console::LoggerConfig& cfg) {
  auto state = [&]() -> SetupResult<console::StreamState> {
    if (args.has("new-stream")) return console::StreamState::fresh();
    std::vector<core::TargetOptions> targets;
    for (const auto& t : cfg.targets) targets.push_back(t.target);
    return console::StreamState::open(args.get("stream-state").value_or(console::default_stream_state_path(targets)));
  }();
  if (!state) return state;
  cfg.shared_seq = &state->counters().seq;
  cfg.shared_msgid = state->counters().msgid;
  if (cfg.log && !state->path().empty()) {
    cfg.log(cfg.name + ": stream goes on at sequence " + std::to_string(state->counters().seq.load()) + " (" +
            state->path() + ")");
  }
  return state;
}

DumpServer parse_dump_server(std::string_view text, const std::string& option) {
  DumpServer d;
  d.port = 20023;
  std::string_view host = text;
  if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    const std::string port(text.substr(colon + 1));
    char* end = nullptr;
    const unsigned long v = std::strtoul(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || v == 0 || v > 65535)
      throw UsageError(option + " '" + std::string(text) + "': expected a port from 1 to 65535 after ':'");
    d.port = static_cast<std::uint16_t>(v);
  }
  const auto ip = Ipv4Addr::parse(host);
  if (!ip || ip->is_unspecified())
    throw UsageError(option + " '" + std::string(text) + "': expected HOST[:PORT] with an IPv4 address, e.g. 10.0.0.2:20023");
  d.ip = *ip;
  return d;
}

}  // namespace np::tools
