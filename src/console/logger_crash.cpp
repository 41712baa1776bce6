// The Logger's crash-path entry points (console/crash.h calls them from its
// fatal-signal handler, in this order: crash_take_over, crash_drain,
// crash_send, crash_resend_unacked) and prepare_crash_routes(), their setup.
//
// Everything here but prepare_crash_routes() runs in a signal handler of a
// process that may have broken its own memory: nothing allocates, throws or
// takes a lock another thread may hold; every wait has a deadline on the
// monotonic clock and every loop a fixed bound (the ring's size, the
// window's); what is written goes to memory in guarded mappings (the
// logger's scratch buffers) and out through each target's crash route where
// it has one. The sender thread is stopped by crash_owner_, not waited for.
// send_direct() is here too: crash_send() and send_now() (netpoll run's
// witness, outside any handler) share it.
#include "netpoll/console/logger.h"

#include <sched.h>
#include <sys/prctl.h>

#include <algorithm>

#include "netpoll/base/clock.h"
#include "netpoll/base/owner_lock.h"

namespace np::console {

SetupResult<void> Logger::prepare_crash_routes() {
  for (auto& t : targets_) {
    if (t->route != nullptr) continue;
    auto r = core::CrashRoute::make(*t->np);
    if (!r) return std::unexpected(r.error());
    t->route = std::move(*r);
  }
  return {};
}

void Logger::crash_take_over(std::chrono::nanoseconds device_wait) noexcept {
  // Sequentially consistent: the sender thread's window mark
  // (ReliableSender) and this store are each followed by a look at the other.
  crash_owner_.store(current_tid(), std::memory_order_seq_cst);
  for (auto& t : targets_) {
    // The program may have closed or reused the descriptors.
    if (t->route != nullptr) {
      // The route needs no lock: nobody waits for the sender thread, which
      // kicks its own last frames as it leaves. If the device lost its
      // descriptor, frames already in its ring go out through a spare.
      static_cast<void>(t->route->revalidate());
      static_cast<void>(t->np->shared().revalidate());
      // Records the sender thread sent while the device was busy wait in
      // its deferred queue (the transmit lock's holder may never let go:
      // a thread frozen inside a send). The sender counts them as sent, so
      // nothing else will: take the device over, as a target without a
      // route does, and send them now, before the crash path's own.
      core::SharedDevice& d = t->np->shared();
      if (d.deferred_depth() > 0 && d.enter_emergency(device_wait)) {
        static_cast<void>(d.service_tx());
        d.flush();
      }
      continue;
    }
    t->np->shared().enter_emergency(device_wait);
    static_cast<void>(t->np->shared().revalidate());
  }
}

void Logger::crash_kick_all() noexcept {
  for (auto& t : targets_) {
    if (t->route != nullptr) {
      t->route->flush();
      // Records the sender thread had put in the device's own ring, not
      // kicked yet when the crash came: they are counted as sent, so
      // nothing else sends them. The kick takes the transmit lock only if
      // it is free (never waits); the sender, which sees crash_owner_ at
      // its next datagram, kicks them itself if it gets to run.
      t->np->shared().flush();
    } else {
      t->np->flush();
    }
  }
}

std::uint64_t Logger::crash_seq_for(std::uint64_t ticket, std::uint32_t drops_before,
                                    std::chrono::nanoseconds wait) noexcept {
  // The sender may be between taking a number and noting it (see
  // sender_seq_for): wait for the note, bounded. If the sender is this very
  // thread, or does not finish in time, a new number is taken: the receiver
  // then sees a gap, never a number given twice.
  const pid_t me = current_tid();
  const std::int64_t deadline = monotonic_ns() + wait.count();
  for (;;) {
    const pid_t owner = numbering_owner_.load(std::memory_order_seq_cst);
    if (owner == 0 || owner == me || monotonic_ns() >= deadline) break;
    nap(std::chrono::microseconds(50));
  }
  if (numbered_ticket_.load(std::memory_order_acquire) == ticket) return numbered_seq_.load(std::memory_order_relaxed);
  const std::uint64_t seq = next_seq(drops_before);
  note_number(ticket, seq);
  return seq;
}

std::size_t Logger::crash_drain(std::chrono::nanoseconds wait_each) noexcept {
  std::size_t sent = 0;
  std::uint64_t t = consumed_.load(std::memory_order_acquire);
  // Bounded: other threads may still be logging; we send what is there now
  // and a ring's worth more at the most.
  const std::uint64_t limit = ring_.next_ticket() + ring_.slots();
  while (t < limit && ring_.claimed(t)) {
    if (!ring_.ready(t)) {
      // Claimed, not written yet: its writer may be the thread that crashed
      // (then it never will be) or another one about to finish.
      const std::int64_t deadline = monotonic_ns() + wait_each.count();
      while (!ring_.ready(t) && monotonic_ns() < deadline) nap(std::chrono::microseconds(100));
    }
    if (ring_.ready(t)) {
      const RecordMeta& m = ring_.meta(t);
      send_record(crash_seq_for(t, m.drops_before, wait_each), m, ring_.text(t), crash_scratch_, true);
      ++sent;
    }
    ring_.release(t);
    consumed_.store(++t, std::memory_order_release);
  }
  crash_kick_all();
  return sent;
}

void Logger::send_direct(Facility facility, Level level, std::string_view text, Scratch& scratch) noexcept {
  RecordMeta m;
  m.timestamp_us = static_cast<std::uint64_t>(boottime_ns() / 1000);
  m.facility = static_cast<std::uint8_t>(facility);
  m.level = static_cast<std::uint8_t>(level);
  m.bypass_rate_limit = true;
  m.cpu = ::sched_getcpu();
  m.tid = current_tid();
  ::prctl(PR_GET_NAME, m.taskname, 0, 0, 0);
  m.text_len = static_cast<std::uint32_t>(std::min(text.size(), std::max(cfg_.max_text, kMaxCrashText)));
  send_record(next_seq(0), m, text.substr(0, m.text_len), scratch, true);
  crash_kick_all();
}

void Logger::crash_send(Level level, std::string_view text) noexcept {
  send_direct(config_facility_, level, text, crash_scratch_);  // kicks every device
}

std::size_t Logger::crash_resend_unacked(std::chrono::nanoseconds wait, std::chrono::nanoseconds budget) noexcept {
  const pid_t me = current_tid();
  const std::int64_t stop_at = monotonic_ns() + budget.count();
  std::size_t sent = 0;
  for (auto& tp : targets_) {
    Target& t = *tp;
    if (t.rel == nullptr) continue;
    ReliableSender& r = *t.rel;
    // The sender thread may be in the middle of a change: it sees
    // crash_owner_ at its next step and leaves. If this very thread was
    // (a crash inside the sender), the window is not to be trusted.
    const std::int64_t wait_until = monotonic_ns() + wait.count();
    pid_t user = r.window_user();
    while (user != 0 && user != me && monotonic_ns() < wait_until) {
      nap(std::chrono::microseconds(100));
      user = r.window_user();
    }
    if (user != 0) continue;
    sent += r.crash_resend([&](const RetransmitWindow::Entry& e, std::string_view text, Resend) {
      if (monotonic_ns() >= stop_at) return false;
      const Emitted x = emit(t, e.seq, e.meta, text, e.msgid, true, crash_scratch_, true);
      t.stats.datagrams.add(x.sent);
      t.stats.tx_errors.add(x.errors);
      return true;
    });
  }
  crash_kick_all();
  return sent;
}

}  // namespace np::console
