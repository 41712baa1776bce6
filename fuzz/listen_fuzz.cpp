// Fuzzes the receiver engine (listen::Source) and the output formats with
// arbitrary datagram sequences under small limits.
//
// Input: byte 0 and 1 choose the limits (window 1..16, memory 0..15 blocks,
// max_record 64..2048, reliable or not); the rest is datagrams separated by
// 0xff (a byte that neither an extended datagram, whose bytes >= 0x7f are
// escaped, nor UTF-8 text contains). The first byte of each datagram is not
// sent: it advances the fake clock by (b % 64) * 8 ms and, by its high
// bits, calls tick() and response() after the datagram.
//
// Invariants checked on what comes out (any violation aborts):
//   - every view is readable in full (AddressSanitizer checks each byte);
//   - records and gaps cover the sequence numbers contiguously, each number
//     once, from the start of a stream to the next reset; a late record
//     is an ncemg one, below the stream's position (it may come before the
//     stream's first event), delivered only once;
//   - a basic record's text holds no '\n' and has seq 0;
//   - held memory stays within the limit; a response is one well-formed
//     ncrx datagram whose missing numbers are above its ack;
//   - the formatters write one line (human: later lines indented) of valid
//     UTF-8 for JSON; in the human line a '\' always starts an escape (\\ or
//     \xHH); JSON's text_base64 follows the text exactly when the text is
//     not UTF-8, and holds its bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "netpoll/listen/format.h"
#include "netpoll/listen/source.h"
#include "netpoll/wire/netconsole.h"
#include "utf8_oracle.h"

namespace {

using namespace np::listen;
using namespace std::chrono_literals;

void check(bool ok) {
  if (!ok) std::abort();
}

unsigned touch(std::string_view s) {
  unsigned sum = 0;
  for (const char c : s) sum += static_cast<unsigned char>(c);
  return sum;
}

using np::testing::strict_utf8;

// RFC 4648 §4, as a reader would expect it.
std::string base64(std::string_view s) {
  static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < s.size(); i += 3) {
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k) v = v << 8 | (i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k) out += k <= s.size() - i ? kDigits[v >> (18 - 6 * k) & 63] : '=';
  }
  return out;
}

struct Checker : Sink {
  std::size_t max_record = 0;
  bool have_next = false;
  std::uint64_t next = 0;           // the number the stream owes next
  std::set<std::uint64_t> delivered;  // since the last reset
  std::uint64_t records = 0;
  std::string out;
  unsigned sink_sum = 0;

  void formats(const Record& r) {
    const Origin o{std::chrono::system_clock::time_point{} + 1795324321s, "10.0.0.1:6665"};
    out.clear();
    append_human(out, r, o);
    check(!out.empty() && out.back() == '\n');
    for (std::size_t at = 0; (at = out.find('\n', at)) != std::string::npos; ++at)
      check(at + 1 == out.size() || out.compare(at + 1, 4, "    ") == 0);
    for (std::size_t at = 0; (at = out.find('\\', at)) != std::string::npos; at += 2)
      check(at + 1 < out.size() && (out[at + 1] == '\\' || out[at + 1] == 'x'));
    out.clear();
    append_json(out, r, o);
    check(strict_utf8(out) && out.find('\n') == out.size() - 1);
    // A '"' inside a string is always \", so these keys are found only where
    // they are keys.
    const std::size_t fragments = out.find(",\"fragments\":");
    if (strict_utf8(r.text)) {
      check(out.find(",\"text_base64\":") > fragments);
    } else {
      check(out.find(",\"text_base64\":\"" + base64(r.text) + "\",\"fragments\":") != std::string::npos);
    }
    out.clear();
    append_syslog(out, r, o);
    std::string framed;
    append_octet_counted(framed, out);
    check(framed.size() > out.size());
  }

  void record(const Record& r) override {
    ++records;
    sink_sum += touch(r.text) + touch(r.release);
    for (const auto* fields : {&r.dictionary, &r.userdata, &r.sysdata}) {
      for (const Field& f : *fields) {
        sink_sum += touch(f.key) + touch(f.value);
        check(f.key.find('\n') == std::string_view::npos && f.value.size() <= max_record);
      }
    }
    if (r.format == Format::kBasic) {
      check(r.seq == 0 && !r.late && r.text.find('\n') == std::string_view::npos);
      check(r.text.size() <= max_record && r.fragments >= 1);
    } else {
      check(r.text.size() <= max_record && r.fragments >= 1);
      check(delivered.insert(r.seq).second);  // never twice in a stream
      if (r.late) {
        check(r.emergency && (!have_next || r.seq < next));  // may come before the stream's first event
      } else {
        check(!have_next || r.seq == next);
        have_next = true;
        next = r.seq + 1;
      }
    }
    formats(r);
  }
  void gap(const Gap& g) override {
    check(g.count > 0);
    check(!have_next || g.first_seq == next);
    have_next = true;
    next = g.first_seq + g.count;
    std::string s;
    const Origin o{std::chrono::system_clock::time_point{}, "10.0.0.1:6665"};
    append_json_gap(s, g, o);
    append_human_gap(s, g, o);
  }
  void reset(std::uint64_t, std::uint64_t) override {
    have_next = false;
    delivered.clear();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  SourceLimits l;
  l.window = 1 + (data[0] & 15);
  l.reliable = (data[0] & 0x10) != 0;
  l.memory = (data[1] & 15) * Source::kBlockSize;
  l.max_record = 64u << ((data[1] >> 4) % 6);
  l.reorder_timeout = 40ms;
  l.fragment_timeout = 120ms;
  l.message_timeout = 300ms;
  l.ack_interval = 8ms;
  l.retransmit_interval = 24ms;
  Source src(l);
  Checker sink;
  sink.max_record = l.max_record;
  Clock::time_point now{};
  const std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::size_t at = 0;
  while (at <= in.size()) {
    std::size_t end = in.find('\xff', at);
    if (end == std::string_view::npos) end = in.size();
    std::string_view d = in.substr(at, end - at);
    at = end + 1;
    unsigned step = 0;
    if (!d.empty()) {
      step = static_cast<unsigned char>(d[0]);
      d.remove_prefix(1);
    }
    now += (step % 64) * 8ms;
    src.datagram(d, now, sink);
    check(src.held_bytes() <= l.memory);
    if (step & 0x40) src.tick(now, sink);
    if (step & 0x80) {
      const std::string_view resp = src.response(now);
      check(resp.size() <= np::wire::netconsole::kMaxDatagram);
      if (!resp.empty()) {
        std::uint64_t ack = 0;
        check(np::wire::netconsole::parse_ncrx(resp, ack, [&](std::uint64_t m) { check(m > ack); }));
      }
    }
    const Clock::time_point deadline = src.next_deadline();
    check(deadline == Clock::time_point::max() || deadline > Clock::time_point::min() || l.reliable);
  }
  src.tick(now + 10s, sink);
  src.flush(sink);
  check(src.held_bytes() == 0 && src.held_records() == 0);
  check(sink.records == src.stats().records.value());
  return 0;
}
