// Live cores of this test process, read back with <elf.h>'s structs: the
// layout, the notes in the kernel's order, every thread's registers, the
// memory, and what the writer leaves out (zero pages, holes, do-not-dump
// memory, unreadable pages). gdb's view of such cores is checked in
// tests/integration/core_dump_test.cpp.
#include "netpoll/dump/core_writer.h"

#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/procfs.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "alloc_guard.h"
#include "core_file_testing.h"
#include "netpoll/base/clock.h"
#include "temp_dir.h"

namespace np::dump {
namespace {

using namespace std::chrono_literals;
using testing::CoreFile;
using testing::Note;

// Linux 6.x's NT_X86_XSAVE_LAYOUT (not in the C library's <elf.h> yet).
constexpr std::uint32_t kNtXsaveLayout = 0x205;

pid_t gettid_now() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

std::int64_t in(std::chrono::milliseconds d) { return monotonic_ns() + std::chrono::nanoseconds(d).count(); }

std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// Threads that block in read(2) until released; each says who it is.
class Workers {
 public:
  struct Info {
    std::atomic<pid_t> tid{0};
    std::uintptr_t self = 0;   // pthread_self(): on x86-64 glibc, the thread's fs_base
    std::uintptr_t stack = 0;  // an address on its stack
  };
  explicit Workers(int n, bool block_stop_signal = false) : info_(static_cast<std::size_t>(n)) {
    EXPECT_EQ(::pipe(pipe_), 0);
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, i, block_stop_signal] {
        Info& me = info_[static_cast<std::size_t>(i)];
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, CoreWriterConfig{}.stop_signal);
        if (block_stop_signal) pthread_sigmask(SIG_BLOCK, &s, nullptr);
        volatile int local = i;
        me.self = reinterpret_cast<std::uintptr_t>(pthread_self());
        me.stack = reinterpret_cast<std::uintptr_t>(&local);
        me.tid.store(gettid_now());
        char c;
        [[maybe_unused]] const ssize_t r = ::read(pipe_[0], &c, 1);
        // A stop request still queued (the signal was blocked) arrives
        // now, long after its dump: the handler must let it pass.
        if (block_stop_signal) pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
      });
    }
    for (auto& i : info_) {
      for (int k = 0; k < 1000 && i.tid.load() == 0; ++k) std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(20ms);  // into read(2)
  }
  ~Workers() {
    const char bytes[64] = {};
    [[maybe_unused]] const ssize_t w = ::write(pipe_[1], bytes, threads_.size());
    for (auto& t : threads_) t.join();
    ::close(pipe_[0]);
    ::close(pipe_[1]);
  }
  const std::vector<Info>& info() const { return info_; }

 private:
  int pipe_[2] = {-1, -1};
  std::vector<Info> info_;
  std::vector<std::thread> threads_;
};

// Writes the pieces into a file as the dump server would, and checks the
// sink's contract on the way (increasing, never overlapping). Allocation
// free: the record of pieces is reserved up front.
class FileSink {
 public:
  explicit FileSink(const std::filesystem::path& path)
      : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) {
    pieces_.reserve(1 << 16);
  }
  ~FileSink() { ::close(fd_); }
  bool operator()(std::uint64_t offset, std::span<const std::byte> bytes) {
    if (offset < end_ || bytes.empty()) in_order_ = false;
    end_ = offset + bytes.size();
    if (pieces_.size() < pieces_.capacity()) pieces_.push_back({offset, bytes.size()});
    ++calls_;
    if (fail_at_ != 0 && calls_ >= fail_at_) return false;
    return ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset)) ==
           static_cast<ssize_t>(bytes.size());
  }
  void finish(std::uint64_t size) { EXPECT_EQ(::ftruncate(fd_, static_cast<off_t>(size)), 0); }
  bool in_order() const { return in_order_; }
  void fail_at(std::size_t call) { fail_at_ = call; }
  // Whether any piece covered a byte of [a, b).
  bool sent_any_of(std::uint64_t a, std::uint64_t b) const {
    return std::any_of(pieces_.begin(), pieces_.end(),
                       [&](const auto& p) { return p.first < b && a < p.first + p.second; });
  }

 private:
  int fd_;
  std::uint64_t end_ = 0;
  bool in_order_ = true;
  std::size_t calls_ = 0;
  std::size_t fail_at_ = 0;
  std::vector<std::pair<std::uint64_t, std::size_t>> pieces_;
};

std::uint64_t le64(const std::vector<std::byte>& b, std::size_t at) {
  std::uint64_t v = 0;
  std::memcpy(&v, b.data() + at, 8);
  return v;
}

struct elf_prstatus prstatus_of(const Note& n) {
  struct elf_prstatus p;
  EXPECT_EQ(n.desc.size(), sizeof p);
  std::memcpy(&p, n.desc.data(), std::min(sizeof p, n.desc.size()));
  return p;
}

user_regs_struct regs_of(const struct elf_prstatus& p) {
  user_regs_struct r;
  std::memcpy(&r, &p.pr_reg, sizeof r);
  return r;
}

std::vector<std::byte> file_bytes(const char* path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

// The thing the core must show: a global and a heap string.
volatile std::uint64_t g_known_value = 0x5eed5eed12345678;

TEST(CoreWriter, LiveCoreOfThisProcessHasEveryThreadNotesAndMemory) {
  Workers workers(3);
  const std::size_t expected_threads = thread_count();
  auto heap_text = std::make_unique<char[]>(64);
  std::strcpy(heap_text.get(), "netpoll dump heap text");
  auto writer = CoreWriter::make();
  ASSERT_TRUE(writer.has_value()) << writer.error().message;
  np::testing::TempDir dir("core");
  FileSink sink(dir.path() / "core");
  volatile int here = 0;

  np::testing::AllocGuard guard;
  const auto b = (*writer)->begin(nullptr, nullptr, in(5s));
  const auto e = b ? (*writer)->emit(sink, in(10s)) : b;
  (*writer)->end();
  EXPECT_EQ(guard.stop(), 0u) << "begin/emit/end allocated";

  ASSERT_TRUE(b.has_value()) << to_string(b.error());
  ASSERT_TRUE(e.has_value()) << to_string(e.error());
  EXPECT_TRUE(sink.in_order());
  sink.finish(e->size);
  EXPECT_EQ(b->threads, expected_threads);
  EXPECT_EQ(b->threads_without_registers, 0u);
  EXPECT_EQ(b->threads_left_out, 0u);
  EXPECT_EQ(b->signal, 0);
  EXPECT_EQ(b->pid, ::getpid());
  EXPECT_STREQ(b->program, "dump_test");
  EXPECT_GT(e->bytes_sent, 0u);
  EXPECT_LE(e->bytes_sent, b->bytes_to_send);
  EXPECT_EQ(e->unreadable_pages, 0u);

  const CoreFile core = CoreFile::read(dir.path() / "core");
  ASSERT_EQ(core.size(), b->size);
  const auto h = core.header();
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->e_type, ET_CORE);
  EXPECT_EQ(h->e_phnum, 1u + b->mappings);
  const auto ph = core.program_headers();
  ASSERT_EQ(ph.size(), 1u + b->mappings);
  ASSERT_EQ(ph[0].p_type, PT_NOTE);
  std::uint64_t at = ph[0].p_offset + ph[0].p_filesz;
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  for (std::size_t i = 1; i < ph.size(); ++i) {
    EXPECT_EQ(ph[i].p_type, PT_LOAD);
    EXPECT_EQ(ph[i].p_offset % page, 0u) << i;
    EXPECT_GE(ph[i].p_offset, at) << i;
    EXPECT_LE(ph[i].p_filesz, ph[i].p_memsz) << i;
    at = ph[i].p_offset + ph[i].p_filesz;
    if (i > 1) {
      EXPECT_GT(ph[i].p_vaddr, ph[i - 1].p_vaddr);
    }
  }
  EXPECT_EQ(at, b->size);

  // Notes: the caller's with the process's, in the kernel's order, then
  // each other thread's. Where the CPU has components past SSE, each
  // XSAVE area is followed by its layout, as Linux 6.x writes it.
  const auto notes = core.notes();
  std::vector<std::vector<std::uint32_t>> groups;  // the notes of each thread, by type
  std::vector<std::size_t> prstatus_at;
  for (std::size_t i = 0; i < notes.size(); ++i) {
    if (notes[i].type == NT_PRSTATUS) {
      groups.emplace_back();
      prstatus_at.push_back(i);
    }
    ASSERT_FALSE(groups.empty()) << "a note before the first NT_PRSTATUS";
    groups.back().push_back(notes[i].type);
  }
  ASSERT_EQ(groups.size(), expected_threads);
  ASSERT_GE(notes.size(), 6u);
  const bool layout = notes.size() > 6 && notes[6].type == kNtXsaveLayout;
  std::vector<std::uint32_t> first{NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_FILE, NT_FPREGSET, NT_X86_XSTATE};
  std::vector<std::uint32_t> other{NT_PRSTATUS, NT_FPREGSET, NT_X86_XSTATE};
  if (layout) {
    first.push_back(kNtXsaveLayout);
    other.push_back(kNtXsaveLayout);
    EXPECT_EQ(notes[6].owner, "LINUX");
    EXPECT_EQ(notes[6].desc.size() % 16, 0u);
    EXPECT_EQ(le64(notes[6].desc, 0) & 0xffffffff, 2u);  // AVX first
  }
  EXPECT_EQ(groups[0], first);
  for (std::size_t i = 1; i < groups.size(); ++i) EXPECT_EQ(groups[i], other) << i;
  EXPECT_EQ(notes[5].owner, "LINUX");
  EXPECT_EQ(notes[0].owner, "CORE");

  // The caller: its own thread id, its stack pointer near this frame.
  const auto me = prstatus_of(notes[0]);
  EXPECT_EQ(me.pr_pid, gettid_now());
  EXPECT_EQ(me.pr_cursig, 0);
  EXPECT_EQ(me.pr_ppid, ::getppid());
  const auto my_regs = regs_of(me);
  EXPECT_EQ(my_regs.fs_base, reinterpret_cast<std::uintptr_t>(pthread_self()));
  EXPECT_EQ(my_regs.orig_rax, ~0ull);
  EXPECT_EQ(my_regs.cs, 0x33u);
  const auto here_at = reinterpret_cast<std::uintptr_t>(&here);
  EXPECT_LT(my_regs.rsp, here_at);
  EXPECT_GT(my_regs.rsp + 64 * 1024, here_at);

  // Each worker: found by its thread id, with its own TLS base and a
  // stack pointer on its own stack.
  std::set<pid_t> seen;
  for (std::size_t g = 1; g < prstatus_at.size(); ++g) {
    const auto p = prstatus_of(notes[prstatus_at[g]]);
    seen.insert(p.pr_pid);
    for (const auto& w : workers.info()) {
      if (w.tid.load() != p.pr_pid) continue;
      const auto r = regs_of(p);
      EXPECT_EQ(r.fs_base, w.self);
      EXPECT_LT(r.rsp, w.stack);
      EXPECT_GT(r.rsp + 64 * 1024, w.stack);
      EXPECT_NE(r.rip, 0u);
      EXPECT_EQ(p.pr_fpvalid, 1);
    }
  }
  for (const auto& w : workers.info()) EXPECT_EQ(seen.count(w.tid.load()), 1u) << w.tid.load();

  // Process notes.
  struct elf_prpsinfo ps;
  ASSERT_EQ(notes[1].desc.size(), sizeof ps);
  std::memcpy(&ps, notes[1].desc.data(), sizeof ps);
  EXPECT_EQ(ps.pr_pid, ::getpid());
  EXPECT_STREQ(ps.pr_fname, "dump_test");
  EXPECT_NE(std::string(ps.pr_psargs).find("dump_test"), std::string::npos);
  EXPECT_EQ(notes[2].desc, file_bytes("/proc/self/auxv"));
  // NT_FILE: count, page size, triples, names; this program and libc.
  const auto& f = notes[3].desc;
  const std::uint64_t count = le64(f, 0);
  ASSERT_GT(count, 0u);
  EXPECT_EQ(le64(f, 8), page);
  std::string names(reinterpret_cast<const char*>(f.data()) + 16 + 24 * count, f.size() - 16 - 24 * count);
  EXPECT_EQ(static_cast<std::size_t>(std::count(names.begin(), names.end(), '\0')), count);
  EXPECT_NE(names.find(std::filesystem::read_symlink("/proc/self/exe").string()), std::string::npos);
  EXPECT_NE(names.find("libc.so.6"), std::string::npos);
  // The XSAVE area carries XCR0 where gdb looks; x87 and SSE at least.
  EXPECT_EQ(le64(notes[5].desc, 464) & 3, 3u);
  EXPECT_EQ(notes[4].desc.size(), 512u);
  EXPECT_GE(notes[5].desc.size(), 576u);

  // Memory: the global and the heap text as they are.
  const auto global = core.memory(reinterpret_cast<std::uintptr_t>(&g_known_value), 8);
  ASSERT_TRUE(global.has_value());
  EXPECT_EQ(le64(*global, 0), g_known_value);
  const auto text = core.memory(reinterpret_cast<std::uintptr_t>(heap_text.get()), 23);
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(std::memcmp(text->data(), "netpoll dump heap text", 23), 0);
}

// What the signal handler of the next test works with.
struct InHandler {
  CoreWriter* writer = nullptr;
  FileSink* sink = nullptr;
  Result<CoreSummary> begun = fail(Errc::kInvalidArgument);
  Result<CoreSummary> emitted = fail(Errc::kInvalidArgument);
};
InHandler* g_in_handler = nullptr;

TEST(CoreWriter, FromASignalHandlerTheCoreCarriesTheSignalAndTheInterruptedThread) {
  Workers workers(1);
  auto writer = CoreWriter::make();
  ASSERT_TRUE(writer.has_value()) << writer.error().message;
  np::testing::TempDir dir("core");
  FileSink sink(dir.path() / "core");
  InHandler h{writer->get(), &sink};
  g_in_handler = &h;
  struct sigaction sa {}, old{};
  sa.sa_sigaction = [](int, siginfo_t* si, void* uc) {
    InHandler& t = *g_in_handler;
    t.begun = t.writer->begin(si, static_cast<const ucontext_t*>(uc), in(5s));
    if (t.begun) t.emitted = t.writer->emit(*t.sink, in(10s));
    t.writer->end();
  };
  sa.sa_flags = SA_SIGINFO;
  ASSERT_EQ(::sigaction(SIGUSR2, &sa, &old), 0);
  volatile int here = 0;
  np::testing::AllocGuard guard;
  ::raise(SIGUSR2);
  EXPECT_EQ(guard.stop(), 0u) << "the handler's begin/emit/end allocated";
  ::sigaction(SIGUSR2, &old, nullptr);
  ASSERT_TRUE(h.begun.has_value()) << to_string(h.begun.error());
  ASSERT_TRUE(h.emitted.has_value()) << to_string(h.emitted.error());
  EXPECT_EQ(h.emitted->signal, SIGUSR2);
  EXPECT_EQ(h.emitted->threads_without_registers, 0u);
  sink.finish(h.emitted->size);

  const auto notes = CoreFile::read(dir.path() / "core").notes();
  ASSERT_GE(notes.size(), 7u);
  const std::vector<std::uint32_t> first{NT_PRSTATUS, NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FILE, NT_FPREGSET,
                                         NT_X86_XSTATE};
  std::vector<std::uint32_t> types;
  for (std::size_t i = 0; i < first.size(); ++i) types.push_back(notes[i].type);
  EXPECT_EQ(types, first);
  const auto me = prstatus_of(notes[0]);
  EXPECT_EQ(me.pr_pid, gettid_now());
  EXPECT_EQ(me.pr_cursig, SIGUSR2);
  EXPECT_EQ(me.pr_info.si_signo, SIGUSR2);
  siginfo_t si;
  ASSERT_EQ(notes[2].desc.size(), sizeof si);
  std::memcpy(&si, notes[2].desc.data(), sizeof si);
  EXPECT_EQ(si.si_signo, SIGUSR2);
  EXPECT_EQ(si.si_code, SI_TKILL);  // raise(3) is tgkill(2)
  EXPECT_EQ(si.si_pid, ::getpid());
  // The registers are those the signal interrupted: inside raise(),
  // called from this frame, on this thread's stack and TLS.
  const auto r = regs_of(me);
  const auto here_at = reinterpret_cast<std::uintptr_t>(&here);
  EXPECT_LT(r.rsp, here_at);
  EXPECT_GT(r.rsp + 16 * 1024, here_at);
  EXPECT_EQ(r.fs_base, reinterpret_cast<std::uintptr_t>(pthread_self()));
  // Every thread has the signal, as in the kernel's cores.
  for (const Note& n : notes) {
    if (n.type == NT_PRSTATUS) {
      EXPECT_EQ(prstatus_of(n).pr_cursig, SIGUSR2);
    }
  }
}

TEST(CoreWriter, AThreadThatBlocksTheStopSignalIsListedWithoutRegisters) {
  CoreWriterConfig config;
  config.thread_wait = 50ms;
  auto writer = CoreWriter::make(config);
  ASSERT_TRUE(writer.has_value()) << writer.error().message;
  np::testing::TempDir dir("core");
  std::optional<CoreFile> core;
  pid_t deaf = 0;
  {
    Workers workers(1, /*block_stop_signal=*/true);
    deaf = workers.info()[0].tid.load();
    FileSink sink(dir.path() / "core");
    const std::int64_t t0 = monotonic_ns();
    const auto b = (*writer)->begin(nullptr, nullptr, in(5s));
    const std::int64_t took = monotonic_ns() - t0;
    ASSERT_TRUE(b.has_value()) << to_string(b.error());
    EXPECT_EQ(b->threads_without_registers, 1u);
    EXPECT_GE(took, 50'000'000);  // it waited thread_wait for the deaf one
    const auto e = (*writer)->emit(sink, in(10s));
    ASSERT_TRUE(e.has_value()) << to_string(e.error());
    (*writer)->end();
    sink.finish(e->size);
    core = CoreFile::read(dir.path() / "core");
    // Leaving the scope wakes the worker, which unblocks the signal: the
    // stale request reaches our handler and must let the thread go.
  }
  bool found = false;
  const auto notes = core->notes();
  for (std::size_t i = 0; i < notes.size(); ++i) {
    if (notes[i].type != NT_PRSTATUS || prstatus_of(notes[i]).pr_pid != deaf) continue;
    found = true;
    const auto r = regs_of(prstatus_of(notes[i]));
    EXPECT_EQ(r.rip, 0u);
    EXPECT_EQ(r.rsp, 0u);
    EXPECT_EQ(prstatus_of(notes[i]).pr_fpvalid, 0);
    // No register notes follow it.
    if (i + 1 < notes.size()) {
      EXPECT_EQ(notes[i + 1].type, static_cast<std::uint32_t>(NT_PRSTATUS));
    }
  }
  EXPECT_TRUE(found);
}

TEST(CoreWriter, ZeroPagesAndUntouchedPagesAreNotSent) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  constexpr std::size_t kPages = 64;
  auto* m = static_cast<std::byte*>(
      ::mmap(nullptr, kPages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(m, MAP_FAILED);
  std::memset(m + 1 * page, 0x5a, page);  // data
  std::memset(m + 3 * page, 0, page);     // present, but zeros
  *reinterpret_cast<volatile std::byte*>(m + 5 * page) = std::byte{0};
  // The rest never touched: holes.
  auto writer = CoreWriter::make();
  ASSERT_TRUE(writer.has_value()) << writer.error().message;
  np::testing::TempDir dir("core");
  FileSink sink(dir.path() / "core");
  const auto b = (*writer)->begin(nullptr, nullptr, in(5s));
  ASSERT_TRUE(b.has_value());
  const auto e = (*writer)->emit(sink, in(10s));
  ASSERT_TRUE(e.has_value());
  (*writer)->end();
  sink.finish(e->size);
  EXPECT_GE(e->zero_pages_skipped, kPages - 1);
  const CoreFile core = CoreFile::read(dir.path() / "core");
  const auto seg = core.load_segment_at(reinterpret_cast<std::uintptr_t>(m));
  ASSERT_TRUE(seg.has_value());
  ASSERT_GE(seg->p_filesz, kPages * page);  // dumped whole (it has been written to) ...
  const std::uint64_t off = seg->p_offset + (reinterpret_cast<std::uintptr_t>(m) - seg->p_vaddr);
  EXPECT_TRUE(sink.sent_any_of(off + page, off + 2 * page));  // ... but only its data page sent
  EXPECT_FALSE(sink.sent_any_of(off, off + page));
  EXPECT_FALSE(sink.sent_any_of(off + 2 * page, off + kPages * page));
  const auto data = core.memory(reinterpret_cast<std::uintptr_t>(m + page), page);
  ASSERT_TRUE(data.has_value());
  EXPECT_TRUE(std::all_of(data->begin(), data->end(), [](std::byte x) { return x == std::byte{0x5a}; }));
  ::munmap(m, kPages * page);
}

TEST(CoreWriter, DoNotDumpMemoryHasNoBytesInTheCore) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  auto* m = static_cast<std::byte*>(
      ::mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(m, MAP_FAILED);
  std::memset(m, 0x77, 4 * page);
  ASSERT_EQ(::madvise(m, 4 * page, MADV_DONTDUMP), 0);
  auto writer = CoreWriter::make();
  ASSERT_TRUE(writer.has_value());
  np::testing::TempDir dir("core");
  FileSink sink(dir.path() / "core");
  ASSERT_TRUE((*writer)->begin(nullptr, nullptr, in(5s)).has_value());
  const auto e = (*writer)->emit(sink, in(10s));
  ASSERT_TRUE(e.has_value());
  (*writer)->end();
  sink.finish(e->size);
  const auto seg = CoreFile::read(dir.path() / "core").load_segment_at(reinterpret_cast<std::uintptr_t>(m));
  ASSERT_TRUE(seg.has_value());
  EXPECT_EQ(seg->p_filesz, 0u);
  EXPECT_EQ(seg->p_memsz, 4 * page);
  ::munmap(m, 4 * page);
}

// Sets /proc/self/coredump_filter for the scope of a test.
class CoredumpFilter {
 public:
  explicit CoredumpFilter(const char* hex) {
    std::ifstream in("/proc/self/coredump_filter");
    in >> old_;
    std::ofstream("/proc/self/coredump_filter") << hex;
  }
  ~CoredumpFilter() { std::ofstream("/proc/self/coredump_filter") << old_; }

 private:
  std::string old_;
};

TEST(CoreWriter, PagesThatCannotBeReadAreCountedAndLeftOut) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  np::testing::TempDir dir("core");
  // A one-page file mapped over four pages: the three past its end fault
  // (SIGBUS) when touched; process_vm_readv says EFAULT instead.
  const auto file = dir.path() / "short";
  {
    std::ofstream(file) << std::string(page, 'x');
  }
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto* m = static_cast<std::byte*>(::mmap(nullptr, 4 * page, PROT_READ, MAP_PRIVATE, fd, 0));
  ::close(fd);
  ASSERT_NE(m, MAP_FAILED);
  CoredumpFilter filter("37");  // the default and private file mappings
  auto writer = CoreWriter::make();
  ASSERT_TRUE(writer.has_value());
  FileSink sink(dir.path() / "core");
  ASSERT_TRUE((*writer)->begin(nullptr, nullptr, in(5s)).has_value());
  const auto e = (*writer)->emit(sink, in(10s));
  ASSERT_TRUE(e.has_value()) << to_string(e.error());
  (*writer)->end();
  sink.finish(e->size);
  EXPECT_EQ(e->unreadable_pages, 3u);
  const CoreFile core = CoreFile::read(dir.path() / "core");
  const auto seg = core.load_segment_at(reinterpret_cast<std::uintptr_t>(m));
  ASSERT_TRUE(seg.has_value());
  EXPECT_EQ(seg->p_filesz, 4 * page);
  const auto first = core.memory(reinterpret_cast<std::uintptr_t>(m), page);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ((*first)[page - 1], std::byte{'x'});
  ::munmap(m, 4 * page);
}

TEST(CoreWriter, ASinkThatGivesUpEndsTheDump) {
  auto writer = CoreWriter::make();
  ASSERT_TRUE(writer.has_value());
  np::testing::TempDir dir("core");
  FileSink sink(dir.path() / "core");
  sink.fail_at(2);
  ASSERT_TRUE((*writer)->begin(nullptr, nullptr, in(5s)).has_value());
  const auto e = (*writer)->emit(sink, in(10s));
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error(), Errc::kClosed);
  (*writer)->end();
}

TEST(CoreWriter, DeadlinesAndPhasesAreChecked) {
  auto writer = CoreWriter::make();
  ASSERT_TRUE(writer.has_value());
  np::testing::TempDir dir("core");
  FileSink sink(dir.path() / "core");
  EXPECT_EQ((*writer)->emit(sink, in(1s)).error(), Errc::kInvalidArgument);
  EXPECT_EQ((*writer)->begin(nullptr, nullptr, monotonic_ns()).error(), Errc::kTimeout);
  ASSERT_TRUE((*writer)->begin(nullptr, nullptr, in(5s)).has_value());
  EXPECT_EQ((*writer)->emit(sink, monotonic_ns()).error(), Errc::kTimeout);
  (*writer)->end();
  EXPECT_EQ((*writer)->emit(sink, in(1s)).error(), Errc::kInvalidArgument);
}

TEST(CoreWriter, OneWriterPerProcessAndOnlyAFreeRealTimeSignal) {
  auto writer = CoreWriter::make();
  ASSERT_TRUE(writer.has_value());
  auto second = CoreWriter::make();
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, Errc::kExists);
  writer->reset();

  CoreWriterConfig config;
  config.stop_signal = SIGUSR1;
  EXPECT_EQ(CoreWriter::make(config).error().code, Errc::kInvalidArgument);

  config.stop_signal = SIGRTMIN + 9;
  struct sigaction sa {}, old{};
  sa.sa_handler = [](int) {};
  ASSERT_EQ(::sigaction(config.stop_signal, &sa, &old), 0);
  const auto taken = CoreWriter::make(config);
  ::sigaction(config.stop_signal, &old, nullptr);
  ASSERT_FALSE(taken.has_value());
  EXPECT_EQ(taken.error().code, Errc::kExists);
  EXPECT_NE(taken.error().message.find("already has a handler"), std::string::npos);
}

TEST(CoreWriter, TheStopSignalFromElsewhereIsIgnored) {
  auto writer = CoreWriter::make();
  ASSERT_TRUE(writer.has_value());
  // Not queued by the writer (SI_TKILL from raise): the handler returns.
  ASSERT_EQ(::raise(CoreWriterConfig{}.stop_signal), 0);
  SUCCEED();
}

}  // namespace
}  // namespace np::dump
