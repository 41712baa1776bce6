#include "netpoll/dumpd/stats.h"

#include "netpoll/base/json.h"

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

}  // namespace np::dumpd
