// POSIX helpers shared by the backends in src/dev (internal: not a public
// header, included only by src/dev/*.cpp).
//
//   errno_text(e)  strerror(e) as a string, for setup error messages
//   ErrnoSaver     keeps errno across a data-path call (from base/)
//   UniqueFd       closes a descriptor on every early return of a setup
//                  function; release() hands it to the device that keeps it
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "netpoll/base/errno_saver.h"
#include "netpoll/base/fd_identity.h"

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

}  // namespace np::dev
