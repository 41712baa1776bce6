// POSIX helpers shared by the backends in src/dev (internal: not a public
// header, included only by src/dev/*.cpp).
//
//   errno_text(e)  strerror(e) as a string, for setup error messages
//   ErrnoSaver     keeps errno across a data-path call
//   UniqueFd       closes a descriptor on every early return of a setup
//                  function; release() hands it to the device that keeps it
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace np::dev {

// Context: setup.
inline std::string errno_text(int e) { return std::strerror(e); }

// Restores errno on scope exit: the data path may run inside a signal
// handler, which must not change errno under the code it interrupted.
// Context: any.
class ErrnoSaver {
 public:
  ErrnoSaver() noexcept : saved_(errno) {}
  ~ErrnoSaver() { errno = saved_; }
  ErrnoSaver(const ErrnoSaver&) = delete;
  ErrnoSaver& operator=(const ErrnoSaver&) = delete;

 private:
  int saved_;
};

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

}  // namespace np::dev
