// Placeholder until the TAP backend lands.
#include "netpoll/dev/tap.h"
namespace np::dev {
SetupResult<std::unique_ptr<Device>> open_tap_device(std::string, std::string_view, const TapOptions&) {
  return setup_error(Errc::kUnsupported, "tap devices are not implemented yet");
}
}  // namespace np::dev
