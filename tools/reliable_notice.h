// What netpoll console and netpoll run tell a person about reliable mode:
// a target whose receiver acknowledges nothing falls back to plain sending
// (console::ReliableTuning::first_ack_wait), and they say so, naming what
// would have answered.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "netpoll/console/logger.h"

namespace np::tools {

// A LoggerConfig::on_reliable_fallback that writes one line to stderr,
// "netpoll SUB: no acknowledgement from IP:PORT within S s of the first
// record: ...", for `targets` (LoggerConfig::targets, read now).
std::function<void(const console::ReliableFallback&)> reliable_fallback_notice(
    const char* sub, const std::vector<console::TargetConfig>& targets);

// Records sent without acknowledgement after a fallback, every target's.
std::uint64_t unacknowledged_records(const console::Logger& lg);

}  // namespace np::tools
