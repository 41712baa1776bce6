// The dump server's protocol logic, without I/O: what to do with a
// datagram (wire/debugnet.h) that arrived at the herald port or at one
// client's session port.
//
// check_herald() judges a datagram at the herald port. A Session is one
// client's transfer after its herald was accepted; each datagram at its
// port goes to receive(), which says what to do as a Step: write these
// bytes at this offset, send this ack, finish the file, or refuse (with a
// reason, nothing written, nothing answered). The server (dumpd/server.h)
// does the I/O the Step asks for and tells the session when the I/O failed
// (abort()). Time is passed in (monotonic nanoseconds); nothing here reads
// a clock, allocates or makes a system call, so the fuzz target can drive it.
//
// States:
//   receiving --FINISHED--> finished --linger over--> closed
//       |                                   (repeated FINISHED re-acked)
//       +--idle / abort() (write failed, restarted, stopped)--> closed
//
// Invariants (the fuzz target checks them): a Step never writes past
// Limits::max_size (offset + length <= max_size, computed without
// overflow) nor after the session left `receiving`; a refused datagram
// is neither written nor acked; a session's memory is its fixed members.
//
// Duplicates: a sender resends what was not acknowledged with the same
// sequence number (its ack was lost). The session remembers which of the
// last kSeqWindow sequence numbers it has seen (a fixed bitmap): a known
// one is acked again and not written again; one older than the window
// (no conforming sender has it still in flight: its window is 64) is
// written again and acked, which is harmless (the same bytes, same place).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>

#include "netpoll/dumpd/herald.h"

namespace np::dumpd {

// Why a datagram was refused. Counted by reason; never answered.
enum class Refusal : std::uint8_t {
  kNone,
  kBadLength,        // neither an ack's 4 bytes nor a whole header; or len beyond the datagram
  kStrayAck,         // 4 bytes (an ack) sent to the server: clients never send one
  kUnknownType,      // a header whose type is not HERALD, DATA or FINISHED
  kNoSession,        // DATA or FINISHED at the herald port: no session it belongs to
  kBadRevision,      // a herald whose aux2 is not revision 1
  kBadDescription,   // the herald's description (herald.h) refused
  kSizeTooBig,       // the herald announces more than max_size
  kTooManyClients,   // a new client while max_clients sessions are in progress
  kSetupFailed,      // the server could not open a socket or file for a new client
  kHeraldOnSession,  // a HERALD at a session's port
  kBeyondMaxSize,    // DATA's offset + len, or FINISHED's offset, beyond max_size
  kBadFinished,      // FINISHED whose aux2 is neither 0 nor 1
  kAfterEnd,         // DATA, or another FINISHED, after the session's FINISHED
};

// How a session ended.
enum class End : std::uint8_t {
  kNone,         // not ended
  kComplete,     // FINISHED, aux2 0
  kGaveUp,       // FINISHED, aux2 1: the client gave up (partial)
  kIdle,         // the client was silent for Limits::idle_ns (partial)
  kRestarted,    // a new herald from the same client after DATA (partial)
  kWriteFailed,  // the server could not write the file (partial)
  kStopped,      // the server stopped (partial)
};

// Words for a person and for the .json's "reason". Context: any.
[[nodiscard]] const char* end_text(End e) noexcept;

struct Limits {
  std::uint64_t max_size = std::uint64_t{64} << 30;  // no byte written at or past this offset
  std::int64_t idle_ns = 30'000'000'000;             // a silent client's session ends partial
  std::int64_t linger_ns = 2'000'000'000;            // a finished session re-acks a repeated FINISHED
};

// A herald that may open a session.
struct Herald {
  std::uint32_t seqno = 0;
  DumpInfo info;
};

// Judges a datagram at the herald port. Context: setup (DumpInfo's
// strings; bounded by herald.h).
[[nodiscard]] std::expected<Herald, Refusal> check_herald(std::span<const std::byte> datagram, const Limits& limits);

// What the server does for one datagram at a session's port, in this
// order: write `data` at `offset` (if not empty); finish the file (if
// `end` is set: truncate it to `final_size`, make it durable, keep it as
// complete or partial); send the ack (if `ack`). When the I/O fails the
// ack is not sent and the server calls abort().
struct Step {
  Refusal refused = Refusal::kNone;  // refused: nothing below is set
  std::uint64_t offset = 0;
  std::span<const std::byte> data;  // refers into the datagram
  bool ack = false;
  std::uint32_t ack_seqno = 0;
  End end = End::kNone;  // kComplete or kGaveUp, once, for the first FINISHED
  std::uint64_t final_size = 0;
  bool duplicate = false;      // seen before: acked again, not written again
  bool out_of_window = false;  // older than the window: written and acked again
};

// The acknowledgements of one batch of packets, in the order the packets
// came: one per packet, or for a client whose herald said acks=ranges,
// one range (wire/debugnet.h) for each run of consecutive numbers, at
// most a window (64) long. A run of one is a plain 4-byte ack.
struct AckRun {
  std::uint32_t first = 0;
  std::uint32_t last = 0;
  friend constexpr bool operator==(const AckRun&, const AckRun&) = default;
};

class AckRuns {
 public:
  explicit AckRuns(bool ranges) noexcept : ranges_(ranges) {}
  // The ack of `seqno` is due. Returns the run it closed, if any: the
  // ack to send now. Context: any.
  [[nodiscard]] std::optional<AckRun> add(std::uint32_t seqno) noexcept;
  // The end of the batch: the run still open, if any. Context: any.
  [[nodiscard]] std::optional<AckRun> close() noexcept;

 private:
  bool ranges_;
  std::optional<AckRun> open_;  // the run not yet answered
};

// One client's numbers, for its .json and the server's totals.
struct SessionCounters {
  std::uint64_t packets = 0;        // DATA and FINISHED accepted, duplicates included
  std::uint64_t bytes = 0;          // payload bytes handed out to write (duplicates not again)
  std::uint64_t duplicates = 0;     // messages seen before (resent), acked again
  std::uint64_t out_of_window = 0;  // older than the window: written and acked again
  std::uint64_t refused = 0;        // datagrams refused at the session's port
  std::uint64_t acks = 0;           // acks asked for (the herald's first answer included)
};

class Session {
 public:
  static constexpr std::uint32_t kSeqWindow = 1024;
  enum class State : std::uint8_t { kReceiving, kFinished, kClosed };

  // The herald with `herald_seqno` was accepted at `now_ns`; its ack is the
  // server's to send. Context: any.
  Session(const Limits& limits, std::uint32_t herald_seqno, std::int64_t now_ns) noexcept;

  // A datagram at the session's port. Context: any.
  [[nodiscard]] Step receive(std::span<const std::byte> datagram, std::int64_t now_ns) noexcept;

  // The same client (address, port, pid) sent a herald again. True: no
  // DATA has come yet, so its first ack was lost; answer with an ack of
  // `seqno` from this session's port. False: the client started over
  // after sending data; the server ends this session (abort(kRestarted))
  // and opens a new one. Context: any.
  [[nodiscard]] bool herald_again(std::uint32_t seqno, std::int64_t now_ns) noexcept;

  // When expire() is due: idle_ns after the last accepted message while
  // receiving, linger_ns after FINISHED once finished. Context: any.
  [[nodiscard]] std::int64_t deadline_ns() const noexcept;
  // At or after deadline_ns(): closes the session. Returns kIdle when it
  // was still receiving (the file is partial), kNone when it had
  // finished (its file is kept already). Context: any.
  End expire(std::int64_t now_ns) noexcept;
  // The server's I/O failed, or the server ends the session: closed, as
  // `why` says, unless it had finished already (a failure to finish the
  // file, kWriteFailed, makes a finished one partial too). Context: any.
  void abort(End why, std::int64_t now_ns) noexcept;

  State state() const noexcept { return state_; }
  End end() const noexcept { return end_; }
  bool any_data() const noexcept { return any_data_; }
  const SessionCounters& counters() const noexcept { return counters_; }
  std::uint64_t extent() const noexcept { return extent_; }  // highest offset + len written
  std::uint64_t final_size() const noexcept { return final_size_; }
  std::int64_t started_ns() const noexcept { return started_ns_; }
  std::int64_t ended_ns() const noexcept { return ended_ns_; }

 private:
  // Marks `seqno` seen; true if it was seen before. Sets `old` when it is
  // older than the window (not known either way).
  bool seen_before(std::uint32_t seqno, bool& old) noexcept;

  Limits limits_;
  State state_ = State::kReceiving;
  End end_ = End::kNone;
  bool any_data_ = false;
  std::uint32_t highest_seqno_ = 0;
  std::uint32_t finished_seqno_ = 0;
  std::array<std::uint64_t, kSeqWindow / 64> seen_{};
  std::uint64_t extent_ = 0;
  std::uint64_t final_size_ = 0;
  std::int64_t started_ns_ = 0;
  std::int64_t last_ns_ = 0;
  std::int64_t ended_ns_ = 0;
  SessionCounters counters_;
};

}  // namespace np::dumpd
