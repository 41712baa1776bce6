// Options shared by the subcommands that set up netpoll clients (send,
// recv, console, run): the TARGET string and the tuning knobs of the core.
#pragma once

#include <string>

#include "cli.h"
#include "netpoll/console/logger.h"
#include "netpoll/console/pace.h"
#include "netpoll/console/stream_state.h"
#include "netpoll/core/netpoll.h"

namespace np::tools {

// Declares --carrier-timeout, --arp-tries, --arp-interval, --no-broadcast,
// --pool, --queue, --quiet, --stats.
void declare_client_options(ArgParser& args);

// The help text lines for those options.
extern const char* const kClientOptionsHelp;

// The core's tuning knobs from the options above; setup messages go to
// stderr unless --quiet.
struct ClientTuning {
  core::DeviceConfig device;
  core::ResolveConfig resolve;
  core::SetupLog log;
};
ClientTuning client_tuning(const ArgParser& args);

// One or more ';'-separated targets; warnings to stderr unless --quiet.
// Throws UsageError.
core::ParsedTargets parse_target_option(const ArgParser& args, const std::string& text, const std::string& name);

// Parses TARGET (exactly one target) and the options into a ClientConfig
// named `name`; setup messages and parse warnings go to stderr unless
// --quiet. Throws UsageError.
core::ClientConfig client_config(const ArgParser& args, const std::string& target, const std::string& name);

// --pace RATE (console, run): its help lines, and the pace it asks for
// (none without it). Throws UsageError for a rate parse_pace refuses.
extern const char* const kPaceOptionHelp;
std::optional<console::Pace> pace_option(const ArgParser& args);

// Declares --stream-state PATH and --new-stream (console, run).
void declare_stream_options(ArgParser& args);
extern const char* const kStreamOptionsHelp;

// The stream counters a sender numbers its records from (console, run):
// --new-stream: this process's own, from 0; else the file --stream-state
// names, or the default one for cfg's targets. Points cfg's shared_seq and
// shared_msgid at them and says where the stream goes on (cfg.log). The
// state must outlive the logger.
[[nodiscard]] SetupResult<console::StreamState> open_stream_state(const ArgParser& args, console::LoggerConfig& cfg);

// HOST[:PORT] of a dump server (run --dump, coredump --to): an IPv4
// address, the port 20023 unless given. Throws UsageError naming `option`.
struct DumpServer {
  Ipv4Addr ip;
  std::uint16_t port = 0;
};
DumpServer parse_dump_server(std::string_view text, const std::string& option);

}  // namespace np::tools
