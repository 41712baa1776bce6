// In-memory wire pair: two devices joined back to back, for deterministic
// tests without privileges.
//
// "pair:NAME" opened twice gives the two ends of the wire called NAME; a
// third open is refused (Errc::kExists) while both are open. When an end is
// closed, the next open of NAME takes its place; the wire itself is gone
// when both ends are closed.
//
// Each end owns its receive ring: a bounded single-producer/single-consumer
// ring of `slots` frame slots of mtu + 14 bytes, allocated at open, so one
// thread may transmit on an end while another receives on the other. Both
// ends of a wire have the same MTU (a second open with another one is
// refused). fd() is an eventfd, written on every frame sent to this end and
// drained by receive(); it stays readable while frames are left behind by a
// receive() that ran out of budget.
//
// What transmit() answers:
//   kOk     the frame is in the peer's ring, or there is no peer (see below)
//   kBusy   the peer's ring is full, or either end's carrier was cleared
//           with set_carrier(false): a NIC with its queue stopped. Nothing is
//           taken; retry later.
//   kError  the frame is longer than mtu() + 14 or shorter than 14 bytes
//
// No peer (never opened, or closed): link().carrier is false and frames
// sent are lost, as on a cable with nobody at the far end. They are taken
// (kOk, counted in tx_frames) and counted in PairStats::tx_no_peer. We do
// not answer kBusy here: a peer that never comes back would have a sender
// retrying, and its deferred queue filling, forever. set_carrier(false) is
// the deliberate way to make a wire refuse frames.
//
// Frames already in an end's ring when its peer closes are still delivered;
// frames sent to an end that is then closed are gone with it.
//
// Device string: pair:NAME[?mac=MAC&mtu=N&slots=N]
//   mac=MAC   this end's MAC (default: 02:00:00:00:00:01 for the first end
//             opened, ...:02 for the second; a reopened end gets the
//             default of the end it replaces)
//   mtu=N     default 1500
//   slots=N   this end's receive ring slots, i.e. the frames its peer can
//             send before it receives (default 256)
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

struct PairOptions {
  std::optional<MacAddr> mac;
  std::size_t mtu = 1500;
  std::size_t slots = 256;
};

struct PairStats {
  Counter tx_no_peer;  // frames taken while no peer was attached: lost
};

class PairDevice : public Device {
 public:
  // Raises or drops this end's carrier (a cable pulled): while either end's
  // carrier is down, both ends see link().carrier false and transmit() kBusy.
  // Context: any.
  virtual void set_carrier(bool up) noexcept = 0;

  // Counters of this backend beyond DeviceStats. Context: any.
  virtual const PairStats& pair_stats() const noexcept = 0;
};

// `wire` is the TARGET part (the wire's name); `name` is the device string.
// Context: setup.
[[nodiscard]] SetupResult<std::unique_ptr<PairDevice>> open_pair_device(std::string name, std::string_view wire,
                                                         const PairOptions& options);

}  // namespace np::dev
