#include "netpoll/dumpd/session.h"

#include <algorithm>

#include "netpoll/wire/debugnet.h"

namespace np::dumpd {
namespace {

namespace dn = np::wire::debugnet;
using Message = np::wire::DebugnetMessage<const std::byte>;
using np::wire::DebugnetRepr;

// The header checks every port shares: an ack, a cut header, a len past the
// datagram, a type nobody defined.
std::expected<DebugnetRepr, Refusal> message_of(std::span<const std::byte> datagram) {
  if (datagram.size() == dn::kAckLen) return std::unexpected(Refusal::kStrayAck);
  const auto m = Message::check(datagram);
  if (!m) return std::unexpected(Refusal::kBadLength);
  const auto r = DebugnetRepr::parse(*m);
  if (!r) return std::unexpected(Refusal::kUnknownType);
  return *r;
}

// offset + len <= max, without overflow.
bool fits(std::uint64_t offset, std::uint64_t len, std::uint64_t max) { return offset <= max && len <= max - offset; }

Step refuse(Refusal r) {
  Step s;
  s.refused = r;
  return s;
}

}  // namespace

const char* end_text(End e) noexcept {
  switch (e) {
    case End::kNone: return "not ended";
    case End::kComplete: return "complete";
    case End::kGaveUp: return "the client gave up";
    case End::kIdle: return "the client went silent";
    case End::kRestarted: return "the client started over";
    case End::kWriteFailed: return "the server could not write the file";
    case End::kStopped: return "the server stopped";
  }
  return "?";
}

std::expected<Herald, Refusal> check_herald(std::span<const std::byte> datagram, const Limits& limits) {
  const auto r = message_of(datagram);
  if (!r) return std::unexpected(r.error());
  if (r->type != dn::kHerald) return std::unexpected(Refusal::kNoSession);
  // aux2 is the description's revision (wire/debugnet.h): one we know.
  if (r->aux2 != 1) return std::unexpected(Refusal::kBadRevision);
  auto info = parse_description(r->payload);
  if (!info) return std::unexpected(Refusal::kBadDescription);
  if (info->size > limits.max_size) return std::unexpected(Refusal::kSizeTooBig);
  return Herald{r->seqno, std::move(*info)};
}

Session::Session(const Limits& limits, std::uint32_t herald_seqno, std::int64_t now_ns) noexcept
    : limits_(limits), highest_seqno_(herald_seqno), started_ns_(now_ns), last_ns_(now_ns) {
  seen_[(herald_seqno % kSeqWindow) / 64] |= std::uint64_t{1} << (herald_seqno % 64);
  counters_.acks = 1;  // the herald's
}

bool Session::seen_before(std::uint32_t seqno, bool& old) noexcept {
  old = false;
  const auto bit = [&](std::uint32_t s) -> std::uint64_t& { return seen_[(s % kSeqWindow) / 64]; };
  const auto mask = [](std::uint32_t s) { return std::uint64_t{1} << (s % 64); };
  if (seqno > highest_seqno_) {
    // Numbers between the old highest and this one have not been seen:
    // their bits (left from kSeqWindow numbers ago) are cleared.
    if (seqno - highest_seqno_ >= kSeqWindow) {
      seen_.fill(0);
    } else {
      for (std::uint32_t s = highest_seqno_ + 1; s != seqno; ++s) bit(s) &= ~mask(s);
    }
    highest_seqno_ = seqno;
    bit(seqno) |= mask(seqno);
    return false;
  }
  if (highest_seqno_ - seqno >= kSeqWindow) {
    old = true;
    return false;
  }
  const bool before = (bit(seqno) & mask(seqno)) != 0;
  bit(seqno) |= mask(seqno);
  return before;
}

Step Session::receive(std::span<const std::byte> datagram, std::int64_t now_ns) noexcept {
  Step step;
  if (state_ == State::kClosed) {
    step = refuse(Refusal::kAfterEnd);
  } else if (const auto r = message_of(datagram); !r) {
    step = refuse(r.error());
  } else if (r->type == dn::kHerald) {
    step = refuse(Refusal::kHeraldOnSession);
  } else if (r->type == dn::kData) {
    if (state_ != State::kReceiving) {
      step = refuse(Refusal::kAfterEnd);
    } else if (!fits(r->offset, r->payload.size(), limits_.max_size)) {
      step = refuse(Refusal::kBeyondMaxSize);
    } else {
      bool old = false;
      step.duplicate = seen_before(r->seqno, old);
      step.ack = true;
      step.ack_seqno = r->seqno;
      if (!step.duplicate) {
        step.offset = r->offset;
        step.data = r->payload;
        counters_.bytes += r->payload.size();
        if (!r->payload.empty()) extent_ = std::max(extent_, r->offset + r->payload.size());
      }
      counters_.duplicates += step.duplicate ? 1 : 0;
      step.out_of_window = old;
      counters_.out_of_window += old ? 1 : 0;
      any_data_ = true;
    }
  } else {  // FINISHED
    if (r->aux2 > 1) {
      step = refuse(Refusal::kBadFinished);
    } else if (r->offset > limits_.max_size) {
      step = refuse(Refusal::kBeyondMaxSize);
    } else if (state_ == State::kFinished) {
      // Its ack was lost: the same FINISHED again is answered again.
      if (r->seqno == finished_seqno_) {
        step.ack = true;
        step.ack_seqno = r->seqno;
        step.duplicate = true;
        counters_.duplicates++;
      } else {
        step = refuse(Refusal::kAfterEnd);
      }
    } else {
      bool old = false;
      (void)seen_before(r->seqno, old);
      state_ = State::kFinished;
      end_ = r->aux2 == 1 ? End::kGaveUp : End::kComplete;
      finished_seqno_ = r->seqno;
      final_size_ = r->offset;
      ended_ns_ = now_ns;
      step.end = end_;
      step.final_size = r->offset;
      step.ack = true;
      step.ack_seqno = r->seqno;
    }
  }
  if (step.refused != Refusal::kNone) {
    counters_.refused++;
  } else {
    // Only accepted messages keep a session alive: a peer sending
    // garbage cannot hold a client slot.
    last_ns_ = now_ns;
    counters_.packets++;
    counters_.acks++;
  }
  return step;
}

std::optional<AckRun> AckRuns::add(std::uint32_t seqno) noexcept {
  if (!ranges_) return AckRun{seqno, seqno};
  // A range never starts at 0 (no sender numbers a packet 0; a client
  // refuses such a range): a 0 stays a plain ack of its own.
  // Nor does one wrap past 2^32 - 1 (its last would come before its first).
  if (open_ && open_->first != 0 && open_->last != UINT32_MAX && seqno == open_->last + 1 &&
      seqno - open_->first < dn::kMaxInFlight) {
    open_->last = seqno;
    return std::nullopt;
  }
  const std::optional<AckRun> closed = close();
  open_ = AckRun{seqno, seqno};
  return closed;
}

std::optional<AckRun> AckRuns::close() noexcept {
  const std::optional<AckRun> r = open_;
  open_.reset();
  return r;
}

bool Session::herald_again(std::uint32_t seqno, std::int64_t now_ns) noexcept {
  if (state_ != State::kReceiving || any_data_) return false;
  last_ns_ = now_ns;
  counters_.acks++;
  (void)seqno;  // answered by the server; a herald's number is not a DATA number
  return true;
}

std::int64_t Session::deadline_ns() const noexcept {
  switch (state_) {
    case State::kReceiving: return last_ns_ + limits_.idle_ns;
    case State::kFinished: return ended_ns_ + limits_.linger_ns;
    case State::kClosed: break;
  }
  return ended_ns_;
}

End Session::expire(std::int64_t now_ns) noexcept {
  const State was = state_;
  if (was == State::kClosed) return End::kNone;
  state_ = State::kClosed;
  if (was == State::kFinished) return End::kNone;
  end_ = End::kIdle;
  ended_ns_ = now_ns;
  return End::kIdle;
}

void Session::abort(End why, std::int64_t now_ns) noexcept {
  if (state_ == State::kReceiving) {
    end_ = why;
    ended_ns_ = now_ns;
  } else if (state_ == State::kFinished && why == End::kWriteFailed) {
    end_ = why;  // finishing the file failed: it is partial after all
  }
  state_ = State::kClosed;
}

}  // namespace np::dumpd
