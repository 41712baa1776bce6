#include "netpoll/gdb/process_target.h"

#include <fcntl.h>
#include <link.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "netpoll/base/clock.h"
#include "netpoll/dump/thread_stop.h"
#include "netpoll/gdb/registers.h"

namespace np::gdb {

namespace detail = dump::detail;
using detail::ThreadCapture;
using detail::ThreadSlot;

namespace {

constexpr std::size_t kDirentBuffer = 16 * 1024;
constexpr std::size_t kAuxvMax = 4096;
constexpr std::size_t kPathMax = 4096;
constexpr std::size_t kLibrariesMax = 64 * 1024;
constexpr std::size_t kMaxLibraries = 1024;
constexpr std::uint64_t kTrapFlag = 0x100;
constexpr std::int64_t kFillGraceNs = 2'000'000;
constexpr std::int64_t kUninstallWaitNs = 200'000'000;
constexpr std::uint32_t kNoSlot = 0xffffffffu;

std::size_t align_up(std::size_t v, std::size_t a) { return (v + a - 1) / a * a; }

pid_t raw_getpid() noexcept { return static_cast<pid_t>(::syscall(SYS_getpid)); }

// Reads a small file whole into `buf`; its length (0 on any failure).
std::size_t read_small(const char* path, std::span<std::byte> buf) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::size_t at = 0;
  for (int round = 0; round < 64 && at < buf.size(); ++round) {
    const ssize_t n = ::read(fd, buf.data() + at, buf.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    at += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return at;
}

}  // namespace

struct ThreadEntry {
  pid_t tid = 0;
  std::uint32_t slot = kNoSlot;  // kNoSlot: the serving thread, or none
  bool self = false;
  bool valid = false;  // registers known
  char name[16] = {};
  std::uint8_t name_len = 0;
};

// A breakpoint gdb inserted (used) and whether its int3 is in memory now
// (armed: only while the program runs, see process_target.h).
struct Breakpoint {
  std::uint64_t addr = 0;
  std::byte orig{};
  bool used = false;
  bool armed = false;
};

struct ProcessTargetState {
  ProcessTargetConfig cfg;
  detail::StopControl ctl;
  struct sigaction old_action {};
  detail::XsaveInfo xsave;
  ThreadCapture self;
  ThreadEntry* entries = nullptr;
  std::size_t entry_room = 0;
  std::size_t count = 0;
  pid_t* tids = nullptr;
  std::size_t tid_room = 0;
  std::byte* dirents = nullptr;
  Breakpoint* bps = nullptr;
  std::size_t bp_room = 0;
  std::uint32_t gen = 0;
  std::size_t next_slot = 0;
  bool holding = false;
  StopEvent event;
  std::uint32_t without_registers = 0;
  std::uint32_t left_out = 0;
  int mem_fd = -1;
  std::uint64_t r_debug = 0;
  std::byte auxv[kAuxvMax] = {};
  std::size_t auxv_len = 0;
  char exe[kPathMax] = {};
  std::size_t exe_len = 0;
  char* libs = nullptr;  // kLibrariesMax
  std::size_t libs_len = 0;
  char* name = nullptr;  // kPathMax: a library's name being read
  char path[64] = {};
};

namespace {

using State = ProcessTargetState;

// The registers of thread `tid`: kNotFound when it is not one of the
// stopped threads, kUnsupported when its registers could not be had.
Result<ThreadCapture*> capture_of(State& s, pid_t tid) noexcept {
  for (std::size_t i = 0; i < s.count; ++i) {
    ThreadEntry& e = s.entries[i];
    if (e.tid != tid) continue;
    if (!e.valid || (!e.self && e.slot == kNoSlot)) return fail(Errc::kUnsupported);
    return e.self ? &s.self : &s.ctl.slots[e.slot].cap;
  }
  return fail(Errc::kNotFound);
}

void read_name(State& s, ThreadEntry& e) noexcept {
  // "/proc/self/task/<tid>/comm"
  char* p = s.path;
  const char head[] = "/proc/self/task/";
  std::memcpy(p, head, sizeof head - 1);
  std::size_t at = sizeof head - 1;
  char digits[12];
  int n = 0;
  for (std::uint32_t v = static_cast<std::uint32_t>(e.tid); n < 11 && (v != 0 || n == 0); v /= 10)
    digits[n++] = static_cast<char>('0' + v % 10);
  while (n > 0) p[at++] = digits[--n];
  const char tail[] = "/comm";
  std::memcpy(p + at, tail, sizeof tail);  // with its NUL
  std::byte buf[16];
  std::size_t len = read_small(p, buf);
  std::memcpy(e.name, buf, len);
  while (len > 0 && (e.name[len - 1] == '\n' || e.name[len - 1] == '\0')) --len;
  e.name_len = static_cast<std::uint8_t>(len);
}

bool slot_busy(const ThreadSlot& slot) noexcept {
  const auto phase = detail::phase_of(slot.state.load(std::memory_order_acquire));
  return phase == detail::kFilling || phase == detail::kFilled || phase == detail::kSignalled;
}

// A slot no thread is using (one still being read by a thread let go
// before is skipped).
std::uint32_t free_slot(State& s) noexcept {
  for (std::size_t k = 0; k < s.ctl.slot_count; ++k) {
    const std::size_t i = (s.next_slot + k) % s.ctl.slot_count;
    if (!slot_busy(s.ctl.slots[i])) {
      s.next_slot = i + 1;
      return static_cast<std::uint32_t>(i);
    }
  }
  return kNoSlot;
}

Result<std::size_t> safe_read(std::uint64_t addr, std::span<std::byte> out) noexcept {
  if (out.empty()) return 0;
  iovec local{out.data(), out.size()};
  iovec remote{reinterpret_cast<void*>(addr), out.size()};
  const long n = ::syscall(SYS_process_vm_readv, raw_getpid(), &local, 1, &remote, 1, 0);
  if (n <= 0) return fail(Errc::kIo);
  return static_cast<std::size_t>(n);
}

bool read_u64(std::uint64_t addr, std::uint64_t& v) noexcept {
  std::byte b[8];
  auto n = safe_read(addr, b);
  if (!n || *n != 8) return false;
  std::memcpy(&v, b, 8);
  return true;
}

Result<void> poke(const State& s, std::uint64_t addr, std::span<const std::byte> in) noexcept {
  if (s.mem_fd < 0) return fail(Errc::kClosed);
  if (addr > static_cast<std::uint64_t>(INT64_MAX) - in.size()) return fail(Errc::kIo);
  std::size_t at = 0;
  for (int round = 0; round < 16 && at < in.size(); ++round) {
    const ssize_t n = ::pwrite(s.mem_fd, in.data() + at, in.size() - at, static_cast<off_t>(addr + at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(Errc::kIo);
    at += static_cast<std::size_t>(n);
  }
  if (at != in.size()) return fail(Errc::kIo);
  return {};
}

// Appends to the libraries document; false when it is full.
struct Doc {
  char* buf;
  std::size_t room;
  std::size_t len = 0;
  bool full = false;
  void put(std::string_view s) noexcept {
    for (const char c : s) {
      if (len < room) {
        buf[len++] = c;
      } else {
        full = true;
      }
    }
  }
  void hex(std::uint64_t v) noexcept {
    static constexpr char k[] = "0123456789abcdef";
    char t[16];
    int n = 0;
    do {
      t[n++] = k[v & 15];
      v >>= 4;
    } while (v != 0);
    put("0x");
    while (n > 0) put(std::string_view(&t[--n], 1));
  }
  void text(std::string_view s) noexcept {
    for (const char c : s) {
      switch (c) {
        case '&': put("&amp;"); break;
        case '<': put("&lt;"); break;
        case '>': put("&gt;"); break;
        case '"': put("&quot;"); break;
        case '\'': put("&apos;"); break;
        default: put(std::string_view(&c, 1));
      }
    }
  }
};

// The dynamic linker's list of loaded objects (struct r_debug's r_map,
// then struct link_map: l_addr, l_name, l_ld, l_next, l_prev), read
// without trusting a pointer of it.
std::size_t make_libraries(State& s) noexcept {
  Doc d{s.libs, kLibrariesMax};
  std::uint64_t lm = 0;
  if (s.r_debug == 0 || !read_u64(s.r_debug + 8, lm)) lm = 0;
  d.put("<library-list-svr4 version=\"1.0\"");
  if (lm != 0) {
    d.put(" main-lm=\"");
    d.hex(lm);
    d.put("\"");
  }
  d.put(">");
  std::uint64_t prev = 0;
  for (std::size_t i = 0; i < kMaxLibraries && lm != 0; ++i) {
    std::uint64_t f[5] = {};
    std::byte raw[40];
    auto n = safe_read(lm, raw);
    if (!n || *n != sizeof raw) break;
    std::memcpy(f, raw, sizeof raw);
    const std::uint64_t l_addr = f[0], l_name = f[1], l_ld = f[2], l_next = f[3], l_prev = f[4];
    if (l_prev != prev) break;  // not the list we walked into: stop rather than wander
    std::size_t name_len = 0;
    if (l_name != 0) {
      // The name in pieces up to its NUL (a piece may end at a page's end).
      for (int piece = 0; piece < 32 && name_len < kPathMax; ++piece) {
        const std::size_t want = std::min<std::size_t>(256, kPathMax - name_len);
        auto got = safe_read(l_name + name_len, std::as_writable_bytes(std::span(s.name + name_len, want)));
        if (!got) break;
        const void* nul = std::memchr(s.name + name_len, 0, *got);
        if (nul != nullptr) {
          name_len = static_cast<std::size_t>(static_cast<const char*>(nul) - s.name);
          break;
        }
        name_len += *got;
      }
    }
    // The first entry is the program itself (main-lm); nameless ones are
    // not files gdb can open.
    if (i > 0 && name_len > 0) {
      d.put("<library name=\"");
      d.text(std::string_view(s.name, std::min(name_len, kPathMax)));
      d.put("\" lm=\"");
      d.hex(lm);
      d.put("\" l_addr=\"");
      d.hex(l_addr);
      d.put("\" l_ld=\"");
      d.hex(l_ld);
      d.put("\" lmid=\"0x0\"/>");  // the default namespace (gdb 13 wants the attribute)
    }
    prev = lm;
    lm = l_next;
  }
  d.put("</library-list-svr4>\n");
  return d.full ? 0 : d.len;
}

std::size_t slice(std::string_view whole, std::uint64_t offset, std::span<char> out) noexcept {
  if (offset >= whole.size()) return 0;
  const std::size_t n = std::min<std::size_t>(out.size(), whole.size() - static_cast<std::size_t>(offset));
  std::memcpy(out.data(), whole.data() + offset, n);
  return n;
}

}  // namespace

SetupResult<std::unique_ptr<ProcessTarget>> ProcessTarget::setup(const ProcessTargetConfig& cfg) {
  if (cfg.max_threads == 0 || cfg.max_threads > 4096)
    return setup_error(Errc::kInvalidArgument, "the gdb stub shows 1 to 4096 threads");
  if (cfg.max_breakpoints == 0 || cfg.max_breakpoints > 4096)
    return setup_error(Errc::kInvalidArgument, "the gdb stub keeps 1 to 4096 breakpoints");
  if (cfg.thread_wait.count() <= 0) return setup_error(Errc::kInvalidArgument, "the thread wait must be positive");
  const detail::XsaveInfo x = detail::xsave_info();
  const std::size_t fp_room = align_up(std::max(x.max_size, dump::kFxsaveSize), 64);
  // Twice the slots: a thread let go may still be reading its slot when
  // the next stop comes.
  const std::size_t slots = 2 * cfg.max_threads;
  const std::size_t tid_room = cfg.max_threads + 2;
  const std::size_t bytes = sizeof(ProcessTargetState) + sizeof(ThreadSlot) * slots + fp_room * (slots + 1) +
                            sizeof(ThreadEntry) * cfg.max_threads + sizeof(pid_t) * tid_room + kDirentBuffer +
                            sizeof(Breakpoint) * cfg.max_breakpoints + kLibrariesMax + kPathMax + 16 * 64;
  auto region = GuardedRegion::map(bytes, "the gdb stub's target");
  if (!region) return std::unexpected(region.error());
  auto* s = region->make<ProcessTargetState>();
  auto* slot_array = region->make_array<ThreadSlot>(slots);
  auto* fp = static_cast<std::byte*>(region->take(fp_room * (slots + 1), 64));
  if (s == nullptr || slot_array == nullptr || fp == nullptr)
    return setup_error(Errc::kNoBuffer, "the gdb stub's tables do not fit their mapping");
  s->entries = region->make_array<ThreadEntry>(cfg.max_threads);
  s->tids = region->make_array<pid_t>(tid_room);
  s->dirents = static_cast<std::byte*>(region->take(kDirentBuffer, 8));
  s->bps = region->make_array<Breakpoint>(cfg.max_breakpoints);
  s->libs = static_cast<char*>(region->take(kLibrariesMax, 1));
  s->name = static_cast<char*>(region->take(kPathMax, 1));
  if (s->entries == nullptr || s->tids == nullptr || s->dirents == nullptr || s->bps == nullptr ||
      s->libs == nullptr || s->name == nullptr)
    return setup_error(Errc::kNoBuffer, "the gdb stub's tables do not fit their mapping");
  // Touch every page now: the crash path finds them there.
  std::memset(fp, 0, fp_room * (slots + 1));
  std::memset(s->libs, 0, kLibrariesMax);
  std::memset(s->name, 0, kPathMax);
  std::memset(s->dirents, 0, kDirentBuffer);
  s->cfg = cfg;
  s->entry_room = cfg.max_threads;
  s->tid_room = tid_room;
  s->bp_room = cfg.max_breakpoints;
  s->xsave = x;
  s->self.fp = fp;
  for (std::size_t i = 0; i < slots; ++i) slot_array[i].cap.fp = fp + fp_room * (i + 1);
  s->ctl.signal = cfg.stop_signal;
  s->ctl.xcr0 = x.xcr0;
  s->ctl.fp_capacity = fp_room;
  s->ctl.slots = slot_array;
  s->ctl.slot_count = slots;
  s->ctl.resume_with_capture = true;
  s->r_debug = reinterpret_cast<std::uint64_t>(&_r_debug);
  s->auxv_len = read_small("/proc/self/auxv", s->auxv);
  const ssize_t n = ::readlink("/proc/self/exe", s->exe, sizeof s->exe - 1);
  s->exe_len = n > 0 ? static_cast<std::size_t>(n) : 0;
  s->mem_fd = ::open("/proc/self/mem", O_RDWR | O_CLOEXEC);
  if (s->mem_fd < 0)
    return setup_error(Errc::kIo, std::string("cannot open /proc/self/mem for breakpoints: ") + std::strerror(errno));

  std::unique_ptr<ProcessTarget> t(new ProcessTarget());
  t->region_ = std::move(*region);
  t->s_ = s;
  if (auto r = detail::install_stop_handler(s->ctl, s->old_action); !r) {
    ::close(s->mem_fd);
    t->s_ = nullptr;
    return std::unexpected(r.error());
  }
  return t;
}

ProcessTarget::~ProcessTarget() {
  if (s_ == nullptr) return;
  remove_all_breakpoints();
  release();
  detail::uninstall_stop_handler(s_->ctl, s_->old_action, kUninstallWaitNs);
  if (s_->mem_fd >= 0) ::close(s_->mem_fd);
}

Result<void> ProcessTarget::stop(int signal, const ucontext_t& ctx, std::int64_t hold_until_ns) noexcept {
  State& s = *s_;
  if (s.holding) release();
  s.gen = s.gen + 1 == 0 ? 1 : s.gen + 1;
  const std::uint32_t gen = s.gen;
  detail::StopControl& c = s.ctl;
  c.answered.store(0, std::memory_order_relaxed);
  c.hold_until_ns.store(hold_until_ns, std::memory_order_relaxed);
  c.generation.store(gen, std::memory_order_release);
  s.holding = true;
  const pid_t me = detail::current_tid();
  s.event = StopEvent{signal, me, false};
  s.self.tid = me;
  detail::capture_from_frame(s.self, ctx, c.fp_capacity, c.xcr0);
  s.self.regs[dump::Reg::kEflags] &= ~kTrapFlag;  // a step is over; gdb asks for the next
  s.count = 0;
  s.without_registers = 0;
  s.left_out = 0;
  auto total = detail::list_threads(std::span<pid_t>(s.tids, s.tid_room), std::span(s.dirents, kDirentBuffer));
  if (!total) {
    // Without the list, at least the serving thread.
    ThreadEntry& e = s.entries[s.count++];
    e = ThreadEntry{};
    e.tid = me;
    e.self = true;
    e.valid = true;
    read_name(s, e);
    return fail(total.error());
  }
  std::uint32_t sent = 0;
  const std::size_t listed = std::min(*total, s.tid_room);
  if (*total > listed) s.left_out += static_cast<std::uint32_t>(*total - listed);
  for (std::size_t i = 0; i < listed; ++i) {
    const pid_t tid = s.tids[i];
    if (s.count >= s.entry_room) {
      ++s.left_out;
      continue;
    }
    ThreadEntry& e = s.entries[s.count];
    e = ThreadEntry{};
    e.tid = tid;
    if (tid == me) {
      e.self = true;
      e.valid = true;
      ++s.count;
      continue;
    }
    const std::uint32_t idx = free_slot(s);
    if (idx != kNoSlot) {
      ThreadSlot& slot = c.slots[idx];
      slot.cap.tid = tid;
      slot.cap.valid = false;
      slot.cap.fp_len = 0;
      slot.cap.fp_dirty = false;
      slot.state.store(detail::slot_state(gen, detail::kSignalled), std::memory_order_release);
      const auto r = detail::send_stop(c, tid, gen, idx);
      if (!r) {
        slot.state.store(detail::slot_state(gen, detail::kAbandoned), std::memory_order_release);
        if (r.error() == Errc::kNotFound) continue;  // it ended
      } else {
        e.slot = idx;
        ++sent;
      }
    }
    ++s.count;
  }
  const std::int64_t wait_until =
      std::min(hold_until_ns, monotonic_ns() + std::chrono::nanoseconds(s.cfg.thread_wait).count());
  detail::wait_for_answers(c, sent, wait_until);
  for (std::size_t i = 0; i < s.count; ++i) {
    ThreadEntry& e = s.entries[i];
    read_name(s, e);
    if (e.self) continue;
    if (e.slot == kNoSlot) {
      ++s.without_registers;
      continue;
    }
    ThreadSlot& slot = c.slots[e.slot];
    std::uint64_t st = slot.state.load(std::memory_order_acquire);
    if (st == detail::slot_state(gen, detail::kSignalled) &&
        slot.state.compare_exchange_strong(st, detail::slot_state(gen, detail::kAbandoned), std::memory_order_acq_rel))
      st = detail::slot_state(gen, detail::kAbandoned);
    const std::int64_t grace = monotonic_ns() + kFillGraceNs;
    for (int round = 0; round < 1000 && st == detail::slot_state(gen, detail::kFilling); ++round) {
      if (monotonic_ns() >= grace) break;
      nap(std::chrono::microseconds(50));
      st = slot.state.load(std::memory_order_acquire);
    }
    e.valid = st == detail::slot_state(gen, detail::kFilled);
    if (!e.valid) ++s.without_registers;
  }
  return {};
}

void ProcessTarget::stopped_at_breakpoint(std::uint64_t addr) noexcept {
  s_->self.regs[dump::Reg::kRip] = addr;
  s_->event.breakpoint = true;
}

void ProcessTarget::resume(const Resume& how, ucontext_t& ctx) noexcept {
  State& s = *s_;
  for (std::size_t i = 0; i < s.count; ++i) {
    const ThreadEntry& e = s.entries[i];
    ThreadCapture* cap = e.self ? &s.self : e.slot != kNoSlot ? &s.ctl.slots[e.slot].cap : nullptr;
    if (cap == nullptr || !e.valid) continue;
    auto& fl = cap->regs[dump::Reg::kEflags];
    fl = e.tid == how.step ? (fl | kTrapFlag) : (fl & ~kTrapFlag);
  }
  arm_breakpoints();
  detail::restore_to_frame(s.self, ctx);
  release();
}

void ProcessTarget::release() noexcept {
  State& s = *s_;
  if (!s.holding) return;
  detail::release_threads(s.ctl, s.gen);
  s.holding = false;
}

bool ProcessTarget::has_breakpoint(std::uint64_t addr) const noexcept {
  for (std::size_t i = 0; i < s_->bp_room; ++i) {
    if (s_->bps[i].used && s_->bps[i].armed && s_->bps[i].addr == addr) return true;
  }
  return false;
}

void ProcessTarget::arm_breakpoints() noexcept {
  static constexpr std::byte kInt3{0xcc};
  for (std::size_t i = 0; i < s_->bp_room; ++i) {
    Breakpoint& b = s_->bps[i];
    if (!b.used || b.armed) continue;
    auto n = safe_read(b.addr, std::span(&b.orig, 1));
    if (n && poke(*s_, b.addr, std::span(&kInt3, 1))) b.armed = true;
  }
}

void ProcessTarget::disarm_breakpoints() noexcept {
  for (std::size_t i = 0; i < s_->bp_room; ++i) {
    Breakpoint& b = s_->bps[i];
    if (!b.armed) continue;
    static_cast<void>(poke(*s_, b.addr, std::span(&b.orig, 1)));
    b.armed = false;
  }
}

void ProcessTarget::remove_all_breakpoints() noexcept {
  disarm_breakpoints();
  for (std::size_t i = 0; i < s_->bp_room; ++i) s_->bps[i].used = false;
}

std::uint32_t ProcessTarget::threads_without_registers() const noexcept { return s_->without_registers; }
std::uint32_t ProcessTarget::threads_left_out() const noexcept { return s_->left_out; }
std::string_view ProcessTarget::program() const noexcept { return {s_->exe, s_->exe_len}; }

pid_t ProcessTarget::pid() const noexcept { return raw_getpid(); }
std::size_t ProcessTarget::thread_count() const noexcept { return s_->count; }
pid_t ProcessTarget::thread_id(std::size_t i) const noexcept { return i < s_->count ? s_->entries[i].tid : 0; }
std::string_view ProcessTarget::thread_name(std::size_t i) const noexcept {
  if (i >= s_->count) return {};
  return {s_->entries[i].name, s_->entries[i].name_len};
}
StopEvent ProcessTarget::stop_event() const noexcept { return s_->event; }

Result<std::size_t> ProcessTarget::read_register(pid_t tid, int regno, std::span<std::byte> out) noexcept {
  auto cap = capture_of(*s_, tid);
  if (!cap) return fail(cap.error());
  const std::size_t n = gdb::read_register(**cap, regno, out);
  if (n == 0) return fail(Errc::kUnsupported);
  return n;
}

Result<void> ProcessTarget::write_register(pid_t tid, int regno, std::span<const std::byte> in) noexcept {
  auto cap = capture_of(*s_, tid);
  if (!cap) return fail(cap.error());
  return gdb::write_register(**cap, regno, in);
}

Result<std::size_t> ProcessTarget::read_memory(std::uint64_t addr, std::span<std::byte> out) noexcept {
  auto n = safe_read(addr, out);
  if (!n) return n;
  // gdb sees the program's bytes, not our int3s.
  for (std::size_t i = 0; i < s_->bp_room; ++i) {
    const Breakpoint& b = s_->bps[i];
    if (b.armed && b.addr >= addr && b.addr - addr < *n) out[b.addr - addr] = b.orig;
  }
  return n;
}

Result<void> ProcessTarget::write_memory(std::uint64_t addr, std::span<const std::byte> in) noexcept {
  if (auto r = poke(*s_, addr, in); !r) return r;
  // A write over one of our int3s changes the byte under it; the int3 stays.
  static constexpr std::byte kInt3{0xcc};
  for (std::size_t i = 0; i < s_->bp_room; ++i) {
    Breakpoint& b = s_->bps[i];
    if (b.armed && b.addr >= addr && b.addr - addr < in.size()) {
      b.orig = in[b.addr - addr];
      static_cast<void>(poke(*s_, b.addr, std::span(&kInt3, 1)));
    }
  }
  return {};
}

Result<void> ProcessTarget::insert_breakpoint(std::uint64_t addr) noexcept {
  for (std::size_t i = 0; i < s_->bp_room; ++i) {
    if (s_->bps[i].used && s_->bps[i].addr == addr) return {};
  }
  Breakpoint* slot = nullptr;
  for (std::size_t i = 0; i < s_->bp_room && slot == nullptr; ++i) {
    if (!s_->bps[i].used) slot = &s_->bps[i];
  }
  if (slot == nullptr) return fail(Errc::kNoBuffer);
  // Its int3 goes in when the program runs on; that it can, is checked
  // now: the byte is read and written back unchanged.
  std::byte orig{};
  if (auto n = safe_read(addr, std::span(&orig, 1)); !n) return fail(Errc::kIo);
  if (auto w = poke(*s_, addr, std::span(&orig, 1)); !w) return w;
  *slot = Breakpoint{addr, orig, true, false};
  return {};
}

Result<void> ProcessTarget::remove_breakpoint(std::uint64_t addr) noexcept {
  for (std::size_t i = 0; i < s_->bp_room; ++i) {
    Breakpoint& b = s_->bps[i];
    if (!b.used || b.addr != addr) continue;
    if (b.armed) {
      if (auto w = poke(*s_, addr, std::span(&b.orig, 1)); !w) return w;
    }
    b = Breakpoint{};
  }
  return {};
}

Result<std::size_t> ProcessTarget::read_object(XferObject object, std::string_view, std::uint64_t offset,
                                               std::span<char> out) noexcept {
  State& s = *s_;
  switch (object) {
    case XferObject::kAuxv:
      return slice(std::string_view(reinterpret_cast<const char*>(s.auxv), s.auxv_len), offset, out);
    case XferObject::kExecFile:
      return slice(std::string_view(s.exe, s.exe_len), offset, out);
    case XferObject::kLibrariesSvr4:
      // Made again when gdb starts reading it (offset 0), served from
      // there for the rest.
      if (offset == 0) s.libs_len = make_libraries(s);
      if (s.libs_len == 0) return fail(Errc::kTooBig);
      return slice(std::string_view(s.libs, s.libs_len), offset, out);
  }
  return fail(Errc::kInvalidArgument);
}

}  // namespace np::gdb
