// Placeholder until the UDP tunnel backend lands.
#include "netpoll/dev/udp_tunnel.h"
namespace np::dev {
SetupResult<std::unique_ptr<Device>> open_udp_tunnel_device(std::string, std::string_view, const UdpTunnelOptions&) {
  return setup_error(Errc::kUnsupported, "udp tunnel devices are not implemented yet");
}
}  // namespace np::dev
