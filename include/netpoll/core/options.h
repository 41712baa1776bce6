// The netconsole option string, as Linux's netconsole= parameter takes it:
//
//   [+][r][src-port]@[src-ip]/[dev],[tgt-port]@<tgt-ip>/[tgt-mac]
//
//   +         extended (structured) log format
//   r         prepend the release to each record (needs +)
//   src-port  default 6665          src-ip  default: the device's first IPv4
//   dev       interface name, MAC address of an interface, or any netpoll
//             device string (packet:eth0, tap:tap0, udp:..., pair:...);
//             default: the interface the kernel routes tgt-ip through
//   tgt-port  default 6666          tgt-ip  required; 0.0.0.0 makes a
//             receive-only client that accepts datagrams from anyone
//   tgt-mac   default: resolved by ARP (Netpoll::setup, netpoll.h)
//
// Several targets are separated by ';'. Parsing is strict where Linux's is
// sloppy (a port that is not a number is an error, not 0) and lenient where
// it costs nothing (the '/' after tgt-ip may be left out).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "netpoll/base/addr.h"
#include "netpoll/base/result.h"

namespace np::core {

inline constexpr std::uint16_t kDefaultLocalPort = 6665;
inline constexpr std::uint16_t kDefaultRemotePort = 6666;

struct TargetOptions {
  std::string text;  // this target's part of the option string
  bool extended = false;
  bool release = false;
  std::uint16_t local_port = kDefaultLocalPort;
  Ipv4Addr local_ip;      // unspecified: take the device's first IPv4 address
  std::string device;     // empty: the interface routing to remote_ip
  std::uint16_t remote_port = kDefaultRemotePort;
  Ipv4Addr remote_ip;
  std::optional<MacAddr> remote_mac;  // none: resolve
};

struct ParsedTargets {
  std::vector<TargetOptions> targets;
  std::vector<std::string> warnings;  // e.g. whitespace inside a field
};

// Parses one or more ';'-separated targets. A failure quotes the remainder
// that could not be parsed: "couldn't parse config at 'x@10.0.0.2/'".
// Context: setup.
[[nodiscard]] SetupResult<ParsedTargets> parse_targets(std::string_view text);

// The lines Linux's netpoll_print_options prints, each prefixed "NAME: ":
//   local port 6665 / local IP 10.0.0.1 / interface 'eth0' / remote port
//   6666 / remote IP 10.0.0.2 / remote ethernet address ff:ff:ff:ff:ff:ff
// Context: setup.
std::string format_target(const TargetOptions& t, std::string_view name = "netpoll");

}  // namespace np::core
