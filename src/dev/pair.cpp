// Placeholder until the pair backend lands.
#include "netpoll/dev/pair.h"
namespace np::dev {
SetupResult<std::unique_ptr<PairDevice>> open_pair_device(std::string, std::string_view, const PairOptions&) {
  return setup_error(Errc::kUnsupported, "pair devices are not implemented yet");
}
}  // namespace np::dev
