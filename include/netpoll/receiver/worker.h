// netpoll listen: the receiving threads on kernel sockets.
//
// Each worker owns one UDP socket bound with SO_REUSEPORT to the listening
// address: the kernel hashes every source (address and port) to one of
// them, so a source's records are always handled by the same thread, in
// the order they arrived, without locks. A worker drains its socket with
// recvmmsg into fixed buffers and hands each datagram to its engine
// (receiver/engine.h: the source's state, the outputs, the bounded source
// table), which answers in reliable mode through the worker's socket.
//
// After a source's first datagrams (its entry, its file, the output
// buffers grown), receiving, parsing, reassembling, formatting and writing
// allocate nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "netpoll/base/function_ref.h"
#include "netpoll/base/result.h"
#include "netpoll/receiver/engine.h"

namespace np::receiver {

// Interrupt coalescing, in user space: after a batch that emptied the
// socket, a worker naps this long so that the next datagrams gather and
// one system call takes many of them (under load a wake-up per datagram
// costs more than the records). Only an empty socket waits in poll(). The
// latency it adds is at most this.
inline constexpr std::chrono::microseconds kBatchNap{250};

class Worker : private Responder {
 public:
  // Opens and binds the worker's socket. Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<Worker>> open(unsigned id, const Options& options, Shared& shared);
  ~Worker() override;

  // Receives until shared.stop, then delivers what its sources hold.
  // Context: the worker's own thread.
  void run();

  // Context: any thread (counters are atomic).
  const WorkerStats& stats() const { return engine_.stats(); }
  // What it received, per source (receiver/engine.h). Context: setup.
  const Engine& engine() const { return engine_; }
  void for_each_source(FunctionRef<void(std::string_view address, const np::listen::SourceStats& s)> each) const {
    engine_.for_each_source(each);
  }
  void add_totals(np::listen::SourceStats& into) const { engine_.add_totals(into); }
  std::uint16_t bound_port() const { return bound_port_; }

 private:
  struct Buffers;
  Worker(unsigned id, const Options& options, Shared& shared);
  // The socket's running count of datagrams the kernel dropped (its
  // receive buffer full) into the kernel_drops counter.
  void read_kernel_drops();
  // Reliable mode's answers go out of the worker's socket.
  bool respond(const SourceEntry& e, std::string_view datagram) noexcept override;

  unsigned id_;
  const Options options_;  // a copy: each worker may differ (the bound port)
  Shared& shared_;
  int fd_ = -1;
  std::uint16_t bound_port_ = 0;
  std::unique_ptr<Buffers> buffers_;  // recvmmsg's, made once
  Engine engine_;
};

// The statistics of every worker as one report (receiver/stats.h): totals
// over all of them, then each source they track (engines_report()).
// Context: setup.
std::string stats_report(std::span<const std::unique_ptr<Worker>> workers, ReportFormat format);

}  // namespace np::receiver
