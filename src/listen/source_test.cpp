// The receiver engine against real Linux 6.1 traffic (tests/data/CAPTURES.md)
// and against synthetic streams with reordering, loss, duplicates,
// fragments, restarts and limits.
#include "netpoll/listen/source.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "alloc_guard.h"
#include "netpoll/wire/netconsole.h"
#include "pcap_reader.h"

namespace np::listen {
namespace {

namespace nc = np::wire::netconsole;
using namespace std::chrono_literals;
using np::testing::read_udp_pcap;
using np::testing::test_data;

// --- helpers ------------------------------------------------------------------

struct Rec {
  Format format;
  std::uint64_t seq;
  std::uint8_t facility, level;
  std::uint64_t timestamp_us;
  bool continuation, emergency, late;
  std::uint32_t fragments;
  std::string release, text;
  std::vector<std::pair<std::string, std::string>> dictionary, userdata, sysdata;
  std::optional<std::uint32_t> msgid;
};

struct Event {
  enum Kind { kRecord, kGap, kReset } kind;
  Rec rec{};
  Gap gap{};
  std::uint64_t from = 0, to = 0;
};

std::vector<std::pair<std::string, std::string>> own(std::span<const Field> f) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Field& x : f) out.emplace_back(x.key, x.value);
  return out;
}

class Collect : public Sink {
 public:
  void record(const Record& r) override {
    events.push_back({Event::kRecord,
                      Rec{r.format, r.seq, r.facility, r.level, r.timestamp_us, r.continuation, r.emergency, r.late,
                          r.fragments, std::string(r.release), std::string(r.text), own(r.dictionary),
                          own(r.userdata), own(r.sysdata), r.msgid}});
  }
  void gap(const Gap& g) override { events.push_back({Event::kGap, {}, g}); }
  void reset(std::uint64_t from, std::uint64_t to) override { events.push_back({Event::kReset, {}, {}, from, to}); }

  std::vector<Rec> records() const {
    std::vector<Rec> out;
    for (const auto& e : events)
      if (e.kind == Event::kRecord) out.push_back(e.rec);
    return out;
  }
  std::vector<std::uint64_t> seqs() const {
    std::vector<std::uint64_t> out;
    for (const auto& e : events)
      if (e.kind == Event::kRecord) out.push_back(e.rec.seq);
    return out;
  }
  std::vector<std::tuple<std::uint64_t, std::uint64_t, bool>> gaps() const {
    std::vector<std::tuple<std::uint64_t, std::uint64_t, bool>> out;
    for (const auto& e : events)
      if (e.kind == Event::kGap) out.emplace_back(e.gap.first_seq, e.gap.count, e.gap.lost);
    return out;
  }
  // "r5 g6+2 R9>0": the events in order, compactly.
  std::string trace() const {
    std::string s;
    for (const auto& e : events) {
      if (!s.empty()) s += ' ';
      if (e.kind == Event::kRecord) s += (e.rec.late ? "L" : "r") + std::to_string(e.rec.seq);
      if (e.kind == Event::kGap)
        s += "g" + std::to_string(e.gap.first_seq) + "+" + std::to_string(e.gap.count) + (e.gap.lost ? "!" : "");
      if (e.kind == Event::kReset) s += "R" + std::to_string(e.from) + ">" + std::to_string(e.to);
    }
    return s;
  }
  std::vector<Event> events;
};

struct Opt {
  std::uint8_t facility = 1, level = 6;
  std::uint64_t ts = 0;  // 0: seq * 1000
  bool emergency = false;
  std::string release;
};

// The datagrams Linux would send for a record (escaping and fragments by
// the wire layer, which reproduces the kernel byte for byte).
std::vector<std::string> ext(std::uint64_t seq, std::string_view text, std::string_view lines = {}, Opt o = {}) {
  nc::Header h;
  h.release = o.release;
  h.facility = o.facility;
  h.level = o.level;
  h.seq = seq;
  h.timestamp_us = o.ts ? o.ts : seq * 1000;
  h.emergency = o.emergency;
  char head[nc::kMaxHeader];
  const std::size_t hn = nc::format_header(h, head);
  std::string body(nc::escaped_length(text), '\0');
  nc::escape(text, body);
  body += "\n";
  body += lines;
  std::vector<std::string> out;
  nc::emit_extended(std::string_view(head, hn), body, [&](std::string_view d) { out.emplace_back(d); });
  return out;
}
std::string ext1(std::uint64_t seq, std::string_view text = "x", std::string_view lines = {}, Opt o = {}) {
  auto d = ext(seq, text.empty() && seq ? "r" + std::to_string(seq) : std::string(text), lines, o);
  EXPECT_EQ(d.size(), 1u);
  return d[0];
}
std::string rec(std::uint64_t seq) { return ext1(seq, "record " + std::to_string(seq)); }

const Clock::time_point kT0 = Clock::time_point{} + 1000h;

// Starts the stream at `seq` long before kT0 and lets its start hold end,
// so that what a test sends at kT0 meets a running stream.
void prime(Source& src, Sink& sink, std::uint64_t seq = 0) {
  src.datagram(rec(seq), kT0 - 40s, sink);
  src.tick(kT0 - 39s, sink);
}

SourceLimits small_limits() {
  SourceLimits l;
  l.window = 16;
  l.memory = 64 * 1024;
  l.max_record = 8 * 1024;
  return l;
}

// --- the Linux captures -------------------------------------------------------

constexpr std::uint64_t kLastSeq = 362;
// The numbers the boot log leaves out: records filtered by loglevel.
const std::vector<std::tuple<std::uint64_t, std::uint64_t, bool>> kBootGaps = {
    {13, 2, false}, {67, 2, false}, {243, 3, false}, {258, 1, false}, {337, 7, false}};

std::vector<std::uint64_t> captured_seqs() {
  std::vector<std::uint64_t> out;
  for (std::uint64_t s = 0; s <= kLastSeq; ++s) {
    bool in_gap = false;
    for (const auto& [first, count, lost] : kBootGaps) in_gap |= s >= first && s < first + count;
    if (!in_gap) out.push_back(s);
  }
  return out;
}

void check_capture_records(const Collect& sink) {
  EXPECT_EQ(sink.seqs(), captured_seqs());
  EXPECT_EQ(sink.gaps(), kBootGaps);
  const auto recs = sink.records();
  ASSERT_EQ(recs.size(), 348u);
  const Rec* m = &recs[recs.size() - 6];  // M1..M6: seqs 357..362
  EXPECT_EQ(m[0].seq, 357u);
  EXPECT_EQ(m[0].text, "nctest: M1 short message");
  EXPECT_EQ(m[1].text.size(), 988u);
  EXPECT_EQ(m[1].text.substr(0, 41), "nctest: M2 long 0000-abcdefghijklmno0001-");
  EXPECT_EQ(m[1].text.substr(976), "XXXXXXXX END");
  EXPECT_EQ(m[1].fragments, 2u);
  EXPECT_EQ(m[2].text, "nctest: M3 bin " + std::string(900, '\x01') + " END");
  EXPECT_EQ(m[2].fragments, 4u);
  EXPECT_EQ(m[3].text, "nctest: M4 tab[\t] backslash[\\] utf8[\xc3\xa9] semicolon[;] comma[,]");
  EXPECT_EQ(m[4].text, "nctest: M5 first line\nnctest: M5 second line");
  EXPECT_EQ(m[5].text, "nctest: M6 daemon.err message");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(m[i].facility, 1) << i;  // user.info: written to /dev/kmsg
    EXPECT_EQ(m[i].level, 6) << i;
  }
  EXPECT_EQ(m[5].facility, 3);  // daemon.err
  EXPECT_EQ(m[5].level, 3);
  EXPECT_EQ(m[5].timestamp_us, 3392160u);
  EXPECT_EQ(recs[0].text.rfind("Linux version 6.1.0-56-cloud-amd64 ", 0), 0u);
  EXPECT_EQ(recs[0].facility, 0);  // kern.notice
  EXPECT_EQ(recs[0].level, 5);
  for (const auto& r : recs) {
    EXPECT_EQ(r.format, Format::kExtended);
    EXPECT_TRUE(r.release.empty());
    EXPECT_TRUE(r.userdata.empty());
    EXPECT_TRUE(r.sysdata.empty());
    EXPECT_FALSE(r.msgid);
    EXPECT_FALSE(r.late);
  }
  // The dictionary lines of the boot records that carry them.
  std::size_t with_dict = 0;
  for (const auto& r : recs) {
    if (r.dictionary.empty()) continue;
    ++with_dict;
    ASSERT_EQ(r.dictionary.size(), 2u) << r.seq;
    EXPECT_EQ(r.dictionary[0].first, "SUBSYSTEM");
    EXPECT_EQ(r.dictionary[1].first, "DEVICE");
  }
  EXPECT_EQ(with_dict, 44u);
  const auto r168 = std::find_if(recs.begin(), recs.end(), [](const Rec& r) { return r.seq == 168; });
  ASSERT_NE(r168, recs.end());
  EXPECT_EQ(r168->text, "acpi PNP0A03:00: _OSC: OS supports [ASPM ClockPM Segments MSI HPX-Type3]");
  EXPECT_EQ(r168->dictionary, (std::vector<std::pair<std::string, std::string>>{
                                  {"SUBSYSTEM", "acpi"}, {"DEVICE", "+acpi:PNP0A03:00"}}));
  const auto r170 = std::find_if(recs.begin(), recs.end(), [](const Rec& r) { return r.seq == 170; });
  ASSERT_NE(r170, recs.end());
  EXPECT_EQ(r170->level, 4);  // warning
}

TEST(ListenCapture, ReplaysTheExtendedCaptureIntoExactlyTheKernelsRecords) {
  const auto all = read_udp_pcap(test_data("linux-6.1-netconsole-ext.pcap"));
  ASSERT_EQ(all.size(), 352u);
  Source src(SourceLimits{});
  Collect sink;
  Clock::time_point now = kT0;
  for (const auto& d : all) {
    src.datagram(d.payload, now, sink);
    now += 20ms;  // the boot log's holes expire (500 ms) while it plays
    src.tick(now, sink);
  }
  src.tick(now + 1s, sink);
  EXPECT_EQ(src.held_records(), 0u);
  src.flush(sink);
  check_capture_records(sink);
  const auto& st = src.stats();
  EXPECT_EQ(st.datagrams.value(), 352u);
  EXPECT_EQ(st.records.value(), 348u);
  EXPECT_EQ(st.fragments.value(), 6u);
  EXPECT_EQ(st.reassembled.value(), 2u);
  EXPECT_EQ(st.gaps.value(), 5u);
  EXPECT_EQ(st.gap_records.value(), 15u);
  EXPECT_EQ(st.lost.value(), 0u);
  EXPECT_EQ(st.malformed.value() + st.duplicates.value() + st.resets.value() + st.pushed.value() +
                st.stale.value() + st.incomplete.value(),
            0u);
  EXPECT_EQ(src.held_bytes(), 0u);
}

// The same traffic shuffled within blocks of 32 datagrams (fragments
// included): the same records in the same order.
TEST(ListenCapture, ReordersTheShuffledCaptureBackIntoTheKernelsRecords) {
  auto all = read_udp_pcap(test_data("linux-6.1-netconsole-ext.pcap"));
  std::mt19937 rng(7);
  for (std::size_t i = 0; i < all.size(); i += 32)
    std::shuffle(all.begin() + i, all.begin() + std::min(all.size(), i + 32), rng);
  Source src(SourceLimits{});
  Collect sink;
  Clock::time_point now = kT0;
  for (const auto& d : all) {
    src.datagram(d.payload, now, sink);
    now += 5ms;
    src.tick(now, sink);
  }
  src.tick(now + 1s, sink);
  src.flush(sink);
  // Shuffling can put a later record first: the stream starts there.
  ASSERT_FALSE(sink.events.empty());
  EXPECT_EQ(src.stats().resets.value() + src.stats().stale.value(), 0u) << sink.trace().substr(0, 200);
  check_capture_records(sink);
}

TEST(ListenCapture, ReplaysThePlainCaptureIntoConsoleLines) {
  const auto all = read_udp_pcap(test_data("linux-6.1-netconsole-plain.pcap"));
  ASSERT_EQ(all.size(), 347u);
  Source src(SourceLimits{});
  Collect sink;
  Clock::time_point now = kT0;
  for (const auto& d : all) {
    src.datagram(d.payload, now, sink);
    now += 1ms;
  }
  src.flush(sink);
  const auto recs = sink.records();
  ASSERT_EQ(recs.size(), 347u);  // 347 lines: M2's two datagrams joined, M5's one datagram split
  for (const auto& r : recs) {
    EXPECT_EQ(r.format, Format::kBasic);
    EXPECT_EQ(r.seq, 0u);
    EXPECT_EQ(r.text.find('\n'), std::string::npos);
    EXPECT_EQ(r.text.rfind("[", 0), 0u) << r.text;  // every line is a whole console line
  }
  EXPECT_EQ(recs[0].text.rfind("[    0.000000] Linux version 6.1.0-56-cloud-amd64 ", 0), 0u);
  const Rec* m = &recs[recs.size() - 7];
  EXPECT_EQ(m[0].text, "[    4.029702] nctest: M1 short message");
  EXPECT_EQ(m[1].text.size(), 1003u);
  EXPECT_EQ(m[1].fragments, 2u);
  EXPECT_EQ(m[1].text.rfind("[    4.106159] nctest: M2 long 0000-abcdefghijklmno0001-", 0), 0u);
  EXPECT_EQ(m[1].text.substr(m[1].text.size() - 12), "XXXXXXXX END");
  EXPECT_EQ(m[2].text, "[    4.190881] nctest: M3 bin " + std::string(900, '\x01') + " END");
  EXPECT_EQ(m[3].text, "[    4.236016] nctest: M4 tab[\t] backslash[\\] utf8[\xc3\xa9] semicolon[;] comma[,]");
  EXPECT_EQ(m[4].text, "[    4.286874] nctest: M5 first line");
  EXPECT_EQ(m[5].text, "[    4.286874] nctest: M5 second line");
  EXPECT_EQ(m[6].text, "[    4.334875] nctest: M6 daemon.err message");
  EXPECT_EQ(src.stats().records.value(), 347u);
  EXPECT_EQ(src.stats().malformed.value(), 0u);
}

// --- in order, reordering -----------------------------------------------------

TEST(Source, DeliversAnInOrderRecordStraightFromItsDatagram) {
  Source src(SourceLimits{});
  struct Check : Sink {
    std::string_view payload;
    int n = 0;
    void record(const Record& r) override {
      if (r.seq != 7) return;
      ++n;
      EXPECT_GE(r.text.data(), payload.data());  // no copy: the view is into the datagram
      EXPECT_LE(r.text.data() + r.text.size(), payload.data() + payload.size());
      EXPECT_EQ(r.text, "hello world");
      EXPECT_EQ(r.release, "6.1.0-test");
      EXPECT_EQ(r.seq, 7u);
      EXPECT_EQ(r.timestamp_us, 123u);
      EXPECT_EQ(r.fragments, 1u);
      ASSERT_EQ(r.dictionary.size(), 1u);
      EXPECT_EQ(r.dictionary[0].key, "SUBSYSTEM");
      EXPECT_EQ(r.dictionary[0].value, "net");
      ASSERT_EQ(r.userdata.size(), 2u);
      EXPECT_EQ(r.userdata[0].key, "rack");
      EXPECT_EQ(r.userdata[1].value, "a b\tc");  // escapes undone in values
      ASSERT_EQ(r.sysdata.size(), 4u);
      EXPECT_EQ(r.sysdata[0].key, "cpu");
      EXPECT_EQ(r.sysdata[1].value, "kworker/0:1");
      ASSERT_TRUE(r.msgid);
      EXPECT_EQ(*r.msgid, 4000000000u);
    }
    void gap(const Gap&) override { ADD_FAILURE(); }
    void reset(std::uint64_t, std::uint64_t) override { ADD_FAILURE(); }
  } sink;
  const std::string d = ext1(7, "hello world",
                             " SUBSYSTEM=net\n rack=r12\n Note=a b\\x09c\n cpu=3\n taskname=kworker/0:1\n"
                             " release=6.1.0\n msgid=4000000000\n",
                             Opt{.ts = 123, .release = "6.1.0-test"});
  sink.payload = d;
  prime(src, sink, 6);
  src.datagram(d, kT0, sink);
  EXPECT_EQ(sink.n, 1);
  EXPECT_EQ(src.held_bytes(), 0u);
}

TEST(Source, ReordersAShuffledStreamWithinTheWindow) {
  Source src(small_limits());  // window 16
  Collect sink;
  std::vector<std::uint64_t> order;
  for (std::uint64_t s = 1; s <= 400; ++s) order.push_back(s);
  std::mt19937 rng(3);
  for (std::size_t i = 0; i < order.size(); i += 12) std::shuffle(order.begin() + i, order.begin() + std::min<std::size_t>(order.size(), i + 12), rng);
  src.datagram(rec(0), kT0, sink);  // the stream starts at 0
  Clock::time_point now = kT0;
  for (const auto s : order) src.datagram(rec(s), now += 1ms, sink);
  std::vector<std::uint64_t> want(401);
  for (std::uint64_t s = 0; s <= 400; ++s) want[s] = s;
  EXPECT_EQ(sink.seqs(), want);
  EXPECT_TRUE(sink.gaps().empty());
  EXPECT_EQ(sink.records()[5].text, "record 5");
  EXPECT_EQ(src.held_records(), 0u);
  EXPECT_EQ(src.held_bytes(), 0u);
}

// --- fragments ---------------------------------------------------------------

TEST(Source, ReassemblesFragmentsOutOfOrderAndDuplicated) {
  std::string text;
  for (int i = 0; i < 2500; ++i) text += static_cast<char>(i % 7 == 0 ? '\\' : 'a' + i % 26);
  const auto frags = ext(1, text, " DEVICE=+x\n");
  ASSERT_GE(frags.size(), 4u);  // 2500 bytes, 357 of them escaped
  Source src(small_limits());
  Collect sink;
  prime(src, sink);
  src.datagram(frags[2], kT0, sink);
  src.datagram(frags[0], kT0, sink);
  src.datagram(frags[2], kT0, sink);  // duplicate
  src.datagram(frags.back(), kT0, sink);
  for (std::size_t i = 1; i < frags.size(); ++i) src.datagram(frags[i], kT0, sink);
  const auto recs = sink.records();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1].text, text);
  EXPECT_EQ(recs[1].fragments, frags.size());
  EXPECT_EQ(recs[1].dictionary, (std::vector<std::pair<std::string, std::string>>{{"DEVICE", "+x"}}));
  EXPECT_EQ(src.stats().reassembled.value(), 1u);
  EXPECT_EQ(src.stats().duplicates.value(), 3u);  // frags[2] twice more, frags.back() once more
  EXPECT_EQ(src.held_bytes(), 0u);
}

// Held records freed out of the order they were stored in leave the
// arena's free blocks scattered: a record reassembled in them is gathered
// (not one run of adjacent blocks), and comes out the same.
TEST(Source, ReassemblesARecordWhoseBlocksAreScatteredInTheArena) {
  std::string text;
  for (int i = 0; i < 1200; ++i) text += static_cast<char>(i % 5 == 0 ? '\t' : 'a' + i % 26);
  const auto frags = ext(8, text);
  ASSERT_EQ(frags.size(), 2u);
  Source src(small_limits());
  Collect sink;
  prime(src, sink);
  // One block each, taken in this order, freed in number order.
  for (const std::uint64_t seq : {2, 7, 4, 6, 3, 5}) src.datagram(rec(seq), kT0, sink);
  src.datagram(rec(1), kT0, sink);
  ASSERT_EQ(sink.seqs(), (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  src.datagram(frags[1], kT0, sink);
  src.datagram(frags[0], kT0, sink);
  const auto recs = sink.records();
  ASSERT_EQ(recs.size(), 9u);
  EXPECT_EQ(recs[8].text, text);
  EXPECT_EQ(recs[8].fragments, 2u);
  for (std::uint64_t seq = 2; seq <= 7; ++seq) EXPECT_EQ(recs[seq].text, "record " + std::to_string(seq));
  EXPECT_EQ(src.held_bytes(), 0u);
}

// Linux cuts fragments by byte count, inside "\xHH" when it falls there; the
// escapes are undone after reassembly. Every cut position is tried.
TEST(Source, UndoesAnEscapeCutBetweenTwoFragments) {
  std::set<std::size_t> cut_positions;
  for (std::size_t pad = 0; pad < 4; ++pad) {
    const std::string text = std::string(pad, 'p') + std::string(400, '\x01');
    const auto frags = ext(5, text);
    ASSERT_EQ(frags.size(), 2u);
    const auto first = nc::parse_extended(frags[0]);
    ASSERT_TRUE(first);
    const auto bs = first->body.rfind('\\');
    cut_positions.insert(first->body.size() - bs);  // 1..4: where in "\x01" the cut fell
    Source src(small_limits());
    Collect sink;
    prime(src, sink, 4);
    src.datagram(frags[1], kT0, sink);
    src.datagram(frags[0], kT0, sink);
    ASSERT_EQ(sink.records().size(), 2u);
    EXPECT_EQ(sink.records()[1].text, text);
  }
  EXPECT_EQ(cut_positions, (std::set<std::size_t>{1, 2, 3, 4}));
}

TEST(Source, GivesUpAnIncompleteRecordAfterTheFragmentTimeout) {
  Source src(small_limits());
  Collect sink;
  const auto frags = ext(1, std::string(1500, 'z'));
  src.datagram(rec(0), kT0, sink);
  src.datagram(frags[0], kT0, sink);
  src.datagram(rec(2), kT0 + 10ms, sink);
  src.tick(kT0 + 1s, sink);
  EXPECT_EQ(sink.trace(), "r0");  // a record in reassembly is not a hole yet
  EXPECT_EQ(src.next_deadline(), kT0 + 2s);
  src.tick(kT0 + 2s, sink);
  EXPECT_EQ(sink.trace(), "r0 g1+1! r2");  // partly seen: lost
  EXPECT_EQ(src.stats().incomplete.value(), 1u);
  EXPECT_EQ(src.stats().lost.value(), 1u);
  EXPECT_EQ(src.held_bytes(), 0u);
  src.datagram(frags[1], kT0 + 3s, sink);  // the rest, too late
  EXPECT_EQ(src.stats().stale.value(), 1u);
}

TEST(Source, RefusesAFragmentTotalAboveMaxRecordAndInconsistentFragments) {
  SourceLimits l = small_limits();
  l.max_record = 1200;
  Source src(l);
  Collect sink;
  prime(src, sink);
  const auto big = ext(1, std::string(1300, 'b'));
  src.datagram(big[0], kT0, sink);
  EXPECT_EQ(src.stats().malformed.value(), 1u);
  const auto ok = ext(2, std::string(1100, 'c'));
  src.datagram(ok[0], kT0, sink);
  std::string liar = ok[1];
  liar.replace(liar.find("/1101;"), 6, "/1102;");  // another total for the same record
  src.datagram(liar, kT0, sink);
  EXPECT_EQ(src.stats().malformed.value(), 2u);
  src.datagram(std::string(70, 'r') + ",14,3,0,-;too long a release", kT0, sink);  // not Linux
  src.datagram("", kT0, sink);
  EXPECT_EQ(src.stats().malformed.value(), 4u);
  src.datagram(ok[1], kT0, sink);
  src.tick(kT0 + 1s, sink);
  EXPECT_EQ(sink.trace(), "r0 g1+1 r2");  // 1 was refused: a hole
  EXPECT_EQ(sink.records().back().text, std::string(1100, 'c'));
}

// --- gaps, late, duplicates, resets -------------------------------------------

TEST(Source, ReportsAGapAfterTheReorderTimeout) {
  Source src(SourceLimits{});
  Collect sink;
  src.datagram(rec(0), kT0, sink);
  src.datagram(rec(2), kT0 + 10ms, sink);
  src.datagram(rec(3), kT0 + 20ms, sink);
  EXPECT_EQ(src.next_deadline(), kT0 + 500ms);  // the start hold: 0 waits in case -1 comes
  src.tick(kT0 + 500ms, sink);
  EXPECT_EQ(sink.trace(), "r0");
  EXPECT_EQ(src.next_deadline(), kT0 + 510ms);
  src.tick(kT0 + 509ms, sink);
  EXPECT_EQ(sink.trace(), "r0");
  src.tick(kT0 + 510ms, sink);
  EXPECT_EQ(sink.trace(), "r0 g1+1 r2 r3");
  EXPECT_EQ(src.next_deadline(), Clock::time_point::max());
  EXPECT_EQ(src.stats().gaps.value(), 1u);
  EXPECT_EQ(src.stats().gap_records.value(), 1u);
  EXPECT_EQ(src.stats().lost.value(), 0u);
}

TEST(Source, DeliversALateEmergencyRecordOnceAndDropsAStaleOne) {
  Source src(SourceLimits{});
  Collect sink;
  src.datagram(rec(0), kT0, sink);
  src.datagram(rec(3), kT0, sink);
  src.tick(kT0 + 1s, sink);
  EXPECT_EQ(sink.trace(), "r0 g1+2 r3");
  src.datagram(rec(1), kT0 + 2s, sink);  // too late, not an emergency
  EXPECT_EQ(src.stats().stale.value(), 1u);
  const std::string emg = ext1(2, "oops", {}, Opt{.emergency = true, .release = {}});
  src.datagram(emg, kT0 + 2s, sink);
  src.datagram(emg, kT0 + 2s, sink);  // never twice
  EXPECT_EQ(sink.trace(), "r0 g1+2 r3 L2");
  EXPECT_TRUE(sink.records().back().emergency);
  EXPECT_EQ(src.stats().late.value(), 1u);
  EXPECT_EQ(src.stats().duplicates.value(), 1u);
  EXPECT_EQ(src.stats().emergency.value(), 2u);
  // A late emergency record in fragments is put together outside the window.
  src.datagram(rec(4), kT0 + 2s, sink);
  src.datagram(rec(6), kT0 + 2s, sink);
  src.tick(kT0 + 3s, sink);
  const auto frags = ext(5, std::string(1500, 'e'), {}, Opt{.emergency = true, .release = {}});
  src.datagram(frags[1], kT0 + 3s, sink);
  src.datagram(frags[0], kT0 + 3s, sink);
  EXPECT_EQ(sink.trace(), "r0 g1+2 r3 L2 r4 g5+1 r6 L5");
  EXPECT_EQ(sink.records().back().text, std::string(1500, 'e'));
  EXPECT_EQ(src.held_bytes(), 0u);
}

TEST(Source, CountsDuplicatesAndDeliversOnce) {
  Source src(SourceLimits{});
  Collect sink;
  for (std::uint64_t s : {5, 6, 6, 5, 8, 8, 7, 7}) src.datagram(rec(s), kT0, sink);  // held, then
  src.tick(kT0 + 1s, sink);
  for (std::uint64_t s : {8, 7, 9, 9}) src.datagram(rec(s), kT0 + 1s, sink);  // delivered
  EXPECT_EQ(sink.trace(), "r5 r6 r7 r8 r9");
  EXPECT_EQ(src.stats().duplicates.value(), 7u);
}

TEST(Source, ResetsWhenTheSenderRestartsAtZero) {
  Source src(SourceLimits{});
  Collect sink;
  for (std::uint64_t s = 1000; s < 1004; ++s) src.datagram(rec(s), kT0, sink);
  src.datagram(rec(1005), kT0, sink);  // held behind a hole when the sender reboots
  src.datagram(ext1(0, "Linux version", {}, Opt{.ts = 1, .release = {}}), kT0 + 1ms, sink);
  src.datagram(ext1(1, "Command line", {}, Opt{.ts = 1, .release = {}}), kT0 + 1ms, sink);
  src.tick(kT0 + 1s, sink);
  EXPECT_EQ(sink.trace(), "r1000 r1001 r1002 r1003 g1004+1 r1005 R1005>0 r0 r1");
  EXPECT_EQ(src.stats().resets.value(), 1u);
}

// A sender restarted soon after its first boot reuses numbers still in the
// history: the timestamp tells a new record from a duplicate.
TEST(Source, ResetsWhenANumberComesBackWithAnotherTimestamp) {
  Source src(SourceLimits{});
  Collect sink;
  for (std::uint64_t s = 1; s <= 20; ++s) src.datagram(rec(s), kT0, sink);
  src.tick(kT0 + 1s, sink);
  src.datagram(rec(15), kT0 + 1s, sink);  // same timestamp: a duplicate
  src.datagram(ext1(15, "again", {}, Opt{.ts = 7, .release = {}}), kT0 + 1s, sink);
  src.datagram(ext1(16, "and on", {}, Opt{.ts = 8, .release = {}}), kT0 + 1s, sink);
  src.tick(kT0 + 2s, sink);
  EXPECT_EQ(sink.trace().substr(sink.trace().size() - 18), "r20 R20>15 r15 r16");
  EXPECT_EQ(src.stats().duplicates.value(), 1u);
  EXPECT_EQ(src.stats().resets.value(), 1u);
}

// Two runs of a sender that numbers from 0, the second before the
// receiver's start hold has delivered the first: the second run's numbers
// are held ones with other timestamps, a new stream, not duplicates.
TEST(Source, ResetsWhenAHeldNumberComesAgainWithAnotherTimestamp) {
  Source src(SourceLimits{});
  Collect sink;
  for (std::uint64_t s = 0; s < 3; ++s) src.datagram(ext1(s, "first", {}, Opt{.ts = 10 + s, .release = {}}), kT0, sink);
  for (std::uint64_t s = 0; s < 2; ++s)
    src.datagram(ext1(s, "second", {}, Opt{.ts = 90 + s, .release = {}}), kT0 + 1ms, sink);
  src.datagram(ext1(1, "second", {}, Opt{.ts = 91, .release = {}}), kT0 + 2ms, sink);  // a duplicate of the new one
  src.tick(kT0 + 1s, sink);
  EXPECT_EQ(sink.trace(), "r0 r1 r2 R2>0 r0 r1");
  EXPECT_EQ(src.stats().resets.value(), 1u);
  EXPECT_EQ(src.stats().duplicates.value(), 1u);
}

TEST(Source, ResetsWhenANumberIsMoreThanAWindowBehind) {
  Source src(small_limits());  // window 16
  Collect sink;
  for (std::uint64_t s = 100; s < 120; ++s) src.datagram(rec(s), kT0, sink);
  src.datagram(rec(104), kT0, sink);  // within the window: a duplicate
  src.datagram(rec(103), kT0, sink);  // 17 behind: a restart
  EXPECT_EQ(src.stats().duplicates.value(), 1u);
  EXPECT_EQ(sink.trace().substr(sink.trace().size() - 13), "r119 R119>103");
  src.datagram(rec(104), kT0, sink);
  src.tick(kT0 + 1s, sink);
  EXPECT_EQ(sink.trace().substr(sink.trace().size() - 23), "r119 R119>103 r103 r104");
}

// --- msgid: lost or filtered ----------------------------------------------------

std::string with_msgid(std::uint64_t seq, std::uint32_t msgid) {
  return ext1(seq, "m", " cpu=0\n taskname=sh\n msgid=" + std::to_string(msgid) + "\n");
}

TEST(Source, TellsFilteredRecordsFromLostOnesByMsgid) {
  Source src(SourceLimits{});
  Collect sink;
  src.datagram(with_msgid(0, 10), kT0, sink);
  src.datagram(with_msgid(2, 11), kT0, sink);  // 1 filtered by level: no msgid taken
  src.tick(kT0 + 1s, sink);
  src.datagram(with_msgid(3, 12), kT0 + 1s, sink);
  src.datagram(with_msgid(6, 14), kT0 + 1s, sink);  // msgid 13 was sent and lost
  src.tick(kT0 + 2s, sink);
  src.datagram(with_msgid(7, 4294967295u), kT0 + 2s, sink);
  src.datagram(with_msgid(9, 0), kT0 + 2s, sink);  // msgid wraps: contiguous
  src.tick(kT0 + 3s, sink);
  EXPECT_EQ(sink.trace(), "r0 g1+1 r2 r3 g4+2! r6 r7 g8+1 r9");
  EXPECT_EQ(src.stats().lost.value(), 1u);
  EXPECT_EQ(src.stats().gap_records.value(), 4u);
  EXPECT_EQ(sink.records()[1].msgid, 11u);
}

// --- limits -----------------------------------------------------------------

TEST(Source, PushesTheWindowWhenARecordIsTooFarAhead) {
  SourceLimits l = small_limits();
  l.window = 8;
  Source src(l);
  Collect sink;
  prime(src, sink);
  for (std::uint64_t s = 2; s <= 8; ++s) src.datagram(rec(s), kT0, sink);
  EXPECT_EQ(sink.trace(), "r0");
  EXPECT_EQ(src.held_records(), 7u);
  src.datagram(rec(9), kT0, sink);  // 9 - 1 >= 8: number 1 is given up now
  EXPECT_EQ(sink.trace(), "r0 g1+1 r2 r3 r4 r5 r6 r7 r8 r9");
  EXPECT_EQ(src.stats().pushed.value(), 1u);
  // Far ahead: what is more than a window behind it is given up at once,
  // the numbers just below it may still come.
  src.datagram(rec(1000), kT0, sink);
  EXPECT_EQ(sink.trace(), "r0 g1+1 r2 r3 r4 r5 r6 r7 r8 r9 g10+983");
  src.datagram(rec(999), kT0, sink);
  src.tick(kT0 + 1s, sink);
  EXPECT_EQ(sink.trace(), "r0 g1+1 r2 r3 r4 r5 r6 r7 r8 r9 g10+983 g993+6 r999 r1000");
  EXPECT_EQ(src.stats().pushed.value(), 984u);
}

TEST(Source, StaysWithinItsMemoryAndPushesTheWindowWhenItIsFull) {
  SourceLimits l = small_limits();
  l.memory = 4 * Source::kBlockSize;
  Source src(l);
  Collect sink;
  prime(src, sink);
  for (std::uint64_t s = 2; s <= 3; ++s) src.datagram(ext1(s, std::string(300, 'm')), kT0, sink);  // two blocks each
  EXPECT_EQ(src.held_bytes(), l.memory);
  EXPECT_EQ(sink.trace(), "r0");
  src.datagram(ext1(5, std::string(300, 'm')), kT0, sink);  // full: number 1 is given up now
  EXPECT_EQ(sink.trace(), "r0 g1+1 r2 r3");
  EXPECT_EQ(src.stats().pushed.value(), 1u);
  EXPECT_EQ(src.held_bytes(), 2 * Source::kBlockSize);
  // A record larger than the memory can never be held: dropped, and no
  // hole given up for it.
  const auto big = ext(6, std::string(1500, 'b'));
  src.datagram(big[0], kT0, sink);
  EXPECT_EQ(src.stats().over_memory.value(), 1u);
  EXPECT_EQ(src.stats().pushed.value(), 1u);
  EXPECT_LE(src.held_bytes(), l.memory);
  src.datagram(rec(4), kT0, sink);
  EXPECT_EQ(sink.trace(), "r0 g1+1 r2 r3 r4 r5");
  src.flush(sink);
  EXPECT_EQ(src.held_bytes(), 0u);
  EXPECT_EQ(sink.trace(), "r0 g1+1 r2 r3 r4 r5 g6+1");
}

TEST(Source, KeepsAtMostkMaxFieldsOfOneKind) {
  std::string lines;
  for (std::size_t i = 0; i < Source::kMaxFields + 3; ++i) lines += " k" + std::to_string(i) + "=v\n";
  Source src(SourceLimits{});
  Collect sink;
  src.datagram(ext1(1, "t", lines), kT0, sink);
  src.flush(sink);
  ASSERT_EQ(sink.records().size(), 1u);
  EXPECT_EQ(sink.records()[0].userdata.size(), Source::kMaxFields);
  EXPECT_EQ(src.stats().fields_dropped.value(), 3u);
}

// --- reliable mode --------------------------------------------------------------

TEST(Source, ReliableModeAcksAndAsksForHolesAtItsPace) {
  SourceLimits l;
  l.reliable = true;
  l.ack_interval = 50ms;
  l.retransmit_interval = 200ms;
  l.message_timeout = 30s;
  Source src(l);
  Collect sink;
  EXPECT_EQ(src.response(kT0), "");  // nothing received
  prime(src, sink);
  src.datagram(rec(1), kT0, sink);
  EXPECT_EQ(src.response(kT0), "ncrx1");
  EXPECT_EQ(src.response(kT0 + 10ms), "");  // nothing new
  src.datagram(rec(4), kT0 + 20ms, sink);
  EXPECT_EQ(src.next_deadline(), kT0 + 50ms);
  EXPECT_EQ(src.response(kT0 + 20ms), "");  // paced: 50 ms between responses
  EXPECT_EQ(src.response(kT0 + 50ms), "ncrx1 2 3");
  EXPECT_EQ(src.response(kT0 + 100ms), "");  // asked 50 ms ago
  EXPECT_EQ(src.next_deadline(), kT0 + 250ms);
  EXPECT_EQ(src.response(kT0 + 250ms), "ncrx1 2 3");  // asked again after 200 ms
  src.datagram(rec(2), kT0 + 260ms, sink);
  EXPECT_EQ(src.response(kT0 + 300ms), "ncrx2");  // 3 was asked for 50 ms ago
  src.tick(kT0 + 10s, sink);  // reliable: a hole waits for message_timeout
  EXPECT_EQ(sink.trace(), "r0 r1 r2");
  EXPECT_EQ(src.response(kT0 + 10s), "ncrx2 3");
  src.tick(kT0 + 20ms + 30s, sink);
  EXPECT_EQ(sink.trace(), "r0 r1 r2 g3+1 r4");
  EXPECT_EQ(src.response(kT0 + 31s), "ncrx4");  // the gap is acked as given up
  // A sender in emergency mode (resending unacked records with ncemg) is
  // answered even when nothing new came.
  src.datagram(ext1(4, "record 4", {}, Opt{.emergency = true, .release = {}}), kT0 + 32s, sink);
  EXPECT_EQ(src.response(kT0 + 32s), "ncrx4");
  EXPECT_EQ(src.response(kT0 + 33s), "");
}

TEST(Source, ReliableModeFillsAHoleWithARetransmission) {
  SourceLimits l;
  l.reliable = true;
  Source src(l);
  Collect sink;
  src.datagram(rec(0), kT0, sink);
  src.datagram(rec(2), kT0, sink);
  src.tick(kT0 + 5s, sink);  // well past reorder_timeout
  src.datagram(rec(1), kT0 + 5s, sink);
  EXPECT_EQ(sink.trace(), "r0 r1 r2");
}

// The answer to record 0 was lost: the sender sends it again, unchanged.
// In reliable mode that is a resend, answered again, not a restart (which
// would start a new stream at 0 and leave the sender unanswered); after
// zero_resend, or without reliable mode, the same bytes are a reboot.
TEST(Source, ReliableModeTakesAnUnchangedRecordZeroSoonAfterTheStartForAResend) {
  SourceLimits l;
  l.reliable = true;
  Source src(l);
  Collect sink;
  src.datagram(rec(0), kT0, sink);
  src.tick(kT0 + 1s, sink);
  EXPECT_EQ(src.response(kT0 + 1s), "ncrx0");
  src.datagram(rec(0), kT0 + 2s, sink);  // "ncrx0" was lost on the way
  EXPECT_EQ(src.stats().resets.value(), 0u);
  EXPECT_EQ(src.stats().duplicates.value(), 1u);
  EXPECT_EQ(src.response(kT0 + 2s), "ncrx0") << "answered again";
  src.datagram(rec(1), kT0 + 2s, sink);
  EXPECT_EQ(sink.trace(), "r0 r1");
  // Long after the start, the same bytes are a sender that started again.
  src.datagram(rec(0), kT0 + 11s, sink);
  src.tick(kT0 + 12s, sink);
  EXPECT_EQ(src.stats().resets.value(), 1u);
  EXPECT_EQ(sink.trace(), "r0 r1 R1>0 r0");

  Source plain(SourceLimits{});
  Collect plain_sink;
  plain.datagram(rec(0), kT0, plain_sink);
  plain.tick(kT0 + 1s, plain_sink);
  plain.datagram(rec(0), kT0 + 2s, plain_sink);
  plain.tick(kT0 + 3s, plain_sink);
  EXPECT_EQ(plain.stats().resets.value(), 1u) << "Linux's boots can begin byte for byte alike";
}

TEST(Source, NoResponseWithoutReliableMode) {
  Source src(SourceLimits{});
  Collect sink;
  src.datagram(rec(0), kT0, sink);
  src.datagram(rec(2), kT0, sink);
  EXPECT_EQ(src.response(kT0 + 1s), "");
}

TEST(Source, AddStatsSumsEveryCounter) {
  SourceStats a, b;
  a.records.add(2);
  a.basic_cut.add(1);
  b.records.add(3);
  b.stale.add(4);
  b.fields_dropped.add(5);
  add_stats(a, b);
  EXPECT_EQ(a.records.value(), 5u);
  EXPECT_EQ(a.stale.value(), 4u);
  EXPECT_EQ(a.fields_dropped.value(), 5u);
  EXPECT_EQ(a.basic_cut.value(), 1u);
  EXPECT_EQ(b.records.value(), 3u);
  // Every counter of the table, each with a value of its own.
  SourceStats c, d;
  std::uint64_t v = 1;
  for (const auto& n : kSourceCounters) (c.*n.member).add(v++ * 100);
  v = 1;
  for (const auto& n : kSourceCounters) (d.*n.member).add(v++);
  add_stats(c, d);
  v = 1;
  for (const auto& n : kSourceCounters) {
    EXPECT_EQ((c.*n.member).value(), v * 101) << n.key;
    ++v;
  }
  EXPECT_EQ(std::size(kSourceCounters), 19u);
}

// --- basic format ---------------------------------------------------------------

TEST(Source, CountsHeaderShapedDatagramsThatDoNotParseAsMalformedNotText) {
  Source src(SourceLimits{});
  Collect sink;
  for (const char* bad : {"14,1,2,-,ncfrag=9/3;offset past the total", "14,2,2,-,ncfrag=0/0;zero total",
                          "999,3,2,-;priority over 191", "6.1.0,14,4,x,-;a release and a bad timestamp"}) {
    src.datagram(bad, kT0, sink);
  }
  EXPECT_EQ(src.stats().malformed.value(), 4u);
  // Console text, even with commas and a ';' in it, stays text.
  src.datagram("eth0: link up, 1000 Mbps, full duplex; flow control off\n", kT0, sink);
  src.datagram("a,b,c,d;e\n", kT0, sink);
  EXPECT_EQ(src.stats().malformed.value(), 4u);
  const auto recs = sink.records();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].format, Format::kBasic);
  EXPECT_EQ(recs[1].text, "a,b,c,d;e");
}


TEST(Source, PassesBasicTextThroughLineByLine) {
  Source src(SourceLimits{});
  Collect sink;
  src.datagram("one\ntwo\n", kT0, sink);
  src.datagram("no newline", kT0, sink);
  const std::string cut = std::string(999, 'a') + "b";  // Linux's 1000-byte cut
  src.datagram(cut, kT0, sink);
  src.datagram(std::string(1000, 'c'), kT0, sink);  // the same line goes on
  src.datagram("d\nnext\n", kT0, sink);
  src.datagram(std::string(1000, 'e'), kT0 + 1s, sink);  // a cut line whose rest never comes
  EXPECT_EQ(src.next_deadline(), kT0 + 3s);
  src.tick(kT0 + 3s, sink);
  const auto recs = sink.records();
  ASSERT_EQ(recs.size(), 6u);
  EXPECT_EQ(recs[0].text, "one");
  EXPECT_EQ(recs[1].text, "two");
  EXPECT_EQ(recs[2].text, "no newline");
  EXPECT_EQ(recs[3].text, cut + std::string(1000, 'c') + "d");
  EXPECT_EQ(recs[3].fragments, 3u);
  EXPECT_EQ(recs[4].text, "next");
  EXPECT_EQ(recs[5].text, std::string(1000, 'e'));
  for (const auto& r : recs) EXPECT_EQ(r.format, Format::kBasic);
}

TEST(Source, CutsABasicLineLongerThanMaxRecord) {
  SourceLimits l;
  l.max_record = 1500;
  Source src(l);
  Collect sink;
  src.datagram(std::string(1000, 'a'), kT0, sink);
  src.datagram(std::string(1000, 'b'), kT0, sink);
  src.datagram("c\n", kT0, sink);
  const auto recs = sink.records();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].text, std::string(1000, 'a') + std::string(500, 'b'));
  EXPECT_EQ(recs[1].text, std::string(500, 'b') + "c");
  EXPECT_EQ(src.stats().basic_cut.value(), 1u);
}

// --- a stream through a lossy, reordering, duplicating network ------------------

// Every number is delivered once or reported in exactly one gap, in order;
// every delivered text is the one sent.
TEST(Source, AccountsForEveryNumberThroughALossyNetwork) {
  for (const bool reliable : {false, true}) {
    SourceLimits l = small_limits();
    l.window = 64;
    l.memory = 32 * 1024;
    l.reliable = reliable;
    Source src(l);
    Collect sink;
    std::mt19937 rng(reliable ? 5 : 6);
    std::vector<std::string> sent;
    std::vector<std::string> datagrams;
    for (std::uint64_t s = 0; s < 3000; ++s) {
      const std::string text = "r" + std::to_string(s) + std::string(rng() % 8 == 0 ? 1800 : rng() % 50, '.');
      sent.push_back(text);
      for (auto& d : ext(s, text)) datagrams.push_back(std::move(d));
    }
    // Loss 3%, duplicates 3%, each datagram displaced by up to 20 places.
    std::vector<std::pair<double, std::string>> wire;
    for (std::size_t i = 0; i < datagrams.size(); ++i) {
      if (i == 0) {
        wire.emplace_back(-1.0, datagrams[i]);
        continue;
      }
      const unsigned r = rng() % 100;
      if (r < 3) continue;
      wire.emplace_back(static_cast<double>(i) + (rng() % 2000) / 100.0, datagrams[i]);
      if (r < 6) wire.emplace_back(static_cast<double>(i) + (rng() % 2000) / 100.0, datagrams[i]);
    }
    std::stable_sort(wire.begin(), wire.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    Clock::time_point now = kT0;
    for (const auto& [when, d] : wire) {
      src.datagram(d, now, sink);
      now += 1ms;
      src.tick(now, sink);
      (void)src.response(now);
      EXPECT_LE(src.held_bytes(), l.memory);
    }
    src.flush(sink);
    std::uint64_t next = 0;
    for (const auto& e : sink.events) {
      ASSERT_NE(e.kind, Event::kReset);
      if (e.kind == Event::kRecord) {
        ASSERT_EQ(e.rec.seq, next) << reliable;
        ASSERT_EQ(e.rec.text, sent[e.rec.seq]);
        ++next;
      } else {
        ASSERT_EQ(e.gap.first_seq, next);
        next += e.gap.count;
      }
    }
    EXPECT_EQ(next, 3000u);
    EXPECT_GT(src.stats().records.value(), 2700u);
    EXPECT_GT(src.stats().duplicates.value(), 0u);
    EXPECT_EQ(src.held_bytes(), 0u);
  }
}

// --- no allocation after construction -------------------------------------------

TEST(Source, AllocatesNothingAfterConstruction) {
  SourceLimits l = small_limits();
  l.window = 64;  // number 2 stays within the history: its ncemg copy is late, not a restart
  l.reliable = true;
  // Everything is prepared before the guard is armed.
  std::vector<std::string> ds;
  for (std::uint64_t s = 0; s < 40; ++s) ds.push_back(rec(s));
  const auto frags = ext(40, std::string(2500, '\x01'), " SUBSYSTEM=x\n cpu=1\n msgid=3\n");
  const std::string emg = ext1(2, "late", {}, Opt{.emergency = true, .release = {}});
  const std::string basic_cut(1000, 'k');
  const std::string restart = ext1(0, "again", {}, Opt{.ts = 99, .release = {}});
  Source src(l);
  struct Quiet : Sink {
    std::size_t n = 0;
    void record(const Record& r) override { n += r.text.size(); }
    void gap(const Gap& g) override { n += g.count; }
    void reset(std::uint64_t, std::uint64_t) override { ++n; }
  } sink;
  np::testing::AllocGuard guard;
  Clock::time_point now = kT0;
  for (std::uint64_t s = 0; s < 40; ++s)
    if (s != 3 && s != 7) src.datagram(ds[s ^ 1], now += 1ms, sink);  // pairs swapped; 2 and 6 missing
  src.datagram(frags[2], now, sink);
  src.datagram(frags[0], now, sink);
  src.datagram(frags[1], now, sink);
  for (std::size_t i = 3; i < frags.size(); ++i) src.datagram(frags[i], now, sink);
  (void)src.response(now += 100ms);
  (void)src.next_deadline();
  src.tick(now += 31s, sink);
  src.datagram(emg, now, sink);
  src.datagram(basic_cut, now, sink);
  src.datagram("rest\n", now, sink);
  src.datagram(restart, now, sink);
  (void)src.response(now += 1s);
  src.flush(sink);
  const auto allocations = guard.stop();
  EXPECT_EQ(allocations, 0u);
  EXPECT_GT(sink.n, 0u);
  EXPECT_EQ(src.stats().late.value(), 1u);
  EXPECT_EQ(src.stats().resets.value(), 1u);
}

}  // namespace
}  // namespace np::listen
