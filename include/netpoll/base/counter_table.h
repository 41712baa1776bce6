// A table of a statistics struct's counters: each counter named once, for
// everything that goes over all of them.
//
// A struct made only of Counters (base/counter.h) gets one table beside it,
// in output order: the member, its snake_case key (JSON) and its label
// (text for people). Summing, text and JSON output all iterate that table,
// so none of them can leave a counter out or name it differently; a
// static_assert(names_every_counter(table)) beside the table fails the build
// when a member is added to the struct but not to the table.
//
//   struct Stats { Counter sent; Counter dropped; };
//   inline constexpr CounterName<Stats> kStatsCounters[] = {
//       {&Stats::sent, "sent", "sent"}, {&Stats::dropped, "dropped", "dropped"}};
//   static_assert(names_every_counter(kStatsCounters));
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "netpoll/base/counter.h"

namespace np {

template <class S>
struct CounterName {
  Counter S::*member;
  std::string_view key;    // snake_case, as JSON names it
  std::string_view label;  // words, as text for people names it
};

// A table as the functions below take it (S is deduced from the struct).
template <class S>
using CounterSpan = std::type_identity_t<std::span<const CounterName<S>>>;

// True when `table` names every member of S once: S holds nothing but
// Counters, as many as the table has entries, and no entry repeats a
// member. For a static_assert beside the table.
template <class S, std::size_t N>
constexpr bool names_every_counter(const CounterName<S> (&table)[N]) {
  if (N * sizeof(Counter) != sizeof(S)) return false;
  for (std::size_t i = 0; i < N; ++i) {
    for (std::size_t j = i + 1; j < N; ++j) {
      if (table[i].member == table[j].member) return false;
    }
  }
  return true;
}

// Calls f(name, value) (name: the CounterName) for every counter of `s`, in table order.
// Context: any (if f is).
template <class S, class F>
void for_each_counter(const S& s, CounterSpan<S> table, F&& f) {
  for (const CounterName<S>& n : table) f(n, (s.*n.member).value());
}

// Appends "label value, label value, ..." for every counter of `s`, in
// table order: the text form of statistics. Context: setup.
template <class S>
void append_counters_text(std::string& out, const S& s, CounterSpan<S> table) {
  bool first = true;
  for_each_counter(s, table, [&](const CounterName<S>& n, std::uint64_t v) {
    if (!first) out += ", ";
    first = false;
    out += n.label;
    out += ' ';
    out += std::to_string(v);
  });
}

// Adds every counter of `from` to `into`: totals. Context: any.
template <class S>
void add_counters(S& into, const S& from, CounterSpan<S> table) noexcept {
  for (const CounterName<S>& n : table) (into.*n.member).add((from.*n.member).value());
}

}  // namespace np
