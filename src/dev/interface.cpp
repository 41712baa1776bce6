// The setup helpers of posix.h that are more than a line: the backends that
// open an interface by name (packet:, xdp:) look it up the same way.
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>

#include <array>
#include <cstring>

#include "posix.h"

namespace np::dev {

std::unexpected<Error> os_error(Errc code, const std::string& name, const std::string& what, int e) {
  return setup_error(code, name + ": " + what + ": " + errno_text(e));
}

SetupResult<InterfaceInfo> look_up_interface(int fd, const std::string& name, const std::string& ifname) {
  ifreq ifr{};
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) return setup_error(Errc::kNoSuchDevice, "no such interface: " + ifname);
  std::memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  if (::ioctl(fd, SIOCGIFINDEX, &ifr) != 0) {
    const int e = errno;
    if (e == ENODEV) return setup_error(Errc::kNoSuchDevice, "no such interface: " + ifname);
    return os_error(Errc::kIo, name, "cannot look up interface " + ifname, e);
  }
  InterfaceInfo info;
  info.ifindex = ifr.ifr_ifindex;
  if (::ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) return os_error(Errc::kIo, name, "cannot read the MAC address of " + ifname, errno);
  if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
    return setup_error(Errc::kUnsupported, name + ": " + ifname + " is not an Ethernet interface (link type " +
                                              std::to_string(ifr.ifr_hwaddr.sa_family) + ")");
  }
  std::array<std::byte, MacAddr::kLen> mac{};
  std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, MacAddr::kLen);
  info.mac = MacAddr(mac);
  if (::ioctl(fd, SIOCGIFMTU, &ifr) != 0) return os_error(Errc::kIo, name, "cannot read the MTU of " + ifname, errno);
  info.mtu = static_cast<std::size_t>(ifr.ifr_mtu);
  return info;
}

}  // namespace np::dev
