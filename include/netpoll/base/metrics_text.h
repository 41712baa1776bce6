// Statistics in the Prometheus text exposition format (version 0.0.4), as
// `netpoll listen --metrics` and `netpoll dumpd --metrics` serve them.
//
// A page is metric families, each a "# HELP" and a "# TYPE" line and then
// its samples, every sample of a family together (the format's rule; a
// scraper refuses a family that comes twice). A statistics struct with a
// counter table (base/counter_table.h) becomes one counter family per
// table entry, PREFIX_KEY_total, so no counter can be printed and not
// served: CounterRows writes it, unlabelled (one row) or with a sample per
// row under one label (per source).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "netpoll/base/counter_table.h"

namespace np {

class MetricsText {
 public:
  // Begins a family: "# HELP NAME HELP" ('\' and newlines escaped) and
  // "# TYPE NAME TYPE" (counter, gauge, untyped). NAME must match
  // [a-zA-Z_:][a-zA-Z0-9_:]*. Context: setup.
  MetricsText& family(std::string_view name, std::string_view type, std::string_view help);
  // A sample of the family begun last: "NAME VALUE". Context: setup.
  MetricsText& sample(std::string_view name, std::uint64_t value);
  // "NAME{LABEL="VALUE"} VALUE", the label's value escaped ('\', '"' and
  // newlines). Context: setup.
  MetricsText& sample(std::string_view name, std::string_view label, std::string_view label_value,
                      std::uint64_t value);
  // A family of one unlabelled sample. Context: setup.
  MetricsText& single(std::string_view name, std::string_view type, std::string_view help, std::uint64_t value) {
    return family(name, type, help).sample(name, value);
  }
  // Every number of a JSON object (as base/json.h writes statistics:
  // objects, unsigned numbers, strings, booleans) as a family of its own,
  // untyped (such a text mixes counters and gauges): a leaf at keys a, b, c
  // is PREFIX_a_b_c (a key's other characters than [a-zA-Z0-9_] as '_'),
  // HELP "<help_head> a b c"; true and false are 1 and 0; strings say
  // nothing and are left out. What does not parse ends the walk there.
  // Context: setup.
  MetricsText& json_numbers(std::string_view prefix, std::string_view json, std::string_view help_head);
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

// Rows of one counter table, each the values of one struct read at add()
// (under whatever lock guards it), written as one counter family per
// counter.
template <class S>
class CounterRows {
 public:
  explicit CounterRows(CounterSpan<S> table) : table_(table) {}

  // Context: setup.
  void add(std::string label_value, const S& s) {
    std::vector<std::uint64_t> values;
    values.reserve(table_.size());
    for_each_counter(s, table_, [&](const CounterName<S>&, std::uint64_t v) { values.push_back(v); });
    rows_.emplace_back(std::move(label_value), std::move(values));
  }
  std::size_t size() const { return rows_.size(); }

  // PREFIX_KEY_total per counter, HELP "<the counter's label><help_tail>";
  // its samples unlabelled (label empty: the rows' values added up, one
  // row in practice) or one per row, LABEL="<row's value>". A labelled
  // table without rows writes nothing: a family with no sample says
  // nothing. Context: setup.
  void write(MetricsText& out, std::string_view prefix, std::string_view label, std::string_view help_tail) const {
    if (!label.empty() && rows_.empty()) return;
    std::string name;
    std::string help;
    for (std::size_t i = 0; i < table_.size(); ++i) {
      name.assign(prefix).append("_").append(table_[i].key).append("_total");
      help.assign(table_[i].label).append(help_tail);
      out.family(name, "counter", help);
      if (label.empty()) {
        std::uint64_t sum = 0;
        for (const auto& row : rows_) sum += row.second[i];
        out.sample(name, sum);
      } else {
        for (const auto& row : rows_) out.sample(name, label, row.first, row.second[i]);
      }
    }
  }

 private:
  CounterSpan<S> table_;
  std::vector<std::pair<std::string, std::vector<std::uint64_t>>> rows_;
};

}  // namespace np
