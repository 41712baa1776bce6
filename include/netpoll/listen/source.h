// The receiving side of netconsole: what one source (one sender address
// and port) sends, turned back into records.
//
// A Source is fed the datagrams that source sent, as they arrive, and hands
// complete records to a sink, in sequence order:
//   - extended datagrams (wire/netconsole.h) are parsed; fragments are put
//     together by offset (bounded memory, a timeout for the missing ones);
//     \xHH escapes are undone after reassembly (a cut may fall inside one);
//     the body is split into text and " KEY=VALUE" lines: sysdata (cpu,
//     taskname, release, msgid), dictionary (upper-case keys, as the
//     kernel's SUBSYSTEM=, DEVICE=) and userdata (the rest);
//   - records are reordered within a window; a sequence number that does
//     not come within the window or the timeout is reported as a gap
//     (lost-or-filtered: the kernel also leaves numbers out for records
//     filtered by level; where msgid is present, a msgid gap is a true
//     loss); a number seen again is a duplicate; a number far behind the
//     stream (or a restart at a low number) is a reset (a rebooted sender);
//   - a record marked ncemg=1 is accepted even out of order (late);
//   - a datagram shaped like an extended header (digits, commas, ';') that
//     does not parse (a bad fragment, a priority over 191) is malformed;
//   - basic-format datagrams (anything else) are console
//     text, passed through line by line (a line cut at 1000 bytes is joined),
//     never reordered; they carry no number and no priority: seq 0 and the
//     Record's default facility and level (user.info).
// With reliable mode on, response() gives the datagram to send back
// ("ncrx<ack> <missing>...", see wire/netconsole.h).
//
// One Source is used by one thread. Memory is fixed at construction (the
// limits); feeding a datagram never allocates.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "netpoll/base/counter.h"
#include "netpoll/base/counter_table.h"

namespace np::listen {

using Clock = std::chrono::steady_clock;

struct Field {
  std::string_view key;
  std::string_view value;  // escapes undone
};

enum class Format : std::uint8_t { kExtended, kBasic };

// A record as delivered. Every view points into the Source's memory and is
// valid only during the sink call.
struct Record {
  Format format = Format::kExtended;
  std::uint64_t seq = 0;  // extended only
  std::uint8_t facility = 1;
  std::uint8_t level = 6;
  std::uint64_t timestamp_us = 0;  // the sender's clock
  bool continuation = false;
  bool emergency = false;  // came with ncemg=1
  bool late = false;       // delivered after its number was reported as a gap
  std::uint32_t fragments = 1;  // datagrams it came in
  std::string_view release;     // empty when none
  std::string_view text;        // escapes undone, no trailing newline
  std::span<const Field> dictionary;
  std::span<const Field> userdata;
  std::span<const Field> sysdata;
  std::optional<std::uint32_t> msgid;  // from sysdata
};

struct Gap {
  std::uint64_t first_seq = 0;
  std::uint64_t count = 0;
  bool lost = false;  // the msgid sequence proves the records were lost, not filtered
                      // (or one of them was seen in part: fragments that never completed)
};

// Receives what a Source produces. Called on the thread that feeds it, from
// inside datagram()/tick()/flush(); it must not call back into that Source.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void record(const Record& r) = 0;
  virtual void gap(const Gap& g) = 0;
  // The sender restarted: the old stream ended at from_seq (the highest
  // number it had), the new one begins at to_seq.
  virtual void reset(std::uint64_t from_seq, std::uint64_t to_seq) = 0;
};

struct SourceLimits {
  std::size_t window = 256;               // records held for reordering
  std::size_t max_record = 64 * 1024;     // bytes of one reassembled record body
  std::size_t memory = 1 << 20;           // bytes for records held (reordering, fragments)
  Clock::duration reorder_timeout = std::chrono::milliseconds(500);  // a missing number becomes a gap
  Clock::duration fragment_timeout = std::chrono::seconds(2);       // an incomplete record is given up
  bool reliable = false;                                             // send ncrx responses
  Clock::duration ack_interval = std::chrono::milliseconds(50);
  Clock::duration retransmit_interval = std::chrono::milliseconds(200);
  Clock::duration message_timeout = std::chrono::seconds(30);  // reliable: how long a hole is waited for
  // Reliable: a delivered record 0 that comes again unchanged (its sender
  // timestamp the same) this soon after its stream started is a resend
  // (the sender did not hear the answer), not a restart. A reliable sender
  // resends it plainly for 10 s at the most before it cycles ncemg=1.
  Clock::duration zero_resend = std::chrono::seconds(10);
};

struct SourceStats {
  Counter records;      // records delivered
  Counter datagrams;    // datagrams fed
  Counter bytes;        // datagram bytes fed
  Counter fragments;    // datagrams that were fragments
  Counter reassembled;  // records put together from fragments
  Counter gaps;         // gaps reported
  Counter gap_records;  // sequence numbers in them
  Counter lost;         // of those, proven lost by msgid (or seen in part, see Gap::lost)
  Counter duplicates;
  Counter resets;
  Counter malformed;    // datagrams that could not be used (bad header, bad fragment, over a limit)
  Counter late;         // records delivered after their gap
  Counter emergency;    // records that came with ncemg=1
  // Finer reasons, each also explained in source.cpp's banner:
  Counter stale;           // datagrams of numbers given up (or before the stream began), not ncemg: dropped
  Counter incomplete;      // records given up with fragments missing (their numbers are in a gap)
  Counter over_memory;     // of malformed: datagrams dropped because `memory` was full
  Counter pushed;          // numbers given up early because the window or memory was full
  Counter fields_dropped;  // KEY=VALUE lines beyond kMaxFields of one kind
  Counter basic_cut;       // basic lines longer than max_record, delivered in pieces
};

// Every counter of SourceStats once, in output order: what add_stats() and
// the receiver's text and JSON statistics iterate (base/counter_table.h).
inline constexpr CounterName<SourceStats> kSourceCounters[] = {
    {&SourceStats::records, "records", "records"},
    {&SourceStats::datagrams, "datagrams", "datagrams"},
    {&SourceStats::fragments, "fragments", "fragments"},
    {&SourceStats::reassembled, "reassembled", "reassembled"},
    {&SourceStats::gaps, "gaps", "gaps"},
    {&SourceStats::gap_records, "gap_records", "gap records"},
    {&SourceStats::lost, "lost", "lost"},
    {&SourceStats::duplicates, "duplicates", "duplicates"},
    {&SourceStats::resets, "resets", "resets"},
    {&SourceStats::malformed, "malformed", "malformed"},
    {&SourceStats::late, "late", "late"},
    {&SourceStats::emergency, "emergency", "emergency"},
    {&SourceStats::bytes, "bytes", "bytes"},
    {&SourceStats::stale, "stale", "stale"},
    {&SourceStats::incomplete, "incomplete", "incomplete"},
    {&SourceStats::over_memory, "over_memory", "over memory"},
    {&SourceStats::pushed, "pushed", "pushed"},
    {&SourceStats::fields_dropped, "fields_dropped", "fields dropped"},
    {&SourceStats::basic_cut, "basic_cut", "basic cut"},
};
static_assert(names_every_counter(kSourceCounters));

// Adds every counter of `s` to `into`: totals over sources. Context: any.
void add_stats(SourceStats& into, const SourceStats& s);

class Source {
 public:
  // KEY=VALUE lines kept per kind (dictionary, userdata, sysdata); Linux
  // sends at most 16 userdata lines (netconsole's MAX_USERDATA_ITEMS), four
  // sysdata lines and two dictionary lines (SUBSYSTEM, DEVICE).
  static constexpr std::size_t kMaxFields = 64;
  // Longest release prefix accepted: Linux's utsname release is 64 bytes.
  static constexpr std::size_t kMaxRelease = 64;
  // Granule of the held-record memory (`memory` is counted in these).
  static constexpr std::size_t kBlockSize = 256;

  // Allocates all the memory this source will use. Context: setup.
  explicit Source(const SourceLimits& limits);
  ~Source();
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // Feeds one datagram received at `now`; delivers what became complete
  // and in order. Never allocates. Context: any (one thread).
  void datagram(std::string_view payload, Clock::time_point now, Sink& sink);

  // Acts on timeouts (gaps, expired fragments, a held basic line). Call at
  // least every few hundred milliseconds while records are held.
  // Context: any (one thread).
  void tick(Clock::time_point now, Sink& sink);

  // When tick() next has work to do (Clock::time_point::max() if none);
  // in reliable mode also when response() will next have something to say.
  // Context: any.
  Clock::time_point next_deadline() const;

  // Reliable mode: the response to send to the source now, or an empty
  // view. Valid until the next call. Context: any (one thread).
  std::string_view response(Clock::time_point now);

  // Delivers everything held (in order, reporting the gaps). Used when a
  // source is evicted or the receiver stops. Context: any (one thread).
  void flush(Sink& sink);

  const SourceStats& stats() const { return stats_; }

  // Bytes of `memory` in use now (whole blocks). Context: any.
  std::size_t held_bytes() const;
  // Records held for reordering or being reassembled. Context: any.
  std::size_t held_records() const;
  // Everything the constructor allocated: the `memory` arena, the window,
  // the scratch buffers. Context: any.
  std::size_t footprint() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  SourceStats stats_;
};

}  // namespace np::listen
