#include "netpoll/receiver/stats.h"

namespace np::receiver {
namespace {

template <class S>
void json_of(JsonWriter& j, const S& s, CounterSpan<S> table) {
  for_each_counter(s, table, [&](const CounterName<S>& n, std::uint64_t v) { j.field(n.key, v); });
}

}  // namespace

void add_stats(WorkerStats& into, const WorkerStats& s) noexcept { add_counters(into, s, kWorkerCounters); }

void append_counters_text(std::string& out, const np::listen::SourceStats& s) {
  np::append_counters_text(out, s, np::listen::kSourceCounters);
}

void append_counters_text(std::string& out, const WorkerStats& s) { np::append_counters_text(out, s, kWorkerCounters); }

void add_counters_json(JsonWriter& j, const np::listen::SourceStats& s) { json_of(j, s, np::listen::kSourceCounters); }

void add_counters_json(JsonWriter& j, const WorkerStats& s) { json_of(j, s, kWorkerCounters); }

StatsReport::StatsReport(ReportFormat format, const np::listen::SourceStats& sources, const WorkerStats& workers)
    : format_(format) {
  if (format_.prometheus) {
    CounterRows<np::listen::SourceStats> total_sources(np::listen::kSourceCounters);
    total_sources.add({}, sources);
    total_sources.write(metrics_, "netpoll_listen", {}, ", every source");
    CounterRows<WorkerStats> total_workers(kWorkerCounters);
    total_workers.add({}, workers);
    total_workers.write(metrics_, "netpoll_listen", {}, "");
    per_source_.emplace(np::listen::kSourceCounters);
  } else if (format_.output == OutputFormat::kJson) {
    json_.begin_object().begin_object("total");
    add_counters_json(json_, sources);
    add_counters_json(json_, workers);
    json_.end_object().begin_object("sources");
  } else {
    text_ = "netpoll listen: ";
    append_counters_text(text_, sources);
    text_ += "; ";
    append_counters_text(text_, workers);
    text_ += '\n';
  }
}

void StatsReport::add_source(std::string_view address, const np::listen::SourceStats& s) {
  if (format_.prometheus) {
    if (++tracked_ <= format_.max_sources) per_source_->add(std::string(address), s);
  } else if (format_.output == OutputFormat::kJson) {
    json_.begin_object(address);
    add_counters_json(json_, s);
    json_.end_object();
  } else {
    text_ += "  ";
    text_ += address;
    text_ += ": ";
    append_counters_text(text_, s);
    text_ += '\n';
  }
}

void StatsReport::end_sources() {
  if (!sources_open_) return;
  sources_open_ = false;
  if (format_.prometheus) {
    per_source_->write(metrics_, "netpoll_listen_source", "source", ", this source");
    metrics_.single("netpoll_listen_sources_tracked", "gauge", "sources tracked now", tracked_);
    metrics_.single("netpoll_listen_metrics_sources_omitted", "gauge",
                    "sources tracked but not listed one by one (beyond --metrics-max-sources)",
                    tracked_ - per_source_->size());
  } else if (format_.output == OutputFormat::kJson) {
    json_.end_object();
  }
}

void StatsReport::add_section(std::string_view key, std::string_view json, std::string_view text) {
  end_sources();
  if (format_.prometheus) {
    metrics_.json_numbers("netpoll_listen_" + std::string(key), json, key);
    return;
  }
  if (format_.output == OutputFormat::kJson) {
    json_.field_json(key, json);
  } else {
    text_ += text;
  }
}

std::string StatsReport::finish() {
  end_sources();
  if (format_.prometheus) return metrics_.str();
  if (format_.output == OutputFormat::kJson) {
    json_.end_object();
    return json_.str() + "\n";
  }
  return std::move(text_);
}

}  // namespace np::receiver
