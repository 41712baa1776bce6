// netpoll listen's engine: everything that happens to a datagram once it
// has been received, whoever received it.
//
// A receiving thread (a kernel socket worker, receiver/worker.h; or
// netpoll's own receive path on a device, devlisten/device_receiver.h)
// hands the engine each datagram with its sender and its receive time.
// The engine finds or makes the sender's entry in its bounded table
// (receiver/source_table.h: least recently used evicted, what it held
// delivered first), feeds the source's state (listen/source.h: reassembly,
// order, gaps, resets), writes what comes out (receiver/output.h: standard
// output, a file per source; receiver/syslog_writer.h), counts --count,
// and in reliable mode gives the source's answer to the receiver's
// Responder, which sends it the way it receives.
//
// One thread owns an engine. Between batches of datagrams it calls
// end_batch() (the outputs are written when held long enough or big
// enough) and tick() (timeouts), and before it waits for datagrams idle()
// (which says how long it may wait); stop() delivers what every source
// holds and writes it. After a source's first datagrams (its
// entry, its file, the output buffers grown), nothing here allocates.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "netpoll/base/addr.h"
#include "netpoll/base/function_ref.h"
#include "netpoll/listen/source.h"
#include "netpoll/receiver/output.h"
#include "netpoll/receiver/source_table.h"
#include "netpoll/receiver/stats.h"
#include "netpoll/receiver/syslog_writer.h"

namespace np::receiver {

// What listen was asked to do with what it receives, and (bind, port,
// workers, rcvbuf) how its kernel sockets receive.
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

// What every receiving thread shares: the stop flag, the record count for
// --count, standard output.
struct Shared {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> records{0};
  std::mutex stdout_mutex;  // whole batches go out at once
};

// When a datagram (or a batch of them) arrived: the monotonic time the
// sources' timeouts run on, and the wall clock the outputs print.
struct ReceiveTime {
  np::listen::Clock::time_point steady;
  std::int64_t wall_us = 0;  // CLOCK_REALTIME, microseconds since the epoch

  // Both clocks now. Context: any.
  static ReceiveTime now() noexcept;
};

// Who sent a datagram: its address and port (the source's key, and where
// answers go) and, on netpoll's own path, the Ethernet source of its
// frame (where answers go on the link: the sender, or the router it came
// through). A kernel socket leaves `mac` zero.
struct From {
  const sockaddr_storage& addr;
  socklen_t len;
  MacAddr mac{};
};

// Sends reliable mode's answers the way its receiver receives.
class Responder {
 public:
  virtual ~Responder() = default;
  // Sends `datagram` to `e`'s source (e.peer, e.peer_mac); true when it
  // went out (or was queued to). Context: the engine's thread.
  virtual bool respond(const SourceEntry& e, std::string_view datagram) noexcept = 0;
};

class Engine : private np::listen::Sink {
 public:
  // Opens the syslog writer; files are opened per source as they come.
  // Context: setup.
  Engine(const Options& options, Shared& shared, Responder& responder);
  ~Engine() override;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // One datagram: its source's state, its outputs (buffered until
  // end_batch()), its answer. Allocates only for a source not seen before.
  // Context: the engine's thread.
  void datagram(const From& from, std::string_view bytes, const ReceiveTime& at);
  // The end of a batch of datagrams: writes what they produced once the
  // oldest of it has waited 10 ms or 256 KiB are held (syslog's datagrams go
  // at once). Context: the engine's thread.
  void end_batch(const ReceiveTime& at);
  // The receiver is about to wait for datagrams: end_batch(), and how long
  // it may wait (at most most_ms) before what is still held must be
  // written: the poll() timeout. Context: the engine's thread.
  [[nodiscard]] int idle(const ReceiveTime& at, int most_ms);
  // Timeouts (gaps, fragments given up, reliable mode's answers) of every
  // source whose deadline has come, at most every 20 ms; writes what they
  // produced. Context: the engine's thread.
  void tick(const ReceiveTime& at);
  // Delivers what every source holds and writes it: the receiver stops.
  // Context: the engine's thread.
  void stop(const ReceiveTime& at);

  // The counters of the receiver around the engine (kernel drops,
  // truncated) are bumped by that receiver's thread; the rest by the
  // engine. Context: any thread (counters are atomic).
  WorkerStats& stats() { return stats_; }
  const WorkerStats& stats() const { return stats_; }
  // Calls `each` for every tracked source, under the table lock (sources
  // only come and go under it). Context: setup.
  void for_each_source(FunctionRef<void(std::string_view address, const np::listen::SourceStats& s)> each) const;
  // Adds the per-source counters of every source this engine saw (evicted
  // ones included). Context: setup.
  void add_totals(np::listen::SourceStats& into) const;

 private:
  // The Sink: what a source hands over.
  void record(const np::listen::Record& r) override;
  void gap(const np::listen::Gap& g) override;
  void reset(std::uint64_t from, std::uint64_t to) override;

  std::string* current_file();
  void feed_from(SourceEntry& e);
  SourceEntry& source_for(const From& from);
  void evict_oldest();
  void respond(SourceEntry& e, np::listen::Clock::time_point now);
  void flush_file(SourceEntry& e);
  void flush_outputs(np::listen::Clock::time_point now);
  void flush_syslog(np::listen::Clock::time_point now);
  std::size_t held_bytes() const;

  const Options& options_;
  Shared& shared_;
  Responder& responder_;
  WorkerStats stats_;
  SourceTable table_;
  std::vector<SourceEntry*> dirty_;  // sources with bytes in their file buffer
  std::string out_;                  // standard output, written per batch
  std::unique_ptr<SyslogWriter> syslog_;
  FormatContext ctx_;
  SourceEntry* current_ = nullptr;  // the source whose datagram is being fed
  np::listen::Clock::time_point next_tick_{};
  // Since when out_ or a file buffer holds bytes not yet written (none:
  // everything is written).
  std::optional<np::listen::Clock::time_point> held_since_;
};

// The statistics of every engine as one report builder (receiver/stats.h):
// totals over all of them, then each source they track; the caller may add
// more before finish(). Context: setup.
StatsReport engines_report(std::span<const Engine* const> engines, ReportFormat format);

}  // namespace np::receiver
