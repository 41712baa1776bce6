// TAP backend: one /dev/net/tun descriptor in TAP mode, one frame per
// read() or write().
//
// The descriptor is non-blocking, so read() answers EAGAIN when the kernel
// has nothing for us and write() EAGAIN when it cannot take a frame now.
// The kernel side's flags, index and MTU are read through a datagram socket
// made at open in the same namespace as the descriptor: TUN ioctls only set
// things up, and a socket keeps answering for that namespace whichever
// thread asks later.
#include "netpoll/dev/tap.h"

#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "posix.h"

namespace np::dev {
namespace {

// The largest frame the kernel side can hand us: its largest MTU (65535)
// plus an Ethernet header and a VLAN tag it may insert. One byte more, so
// that a read filling the buffer shows a frame was cut.
constexpr std::size_t kRxBufferLen = 65535 + 14 + 4 + 1;

// A locally administered unicast MAC (first byte 0x02) from a 64-bit FNV-1a
// hash of the interface name: the same name gives the same MAC every run,
// so a peer's ARP cache survives our restart.
MacAddr mac_from_name(std::string_view ifname) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : ifname) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return MacAddr(0x02, static_cast<std::uint8_t>(h >> 32), static_cast<std::uint8_t>(h >> 24),
                 static_cast<std::uint8_t>(h >> 16), static_cast<std::uint8_t>(h >> 8),
                 static_cast<std::uint8_t>(h));
}

// What kind of interface `ifname` is, for an error message: "veth", "a TUN
// (layer 3) device", ... Empty if the kernel will not say. Context: setup.
std::string describe_interface(int sock, const std::string& ifname) {
  ethtool_drvinfo info{};
  info.cmd = ETHTOOL_GDRVINFO;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  ifr.ifr_data = reinterpret_cast<char*>(&info);
  if (::ioctl(sock, SIOCETHTOOL, &ifr) != 0) return {};
  const std::string driver(info.driver, strnlen(info.driver, sizeof info.driver));
  const std::string bus(info.bus_info, strnlen(info.bus_info, sizeof info.bus_info));
  // The tun driver names the mode in bus_info.
  if (driver == "tun" && bus == "tun") return "a TUN (layer 3) device";
  if (driver == "tun" && bus == "tap") return "a multi-queue TAP device";
  return "a " + driver + " device";
}

class TapDevice final : public Device {
 public:
  TapDevice(std::string name, int fd, int ctl, int ifindex, MacAddr mac, std::size_t mtu,
            std::unique_ptr<std::byte[]> rx_buffer) noexcept
      : name_(std::move(name)),
        fd_(fd),
        ctl_(ctl),
        ifindex_(ifindex),
        mac_(mac),
        mtu_(mtu),
        rx_buffer_(std::move(rx_buffer)),
        fd_id_(fd),
        ctl_id_(ctl) {}

  ~TapDevice() override {
    // A descriptor given up by revalidate() is someone else's now.
    if (fd_ >= 0) ::close(fd_);  // a non-persistent interface disappears with its last descriptor
    if (ctl_ >= 0) ::close(ctl_);
  }

  // Replacing a TAP descriptor would attach a new queue to the interface
  // (an ioctl sequence, not worth it on the crash path): a lost one is
  // given up, and the device stops transmitting.
  bool revalidate() noexcept override {
    if (fd_ >= 0 && !fd_id_.same(fd_)) fd_ = -1;
    if (ctl_ >= 0 && !ctl_id_.same(ctl_)) ctl_ = -1;
    return fd_ >= 0;
  }

  std::size_t receive(std::size_t budget, FrameSink sink) noexcept override;
  TxStatus transmit(std::span<const std::byte> frame) noexcept override;
  LinkState link() const noexcept override;

  MacAddr mac() const noexcept override { return mac_; }
  std::size_t mtu() const noexcept override { return mtu_; }
  int ifindex() const noexcept override { return ifindex_; }
  int fd() const noexcept override { return fd_; }
  std::string_view name() const noexcept override { return name_; }
  const DeviceStats& stats() const noexcept override { return stats_; }

 private:
  std::string name_;
  int fd_;
  int ctl_;
  int ifindex_;
  MacAddr mac_;
  std::size_t mtu_;
  std::unique_ptr<std::byte[]> rx_buffer_;  // receive side only
  FdIdentity fd_id_;
  FdIdentity ctl_id_;
  DeviceStats stats_;
};

}  // namespace

std::size_t TapDevice::receive(std::size_t budget, FrameSink sink) noexcept {
  ErrnoSaver keep_errno;
  std::size_t delivered = 0;
  for (std::size_t examined = 0; examined < budget; ++examined) {
    const ssize_t n = ::read(fd_, rx_buffer_.get(), kRxBufferLen);
    // EAGAIN: nothing waiting. Anything else (EINTR, EBADFD after the
    // interface was deleted) also ends this call; none is worth a retry loop.
    if (n <= 0) break;
    const auto len = static_cast<std::size_t>(n);
    if (len < kEthHeaderLen || len > mtu_ + kEthHeaderLen || len >= kRxBufferLen) {
      stats_.rx_dropped.add();
      continue;
    }
    stats_.rx_frames.add();
    stats_.rx_bytes.add(len);
    ++delivered;
    sink(std::span<const std::byte>(rx_buffer_.get(), len));
  }
  return delivered;
}

TxStatus TapDevice::transmit(std::span<const std::byte> frame) noexcept {
  ErrnoSaver keep_errno;
  if (frame.size() < kEthHeaderLen || frame.size() > mtu_ + kEthHeaderLen) {
    stats_.tx_errors.add();
    return TxStatus::kError;
  }
  const ssize_t n = ::write(fd_, frame.data(), frame.size());
  if (n == static_cast<ssize_t>(frame.size())) {
    stats_.tx_frames.add();
    stats_.tx_bytes.add(frame.size());
    return TxStatus::kOk;
  }
  // The kernel takes a frame whole or not at all. EAGAIN/ENOBUFS: no buffer
  // now. EIO: the kernel side is down and dropped it; like a NIC with the
  // link down, not taken, worth a retry once the link is back.
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || errno == EIO || errno == EINTR)) {
    stats_.tx_busy.add();
    return TxStatus::kBusy;
  }
  stats_.tx_errors.add();
  return TxStatus::kError;
}

LinkState TapDevice::link() const noexcept {
  ErrnoSaver keep_errno;
  ifreq ifr{};
  // By index, so that a renamed interface is still ours.
  ifr.ifr_ifindex = ifindex_;
  if (::ioctl(ctl_, SIOCGIFNAME, &ifr) != 0) return {};
  if (::ioctl(ctl_, SIOCGIFFLAGS, &ifr) != 0) return {};
  LinkState s;
  s.running = (ifr.ifr_flags & IFF_UP) != 0;
  // The TAP's carrier is "a reader is attached", and we are that reader
  // for as long as this device exists. (IFF_RUNNING would say the same,
  // but only after the kernel's link watcher has caught up.)
  s.carrier = s.running;
  return s;
}

SetupResult<std::unique_ptr<Device>> open_tap_device(std::string name, std::string_view ifname,
                                                    const TapOptions& options) {
  const std::string ifname_s(ifname);
  if (ifname_s.size() >= IFNAMSIZ) {
    return setup_error(Errc::kInvalidArgument,
                       name + ": interface name '" + ifname_s + "' is longer than " +
                           std::to_string(IFNAMSIZ - 1) + " characters");
  }
  // The control socket first: it tells "exists but is not a TAP" from other
  // refusals, and it must live in the namespace the interface will be in.
  UniqueFd ctl(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (ctl.get() < 0) return setup_error(Errc::kIo, name + ": cannot create a control socket: " + errno_text(errno));

  UniqueFd tun(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (tun.get() < 0) {
    const int e = errno;
    if (e == ENOENT || e == ENODEV || e == ENXIO) {
      return setup_error(Errc::kNoSuchDevice,
                         name + ": /dev/net/tun is missing (load the tun module, or create it with "
                                "'mknod /dev/net/tun c 10 200')");
    }
    if (e == EACCES || e == EPERM) {
      return setup_error(Errc::kPermission, name + ": cannot open /dev/net/tun: " + errno_text(e) +
                                                " (needs CAP_NET_ADMIN or access to the device node)");
    }
    return setup_error(Errc::kIo, name + ": cannot open /dev/net/tun: " + errno_text(e));
  }

  ifreq probe{};
  std::memcpy(probe.ifr_name, ifname_s.data(), ifname_s.size());
  const bool existed = !ifname_s.empty() && ::ioctl(ctl.get(), SIOCGIFINDEX, &probe) == 0;

  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname_s.data(), ifname_s.size());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(tun.get(), TUNSETIFF, &ifr) != 0) {
    const int e = errno;
    if (e == EPERM || e == EACCES) {
      return setup_error(Errc::kPermission, name + ": " + (existed ? "attaching to" : "creating") +
                                                " TAP interface " + ifname_s +
                                                " needs CAP_NET_ADMIN (run as root)");
    }
    if (e == EINVAL && existed) {
      const std::string kind = describe_interface(ctl.get(), ifname_s);
      return setup_error(Errc::kUnsupported, name + ": interface " + ifname_s + " exists and is not a TAP device" +
                                                 (kind.empty() ? "" : " (it is " + kind + ")"));
    }
    if (e == EBUSY) {
      return setup_error(Errc::kExists,
                         name + ": TAP interface " + ifname_s + " is already attached to another process");
    }
    return setup_error(Errc::kIo, name + ": TUNSETIFF " + ifname_s + ": " + errno_text(e));
  }
  // The kernel names the interface when we gave none (or a tap%d pattern).
  const std::string actual(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));

  if (::ioctl(ctl.get(), SIOCGIFINDEX, &ifr) != 0) {
    return setup_error(Errc::kIo, name + ": cannot look up " + actual + ": " + errno_text(errno));
  }
  const int ifindex = ifr.ifr_ifindex;
  if (::ioctl(ctl.get(), SIOCGIFMTU, &ifr) != 0) {
    return setup_error(Errc::kIo, name + ": cannot read the MTU of " + actual + ": " + errno_text(errno));
  }
  const auto mtu = static_cast<std::size_t>(ifr.ifr_mtu);

  if (options.bring_up) {
    if (::ioctl(ctl.get(), SIOCGIFFLAGS, &ifr) != 0) {
      return setup_error(Errc::kIo, name + ": cannot read the flags of " + actual + ": " + errno_text(errno));
    }
    if ((ifr.ifr_flags & IFF_UP) == 0) {
      ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
      if (::ioctl(ctl.get(), SIOCSIFFLAGS, &ifr) != 0) {
        const int e = errno;
        return setup_error(e == EPERM ? Errc::kPermission : Errc::kIo,
                           name + ": cannot bring " + actual + " up: " + errno_text(e));
      }
    }
  }

  std::unique_ptr<std::byte[]> rx_buffer(new std::byte[kRxBufferLen]);
  const MacAddr mac = options.mac ? *options.mac : mac_from_name(actual);
  return std::unique_ptr<Device>(
      new TapDevice(std::move(name), tun.release(), ctl.release(), ifindex, mac, mtu, std::move(rx_buffer)));
}

}  // namespace np::dev
