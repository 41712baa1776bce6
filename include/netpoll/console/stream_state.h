// A stream's counters that outlive a process: the record sequence number
// and each target's msgid, kept in a small file mapped shared.
//
// Receivers key a netconsole stream by the sender's address and judge it by
// its sequence numbers: Linux numbers records from 0 at boot and never
// again until the next boot, so a number that goes back means a reboot (our
// listen: a reset; netconsd: stale or out of order records, dropped). A
// process that starts numbering from 0 again, from the same address, looks
// like that — its first records are lost or mistaken. With a StreamState,
// `netpoll console` and `netpoll run` go on from where the last run from
// that source to that target stopped, as one stream, and processes sending
// at the same time draw from one counter (atomics in shared memory work
// across processes), so the receiver still sees one sequence.
//
// The file lives under /run/netpoll/streams/ (root) or
// $XDG_RUNTIME_DIR/netpoll/streams/: a tmpfs emptied at boot, as Linux's
// own numbering restarts at boot. A file that is not a stream state (wrong
// size or magic) is refused with a message, never overwritten.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "netpoll/base/result.h"
#include "netpoll/console/run_shared.h"
#include "netpoll/core/options.h"

namespace np::console {

struct StreamCounters {
  static constexpr std::uint32_t kMagic = 0x4e505331;  // "NPS1"
  std::uint32_t magic = kMagic;
  std::uint32_t targets = 0;  // informational: how many msgid counters are in use
  std::atomic<std::uint64_t> seq{0};
  std::atomic<std::uint32_t> msgid[kRunMaxTargets] = {};
};

class StreamState {
 public:
  // Opens (creating it and its directory if needed) the state at `path`.
  // Context: setup.
  [[nodiscard]] static SetupResult<StreamState> open(const std::string& path);
  // Counters of this process alone (a memfd: `netpoll run` still shares
  // them with its program), for a stream that starts at 0. Context: setup.
  [[nodiscard]] static SetupResult<StreamState> fresh();

  StreamState(StreamState&& o) noexcept;
  StreamState& operator=(StreamState&& o) noexcept;
  StreamState(const StreamState&) = delete;
  StreamState& operator=(const StreamState&) = delete;
  ~StreamState();

  StreamCounters& counters() noexcept { return *counters_; }
  // The descriptor of the mapping (a child maps it too). Context: any.
  int fd() const noexcept { return fd_; }
  const std::string& path() const noexcept { return path_; }  // empty: fresh()

 private:
  StreamState() = default;
  int fd_ = -1;
  StreamCounters* counters_ = nullptr;
  std::string path_;
};

// Where a sender's stream state lives by default: one file per source and
// targets, "<dir>/<local-port>@<device>-<remote-ip>:<remote-port>[+...]"
// (the targets as given, before resolution: the same command line finds the
// same file). The directory: $NETPOLL_STREAM_DIR if set, else
// /run/netpoll/streams when writable (root), else
// $XDG_RUNTIME_DIR/netpoll/streams, else /tmp/netpoll-UID/streams.
// Context: setup.
std::string default_stream_state_path(const std::vector<core::TargetOptions>& targets);

}  // namespace np::console
