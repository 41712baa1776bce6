#include "netpoll/gdb/process_target.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "netpoll/base/clock.h"
#include "netpoll/gdb/registers.h"

namespace np::gdb {
namespace {

// Read and written with the compiler's atomic builtins, not std::atomic:
// they are instructions in place in every build (an unoptimised build calls
// std::atomic's load() out of line, and the worker's rip, tested below,
// would be in that function, not in spin_in_place).
int g_phase = 0;
std::atomic<pid_t> g_worker_tid{0};
volatile int g_spins = 0;
const char kReadOnly[] = "read-only bytes";
int g_value = 0x5a5a1234;

pid_t gettid_raw() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

[[gnu::noinline]] void spin_in_place() {
  while (__atomic_load_n(&g_phase, __ATOMIC_ACQUIRE) == 0) g_spins = g_spins + 1;
}

// Entered only by a jump (the test sets the thread's rip here): it says
// so, and never returns (there is nowhere to return to); the thread sleeps
// until the process ends.
[[gnu::noinline]] void landed_here() {
  __atomic_store_n(&g_phase, 2, __ATOMIC_RELEASE);
  for (;;) ::pause();
}

[[gnu::noinline]] int never_called(int x) { return x * 3 + 1; }

// A thread named np-worker spinning in spin_in_place() until the phase moves.
pthread_t start_worker() {
  __atomic_store_n(&g_phase, 0, __ATOMIC_RELEASE);
  g_spins = 0;
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_create(
      &t, &attr,
      [](void*) -> void* {
        pthread_setname_np(pthread_self(), "np-worker");
        g_worker_tid.store(gettid_raw());
        spin_in_place();
        return nullptr;
      },
      nullptr);
  pthread_attr_destroy(&attr);
  for (int i = 0; i < 5000 && g_spins == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return t;
}

std::uint64_t reg(ProcessTarget& t, pid_t tid, int regno) {
  std::array<std::byte, 16> b{};
  auto n = t.read_register(tid, regno, b);
  EXPECT_TRUE(n.has_value());
  std::uint64_t v = 0;
  std::memcpy(&v, b.data(), 8);
  return v;
}

void set_reg(ProcessTarget& t, pid_t tid, int regno, std::uint64_t v) {
  std::array<std::byte, 8> b{};
  std::memcpy(b.data(), &v, 8);
  ASSERT_TRUE(t.write_register(tid, regno, b));
}

TEST(GdbProcessTarget, StopsEveryOtherThreadWithItsNameAndRegisters) {
  auto t = ProcessTarget::setup();
  ASSERT_TRUE(t) << t.error().message;
  start_worker();
  ASSERT_GT(g_spins, 0);
  ucontext_t uc;
  ::getcontext(&uc);
  ASSERT_TRUE((*t)->stop(SIGTRAP, uc, monotonic_ns() + 5'000'000'000));
  const pid_t worker = g_worker_tid.load();
  bool seen_worker = false, seen_me = false;
  for (std::size_t i = 0; i < (*t)->thread_count(); ++i) {
    if ((*t)->thread_id(i) == worker) {
      seen_worker = true;
      EXPECT_EQ((*t)->thread_name(i), "np-worker");
    }
    seen_me = seen_me || (*t)->thread_id(i) == gettid_raw();
  }
  EXPECT_TRUE(seen_worker);
  EXPECT_TRUE(seen_me);
  EXPECT_EQ((*t)->thread_id(0), ::getpid());  // the main thread first, as /proc lists it
  EXPECT_EQ((*t)->stop_event().thread, gettid_raw());
  EXPECT_EQ((*t)->stop_event().signal, SIGTRAP);
  EXPECT_EQ((*t)->threads_without_registers(), 0u);
  // The worker is held inside spin_in_place (its loop is a few bytes).
  const auto rip = reg(**t, worker, kRegRip);
  const auto fn = reinterpret_cast<std::uint64_t>(&spin_in_place);
  EXPECT_GE(rip, fn);
  EXPECT_LT(rip, fn + 256);
  // The serving thread's registers are its frame's.
  EXPECT_EQ(reg(**t, gettid_raw(), kRegRip), static_cast<std::uint64_t>(uc.uc_mcontext.gregs[REG_RIP]));
  std::array<std::byte, 8> none{};
  EXPECT_EQ((*t)->read_register(1, 0, none).error(), Errc::kNotFound);
  __atomic_store_n(&g_phase, 1, __ATOMIC_RELEASE);
  (*t)->release();
}

TEST(GdbProcessTarget, AReleasedThreadGoesOnWithTheRegistersWrittenForIt) {
  auto t = ProcessTarget::setup();
  ASSERT_TRUE(t) << t.error().message;
  start_worker();
  ucontext_t uc;
  ::getcontext(&uc);
  ASSERT_TRUE((*t)->stop(SIGTRAP, uc, monotonic_ns() + 5'000'000'000));
  const pid_t worker = g_worker_tid.load();
  // As a call would have entered it: rip at its start, rsp 8 below a
  // 16-byte boundary.
  const std::uint64_t rsp = reg(**t, worker, 7);
  set_reg(**t, worker, kRegRip, reinterpret_cast<std::uint64_t>(&landed_here));
  set_reg(**t, worker, 7, ((rsp - 64) & ~std::uint64_t{15}) - 8);
  ucontext_t mine = uc;
  (*t)->resume(Resume{}, mine);
  for (int i = 0; i < 5000 && __atomic_load_n(&g_phase, __ATOMIC_ACQUIRE) != 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(__atomic_load_n(&g_phase, __ATOMIC_ACQUIRE), 2) << "the worker did not go on where its registers said";
}

TEST(GdbProcessTarget, ReadsMemoryWithoutFaultingAndWritesThroughPageProtections) {
  auto t = ProcessTarget::setup();
  ASSERT_TRUE(t) << t.error().message;
  std::array<std::byte, 4> four{};
  ASSERT_EQ((*t)->read_memory(reinterpret_cast<std::uint64_t>(&g_value), four).value_or(0), 4u);
  EXPECT_EQ(std::memcmp(four.data(), &g_value, 4), 0);
  EXPECT_EQ((*t)->read_memory(0, four).error(), Errc::kIo);
  // A readable page followed by one that is not: the read stops there.
  const long page = ::sysconf(_SC_PAGESIZE);
  auto* m = static_cast<std::byte*>(::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(m, MAP_FAILED);
  ASSERT_EQ(::mprotect(m + page, page, PROT_NONE), 0);
  std::array<std::byte, 64> buf{};
  EXPECT_EQ((*t)->read_memory(reinterpret_cast<std::uint64_t>(m + page - 16), buf).value_or(0), 16u);
  // Writes go through protections (as ptrace's do), not to what is not mapped.
  ASSERT_EQ(::munmap(m + page, page), 0);
  EXPECT_EQ((*t)->write_memory(reinterpret_cast<std::uint64_t>(m + page), std::span(buf.data(), 1)).error(), Errc::kIo);
  EXPECT_EQ((*t)->read_memory(reinterpret_cast<std::uint64_t>(m + page), buf).error(), Errc::kIo);
  ::munmap(m, page);
  // Read-only data, written as a debugger does.
  const auto ro = reinterpret_cast<std::uint64_t>(&kReadOnly[0]);
  const std::array<std::byte, 1> x{std::byte{'R'}};
  ASSERT_TRUE((*t)->write_memory(ro, x));
  EXPECT_EQ(*static_cast<const volatile char*>(&kReadOnly[0]), 'R');
  const std::array<std::byte, 1> back{std::byte{'r'}};
  ASSERT_TRUE((*t)->write_memory(ro, back));
}

TEST(GdbProcessTarget, PutsBreakpointsIntoTextOnlyWhileTheProgramRuns) {
  auto t = ProcessTarget::setup();
  ASSERT_TRUE(t) << t.error().message;
  const auto addr = reinterpret_cast<std::uint64_t>(&never_called);
  const auto* text = reinterpret_cast<const volatile std::uint8_t*>(&never_called);
  const std::uint8_t orig = *text;
  ASSERT_NE(orig, 0xcc);
  ASSERT_TRUE((*t)->insert_breakpoint(addr));
  ASSERT_TRUE((*t)->insert_breakpoint(addr));  // one breakpoint
  EXPECT_EQ(*text, orig);                       // not in memory while stopped
  EXPECT_FALSE((*t)->has_breakpoint(addr));
  (*t)->arm_breakpoints();
  EXPECT_EQ(*text, 0xcc);
  EXPECT_TRUE((*t)->has_breakpoint(addr));
  std::array<std::byte, 1> seen{};
  ASSERT_TRUE((*t)->read_memory(addr, seen));
  EXPECT_EQ(std::to_integer<std::uint8_t>(seen[0]), orig);  // gdb sees the program's byte
  (*t)->disarm_breakpoints();
  EXPECT_EQ(*text, orig);
  (*t)->arm_breakpoints();
  ASSERT_TRUE((*t)->remove_breakpoint(addr));
  EXPECT_EQ(*text, orig);
  EXPECT_FALSE((*t)->insert_breakpoint(0));
  (*t)->arm_breakpoints();
  EXPECT_EQ(*text, orig);
  EXPECT_EQ(never_called(2), 7);
}

TEST(GdbProcessTarget, ServesAuxvTheProgramsPathAndTheLoadedLibraries) {
  auto t = ProcessTarget::setup();
  ASSERT_TRUE(t) << t.error().message;
  std::array<char, 8192> buf{};
  auto n = (*t)->read_object(XferObject::kExecFile, "", 0, buf);
  ASSERT_TRUE(n);
  char exe[4096] = {};
  const ssize_t len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  EXPECT_EQ(std::string_view(buf.data(), *n), std::string_view(exe, static_cast<std::size_t>(len)));
  n = (*t)->read_object(XferObject::kAuxv, "", 0, buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n % 16, 0u);
  EXPECT_GT(*n, 16u);
  n = (*t)->read_object(XferObject::kLibrariesSvr4, "", 0, buf);
  ASSERT_TRUE(n);
  const std::string_view libs(buf.data(), *n);
  EXPECT_TRUE(libs.starts_with("<library-list-svr4 version=\"1.0\" main-lm=\"0x")) << libs;
  EXPECT_NE(libs.find("/libc.so.6\" lm=\"0x"), std::string_view::npos) << libs;
  EXPECT_TRUE(libs.ends_with("</library-list-svr4>\n")) << libs;
  // In pieces, from where the last one ended.
  std::array<char, 10> piece{};
  auto first = (*t)->read_object(XferObject::kLibrariesSvr4, "", 0, piece);
  auto second = (*t)->read_object(XferObject::kLibrariesSvr4, "", 10, piece);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(std::string_view(piece.data(), *second), libs.substr(10, 10));
}

}  // namespace
}  // namespace np::gdb
