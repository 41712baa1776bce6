#include "netpoll/console/logger.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "netpoll/base/clock.h"
#include "netpoll/base/bytes.h"
#include "netpoll/base/owner_lock.h"
#include "netpoll/console/crash.h"
#include "netpoll/wire/netconsole.h"

namespace np::console {
namespace nc = np::wire::netconsole;

namespace {

// How long the sending thread waits for a device that has no room for a
// datagram before it counts the datagram lost.
constexpr std::chrono::nanoseconds kBackpressureWait = std::chrono::seconds(1);

// The thread's name, read once per thread (prctl is a system call; a log()
// should not pay for one each time). A thread renamed after its first
// record keeps its old name in records.
const char* thread_name() noexcept {
  thread_local char name[16] = {};
  thread_local bool known = false;
  if (!known) {
    ::prctl(PR_GET_NAME, name, 0, 0, 0);
    name[15] = '\0';
    known = true;
  }
  return name;
}

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value, const timespec* timeout) noexcept {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, timeout, nullptr, 0);
}

// A target's userdata as its records carry them: " key=value\n" lines.
std::string userdata_lines(const TargetConfig& t) {
  std::string lines;
  for (const auto& [key, value] : t.userdata) lines += " " + key + "=" + value + "\n";
  return lines;
}

// LoggerConfig::max_text = 0: the most text that keeps every target's
// record body within kMaxBody (the release must be known: its sysdata line
// counts).
std::size_t default_max_text(const LoggerConfig& c) {
  std::size_t overhead = 1;
  for (const TargetConfig& t : c.targets) {
    const std::string userdata = userdata_lines(t);
    RecordFormat f;
    f.extended = t.target.extended;
    f.userdata = userdata;
    f.release = std::string_view(c.release).substr(0, 127);  // as release_text_ keeps it
    f.sysdata = t.sysdata;
    overhead = std::max(overhead, record_overhead(f));
  }
  return overhead + Logger::kMinText > nc::kMaxBody ? Logger::kMinText : nc::kMaxBody - overhead;
}

}  // namespace

// The names are wire's (netconsole's vocabulary, shared with the receiver).
std::optional<Level> parse_level(std::string_view name) {
  if (auto l = nc::level_from_name(name)) return static_cast<Level>(*l);
  if (name == "warn") return Level::kWarning;
  if (name == "error") return Level::kErr;
  if (name.size() == 1 && name[0] >= '0' && name[0] <= '7') return static_cast<Level>(name[0] - '0');
  return std::nullopt;
}

std::optional<Facility> parse_facility(std::string_view name) {
  if (auto f = nc::facility_from_name(name)) return static_cast<Facility>(*f);
  return std::nullopt;
}

const char* to_string(Level l) noexcept {
  const std::string_view n = nc::level_name(static_cast<std::uint8_t>(l));
  return n.empty() ? "unknown" : n.data();
}

const char* to_string(Facility f) noexcept {
  const std::string_view n = nc::facility_name(static_cast<std::uint8_t>(f));
  return n.empty() ? "unknown" : n.data();
}

// ---------------------------------------------------------------------------
// Setup

Logger::Logger(LoggerConfig cfg)
    : cfg_(std::move(cfg)),
      config_facility_(cfg_.facility),
      ring_(cfg_.ring_records, cfg_.max_text),
      seq_(cfg_.shared_seq != nullptr ? cfg_.shared_seq : &own_seq_),
      level_(cfg_.shared_console_level != nullptr ? cfg_.shared_console_level : &own_level_) {}

SetupResult<std::unique_ptr<Logger>> Logger::create(LoggerConfig cfg) {
  if (cfg.targets.empty()) return setup_error(Errc::kInvalidArgument, cfg.name + ": no target");
  if (cfg.ring_records == 0 || cfg.ring_records > (1u << 20))
    return setup_error(Errc::kInvalidArgument, cfg.name + ": ring_records must be 1..1048576");
  if (cfg.max_text > 65536)
    return setup_error(Errc::kInvalidArgument, cfg.name + ": max_text must be 1..65536 (or 0: as netconsd takes)");
  if (cfg.release.empty()) {
    utsname u{};
    if (::uname(&u) == 0) cfg.release = u.release;
  }
  if (cfg.max_text == 0) cfg.max_text = default_max_text(cfg);
  std::unique_ptr<Logger> lg(new Logger(std::move(cfg)));
  LoggerConfig& c = lg->cfg_;

  lg->release_ = c.release;

  if (c.targets.size() > kMaxTargets)
    return setup_error(Errc::kInvalidArgument, c.name + ": at most " + std::to_string(kMaxTargets) + " targets");
  lg->release_text_.append(std::string_view(lg->release_).substr(0, 127));
  // The widest body of any target: every text byte escaped, the newline,
  // userdata, sysdata. The crash path's also holds a whole crash record.
  std::size_t body = 0;
  std::size_t crash_body = 0;
  for (std::size_t i = 0; i < c.targets.size(); ++i) {
    auto t = std::make_unique<Target>();
    t->cfg = c.targets[i];
    const std::string which = c.name + ": target " + std::to_string(i + 1) + " '" + t->cfg.target.text + "'";
    if (t->cfg.userdata.size() > kMaxUserdataEntries)
      return setup_error(Errc::kInvalidArgument, which + ": more than 256 userdata entries");
    for (const auto& [key, value] : t->cfg.userdata) {
      if (key.empty() || key.size() > kMaxUserdataKey || key.find_first_of("= \n") != std::string::npos)
        return setup_error(Errc::kInvalidArgument,
                           which + ": userdata key '" + key + "' must be 1..53 bytes without '=', space or newline");
      if (value.size() > kMaxUserdataValue || value.find('\n') != std::string::npos)
        return setup_error(Errc::kInvalidArgument,
                           which + ": userdata value of '" + key + "' must be under 200 bytes without a newline");
    }
    const std::string userdata_block = userdata_lines(t->cfg);
    RecordFormat& f = t->format;
    if (!userdata_block.empty()) {
      t->userdata_mem = GuardedRegion::must_map(userdata_block.size(), "userdata");
      std::memcpy(t->userdata_mem.data(), userdata_block.data(), userdata_block.size());
      f.userdata = {reinterpret_cast<const char*>(t->userdata_mem.data()), userdata_block.size()};
    }
    f.extended = t->cfg.target.extended;
    f.release_prefix = t->cfg.target.release;
    f.release = lg->release_text_.view();
    f.sysdata = t->cfg.sysdata;
    body = std::max(body, max_record_body(c.max_text, f.userdata.size(), lg->release_.size()));
    crash_body = std::max(crash_body, max_record_body(std::max(c.max_text, kMaxCrashText), f.userdata.size(),
                                                      lg->release_.size()));
    if (c.shared_msgid != nullptr) t->shared_msgid = &c.shared_msgid[i];
    if (t->cfg.rate.enabled()) {
      t->tokens = t->cfg.rate.burst;
      t->refilled_ns = monotonic_ns();
    }

    core::ClientConfig cc;
    if (t->cfg.reliable) {
      const ReliableTuning& rt = t->cfg.reliable_tuning;
      const IpAddr& remote = t->cfg.target.remote_ip;
      if (!t->cfg.target.extended)
        return setup_error(Errc::kInvalidArgument,
                           which + ": reliable mode needs the extended format ('+'): records need sequence numbers");
      if (remote.is_unspecified() || remote.is_broadcast() || remote.is_multicast())
        return setup_error(Errc::kInvalidArgument,
                           which + ": reliable mode needs a unicast remote IP (responses come from it)");
      if (rt.window == 0 || rt.window > (1u << 20))
        return setup_error(Errc::kInvalidArgument, which + ": reliable window must be 1..1048576 records");
      if (rt.resend_burst == 0) return setup_error(Errc::kInvalidArgument, which + ": reliable resend_burst must be > 0");
      if (rt.emergency_after.count() <= 0 || rt.emergency_pause.count() < 0 || rt.retransmit_holdoff.count() < 0 ||
          rt.probe_interval.count() <= 0 || rt.first_ack_wait.count() <= 0)
        return setup_error(Errc::kInvalidArgument,
                           which + ": reliable emergency_after, probe_interval and first_ack_wait must be positive, the "
                           "pause and holdoff not negative");
      // Allocated before the client: its hook may run as soon as it is attached.
      t->rel = std::make_unique<ReliableSender>(rt, c.max_text, t->stats, lg->crash_owner_);
      cc.rx_hook = [lg = lg.get(), rel = t->rel.get()](core::Netpoll&, const core::RxInfo&,
                                                       std::span<const std::byte> payload) {
        if (rel->on_response({reinterpret_cast<const char*>(payload.data()), payload.size()})) lg->wake_sender();
      };
      lg->reliable_ = true;
    }
    cc.name = c.name;
    cc.target = t->cfg.target;
    cc.device = c.device;
    cc.resolve = c.resolve;
    cc.log = c.log;
    auto np = core::Netpoll::setup(std::move(cc));
    if (!np) return setup_error(np.error().code, which + ": " + np.error().message);
    t->np = std::move(*np);
    // Two reliable targets that receive on the same address from the same
    // receiver IP would each take the other's responses for their own.
    for (const auto& o : lg->targets_) {
      if (t->rel == nullptr || o->rel == nullptr || &o->np->shared() != &t->np->shared()) continue;
      if (o->np->local_ip() == t->np->local_ip() && o->np->local_port() == t->np->local_port() &&
          o->np->remote_ip() == t->np->remote_ip())
        return setup_error(Errc::kInvalidArgument,
                           which + ": reliable targets to one remote IP need different local ports (responses "
                                   "to one port cannot be told apart)");
    }
    lg->target_table_[lg->target_count_++] = t.release();
    lg->targets_ = {lg->target_table_.data(), lg->target_count_};
  }
  lg->sender_scratch_.make(body);
  lg->crash_scratch_.make(crash_body);
  lg->direct_scratch_.make(crash_body);
  thread_name();  // the setup thread's name, cached before any handler needs it
  if (c.sender_thread) lg->sender_ = std::thread([raw = lg.get()] { raw->sender_loop(); });
  return lg;
}

Logger::~Logger() {
  crash_logger_gone(this);  // the crash handler must not outlive us
  flush(std::chrono::seconds(1));
  // Records the start handshake still holds for a receiver that never
  // answered would go nowhere: they go out once, unacknowledged.
  if (reliable_) fall_back_unanswered(std::chrono::seconds(1));
  stop_.store(true, std::memory_order_release);
  wake_word_.fetch_add(1);
  futex(&wake_word_, FUTEX_WAKE_PRIVATE, 1, nullptr);
  if (sender_.joinable()) sender_.join();
  // Detach every client first: a reliable target's rx hook uses the target
  // and this logger until then.
  for (auto& t : targets_) t->np.reset();
  for (Target* t : targets_) delete t;
}

// ---------------------------------------------------------------------------
// Producers

bool Logger::begin_record(RecordRing::Claim& c) noexcept { return ring_.claim(c); }

void Logger::finish_formatted(const RecordRing::Claim& c, Facility facility, Level level,
                              std::size_t wanted_len) noexcept {
  // What did not fit in the slot is lost. The slot holds max_text bytes
  // and a record max_text bytes escaped: a character the slot's end cut
  // off is left out by the budget already (a byte outside ASCII counts
  // four), so no character is split.
  const std::string_view written(c.text.data(), std::min(wanted_len, c.text.size()));
  const std::size_t len = piece_length(written, cfg_.max_text);
  Marks marks;
  marks.truncated = len < wanted_len;
  finish_record(c, facility, level, len, marks);
}

void Logger::finish_record(const RecordRing::Claim& c, Facility facility, Level level, std::size_t text_len,
                           Marks marks) noexcept {
  RecordMeta& m = *c.meta;
  m.timestamp_us = static_cast<std::uint64_t>(boottime_ns() / 1000);
  m.facility = static_cast<std::uint8_t>(facility);
  m.level = static_cast<std::uint8_t>(level);
  m.continuation = marks.continuation;
  m.follows = marks.follows;
  m.more = marks.more;
  m.truncated = marks.truncated;
  m.text_len = static_cast<std::uint32_t>(std::min(text_len, c.text.size()));
  m.bypass_rate_limit = false;
  m.cpu = ::sched_getcpu();
  m.tid = current_tid();
  std::memcpy(m.taskname, thread_name(), sizeof m.taskname);
  ring_.publish(c);
  stats_.logged.add();
  if (m.truncated) stats_.truncated.add();
  if (m.continuation) stats_.continued.add();
  wake_sender();
}

std::size_t Logger::log_piece(Facility facility, Level level, std::string_view text, std::size_t offset) noexcept {
  offset = std::min(offset, text.size());
  const std::string_view rest = text.substr(offset);
  // At most max_text bytes even unescaped: it fits in a slot.
  const std::size_t len = std::min(piece_length(rest, cfg_.max_text), ring_.max_text());
  const std::size_t next = offset + len;
  Marks marks;
  marks.follows = offset > 0;
  marks.more = next < text.size();
  marks.continuation = marks.follows || marks.more;
  RecordRing::Claim c;
  if (begin_record(c)) {
    std::memcpy(c.text.data(), rest.data(), len);
    finish_record(c, facility, level, len, marks);
  }
  return next;
}

void Logger::log_text(Facility facility, Level level, std::string_view text) noexcept {
  // Bounded: every piece but an empty text's only one takes at least a byte.
  std::size_t at = 0;
  do {
    at = log_piece(facility, level, text, at);
  } while (at < text.size());
}

// A futex wake only when the sender sleeps: under load log() makes no
// system call. The fence orders our publish before the look at the flag,
// as the sender's fence orders its flag before its look at the ring.
void Logger::wake_sender() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sender_sleeping_.load(std::memory_order_relaxed)) {
    wake_word_.fetch_add(1, std::memory_order_release);
    futex(&wake_word_, FUTEX_WAKE_PRIVATE, 1, nullptr);
  }
}

// ---------------------------------------------------------------------------
// The sender

std::uint64_t Logger::next_seq(std::uint32_t drops_before) noexcept {
  // Records lost to a full ring keep their numbers: the receiver sees a gap.
  return seq_->fetch_add(1 + std::uint64_t{drops_before}, std::memory_order_acq_rel) + drops_before;
}

// Numbering: see logger.h (sender_seq_for, crash_seq_for).
bool Logger::begin_numbering() noexcept {
  pid_t none = 0;
  if (!numbering_owner_.compare_exchange_strong(none, current_tid(), std::memory_order_seq_cst)) return false;
  if (crash_owner_.load(std::memory_order_seq_cst) == 0) return true;
  numbering_owner_.store(0, std::memory_order_release);
  return false;
}

void Logger::note_number(std::uint64_t ticket, std::uint64_t seq) noexcept {
  numbered_seq_.store(seq, std::memory_order_relaxed);
  numbered_ticket_.store(ticket, std::memory_order_release);
}

void Logger::end_numbering() noexcept { numbering_owner_.store(0, std::memory_order_release); }

std::optional<std::uint64_t> Logger::sender_seq_for(std::uint64_t ticket, std::uint32_t drops_before) noexcept {
  if (numbered_ticket_.load(std::memory_order_acquire) == ticket) return numbered_seq_.load(std::memory_order_relaxed);
  if (!begin_numbering()) return std::nullopt;
  const std::uint64_t seq = next_seq(drops_before);
  note_number(ticket, seq);
  end_numbering();
  return seq;
}

bool Logger::allow(Target& t) noexcept {
  if (!t.cfg.rate.enabled()) return true;
  const std::int64_t now = monotonic_ns();
  const double per_ns = static_cast<double>(t.cfg.rate.burst) /
                        static_cast<double>(std::chrono::nanoseconds(t.cfg.rate.interval).count());
  t.tokens = std::min<double>(t.cfg.rate.burst, t.tokens + static_cast<double>(now - t.refilled_ns) * per_ns);
  t.refilled_ns = now;
  if (t.tokens < 1.0) return false;
  t.tokens -= 1.0;
  return true;
}

Logger::Emitted Logger::emit(Target& t, std::uint64_t seq, const RecordMeta& meta, std::string_view text,
                             std::uint32_t msgid, bool emergency, Scratch& scratch, bool crash) noexcept {
  const std::span<char> out(scratch.body, scratch.size);
  Emitted r;
  const auto sink = [&](std::string_view datagram) {
    if (!crash && crash_owner_.load(std::memory_order_acquire) != 0) {
      r.interrupted = true;
      return;
    }
    // One kick per burst, on every path: the callers kick at the end. The
    // crash path takes the target's own route where it has one.
    if (crash && t.route != nullptr) {
      if (t.route->send(as_bytes(datagram))) {
        ++r.sent;
      } else {
        ++r.errors;
      }
      return;
    }
    auto sent = t.np->send_udp(as_bytes(datagram), core::Flush::kLater);
    // Backpressure, outside a crash: a device without room (its queue or
    // pool full) makes the sending thread wait, bounded, instead of losing
    // the record; the ring fills behind it and its producers see that.
    // (The clock is read only then: a read costs as much as a tenth of a
    // datagram's way to the wire.)
    const auto must_wait = [&] {
      return !sent && (sent.error() == Errc::kBusy || sent.error() == Errc::kNoBuffer) &&
             crash_owner_.load(std::memory_order_acquire) == 0;
    };
    const std::int64_t give_up = must_wait() ? monotonic_ns() + kBackpressureWait.count() : 0;
    while (must_wait() && monotonic_ns() < give_up) {
      t.np->flush();
      static_cast<void>(t.np->shared().service_tx());
      nap(std::chrono::microseconds(100));
      sent = t.np->send_udp(as_bytes(datagram), core::Flush::kLater);
    }
    if (sent) {
      ++r.sent;
    } else {
      ++r.errors;
    }
  };
  const std::size_t len = record_body(t.format, meta, text, msgid, out);
  if (t.format.extended) {
    char header[nc::kMaxHeader];
    const std::size_t header_len = nc::format_header(record_header(t.format, meta, seq, emergency), header);
    nc::emit_extended(std::string_view(header, header_len), std::string_view(out.data(), len), sink);
  } else {
    nc::emit_basic(std::string_view(out.data(), len), sink);
  }
  return r;
}

bool Logger::send_record(std::uint64_t seq, const RecordMeta& meta, std::string_view text, Scratch& scratch,
                         bool crash) noexcept {
  // The console level: the record keeps its number (the receiver sees a
  // gap) and reaches no target.
  if (!meta.bypass_rate_limit && meta.level >= level_->load(std::memory_order_relaxed)) {
    stats_.filtered.add();
    return true;
  }
  for (auto& tp : targets_) {
    Target& t = *tp;
    if (!crash && crash_owner_.load(std::memory_order_acquire) != 0) return false;
    if (!crash && !meta.bypass_rate_limit) {
      // A line in several records is let through or dropped whole: its
      // first record takes a token, the following ones go its way.
      const bool pass = meta.follows ? !t.dropping_line : allow(t);
      if (!meta.follows) t.dropping_line = !pass;
      if (!pass) {
        t.stats.dropped.add();
        continue;
      }
    }
    std::uint32_t msgid = 0;
    if (t.cfg.target.extended && t.cfg.sysdata.msgid) {
      msgid = t.shared_msgid != nullptr ? t.shared_msgid->fetch_add(1, std::memory_order_relaxed)
                                        : t.msgid.fetch_add(1, std::memory_order_relaxed);
    }
    // The start handshake (ReliableTuning::start_handshake): while the
    // receiver has not answered yet, a record behind the one on the wire
    // waits in the window. Only this thread changes the window outside a
    // crash, and a crash does not come here.
    const bool hold = t.rel != nullptr && !crash && t.rel->holds_next();
    if (!hold) {
      const Emitted e = emit(t, seq, meta, text, msgid, false, scratch, crash);
      if (e.interrupted) return false;
      t.stats.datagrams.add(e.sent);
      t.stats.tx_errors.add(e.errors);
      if (e.errors == 0) t.stats.records.add();
    }
    // Reliable: kept until acknowledged (also when netpoll refused a
    // datagram of it: the receiver will ask for it). The crash path keeps
    // nothing: nobody will act on a response any more. If a crash took the
    // window over, a record held back, not sent, is left in the ring for
    // the crash path to send.
    if (t.rel != nullptr && !crash && !t.rel->keep(seq, msgid, meta, text, hold, reliable_now()) && hold)
      return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Reliable mode: each target's ReliableSender decides, at the time given;
// the logger sends what it asks for.

ReliableSender::Time Logger::reliable_now() const noexcept {
  return cfg_.reliable_clock != nullptr ? cfg_.reliable_clock->now() : std::chrono::steady_clock::now();
}

void Logger::service_reliable(ReliableSender::Time now) noexcept {
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    Target& t = *targets_[i];
    if (t.rel == nullptr) continue;
    // Told once, after the step that fell back: the held records it sent
    // then go out first (the caller's message is no reason to wait).
    const bool was_plain = t.rel->plain();
    t.rel->service(now, [&](const RetransmitWindow::Entry& e, std::string_view text, Resend why) {
      const Emitted x = emit(t, e.seq, e.meta, text, e.msgid, why == Resend::kEmergency, sender_scratch_, false);
      if (x.interrupted) return false;
      t.stats.datagrams.add(x.sent);
      t.stats.tx_errors.add(x.errors);
      if (why == Resend::kFirst && x.errors == 0) t.stats.records.add();  // held by the start handshake, on the wire now
      return true;
    });
    if (!was_plain && t.rel->plain() && !t.fallback_told) {
      t.fallback_told = true;
      if (cfg_.on_reliable_fallback) cfg_.on_reliable_fallback(ReliableFallback{i, t.rel->plain_after()});
    }
  }
}

ReliableSender::Time Logger::reliable_deadline() const noexcept {
  ReliableSender::Time next = ReliableSender::Time::max();
  for (const auto& tp : targets_) {
    if (tp->rel != nullptr) next = std::min(next, tp->rel->deadline());
  }
  return next;
}

bool Logger::responses_pending() const noexcept {
  for (const auto& tp : targets_) {
    if (tp->rel != nullptr && tp->rel->responses_pending()) return true;
  }
  return false;
}

std::size_t Logger::poll() noexcept {
  std::size_t n = 0;
  for (auto& t : targets_) n += t->np->poll();
  return n;
}

void Logger::kick_all() noexcept {
  for (auto& t : targets_) t->np->flush();
}

std::size_t Logger::drain() noexcept {
  if (reliable_) service_reliable(reliable_now());
  std::size_t sent = 0;
  std::uint64_t t = consumed_.load(std::memory_order_acquire);
  while (crash_owner_.load(std::memory_order_acquire) == 0 && ring_.ready(t)) {
    const RecordMeta& m = ring_.meta(t);
    // The producer wrote the next record on another core: its lines come
    // over while this one is sent, not when it is read. Only once it is
    // written: fetched before, they would be taken from under a producer
    // that is about to write them (its log() then waits for them to come
    // back to its core).
    if (ring_.ready(t + 1)) {
      __builtin_prefetch(&ring_.meta(t + 1));
      __builtin_prefetch(ring_.text_start(t + 1));
    }
    const std::optional<std::uint64_t> seq = sender_seq_for(t, m.drops_before);
    if (!seq || !send_record(*seq, m, ring_.text(t), sender_scratch_, false)) break;
    ring_.release(t);
    consumed_.store(++t, std::memory_order_release);
    ++sent;
    if (sent % 64 == 0) wake_room_waiter(false);
  }
  kick_all();
  wake_room_waiter(true);
  return sent;
}

// The fence orders our release of slots before the look at the flag, as
// wait_for_room()'s orders its flag before its look at the ring: at least
// one of the two sees the other.
void Logger::wake_room_waiter(bool any_room) noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!room_waiting_.load(std::memory_order_relaxed)) return;
  const std::size_t free = ring_.slots() - static_cast<std::size_t>(pending());
  if (free == 0 || (!any_room && free < ring_.slots() / 4)) return;
  if (!room_waiting_.exchange(false, std::memory_order_relaxed)) return;
  room_word_.fetch_add(1, std::memory_order_release);
  futex(&room_word_, FUTEX_WAKE_PRIVATE, 1, nullptr);
}

bool Logger::wait_for_room(std::size_t records, std::chrono::nanoseconds timeout) noexcept {
  records = std::min(records, ring_.slots());
  const auto has_room = [&] { return ring_.slots() - static_cast<std::size_t>(pending()) >= records; };
  const std::int64_t deadline = monotonic_ns() + timeout.count();
  for (;;) {
    const std::uint32_t w = room_word_.load(std::memory_order_acquire);
    room_waiting_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (has_room()) break;
    const std::int64_t left = deadline - monotonic_ns();
    if (left <= 0) break;
    const timespec ts{static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
    futex(&room_word_, FUTEX_WAIT_PRIVATE, w, &ts);
  }
  room_waiting_.store(false, std::memory_order_relaxed);
  return has_room();
}

void Logger::sender_loop() {
  ::pthread_setname_np(::pthread_self(), "netconsole");
  for (;;) {
    if (crash_owner_.load(std::memory_order_acquire) != 0) {
      // The crash path owns the ring and the devices now: stay out of the
      // way until the process dies.
      while (!stop_.load(std::memory_order_acquire)) nap(std::chrono::milliseconds(100));
      return;
    }
    if (drain() > 0) continue;
    if (stop_.load(std::memory_order_acquire)) return;
    // Reliable work due now (an emergency cycle under way): next step at once.
    if (reliable_ && reliable_deadline() <= reliable_now()) continue;
    // Stay awake a little (50 us) before sleeping: a stream of records then
    // never costs its producers a wake-up system call.
    const std::int64_t spin_until = monotonic_ns() + 50'000;
    bool more = false;
    while (!more && monotonic_ns() < spin_until) {
      for (int i = 0; i < 64 && !more; ++i) {
        more = ring_.ready(consumed_.load(std::memory_order_relaxed)) || (reliable_ && responses_pending());
        __builtin_ia32_pause();
      }
    }
    if (more) continue;
    // Sleep until a producer or a response wakes us, reliable mode's timer
    // is due, or 100 ms pass (devices may need their deferred frames
    // retried, and stop_ may have been set).
    std::int64_t sleep_ns = 100'000'000;
    if (reliable_) {
      const ReliableSender::Time due = reliable_deadline();
      const ReliableSender::Time now = reliable_now();
      if (due <= now) {
        sleep_ns = 0;
      } else if (due - now < std::chrono::nanoseconds(sleep_ns)) {
        sleep_ns = std::chrono::nanoseconds(due - now).count();
      }
    }
    const std::uint32_t w = wake_word_.load(std::memory_order_acquire);
    sender_sleeping_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleep_ns > 0 && !ring_.ready(consumed_.load(std::memory_order_acquire)) &&
        !(reliable_ && responses_pending()) && !stop_.load(std::memory_order_acquire)) {
      const timespec timeout{static_cast<time_t>(sleep_ns / 1'000'000'000), static_cast<long>(sleep_ns % 1'000'000'000)};
      futex(&wake_word_, FUTEX_WAIT_PRIVATE, w, &timeout);
    }
    sender_sleeping_.store(false, std::memory_order_relaxed);
  }
}

bool Logger::flush(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (!sender_.joinable()) drain();
    bool idle = consumed_.load(std::memory_order_acquire) == ring_.next_ticket();
    for (auto& t : targets_) {
      if (t->np->shared().deferred_depth() > 0) {
        idle = false;
        t->np->shared().service_tx();
      }
    }
    if (idle) {
      kick_all();
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    wake_word_.fetch_add(1);
    futex(&wake_word_, FUTEX_WAKE_PRIVATE, 1, nullptr);
    nap(std::chrono::milliseconds(1));
  }
}

bool Logger::wait_acked(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (auto& t : targets_) {
      if (t->rel != nullptr && !t->np->shared().config().service_thread) t->np->poll();
    }
    if (!sender_.joinable()) drain();
    bool done = consumed_.load(std::memory_order_acquire) == ring_.next_ticket();
    for (auto& t : targets_) {
      if (t->rel != nullptr && t->stats.unacked.load(std::memory_order_relaxed) > 0) done = false;
    }
    if (done) return flush(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(deadline - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration::zero())));
    if (std::chrono::steady_clock::now() >= deadline) return false;
    wake_word_.fetch_add(1);
    futex(&wake_word_, FUTEX_WAKE_PRIVATE, 1, nullptr);
    nap(std::chrono::milliseconds(1));
  }
}

bool Logger::fall_back_unanswered(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Done when no target that had no answer keeps a record: each has
    // fallen back and sent what it held (or kept nothing). Asked again
    // each round: a request that found nothing kept is dropped.
    bool done = true;
    for (auto& t : targets_) {
      const TargetStats& s = t->stats;
      if (t->rel == nullptr || s.has_ack.load(std::memory_order_acquire) ||
          s.unacked.load(std::memory_order_relaxed) == 0)
        continue;
      done = false;
      t->rel->fall_back_now();
    }
    if (done) return true;
    if (std::chrono::steady_clock::now() >= deadline || crash_owner_.load(std::memory_order_acquire) != 0)
      return false;
    for (auto& t : targets_) {
      if (t->rel != nullptr && !t->np->shared().config().service_thread) t->np->poll();
    }
    if (sender_.joinable()) {
      wake_word_.fetch_add(1);
      futex(&wake_word_, FUTEX_WAKE_PRIVATE, 1, nullptr);
    } else {
      drain();
    }
    nap(std::chrono::milliseconds(1));
  }
}

// The crash path's entry points and send_direct(), which send_now()
// shares with crash_send(): logger_crash.cpp.

void Logger::send_now(Facility facility, Level level, std::string_view text) {
  std::lock_guard lock(direct_mutex_);
  send_direct(facility, level, text, direct_scratch_);
  kick_all();
}

std::string Logger::stats_json() const {
  core::JsonWriter j;
  j.begin_object();
  j.field("name", cfg_.name).field("logged", stats_.logged.value()).field("truncated", stats_.truncated.value());
  j.field("continued", stats_.continued.value()).field("filtered", stats_.filtered.value());
  j.field("console_level", static_cast<std::uint64_t>(console_level()));
  j.field("ring_overflows", ring_.overflows()).field("ring_records", ring_.slots());
  j.field("pending", ring_.next_ticket() - consumed_.load());
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    const auto& t = *targets_[i];
    j.begin_object(("target" + std::to_string(i + 1)).c_str());
    j.field("target", t.cfg.target.text).field_bool("extended", t.cfg.target.extended);
    j.field("records", t.stats.records.value()).field("datagrams", t.stats.datagrams.value());
    j.field("dropped", t.stats.dropped.value()).field("tx_errors", t.stats.tx_errors.value());
    j.field_bool("reliable", t.rel != nullptr);
    if (t.rel != nullptr) {
      const TargetStats& s = t.stats;
      // acked_seq appears once a response has been applied.
      if (s.has_ack.load(std::memory_order_acquire)) j.field("acked_seq", s.acked_seq.load(std::memory_order_relaxed));
      j.field("unacked", s.unacked.load(std::memory_order_relaxed)).field("window", t.rel->window_capacity());
      j.field_bool("emergency", s.emergency.load(std::memory_order_relaxed));
      j.field("retransmitted", s.retransmitted.value()).field("emergency_sent", s.emergency_sent.value());
      j.field("emergency_cycles", s.emergency_cycles.value()).field("window_dropped", s.window_dropped.value());
      j.field("responses", s.responses.value()).field("bad_responses", s.bad_responses.value());
      j.field("mailbox_overflows", s.mailbox_overflows.value()).field("not_in_window", s.not_in_window.value());
      j.field_bool("plain", s.plain.load(std::memory_order_acquire)).field("unacknowledged", s.unacknowledged.value());
    }
    j.end_object();
  }
  j.end_object();
  return j.str();
}

}  // namespace np::console
