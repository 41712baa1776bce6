#include "netpoll/receiver/syslog_writer.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <utility>

#include "io.h"
#include "netpoll/listen/format.h"

namespace np::receiver {
namespace {

constexpr std::size_t kBufferReserve = 1 << 20;
constexpr std::size_t kMessagesReserve = 4096;
constexpr auto kRetryInterval = std::chrono::seconds(1);

}  // namespace

SyslogWriter::SyslogWriter(SyslogTarget target) : target_(std::move(target)) {
  buffer_.reserve(kBufferReserve);
  ends_.reserve(kMessagesReserve);
}

SyslogWriter::~SyslogWriter() { disconnect(); }

void SyslogWriter::add(const FormatContext& c, const np::listen::Record& r) {
  const np::listen::Origin o{std::chrono::system_clock::time_point(std::chrono::microseconds(c.received_us)),
                             c.source};
  if (target_.tcp) {
    // Framing needs the message's length first: it is formatted aside.
    message_.clear();
    np::listen::append_syslog(message_, r, o);
    np::listen::append_octet_counted(buffer_, message_);
  } else {
    np::listen::append_syslog(buffer_, r, o);
  }
  ends_.push_back(buffer_.size());
}

SyslogWriter::Flushed SyslogWriter::flush(np::listen::Clock::time_point now) {
  Flushed f;
  if (ends_.empty()) return f;
  if (!connected() && !connect(now)) {
    f.dropped = ends_.size();
  } else if (target_.tcp) {
    if (send_all(fd_, buffer_)) {
      f.sent = ends_.size();
    } else {
      f.dropped = ends_.size();
    }
  } else {
    std::size_t start = 0;
    for (const std::size_t end : ends_) {
      const std::size_t len = end - start;
      if (::send(fd_, buffer_.data() + start, len, MSG_NOSIGNAL) == static_cast<ssize_t>(len)) {
        ++f.sent;
      } else {
        ++f.dropped;
      }
      start = end;
    }
  }
  if (f.dropped != 0) disconnect();  // connect again next time
  buffer_.clear();
  ends_.clear();
  return f;
}

bool SyslogWriter::connect(np::listen::Clock::time_point now) {
  if (now < retry_at_) return false;
  retry_at_ = now + kRetryInterval;  // at most one attempt a second while they fail
  addrinfo hints{};
  hints.ai_socktype = target_.tcp ? SOCK_STREAM : SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(target_.host.c_str(), std::to_string(target_.port).c_str(), &hints, &res) != 0) return false;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      fd_ = fd;
      break;
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return fd_ >= 0;
}

void SyslogWriter::disconnect() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace np::receiver
