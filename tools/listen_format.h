// The listen tool's view of the record formats (listen/format.h): one call
// per record, event and output format.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "listen_worker.h"
#include "netpoll/listen/source.h"

namespace np::tools::listen {

// Where and when: set per source and per receive batch.
struct FormatContext {
  std::string_view source;    // "ip:port"
  std::int64_t received_us = 0;  // CLOCK_REALTIME
};

void append_record(std::string& out, OutputFormat f, const FormatContext& c, const np::listen::Record& r);
void append_gap(std::string& out, OutputFormat f, const FormatContext& c, const np::listen::Gap& g);
void append_reset(std::string& out, OutputFormat f, const FormatContext& c, std::uint64_t from, std::uint64_t to);
// RFC 5424; over TCP with octet-counted framing (RFC 6587).
void append_syslog(std::string& out, bool tcp, const FormatContext& c, const np::listen::Record& r);

}  // namespace np::tools::listen
