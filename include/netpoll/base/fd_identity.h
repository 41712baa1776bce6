// Which open file a descriptor is: a program that closed a descriptor and
// opened something else under its number has handed the number to another
// file. Devices and the crash route keep the identity (device and inode)
// of what they opened and check it before they write.
#pragma once

#include <sys/stat.h>

#include "netpoll/base/errno_saver.h"

namespace np {

class FdIdentity {
 public:
  FdIdentity() = default;
  // The file `fd` refers to now (unknown if it refers to none). Context: any.
  explicit FdIdentity(int fd) noexcept {
    struct stat st {};
    if (::fstat(fd, &st) == 0) {
      dev_ = st.st_dev;
      ino_ = st.st_ino;
      known_ = true;
    }
  }
  // `fd` still refers to that file (false when closed or replaced).
  // Context: any (one fstat, errno kept).
  bool same(int fd) const noexcept {
    ErrnoSaver keep_errno;
    struct stat st {};
    return known_ && ::fstat(fd, &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_;
  }

 private:
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  bool known_ = false;
};

}  // namespace np
