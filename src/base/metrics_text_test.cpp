#include "netpoll/base/metrics_text.h"

#include <gtest/gtest.h>

namespace np {
namespace {

struct TwoCounters {
  Counter sent;
  Counter dropped;
};
inline constexpr CounterName<TwoCounters> kTwoCounters[] = {
    {&TwoCounters::sent, "sent", "datagrams sent"},
    {&TwoCounters::dropped, "dropped", "datagrams dropped"},
};
static_assert(names_every_counter(kTwoCounters));

TEST(MetricsText, WritesAFamilyWithHelpTypeAndEscapedLabelValues) {
  MetricsText m;
  m.family("np_x_total", "counter", "a \\ and\na newline").sample("np_x_total", "source", "a\"b\\c\nd", 7);
  EXPECT_EQ(m.str(),
            "# HELP np_x_total a \\\\ and\\na newline\n"
            "# TYPE np_x_total counter\n"
            "np_x_total{source=\"a\\\"b\\\\c\\nd\"} 7\n");
}

TEST(MetricsText, WritesEveryCounterOfATableAsAFamily) {
  TwoCounters s;
  s.sent.add(3);
  s.dropped.add(1);
  CounterRows<TwoCounters> rows(kTwoCounters);
  rows.add({}, s);
  MetricsText m;
  rows.write(m, "np", {}, ", in all");
  EXPECT_EQ(m.str(),
            "# HELP np_sent_total datagrams sent, in all\n# TYPE np_sent_total counter\nnp_sent_total 3\n"
            "# HELP np_dropped_total datagrams dropped, in all\n# TYPE np_dropped_total counter\nnp_dropped_total 1\n");
}

TEST(MetricsText, GroupsTheRowsOfEachCounterUnderItsFamily) {
  TwoCounters a;
  TwoCounters b;
  a.sent.add(1);
  b.sent.add(2);
  b.dropped.add(5);
  CounterRows<TwoCounters> rows(kTwoCounters);
  rows.add("10.0.0.1:6665", a);
  rows.add("10.0.0.2:6665", b);
  a.sent.add(100);  // read at add(): later counts are not in the rows
  MetricsText m;
  rows.write(m, "np_source", "source", "");
  EXPECT_EQ(m.str(),
            "# HELP np_source_sent_total datagrams sent\n# TYPE np_source_sent_total counter\n"
            "np_source_sent_total{source=\"10.0.0.1:6665\"} 1\nnp_source_sent_total{source=\"10.0.0.2:6665\"} 2\n"
            "# HELP np_source_dropped_total datagrams dropped\n# TYPE np_source_dropped_total counter\n"
            "np_source_dropped_total{source=\"10.0.0.1:6665\"} 0\nnp_source_dropped_total{source=\"10.0.0.2:6665\"} 5\n");
}

TEST(MetricsText, WritesNoFamilyForALabelledTableWithoutRows) {
  CounterRows<TwoCounters> rows(kTwoCounters);
  MetricsText m;
  rows.write(m, "np_source", "source", "");
  EXPECT_EQ(m.str(), "");
}

// The statistics that exist only as JSON (netpoll's own client and device
// under `netpoll listen --device`): every number a family of its own.
TEST(MetricsText, WritesEveryNumberOfAJsonObject) {
  MetricsText m;
  m.json_numbers("np_x", R"({"device":"packet:eth1","trapped":true,"rx":{"frames":8,"drops":{"other_host":1}},"a-b":2})",
                 "own path:");
  EXPECT_EQ(m.str(),
            "# HELP np_x_trapped own path: trapped\n# TYPE np_x_trapped untyped\nnp_x_trapped 1\n"
            "# HELP np_x_rx_frames own path: rx frames\n# TYPE np_x_rx_frames untyped\nnp_x_rx_frames 8\n"
            "# HELP np_x_rx_drops_other_host own path: rx drops other_host\n# TYPE np_x_rx_drops_other_host untyped\n"
            "np_x_rx_drops_other_host 1\n"
            "# HELP np_x_a_b own path: a-b\n# TYPE np_x_a_b untyped\nnp_x_a_b 2\n");
  MetricsText cut;
  cut.json_numbers("np_y", R"({"n":1,"m":x,"o":2})", "");
  EXPECT_EQ(cut.str(), "# HELP np_y_n n\n# TYPE np_y_n untyped\nnp_y_n 1\n");
}

}  // namespace
}  // namespace np
