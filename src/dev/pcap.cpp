// Placeholder until the pcap writer lands.
#include "netpoll/dev/pcap.h"
namespace np::dev {
SetupResult<std::unique_ptr<Device>> wrap_pcap(std::unique_ptr<Device>, const std::string&) {
  return setup_error(Errc::kUnsupported, "pcap writer not implemented yet");
}
}  // namespace np::dev
