#include "netpoll/console/reliable_sender.h"

#include <algorithm>

#include "netpoll/base/owner_lock.h"
#include "netpoll/wire/netconsole.h"

namespace np::console {
namespace nc = np::wire::netconsole;

ReliableSender::ReliableSender(const ReliableTuning& tune, std::size_t max_text, ReliableStats& stats,
                               const std::atomic<pid_t>& crash_owner)
    : tune_(tune), stats_(stats), crash_owner_(crash_owner), window_(tune.window, max_text) {}

// The client's rx hook: the device's polling thread, for every datagram
// from the target's remote IP to our local IP:port (the device matched it,
// so it is neither a drop nor anyone else's).
bool ReliableSender::on_response(std::string_view d) noexcept {
  std::uint64_t ack = 0;
  if (d.size() > ResponseMailbox::kMaxResponse || !nc::parse_ncrx(d, ack, [](std::uint64_t) {})) {
    stats_.bad_responses.add();
    return false;
  }
  stats_.responses.add();
  if (!mailbox_.offer(d, ack)) stats_.mailbox_overflows.add();
  return true;
}

// The sending thread marks the window as its own while it changes it; the
// crash path, once it has set crash_owner, waits for the mark to go (or
// finds its own thread holding it). Both sides store, then load the other's
// word, sequentially consistent: at least one of them sees the other.
bool ReliableSender::enter() noexcept {
  user_.store(current_tid(), std::memory_order_seq_cst);
  if (crash_owner_.load(std::memory_order_seq_cst) != 0) {
    leave();
    return false;
  }
  return true;
}

bool ReliableSender::keep(std::uint64_t seq, std::uint32_t msgid, const RecordMeta& meta, std::string_view text,
                          bool held, Time now) noexcept {
  if (!enter()) return false;
  // A number the receiver acknowledged already (it gave up on it, or
  // another process numbering from the same counter was first) is not
  // kept: nobody will ask for it.
  if (has_ack_ && seq <= acked_) {
    leave();
    return true;
  }
  // After the fallback to plain sending a record that went out is not
  // kept: nobody acknowledges it. One held behind records still to go out
  // is, until it goes.
  if (plain_ && !held) {
    stats_.unacknowledged.add();
    leave();
    return true;
  }
  // The emergency timer starts with the first unacknowledged record.
  if (window_.empty()) {
    progress_ = now;
    probe_at_ = now + tune_.probe_interval;
  }
  if (held && unsent_from_ == kNone) unsent_from_ = seq;
  if (window_.push(seq, msgid, Time{}, meta, text)) stats_.window_dropped.add();
  stats_.unacked.store(window_.size(), std::memory_order_relaxed);
  leave();
  return true;
}

bool ReliableSender::resend(std::size_t i, Resend why, Time now, Transmit transmit) noexcept {
  RetransmitWindow::Entry& e = window_.at(i);
  if (!transmit(e, window_.text(i), why)) return false;
  // A request that crossed this transmission on the wire should not cause
  // another one.
  e.resend_after = now + tune_.retransmit_holdoff;
  if (why == Resend::kEmergency) {
    stats_.emergency_sent.add();
  } else if (why != Resend::kFirst) {
    stats_.retransmitted.add();
  }
  return true;
}

// Progress is an ack-seq above every one before it (the first one counts):
// it ends emergency cycling and restarts the timer. An ack-seq that does
// not move (or goes back: a restarted receiver) changes nothing.
void ReliableSender::apply_ack(std::uint64_t ack, Time now) noexcept {
  if (has_ack_ && ack <= acked_) return;
  has_ack_ = true;
  acked_ = ack;
  progress_ = now;
  probe_at_ = now + tune_.probe_interval;
  emergency_ = false;
  window_.release_through(ack);
  stats_.acked_seq.store(ack, std::memory_order_relaxed);
  stats_.has_ack.store(true, std::memory_order_release);
}

// Nothing acknowledged within first_ack_wait of the first record (or the
// caller stopped waiting): whatever is at the target does not answer. The
// records on the wire already are given up; those the start handshake
// held stay in the window, marked unsent, and service() sends them in
// order as it would after an answer, forgetting each once it is out.
void ReliableSender::fall_back(Time now) noexcept {
  plain_ = true;
  plain_after_ = now - progress_;
  emergency_ = false;
  const std::size_t sent = unsent_from_ == kNone ? window_.size() : window_.lower_bound(unsent_from_);
  if (sent > 0) window_.release_through(window_.at(sent - 1).seq);
  stats_.unacknowledged.add(sent);
  stats_.plain.store(true, std::memory_order_release);
}

void ReliableSender::service(Time now, Transmit transmit) noexcept {
  if (!enter()) return;
  std::size_t budget = tune_.resend_burst;

  // Responses, oldest first: forget what is acknowledged, then send again
  // what is missing (once per holdoff, `budget` records per step). After
  // the fallback they change nothing (an ack-seq would release held
  // records that never went out): counted when they came, dropped here.
  while (const auto d = mailbox_.front()) {
    std::uint64_t ack = 0;
    if (!plain_ && nc::parse_ncrx(*d, ack, [](std::uint64_t) {})) {
      apply_ack(ack, now);
      nc::parse_ncrx(*d, ack, [&](std::uint64_t seq) {
        const auto i = window_.find(seq);
        if (!i) {
          stats_.not_in_window.add();
          return;
        }
        if (budget == 0 || now < window_.at(*i).resend_after) return;
        --budget;
        if (!resend(*i, Resend::kMissing, now, transmit)) budget = 0;
      });
    }
    mailbox_.pop();
  }
  if (const auto ack = mailbox_.take_overflow_ack(); ack && !plain_) apply_ack(*ack, now);

  // No acknowledgement at all: the fallback to plain sending. A request
  // with nothing kept is dropped (it is about the records kept now).
  if (!plain_ && !has_ack_) {
    const bool asked = give_up_.load(std::memory_order_acquire) && give_up_.exchange(false);
    if (!window_.empty() && (asked || now - progress_ >= tune_.first_ack_wait)) fall_back(now);
  }

  // The start handshake: the receiver has answered (or will not: the
  // fallback), the records held for it go out in order (`budget` per step).
  if (unsent_from_ != kNone && (has_ack_ || plain_)) {
    const std::size_t from = window_.lower_bound(unsent_from_);
    std::size_t i = from;
    while (i < window_.size() && budget > 0) {
      --budget;
      if (!resend(i, Resend::kFirst, now, transmit)) break;
      ++i;
    }
    unsent_from_ = i < window_.size() ? window_.at(i).seq : kNone;
    // Plain sending keeps nothing that went out.
    if (plain_ && i > from) {
      window_.release_through(window_.at(i - 1).seq);
      stats_.unacknowledged.add(i - from);
    }
  }
  // The probe: no progress for probe_interval, the oldest record again
  // (emergency cycling, once begun, sends it anyway).
  if (!plain_ && !window_.empty() && !emergency_ && now >= probe_at_ && budget > 0) {
    if (now >= window_.at(0).resend_after) {
      --budget;
      resend(0, Resend::kProbe, now, transmit);
    }
    probe_at_ = now + tune_.probe_interval;
  }

  // The progress timer and emergency cycling: every unacknowledged
  // record, oldest first, marked ncemg=1, `budget` per step; then a pause.
  if (window_.empty() || plain_) {
    emergency_ = false;
  } else {
    if (!emergency_ && now - progress_ >= tune_.emergency_after) {
      emergency_ = true;
      cursor_ = 0;
      pause_until_ = now;
      unsent_from_ = kNone;  // the cycle sends every record, held ones too
    }
    if (emergency_ && now >= pause_until_ && budget > 0) {
      std::size_t i = window_.lower_bound(cursor_);
      if (cursor_ == 0) stats_.emergency_cycles.add();
      while (i < window_.size() && budget > 0) {
        --budget;
        cursor_ = window_.at(i).seq + 1;
        if (!resend(i, Resend::kEmergency, now, transmit)) break;
        ++i;
      }
      if (i >= window_.size()) {
        cursor_ = 0;
        pause_until_ = now + tune_.emergency_pause;
      }
    }
  }
  stats_.unacked.store(window_.size(), std::memory_order_relaxed);
  stats_.emergency.store(emergency_, std::memory_order_relaxed);
  leave();
}

ReliableSender::Time ReliableSender::deadline() const noexcept {
  if (window_.empty()) return Time::max();
  // The start handshake: held records to send now.
  if ((has_ack_ || plain_) && unsent_from_ != kNone) return Time::min();
  if (plain_) return Time::max();
  const Time next = emergency_ ? pause_until_ : std::min(progress_ + tune_.emergency_after, probe_at_);
  if (has_ack_) return next;
  // Before the first acknowledgement: the fallback, asked for or due.
  if (give_up_.load(std::memory_order_acquire)) return Time::min();
  return std::min(next, progress_ + tune_.first_ack_wait);
}

std::size_t ReliableSender::crash_resend(Transmit transmit) noexcept {
  std::size_t sent = 0;
  for (std::size_t i = 0; i < window_.size(); ++i) {
    if (!transmit(window_.at(i), window_.text(i), Resend::kEmergency)) break;
    stats_.emergency_sent.add();
    ++sent;
  }
  return sent;
}

}  // namespace np::console
