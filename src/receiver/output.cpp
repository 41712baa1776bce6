#include "netpoll/receiver/output.h"

#include <chrono>

#include "netpoll/listen/format.h"

namespace np::receiver {
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

}  // namespace np::receiver
