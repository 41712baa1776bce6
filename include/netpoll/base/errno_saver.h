// ErrnoSaver: restores errno on scope exit. Code that may run inside a
// signal handler (the data path, the crash path) must not change errno
// under the code it interrupted.
#pragma once

#include <cerrno>

namespace np {

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

}  // namespace np
