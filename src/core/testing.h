// Private to core and its tests: what a test needs to reach inside a
// SharedDevice, kept out of the public header.
#pragma once

#include "netpoll/core/shared_device.h"

namespace np::core {

struct SharedDeviceTesting {
  // Takes the transmit lock and keeps it: plays a thread frozen in the
  // middle of a transmit. Context: any.
  static bool hold_tx_lock(SharedDevice& d) noexcept { return d.tx_lock_.try_lock(); }
  static void let_go_tx_lock(SharedDevice& d) noexcept { d.tx_lock_.unlock(); }
  static constexpr std::size_t kIdentBlock = SharedDevice::kIdentBlock;
};

}  // namespace np::core
