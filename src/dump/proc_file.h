// Reading /proc files on the crash path: open(2), read(2), close(2) into
// buffers the caller owns, every loop bounded. No stdio, no heap.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "netpoll/base/result.h"

// Private to this layer: hidden, so that libnetpoll.so, which exports
// namespace np:: (src/library/exports.map), does not export it.
#pragma GCC visibility push(hidden)
namespace np::dump::detail {

// A descriptor closed when it goes. Context: any.
class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd();
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }
  int release() noexcept {
    const int f = fd_;
    fd_ = -1;
    return f;
  }
  bool valid() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// open(path, O_RDONLY | O_CLOEXEC [| extra]); kNotFound or kPermission or
// kIo. Context: any.
[[nodiscard]] Result<Fd> open_read(const char* path, int extra_flags = 0) noexcept;

// Reads a file from its start into `buf` until its end or `buf` is full;
// the bytes read. Context: any.
[[nodiscard]] Result<std::size_t> read_file(const char* path, std::span<std::byte> buf) noexcept;

// Lines of a file read in chunks through one fixed buffer. A line longer
// than the buffer comes out cut to the buffer's size (truncated() says
// so) and its rest is skipped. Each next() reads at most a bounded number
// of chunks.
class LineReader {
 public:
  LineReader(int fd, std::span<char> buf) noexcept : fd_(fd), buf_(buf) {}
  // The next line without its newline; kNotFound at the end of the file,
  // kIo when read(2) fails. The view is valid until the next call.
  // Context: any.
  [[nodiscard]] Result<std::string_view> next() noexcept;
  bool truncated() const noexcept { return truncated_; }

 private:
  Result<bool> fill() noexcept;  // false at the end of the file
  int fd_;
  std::span<char> buf_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  bool eof_ = false;
  bool skipping_ = false;  // dropping the rest of a line that did not fit
  bool truncated_ = false;
};

}  // namespace np::dump::detail
#pragma GCC visibility pop
