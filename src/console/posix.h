// POSIX helpers shared by src/console/*.cpp (internal, not a public header).
#pragma once

#include <cerrno>

namespace np::console {

// Restores errno on scope exit: the crash path runs inside a signal handler,
// which must not change errno under the code it interrupted. Context: any.
class ErrnoSaver {
 public:
  ErrnoSaver() noexcept : saved_(errno) {}
  ~ErrnoSaver() { errno = saved_; }
  ErrnoSaver(const ErrnoSaver&) = delete;
  ErrnoSaver& operator=(const ErrnoSaver&) = delete;

 private:
  int saved_;
};

}  // namespace np::console
