#include "netpoll/dumpd/stats.h"

#include "netpoll/base/json.h"
#include "netpoll/base/metrics_text.h"

namespace np::dumpd {
namespace {

template <class S>
void json_of(JsonWriter& j, std::string_view key, const S& s, CounterSpan<S> table) {
  j.begin_object(key);
  for_each_counter(s, table, [&](const CounterName<S>& n, std::uint64_t v) { j.field(n.key, v); });
  j.end_object();
}

}  // namespace

std::string stats_text(const DumpdStats& s) {
  std::string out = "netpoll dumpd: ";
  append_counters_text(out, s.dumps, kDumpCounters);
  out += "\n  refused: ";
  append_counters_text(out, s.refused, kRefusalCounters);
  out += "\n  errors: ";
  append_counters_text(out, s.errors, kErrorCounters);
  out += '\n';
  return out;
}

std::string stats_json(const DumpdStats& s) {
  JsonWriter j;
  j.begin_object();
  json_of(j, "dumps", s.dumps, kDumpCounters);
  json_of(j, "refused", s.refused, kRefusalCounters);
  json_of(j, "errors", s.errors, kErrorCounters);
  j.end_object();
  return j.str() + "\n";
}

std::string stats_metrics(const DumpdStats& s) {
  MetricsText m;
  const auto families = [&m]<class S>(std::string_view prefix, const S& stats, CounterSpan<S> table,
                                      std::string_view tail) {
    CounterRows<S> rows(table);
    rows.add({}, stats);
    rows.write(m, prefix, {}, tail);
  };
  families("netpoll_dumpd", s.dumps, kDumpCounters, std::string_view(""));
  families("netpoll_dumpd_refused", s.refused, kRefusalCounters, std::string_view(": datagrams refused"));
  families("netpoll_dumpd_errors", s.errors, kErrorCounters, std::string_view(": the server's own errors"));
  return m.str();
}

}  // namespace np::dumpd
