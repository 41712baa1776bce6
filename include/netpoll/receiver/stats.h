// netpoll listen's statistics: what each worker counts beyond its sources'
// own counters (listen/source.h), and the report that prints both.
//
// Every counter is declared once, in a table (base/counter_table.h):
// kSourceCounters for a source, kWorkerCounters for a worker (its socket,
// its source table and its outputs: standard output and files, the syslog
// server). Summing over workers, the text report and the JSON report all
// iterate those tables, in their order, so they cannot drift apart.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "netpoll/base/counter.h"
#include "netpoll/base/counter_table.h"
#include "netpoll/base/json.h"
#include "netpoll/base/metrics_text.h"
#include "netpoll/listen/source.h"
#include "netpoll/receiver/output.h"

namespace np::receiver {

struct WorkerStats {
  // The socket.
  Counter kernel_drops;  // SO_MEMINFO: datagrams the kernel dropped on the worker's socket (read every 20 ms)
  Counter truncated;     // datagrams larger than the receive buffers
  // The source table.
  Counter sources_seen;
  Counter sources_evicted;
  Counter responses_sent;    // reliable mode's ncrx answers
  Counter responses_failed;  // answers the socket refused (buffer full, unreachable)
  // The outputs.
  Counter output_errors;   // writes to standard output or a source's file that failed
  Counter syslog_sent;     // messages delivered to the syslog server
  Counter syslog_dropped;  // messages not delivered to it
};

// Every counter of WorkerStats once, in output order.
inline constexpr CounterName<WorkerStats> kWorkerCounters[] = {
    {&WorkerStats::kernel_drops, "kernel_drops", "kernel drops"},
    {&WorkerStats::truncated, "truncated", "truncated"},
    {&WorkerStats::sources_seen, "sources", "sources seen"},
    {&WorkerStats::sources_evicted, "sources_evicted", "sources evicted"},
    {&WorkerStats::responses_sent, "responses_sent", "ncrx responses"},
    {&WorkerStats::responses_failed, "responses_failed", "ncrx responses failed"},
    {&WorkerStats::output_errors, "output_errors", "output errors"},
    {&WorkerStats::syslog_sent, "syslog_sent", "syslog sent"},
    {&WorkerStats::syslog_dropped, "syslog_dropped", "syslog dropped"},
};
static_assert(names_every_counter(kWorkerCounters));

// Adds every counter of `s` to `into`: totals over workers. Context: any.
void add_stats(WorkerStats& into, const WorkerStats& s) noexcept;

// Appends "label value, label value, ..." over a table. Context: setup.
void append_counters_text(std::string& out, const np::listen::SourceStats& s);
void append_counters_text(std::string& out, const WorkerStats& s);
// Adds "key":value fields over a table. Context: setup.
void add_counters_json(JsonWriter& j, const np::listen::SourceStats& s);
void add_counters_json(JsonWriter& j, const WorkerStats& s);

// How a report is written: as the records are (text or JSON, from an
// OutputFormat), or as Prometheus text for `--metrics` (at most
// `max_sources` sources listed one by one).
struct ReportFormat {
  ReportFormat(OutputFormat f) : output(f) {}  // implicit: every OutputFormat is one
  static ReportFormat metrics(std::size_t max_sources) {
    ReportFormat r(OutputFormat::kText);
    r.prometheus = true;
    r.max_sources = max_sources;
    return r;
  }
  OutputFormat output;
  bool prometheus = false;
  std::size_t max_sources = 0;
};

// The report, built in one pass: the totals, each tracked source, then
// any sections the receiver adds (the device of netpoll's own path).
//   text: "netpoll listen: <source counters>; <worker counters>\n"
//         then "  <address>: <source counters>\n" per source,
//         then each section's text;
//   JSON: {"total":{<source counters>,<worker counters>},
//          "sources":{"<address>":{<source counters>},...},
//          "<section>":<its JSON>,...} and '\n';
//   Prometheus (base/metrics_text.h): every total as a counter
//         netpoll_listen_<key>_total, each source's (the first
//         max_sources) as netpoll_listen_source_<key>_total{source="<address>"},
//         the gauges netpoll_listen_sources_tracked and
//         netpoll_listen_metrics_sources_omitted (tracked, not listed);
//         then every number of each section's JSON, untyped,
//         netpoll_listen_<key>_<path> (MetricsText::json_numbers).
// Context: setup.
class StatsReport {
 public:
  StatsReport(ReportFormat format, const np::listen::SourceStats& sources, const WorkerStats& workers);
  // Before any section.
  void add_source(std::string_view address, const np::listen::SourceStats& s);
  // After the sources: `json` (a JSON text) under `key`, or `text` (whole
  // lines) as it is.
  void add_section(std::string_view key, std::string_view json, std::string_view text);
  // The whole report; the builder is spent.
  std::string finish();

 private:
  void end_sources();
  ReportFormat format_;
  std::string text_;
  JsonWriter json_;
  MetricsText metrics_;
  std::optional<CounterRows<np::listen::SourceStats>> per_source_;  // Prometheus: the sources listed
  std::size_t tracked_ = 0;
  bool sources_open_ = true;
};

}  // namespace np::receiver
