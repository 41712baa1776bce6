// netpoll console TARGET: standard input lines as netconsole records.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include "client_options.h"
#include "commands.h"
#include "netpoll/base/clock.h"
#include "netpoll/console/logger.h"
#include "netpoll/console/stream_state.h"
#include "netpoll/console/pace.h"
#include "reliable_notice.h"

namespace np::tools {
namespace {

constexpr const char* kHelp =
    "usage: netpoll console TARGET[;TARGET...] [options]\n"
    "\n"
    "Sends each line of standard input as a log record, as Linux's netconsole\n"
    "does (like logger(1) for a network console). TARGET is netconsole's\n"
    "option string; '+' selects the extended format, 'r' prepends the release:\n"
    "  +6665@10.0.0.1/eth0,6666@10.0.0.2/    extended, remote MAC by ARP\n"
    "  6665@/eth0,6666@10.0.0.2/             basic format\n"
    "  +6665@fd77::2/eth0,6666@fd77::1/      IPv6 (no brackets), remote MAC by neighbour discovery\n"
    "\n"
    "Long lines are sent whole. A record carries at most 8191 bytes (its text,\n"
    "newline, userdata and sysdata), the most netconsd takes: a line of up to\n"
    "8190 bytes goes as one record (fewer with --userdata or --sysdata; a byte\n"
    "outside printable ASCII, or '\\', counts 4: it is sent as \\xHH), in\n"
    "1000-byte fragments in the extended format. A longer line goes as several\n"
    "records cut between UTF-8 characters, the first flagged 'c' and the others\n"
    "'+' in the extended header, for the receiver to join; in the basic format\n"
    "the pieces simply follow one another, the newline after the last. --stats\n"
    "counts these records as \"continued\".\n"
    "\n"
    "options:\n"
    "  --level L            emerg alert crit err warning notice info debug (default info)\n"
    "  --facility F         kern user mail daemon auth syslog lpr news uucp cron\n"
    "                       authpriv ftp local0..local7 (default user)\n"
    "  --userdata KEY=VALUE add \" KEY=VALUE\" to every extended record (repeatable)\n"
    "  --sysdata LIST       any of cpu,taskname,release,msgid\n"
    "  --rate-limit MS:N    at most N records per MS milliseconds per target;\n"
    "                       the rest are dropped (counted)\n"
    "  --reliable           netconsd's reliable mode (ncrx), on every target\n"
    "                       (extended only): keep each record until the receiver\n"
    "                       acknowledges it, send again what it reports missing,\n"
    "                       and after 10 s without progress resend the\n"
    "                       unacknowledged ones marked ncemg=1, a round a second,\n"
    "                       until the acknowledgements move again; keeps the last\n"
    "                       1024 unacknowledged records (reading waits while they\n"
    "                       fill the window). What acknowledges: netpoll listen\n"
    "                       --ack, or a receiver built on netconsd's ncrx library;\n"
    "                       netconsd itself does not\n"
    "  --ack-wait S         with --reliable: a target that acknowledges nothing\n"
    "                       within S seconds of its first record (default 3) is\n"
    "                       said so on stderr and falls back to plain sending for\n"
    "                       good: the records held for its first answer are sent\n"
    "                       once, and every later record once, none kept\n"
    "  --linger S           at exit, wait up to S seconds for records to go out\n"
    "                       (with --reliable: to be acknowledged; then records a\n"
    "                       silent target still holds are sent once, as above)\n"
    "                       (default 2)\n";

constexpr const char* kHelpExit =
    "\n"
    "Exit status: 0 when every record went out (with --reliable: and was\n"
    "acknowledged), 1 otherwise, 2 for a usage error.\n";

console::RateLimit parse_rate(const std::string& text) {
  const auto colon = text.find(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument("");
    std::size_t used = 0;
    const long ms = std::stol(text.substr(0, colon), &used);
    if (used != colon || ms <= 0) throw std::invalid_argument("");
    const std::string burst = text.substr(colon + 1);
    const long n = std::stol(burst, &used);
    if (used != burst.size() || n <= 0 || n > 1'000'000) throw std::invalid_argument("");
    return console::RateLimit{std::chrono::milliseconds(ms), static_cast<unsigned>(n)};
  } catch (const std::exception&) {
    throw UsageError("--rate-limit '" + text + "': expected MS:N, e.g. 1000:100");
  }
}

}  // namespace

int cmd_console(int argc, char** argv) {
  ArgParser args;
  declare_client_options(args);
  args.option("level").option("facility").option("userdata").option("sysdata").option("rate-limit");
  args.option("linger").flag("reliable").option("ack-wait").option("pace").flag("help");
  declare_stream_options(args);
  args.parse(argc, argv, 2);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    std::fputs(kPaceOptionHelp, stdout);
    std::fputs(kStreamOptionsHelp, stdout);
    std::fputs(kClientOptionsHelp, stdout);
    std::fputs(kHelpExit, stdout);
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("expected one TARGET (several are separated by ';')");
  const auto level = console::parse_level(args.get("level").value_or("info"));
  if (!level) throw UsageError("--level '" + *args.get("level") + "': unknown level");
  const auto facility = console::parse_facility(args.get("facility").value_or("user"));
  if (!facility) throw UsageError("--facility '" + *args.get("facility") + "': unknown facility");
  console::Sysdata sysdata;
  if (auto list = args.get("sysdata")) {
    auto s = console::parse_sysdata(*list);
    if (!s) throw UsageError("--sysdata: " + s.error().message);
    sysdata = *s;
  }
  std::vector<std::pair<std::string, std::string>> userdata;
  for (const auto& kv : args.all("userdata")) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos) throw UsageError("--userdata '" + kv + "': expected KEY=VALUE");
    userdata.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  console::RateLimit rate;
  if (auto r = args.get("rate-limit")) rate = parse_rate(*r);
  const double linger = args.get_seconds("linger", 2);
  const bool reliable = args.has("reliable");
  const double ack_wait = args.get_seconds("ack-wait", 3);
  if (args.has("ack-wait") && !reliable) throw UsageError("--ack-wait is for --reliable");
  if (ack_wait < 0.001) throw UsageError("--ack-wait must be at least 0.001 s: reliable mode never waits forever");
  const std::optional<console::Pace> pace = pace_option(args);

  console::LoggerConfig cfg;
  cfg.name = "netpoll console";
  cfg.facility = *facility;
  for (auto& t : parse_target_option(args, args.positional()[0], cfg.name).targets) {
    console::TargetConfig tc;
    tc.target = std::move(t);
    tc.sysdata = sysdata;
    tc.userdata = userdata;
    tc.rate = rate;
    tc.reliable = reliable;
    tc.reliable_tuning.first_ack_wait = std::chrono::milliseconds(static_cast<long>(ack_wait * 1000));
    cfg.targets.push_back(std::move(tc));
  }
  if (reliable) cfg.on_reliable_fallback = reliable_fallback_notice("console", cfg.targets);
  const ClientTuning tuning = client_tuning(args);
  cfg.device = tuning.device;
  cfg.resolve = tuning.resolve;
  cfg.log = tuning.log;
  const std::size_t n_targets = cfg.targets.size();
  auto stream = open_stream_state(args, cfg);
  if (!stream) {
    std::fprintf(stderr, "netpoll console: %s\n", stream.error().message.c_str());
    return 1;
  }
  auto lg = console::Logger::create(std::move(cfg));
  if (!lg) {
    std::fprintf(stderr, "%s\n", lg.error().message.c_str());
    return 1;
  }
  // Standard input can be read far faster than records go out: the reader
  // waits rather than overflow the ring, and in reliable mode rather than
  // push unacknowledged records out of the retransmit window (records in
  // the ring count too: they enter the window when sent).
  const std::size_t window = console::ReliableTuning{}.window;
  auto room = [&] {
    const std::uint64_t pending = (*lg)->pending();
    if (pending + 1 >= (*lg)->ring_records()) return false;
    if (!reliable) return true;
    for (std::size_t i = 0; i < n_targets; ++i) {
      if ((*lg)->target_stats(i).unacked.load(std::memory_order_relaxed) + pending + 1 >= window) return false;
    }
    return true;
  };
  // --pace: each line waits for its time before it is logged, so the
  // reader stops reading while it is ahead of the pace (one nap a line at
  // most; the crash path knows nothing of it).
  std::optional<console::Pacer> pacer;
  if (pace) pacer.emplace(*pace);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (pacer) {
      nap(pacer->wait(std::chrono::steady_clock::now()));
      pacer->sent(std::chrono::steady_clock::now(), pace->bytes ? line.size() + 1 : 1);
    }
    // A long line is several records: room for each in turn.
    std::size_t at = 0;
    do {
      while (!room()) std::this_thread::sleep_for(std::chrono::microseconds(200));
      at = (*lg)->log_piece(*facility, *level, line, at);
    } while (at < line.size());
  }
  const std::chrono::milliseconds linger_ms(static_cast<long>(linger * 1000));
  bool all_sent = reliable ? (*lg)->wait_acked(linger_ms) : (*lg)->flush(linger_ms);
  if (reliable && !all_sent) {
    // A target that never answered holds records back for its first
    // answer: they go out once now rather than never. Still not all sent
    // while an answering target has records unacknowledged.
    bool kept = !(*lg)->fall_back_unanswered(std::chrono::seconds(1));
    for (std::size_t i = 0; i < n_targets; ++i) kept |= (*lg)->target_stats(i).unacked.load() > 0;
    all_sent = !kept && (*lg)->flush(std::chrono::seconds(1));
  }
  if (args.has("stats")) std::fprintf(stderr, "%s\n", (*lg)->stats_json().c_str());
  if (!all_sent)
    std::fprintf(stderr, "netpoll console: records still %s after %g s\n",
                 reliable ? "unsent or unacknowledged" : "unsent", linger);
  const std::uint64_t unacknowledged = reliable ? unacknowledged_records(**lg) : 0;
  if (unacknowledged > 0)
    std::fprintf(stderr, "netpoll console: %llu records sent without acknowledgement\n",
                 static_cast<unsigned long long>(unacknowledged));
  return all_sent && unacknowledged == 0 ? 0 : 1;
}

}  // namespace np::tools
