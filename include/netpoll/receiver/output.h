// netpoll listen's outputs: what a source delivers (listen/source.h), as
// the line format the operator chose (listen/format.h formats it).
//
// One call per record, gap or reset; each appends to a caller's string and
// reuses its capacity (Context: any once `out` has grown, as listen/format.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "netpoll/listen/source.h"

namespace np::receiver {

// The lines written to standard output and the per-source files (and, for
// statistics, to standard error).
enum class OutputFormat : std::uint8_t {
  kText,  // a line for people: <time> <source> <facility>.<level> <seq> <text>
  kJson,  // one JSON object per line
};

// Where and when: set per source and per receive batch.
struct FormatContext {
  std::string_view source;       // "ip:port"
  std::int64_t received_us = 0;  // CLOCK_REALTIME, microseconds since the epoch
};

void append_record(std::string& out, OutputFormat f, const FormatContext& c, const np::listen::Record& r);
void append_gap(std::string& out, OutputFormat f, const FormatContext& c, const np::listen::Gap& g);
void append_reset(std::string& out, OutputFormat f, const FormatContext& c, std::uint64_t from, std::uint64_t to);

}  // namespace np::receiver
