#include "listen_format.h"

#include <chrono>

#include "netpoll/listen/format.h"

namespace np::tools::listen {
namespace {

np::listen::Origin origin(const FormatContext& c) {
  return {std::chrono::system_clock::time_point(std::chrono::microseconds(c.received_us)), c.source};
}

}  // namespace

void append_record(std::string& out, OutputFormat f, const FormatContext& c, const np::listen::Record& r) {
  if (f == OutputFormat::kJson) {
    np::listen::append_json(out, r, origin(c));
  } else {
    np::listen::append_human(out, r, origin(c));
  }
}

void append_gap(std::string& out, OutputFormat f, const FormatContext& c, const np::listen::Gap& g) {
  if (f == OutputFormat::kJson) {
    np::listen::append_json_gap(out, g, origin(c));
  } else {
    np::listen::append_human_gap(out, g, origin(c));
  }
}

void append_reset(std::string& out, OutputFormat f, const FormatContext& c, std::uint64_t from, std::uint64_t to) {
  if (f == OutputFormat::kJson) {
    np::listen::append_json_reset(out, from, to, origin(c));
  } else {
    np::listen::append_human_reset(out, from, to, origin(c));
  }
}

void append_syslog(std::string& out, bool tcp, const FormatContext& c, const np::listen::Record& r) {
  if (!tcp) {
    np::listen::append_syslog(out, r, origin(c));
    return;
  }
  // Framing needs the message's length first: format it aside (a buffer
  // kept per thread, so no allocation once it has grown).
  thread_local std::string message;
  message.clear();
  np::listen::append_syslog(message, r, origin(c));
  np::listen::append_octet_counted(out, message);
}

}  // namespace np::tools::listen
