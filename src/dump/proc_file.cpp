#include "proc_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace np::dump::detail {
namespace {

constexpr int kEintrRetries = 16;

}  // namespace

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

Result<Fd> open_read(const char* path, int extra_flags) noexcept {
  for (int i = 0; i < kEintrRetries; ++i) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC | extra_flags);
    if (fd >= 0) return Fd(fd);
    if (errno == EINTR) continue;
    if (errno == ENOENT || errno == ESRCH) return fail(Errc::kNotFound);
    if (errno == EACCES || errno == EPERM) return fail(Errc::kPermission);
    return fail(Errc::kIo);
  }
  return fail(Errc::kIo);
}

Result<std::size_t> read_file(const char* path, std::span<std::byte> buf) noexcept {
  auto fd = open_read(path);
  if (!fd) return fail(fd.error());
  std::size_t got = 0;
  // Each round reads at least one byte or ends; the retries bound EINTR.
  int retries = 0;
  while (got < buf.size()) {
    const ssize_t r = ::read(fd->get(), buf.data() + got, buf.size() - got);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EINTR && ++retries < kEintrRetries) continue;
      return fail(Errc::kIo);
    }
    got += static_cast<std::size_t>(r);
  }
  return got;
}

Result<bool> LineReader::fill() noexcept {
  if (eof_) return false;
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  for (int i = 0; i < kEintrRetries; ++i) {
    const ssize_t r = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
    if (r > 0) {
      end_ += static_cast<std::size_t>(r);
      return true;
    }
    if (r == 0) {
      eof_ = true;
      return false;
    }
    if (errno != EINTR) return fail(Errc::kIo);
  }
  return fail(Errc::kIo);
}

Result<std::string_view> LineReader::next() noexcept {
  if (buf_.empty()) return fail(Errc::kNoBuffer);
  // Bounded: every round either returns, or reads new bytes into a
  // buffer that then holds more than before, or drops a full buffer
  // while skipping; a /proc file ends. The cap is a guard against a
  // file that never does.
  for (int round = 0; round < 1 << 20; ++round) {
    const std::string_view have(buf_.data() + begin_, end_ - begin_);
    const std::size_t nl = have.find('\n');
    if (skipping_) {
      if (nl != std::string_view::npos) {
        begin_ += nl + 1;
        skipping_ = false;
        continue;
      }
      begin_ = end_ = 0;
    } else if (nl != std::string_view::npos) {
      begin_ += nl + 1;
      return have.substr(0, nl);
    } else if (end_ - begin_ == buf_.size()) {
      // A line longer than the buffer: hand out what fits, drop the rest.
      truncated_ = true;
      skipping_ = true;
      begin_ = end_ = 0;
      return std::string_view(buf_.data(), buf_.size());
    }
    auto more = fill();
    if (!more) return fail(more.error());
    if (!*more) {
      if (skipping_ || begin_ == end_) return fail(Errc::kNotFound);
      const std::string_view last(buf_.data() + begin_, end_ - begin_);
      begin_ = end_;
      return last;
    }
  }
  return fail(Errc::kIo);
}

}  // namespace np::dump::detail
