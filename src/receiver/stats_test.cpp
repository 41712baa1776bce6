// netpoll listen's statistics: every counter of both tables in the text and
// in the JSON, in one order, summed over workers.
#include "netpoll/receiver/stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace np::receiver {
namespace {

using np::listen::kSourceCounters;
using np::listen::SourceStats;

// Each counter a value of its own: 1, 2, 3, ... in table order (times `k`).
template <class S, std::size_t N>
void number(S& s, const CounterName<S> (&table)[N], std::uint64_t k = 1) {
  std::uint64_t v = 0;
  for (const auto& n : table) (s.*n.member).add(++v * k);
}

TEST(Stats, TextShowsEveryCounterOfASource) {
  SourceStats s;
  number(s, kSourceCounters);
  std::string text;
  append_counters_text(text, s);
  EXPECT_EQ(text,
            "records 1, datagrams 2, fragments 3, reassembled 4, gaps 5, gap records 6, lost 7, duplicates 8, "
            "resets 9, malformed 10, late 11, emergency 12, bytes 13, stale 14, incomplete 15, over memory 16, "
            "pushed 17, fields dropped 18, basic cut 19");
}

TEST(Stats, TextShowsEveryCounterOfAWorker) {
  WorkerStats w;
  number(w, kWorkerCounters);
  std::string text;
  append_counters_text(text, w);
  EXPECT_EQ(text,
            "kernel drops 1, truncated 2, sources seen 3, sources evicted 4, ncrx responses 5, "
            "ncrx responses failed 6, output errors 7, syslog sent 8, syslog dropped 9");
}

TEST(Stats, JsonHasEveryCounterUnderItsKey) {
  SourceStats s;
  number(s, kSourceCounters);
  WorkerStats w;
  number(w, kWorkerCounters, 100);
  JsonWriter j;
  j.begin_object();
  add_counters_json(j, s);
  add_counters_json(j, w);
  j.end_object();
  EXPECT_EQ(j.str(),
            R"({"records":1,"datagrams":2,"fragments":3,"reassembled":4,"gaps":5,"gap_records":6,"lost":7,)"
            R"("duplicates":8,"resets":9,"malformed":10,"late":11,"emergency":12,"bytes":13,"stale":14,)"
            R"("incomplete":15,"over_memory":16,"pushed":17,"fields_dropped":18,"basic_cut":19,)"
            R"("kernel_drops":100,"truncated":200,"sources":300,"sources_evicted":400,"responses_sent":500,)"
            R"("responses_failed":600,"output_errors":700,"syslog_sent":800,"syslog_dropped":900})");
}

// Text and JSON name the same counters in the same order: each table entry
// once in both, nothing else.
TEST(Stats, TextAndJsonFollowOneTable) {
  SourceStats s;
  number(s, kSourceCounters);
  std::string text;
  append_counters_text(text, s);
  JsonWriter j;
  j.begin_object();
  add_counters_json(j, s);
  j.end_object();
  std::size_t t = 0, k = 0, v = 0;
  for (const auto& n : kSourceCounters) {
    ++v;
    const std::string in_text = std::string(n.label) + " " + std::to_string(v);
    const std::string in_json = "\"" + std::string(n.key) + "\":" + std::to_string(v);
    ASSERT_EQ(text.find(in_text, t), t) << n.key;
    ASSERT_EQ(j.str().find(in_json, k), k + 1) << n.key;  // after '{' or ','
    t += in_text.size() + 2;
    k += in_json.size() + 1;
  }
  EXPECT_EQ(t, text.size() + 2);
  EXPECT_EQ(k + 1, j.str().size());
}

TEST(Stats, SumsWorkers) {
  WorkerStats a, b;
  number(a, kWorkerCounters);
  number(b, kWorkerCounters, 10);
  add_stats(a, b);
  std::uint64_t v = 0;
  for (const auto& n : kWorkerCounters) EXPECT_EQ((a.*n.member).value(), ++v * 11) << n.key;
}

TEST(StatsReport, PrintsTotalsThenEachSourceAsText) {
  SourceStats total, one;
  total.records.add(6);
  total.datagrams.add(9);
  total.emergency.add(1);
  one.records.add(2);
  one.basic_cut.add(3);
  WorkerStats workers;
  workers.sources_seen.add(5);
  workers.sources_evicted.add(3);
  workers.syslog_sent.add(1);
  StatsReport r(OutputFormat::kText, total, workers);
  r.add_source("127.0.0.1:7004", one);
  r.add_source("[fd00::1]:6665", SourceStats{});
  EXPECT_EQ(r.finish(),
            "netpoll listen: records 6, datagrams 9, fragments 0, reassembled 0, gaps 0, gap records 0, lost 0, "
            "duplicates 0, resets 0, malformed 0, late 0, emergency 1, bytes 0, stale 0, incomplete 0, over memory 0, "
            "pushed 0, fields dropped 0, basic cut 0; kernel drops 0, truncated 0, sources seen 5, sources evicted 3, "
            "ncrx responses 0, ncrx responses failed 0, output errors 0, syslog sent 1, syslog dropped 0\n"
            "  127.0.0.1:7004: records 2, datagrams 0, fragments 0, reassembled 0, gaps 0, gap records 0, lost 0, "
            "duplicates 0, resets 0, malformed 0, late 0, emergency 0, bytes 0, stale 0, incomplete 0, over memory 0, "
            "pushed 0, fields dropped 0, basic cut 3\n"
            "  [fd00::1]:6665: records 0, datagrams 0, fragments 0, reassembled 0, gaps 0, gap records 0, lost 0, "
            "duplicates 0, resets 0, malformed 0, late 0, emergency 0, bytes 0, stale 0, incomplete 0, over memory 0, "
            "pushed 0, fields dropped 0, basic cut 0\n");
}

TEST(StatsReport, PrintsOneJsonLine) {
  SourceStats total, one;
  total.records.add(1);
  total.datagrams.add(2);
  total.malformed.add(1);
  one.records.add(1);
  WorkerStats workers;
  workers.sources_seen.add(1);
  StatsReport r(OutputFormat::kJson, total, workers);
  r.add_source("127.0.0.1:6665", one);
  const std::string z = R"("fragments":0,"reassembled":0,"gaps":0,"gap_records":0,"lost":0,"duplicates":0,"resets":0,)";
  const std::string z2 = R"("late":0,"emergency":0,"bytes":0,"stale":0,"incomplete":0,"over_memory":0,"pushed":0,)"
                         R"("fields_dropped":0,"basic_cut":0)";
  EXPECT_EQ(r.finish(), R"({"total":{"records":1,"datagrams":2,)" + z + R"("malformed":1,)" + z2 +
                            R"(,"kernel_drops":0,"truncated":0,"sources":1,"sources_evicted":0,"responses_sent":0,)"
                            R"("responses_failed":0,"output_errors":0,"syslog_sent":0,"syslog_dropped":0},)"
                            R"("sources":{"127.0.0.1:6665":{"records":1,"datagrams":0,)" +
                            z + R"("malformed":0,)" + z2 + "}}}\n");
}

TEST(StatsReport, WithNoSourcesHasAnEmptySourcesObject) {
  const std::string json = StatsReport(OutputFormat::kJson, SourceStats{}, WorkerStats{}).finish();
  EXPECT_NE(json.find(R"("syslog_dropped":0},"sources":{}})"), std::string::npos) << json;
  const std::string text = StatsReport(OutputFormat::kText, SourceStats{}, WorkerStats{}).finish();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
}

// The device of netpoll's own path adds its statistics after the sources:
// its JSON under a key of its own, its text lines as they are.
TEST(StatsReport, AddsASectionAfterTheSources) {
  StatsReport json(OutputFormat::kJson, SourceStats{}, WorkerStats{});
  json.add_source("10.0.0.1:6665", SourceStats{});
  json.add_section("netpoll", R"({"rx":{"frames":7}})", "unused\n");
  const std::string j = json.finish();
  EXPECT_NE(j.find(R"("sources":{"10.0.0.1:6665":{"records":0,)"), std::string::npos) << j;
  EXPECT_TRUE(j.ends_with(R"("basic_cut":0}},"netpoll":{"rx":{"frames":7}}})" "\n")) << j;
  StatsReport none(OutputFormat::kJson, SourceStats{}, WorkerStats{});
  none.add_section("netpoll", "{}", "");
  EXPECT_NE(none.finish().find(R"("sources":{},"netpoll":{}})"), std::string::npos);

  StatsReport text(OutputFormat::kText, SourceStats{}, WorkerStats{});
  text.add_source("10.0.0.1:6665", SourceStats{});
  text.add_section("netpoll", "{}", "device np1\n  rx frames 7\n");
  const std::string t = text.finish();
  EXPECT_NE(t.find("syslog dropped 0\n  10.0.0.1:6665: records 0, "), std::string::npos) << t;
  EXPECT_TRUE(t.ends_with("basic cut 0\ndevice np1\n  rx frames 7\n")) << t;
}

// --metrics: every total and worker counter a family of its own, each
// source's counters under one family per counter, up to the cap.
TEST(StatsReport, ServesEveryCounterAsPrometheusTextUpToTheSourceCap) {
  SourceStats total, one, two;
  total.records.add(6);
  one.records.add(2);
  two.records.add(4);
  WorkerStats workers;
  workers.sources_seen.add(3);
  StatsReport r(ReportFormat::metrics(2), total, workers);
  r.add_source("127.0.0.1:7004", one);
  r.add_source("[fd00::1]:6665", two);
  r.add_source("10.0.0.9:6665", SourceStats{});  // beyond the cap
  r.add_section("netpoll", R"({"device":{"rx":{"frames":7}}})", "not in it\n");
  const std::string m = r.finish();
  EXPECT_EQ(m.rfind("# HELP netpoll_listen_records_total records, every source\n"
                    "# TYPE netpoll_listen_records_total counter\n"
                    "netpoll_listen_records_total 6\n"
                    "# HELP netpoll_listen_datagrams_total datagrams, every source\n", 0), 0u) << m;
  for (const char* line : {"\n# HELP netpoll_listen_sources_total sources seen\n# TYPE netpoll_listen_sources_total "
                           "counter\nnetpoll_listen_sources_total 3\n",
                           "\nnetpoll_listen_source_records_total{source=\"127.0.0.1:7004\"} 2\n"
                           "netpoll_listen_source_records_total{source=\"[fd00::1]:6665\"} 4\n# HELP ",
                           "\nnetpoll_listen_sources_tracked 3\n", "\nnetpoll_listen_metrics_sources_omitted 1\n"}) {
    EXPECT_NE(m.find(line), std::string::npos) << line << "\n" << m;
  }
  EXPECT_EQ(m.find("10.0.0.9"), std::string::npos) << m;
  EXPECT_EQ(m.find("not in it"), std::string::npos) << m;
  EXPECT_TRUE(m.ends_with("# HELP netpoll_listen_netpoll_device_rx_frames netpoll device rx frames\n"
                          "# TYPE netpoll_listen_netpoll_device_rx_frames untyped\n"
                          "netpoll_listen_netpoll_device_rx_frames 7\n"))
      << m;
  // Every counter of both tables, totals and per source.
  for (const auto& n : np::listen::kSourceCounters) {
    EXPECT_NE(m.find("\nnetpoll_listen_" + std::string(n.key) + "_total "), std::string::npos) << n.key;
    EXPECT_NE(m.find("\nnetpoll_listen_source_" + std::string(n.key) + "_total{"), std::string::npos) << n.key;
  }
  for (const auto& n : kWorkerCounters) {
    EXPECT_NE(m.find("\nnetpoll_listen_" + std::string(n.key) + "_total "), std::string::npos) << n.key;
  }
}

}  // namespace
}  // namespace np::receiver
