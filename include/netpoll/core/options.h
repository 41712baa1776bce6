// The netconsole option string, as Linux's netconsole= parameter takes it:
//
//   [+][r][src-port]@[src-ip]/[dev],[tgt-port]@<tgt-ip>/[tgt-mac]
//
//   +         extended (structured) log format
//   r         prepend the release to each record (needs +)
//   src-port  default 6665          src-ip  default: the device's first
//                                           address of tgt-ip's family
//   dev       interface name, MAC address of an interface, or any netpoll
//             device string (packet:eth0, tap:tap0, udp:..., pair:...);
//             default: the interface the kernel routes tgt-ip through
//   tgt-port  default 6666          tgt-ip  required; 0.0.0.0 (or ::) makes
//             a receive-only client that accepts datagrams from anyone
//   tgt-mac   default: resolved by ARP or neighbour discovery (Netpoll::setup,
//             netpoll.h)
//
// An address with a ':' is IPv6, written without brackets as Linux writes
// it: +6665@fd77::2/eth0,6666@fd77::1/. Both addresses of a target are of
// one family; an unspecified one takes the other's. Several targets, of
// either family, are separated by ';'. Parsing is strict where Linux's is
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
  IpAddr local_ip;        // unspecified: take the device's first address of the family
  std::string device;     // empty: the interface routing to remote_ip
  std::uint16_t remote_port = kDefaultRemotePort;
  IpAddr remote_ip;
  std::optional<MacAddr> remote_mac;  // none: resolve

  // The target's family: its local address's, once settle_family() ran
  // (parse_targets and Netpoll::setup run it).
  IpFamily family() const noexcept { return local_ip.family(); }
};

// Gives an unspecified address of `t` the family of the other one (an empty
// src-ip with an IPv6 tgt-ip is ::, a 0.0.0.0 target of an IPv6 client is
// ::). False when both are specified and of different families.
// Context: any.
[[nodiscard]] bool settle_family(TargetOptions& t) noexcept;

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
// (for IPv6, as Linux: local IPv6 address fd77::1 / remote IPv6 address ...)
// Context: setup.
std::string format_target(const TargetOptions& t, std::string_view name = "netpoll");

}  // namespace np::core
