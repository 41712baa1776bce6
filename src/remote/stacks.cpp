#include "netpoll/remote/stacks.h"

#include <fcntl.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "netpoll/base/clock.h"
#include "netpoll/base/text.h"
#include "netpoll/console/crash_report.h"
#include "netpoll/dump/elf_core.h"
#include "netpoll/dump/thread_stop.h"

namespace np::remote {

namespace detail = dump::detail;

namespace {

constexpr std::size_t kDirentBuffer = 8192;

// The thread's name (the kernel's comm), read with plain system calls.
void thread_name(pid_t tid, FixedText<32>& out) noexcept {
  FixedText<64> path;
  path.append("/proc/self/task/").append_uint(static_cast<std::uint64_t>(tid)).append("/comm");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char buf[32];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  for (ssize_t i = 0; i < n && buf[i] != '\n'; ++i) out.append(buf[i]);
}

}  // namespace

struct Stacks::State {
  StacksConfig cfg;
  const console::Symbolizer* sym = nullptr;
  const console::CfiIndex* cfi = nullptr;
  detail::StopControl ctl;
  struct sigaction old_action {};
  std::uint32_t gen = 0;
  pid_t* tids = nullptr;
  std::size_t tid_room = 0;
  std::byte* dirents = nullptr;
  // Per listed thread: its slot (or kNone) and its record.
  std::size_t* slot_of = nullptr;
  char* texts = nullptr;
  std::size_t* text_len = nullptr;
  std::size_t listed = 0;
};

namespace {
constexpr std::size_t kNone = ~std::size_t{0};
}

SetupResult<std::unique_ptr<Stacks>> Stacks::setup(const StacksConfig& cfg, const console::Symbolizer* sym,
                                                   const console::CfiIndex* cfi) {
  if (cfg.max_threads == 0 || cfg.max_threads > 65536 || cfg.text_per_thread < 256)
    return setup_error(Errc::kInvalidArgument, "stacks: max_threads 1..65536, text_per_thread 256 or more");
  const detail::XsaveInfo x = detail::xsave_info();
  const std::size_t fp_room = (std::max<std::size_t>(x.max_size, 512) + 63) / 64 * 64;
  const std::size_t n = cfg.max_threads;
  const std::size_t tid_room = n + 2;
  const std::size_t bytes = sizeof(State) + sizeof(detail::ThreadSlot) * n + fp_room * n + sizeof(pid_t) * tid_room +
                            kDirentBuffer + sizeof(std::size_t) * 2 * tid_room + cfg.text_per_thread * tid_room +
                            16 * 64;
  auto region = GuardedRegion::map(bytes, "the stacks command's tables");
  if (!region) return std::unexpected(region.error());
  auto* s = region->make<State>();
  auto* slots = region->make_array<detail::ThreadSlot>(n);
  auto* fp = static_cast<std::byte*>(region->take(fp_room * n, 64));
  if (s == nullptr || slots == nullptr || fp == nullptr)
    return setup_error(Errc::kNoBuffer, "stacks: the tables do not fit their mapping");
  s->tids = region->make_array<pid_t>(tid_room);
  s->dirents = static_cast<std::byte*>(region->take(kDirentBuffer, 8));
  s->slot_of = region->make_array<std::size_t>(tid_room);
  s->text_len = region->make_array<std::size_t>(tid_room);
  s->texts = static_cast<char*>(region->take(cfg.text_per_thread * tid_room, 1));
  if (s->tids == nullptr || s->dirents == nullptr || s->slot_of == nullptr || s->text_len == nullptr ||
      s->texts == nullptr)
    return setup_error(Errc::kNoBuffer, "stacks: the tables do not fit their mapping");
  std::memset(fp, 0, fp_room * n);
  s->cfg = cfg;
  s->sym = sym;
  s->cfi = cfi;
  s->tid_room = tid_room;
  for (std::size_t i = 0; i < n; ++i) slots[i].cap.fp = fp + fp_room * i;
  s->ctl.signal = cfg.stop_signal;
  s->ctl.xcr0 = x.xcr0;
  s->ctl.fp_capacity = fp_room;
  s->ctl.slots = slots;
  s->ctl.slot_count = n;
  std::unique_ptr<Stacks> st(new Stacks());
  st->region_ = std::move(*region);
  st->s_ = s;
  if (auto r = detail::install_stop_handler(s->ctl, s->old_action); !r) {
    st->s_ = nullptr;
    return std::unexpected(r.error());
  }
  return st;
}

Stacks::~Stacks() {
  if (s_ == nullptr) return;
  detail::uninstall_stop_handler(s_->ctl, s_->old_action, 500'000'000);
}

std::size_t Stacks::walk(StackSink sink, std::size_t* left_out) noexcept {
  State& s = *s_;
  detail::StopControl& c = s.ctl;
  s.gen = s.gen + 1 == 0 ? 1 : s.gen + 1;
  const std::uint32_t gen = s.gen;
  const std::int64_t now = monotonic_ns();
  c.answered.store(0, std::memory_order_relaxed);
  c.hold_until_ns.store(now + std::chrono::nanoseconds(s.cfg.hold).count(), std::memory_order_relaxed);
  c.generation.store(gen, std::memory_order_release);
  const pid_t me = detail::current_tid();
  s.listed = 0;
  std::size_t beyond = 0;
  const auto total = detail::list_threads(std::span<pid_t>(s.tids, s.tid_room), std::span(s.dirents, kDirentBuffer));
  const std::size_t count = total ? std::min(*total, s.tid_room) : 0;
  if (total && *total > s.tid_room) beyond = *total - s.tid_room;
  std::size_t next_slot = 0;
  std::uint32_t sent = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const pid_t tid = s.tids[i];
    std::size_t slot = kNone;
    if (tid != me) {
      // A slot a late handler may still be copying into is not reused.
      while (next_slot < c.slot_count &&
             detail::phase_of(c.slots[next_slot].state.load(std::memory_order_acquire)) == detail::kFilling)
        ++next_slot;
      if (next_slot >= c.slot_count) {
        ++beyond;
        continue;
      }
      detail::ThreadSlot& ts = c.slots[next_slot];
      ts.cap.tid = tid;
      ts.cap.valid = false;
      ts.state.store(detail::slot_state(gen, detail::kSignalled), std::memory_order_release);
      if (detail::send_stop(c, tid, gen, next_slot)) {
        ++sent;
        slot = next_slot;
      } else {
        ts.state.store(detail::slot_state(gen, detail::kAbandoned), std::memory_order_release);
      }
      ++next_slot;
    }
    s.slot_of[s.listed] = slot;
    s.tids[s.listed] = tid;  // listed <= i: the listing is compacted in place
    ++s.listed;
  }
  detail::wait_for_answers(c, sent, now + std::chrono::nanoseconds(s.cfg.thread_wait).count());

  // Each record, while the threads hold still.
  for (std::size_t i = 0; i < s.listed; ++i) {
    char* text = s.texts + i * s.cfg.text_per_thread;
    std::size_t len = 0;
    const std::size_t room = s.cfg.text_per_thread;
    const auto put_text = [&](std::string_view piece) {
      const std::size_t n = std::min(piece.size(), room - len);
      std::memcpy(text + len, piece.data(), n);
      len += n;
    };
    FixedText<32> name;
    thread_name(s.tids[i], name);
    FixedText<96> head;
    head.append("thread ").append_uint(static_cast<std::uint64_t>(s.tids[i])).append(" (").append(name.view()).append(")");
    put_text(head.view());
    const std::size_t slot = s.slot_of[i];
    if (s.tids[i] == me) {
      put_text(": running this command\n");
    } else if (slot == kNone) {
      put_text(": not stopped (no stack)\n");
    } else {
      detail::ThreadSlot& ts = c.slots[slot];
      std::uint64_t st = ts.state.load(std::memory_order_acquire);
      if (st == detail::slot_state(gen, detail::kSignalled) &&
          ts.state.compare_exchange_strong(st, detail::slot_state(gen, detail::kAbandoned), std::memory_order_acq_rel))
        st = detail::slot_state(gen, detail::kAbandoned);
      if (st == detail::slot_state(gen, detail::kFilled) && ts.cap.valid) {
        put_text("\n");
        // A context whose general registers are the thread's: what the
        // unwinder reads (no FP state: fp_dirty is never set here).
        ucontext_t uc;
        std::memset(&uc, 0, sizeof uc);
        detail::restore_to_frame(ts.cap, uc);
        console::format_backtrace(uc, s.sym, s.cfi, [&](std::string_view piece) { put_text(piece); });
      } else {
        put_text(": did not answer the stop signal (no stack)\n");
      }
    }
    s.text_len[i] = len;
  }
  detail::release_threads(c, gen);

  // Only now out: the records go over the network after every thread went on.
  for (std::size_t i = 0; i < s.listed; ++i) {
    std::string_view record(s.texts + i * s.cfg.text_per_thread, s.text_len[i]);
    if (!record.empty() && record.back() == '\n') record.remove_suffix(1);
    sink(s.tids[i], record);
  }
  if (left_out != nullptr) *left_out = beyond;
  return s.listed;
}

}  // namespace np::remote
