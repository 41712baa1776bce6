// netpoll cmd --key FILE HOST[:PORT] COMMAND [ARGS...]: one remote command
// to a process running netpoll with --commands, and its reply.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "netpoll/base/bytes.h"
#include "netpoll/base/clock.h"
#include "netpoll/command/key.h"
#include "netpoll/command/verifier.h"
#include "netpoll/wire/command.h"

namespace np::tools {
namespace {

namespace cm = wire::command;

constexpr const char* kHelp =
    "usage: netpoll cmd --key FILE HOST[:PORT] COMMAND [ARGS...]\n"
    "\n"
    "Sends one authenticated command to a process that takes remote commands\n"
    "(netpoll run --commands FILE, or a program with netpoll's command server)\n"
    "and prints its reply. HOST:PORT is the process's console source address\n"
    "(the local side of its netconsole target; port 6665 by default). The\n"
    "request carries the key's id, a counter that only grows (this machine's\n"
    "clock in nanoseconds) and a timestamp, under an HMAC-SHA-256 with the\n"
    "key's secret; the process drops anything that does not verify, was seen\n"
    "before or is more than 30 s off its clock, without answering, and says so\n"
    "in its console stream. Its reply is authenticated the same way. The same\n"
    "datagram is sent again every second until the process acknowledges it\n"
    "(a copy that arrives twice runs once). The reply also goes to the console\n"
    "stream, after a record naming who asked what.\n"
    "\n"
    "Commands (a letter or a name, as sysrq's):\n"
    "  h help        the commands, the program's own too\n"
    "  t stacks      a backtrace of every thread\n"
    "  m memory      resident and virtual size, heap statistics\n"
    "  l level [N]   the console level: records below N are sent (0-8)\n"
    "  s stats       netpoll's counters\n"
    "  d dump        a core of the live process to its dump server\n"
    "  g gdb         break into the gdb stub; only this address may attach\n"
    "  c crash       crash the process (its crash path runs)\n"
    "  k terminate   SIGTERM\n"
    "\n"
    "options:\n"
    "  --key FILE     the key file (netpoll keygen FILE; mode 0600)\n"
    "  --timeout S    wait at most S seconds for the whole reply (default 10)\n"
    "\n"
    "Exit status: 0 with the whole reply, 1 when nothing or only part of it\n"
    "came back, 2 for bad arguments.\n";

sockaddr_in resolve_host(const std::string& spec) {
  std::string host = spec;
  std::uint16_t port = cm::kDefaultPort;
  if (const auto colon = spec.rfind(':'); colon != std::string::npos) {
    host = spec.substr(0, colon);
    const std::string p = spec.substr(colon + 1);
    char* end = nullptr;
    const unsigned long v = std::strtoul(p.c_str(), &end, 10);
    if (p.empty() || *end != '\0' || v == 0 || v > 65535)
      throw UsageError("'" + spec + "': expected HOST[:PORT], PORT 1 to 65535");
    port = static_cast<std::uint16_t>(v);
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (const int e = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); e != 0 || res == nullptr)
    throw UsageError("'" + host + "': " + (e != 0 ? ::gai_strerror(e) : "no IPv4 address"));
  sockaddr_in to = *reinterpret_cast<const sockaddr_in*>(res->ai_addr);
  ::freeaddrinfo(res);
  to.sin_port = htons(port);
  return to;
}

std::string address_text(const sockaddr_in& a) {
  char ip[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(a.sin_port));
}

}  // namespace

int cmd_cmd(int argc, char** argv) {
  ArgParser args;
  args.option("key").option("timeout").flag("help");
  args.parse(argc, argv, 2);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const auto key_path = args.get("key");
  if (!key_path) throw UsageError("expected --key FILE (netpoll keygen FILE makes one)");
  if (args.positional().size() < 2) throw UsageError("expected HOST[:PORT] COMMAND [ARGS...]");
  const double timeout = args.get_seconds("timeout", 10);
  if (!(timeout > 0)) throw UsageError("--timeout: expected seconds, more than 0");
  std::string body;
  for (std::size_t i = 1; i < args.positional().size(); ++i) body += (i > 1 ? " " : "") + args.positional()[i];
  if (body.size() > cm::kMaxRequestBody)
    throw UsageError("the command is " + std::to_string(body.size()) + " bytes; at most " +
                     std::to_string(cm::kMaxRequestBody) + " are sent");
  const sockaddr_in to = resolve_host(args.positional()[0]);
  const std::string where = address_text(to);

  auto ring = command::load_key_file(*key_path);
  if (!ring) {
    print_error("cmd", ring.error().message);
    return 1;
  }
  if (!command::crypto_ready()) {
    print_error("cmd", "libsodium could not be initialised");
    return 1;
  }
  const command::Key key = (*ring)[0];

  // The request: counter and timestamp from this machine's clock.
  const auto now = static_cast<std::uint64_t>(realtime_ns());
  std::vector<std::byte> out(cm::kHeaderLen + body.size() + cm::kMacLen);
  static_cast<void>(command::seal_request(key, now, now, as_bytes(body), out));

  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    print_error("cmd", std::string("socket: ") + std::strerror(errno));
    return 1;
  }
  const auto send = [&] {
    return ::sendto(fd, out.data(), out.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) ==
           static_cast<ssize_t>(out.size());
  };
  const auto start = std::chrono::steady_clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(timeout));
  auto next_send = start;
  int sent = 0;
  bool acknowledged = false;
  std::map<std::uint16_t, std::string> parts;
  std::optional<std::uint16_t> last;
  std::uint64_t ignored = 0;
  std::vector<std::byte> buf(65536);
  for (;;) {
    const auto t = std::chrono::steady_clock::now();
    if (last && parts.size() == static_cast<std::size_t>(*last) + 1) break;
    if (t >= deadline) break;
    if (!acknowledged && t >= next_send) {
      if (!send()) {
        print_error("cmd", "cannot send to " + where + ": " + std::strerror(errno));
        ::close(fd);
        return 1;
      }
      ++sent;
      next_send = t + std::chrono::seconds(1);
    }
    const std::chrono::steady_clock::time_point until = acknowledged ? deadline : std::min(deadline, next_send);
    pollfd p{fd, POLLIN, 0};
    const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - t).count();
    if (::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(wait_ms, 1))) <= 0) continue;
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    const ssize_t n = ::recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) continue;
    // Only an authenticated reply to this request counts.
    const auto d = wire::CommandDatagram<const std::byte>::check(std::span<const std::byte>(buf.data(), static_cast<std::size_t>(n)));
    if (!d || d->key_id() != key.id || !command::mac_matches(key, *d)) {
      ++ignored;
      continue;
    }
    const auto r = wire::CommandRepr::parse(*d);
    if (!r || r->kind != cm::kReply || r->counter != now) {
      ++ignored;
      continue;
    }
    acknowledged = true;
    parts.emplace(r->part, std::string(as_text(r->body)));
    if (r->last) last = r->part;
  }
  ::close(fd);
  std::string text;
  for (const auto& [part, piece] : parts) text += piece;
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  if (last && parts.size() == static_cast<std::size_t>(*last) + 1) return 0;
  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", timeout);
  if (!acknowledged) {
    char id[16];
    std::snprintf(id, sizeof id, "%08x", key.id);
    print_error("cmd", "no answer from " + where + " within " + secs + " s (sent " + std::to_string(sent) +
                           " times" + (ignored > 0 ? ", " + std::to_string(ignored) + " datagrams ignored" : "") +
                           "): is a process taking commands there (netpoll run --commands) with key " + id +
                           "? A request that fails verification (another key, a clock more than 30 s off) is "
                           "dropped without an answer and counted in that process's console stream");
  } else {
    print_error("cmd", "the reply from " + where + " was not complete within " + secs + " s (" +
                           std::to_string(parts.size()) + " parts" +
                           (last ? " of " + std::to_string(*last + 1) : ", the last one missing") + ")");
  }
  return 1;
}

}  // namespace np::tools
