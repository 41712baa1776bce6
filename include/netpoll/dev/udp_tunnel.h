// Frame-over-UDP tunnel: each Ethernet frame is one UDP datagram.
//
// Wire-compatible with qemu's "-netdev socket,udp=REMOTE,localaddr=LOCAL"
// (no header, no length prefix: the datagram is the frame). Needs no
// privileges, so two unprivileged processes, or a process and a qemu guest,
// can share an Ethernet segment over loopback. Datagrams from any address
// but REMOTE are dropped and counted (rx_dropped).
//
// Device string: udp:LOCAL_IP:PORT@REMOTE_IP:PORT[?mac=MAC&mtu=N]
//   LOCAL is bound, REMOTE is sent to. A qemu peer of ours is started with
//   -netdev socket,id=n0,udp=OUR_LOCAL,localaddr=OUR_REMOTE.
//   mac=MAC  this end's MAC (default 02:xx:.. derived from LOCAL)
//   mtu=N    default 1500
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "netpoll/base/addr.h"
#include "netpoll/base/result.h"
#include "netpoll/dev/device.h"

namespace np::dev {

struct UdpTunnelOptions {
  std::optional<MacAddr> mac;
  std::size_t mtu = 1500;
};

// `endpoints` is the TARGET part: "LOCAL_IP:PORT@REMOTE_IP:PORT".
// Context: setup.
SetupResult<std::unique_ptr<Device>> open_udp_tunnel_device(std::string name, std::string_view endpoints,
                                                           const UdpTunnelOptions& options);

}  // namespace np::dev
