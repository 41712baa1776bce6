// open_device: from a device string to a ready Device, decorators included.
#pragma once

#include <memory>
#include <string_view>

#include "netpoll/base/result.h"
#include "netpoll/dev/device.h"
#include "netpoll/dev/spec.h"

namespace np::dev {

// Opens the device named by `spec` (see spec.h) in the calling thread's
// network namespace. A wrong name or option gives an Error whose message a
// user can act on ("no such interface: eth9"). Context: setup.
[[nodiscard]] SetupResult<std::unique_ptr<Device>> open_device(std::string_view spec);
[[nodiscard]] SetupResult<std::unique_ptr<Device>> open_device(const DeviceSpec& spec);

}  // namespace np::dev
