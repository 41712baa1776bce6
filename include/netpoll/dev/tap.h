// TAP backend: /dev/net/tun with IFF_TAP | IFF_NO_PI.
//
// We are the far end of the wire: the kernel's tapN interface is the host
// side, and this device plays the NIC of another machine, with a MAC of its
// own (given, or a locally administered one derived from the name: the same
// name always gives the same MAC). Opening creates the interface, or
// attaches to an existing single-queue TAP of that name. A created interface
// disappears when the device is closed; an attached, persistent one stays.
//
// receive(): one read() per frame from the non-blocking descriptor, into a
// buffer made at open; frames longer than mtu() + 14 are counted in
// stats().rx_dropped. Frames the kernel queued while nobody read are dropped
// by the kernel (its own tx_dropped), not seen here.
// transmit(): one write() per frame. kBusy when the kernel has no buffer
// (EAGAIN) and when the kernel side is down (EIO: it dropped the frame, as a
// NIC with the link down would); kError for a frame shorter than 14 bytes or
// longer than mtu() + 14. Nothing is ever half-written.
// link(): running = the kernel side is IFF_UP; carrier = running (a TAP has
// carrier while a reader is attached, and this device is that reader).
//
// Device string: tap:IFNAME[?mac=MAC&up=0|1]
//   mac=MAC  this end's MAC (default 02:xx:xx:xx:xx:xx from the name)
//   up=1     also bring the kernel side up (default 1)
//
// Needs CAP_NET_ADMIN to create (or to attach to a TAP owned by someone
// else). Flags, index and MTU are read through a socket made at open in the
// same namespace, so a device opened inside a network namespace keeps working
// from any thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "netpoll/base/addr.h"
#include "netpoll/base/result.h"
#include "netpoll/dev/device.h"

namespace np::dev {

struct TapOptions {
  std::optional<MacAddr> mac;
  bool bring_up = true;
};

// Opens or creates TAP `ifname` in the calling thread's network namespace;
// `name` is the device string, kept for name() and error messages. Errors
// say what to do: "tap:X: /dev/net/tun is missing (...)", "tap:X: creating
// TAP interface X needs CAP_NET_ADMIN (run as root)", "tap:X: interface X
// exists and is not a TAP device (it is a veth device)", "tap:X: TAP
// interface X is already attached to another process". Context: setup.
[[nodiscard]] SetupResult<std::unique_ptr<Device>> open_tap_device(std::string name, std::string_view ifname,
                                                    const TapOptions& options);

}  // namespace np::dev
