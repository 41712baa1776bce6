// In-memory wire pair: two devices joined back to back, for deterministic
// tests without privileges.
//
// "pair:NAME" opened twice gives the two ends of the wire called NAME; a
// third open is refused until an end is closed. Each direction is a bounded
// single-producer/single-consumer ring of frame slots, so one thread may
// transmit on an end while another receives on the other. A full ring is
// kBusy; an end whose carrier is cleared (set_carrier(false)) answers kBusy
// too, like a NIC with its queue stopped. fd() is an eventfd that becomes
// readable when a frame is sent to this end.
//
// Device string: pair:NAME[?mac=MAC&mtu=N&slots=N]
//   mac=MAC   this end's MAC (default: 02:00:00:00:00:01 for the first end
//             opened, ...:02 for the second)
//   mtu=N     default 1500
//   slots=N   ring slots per direction (default 256)
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

struct PairOptions {
  std::optional<MacAddr> mac;
  std::size_t mtu = 1500;
  std::size_t slots = 256;
};

class PairDevice : public Device {
 public:
  // Raises or drops this end's carrier (a cable pulled). Context: any.
  virtual void set_carrier(bool up) noexcept = 0;
};

// Context: setup.
SetupResult<std::unique_ptr<PairDevice>> open_pair_device(std::string name, std::string_view wire,
                                                         const PairOptions& options);

}  // namespace np::dev
