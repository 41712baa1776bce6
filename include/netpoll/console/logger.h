// netconsole: log records over UDP, as Linux's netconsole sends them.
//
// A Logger owns one or more targets (netconsole option strings, each basic
// or extended with '+', with or without the release with 'r'), a ring of
// records and a sender thread. log() formats a record straight into the
// ring: it never blocks, never allocates and makes no system call while the
// sender is busy; the sender thread drains the ring in order, builds each
// target's datagrams (wire/netconsole.h) and sends them through netpoll,
// one kick per burst. When the ring is full a record is dropped, counted,
// and shows up as a gap in the sequence numbers the receiver sees. A device
// with no room for a datagram (its queue or frame pool full) makes the
// sender wait, up to a second per datagram, rather than lose the record:
// the backpressure reaches the ring.
//
// Long lines: a record's body (its text escaped, then userdata and sysdata)
// stays within wire::netconsole::kMaxBody, 8191 bytes, the most netconsd
// takes (LoggerConfig::max_text's default); the extended format sends it
// in 1000-byte fragments (ncfrag), as Linux does. log_text() sends a longer text as several records cut between
// UTF-8 characters, marked 'c' (the first) and '+' (the others) in the
// extended header, as printk's continuation fragments were; in the basic
// format every piece but the last goes without its newline, so the line
// goes on in the next datagram. Nothing is cut away (LoggerStats::continued
// counts the pieces); log(), which formats in place, cuts instead (counted
// as truncated).
//
// Reliable mode (netconsd's ncrx protocol), per extended target: every
// record sent is kept in a retransmit window fixed at setup until the
// receiver acknowledges it. The receiver answers "ncrx<ack-seq> <missing>..."
// to our local IP:port; the target's netpoll client takes those answers on
// the device's polling thread and hands them to the sending thread through
// a fixed mailbox. The sending thread forgets what is acknowledged, sends
// what is reported missing again (same number, same bytes), and when the
// acknowledgements stop moving for `emergency_after` it cycles through the
// unacknowledged records marked ncemg=1 until they move again
// (console/reliable_sender.h decides; the logger gives it the time and
// sends). Responses arrive only while the device is polled: its service
// thread does it (DeviceConfig.service_thread, the default); without one,
// call poll(). A target whose receiver acknowledges nothing within
// `first_ack_wait` of its first record falls back to plain sending, and
// says so once (LoggerConfig::on_reliable_fallback).
//
// The crash path (console/crash.h) takes the ring and the devices over from
// a fatal-signal handler and sends what is left plus a crash record, then
// (reliable targets) each unacknowledged record once more, marked ncemg=1.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "netpoll/base/counter.h"
#include "netpoll/base/guarded.h"
#include "netpoll/base/text.h"
#include "netpoll/base/result.h"
#include "netpoll/console/record_body.h"
#include "netpoll/console/record_ring.h"
#include "netpoll/console/reliable.h"
#include "netpoll/console/reliable_sender.h"
#include "netpoll/core/crash_route.h"
#include "netpoll/core/netpoll.h"

namespace np::console {

// syslog(3) levels and facilities, as the kernel's records carry them.
enum class Level : std::uint8_t { kEmerg, kAlert, kCrit, kErr, kWarning, kNotice, kInfo, kDebug };
enum class Facility : std::uint8_t {
  kKern = 0, kUser = 1, kMail = 2, kDaemon = 3, kAuth = 4, kSyslog = 5, kLpr = 6, kNews = 7,
  kUucp = 8, kCron = 9, kAuthpriv = 10, kFtp = 11,
  kLocal0 = 16, kLocal1, kLocal2, kLocal3, kLocal4, kLocal5, kLocal6, kLocal7,
};

// "err", "warning", ... and "daemon", "local3", ...; nullopt when unknown.
std::optional<Level> parse_level(std::string_view name);
std::optional<Facility> parse_facility(std::string_view name);
const char* to_string(Level l) noexcept;
const char* to_string(Facility f) noexcept;

// Sysdata and parse_sysdata(): console/record_body.h.

// Token bucket: `burst` records, refilled at burst per `interval`. Off when
// burst is 0. The crash path bypasses it.
struct RateLimit {
  std::chrono::milliseconds interval{0};
  unsigned burst = 0;
  bool enabled() const { return burst > 0 && interval.count() > 0; }
};

inline constexpr std::size_t kMaxUserdataKey = 53;     // bytes
inline constexpr std::size_t kMaxUserdataValue = 199;  // bytes (< 200)
inline constexpr std::size_t kMaxUserdataEntries = 256;

// ReliableTuning: console/reliable_sender.h.

struct TargetConfig {
  core::TargetOptions target;  // from parse_targets(): '+' extended, 'r' release
  Sysdata sysdata;
  RateLimit rate;
  std::vector<std::pair<std::string, std::string>> userdata;  // " key=value" lines
  // netconsd's reliable mode (ncrx): extended targets with a unicast remote
  // IP only. Needs a receiver that answers: netpoll listen --ack, or one
  // built on netconsd's ncrx library (netconsd itself does not answer).
  // Without answers it falls back to plain sending
  // (ReliableTuning::first_ack_wait). A record the rate limit drops is
  // never sent, so never kept either.
  bool reliable = false;
  ReliableTuning reliable_tuning;
};

// Counters of one target; reliable mode's (has_ack, acked_seq, unacked,
// emergency, retransmitted, ...: ReliableStats) are zero for other targets.
struct TargetStats : ReliableStats {
  SharedCounter records;    // records sent (every datagram of them handed to netpoll)
  SharedCounter datagrams;  // datagrams sent, retransmissions included
  SharedCounter dropped;    // records not sent: rate limit
  SharedCounter tx_errors;  // datagrams netpoll refused (counted by reason in its stats)
};

// A reliable target fell back to plain sending: nothing acknowledged
// within `waited` of its first record (ReliableTuning::first_ack_wait, or
// a caller that stopped waiting: Logger::fall_back_unanswered()).
struct ReliableFallback {
  std::size_t target = 0;  // its index in LoggerConfig::targets
  std::chrono::nanoseconds waited{0};
};

struct LoggerStats {
  SharedCounter logged;     // records written into the ring
  SharedCounter truncated;  // log() records cut to max_text
  SharedCounter continued;  // records that carry a piece of a log_text() text longer than max_text ('c' and '+')
  SharedCounter filtered;   // records not sent: their level was not below the console level
};

// The console level, as Linux's console_loglevel: a record is sent only
// when its level is below it (numerically: 4 sends emerg, alert, crit and
// err). kAllLevels sends everything, the default.
inline constexpr std::uint8_t kAllLevels = 8;

struct LoggerConfig {
  std::string name = "netconsole";
  std::vector<TargetConfig> targets;
  std::size_t ring_records = 1024;
  // The most text one record carries, counted as the extended format sends
  // it (a byte below 0x20, 0x7f and above, and '\' take four: \xHH). A
  // longer log_text() text goes in several records, a longer log() is cut.
  // 0: as much as keeps every target's records within
  // wire::netconsole::kMaxBody (8191 bytes, the most netconsd takes) after
  // their newline, userdata and sysdata: 8190 without userdata and sysdata;
  // never less than kMinText (userdata that leave less make records that
  // netconsd refuses). The ring and each reliable window hold this many
  // bytes per record. Under 16 a character may be cut (piece_length()).
  std::size_t max_text = 0;
  Facility facility = Facility::kUser;  // of log() calls that name none
  std::string release;          // empty: the running kernel's (uname -r)
  bool sender_thread = true;    // false: call drain() yourself (tests)
  core::DeviceConfig device;
  core::ResolveConfig resolve;
  core::SetupLog log;           // setup messages
  // Counters shared with another process (netpoll run: the program and its
  // runner number their records in one sequence). nullptr: our own.
  std::atomic<std::uint64_t>* shared_seq = nullptr;
  std::atomic<std::uint32_t>* shared_msgid = nullptr;  // one per target
  // The console level (kAllLevels: every record), shared with another
  // process the same way (netpoll run: a remote command in the program
  // changes what the runner sends). nullptr: our own.
  std::atomic<std::uint8_t>* shared_console_level = nullptr;
  // The time reliable mode's timers read (holdoff, probe, progress,
  // pause). nullptr: the steady clock. A test passes one it moves itself;
  // it must outlive the logger.
  const ReliableClock* reliable_clock = nullptr;
  // Called once per reliable target that falls back to plain sending, on
  // the sending thread (drain()'s caller without one), before the records
  // the start handshake held go out: quick, no waiting. Empty: not told.
  std::function<void(const ReliableFallback&)> on_reliable_fallback;
};

// The logger object, its targets and their reliable-mode state each live
// in a guarded mapping of their own (InGuardedMemory), not on the malloc
// heap: the crash path reads them after the program may have overflowed
// every heap block it had.
class Logger : public InGuardedMemory<Logger> {
 public:
  // Targets per logger at most (the crash path keeps them in a fixed table).
  static constexpr std::size_t kMaxTargets = 32;
  // The longest crash record crash_send() takes whole (a full register dump
  // and backtrace is a few KiB; cut beyond this).
  static constexpr std::size_t kMaxCrashText = 32 * 1024;
  // The least text per record LoggerConfig::max_text = 0 gives.
  static constexpr std::size_t kMinText = 1024;

  // Sets up every target (netpoll clients, MAC resolution, ...). An error
  // names the target that failed. Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<Logger>> create(LoggerConfig cfg);
  // Sends what is in the ring (for at most a second), then stops.
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  // Logs one record with std::format syntax ({fmt}, the library std::format
  // was standardised from: g++ 12 has no <format>; the format string is
  // checked at compile time). Never blocks, never allocates (formatting
  // goes straight into the ring slot); a text longer than max_text is cut
  // between UTF-8 characters (and counted as truncated). Context: any.
  template <class... Args>
  void log(Level level, fmt::format_string<Args...> format, Args&&... args) noexcept {
    log_with(config_facility_, level, format, std::forward<Args>(args)...);
  }
  template <class... Args>
  void log(Facility facility, Level level, fmt::format_string<Args...> format, Args&&... args) noexcept {
    log_with(facility, level, format, std::forward<Args>(args)...);
  }
  // A record whose text is given as it is; a text longer than max_text goes
  // whole, in several records (log_piece() for each), one after the other
  // in the ring (another thread's record may come between them). With the
  // ring full, the pieces that do not fit are dropped (counted, a gap).
  // Context: any.
  void log_text(Facility facility, Level level, std::string_view text) noexcept;
  // One record of `text`: the piece that begins at `offset` (0, then what
  // the previous call returned), cut where piece_length() says and marked
  // as a continuation when the text takes more than one. Returns where the
  // next piece begins: text.size() when the text is done. For a caller that
  // waits for room in the ring between pieces (netpoll console); a piece
  // that finds the ring full is dropped (counted). Context: any.
  std::size_t log_piece(Facility facility, Level level, std::string_view text, std::size_t offset) noexcept;

  // Waits until every record logged so far has been sent (and every
  // device's deferred queue is empty), or `timeout` passes. True if all
  // went out. Context: setup (it sleeps).
  bool flush(std::chrono::milliseconds timeout);

  // Sends every record in the ring now, on the calling thread (for a
  // logger without a sender thread); first, for reliable targets, acts on
  // the responses that arrived (forgets what is acknowledged, sends again
  // what is missing) and on the emergency timer. Returns the records taken
  // from the ring. Context: any.
  std::size_t drain() noexcept;

  // Polls every target's device once: how responses arrive for a reliable
  // target whose device has no service thread
  // (DeviceConfig.service_thread = false). Returns the frames received.
  // Context: any.
  std::size_t poll() noexcept;

  // Waits until every record logged so far has been sent and, for reliable
  // targets, acknowledged (the windows are empty), or `timeout` passes. True
  // if so. Without a sender thread it drains, and it polls devices without
  // a service thread, itself. Context: setup (it sleeps).
  bool wait_acked(std::chrono::milliseconds timeout);

  // Reliable targets whose receiver has acknowledged nothing yet fall back
  // to plain sending now, as when first_ack_wait passes: the records the
  // start handshake held go out once (a caller that stops waiting for
  // acknowledgements, at exit, so that they are not lost). Waits until
  // they have gone, or `timeout` passes: true if so. Without a sender
  // thread it drains itself. Context: setup (it sleeps).
  bool fall_back_unanswered(std::chrono::milliseconds timeout);

  // Sends one record (up to kMaxCrashText bytes) to every target now, from
  // the calling thread, bypassing the ring and the rate limit; it is
  // numbered when it is sent, so it follows every record sent before the
  // call (flush() first to put it after everything logged). Reliable
  // targets do not keep it for retransmission. netpoll run's witness sends
  // its crash records this way. Context: setup (takes a mutex).
  void send_now(Facility facility, Level level, std::string_view text);

  // --- for the crash path (console/crash.h) ------------------------------
  // Gives every target on a packet device its own way out for a crash
  // (core/crash_route.h: a raw socket, frames and a batch of its own).
  // install_crash_handler() calls it. Context: setup.
  [[nodiscard]] SetupResult<void> prepare_crash_routes();
  // Stops the sender thread at its next step. A target with a crash route
  // checks that route's socket; any other target's device is put in
  // emergency mode for the calling thread. Context: any.
  void crash_take_over(std::chrono::nanoseconds device_wait) noexcept;
  // Sends every record still in the ring, skipping (after `wait_each`) one
  // whose writer never finished it. Returns the records sent. Context: any.
  std::size_t crash_drain(std::chrono::nanoseconds wait_each) noexcept;
  // Sends one record at `level` to every target at once, bypassing the
  // ring and the rate limit. Context: any.
  void crash_send(Level level, std::string_view text) noexcept;
  // Reliable targets: sends every unacknowledged record once more, oldest
  // first, marked ncemg=1 (a receiver takes those out of order), without
  // waiting for any response; stops when `budget` has passed. A window the
  // interrupted sender thread was changing gets `wait` to settle, else it is
  // skipped (as it is when the crashing thread itself was changing it).
  // Returns the records sent. Context: any.
  std::size_t crash_resend_unacked(std::chrono::nanoseconds wait, std::chrono::nanoseconds budget) noexcept;

  // The console level (see kAllLevels): records at this level or above
  // are not sent, counted as filtered; they keep their sequence numbers,
  // so a receiver sees the gap, as with Linux's console_loglevel (msgid
  // does not move: netpoll listen tells them from losses). Records that
  // bypass the rate limit (send_now(), the crash path's) are always sent.
  // Values above kAllLevels are taken as kAllLevels. Context: any.
  void set_console_level(std::uint8_t level) noexcept {
    level_->store(level > kAllLevels ? kAllLevels : level, std::memory_order_relaxed);
  }
  std::uint8_t console_level() const noexcept { return level_->load(std::memory_order_relaxed); }

  const LoggerStats& stats() const noexcept { return stats_; }
  // LoggerConfig::max_text as set up (0 made into the default). Context: any.
  std::size_t max_text() const noexcept { return cfg_.max_text; }
  const TargetStats& target_stats(std::size_t i) const noexcept { return targets_[i]->stats; }
  std::size_t target_count() const noexcept { return target_count_; }
  core::Netpoll& target_client(std::size_t i) noexcept { return *targets_[i]->np; }
  std::uint64_t ring_overflows() const noexcept { return ring_.overflows(); }
  // Records logged and not yet sent. Context: any.
  std::uint64_t pending() const noexcept { return ring_.next_ticket() - consumed_.load(std::memory_order_acquire); }
  std::size_t ring_records() const noexcept { return ring_.slots(); }
  // After a fork() (a runner starting its program): the ring's pages are
  // copy-on-write, and the first record into each would take a fault;
  // this takes them all now. Context: setup.
  void back_memory() noexcept { ring_.populate(); }
  // Blocks until at least `records` slots of the ring are free (at most
  // ring_records()) or `timeout` passes; true if they are. For a producer
  // that must not drop (netpoll run's output pump): it sleeps while the
  // ring is full and is woken as soon as the sender has freed a quarter of
  // it, so the sender never runs dry waiting for it. One waiter at a time.
  // Context: a thread that may block.
  bool wait_for_room(std::size_t records, std::chrono::nanoseconds timeout) noexcept;
  const std::string& release() const noexcept { return release_; }
  std::string stats_json() const;

 private:
  struct Target : InGuardedMemory<Target> {
    TargetConfig cfg;
    RecordFormat format;             // its views point into userdata_mem and the logger
    std::unique_ptr<ReliableSender> rel;  // reliable targets only; outlives np (its hook uses it)
    std::unique_ptr<core::Netpoll> np;
    std::unique_ptr<core::CrashRoute> route;  // after prepare_crash_routes(), on packet devices
    GuardedRegion userdata_mem;       // pre-rendered " k=v\n" lines (format.userdata)
    std::atomic<std::uint32_t> msgid{0};
    std::atomic<std::uint32_t>* shared_msgid = nullptr;
    // Token bucket, used by the one thread that sends (no sharing).
    double tokens = 0;
    std::int64_t refilled_ns = 0;
    // The rate limit lets a line sent in several records through whole or
    // not at all: its first record decides for the others.
    bool dropping_line = false;
    bool fallback_told = false;  // on_reliable_fallback called (the sending thread's)
    TargetStats stats;
  };
  // What building and sending one record's datagrams to one target did.
  struct Emitted {
    std::size_t sent = 0;
    std::size_t errors = 0;
    bool interrupted = false;  // the crash path took over in the middle
  };
  // How a record stands among the records of one line (RecordMeta).
  struct Marks {
    bool continuation = false;
    bool follows = false;
    bool more = false;
    bool truncated = false;
  };
  // Space for one record's body for every target.
  // (In a guarded mapping: the crash path formats into it.)
  struct Scratch {
    GuardedRegion region;
    char* body = nullptr;
    std::size_t size = 0;
    void make(std::size_t bytes) {
      region = GuardedRegion::must_map(bytes, "a record buffer");
      body = reinterpret_cast<char*>(region.data());
      size = bytes;
    }
  };

  explicit Logger(LoggerConfig cfg);

  template <class... Args>
  void log_with(Facility facility, Level level, fmt::format_string<Args...> format, Args&&... args) noexcept {
    RecordRing::Claim c;
    if (!begin_record(c)) return;
    const auto r = fmt::format_to_n(c.text.data(), c.text.size(), format,
                                    std::forward<Args>(args)...);
    finish_formatted(c, facility, level, static_cast<std::size_t>(r.size));
  }
  bool begin_record(RecordRing::Claim& c) noexcept;
  // log(): `wanted_len` bytes formatted, as many as fit in the slot written.
  void finish_formatted(const RecordRing::Claim& c, Facility facility, Level level, std::size_t wanted_len) noexcept;
  void finish_record(const RecordRing::Claim& c, Facility facility, Level level, std::size_t text_len,
                     Marks marks) noexcept;

  void sender_loop();
  void wake_sender() noexcept;
  // Sends one record to every target; false if the crash path took over in
  // the middle (the caller must not release the record).
  bool send_record(std::uint64_t seq, const RecordMeta& meta, std::string_view text, Scratch& scratch,
                   bool crash) noexcept;
  // Builds one record's datagrams for one target (console/record_body.h:
  // the bytes depend only on the arguments and the target's format, so a
  // retransmission is byte-identical) and sends them. Context: any.
  Emitted emit(Target& t, std::uint64_t seq, const RecordMeta& meta, std::string_view text, std::uint32_t msgid,
               bool emergency, Scratch& scratch, bool crash) noexcept;
  // Reliable mode, on the sending thread: the time its timers read, one
  // step of every reliable target at `now`, when the next one is due
  // (Time::max(): none), whether a response waits. Context: any.
  ReliableSender::Time reliable_now() const noexcept;
  void service_reliable(ReliableSender::Time now) noexcept;
  ReliableSender::Time reliable_deadline() const noexcept;
  bool responses_pending() const noexcept;
  std::uint64_t next_seq(std::uint32_t drops_before) noexcept;
  // The number a ring ticket goes out under, taken once: by the sender
  // (nothing once a crash has begun) or by the crash path (which waits,
  // bounded by `wait`, for a sender caught between the two steps).
  // Numbering takes two steps, the shared counter, then the note of which
  // ticket got which number; numbering_owner_ lets one thread at a time be
  // between them, and crash_owner_ stops the sender from starting. Each
  // side marks itself, then looks at the other (sequentially consistent),
  // so at least one sees the other: the sender backs off, or the crash
  // path waits for the note.
  bool begin_numbering() noexcept;
  void note_number(std::uint64_t ticket, std::uint64_t seq) noexcept;
  void end_numbering() noexcept;
  std::optional<std::uint64_t> sender_seq_for(std::uint64_t ticket, std::uint32_t drops_before) noexcept;
  std::uint64_t crash_seq_for(std::uint64_t ticket, std::uint32_t drops_before,
                              std::chrono::nanoseconds wait) noexcept;
  bool allow(Target& t) noexcept;
  void send_direct(Facility facility, Level level, std::string_view text, Scratch& scratch) noexcept;
  void kick_all() noexcept;
  // The crash path's kick: every route's batch, every other device.
  void crash_kick_all() noexcept;

  LoggerConfig cfg_;
  Facility config_facility_;
  std::string release_;
  RecordRing ring_;
  // Owned (deleted in ~Logger); a fixed table inside this object, so that
  // the crash path finds them without a vector's heap buffer.
  std::array<Target*, kMaxTargets> target_table_{};
  std::size_t target_count_ = 0;
  std::span<Target* const> targets_{};  // target_table_'s first target_count_
  FixedText<128> release_text_;         // release_ as the crash path reads it
  Scratch sender_scratch_;
  Scratch crash_scratch_;
  Scratch direct_scratch_;
  std::mutex direct_mutex_;
  std::atomic<std::uint64_t> own_seq_{0};
  std::atomic<std::uint64_t>* seq_;
  std::atomic<std::uint8_t> own_level_{kAllLevels};
  std::atomic<std::uint8_t>* level_;
  std::atomic<std::uint64_t> consumed_{0};  // tickets fully sent
  // The record being sent and the number it was given: if the crash path
  // takes over in the middle, it sends that record again under the same
  // number (a duplicate the receiver drops, never a gap).
  std::atomic<std::uint64_t> numbered_ticket_{UINT64_MAX};
  std::atomic<std::uint64_t> numbered_seq_{0};
  std::atomic<pid_t> numbering_owner_{0};  // the thread between the two steps
  friend struct LoggerTesting;             // src/console/testing.h
  std::atomic<pid_t> crash_owner_{0};
  std::atomic<std::uint32_t> wake_word_{0};
  std::atomic<bool> sender_sleeping_{false};
  // wait_for_room(): the waiter's futex word and its flag, which the sender
  // looks at as it frees slots.
  std::atomic<std::uint32_t> room_word_{0};
  std::atomic<bool> room_waiting_{false};
  void wake_room_waiter(bool any_room) noexcept;
  std::atomic<bool> stop_{false};
  bool reliable_ = false;  // some target is reliable
  std::thread sender_;
  LoggerStats stats_;
};

}  // namespace np::console
