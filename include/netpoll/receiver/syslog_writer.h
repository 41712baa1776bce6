// netpoll listen's syslog forwarding: records as RFC 5424 messages
// (listen/format.h) to one server, over UDP, one datagram per message, or
// over TCP with RFC 6587 §3.4.1 octet counting ("LEN SP MSG").
//
// add() formats a record into the writer's buffer; flush() sends what is
// buffered, once per receive batch. The connection is made at the first
// flush. A server that cannot be reached, or a send that fails, drops the
// messages of that flush (flush() says how many went and how many did not)
// and closes the connection; a later flush connects again, at most once a
// second while attempts fail (time is passed in). One SyslogWriter is used
// by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "netpoll/listen/source.h"
#include "netpoll/receiver/output.h"

namespace np::receiver {

struct SyslogTarget {
  bool tcp = false;
  std::string host;  // a name or an address, as getaddrinfo(3) takes it
  std::uint16_t port = 514;
};

class SyslogWriter {
 public:
  // Opens nothing yet. Context: setup.
  explicit SyslogWriter(SyslogTarget target);
  ~SyslogWriter();
  SyslogWriter(const SyslogWriter&) = delete;
  SyslogWriter& operator=(const SyslogWriter&) = delete;

  const SyslogTarget& target() const { return target_; }

  // Formats one record and buffers it. Allocates only while the buffers
  // grow. Context: any once they have grown.
  void add(const FormatContext& c, const np::listen::Record& r);
  // Messages buffered since the last flush. Context: any.
  std::size_t pending() const { return ends_.size(); }

  struct Flushed {
    std::uint64_t sent = 0;
    std::uint64_t dropped = 0;  // not delivered to the server
  };
  // Sends every buffered message (connecting first when there is no
  // connection and the last attempt is a second old); the buffer is empty
  // afterwards. Context: setup (it may resolve the host and connect).
  Flushed flush(np::listen::Clock::time_point now);

  bool connected() const { return fd_ >= 0; }

 private:
  bool connect(np::listen::Clock::time_point now);
  void disconnect();

  SyslogTarget target_;
  int fd_ = -1;
  std::string buffer_;             // the messages back to back (TCP: framed)
  std::vector<std::size_t> ends_;  // where each message ends in buffer_
  std::string message_;            // TCP: one message formatted aside, for its length
  np::listen::Clock::time_point retry_at_{};
};

}  // namespace np::receiver
