// Placeholder until the fault injector lands.
#include "netpoll/dev/fault.h"
namespace np::dev {
SetupResult<std::unique_ptr<FaultDevice>> wrap_faults(std::unique_ptr<Device>, const FaultOptions&) {
  return setup_error(Errc::kUnsupported, "fault injector not implemented yet");
}
}  // namespace np::dev
