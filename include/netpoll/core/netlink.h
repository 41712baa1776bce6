// What setup needs to know from the kernel about an interface, asked over
// rtnetlink in the calling thread's network namespace (sysfs would show
// the namespace /sys was mounted in, which is not always ours).
//
// Every function here is Context: setup.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "netpoll/base/addr.h"
#include "netpoll/base/result.h"

namespace np::core::netlink {

struct LinkInfo {
  int ifindex = 0;
  std::string name;
  unsigned flags = 0;     // IFF_* (IFF_UP, IFF_LOWER_UP, ...)
  unsigned mtu = 0;
  MacAddr mac;
  int master = 0;         // ifindex of the bridge/bond this is enslaved to, or 0
  bool up() const;        // IFF_UP
  bool carrier() const;   // IFF_LOWER_UP
};

[[nodiscard]] SetupResult<LinkInfo> link_by_index(int ifindex);
[[nodiscard]] SetupResult<LinkInfo> link_by_name(const std::string& name);
// The interface whose hardware address is `mac`.
[[nodiscard]] SetupResult<LinkInfo> link_by_mac(const MacAddr& mac);

// Brings the interface administratively up (ip link set IF up).
[[nodiscard]] SetupResult<void> set_link_up(int ifindex);

// The interface's first IPv4 address (primary first, as `ip addr` lists).
std::optional<Ipv4Addr> first_ipv4(int ifindex);

// The interface's first IPv6 address of the scope a peer needs, as Linux's
// netpoll_setup chooses: a link-local one for a link-local peer, else one
// that is not link-local (the kernel lists global addresses before
// link-local ones). With `link_local` unset and no global address, none.
std::optional<Ipv6Addr> first_ipv6(int ifindex, bool link_local);

// The route the kernel would use to reach `dst` (ip route get DST), of
// dst's family.
struct Route {
  int oif = 0;
  std::optional<IpAddr> gateway;  // absent: dst is on-link
  std::optional<IpAddr> prefsrc;
};
[[nodiscard]] SetupResult<Route> route_to(const IpAddr& dst, int oif = 0);

}  // namespace np::core::netlink
