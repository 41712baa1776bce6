// TAP backend: /dev/net/tun with IFF_TAP | IFF_NO_PI.
//
// We are the far end of the wire: the kernel's tapN interface is the host
// side, and this device plays the NIC of another machine, with a MAC of its
// own (given, or a locally administered one derived from the name). Opening
// creates the interface, or attaches to an existing one of that name. A
// created interface disappears when the device is closed; an attached,
// persistent one stays.
//
// Device string: tap:IFNAME[?mac=MAC&up=0|1]
//   mac=MAC  this end's MAC (default 02:xx:xx:xx:xx:xx from the name)
//   up=1     also bring the kernel side up (default 1)
//
// Needs CAP_NET_ADMIN to create.
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

// Context: setup.
SetupResult<std::unique_ptr<Device>> open_tap_device(std::string name, std::string_view ifname,
                                                    const TapOptions& options);

}  // namespace np::dev
