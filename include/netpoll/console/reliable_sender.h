// The decisions of netconsd's reliable mode (ncrx) for one target: what is
// kept, what an acknowledgement releases, what is sent again and when.
//
// A ReliableSender owns a target's retransmit window and response mailbox
// (console/reliable.h) and the timers around them. It builds no datagram and
// reads no clock: every decision that depends on time takes `now` from its
// caller (the Logger passes the steady clock, a test its own), and every
// record it wants on the wire again goes through the caller's Transmit,
// which builds the record's datagrams from the window entry and sends them.
// So its whole behaviour can be driven, step by step, without a device or a
// real wait.
//
// What it does (the README's "Reliable mode" and "start handshake"):
//   - keep(): a record sent is kept until an ack-seq passes it; a full
//     window forgets its oldest record (counted);
//   - service(), per step of the sending thread: responses, oldest first,
//     release what they acknowledge and send again what they report missing
//     (at most once per retransmit_holdoff per record); the records the
//     start handshake held go out once the receiver has answered; with no
//     progress for probe_interval the oldest record is probed; with none
//     for emergency_after, cycling through the unacknowledged records
//     marked ncemg=1, one round then emergency_pause, until an ack moves.
//     At most resend_burst records a step;
//     With no acknowledgement at all first_ack_wait after the first record
//     (or when fall_back_now() asks), nothing at the target answers reliable
//     mode: it falls back to plain sending for good (the README's "No
//     acknowledgement");
//   - deadline(): when service() next has timed work, for the sender's sleep.
//
// Threads. on_response() runs on the device's polling thread (the client's
// rx hook) and only fills the mailbox; everything else but the crash path's
// calls runs on the one sending thread. The crash path (console/crash.h)
// sets the logger's takeover word (`crash_owner`): from then on the sending
// thread leaves the window alone. While the sending thread changes the
// window it marks it with its thread id (window_user()); the crash path
// waits for the mark to go before crash_resend() reads the window. Both
// sides store their word, then load the other's, sequentially consistent:
// at least one of them sees the other.
//
// Memory: the object (mailbox inside) and the window are each in a guarded
// mapping of their own (base/guarded.h); nothing allocates after the
// constructor; every loop is bounded by the window's size or the burst.
// Context: any, except the constructor (setup).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "netpoll/base/counter.h"
#include "netpoll/base/function_ref.h"
#include "netpoll/base/guarded.h"
#include "netpoll/console/record_ring.h"
#include "netpoll/console/reliable.h"

namespace np::console {

// Reliable mode's tuning (TargetConfig.reliable turns it on).
struct ReliableTuning {
  // Records kept until acknowledged; each takes max_text bytes, allocated
  // at setup. A full window forgets its oldest record (window_dropped).
  std::size_t window = 1024;
  // No acknowledgement progress for this long while records are
  // unacknowledged: emergency cycling.
  std::chrono::milliseconds emergency_after{10'000};
  // Emergency cycling: after sending every unacknowledged record once, wait
  // this long before the next cycle.
  std::chrono::milliseconds emergency_pause{1'000};
  // A record reported missing is sent again at most once per this (the
  // receiver repeats its list until the record arrives).
  std::chrono::milliseconds retransmit_holdoff{100};
  // Records sent again (retransmissions and emergency sends together) per
  // target per sender step; the rest wait for the next step or response.
  std::size_t resend_burst = 64;
  // No acknowledgement progress for this long while records are
  // unacknowledged: the oldest one is sent again (once per holdoff). It
  // fills the receiver's first hole, or, arriving as a duplicate, makes it
  // answer again when its last answer was lost. Then again after as long.
  std::chrono::milliseconds probe_interval{200};
  // The start handshake. An ncrx receiver begins a source's stream at the
  // first number it receives and acknowledges cumulatively from there: if
  // the very first records were lost, its first ack-seq would release them
  // unseen. So until the first acknowledgement only the oldest
  // unacknowledged record is on the wire (probed as above); the records
  // logged meanwhile are kept in the window and sent, in order, once the
  // receiver has answered. Off: everything is sent at once (as Linux's
  // netconsole does).
  bool start_handshake = true;
  // No acknowledgement at all this long after the first record: nothing at
  // the target answers reliable mode (a plain receiver, netconsd itself,
  // nobody). The target falls back to plain sending for good: what it
  // kept is given up (it was on the wire already), the records the start
  // handshake held go out once, in order, and nothing is kept any more;
  // later responses are counted and ignored. Counted in
  // ReliableStats::plain and unacknowledged. Must be positive: reliable
  // mode never waits for a silent receiver forever.
  std::chrono::milliseconds first_ack_wait{3'000};
};

// Reliable mode's counters of one target (TargetStats holds them; zero for
// a target that is not reliable).
struct ReliableStats {
  std::atomic<bool> has_ack{false};          // a response's ack-seq was applied
  std::atomic<std::uint64_t> acked_seq{0};   // the highest ack-seq applied (when has_ack)
  std::atomic<std::uint64_t> unacked{0};     // records in the retransmit window now
  std::atomic<bool> emergency{false};        // emergency cycling now
  SharedCounter retransmitted;     // records sent again because a response reported them missing
  SharedCounter emergency_sent;    // records sent again marked ncemg=1 (cycling, crash path)
  SharedCounter emergency_cycles;  // emergency cycles begun
  SharedCounter window_dropped;    // unacknowledged records a full window forgot
  SharedCounter responses;         // ncrx responses taken from the target's remote IP
  SharedCounter bad_responses;     // datagrams from it to our port that are not ncrx responses
  SharedCounter mailbox_overflows; // responses that found the mailbox full (their ack kept)
  SharedCounter not_in_window;     // missing records asked for that the window no longer holds
  std::atomic<bool> plain{false};  // fell back to plain sending: nothing acknowledged within first_ack_wait
  SharedCounter unacknowledged;    // records sent without an acknowledgement since the fallback, and those it gave up
};

// The time reliable mode's timers run on, for a caller that drives it
// (LoggerConfig::reliable_clock; tests). The Logger reads the steady clock
// when none is given. Context: any.
class ReliableClock {
 public:
  virtual std::chrono::steady_clock::time_point now() const noexcept = 0;

 protected:
  ~ReliableClock() = default;
};

// Why a kept record goes on the wire again.
enum class Resend : std::uint8_t {
  kFirst,      // held by the start handshake: on the wire for the first time
  kMissing,    // a response reported it missing
  kProbe,      // the oldest, after probe_interval without progress
  kEmergency,  // emergency cycling or the crash path: marked ncemg=1
};

class ReliableSender : public InGuardedMemory<ReliableSender> {
 public:
  using Time = std::chrono::steady_clock::time_point;
  // Builds a kept record's datagrams (number, meta and msgid in `entry`,
  // its text) and sends them; ncemg=1 when `why` is kEmergency. False when
  // it sent nothing and the step must end (the crash path took over, or
  // its time budget is spent). Context: any.
  using Transmit = FunctionRef<bool(const RetransmitWindow::Entry& entry, std::string_view text, Resend why)>;

  // A window of tune.window records of `max_text` bytes. `stats` and
  // `crash_owner` (the logger's takeover word: non-zero once the crash path
  // owns the logger) must outlive the sender. Context: setup.
  ReliableSender(const ReliableTuning& tune, std::size_t max_text, ReliableStats& stats,
                 const std::atomic<pid_t>& crash_owner);
  ReliableSender(const ReliableSender&) = delete;
  ReliableSender& operator=(const ReliableSender&) = delete;

  // --- the device's polling thread ----------------------------------------
  // A datagram from the target's remote IP to our port: an ncrx response is
  // queued for the sending thread (true: wake it), anything else counted as
  // a bad response. Context: any (one poller at a time).
  bool on_response(std::string_view datagram) noexcept;

  // --- the sending thread -------------------------------------------------
  // True while a record about to be sent must wait in the window instead:
  // the start handshake (the receiver has not answered, and a record is on
  // the wire already), or records it held are still to go out (they go
  // first, in order). Context: any.
  bool holds_next() const noexcept {
    return unsent_from_ != kNone || (tune_.start_handshake && !has_ack_ && !plain_ && !window_.empty());
  }
  // Keeps a record that was just sent, or held (`held`: holds_next() said
  // so and it was not sent), for retransmission. A number the receiver
  // acknowledged already is not kept, nor a record sent after the fallback
  // to plain sending (counted unacknowledged). False if the crash path owns
  // the window: nothing was kept. Context: any.
  bool keep(std::uint64_t seq, std::uint32_t msgid, const RecordMeta& meta, std::string_view text, bool held,
            Time now) noexcept;
  // One step at `now`: acts on the responses that arrived and on the
  // timers, sending through `transmit` (at most resend_burst records).
  // Does nothing once the crash path owns the window. Context: any.
  void service(Time now, Transmit transmit) noexcept;
  // When service() next has timed work: Time::min() for at once,
  // Time::max() for none (nothing unacknowledged). Context: any.
  Time deadline() const noexcept;
  // A response waits in the mailbox. Context: any.
  bool responses_pending() const noexcept { return mailbox_.pending(); }
  // Asks for the fallback to plain sending at the next step, as if
  // first_ack_wait had passed, if no acknowledgement has come by then and
  // a record is kept (a caller that stops waiting: the records the start
  // handshake held go out instead of staying in the window). Context: any
  // thread.
  void fall_back_now() noexcept { give_up_.store(true, std::memory_order_release); }
  // The target fell back to plain sending (the sending thread's view), and
  // how long after its first record. Context: any.
  bool plain() const noexcept { return plain_; }
  std::chrono::nanoseconds plain_after() const noexcept { return plain_after_; }

  // --- the crash path -----------------------------------------------------
  // The thread changing the window now (0: none). Context: any.
  pid_t window_user() const noexcept { return user_.load(std::memory_order_seq_cst); }
  // Sends every record in the window once more, oldest first, as kEmergency,
  // until `transmit` returns false; changes no timer and waits for nothing.
  // Only once the crash path owns the logger and window_user() is 0 (a
  // window this very thread was changing is not to be trusted). Returns the
  // records sent. Context: any.
  std::size_t crash_resend(Transmit transmit) noexcept;

  std::size_t window_capacity() const noexcept { return window_.capacity(); }

 private:
  static constexpr std::uint64_t kNone = ~std::uint64_t{0};

  // Marks the window as the calling thread's; false (unmarked) if the crash
  // path owns it.
  bool enter() noexcept;
  void leave() noexcept { user_.store(0, std::memory_order_release); }
  // Sends the window's i-th record again; false if `transmit` ended the step.
  bool resend(std::size_t i, Resend why, Time now, Transmit transmit) noexcept;
  void apply_ack(std::uint64_t ack, Time now) noexcept;
  // The fallback to plain sending: forgets what was sent (counted
  // unacknowledged); the held records stay, to go out in order.
  void fall_back(Time now) noexcept;

  const ReliableTuning tune_;
  ReliableStats& stats_;
  const std::atomic<pid_t>& crash_owner_;
  RetransmitWindow window_;
  ResponseMailbox mailbox_;
  std::atomic<pid_t> user_{0};
  // The window and the timers below belong to the sending thread.
  bool has_ack_ = false;
  std::uint64_t acked_ = 0;
  // When the ack last moved, or the window stopped being empty (before the
  // first ack: when the first record was kept; nothing but an ack empties
  // the window, so it stays that until one comes).
  Time progress_{};
  bool emergency_ = false;
  std::uint64_t cursor_ = 0;  // emergency cycling: the next number to send again
  Time pause_until_{};
  // The start handshake: records kept but not sent yet, from this number on
  // (kNone: none). When the oldest record is next probed.
  std::uint64_t unsent_from_ = kNone;
  Time probe_at_{};
  // The fallback to plain sending (for good), and how long after the first
  // record it came; the request for it from another thread.
  bool plain_ = false;
  std::chrono::nanoseconds plain_after_{0};
  std::atomic<bool> give_up_{false};
};

}  // namespace np::console
