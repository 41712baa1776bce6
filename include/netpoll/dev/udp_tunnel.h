// Frame-over-UDP tunnel: each Ethernet frame is one UDP datagram.
//
// Wire-compatible with qemu's "-netdev socket,udp=REMOTE,localaddr=LOCAL"
// (no header, no length prefix: the datagram is the frame). Needs no
// privileges, so two unprivileged processes, or a process and a qemu guest,
// can share an Ethernet segment over loopback.
//
// One non-blocking UDP socket, bound to LOCAL and connect()ed to REMOTE: the
// kernel then delivers only datagrams from REMOTE. Anything odd that still
// arrives (a datagram longer than mtu() + 14, one shorter than an Ethernet
// header, one from another source) is dropped and counted in rx_dropped.
//
// A peer that is not listening yet answers with ICMP port unreachable, which
// Linux reports on a connected socket as ECONNREFUSED from the *next*
// send() or recv(), for a datagram sent earlier. That is a wire with nobody
// on the far end: it loses frames, it does not fail. The report is counted
// (UdpTunnelStats) and the device carries on; it never wedges.
//
// Device string: udp:LOCAL_IP:PORT@REMOTE_IP:PORT[?mac=MAC&mtu=N]
//   LOCAL is bound, REMOTE is sent to. A qemu peer of ours is started with
//   -netdev socket,id=n0,udp=OUR_LOCAL,localaddr=OUR_REMOTE.
//   mac=MAC  this end's MAC (default 02:b1:b2:b3:p0:p1: the last three
//            bytes of LOCAL's address and its port, so both ends of a
//            loopback tunnel differ and tcpdump shows who is who)
//   mtu=N    default 1500
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "netpoll/base/addr.h"
#include "netpoll/base/counter.h"
#include "netpoll/base/result.h"
#include "netpoll/dev/device.h"

namespace np::dev {

struct UdpTunnelOptions {
  std::optional<MacAddr> mac;
  std::size_t mtu = 1500;
};

// Reports of "nobody listening at REMOTE" (ICMP port/host/net unreachable
// that the kernel turned into an error on our socket). Each report stands
// for at least one frame lost beyond the wire; the kernel keeps only the
// latest, so several lost frames may give one report. Whichever side
// (transmit or receive) calls into the socket first consumes the report,
// so there is one counter per side (each has a single writer).
struct UdpTunnelStats {
  Counter tx_refused;  // consumed by transmit(); the frame being sent was then sent again
  Counter rx_refused;  // consumed by receive()
};

class UdpTunnelDevice : public Device {
 public:
  // Counters of this backend beyond DeviceStats. Context: any.
  virtual const UdpTunnelStats& tunnel_stats() const noexcept = 0;
};

// Default MAC for a LOCAL endpoint (see above). Context: any.
MacAddr udp_tunnel_default_mac(const Ipv4Addr& local, std::uint16_t port) noexcept;

// `endpoints` is the TARGET part: "LOCAL_IP:PORT@REMOTE_IP:PORT". `name` is
// the device string, quoted in errors. Errors quote the part that failed:
//   "device string 'udp:127.0.0.1:7001@nope': expected LOCAL_IP:PORT@REMOTE_IP:PORT, 'nope' is not IP:PORT"
// Context: setup.
[[nodiscard]] SetupResult<std::unique_ptr<UdpTunnelDevice>> open_udp_tunnel_device(std::string name, std::string_view endpoints,
                                                                    const UdpTunnelOptions& options);

}  // namespace np::dev
