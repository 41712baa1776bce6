// POSIX helpers shared by the backends in src/dev (internal: not a public
// header, included only by src/dev/*.cpp).
//
//   errno_text(e)  strerror(e) as a string, for setup error messages
//   ErrnoSaver     keeps errno across a data-path call (from base/)
//   UniqueFd       closes a descriptor on every early return of a setup
//                  function; release() hands it to the device that keeps it
//   os_error       "NAME: WHAT: errno text" as a setup error
//   look_up_interface  an Ethernet interface's index, MAC and MTU (ioctl)
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include <cstddef>
#include <expected>

#include "netpoll/base/addr.h"
#include "netpoll/base/errno_saver.h"
#include "netpoll/base/fd_identity.h"
#include "netpoll/base/result.h"

namespace np::dev {

// Context: setup.
inline std::string errno_text(int e) { return std::strerror(e); }

using np::ErrnoSaver;  // netpoll/base/errno_saver.h

// Owns a descriptor (or -1) until release(). Context: setup.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) noexcept : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

using np::FdIdentity;  // netpoll/base/fd_identity.h

// "NAME: WHAT: <errno text>". Context: setup.
std::unexpected<Error> os_error(Errc code, const std::string& name, const std::string& what, int e);

// What a backend needs to know of the interface it opens.
struct InterfaceInfo {
  int ifindex = 0;
  MacAddr mac;
  std::size_t mtu = 0;
};
// Looks `ifname` up through `fd` (any socket: it answers for the namespace
// it was made in). Errors name the device (`name`); an interface that is
// not Ethernet is refused. Context: setup.
SetupResult<InterfaceInfo> look_up_interface(int fd, const std::string& name, const std::string& ifname);

}  // namespace np::dev
