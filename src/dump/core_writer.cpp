#include "netpoll/dump/core_writer.h"

#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <string_view>

#include "netpoll/base/clock.h"
#include "netpoll/dump/elf_core.h"
#include "netpoll/dump/proc_maps.h"
#include "proc_file.h"
#include "netpoll/dump/thread_stop.h"

namespace np::dump {

using detail::ThreadCapture;
using detail::ThreadSlot;

namespace {

constexpr std::size_t kLineBuffer = 64 * 1024;  // one read(2) of smaps; a line longer than this is cut
constexpr std::size_t kIoBuffer = 64 * 1024;    // memory read per process_vm_readv, and the notes' staging
constexpr std::size_t kAuxvMax = 4096;          // the auxiliary vector takes a few hundred bytes
constexpr std::size_t kPathMax = 4096 + 64;     // PATH_MAX and " (deleted)"
constexpr std::size_t kPagemapWindow = 512;     // pages whose presence one pread(2) of pagemap tells
constexpr std::size_t kDirentBuffer = 4096;
// A live dump's caller: its stack from the captured stack pointer up, as
// it was then (its frames in begin() are gone by the time emit() reads
// memory).
constexpr std::size_t kStackCopy = 32 * 1024;
// Names of mapped files, for NT_FILE: a mapping's name repeats the one
// before it most of the time (a library's segments), and is stored once.
constexpr std::size_t kNameBytesPerMapping = 128;
constexpr std::size_t kMaxProgramHeaders = 0xfffe;  // e_phnum is 16 bits; 0xffff means "see section 0"
constexpr std::int64_t kFillGraceNs = 20'000'000;   // a handler caught copying its registers gets this long
constexpr std::int64_t kUninstallWaitNs = 1'000'000'000;
// In the writer's list of other threads: a thread without registers. Its
// slot is not read, nor written (a late handler may still be copying).
constexpr std::uint32_t kNoRegisters = 1u << 31;

struct Mapping {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  std::uint64_t file_pos = 0;     // offset in the mapped file, bytes
  std::uint64_t dump_size = 0;    // p_filesz
  std::uint64_t core_offset = 0;  // p_offset
  std::uint64_t send_bound = 0;   // at most this many of its bytes go to the sink
  std::uint32_t name_at = 0;
  std::uint32_t name_len = 0;  // 0: no NT_FILE entry
  std::uint32_t flags = 0;     // PF_R | PF_W | PF_X
  bool holes_are_zero = false;  // private anonymous memory: a page never touched reads as zeros
};

enum class Stage : std::uint8_t { kIdle, kBegun };

// A byte stream to the sink through the staging buffer: contiguous from
// `base`, flushed when the buffer fills. The first failure sticks.
class Stream {
 public:
  Stream(CoreSink sink, std::span<std::byte> buf, std::int64_t deadline_ns, CoreSummary& summary) noexcept
      : sink_(sink), buf_(buf), deadline_(deadline_ns), summary_(summary) {}
  void put(const void* p, std::size_t n) noexcept {
    const auto* b = static_cast<const std::byte*>(p);
    while (n > 0 && ok()) {
      const std::size_t k = std::min(n, buf_.size() - len_);
      std::memcpy(buf_.data() + len_, b, k);
      len_ += k;
      b += k;
      n -= k;
      if (len_ == buf_.size()) flush();
    }
  }
  void put(std::span<const std::byte> b) noexcept { put(b.data(), b.size()); }
  void zeros(std::size_t n) noexcept {
    while (n > 0 && ok()) {
      const std::size_t k = std::min(n, buf_.size() - len_);
      std::memset(buf_.data() + len_, 0, k);
      len_ += k;
      n -= k;
      if (len_ == buf_.size()) flush();
    }
  }
  void pad4(std::size_t n) noexcept { zeros(align_up(n, 4) - n); }
  void flush() noexcept {
    if (len_ == 0 || !ok()) return;
    if (monotonic_ns() >= deadline_) {
      error_ = Errc::kTimeout;
      return;
    }
    if (!sink_(base_, std::span<const std::byte>(buf_.data(), len_))) {
      error_ = Errc::kClosed;
      return;
    }
    summary_.bytes_sent += len_;
    base_ += len_;
    len_ = 0;
  }
  std::uint64_t position() const noexcept { return base_ + len_; }
  bool ok() const noexcept { return error_ == Errc{}; }
  Errc error() const noexcept { return error_; }

 private:
  CoreSink sink_;
  std::span<std::byte> buf_;
  std::int64_t deadline_;
  CoreSummary& summary_;
  std::uint64_t base_ = 0;
  std::size_t len_ = 0;
  Errc error_{};
};

pid_t raw_getpid() noexcept { return static_cast<pid_t>(::syscall(SYS_getpid)); }

// Reads `len` bytes at `addr` of our own memory without touching it
// directly: a page that cannot be read is an error value, not a fault.
// The bytes read (short at the first unreadable page), or -1.
long read_own_memory(std::byte* dst, std::uint64_t addr, std::size_t len) noexcept {
  iovec local{dst, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return static_cast<long>(::syscall(SYS_process_vm_readv, raw_getpid(), &local, 1, &remote, 1, 0));
}

bool all_zero(const std::byte* p, std::size_t n) noexcept {
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w != 0) return false;
  }
  return true;
}

std::size_t thread_fp_notes_size(const ThreadCapture& c, std::size_t layout_components) noexcept {
  if (!c.valid || c.fp_len < kFxsaveSize) return 0;
  std::size_t n = note_size(kOwnerCore, kFxsaveSize);
  if (c.fp_len > kFxsaveSize) {
    n += note_size(kOwnerLinux, c.fp_len);
    if (layout_components > 0) n += note_size(kOwnerLinux, kXsaveLayoutEntrySize * layout_components);
  }
  return n;
}

}  // namespace

struct CoreWriterState {
  CoreWriterConfig cfg;
  std::size_t page = 4096;
  detail::StopControl ctl;
  struct sigaction old_action {};
  std::atomic<bool> busy{false};
  Stage stage = Stage::kIdle;
  std::uint32_t gen = 0;
  bool holding = false;  // threads may be held for `gen`

  detail::XsaveInfo xsave;
  ThreadCapture self;          // the calling thread
  std::byte* stack_copy = nullptr;  // kStackCopy: a live dump's caller's stack
  std::uint64_t stack_copy_at = 0;
  std::size_t stack_copy_len = 0;
  std::uint32_t* order = nullptr;  // slots of the other threads, in the order listed
  std::size_t listed = 0;
  pid_t* tids = nullptr;  // one listing of /proc/self/task
  std::size_t tid_room = 0;
  std::byte* dirents = nullptr;

  Mapping* maps = nullptr;
  std::size_t map_count = 0;
  char* names = nullptr;
  std::size_t names_room = 0;
  std::size_t names_used = 0;
  char* line = nullptr;  // kLineBuffer
  char* path = nullptr;  // kPathMax: the path of the mapping being parsed
  std::byte* io = nullptr;  // kIoBuffer, page-aligned
  std::uint64_t* pagemap = nullptr;  // kPagemapWindow

  std::byte auxv[kAuxvMax] = {};
  std::size_t auxv_len = 0;
  std::byte siginfo[kSiginfoSize] = {};
  int signal = 0;
  PrPsInfo psinfo;
  std::uint32_t filter = kDefaultCoredumpFilter;
  bool smaps = false;

  // The layout.
  std::uint64_t notes_offset = 0;
  std::uint64_t notes_size = 0;
  std::size_t file_count = 0;
  std::size_t file_name_bytes = 0;
  CoreSummary summary;
};

namespace {

using State = CoreWriterState;

// --- begin(): the threads --------------------------------------------------

// The i-th other thread as the core shows it: a copy of its capture, or
// only its id when it has no registers.
ThreadCapture other_thread(const State& s, std::size_t i) noexcept {
  const ThreadCapture& c = s.ctl.slots[s.order[i] & ~kNoRegisters].cap;
  if ((s.order[i] & kNoRegisters) == 0) return c;
  ThreadCapture none;
  none.tid = c.tid;  // written by the writer alone, before the signal
  return none;
}

bool already_listed(const State& s, pid_t tid) noexcept {
  for (std::size_t i = 0; i < s.listed; ++i) {
    if (s.ctl.slots[s.order[i] & ~kNoRegisters].cap.tid == tid) return true;
  }
  return false;
}

Result<void> stop_other_threads(State& s, pid_t me, std::int64_t deadline_ns) noexcept {
  detail::StopControl& c = s.ctl;
  s.gen = s.gen + 1 == 0 ? 1 : s.gen + 1;
  const std::uint32_t gen = s.gen;
  c.answered.store(0, std::memory_order_relaxed);
  c.hold_until_ns.store(deadline_ns + std::chrono::nanoseconds(s.cfg.hold_after).count(), std::memory_order_relaxed);
  c.generation.store(gen, std::memory_order_release);
  s.holding = true;
  s.listed = 0;
  std::size_t next_slot = 0;
  std::uint32_t sent = 0;
  std::size_t last_total = 0;
  const std::int64_t wait_until =
      std::min(deadline_ns, monotonic_ns() + std::chrono::nanoseconds(s.cfg.thread_wait).count());
  // A thread not yet stopped may start another: list again until a
  // listing finds nobody new (a few rounds at most).
  for (int pass = 0; pass < 4; ++pass) {
    auto total = detail::list_threads(std::span<pid_t>(s.tids, s.tid_room), std::span(s.dirents, kDirentBuffer));
    if (!total) {
      if (pass == 0) return fail(total.error());
      break;
    }
    last_total = *total;
    bool found_new = false;
    for (std::size_t i = 0; i < std::min(*total, s.tid_room); ++i) {
      const pid_t tid = s.tids[i];
      if (tid == me || already_listed(s, tid)) continue;
      found_new = true;
      // A slot a late handler may still be copying into is not reused.
      while (next_slot < c.slot_count &&
             detail::phase_of(c.slots[next_slot].state.load(std::memory_order_acquire)) == detail::kFilling)
        ++next_slot;
      if (next_slot >= c.slot_count) break;
      ThreadSlot& slot = c.slots[next_slot];
      slot.cap.tid = tid;
      slot.cap.valid = false;
      slot.cap.fp_len = 0;
      slot.state.store(detail::slot_state(gen, detail::kSignalled), std::memory_order_release);
      const auto r = detail::send_stop(c, tid, gen, next_slot);
      if (!r) {
        slot.state.store(detail::slot_state(gen, detail::kAbandoned), std::memory_order_release);
        if (r.error() == Errc::kNotFound) {
          ++next_slot;
          continue;  // it ended: not a thread of the core
        }
      } else {
        ++sent;
      }
      s.order[s.listed++] = static_cast<std::uint32_t>(next_slot++) | (r ? 0 : kNoRegisters);
    }
    if (!found_new || monotonic_ns() >= wait_until) break;
  }
  detail::wait_for_answers(c, sent, wait_until);
  // Take back every slot whose thread did not answer; only a filled slot
  // is read.
  for (std::size_t i = 0; i < s.listed; ++i) {
    if ((s.order[i] & kNoRegisters) != 0) {  // the signal could not be queued
      ++s.summary.threads_without_registers;
      continue;
    }
    ThreadSlot& slot = c.slots[s.order[i]];
    std::uint64_t st = slot.state.load(std::memory_order_acquire);
    if (st == detail::slot_state(gen, detail::kSignalled) &&
        slot.state.compare_exchange_strong(st, detail::slot_state(gen, detail::kAbandoned), std::memory_order_acq_rel))
      st = detail::slot_state(gen, detail::kAbandoned);
    if (st == detail::slot_state(gen, detail::kFilling)) {
      const std::int64_t grace = monotonic_ns() + kFillGraceNs;
      for (int round = 0; round < 10'000 && st == detail::slot_state(gen, detail::kFilling); ++round) {
        if (monotonic_ns() >= grace) break;
        nap(std::chrono::microseconds(100));
        st = slot.state.load(std::memory_order_acquire);
      }
    }
    if (st != detail::slot_state(gen, detail::kFilled)) {
      s.order[i] |= kNoRegisters;
      ++s.summary.threads_without_registers;
    }
  }
  const std::size_t others = last_total > 0 ? last_total - 1 : 0;  // the listing counts us too
  s.summary.threads_left_out = others > s.listed ? static_cast<std::uint32_t>(others - s.listed) : 0;
  s.summary.threads = static_cast<std::uint32_t>(1 + s.listed);
  if (monotonic_ns() >= deadline_ns) return fail(Errc::kTimeout);
  return {};
}

// --- begin(): the process --------------------------------------------------

void read_process_facts(State& s, pid_t pid) noexcept {
  std::byte small[64];
  s.filter = kDefaultCoredumpFilter;
  if (auto n = detail::read_file("/proc/self/coredump_filter", small)) {
    const std::string_view text(reinterpret_cast<const char*>(small), *n);
    if (auto f = parse_coredump_filter(text)) s.filter = *f;
  }
  s.auxv_len = 0;
  if (auto n = detail::read_file("/proc/self/auxv", s.auxv)) s.auxv_len = *n;

  PrPsInfo& p = s.psinfo;
  p = PrPsInfo{};
  if (auto n = detail::read_file("/proc/self/comm", small)) {
    std::size_t len = std::min(*n, p.fname.size() - 1);
    const auto* c = reinterpret_cast<const char*>(small);
    for (std::size_t i = 0; i < len; ++i) {
      if (c[i] == '\n') {
        len = i;
        break;
      }
      p.fname[i] = c[i];
    }
  }
  std::memcpy(s.summary.program, p.fname.data(), sizeof s.summary.program);
  s.summary.program[sizeof s.summary.program - 1] = '\0';
  // The command line, arguments joined by spaces, cut to fit with a NUL
  // at the end, as the kernel writes it.
  std::byte args[sizeof p.psargs - 1];
  if (auto n = detail::read_file("/proc/self/cmdline", args)) {
    std::size_t len = *n;
    while (len > 0 && args[len - 1] == std::byte{0}) --len;
    for (std::size_t i = 0; i < len; ++i) {
      const char ch = static_cast<char>(args[i]);
      p.psargs[i] = ch == '\0' ? ' ' : ch;
    }
  }
  p.pid = pid;
  p.ppid = static_cast<std::int32_t>(::syscall(SYS_getppid));
  p.pgrp = static_cast<std::int32_t>(::syscall(SYS_getpgid, 0));
  p.sid = static_cast<std::int32_t>(::syscall(SYS_getsid, 0));
  p.uid = static_cast<std::uint32_t>(::syscall(SYS_getuid));
  p.gid = static_cast<std::uint32_t>(::syscall(SYS_getgid));
  // The raw system call answers 20 - nice (never negative).
  const long prio = ::syscall(SYS_getpriority, 0 /* PRIO_PROCESS */, 0);
  if (prio >= 0) p.nice = static_cast<std::int8_t>(20 - prio);
}

// --- begin(): the mappings -------------------------------------------------

// Keeps a file's name for NT_FILE; consecutive mappings of one file share
// one copy. False when the pool is full.
bool keep_name(State& s, Mapping& m, std::string_view name) noexcept {
  if (name.empty() || name.size() > 0xffffffu) return false;
  if (s.map_count > 0) {
    const Mapping& prev = s.maps[s.map_count - 1];
    if (prev.name_len == name.size() && std::string_view(s.names + prev.name_at, prev.name_len) == name) {
      m.name_at = prev.name_at;
      m.name_len = prev.name_len;
      return true;
    }
  }
  if (s.names_room - s.names_used < name.size()) return false;
  std::memcpy(s.names + s.names_used, name.data(), name.size());
  m.name_at = static_cast<std::uint32_t>(s.names_used);
  m.name_len = static_cast<std::uint32_t>(name.size());
  s.names_used += name.size();
  return true;
}

struct SmapsSizes {
  std::uint64_t rss = 0, swap = 0, anonymous = 0;
};

void add_mapping(State& s, const MappingFacts& facts, const SmapsSizes& sizes) noexcept {
  if (s.map_count >= s.cfg.max_mappings) {
    ++s.summary.mappings_left_out;
    return;
  }
  const MapsLine& l = facts.line;
  Mapping m;
  m.start = l.start;
  m.end = l.end;
  m.file_pos = l.offset;
  m.flags = (l.read ? kPfR : 0) | (l.write ? kPfW : 0) | (l.exec ? kPfX : 0);
  const MappingKind kind = classify_path(l.path);
  m.holes_are_zero = kind == MappingKind::kAnonymous && !l.shared;
  switch (dump_extent(facts, s.filter)) {
    case DumpExtent::kNothing:
      break;
    case DumpExtent::kWhole:
      m.dump_size = l.end - l.start;
      break;
    case DumpExtent::kFirstPageIfElf: {
      std::byte magic[4];
      if (read_own_memory(magic, l.start, sizeof magic) == static_cast<long>(sizeof magic) && magic[0] == std::byte{0x7f} &&
          magic[1] == std::byte{'E'} && magic[2] == std::byte{'L'} && magic[3] == std::byte{'F'})
        m.dump_size = std::min<std::uint64_t>(s.page, l.end - l.start);
      break;
    }
  }
  m.send_bound = m.dump_size;
  // Memory without a file has no more non-zero pages than it has pages
  // resident or swapped.
  if (facts.have_smaps && kind != MappingKind::kFile)
    m.send_bound = std::min(m.dump_size, align_up(sizes.rss + sizes.swap, s.page));
  if (kind == MappingKind::kFile && !keep_name(s, m, l.path)) ++s.summary.files_left_out;
  s.maps[s.map_count++] = m;
}

Result<void> read_mappings(State& s, std::int64_t deadline_ns) noexcept {
  s.map_count = 0;
  s.names_used = 0;
  s.smaps = false;
  Result<detail::Fd> fd = fail(Errc::kNotFound);
  if (s.cfg.read_smaps) {
    fd = detail::open_read("/proc/self/smaps");
    s.smaps = fd.has_value();
  }
  if (!fd) fd = detail::open_read("/proc/self/maps");
  if (!fd) return fail(fd.error());
  detail::LineReader reader(fd->get(), std::span<char>(s.line, kLineBuffer));
  MappingFacts cur;
  SmapsSizes sizes;
  bool have = false;
  // The deadline bounds the loop; so does the end of the file.
  for (std::uint64_t n = 0;; ++n) {
    if ((n & 63) == 0 && monotonic_ns() >= deadline_ns) return fail(Errc::kTimeout);
    auto line = reader.next();
    if (!line) {
      if (line.error() == Errc::kNotFound) break;
      return fail(line.error());
    }
    if (auto header = parse_maps_line(*line)) {
      if (have) add_mapping(s, cur, sizes);
      // The path is kept until the next header: the line buffer moves on.
      const std::size_t len = std::min(header->path.size(), kPathMax);
      if (len > 0) std::memcpy(s.path, header->path.data(), len);  // anonymous memory has no path at all
      cur = MappingFacts{};
      cur.line = *header;
      cur.line.path = std::string_view(s.path, len);
      cur.have_smaps = s.smaps;
      sizes = SmapsSizes{};
      have = true;
      continue;
    }
    if (!have || !s.smaps) continue;
    if (auto v = parse_smaps_kb(*line, "Rss")) {
      sizes.rss = *v;
    } else if (auto a = parse_smaps_kb(*line, "Anonymous")) {
      sizes.anonymous = *a;
    } else if (auto w = parse_smaps_kb(*line, "Swap")) {
      sizes.swap = *w;
    } else if (auto f = parse_vm_flags(*line)) {
      cur.flags = *f;
    }
    cur.written = sizes.anonymous > 0 || sizes.swap > 0;
  }
  if (have) add_mapping(s, cur, sizes);
  return {};
}

// --- begin(): the layout ---------------------------------------------------

void lay_out(State& s) noexcept {
  s.file_count = 0;
  s.file_name_bytes = 0;
  for (std::size_t i = 0; i < s.map_count; ++i) {
    if (s.maps[i].name_len == 0) continue;
    ++s.file_count;
    s.file_name_bytes += s.maps[i].name_len + 1;
  }
  std::uint64_t notes = note_size(kOwnerCore, kPrstatusSize) + note_size(kOwnerCore, kPrpsinfoSize) +
                        note_size(kOwnerCore, s.auxv_len) +
                        note_size(kOwnerCore, file_note_desc_size(s.file_count, s.file_name_bytes)) +
                        thread_fp_notes_size(s.self, s.xsave.components);
  if (s.signal != 0) notes += note_size(kOwnerCore, kSiginfoSize);
  for (std::size_t i = 0; i < s.listed; ++i)
    notes += note_size(kOwnerCore, kPrstatusSize) + thread_fp_notes_size(other_thread(s, i), s.xsave.components);
  s.notes_offset = kElfHeaderSize + kProgramHeaderSize * (1 + s.map_count);
  s.notes_size = notes;
  std::uint64_t at = align_up(s.notes_offset + s.notes_size, s.page);
  std::uint64_t to_send = s.notes_offset + s.notes_size;
  for (std::size_t i = 0; i < s.map_count; ++i) {
    s.maps[i].core_offset = at;
    at += s.maps[i].dump_size;
    to_send += s.maps[i].send_bound;
  }
  s.summary.size = s.map_count > 0 ? at : s.notes_offset + s.notes_size;
  s.summary.mappings = static_cast<std::uint32_t>(s.map_count);
  s.summary.bytes_to_send = to_send;
}

// --- emit(): headers and notes ---------------------------------------------

void put_note_header(Stream& out, std::string_view owner, std::uint32_t type, std::size_t desc) noexcept {
  std::byte h[kNoteHeaderSize + 8];
  const std::size_t n = emit_note_header(h, owner, type, desc);
  out.put(h, n);
}

void put_prstatus(Stream& out, const State& s, const ThreadCapture& c) noexcept {
  PrStatus ps;
  // Every thread carries the signal, as in the kernel's cores.
  ps.signo = s.signal;
  ps.cursig = s.signal;
  ps.sighold = c.sigmask;
  ps.pid = c.tid;
  ps.ppid = s.psinfo.ppid;
  ps.pgrp = s.psinfo.pgrp;
  ps.sid = s.psinfo.sid;
  if (c.valid) ps.regs = c.regs;
  ps.fpvalid = c.valid && c.fp_len >= kFxsaveSize;
  std::byte desc[kPrstatusSize];
  emit_prstatus(desc, ps);
  put_note_header(out, kOwnerCore, kNtPrstatus, kPrstatusSize);
  out.put(desc, sizeof desc);
}

void put_fp_notes(Stream& out, const State& s, const ThreadCapture& c) noexcept {
  if (!c.valid || c.fp_len < kFxsaveSize) return;
  // NT_FPREGSET: the FXSAVE image, its software bytes zero.
  put_note_header(out, kOwnerCore, kNtFpregset, kFxsaveSize);
  out.put(c.fp, kXstateXcr0Offset);
  out.zeros(kFxsaveSize - kXstateXcr0Offset);
  if (c.fp_len <= kFxsaveSize) return;
  put_note_header(out, kOwnerLinux, kNtX86Xstate, c.fp_len);
  out.put(c.fp, c.fp_len);
  out.pad4(c.fp_len);
  if (s.xsave.components == 0) return;
  put_note_header(out, kOwnerLinux, kNtX86XsaveLayout, kXsaveLayoutEntrySize * s.xsave.components);
  for (std::size_t i = 0; i < s.xsave.components; ++i) {
    std::byte e[kXsaveLayoutEntrySize] = {};
    store_le32(e, 0, s.xsave.layout[i].type);
    store_le32(e, 4, s.xsave.layout[i].size);
    store_le32(e, 8, s.xsave.layout[i].offset);
    out.put(e, sizeof e);  // flags (12) 0
  }
}

void put_file_note(Stream& out, const State& s) noexcept {
  const std::size_t desc = file_note_desc_size(s.file_count, s.file_name_bytes);
  put_note_header(out, kOwnerCore, kNtFile, desc);
  std::byte w[24];
  store_le64(w, 0, s.file_count);
  store_le64(w, 8, s.page);
  out.put(w, 16);
  for (std::size_t i = 0; i < s.map_count; ++i) {
    const Mapping& m = s.maps[i];
    if (m.name_len == 0) continue;
    store_le64(w, 0, m.start);
    store_le64(w, 8, m.end);
    store_le64(w, 16, m.file_pos / s.page);
    out.put(w, 24);
  }
  for (std::size_t i = 0; i < s.map_count; ++i) {
    const Mapping& m = s.maps[i];
    if (m.name_len == 0) continue;
    out.put(s.names + m.name_at, m.name_len);
    out.zeros(1);
  }
  out.pad4(desc);
}

void put_headers_and_notes(Stream& out, const State& s) noexcept {
  std::byte ehdr[kElfHeaderSize];
  emit_elf_header(ehdr, static_cast<std::uint16_t>(1 + s.map_count));
  out.put(ehdr, sizeof ehdr);
  std::byte ph[kProgramHeaderSize];
  emit_program_header(ph, ProgramHeader{.type = kPtNote, .offset = s.notes_offset, .filesz = s.notes_size, .align = 4});
  out.put(ph, sizeof ph);
  for (std::size_t i = 0; i < s.map_count && out.ok(); ++i) {
    const Mapping& m = s.maps[i];
    emit_program_header(ph, ProgramHeader{.type = kPtLoad,
                                          .flags = m.flags,
                                          .offset = m.core_offset,
                                          .vaddr = m.start,
                                          .filesz = m.dump_size,
                                          .memsz = m.end - m.start,
                                          .align = s.page});
    out.put(ph, sizeof ph);
  }
  // The calling thread first, with the process-wide notes in the
  // kernel's order; then the others.
  put_prstatus(out, s, s.self);
  std::byte ps[kPrpsinfoSize];
  emit_prpsinfo(ps, s.psinfo);
  put_note_header(out, kOwnerCore, kNtPrpsinfo, kPrpsinfoSize);
  out.put(ps, sizeof ps);
  if (s.signal != 0) {
    put_note_header(out, kOwnerCore, kNtSiginfo, kSiginfoSize);
    out.put(s.siginfo, kSiginfoSize);
  }
  put_note_header(out, kOwnerCore, kNtAuxv, s.auxv_len);
  out.put(s.auxv, s.auxv_len);
  out.pad4(s.auxv_len);
  put_file_note(out, s);
  put_fp_notes(out, s, s.self);
  for (std::size_t i = 0; i < s.listed && out.ok(); ++i) {
    const ThreadCapture c = other_thread(s, i);
    put_prstatus(out, s, c);
    put_fp_notes(out, s, c);
  }
  out.flush();
}

// --- emit(): memory --------------------------------------------------------

// Gives the sink the non-zero pages among `count` pages read into `buf`,
// a piece per run of them.
Result<void> send_pages(State& s, CoreSink sink, const std::byte* buf, std::size_t count,
                        std::uint64_t offset) noexcept {
  std::size_t i = 0;
  while (i < count) {
    if (all_zero(buf + i * s.page, s.page)) {
      ++s.summary.zero_pages_skipped;
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    while (j < count && !all_zero(buf + j * s.page, s.page)) ++j;
    const std::size_t len = (j - i) * s.page;
    if (!sink(offset + i * s.page, std::span<const std::byte>(buf + i * s.page, len))) return fail(Errc::kClosed);
    s.summary.bytes_sent += len;
    i = j;
  }
  return {};
}

// Puts back what a live dump's caller had on its stack when it was
// captured, over the same addresses read now.
void overlay_stack_copy(const State& s, std::byte* buf, std::uint64_t addr, std::size_t len) noexcept {
  const std::uint64_t a = std::max(addr, s.stack_copy_at);
  const std::uint64_t b = std::min(addr + len, s.stack_copy_at + s.stack_copy_len);
  if (s.stack_copy_len == 0 || a >= b) return;
  std::memcpy(buf + (a - addr), s.stack_copy + (a - s.stack_copy_at), b - a);
}

// Reads `count` pages at `addr` (at most the staging buffer) and sends
// what is readable and not zero.
Result<void> dump_run(State& s, CoreSink sink, std::uint64_t addr, std::size_t count, std::uint64_t offset) noexcept {
  std::size_t done = 0;
  while (done < count) {  // each round moves on by a page at least
    const long got = read_own_memory(s.io + done * s.page, addr + done * s.page, (count - done) * s.page);
    const std::size_t pages = got > 0 ? static_cast<std::size_t>(got) / s.page : 0;
    overlay_stack_copy(s, s.io + done * s.page, addr + done * s.page, pages * s.page);
    if (auto r = send_pages(s, sink, s.io + done * s.page, pages, offset + done * s.page); !r) return r;
    done += pages;
    if (done < count) {
      ++s.summary.unreadable_pages;  // the read stopped at this page
      ++done;
    }
  }
  return {};
}

Result<void> dump_mapping(State& s, CoreSink sink, const Mapping& m, int pagemap_fd, std::int64_t deadline_ns) noexcept {
  const std::size_t io_pages = kIoBuffer / s.page;
  const std::uint64_t end = m.start + m.dump_size;
  for (std::uint64_t addr = m.start; addr < end;) {
    if (monotonic_ns() >= deadline_ns) return fail(Errc::kTimeout);
    const std::size_t window = static_cast<std::size_t>(std::min<std::uint64_t>(kPagemapWindow, (end - addr) / s.page));
    if (window == 0) break;
    // /proc/self/pagemap: bit 63 present, bit 62 swapped. A page of
    // private anonymous memory that is neither was never touched: zeros,
    // not worth reading (reading would map the zero page in).
    bool know_holes = false;
    if (m.holes_are_zero && pagemap_fd >= 0) {
      const auto want = static_cast<ssize_t>(window * sizeof(std::uint64_t));
      know_holes = ::pread(pagemap_fd, s.pagemap, static_cast<std::size_t>(want),
                           static_cast<off_t>(addr / s.page * sizeof(std::uint64_t))) == want;
    }
    const auto hole = [&](std::size_t i) { return know_holes && (s.pagemap[i] >> 62) == 0; };
    for (std::size_t i = 0; i < window;) {
      if (hole(i)) {
        ++s.summary.zero_pages_skipped;
        ++i;
        continue;
      }
      std::size_t j = i + 1;
      while (j < window && j - i < io_pages && !hole(j)) ++j;
      const std::uint64_t at = addr + i * s.page;
      if (auto r = dump_run(s, sink, at, j - i, m.core_offset + (at - m.start)); !r) return r;
      i = j;
    }
    addr += window * s.page;
  }
  return {};
}

}  // namespace

SetupResult<std::unique_ptr<CoreWriter>> CoreWriter::make(const CoreWriterConfig& config) {
  if (config.max_mappings > kMaxProgramHeaders - 1)
    return setup_error(Errc::kInvalidArgument, "the core writer takes at most " +
                                                   std::to_string(kMaxProgramHeaders - 1) + " mappings");
  if (config.max_threads > (1u << 20))
    return setup_error(Errc::kInvalidArgument, "the core writer takes at most 1048576 threads");
  if (config.thread_wait.count() <= 0 || config.hold_after.count() < 0)
    return setup_error(Errc::kInvalidArgument, "the core writer's thread wait must be positive");
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  if (page == 0 || kIoBuffer % page != 0)
    return setup_error(Errc::kUnsupported, "unexpected page size " + std::to_string(page));
  const detail::XsaveInfo x = detail::xsave_info();
  const std::size_t fp_room = align_up(std::max(x.max_size, kFxsaveSize), 64);
  const std::size_t threads = config.max_threads;
  const std::size_t names_room = kNameBytesPerMapping * config.max_mappings;
  const std::size_t tid_room = threads + 2;  // us and one more: a listing says how many there were
  const std::size_t bytes = sizeof(CoreWriterState) + sizeof(ThreadSlot) * threads + fp_room * (threads + 1) +
                            sizeof(std::uint32_t) * threads + sizeof(pid_t) * tid_room + kDirentBuffer +
                            sizeof(Mapping) * config.max_mappings + names_room + kLineBuffer + kPathMax +
                            kIoBuffer + sizeof(std::uint64_t) * kPagemapWindow + kStackCopy + page + 16 * 64;
  auto region = GuardedRegion::map(bytes, "the core writer's tables");
  if (!region) return std::unexpected(region.error());
  auto* s = region->make<CoreWriterState>();
  auto* slots = region->make_array<ThreadSlot>(threads);
  auto* fp = static_cast<std::byte*>(region->take(fp_room * (threads + 1), 64));
  s->order = region->make_array<std::uint32_t>(threads);
  s->tids = region->make_array<pid_t>(tid_room);
  s->dirents = static_cast<std::byte*>(region->take(kDirentBuffer, 8));
  s->maps = region->make_array<Mapping>(config.max_mappings);
  s->names = static_cast<char*>(region->take(names_room, 1));
  s->line = static_cast<char*>(region->take(kLineBuffer, 1));
  s->path = static_cast<char*>(region->take(kPathMax, 1));
  s->io = static_cast<std::byte*>(region->take(kIoBuffer, page));
  s->pagemap = region->make_array<std::uint64_t>(kPagemapWindow);
  s->stack_copy = static_cast<std::byte*>(region->take(kStackCopy, 16));
  if (s == nullptr || (threads > 0 && (slots == nullptr || s->order == nullptr)) || fp == nullptr ||
      s->tids == nullptr || s->dirents == nullptr || (config.max_mappings > 0 && s->maps == nullptr) ||
      (names_room > 0 && s->names == nullptr) || s->line == nullptr || s->path == nullptr || s->io == nullptr ||
      s->pagemap == nullptr || s->stack_copy == nullptr)
    return setup_error(Errc::kNoBuffer, "the core writer's tables do not fit their mapping");
  // Touch every page now, so that the crash path finds them all there.
  std::memset(fp, 0, fp_room * (threads + 1));
  std::memset(s->names, 0, names_room);
  std::memset(s->line, 0, kLineBuffer);
  std::memset(s->io, 0, kIoBuffer);
  std::memset(s->stack_copy, 0, kStackCopy);
  s->cfg = config;
  s->page = page;
  s->tid_room = tid_room;
  s->names_room = names_room;
  s->self.fp = fp;
  for (std::size_t i = 0; i < threads; ++i) slots[i].cap.fp = fp + fp_room * (i + 1);
  s->xsave = x;
  s->ctl.signal = config.stop_signal;
  s->ctl.xcr0 = x.xcr0;
  s->ctl.fp_capacity = fp_room;
  s->ctl.slots = slots;
  s->ctl.slot_count = threads;

  std::unique_ptr<CoreWriter> w(new CoreWriter());
  w->region_ = std::move(*region);
  w->s_ = s;
  if (auto r = detail::install_stop_handler(s->ctl, s->old_action); !r) return std::unexpected(r.error());
  return w;
}

CoreWriter::~CoreWriter() {
  if (s_ == nullptr) return;
  end();
  detail::uninstall_stop_handler(s_->ctl, s_->old_action, kUninstallWaitNs);
}

const CoreSummary& CoreWriter::summary() const noexcept { return s_->summary; }

Result<CoreSummary> CoreWriter::begin(const siginfo_t* si, const ucontext_t* ctx, std::int64_t deadline_ns) noexcept {
  State& s = *s_;
  bool idle = false;
  if (!s.busy.compare_exchange_strong(idle, true, std::memory_order_acq_rel)) return fail(Errc::kBusy);
  struct Done {
    std::atomic<bool>& busy;
    ~Done() { busy.store(false, std::memory_order_release); }
  } done{s.busy};
  if (s.holding) {  // a begin() without end(): let the last round go first
    detail::release_threads(s.ctl, s.gen);
    s.holding = false;
  }
  s.stage = Stage::kIdle;
  s.summary = CoreSummary{};
  s.listed = 0;
  s.map_count = 0;
  if (monotonic_ns() >= deadline_ns) return fail(Errc::kTimeout);
  const pid_t pid = raw_getpid();
  const pid_t me = detail::current_tid();
  s.summary.pid = pid;
  s.signal = si != nullptr ? si->si_signo : 0;
  s.summary.signal = s.signal;
  std::memset(s.siginfo, 0, sizeof s.siginfo);
  if (si != nullptr) std::memcpy(s.siginfo, si, std::min(sizeof s.siginfo, sizeof *si));

  s.self.tid = me;
  s.stack_copy_len = 0;
  if (ctx != nullptr) {
    // The interrupted frames lie above the handler's (or on another
    // stack): they stay as they are while we work.
    detail::capture_from_frame(s.self, *ctx, s.ctl.fp_capacity, s.ctl.xcr0);
  } else {
    s.stack_copy_len = detail::capture_self(s.self, s.ctl.fp_capacity, s.ctl.xcr0, s.xsave.size,
                                            std::span(s.stack_copy, kStackCopy));
    s.stack_copy_at = s.self.regs[Reg::kRsp];
  }

  if (auto r = stop_other_threads(s, me, deadline_ns); !r) return fail(r.error());
  read_process_facts(s, pid);
  if (auto r = read_mappings(s, deadline_ns); !r) return fail(r.error());
  lay_out(s);
  s.stage = Stage::kBegun;
  return s.summary;
}

Result<CoreSummary> CoreWriter::emit(CoreSink sink, std::int64_t deadline_ns) noexcept {
  State& s = *s_;
  bool idle = false;
  if (!s.busy.compare_exchange_strong(idle, true, std::memory_order_acq_rel)) return fail(Errc::kBusy);
  struct Done {
    std::atomic<bool>& busy;
    ~Done() { busy.store(false, std::memory_order_release); }
  } done{s.busy};
  if (s.stage != Stage::kBegun) return fail(Errc::kInvalidArgument);
  // Keep the threads held while this runs.
  const std::int64_t hold = deadline_ns + std::chrono::nanoseconds(s.cfg.hold_after).count();
  if (s.holding && hold > s.ctl.hold_until_ns.load(std::memory_order_relaxed))
    s.ctl.hold_until_ns.store(hold, std::memory_order_release);
  s.summary.bytes_sent = 0;
  s.summary.zero_pages_skipped = 0;
  s.summary.unreadable_pages = 0;

  Stream out(sink, std::span(s.io, kIoBuffer), deadline_ns, s.summary);
  put_headers_and_notes(out, s);
  if (!out.ok()) return fail(out.error());

  auto pagemap = detail::open_read("/proc/self/pagemap");
  const int pagemap_fd = pagemap ? pagemap->get() : -1;
  for (std::size_t i = 0; i < s.map_count; ++i) {
    if (s.maps[i].dump_size == 0) continue;
    if (auto r = dump_mapping(s, sink, s.maps[i], pagemap_fd, deadline_ns); !r) return fail(r.error());
  }
  return s.summary;
}

void CoreWriter::end() noexcept {
  State& s = *s_;
  if (s.holding) {
    detail::release_threads(s.ctl, s.gen);
    s.holding = false;
  }
  s.stage = Stage::kIdle;
}

}  // namespace np::dump
