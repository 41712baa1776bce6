// Micro-benchmarks of the receiver engine (listen::Source) and its output
// formats: the CPU each record costs once its datagram is in memory. The
// receiver's budget is 1.5x a bare recvmmsg drain loop's cost per datagram;
// netconsd spends about 4 us per short record.
//
// Datagrams are prepared before the timed loop, in batches of increasing
// sequence numbers; between batches a fresh Source is made (timing paused)
// and its start hold ended, so every timed record meets a running stream.
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include "netpoll/listen/format.h"
#include "netpoll/listen/source.h"
#include "netpoll/wire/netconsole.h"

namespace {

using namespace np::listen;
namespace nc = np::wire::netconsole;
using namespace std::chrono_literals;

struct CountingSink : Sink {
  std::size_t bytes = 0, records = 0, gaps = 0;
  void record(const Record& r) override {
    bytes += r.text.size() + r.dictionary.size();
    ++records;
  }
  void gap(const Gap& g) override { gaps += g.count; }
  void reset(std::uint64_t, std::uint64_t) override {}
};

// The datagrams Linux sends for record `seq` (escaping and cuts by the wire
// layer, which matches the kernel byte for byte).
void emit(std::vector<std::string>& out, std::uint64_t seq, std::string_view text, std::string_view lines = {}) {
  nc::Header h;
  h.facility = 0;
  h.level = 6;
  h.seq = seq;
  h.timestamp_us = 3280680 + seq * 17;
  char head[nc::kMaxHeader];
  const std::size_t hn = nc::format_header(h, head);
  std::string body(nc::escaped_length(text), '\0');
  nc::escape(text, body);
  body += '\n';
  body += lines;
  nc::emit_extended(std::string_view(head, hn), body, [&](std::string_view d) { out.emplace_back(d); });
}

// Feeds `datagrams` (records first..) in batches; one iteration is one record.
void run(benchmark::State& state, const std::vector<std::string>& datagrams, std::size_t per_record) {
  const std::size_t records = datagrams.size() / per_record;
  CountingSink sink;
  auto src = std::make_unique<Source>(SourceLimits{});
  const Clock::time_point t0 = Clock::now();
  std::size_t at = datagrams.size();
  std::size_t delivered = 0;
  for (auto _ : state) {
    if (at == datagrams.size()) {
      state.PauseTiming();
      src = std::make_unique<Source>(SourceLimits{});
      std::vector<std::string> first;
      emit(first, 0, "first");
      src->datagram(first[0], t0, sink);
      src->tick(t0 + 1s, sink);  // the start hold ends: record 0 out
      at = 0;
      state.ResumeTiming();
    }
    for (std::size_t i = 0; i < per_record; ++i) src->datagram(datagrams[at++], t0 + 2s, sink);
  }
  delivered = sink.records;
  benchmark::DoNotOptimize(sink.bytes);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["delivered_per_fed"] =
      benchmark::Counter(static_cast<double>(delivered) / static_cast<double>(state.iterations() + 1));
  (void)records;
}

constexpr std::size_t kBatch = 1 << 16;

// A short kernel line, in order: the path that must be cheap.
void BM_InOrderShortRecord(benchmark::State& state) {
  std::vector<std::string> d;
  for (std::uint64_t s = 1; s <= kBatch; ++s) emit(d, s, "nctest: M1 short message");
  run(state, d, 1);
}
BENCHMARK(BM_InOrderShortRecord);

// A boot record with the kernel's dictionary lines.
void BM_InOrderRecordWithDictionary(benchmark::State& state) {
  std::vector<std::string> d;
  for (std::uint64_t s = 1; s <= kBatch; ++s)
    emit(d, s, "pci 0000:00:01.1: BAR 4 [io  0xc020-0xc02f]", " SUBSYSTEM=pci\n DEVICE=+pci:0000:00:01.1\n");
  run(state, d, 1);
}
BENCHMARK(BM_InOrderRecordWithDictionary);

// A line with escapes (TAB, backslash, UTF-8): unescaped into scratch.
void BM_InOrderRecordWithEscapes(benchmark::State& state) {
  std::vector<std::string> d;
  for (std::uint64_t s = 1; s <= kBatch; ++s)
    emit(d, s, "nctest: M4 tab[\t] backslash[\\] utf8[\xc3\xa9] semicolon[;] comma[,]");
  run(state, d, 1);
}
BENCHMARK(BM_InOrderRecordWithEscapes);

// Pairs swapped: every other record is held and delivered from the arena.
void BM_SwappedPairsShortRecord(benchmark::State& state) {
  std::vector<std::string> d;
  for (std::uint64_t s = 1; s <= kBatch; s += 2) {
    emit(d, s + 1, "nctest: M1 short message");
    emit(d, s, "nctest: M1 short message");
  }
  run(state, d, 1);
}
BENCHMARK(BM_SwappedPairsShortRecord);

// A 2500-byte record in three fragments, in order; one iteration is one
// record (three datagrams). The batch (3 MB) stays in cache, as a datagram
// recvmmsg has just written does: from DRAM the copy into the arena
// doubles the cost.
void BM_Fragmented2500ByteRecord(benchmark::State& state) {
  constexpr std::size_t kRecords = 1024;
  std::string text;
  for (int i = 0; i < 2500; ++i) text += static_cast<char>('a' + i % 26);
  std::vector<std::string> d;
  for (std::uint64_t s = 1; s <= kRecords; ++s) emit(d, s, text);
  const std::size_t per = d.size() / kRecords;
  if (per * kRecords != d.size()) state.SkipWithError("uneven fragments");
  run(state, d, per);
  state.counters["datagrams_per_record"] = static_cast<double>(per);
}
BENCHMARK(BM_Fragmented2500ByteRecord);

// Console text, one line per datagram.
void BM_BasicLine(benchmark::State& state) {
  std::vector<std::string> d;
  for (std::size_t i = 0; i < kBatch; ++i) d.push_back("[    4.029702] nctest: M1 short message\n");
  run(state, d, 1);
}
BENCHMARK(BM_BasicLine);

// --- formats ------------------------------------------------------------------

const Field kDict[] = {{"SUBSYSTEM", "pci"}, {"DEVICE", "+pci:0000:00:01.1"}};

Record sample() {
  Record r;
  r.seq = 209;
  r.facility = 0;
  r.level = 6;
  r.timestamp_us = 947818;
  r.text = "pci 0000:00:01.1: [8086:7010] type 00 class 0x010180";
  r.dictionary = kDict;
  return r;
}

template <void (*F)(std::string&, const Record&, const Origin&)>
void BM_Format(benchmark::State& state) {
  const Record r = sample();
  const Origin o{std::chrono::system_clock::now(), "10.77.0.2:6665"};
  std::string out;
  out.reserve(1024);
  for (auto _ : state) {
    out.clear();
    F(out, r, o);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_Format<append_human>)->Name("BM_FormatHuman");
BENCHMARK(BM_Format<append_json>)->Name("BM_FormatJson");
BENCHMARK(BM_Format<append_syslog>)->Name("BM_FormatSyslog");

// A new time each call (arg 1), or the same time again (arg 0: a batch of
// records received together, which append_utc keeps formatted).
void BM_FormatUtcTime(benchmark::State& state) {
  auto t = std::chrono::system_clock::now();
  const auto step = std::chrono::microseconds(state.range(0));
  std::string out;
  out.reserve(64);
  for (auto _ : state) {
    out.clear();
    t += step;
    append_utc(out, t);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_FormatUtcTime)->Arg(1)->Arg(0);

}  // namespace
