// netpoll listen: the receiving threads.
//
// Each worker owns one UDP socket bound with SO_REUSEPORT to the listening
// address: the kernel hashes every source (address and port) to one of
// them, so a source's records are always handled by the same thread, in
// the order they arrived, without locks. A worker drains its socket with
// recvmmsg into fixed buffers, feeds each datagram to its source's state
// (listen/source.h), writes what comes out (receiver/output.h: standard
// output, a file per source; receiver/syslog_writer.h), answers in
// reliable mode, and keeps the sources it tracks in a bounded table
// (receiver/source_table.h: least recently used evicted, its held records
// delivered first).
//
// After a source's first datagrams (its entry, its file, the output
// buffers grown), receiving, parsing, reassembling, formatting and writing
// allocate nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "netpoll/base/function_ref.h"
#include "netpoll/base/result.h"
#include "netpoll/listen/source.h"
#include "netpoll/receiver/output.h"
#include "netpoll/receiver/stats.h"
#include "netpoll/receiver/syslog_writer.h"

namespace np::receiver {

// Interrupt coalescing, in user space: after a batch that emptied the
// socket, a worker naps this long so that the next datagrams gather and
// one system call takes many of them (under load a wake-up per datagram
// costs more than the records). Only an empty socket waits in poll(). The
// latency it adds is at most this.
inline constexpr std::chrono::microseconds kBatchNap{250};

struct Options {
  std::string bind = "::";  // "::" listens on IPv6 and IPv4
  std::uint16_t port = 6666;
  unsigned workers = 1;
  OutputFormat format = OutputFormat::kText;
  bool to_stdout = true;
  std::string dir;  // non-empty: one file per source here
  std::optional<SyslogTarget> syslog;
  np::listen::SourceLimits limits;
  std::size_t max_sources = 1024;
  int rcvbuf = 64 << 20;
  std::uint64_t count = 0;  // stop after this many records (0: never)
  // Benchmarks only: format every record as for standard output, then
  // discard the bytes (what writing costs, told apart from the rest).
  bool discard_output = false;
};

// What every worker shares: the stop flag, the record count for --count,
// standard output.
struct Shared {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> records{0};
  std::mutex stdout_mutex;  // whole batches go out at once
};

class Worker {
 public:
  // Opens and binds the worker's socket. Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<Worker>> open(unsigned id, const Options& options, Shared& shared);
  ~Worker();

  // Receives until shared.stop, then delivers what its sources hold.
  // Context: the worker's own thread.
  void run();

  // Context: any thread (counters are atomic).
  const WorkerStats& stats() const { return stats_; }
  // Calls `each` for every tracked source, under the table lock (sources
  // only come and go under it). Context: setup.
  void for_each_source(FunctionRef<void(std::string_view address, const np::listen::SourceStats& s)> each) const;
  // Adds the per-source counters of every source this worker saw (evicted
  // ones included). Context: setup.
  void add_totals(np::listen::SourceStats& into) const;
  std::uint16_t bound_port() const { return bound_port_; }

 private:
  struct Impl;
  Worker(unsigned id, const Options& options, Shared& shared);

  unsigned id_;
  const Options options_;  // a copy: each worker may differ (the bound port)
  Shared& shared_;
  int fd_ = -1;
  std::uint16_t bound_port_ = 0;
  WorkerStats stats_;
  std::unique_ptr<Impl> impl_;
};

// The statistics of every worker as one report (receiver/stats.h): totals
// over all of them, then each source they track. Context: setup.
std::string stats_report(std::span<const std::unique_ptr<Worker>> workers, OutputFormat format);

}  // namespace np::receiver
