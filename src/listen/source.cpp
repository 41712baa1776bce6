// The netconsole receiver engine: one Source per sender.
//
// Memory (all of it allocated by the constructor):
//   - the window: a ring of slots, one per sequence number in
//     [base_, base_ + window), rounded up to a power of two so that a number
//     finds its slot with a mask. A slot is kEmpty (nothing known), kHole (a
//     number below the highest seen that has not come), kAssembling
//     (fragments arriving) or kComplete (held until the numbers before it
//     are settled). Slots at or above high_ are always kEmpty;
//   - the history: a ring of the same size remembering, for the numbers
//     just below base_, whether each was delivered (and with which sender
//     timestamp) or given up, to tell duplicates, late records and restarts
//     apart;
//   - the arena: `memory` bytes in kBlockSize blocks on a free stack. A held
//     record is a chain of blocks holding [release][escaped body]; a record
//     being reassembled gets its whole chain (release + ncfrag total) at its
//     first fragment, and fragments are written at their offsets. No
//     fragmentation, exact accounting, allocation in O(blocks); chains are
//     mostly runs of adjacent blocks (alloc_chain());
//   - one scratch buffer (max_record + kMaxRelease): a held record whose
//     chain is not one run is gathered there (one that is stays in the
//     arena), and unescaped in place; a record delivered straight from its
//     datagram is unescaped there only if it holds a '\';
//   - the basic-line buffer (max_record), the field arrays, the response.
//
// The in-order path: a whole record whose number is base_ is parsed in place
// and delivered from the datagram itself: no copy, no hashing, no map.
//
// Gaps and timeouts. A number becomes a hole when a higher one arrives; the
// run of holes at the front of the window is given up (Sink::gap) once the
// first of them has been missing for reorder_timeout (message_timeout in
// reliable mode, so that retransmissions can fill it). A record still
// missing fragments fragment_timeout after its first one is given up
// (stats.incomplete) and becomes a hole missing since that first fragment;
// its gap says lost=true, since part of it was seen. A gap's lost flag is
// also set when the records on both sides carry msgid and the msgids are
// not contiguous; stats.lost counts the missing msgids (at most the gap's
// count) or the given-up records, whichever is more.
//
// Limits. A number a window or more ahead of base_ pushes the front
// forward (held records delivered, holes and incomplete records given up:
// stats.pushed) until it fits. A record or first fragment that does not fit
// in `memory` pushes the front the same way, but never past its own number;
// if it still does not fit it is dropped (stats.over_memory, and malformed).
// A fragment total above max_record, a fragment disagreeing with the total
// its record started with, a release over kMaxRelease, or a record needing
// more than kMaxRanges separate pieces are malformed. A basic line longer
// than max_record is delivered in max_record pieces (stats.basic_cut).
//
// Behind the stream. A number below base_ is
//   - a reset when it is more than a window behind, when it is 0 (Linux
//     numbers from 0 at boot, and the first records of two boots can be
//     byte-identical, timestamp 0 included) unless it is an ncemg
//     retransmission or, in reliable mode, comes again unchanged within
//     limits.zero_resend of the stream's start (a resend: the sender did
//     not hear the answer; a duplicate), or when its number was delivered with a different
//     sender timestamp (a restarted sender reuses numbers; a duplicate
//     carries the same timestamp). Held records are flushed first, then
//     Sink::reset, and the stream starts again at that number. (A number
//     still held, not yet delivered, that comes again with another
//     timestamp is a restart too.);
//   - a duplicate when its number was delivered with the same timestamp;
//   - otherwise its number was given up (or came before the stream began):
//     an ncemg record is delivered late (late=true; fragments assembled in
//     one extra slot), anything else is stale.
// The start hold. The first extended record starts the stream, and so does
// the record after a reset; both moments come with bursts (a boot log) and
// reordering. For reorder_timeout after the start (also in reliable mode;
// or until the window or memory is full) nothing is delivered, and a record
// numbered below the start, within a window of the highest seen, moves the
// start down to it.
//
// Reliable mode: response() answers at most every ack_interval, when the
// ack moved, when an ncemg record or a duplicate of a delivered one came
// (the sender did not hear the last answer), or when a hole is due to be asked
// for (never asked, or last asked retransmit_interval ago; an incomplete
// record is first asked for retransmit_interval after its first fragment).
#include "netpoll/listen/source.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>

#include "netpoll/base/assert.h"
#include "netpoll/wire/netconsole.h"

namespace np::listen {
namespace {

namespace nc = np::wire::netconsole;

constexpr std::uint32_t kNoBlock = 0xffffffffu;
// Separate byte ranges a record in reassembly may have: Linux sends
// fragments in order, so even heavy reordering rarely needs more than two.
constexpr std::size_t kMaxRanges = 16;
// Missing numbers one response can name (format_ncrx keeps to 1000 bytes).
constexpr std::size_t kMaxMissing = 128;
constexpr Clock::time_point kNever = Clock::time_point::min();

enum class SlotState : std::uint8_t { kEmpty, kHole, kAssembling, kComplete };

struct Range {
  std::uint32_t begin = 0, end = 0;
};

struct Slot {
  std::uint64_t seq = 0;
  std::uint64_t timestamp_us = 0;
  Clock::time_point since{};           // hole: missing since; assembling: first fragment
  Clock::time_point requested = kNever;  // reliable: last named in a response
  std::uint32_t head = kNoBlock;       // block chain: [release][body]
  std::uint32_t cursor_block = kNoBlock;  // last block written, for in-order fragments
  std::uint32_t cursor_index = 0;         // its position in the chain
  std::uint32_t release_len = 0;
  std::uint32_t body_len = 0;  // the body (for a record in reassembly, its total)
  std::uint32_t received = 0;  // body bytes covered by ranges
  std::uint32_t fragments = 0;
  std::uint32_t msgid = 0;
  SlotState state = SlotState::kEmpty;
  bool has_msgid = false;
  bool gave_up = false;  // a hole left by a record given up incomplete
  bool emergency = false;
  bool continuation = false;
  std::uint8_t facility = 1, level = 6;
  std::uint8_t nranges = 0;
  Range ranges[kMaxRanges];
};

enum class Seen : std::uint8_t { kNone, kDelivered, kGivenUp };

struct History {
  std::uint64_t seq = 0;
  std::uint64_t timestamp_us = 0;
  Seen seen = Seen::kNone;
};

// Whether a datagram that is not a valid extended record still has the
// shape of one: a ';' within the first 256 bytes, no blank or control byte
// before it, at least three ',' and a field of digits (the priority) first
// or, after a release, second. Such a datagram is malformed (a bad
// fragment, a priority over 191), never console text: the kernel's console
// lines do not begin that way.
bool header_shaped(std::string_view d) {
  const auto semi = d.substr(0, 256).find(';');
  if (semi == std::string_view::npos) return false;
  const std::string_view h = d.substr(0, semi);
  std::size_t commas = 0;
  for (const char c : h) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
    commas += c == ',' ? 1 : 0;
  }
  if (commas < 3) return false;
  auto digits = [](std::string_view f) {
    return !f.empty() && std::all_of(f.begin(), f.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  const auto c1 = h.find(',');
  const auto c2 = h.find(',', c1 + 1);
  return digits(h.substr(0, c1)) || digits(h.substr(c1 + 1, c2 - c1 - 1));
}

bool is_sysdata_key(std::string_view k) {
  return k == "cpu" || k == "taskname" || k == "release" || k == "msgid";
}

// The kernel's dictionary keys (SUBSYSTEM, DEVICE) are upper case;
// netconsole's userdata keys are whatever the user named them.
bool is_dictionary_key(std::string_view k) {
  bool upper = false;
  for (const char c : k) {
    if (c >= 'a' && c <= 'z') return false;
    upper |= c >= 'A' && c <= 'Z';
  }
  return upper;
}

std::optional<std::uint32_t> parse_msgid(std::string_view v) {
  std::uint32_t id = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), id);
  if (v.empty() || r.ec != std::errc() || r.ptr != v.data() + v.size()) return std::nullopt;
  return id;
}

}  // namespace

struct Source::Impl {
  Impl(const SourceLimits& l, SourceStats& s)
      : limits(l),
        stats(s),
        window(std::max<std::size_t>(l.window, 1)),
        mask(std::bit_ceil(window) - 1),
        max_record(std::min<std::size_t>(std::max<std::size_t>(l.max_record, 1), 0x7fffffff)),
        hole_timeout(l.reliable ? l.message_timeout : l.reorder_timeout),
        nblocks(std::min<std::size_t>(l.memory / kBlockSize, 0x7ffffffe)),
        slots(new Slot[mask + 2]),  // +1: the slot for late ncemg records
        history(new History[mask + 1]),
        arena(new char[std::max<std::size_t>(nblocks, 1) * kBlockSize]),
        next(new std::uint32_t[std::max<std::size_t>(nblocks, 1)]),
        free_stack(new std::uint32_t[std::max<std::size_t>(nblocks, 1)]),
        scratch_len(max_record + kMaxRelease),
        scratch(new char[scratch_len]),
        basic_cap(max_record),
        basic(new char[basic_cap]) {
    for (std::size_t i = 0; i < nblocks; ++i) free_stack[i] = static_cast<std::uint32_t>(nblocks - 1 - i);
    nfree = nblocks;
  }

  // --- the block arena ------------------------------------------------------

  static std::size_t blocks_for(std::size_t bytes) { return std::max<std::size_t>(1, (bytes + kBlockSize - 1) / kBlockSize); }

  // A chain takes blocks off the top of the free stack in order, and a
  // freed chain goes back so that its first block is on top again: with
  // records freed as they came, chains stay runs of adjacent blocks in
  // ascending order, copied with one memcpy and delivered without a copy
  // (gathered()).
  std::uint32_t alloc_chain(std::size_t bytes) {
    const std::size_t n = blocks_for(bytes);
    if (n > nfree) return kNoBlock;
    const std::uint32_t head = free_stack[nfree - 1];
    std::uint32_t b = head;
    for (std::size_t i = 1; i < n; ++i) {
      const std::uint32_t nb = free_stack[nfree - 1 - i];
      next[b] = nb;
      b = nb;
    }
    next[b] = kNoBlock;
    nfree -= n;
    return head;
  }

  void free_chain(Slot& s) {
    std::size_t n = 0;
    for (std::uint32_t b = s.head; b != kNoBlock; b = next[b]) ++n;
    std::size_t at = nfree + n;
    for (std::uint32_t b = s.head; b != kNoBlock; b = next[b]) free_stack[--at] = b;
    nfree += n;
    s.head = s.cursor_block = kNoBlock;
    s.cursor_index = 0;
  }

  char* block_at(std::uint32_t b) { return arena.get() + std::size_t{b} * kBlockSize; }

  // How many blocks from `b` on, at most `most`, follow each other in the
  // arena; *last is the last of them.
  std::size_t adjacent_run(std::uint32_t b, std::size_t most, std::uint32_t* last) const {
    std::size_t n = 1;
    while (n < most && next[b] == b + 1) {
      b = next[b];
      ++n;
    }
    *last = b;
    return n;
  }

  // Writes `data` at byte `offset` of the slot's chain.
  void chain_write(Slot& s, std::size_t offset, std::string_view data) {
    if (data.empty()) return;
    std::size_t index = offset / kBlockSize;
    std::uint32_t b = s.head;
    std::size_t at = 0;
    if (s.cursor_block != kNoBlock && s.cursor_index <= index) {
      b = s.cursor_block;  // fragments come in order: continue where the last one ended
      at = s.cursor_index;
    }
    for (; at < index; ++at) b = next[b];
    std::size_t within = offset % kBlockSize;
    for (;;) {
      std::uint32_t last = b;
      const std::size_t run = adjacent_run(b, blocks_for(within + data.size()), &last);
      const std::size_t n = std::min(data.size(), run * kBlockSize - within);
      std::memcpy(block_at(b) + within, data.data(), n);
      data.remove_prefix(n);
      index += run - 1;
      s.cursor_block = last;
      s.cursor_index = static_cast<std::uint32_t>(index);
      if (data.empty()) return;
      b = next[last];
      ++index;
      within = 0;
    }
  }

  // The slot's [release][body] in one piece: in the arena when its chain
  // is one run of adjacent blocks, else copied to the scratch buffer.
  // Either may be unescaped in place once the slot is being delivered.
  char* gathered(const Slot& s) {
    const std::size_t total = s.release_len + s.body_len;
    std::size_t at = 0;
    for (std::uint32_t b = s.head; b != kNoBlock && at < total;) {
      std::uint32_t last = b;
      const std::size_t run = adjacent_run(b, blocks_for(total - at), &last);
      const std::size_t n = std::min(run * kBlockSize, total - at);
      if (at == 0 && n == total) return block_at(b);
      std::memcpy(scratch.get() + at, block_at(b), n);
      at += n;
      b = next[last];
    }
    return scratch.get();
  }

  // --- the window -----------------------------------------------------------

  Slot& slot(std::uint64_t seq) { return slots[seq & mask]; }
  const Slot& slot(std::uint64_t seq) const { return slots[seq & mask]; }
  Slot& late_slot() { return slots[mask + 1]; }
  const Slot& late_slot() const { return slots[mask + 1]; }
  History& hist(std::uint64_t seq) { return history[seq & mask]; }

  void start_stream(std::uint64_t seq, Clock::time_point now) {
    started = true;
    started_at = now;
    starting = true;
    start_deadline = now + limits.reorder_timeout;
    base = high = seq;
    last_msgid.reset();
    for (std::size_t i = 0; i <= mask; ++i) history[i] = History{};
  }

  // Numbers [high, seq] become holes (seq's own until it is filled); seq
  // becomes the highest seen.
  void extend_to(std::uint64_t seq, Clock::time_point now) {
    for (std::uint64_t n = high; n <= seq; ++n) {
      Slot& s = slot(n);
      s.state = SlotState::kHole;
      s.seq = n;
      s.since = now;
      s.requested = kNever;
      s.gave_up = false;
    }
    if (seq >= high) high = seq + 1;
  }

  void clear_slot(Slot& s) {
    if (s.head != kNoBlock) free_chain(s);
    s.state = SlotState::kEmpty;
    s.gave_up = false;
    s.nranges = 0;
  }

  // A record in reassembly is given up: its number becomes a hole missing
  // since its first fragment.
  void give_up(Slot& s) {
    free_chain(s);
    s.state = SlotState::kHole;
    s.gave_up = true;
    s.nranges = 0;
    stats.incomplete.add();
  }

  void note_delivered(std::uint64_t seq, std::uint64_t ts) { hist(seq) = History{seq, ts, Seen::kDelivered}; }

  // Reports the run of holes at base (up to the first held record, or up to
  // `limit` when the run reaches high) as one gap.
  void report_run(std::uint64_t limit, Sink& sink) {
    const std::uint64_t first = base;
    std::uint64_t n = first;
    std::uint64_t gave_up = 0;
    while (n < limit) {
      if (n >= high) {
        n = limit;  // numbers never seen at all
        break;
      }
      Slot& s = slot(n);
      if (s.state == SlotState::kComplete || s.state == SlotState::kAssembling) break;
      gave_up += s.gave_up ? 1 : 0;
      clear_slot(s);
      ++n;
    }
    if (n == first) return;
    const std::uint64_t count = n - first;
    bool lost = gave_up > 0;
    std::uint64_t lost_count = gave_up;
    if (n < high && slot(n).state == SlotState::kComplete && slot(n).has_msgid && last_msgid) {
      // Linux numbers only the messages netconsole sent with msgid: a
      // record filtered by level leaves a sequence number out but no msgid.
      const std::uint32_t missing = slot(n).msgid - *last_msgid - 1;  // wraps at 2^32 as msgid does
      if (missing != 0) {
        lost = true;
        lost_count = std::max<std::uint64_t>(lost_count, std::min<std::uint64_t>(missing, count));
      }
    }
    for (std::uint64_t g = n - std::min<std::uint64_t>(count, mask + 1); g < n; ++g) hist(g) = History{g, 0, Seen::kGivenUp};
    base = n;
    if (high < base) high = base;
    stats.gaps.add();
    stats.gap_records.add(count);
    stats.lost.add(lost_count);
    sink.gap(Gap{first, count, lost});
  }

  // Delivers held records at the front while they are complete.
  void drain(Sink& sink) {
    if (starting) return;
    while (base < high) {
      Slot& s = slot(base);
      if (s.state != SlotState::kComplete) break;
      deliver_held(s, false, sink);
      ++base;
    }
  }

  // Moves base forward by one step (one held record delivered, one record
  // in reassembly given up, or one run of holes reported), not beyond
  // `limit`. False when there is nothing to move.
  bool push_one(std::uint64_t limit, Sink& sink, bool forced = true) {
    if (base >= limit) return false;
    starting = false;  // full: the start hold ends
    if (base < high) {
      Slot& s = slot(base);
      if (s.state == SlotState::kComplete) {
        deliver_held(s, false, sink);
        ++base;
        return true;
      }
      if (s.state == SlotState::kAssembling) give_up(s);
    }
    const std::uint64_t before = base;
    report_run(limit, sink);
    if (forced) stats.pushed.add(base - before);
    return true;
  }

  // Whether a record below `limit` holds memory that pushing would free.
  bool holds_below(std::uint64_t limit) const {
    for (std::uint64_t n = base; n < std::min(limit, high); ++n)
      if (slot(n).head != kNoBlock) return true;
    return false;
  }

  // Frees memory for `bytes` by pushing the front, never past `limit`, and
  // only while that frees something: holes are not given up for nothing.
  bool make_room(std::size_t bytes, std::uint64_t limit, Sink& sink) {
    if (blocks_for(bytes) > nblocks) return false;
    while (blocks_for(bytes) > nfree) {
      if (!holds_below(limit) || !push_one(limit, sink)) return false;
      drain(sink);
    }
    return true;
  }

  // Everything held, in order: the window is empty afterwards.
  void flush_window(Sink& sink) {
    starting = false;
    drain(sink);
    while (push_one(high, sink, false)) drain(sink);
    Slot& late = late_slot();
    if (late.state == SlotState::kAssembling) {
      give_up(late);
      clear_slot(late);
    }
  }

  // --- delivery -------------------------------------------------------------

  // Escapes undone: in place (a held record gathered in the scratch
  // buffer), or into the scratch buffer when `s` is the datagram's own.
  std::string_view clean(std::string_view s, bool in_place) {
    if (s.empty() || std::memchr(s.data(), '\\', s.size()) == nullptr) return s;
    char* out = in_place ? const_cast<char*>(s.data()) : scratch.get() + scratch_at;
    const std::size_t n = nc::unescape(s, std::span<char>(out, s.size()));
    if (!in_place) scratch_at += n;
    return {out, n};
  }

  void split_into(Record& r, std::string_view body, bool in_place) {
    scratch_at = 0;
    ndict = nuser = nsys = 0;
    const std::string_view text = nc::split_body(body, [&](std::string_view key, std::string_view value) {
      Field* arr;
      std::size_t* n;
      if (is_sysdata_key(key)) {
        arr = sys;
        n = &nsys;
      } else if (is_dictionary_key(key)) {
        arr = dict;
        n = &ndict;
      } else {
        arr = user;
        n = &nuser;
      }
      if (*n == kMaxFields) {
        stats.fields_dropped.add();
        return;
      }
      arr[(*n)++] = Field{key, clean(value, in_place)};
      if (key == "msgid") r.msgid = parse_msgid(arr[*n - 1].value);
    });
    r.text = clean(text, in_place);
    r.dictionary = {dict, ndict};
    r.userdata = {user, nuser};
    r.sysdata = {sys, nsys};
  }

  // The header fields, from a parsed datagram or a held slot (both name
  // them alike).
  template <class Header>
  static Record record_of(const Header& h, bool late) {
    Record r;
    r.seq = h.seq;
    r.facility = h.facility;
    r.level = h.level;
    r.timestamp_us = h.timestamp_us;
    r.continuation = h.continuation;
    r.emergency = h.emergency;
    r.late = late;
    return r;
  }

  void deliver_parsed(const nc::Parsed& p, bool late, Sink& sink) {
    Record r = record_of(p, late);
    r.release = p.release;
    split_into(r, p.body, false);
    finish(r, sink);
  }

  void deliver_held(Slot& s, bool late, Sink& sink) {
    const char* held = gathered(s);
    Record r = record_of(s, late);
    r.fragments = s.fragments;
    r.release = std::string_view(held, s.release_len);
    split_into(r, std::string_view(held + s.release_len, s.body_len), true);
    // Its blocks go back to the free stack, their bytes untouched: nothing
    // takes a block before the sink has the record.
    clear_slot(s);
    finish(r, sink);
  }

  void finish(const Record& r, Sink& sink) {
    note_delivered(r.seq, r.timestamp_us);
    if (!r.late) last_msgid = r.msgid;
    if (r.late) stats.late.add();
    stats.records.add();
    sink.record(r);
  }

  // A line from one datagram: longer than max_record, it goes in pieces,
  // as a line joined from several does (hold_basic).
  void deliver_line(std::string_view text, Sink& sink) {
    while (text.size() > basic_cap) {
      deliver_basic(text.substr(0, basic_cap), 1, sink);
      stats.basic_cut.add();
      text.remove_prefix(basic_cap);
    }
    deliver_basic(text, 1, sink);
  }

  void deliver_basic(std::string_view text, std::uint32_t fragments, Sink& sink) {
    Record r;
    r.format = Format::kBasic;
    r.fragments = fragments;
    r.text = text;
    stats.records.add();
    sink.record(r);
  }

  // --- extended records -----------------------------------------------------

  // The msgid of a record held out of order, for judging the gap before it.
  void note_msgid(Slot& s) {
    const char* held = gathered(s);
    s.has_msgid = false;
    nc::split_body(std::string_view(held + s.release_len, s.body_len),
                   [&](std::string_view key, std::string_view value) {
                     if (key != "msgid") return;
                     char buf[16];
                     const std::size_t n = value.size() < sizeof buf ? nc::unescape(value, buf) : 0;
                     if (const auto id = parse_msgid(std::string_view(buf, n))) {
                       s.msgid = *id;
                       s.has_msgid = true;
                     }
                   });
  }

  void restart(std::uint64_t seq, Clock::time_point now, Sink& sink) {
    flush_window(sink);
    const std::uint64_t from = high == 0 ? 0 : high - 1;
    stats.resets.add();
    sink.reset(from, seq);
    start_stream(seq, now);
  }

  // The start hold: numbers [seq, base) become holes, seq the new start.
  void rebase(std::uint64_t seq, Clock::time_point now) {
    for (std::uint64_t n = seq; n < base; ++n) {
      Slot& s = slot(n);
      s.state = SlotState::kHole;
      s.seq = n;
      s.since = now;
      s.requested = kNever;
      s.gave_up = false;
    }
    base = seq;
  }
  bool can_rebase(std::uint64_t seq) const { return starting && seq < base && high - seq <= window; }

  // A number below base: a reset, a duplicate, late or stale (see the
  // banner). kRestarted: the datagram starts the new stream; kLate: it is
  // to be delivered late; kDone: counted and dropped.
  enum class Behind { kRestarted, kDone, kLate };
  Behind behind(const nc::Parsed& p, Clock::time_point now, Sink& sink) {
    const std::uint64_t seq = p.seq;
    const History& h = hist(seq);
    const bool delivered = h.seq == seq && h.seen == Seen::kDelivered;
    const bool same = delivered && h.timestamp_us == p.timestamp_us;
    const bool resent_zero = seq == 0 && same && limits.reliable && now - started_at < limits.zero_resend;
    if (base - seq > window || (seq == 0 && !p.emergency && !resent_zero) || (delivered && !same)) {
      restart(seq, now, sink);
      return Behind::kRestarted;
    }
    if (delivered) {
      stats.duplicates.add();
      // A sender sending again what was delivered has not heard the last
      // answer (or cycles in an emergency): answer again.
      want_response = true;
      return Behind::kDone;
    }
    if (!p.emergency) {
      stats.stale.add();
      return Behind::kDone;
    }
    return Behind::kLate;
  }

  void whole(const nc::Parsed& p, Clock::time_point now, Sink& sink) {
    const std::uint64_t seq = p.seq;
    if (p.emergency) {
      stats.emergency.add();
      want_response = true;
    }
    if (!started) start_stream(seq, now);
    if (can_rebase(seq)) rebase(seq, now);
    if (seq < base) {
      switch (behind(p, now, sink)) {
        case Behind::kDone:
          return;
        case Behind::kLate:
          if (late_slot().state != SlotState::kEmpty && late_slot().seq == seq) clear_slot(late_slot());
          deliver_parsed(p, true, sink);
          return;
        case Behind::kRestarted:
          break;
      }
    }
    if (seq == base && !starting) {
      // The in-order path: straight from the datagram.
      Slot& s = slot(seq);
      if (base < high && s.state != SlotState::kEmpty) clear_slot(s);  // fragments, superseded
      deliver_parsed(p, false, sink);
      ++base;
      if (high < base) high = base;
      drain(sink);
      return;
    }
    if (seq - base >= window) push_to_fit(seq, sink);
    if (seq == base && !starting) {  // the push delivered everything before it
      deliver_parsed(p, false, sink);
      ++base;
      if (high < base) high = base;
      drain(sink);
      return;
    }
    extend_to(seq, now);
    Slot& s = slot(seq);
    if (s.state == SlotState::kComplete) {
      // A number held, again, with another sender timestamp: a sender that
      // started again before the first records were delivered (a duplicate
      // carries the same timestamp). The held ones go out, then the new
      // stream starts with this record.
      if (s.timestamp_us != p.timestamp_us && !p.emergency && !s.emergency) {
        restart(seq, now, sink);
        return whole(p, now, sink);
      }
      stats.duplicates.add();
      return;
    }
    if (s.state == SlotState::kAssembling) {  // its fragments are superseded by the whole record
      free_chain(s);
      s.state = SlotState::kHole;
      s.nranges = 0;
    }
    const std::size_t need = p.release.size() + p.body.size();
    std::uint32_t head = alloc_chain(need);
    if (head == kNoBlock) {
      make_room(need, seq, sink);
      if (seq == base && !starting) {  // everything before it was delivered or given up
        clear_slot(s);
        deliver_parsed(p, false, sink);
        ++base;
        drain(sink);
        return;
      }
      head = alloc_chain(need);
      if (head == kNoBlock) {  // it stays a hole: it may come again
        stats.over_memory.add();
        stats.malformed.add();
        return;
      }
    }
    fill_meta(s, p, head, p.body.size());
    s.fragments = 1;
    s.state = SlotState::kComplete;
    chain_write(s, 0, p.release);
    chain_write(s, s.release_len, p.body);
    note_msgid(s);
  }

  void push_to_fit(std::uint64_t seq, Sink& sink) {
    const std::uint64_t target = seq - window + 1;  // then seq - base < window
    while (base < target && push_one(target, sink)) drain(sink);
  }

  // A slot takes a record: its header, its block chain ([release][body],
  // body_len bytes of body: the whole, or the fragments' total).
  static void fill_meta(Slot& s, const nc::Parsed& p, std::uint32_t head, std::size_t body_len) {
    s.seq = p.seq;
    s.facility = p.facility;
    s.level = p.level;
    s.timestamp_us = p.timestamp_us;
    s.continuation = p.continuation;
    s.emergency = p.emergency;
    s.has_msgid = false;
    s.gave_up = false;
    s.head = head;
    s.cursor_block = kNoBlock;
    s.release_len = static_cast<std::uint32_t>(p.release.size());
    s.body_len = static_cast<std::uint32_t>(body_len);
  }

  // Records the fragment's byte range; false if it would need more than
  // kMaxRanges pieces. Sets *fresh when it covers bytes not seen before.
  static bool add_range(Slot& s, std::uint32_t b, std::uint32_t e, bool* fresh) {
    std::size_t i = 0;
    while (i < s.nranges && s.ranges[i].end < b) ++i;  // ranges are sorted and disjoint
    std::size_t j = i;
    std::uint32_t nb = b, ne = e;
    std::uint32_t covered = 0;
    while (j < s.nranges && s.ranges[j].begin <= e) {
      nb = std::min(nb, s.ranges[j].begin);
      ne = std::max(ne, s.ranges[j].end);
      covered += std::min(e, s.ranges[j].end) - std::max(b, std::min(e, s.ranges[j].begin));
      ++j;
    }
    *fresh = covered < e - b;
    if (!*fresh) return true;
    if (i == j) {
      if (s.nranges == kMaxRanges) return false;
      std::memmove(&s.ranges[i + 1], &s.ranges[i], (s.nranges - i) * sizeof(Range));
      ++s.nranges;
    } else if (j - i > 1) {
      std::memmove(&s.ranges[i + 1], &s.ranges[j], (s.nranges - j) * sizeof(Range));
      s.nranges = static_cast<std::uint8_t>(s.nranges - (j - i - 1));
    }
    s.ranges[i] = Range{nb, ne};
    s.received = 0;
    for (std::size_t k = 0; k < s.nranges; ++k) s.received += s.ranges[k].end - s.ranges[k].begin;
    return true;
  }

  void fragment(const nc::Parsed& p, Clock::time_point now, Sink& sink) {
    stats.fragments.add();
    if (p.frag_total == 0 || p.frag_total > max_record || p.body.empty()) {
      stats.malformed.add();
      return;
    }
    const std::uint64_t seq = p.seq;
    if (!started) start_stream(seq, now);
    if (can_rebase(seq)) rebase(seq, now);
    bool late = false;
    if (seq < base) {
      Slot& l = late_slot();
      if (l.state == SlotState::kAssembling && l.seq == seq) {
        late = true;  // more of a late ncemg record already started
      } else {
        switch (behind(p, now, sink)) {
          case Behind::kDone:
            return;
          case Behind::kLate:
            late = true;
            break;
          case Behind::kRestarted:
            break;
        }
      }
    }
    if (!late) {
      if (seq - base >= window) push_to_fit(seq, sink);
      extend_to(seq, now);
    }
    Slot& s = late ? late_slot() : slot(seq);
    if (s.state == SlotState::kComplete) {
      stats.duplicates.add();
      return;
    }
    if (s.state != SlotState::kAssembling || s.seq != seq) {
      if (s.state == SlotState::kAssembling) give_up(s);  // the late slot, taken by another record
      const std::size_t need = p.release.size() + p.frag_total;
      std::uint32_t head = alloc_chain(need);
      if (head == kNoBlock && make_room(need, late ? base : seq, sink)) head = alloc_chain(need);
      if (head == kNoBlock) {
        if (late) clear_slot(s);  // in the window it stays a hole
        stats.over_memory.add();
        stats.malformed.add();
        return;
      }
      fill_meta(s, p, head, p.frag_total);
      s.received = 0;
      s.nranges = 0;
      s.fragments = 0;
      s.since = now;
      s.requested = now;  // asked for only after retransmit_interval
      s.state = SlotState::kAssembling;
      chain_write(s, 0, p.release);
    } else if (s.body_len != p.frag_total || s.release_len != p.release.size()) {
      stats.malformed.add();
      return;
    }
    bool fresh = false;
    const auto b = static_cast<std::uint32_t>(p.frag_offset);
    if (!add_range(s, b, static_cast<std::uint32_t>(b + p.body.size()), &fresh)) {
      stats.malformed.add();
      return;
    }
    if (!fresh) {
      stats.duplicates.add();
      return;
    }
    chain_write(s, s.release_len + p.frag_offset, p.body);
    ++s.fragments;
    s.emergency |= p.emergency;
    if (s.received < s.body_len) return;

    stats.reassembled.add();
    if (s.emergency) {
      stats.emergency.add();
      want_response = true;
    }
    if (late) {
      deliver_held(s, true, sink);
    } else if (seq == base && !starting) {
      deliver_held(s, false, sink);
      ++base;
      drain(sink);
    } else {
      s.state = SlotState::kComplete;
      note_msgid(s);
    }
  }

  // --- basic records --------------------------------------------------------

  void hold_basic(std::string_view piece, Clock::time_point now, Sink& sink) {
    while (basic_len + piece.size() > basic_cap) {
      // A line longer than max_record: what is held goes out as a piece.
      const std::size_t n = basic_cap - basic_len;
      std::memcpy(basic.get() + basic_len, piece.data(), n);
      piece.remove_prefix(n);
      deliver_basic(std::string_view(basic.get(), basic_cap), basic_fragments, sink);
      stats.basic_cut.add();
      basic_len = 0;
      basic_fragments = 1;
    }
    std::memcpy(basic.get() + basic_len, piece.data(), piece.size());
    basic_len += piece.size();
    basic_since = now;
  }

  void flush_basic(Sink& sink) {
    if (basic_fragments == 0) return;
    deliver_basic(std::string_view(basic.get(), basic_len), basic_fragments, sink);
    basic_len = 0;
    basic_fragments = 0;
  }

  void basic_datagram(std::string_view d, Clock::time_point now, Sink& sink) {
    // Linux cuts a console write into 1000-byte datagrams: one that long
    // without a final newline goes on in the next datagram.
    const bool cut = d.size() == nc::kMaxDatagram && d.back() != '\n';
    if (basic_fragments > 0) {
      const auto nl = d.find('\n');
      ++basic_fragments;
      hold_basic(d.substr(0, nl), now, sink);
      if (nl == std::string_view::npos && cut) return;
      flush_basic(sink);
      if (nl == std::string_view::npos) return;
      d.remove_prefix(nl + 1);
    }
    while (!d.empty()) {
      const auto nl = d.find('\n');
      if (nl == std::string_view::npos) {
        if (cut) {
          basic_fragments = 1;
          hold_basic(d, now, sink);
        } else {
          deliver_line(d, sink);
        }
        return;
      }
      deliver_line(d.substr(0, nl), sink);
      d.remove_prefix(nl + 1);
    }
  }

  // --- timeouts -------------------------------------------------------------

  void tick(Clock::time_point now, Sink& sink) {
    if (basic_fragments > 0 && now - basic_since >= limits.fragment_timeout) flush_basic(sink);
    if (starting && now >= start_deadline) starting = false;
    Slot& l = late_slot();
    if (l.state == SlotState::kAssembling && now - l.since >= limits.fragment_timeout) {
      give_up(l);
      clear_slot(l);
    }
    for (std::uint64_t n = base; n < high; ++n) {
      Slot& s = slot(n);
      if (s.state == SlotState::kAssembling && now - s.since >= limits.fragment_timeout) give_up(s);
    }
    drain(sink);
    while (base < high) {
      const Slot& s = slot(base);
      if (s.state != SlotState::kHole || now - s.since < hole_timeout) break;
      report_run(high, sink);
      drain(sink);
    }
  }

  Clock::time_point next_deadline() const {
    Clock::time_point t = Clock::time_point::max();
    if (basic_fragments > 0) t = std::min(t, basic_since + limits.fragment_timeout);
    if (late_slot().state == SlotState::kAssembling) t = std::min(t, late_slot().since + limits.fragment_timeout);
    Clock::time_point ask = Clock::time_point::max();  // reliable: when a hole is next due to be asked for
    for (std::uint64_t n = base; n < high; ++n) {
      const Slot& s = slot(n);
      if (s.state == SlotState::kAssembling) t = std::min(t, s.since + limits.fragment_timeout);
      if (s.state == SlotState::kAssembling || s.state == SlotState::kHole)
        ask = std::min(ask, s.requested == kNever ? Clock::time_point::min() : s.requested + limits.retransmit_interval);
    }
    if (base < high && slot(base).state == SlotState::kHole) t = std::min(t, slot(base).since + hole_timeout);
    if (starting) return std::min(t, start_deadline);
    if (limits.reliable && started && base > 0) {
      if (base - 1 != last_ack || want_response) ask = Clock::time_point::min();
      if (ask != Clock::time_point::max()) {
        const Clock::time_point paced =
            last_response == kNever ? Clock::time_point::min() : last_response + limits.ack_interval;
        t = std::min(t, std::max(ask, paced));
      }
    }
    return t;
  }

  // --- reliable mode --------------------------------------------------------

  std::string_view response(Clock::time_point now) {
    if (!limits.reliable || !started || starting || base == 0) return {};
    if (last_response != kNever && now - last_response < limits.ack_interval) return {};
    std::size_t nmissing = 0;
    for (std::uint64_t n = base; n < high && nmissing < kMaxMissing; ++n) {
      const Slot& s = slot(n);
      if (s.state != SlotState::kHole && s.state != SlotState::kAssembling) continue;
      if (s.requested != kNever && now - s.requested < limits.retransmit_interval) continue;
      missing[nmissing++] = n;
    }
    const std::uint64_t ack = base - 1;
    if (ack == last_ack && !want_response && nmissing == 0) return {};
    const std::size_t len = nc::format_ncrx(ack, std::span<const std::uint64_t>(missing, nmissing), response_buf);
    if (len == 0) return {};
    // Only the numbers that fitted in the datagram count as asked for.
    const std::size_t named = static_cast<std::size_t>(std::count(response_buf, response_buf + len, ' '));
    for (std::size_t i = 0; i < named; ++i) slot(missing[i]).requested = now;
    last_response = now;
    last_ack = ack;
    want_response = false;
    return {response_buf, len};
  }

  const SourceLimits limits;
  SourceStats& stats;
  const std::size_t window;
  const std::size_t mask;
  const std::size_t max_record;
  const Clock::duration hole_timeout;
  const std::size_t nblocks;

  std::unique_ptr<Slot[]> slots;
  std::unique_ptr<History[]> history;
  std::unique_ptr<char[]> arena;
  std::unique_ptr<std::uint32_t[]> next;
  std::unique_ptr<std::uint32_t[]> free_stack;
  std::size_t nfree = 0;
  const std::size_t scratch_len;
  std::unique_ptr<char[]> scratch;
  std::size_t scratch_at = 0;
  const std::size_t basic_cap;
  std::unique_ptr<char[]> basic;
  std::size_t basic_len = 0;
  std::uint32_t basic_fragments = 0;  // datagrams of the held line; 0: none held
  Clock::time_point basic_since{};

  Field dict[kMaxFields];
  Field user[kMaxFields];
  Field sys[kMaxFields];
  std::size_t ndict = 0, nuser = 0, nsys = 0;

  bool started = false;
  bool starting = false;  // the start hold (see the banner)
  Clock::time_point start_deadline{};
  Clock::time_point started_at{};  // when the stream (re)started
  std::uint64_t base = 0;  // lowest number not yet delivered or given up
  std::uint64_t high = 0;  // one past the highest number seen
  std::optional<std::uint32_t> last_msgid;

  Clock::time_point last_response = kNever;
  std::uint64_t last_ack = ~std::uint64_t{0};
  bool want_response = false;
  std::uint64_t missing[kMaxMissing];
  char response_buf[nc::kMaxDatagram];
};

void add_stats(SourceStats& into, const SourceStats& s) { add_counters(into, s, kSourceCounters); }

Source::Source(const SourceLimits& limits) : impl_(std::make_unique<Impl>(limits, stats_)) {}

Source::~Source() = default;

void Source::datagram(std::string_view payload, Clock::time_point now, Sink& sink) {
  Impl& m = *impl_;
  stats_.datagrams.add();
  stats_.bytes.add(payload.size());
  if (payload.empty()) {
    stats_.malformed.add();
    return;
  }
  const auto p = nc::parse_extended(payload);
  if (!p) {
    if (header_shaped(payload)) {  // an extended record gone wrong, not console text
      stats_.malformed.add();
      return;
    }
    m.basic_datagram(payload, now, sink);
    return;
  }
  if (m.basic_fragments > 0) m.flush_basic(sink);  // the sender switched formats: the held line has ended
  if (p->release.size() > kMaxRelease) {
    stats_.malformed.add();
    return;
  }
  if (p->fragmented) {
    m.fragment(*p, now, sink);
    return;
  }
  if (p->body.size() > m.max_record) {
    stats_.malformed.add();
    return;
  }
  m.whole(*p, now, sink);
}

void Source::tick(Clock::time_point now, Sink& sink) { impl_->tick(now, sink); }

Clock::time_point Source::next_deadline() const { return impl_->next_deadline(); }

std::string_view Source::response(Clock::time_point now) { return impl_->response(now); }

void Source::flush(Sink& sink) {
  impl_->flush_basic(sink);
  impl_->flush_window(sink);
}

std::size_t Source::held_bytes() const { return (impl_->nblocks - impl_->nfree) * kBlockSize; }

std::size_t Source::held_records() const {
  std::size_t n = 0;
  for (std::uint64_t s = impl_->base; s < impl_->high; ++s) {
    const auto st = impl_->slot(s).state;
    n += st == SlotState::kComplete || st == SlotState::kAssembling ? 1 : 0;
  }
  return n + (impl_->late_slot().state == SlotState::kAssembling ? 1 : 0);
}

std::size_t Source::footprint() const {
  const Impl& m = *impl_;
  return sizeof(Impl) + (m.mask + 2) * sizeof(Slot) + (m.mask + 1) * sizeof(History) +
         std::max<std::size_t>(m.nblocks, 1) * (kBlockSize + 2 * sizeof(std::uint32_t)) + m.scratch_len + m.basic_cap;
}

}  // namespace np::listen
