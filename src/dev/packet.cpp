// Placeholder until the AF_PACKET backend lands.
#include "netpoll/dev/packet.h"
namespace np::dev {
SetupResult<std::unique_ptr<Device>> open_packet_device(std::string, std::string_view, const PacketOptions&) {
  return setup_error(Errc::kUnsupported, "packet devices are not implemented yet");
}
}  // namespace np::dev
