#include "netpoll/netdump/dumper.h"

#include <sys/utsname.h>

#include <cstring>

#include "netpoll/base/clock.h"

namespace np::netdump {

Dumper::Dumper(DumperConfig cfg) : cfg_(std::move(cfg)) {}

Dumper::~Dumper() = default;

SetupResult<std::unique_ptr<Dumper>> Dumper::setup(DumperConfig cfg) {
  if (cfg.deadline.count() <= 0) return setup_error(Errc::kInvalidArgument, "the dump deadline must be positive");
  std::unique_ptr<Dumper> d(new Dumper(std::move(cfg)));
  auto stream = debugnet::Stream::setup(std::move(d->cfg_.stream));
  if (!stream) return std::unexpected(stream.error());
  d->stream_ = std::move(*stream);
  auto writer = dump::CoreWriter::make(d->cfg_.core);
  if (!writer) return std::unexpected(writer.error());
  d->writer_ = std::move(*writer);
  utsname u{};
  if (::uname(&u) == 0) d->host_.append(u.nodename);
  return d;
}

DumpOutcome Dumper::dump_live() noexcept { return run(nullptr, nullptr, false); }

DumpOutcome Dumper::dump_crash(const siginfo_t* si, const ucontext_t* ctx) noexcept { return run(si, ctx, true); }

void Dumper::on_crash(void* arg, const siginfo_t* si, const ucontext_t* ctx) noexcept {
  if (arg != nullptr) static_cast<Dumper*>(arg)->dump_crash(si, ctx);
}

DumpOutcome Dumper::run(const siginfo_t* si, const ucontext_t* ctx, bool crash) noexcept {
  DumpOutcome out;
  const std::int64_t deadline = monotonic_ns() + std::chrono::nanoseconds(cfg_.deadline).count();
  auto begun = writer_->begin(si, ctx, deadline);
  if (!begun) {
    out.error = begun.error();
    // kBusy: another dump holds the writer (and its threads): not ours to end.
    if (!crash && begun.error() != Errc::kBusy) writer_->end();
    return last_ = out;
  }
  out.core = *begun;
  // The herald: what the server names the file after and records.
  herald_.clear();
  herald_.append("kind=").append(crash ? "crash" : "live").append('\n');
  herald_.append("program=").append(std::string_view(out.core.program, ::strnlen(out.core.program, sizeof out.core.program))).append('\n');
  herald_.append("pid=").append_int(out.core.pid).append('\n');
  herald_.append("signal=").append_int(out.core.signal).append('\n');
  herald_.append("threads=").append_uint(out.core.threads).append('\n');
  herald_.append("size=").append_uint(out.core.size).append('\n');
  if (!host_.view().empty()) herald_.append("host=").append(host_.view()).append('\n');
  const std::string_view h = herald_.view();
  if (auto opened = stream_->open(std::as_bytes(std::span(h.data(), h.size())), deadline); !opened) {
    out.error = opened.error();
    if (!crash) writer_->end();
    return last_ = out;
  }
  out.answered = true;
  auto sink = [&](std::uint64_t offset, std::span<const std::byte> bytes) {
    return stream_->write(offset, bytes, deadline).has_value();
  };
  auto emitted = writer_->emit(sink, deadline);
  out.core = writer_->summary();
  if (!crash) writer_->end();  // the process goes on while the last packets are acknowledged
  if (!emitted) out.error = emitted.error();
  // Partial or not, the server hears how it ended (if it still answers).
  auto finished = stream_->finish(out.core.size, !emitted.has_value(), deadline);
  if (emitted && !finished) out.error = finished.error();
  out.complete = emitted.has_value() && finished.has_value();
  return last_ = out;
}

}  // namespace np::netdump
