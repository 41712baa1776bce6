#include "netpoll/receiver/engine.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "io.h"
#include "netpoll/base/clock.h"

namespace np::receiver {
namespace {

using np::listen::Clock;

constexpr std::size_t kOutputReserve = 1 << 20;  // the standard output buffer
constexpr std::size_t kFileBufferReserve = 64 << 10;
// end_batch() and idle() hold output until it has waited this long or this
// much is held: a write costs about 35 us besides its bytes (ext4 puts the
// file's new size and time through its journal). A write per batch cost a
// fifth of the receiving thread at 200,000 records a second; holding 10 ms
// or 256 KiB, also while the socket is empty, instead of 2 ms or 32 KiB
// and a write whenever it ran empty, took 7-8 % off 2500-byte records.
constexpr std::chrono::milliseconds kHoldAtMost{10};
constexpr std::size_t kHoldBytes = 256 << 10;
constexpr auto kTickInterval = std::chrono::milliseconds(20);

}  // namespace

ReceiveTime ReceiveTime::now() noexcept { return {Clock::now(), realtime_ns() / 1000}; }

Engine::Engine(const Options& options, Shared& shared, Responder& responder)
    : options_(options), shared_(shared), responder_(responder), table_(options.max_sources, options.limits) {
  out_.reserve(kOutputReserve);
  dirty_.reserve(std::min<std::size_t>(options_.max_sources, 1 << 16));
  if (options_.syslog) syslog_ = std::make_unique<SyslogWriter>(*options_.syslog);
}

Engine::~Engine() = default;

// --- the Sink -------------------------------------------------------------------

void Engine::record(const np::listen::Record& r) {
  if (options_.to_stdout) append_record(out_, options_.format, ctx_, r);
  if (std::string* f = current_file()) append_record(*f, options_.format, ctx_, r);
  if (syslog_) syslog_->add(ctx_, r);
  if (options_.count != 0) {  // --count: a total over every receiving thread
    const std::uint64_t total = shared_.records.fetch_add(1, std::memory_order_relaxed) + 1;
    if (total >= options_.count) shared_.stop.store(true);
  }
}

void Engine::gap(const np::listen::Gap& g) {
  if (options_.to_stdout) append_gap(out_, options_.format, ctx_, g);
  if (std::string* f = current_file()) append_gap(*f, options_.format, ctx_, g);
}

void Engine::reset(std::uint64_t from, std::uint64_t to) {
  if (options_.to_stdout) append_reset(out_, options_.format, ctx_, from, to);
  if (std::string* f = current_file()) append_reset(*f, options_.format, ctx_, from, to);
}

// The file buffer of the source being fed (nullptr: none); a buffer that
// gets its first bytes joins the list flush_outputs() writes out.
std::string* Engine::current_file() {
  if (current_ == nullptr || current_->file_fd < 0) return nullptr;
  if (current_->file_buffer.empty()) dirty_.push_back(current_);
  return &current_->file_buffer;
}

void Engine::feed_from(SourceEntry& e) {
  current_ = &e;
  ctx_.source = e.address;
}

// --- sources ----------------------------------------------------------------------

SourceEntry& Engine::source_for(const From& from) {
  const SourceKey k = SourceKey::of(from.addr);
  if (current_ != nullptr && current_->key == k) return *current_;
  if (SourceEntry* e = table_.find(k)) return *e;
  // A new source: allocation here is per source, never per datagram.
  if (table_.full()) evict_oldest();
  SourceEntry& e = table_.insert(k, from.addr, from.len);
  if (!options_.dir.empty()) {
    const std::string path =
        options_.dir + "/" + file_name_of(k) + (options_.format == OutputFormat::kJson ? ".json" : ".log");
    e.file_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (e.file_fd < 0) stats_.output_errors.add();
    e.file_buffer.reserve(kFileBufferReserve);
  }
  stats_.sources_seen.add();
  return e;
}

void Engine::evict_oldest() {
  SourceEntry& victim = table_.oldest();
  feed_from(victim);
  victim.source.flush(*this);  // what it holds is delivered before it goes
  flush_file(victim);
  std::erase(dirty_, &victim);
  current_ = nullptr;
  table_.evict_oldest();
  stats_.sources_evicted.add();
}

void Engine::respond(SourceEntry& e, Clock::time_point now) {
  if (!options_.limits.reliable) return;
  const std::string_view r = e.source.response(now);
  if (r.empty()) return;
  if (responder_.respond(e, r)) {
    stats_.responses_sent.add();
  } else {
    stats_.responses_failed.add();  // the source asks again; its next answer carries the same news
  }
}

void Engine::datagram(const From& from, std::string_view bytes, const ReceiveTime& at) {
  ctx_.received_us = at.wall_us;
  SourceEntry& e = source_for(from);
  e.peer_mac = from.mac;  // the latest frame's: a sender's route may change
  feed_from(e);
  e.source.datagram(bytes, at.steady, *this);
  respond(e, at.steady);
}

// --- output ---------------------------------------------------------------------------

void Engine::flush_file(SourceEntry& e) {
  if (e.file_buffer.empty() || e.file_fd < 0) return;
  if (!write_all(e.file_fd, e.file_buffer)) stats_.output_errors.add();
  e.file_buffer.clear();
}

void Engine::flush_outputs(Clock::time_point now) {
  if (options_.discard_output) out_.clear();
  if (!out_.empty()) {
    std::lock_guard lock(shared_.stdout_mutex);
    if (!write_all(STDOUT_FILENO, out_)) stats_.output_errors.add();
    out_.clear();
  }
  for (SourceEntry* e : dirty_) flush_file(*e);
  dirty_.clear();
  held_since_.reset();
  if (syslog_) flush_syslog(now);
}

void Engine::flush_syslog(Clock::time_point now) {
  const SyslogWriter::Flushed f = syslog_->flush(now);
  stats_.syslog_sent.add(f.sent);
  stats_.syslog_dropped.add(f.dropped);
}

void Engine::end_batch(const ReceiveTime& at) {
  current_ = nullptr;
  if (syslog_) flush_syslog(at.steady);
  if (out_.empty() && dirty_.empty()) return;
  if (!held_since_) held_since_ = at.steady;
  if (at.steady - *held_since_ < kHoldAtMost && held_bytes() < kHoldBytes) return;
  flush_outputs(at.steady);
}

int Engine::idle(const ReceiveTime& at, int most_ms) {
  end_batch(at);
  if (!held_since_) return most_ms;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(*held_since_ + kHoldAtMost - at.steady);
  return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, most_ms));
}

std::size_t Engine::held_bytes() const {
  std::size_t n = out_.size();
  for (const SourceEntry* e : dirty_) n += e->file_buffer.size();
  return n;
}

void Engine::tick(const ReceiveTime& at) {
  if (at.steady < next_tick_) return;
  next_tick_ = at.steady + kTickInterval;
  ctx_.received_us = at.wall_us;
  table_.for_each([&](SourceEntry& e) {
    if (e.source.next_deadline() > at.steady && !options_.limits.reliable) return;
    feed_from(e);
    e.source.tick(at.steady, *this);
    respond(e, at.steady);
  });
  end_batch(at);
}

void Engine::stop(const ReceiveTime& at) {
  ctx_.received_us = at.wall_us;
  table_.for_each([&](SourceEntry& e) {
    feed_from(e);
    e.source.flush(*this);
  });
  current_ = nullptr;
  flush_outputs(at.steady);
}

// --- statistics -----------------------------------------------------------------------

void Engine::for_each_source(
    FunctionRef<void(std::string_view address, const np::listen::SourceStats& s)> each) const {
  table_.for_each_locked([&](const SourceEntry& e) { each(e.address, e.source.stats()); });
}

void Engine::add_totals(np::listen::SourceStats& into) const { table_.add_totals(into); }

StatsReport engines_report(std::span<const Engine* const> engines, ReportFormat format) {
  np::listen::SourceStats sources;
  WorkerStats totals;
  for (const Engine* e : engines) {
    e->add_totals(sources);
    add_stats(totals, e->stats());
  }
  StatsReport report(format, sources, totals);
  for (const Engine* e : engines) {
    e->for_each_source([&](std::string_view address, const np::listen::SourceStats& s) {
      report.add_source(address, s);
    });
  }
  return report;
}

}  // namespace np::receiver
