#include "netpoll/console/cfi_unwind.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "alloc_guard.h"
#include "cfi_program.h"
#include "netpoll/console/backtrace.h"
#include "netpoll/console/symbolizer.h"
#include "test_support.h"

// Functions the traces must name. noipa: never inlined, cloned or merged;
// the store after each call keeps it from being a tail call.
namespace {
volatile int g_cfi_sink = 0;
}  // namespace

// Calls abort() as its last instruction: the return address is the first
// byte of the function after it, whose CFI says something else (CFA =
// rsp + 8, not rsp + 32). Only a walk that looks a return address up at
// pc - 1 unwinds this frame. Assembly, to place the two functions.
asm(R"(
  .text
  .globl np_cfi_abort_leaf
  .type np_cfi_abort_leaf, @function
  .p2align 4
np_cfi_abort_leaf:
  .cfi_startproc
  sub $24, %rsp
  .cfi_def_cfa_offset 32
  call abort@PLT
  .cfi_endproc
  .size np_cfi_abort_leaf, .-np_cfi_abort_leaf
  .type np_cfi_after_abort_leaf, @function
np_cfi_after_abort_leaf:
  .cfi_startproc
  ret
  .cfi_endproc
  .size np_cfi_after_abort_leaf, .-np_cfi_after_abort_leaf
)");
extern "C" [[noreturn]] void np_cfi_abort_leaf();

// Built without a frame pointer, with a frame of its own (a buffer, saved
// registers), and using rbp as a general register across the call, as
// code built that way may: the rbp chain is broken here. Only the CFI,
// which says where rbp and the return address were saved and where the
// CFA is, finds the caller — and must restore rbp, which the caller's own
// CFI (a frame-pointer function) computes its CFA from.
extern "C" [[gnu::noipa, gnu::optimize("omit-frame-pointer")]] int np_cfi_frameless(int seed) {
  volatile unsigned char scratch[160];
  for (int i = 0; i < 160; ++i) scratch[i] = static_cast<unsigned char>(seed + i);
  const int a = scratch[3], b = scratch[17], c = scratch[29], d = scratch[41], e = scratch[53], f = scratch[97];
  asm volatile("mov %0, %%rbp" : : "r"(std::uintptr_t{0x5a5a5a5a}) : "rbp");
  np_cfi_abort_leaf();
  return a * b + c * d + e * f + scratch[seed & 127];
}

extern "C" [[gnu::noipa]] void np_cfi_abort_outer() {
  g_cfi_sink = np_cfi_frameless(g_cfi_sink);
  g_cfi_sink = g_cfi_sink + 1;
}

// Faults on its first instruction, reading the unmapped address 0x10. Its
// pc is then its first byte, where pc - 1 (the lookup for a return address)
// would be in the padding or function before it, outside its FDE: only a walk that takes a
// signal-interrupted pc as exact unwinds it. Assembly, so that no compiler
// or sanitizer adds anything before the load.
asm(R"(
  .text
  .globl np_cfi_fault_at_entry
  .type np_cfi_fault_at_entry, @function
  .p2align 4
np_cfi_fault_at_entry:
  .cfi_startproc
  movl 0x10, %eax
  ret
  .cfi_endproc
  .size np_cfi_fault_at_entry, .-np_cfi_fault_at_entry
)");
extern "C" int np_cfi_fault_at_entry();

// A function with a frame pointer and no CFI at all (hand-written assembly
// without .cfi_* directives): a walk through it needs the frame-pointer
// step.
extern "C" std::size_t np_cfi_unwind_callback();
asm(R"(
  .text
  .globl np_cfi_no_fde
  .type np_cfi_no_fde, @function
  .p2align 4
np_cfi_no_fde:
  push %rbp
  mov %rsp, %rbp
  call np_cfi_unwind_callback
  pop %rbp
  ret
  .size np_cfi_no_fde, .-np_cfi_no_fde
)");
extern "C" std::size_t np_cfi_no_fde();

namespace {
const np::console::CfiIndex* g_callback_index = nullptr;
std::array<std::uintptr_t, 64> g_callback_frames{};
}  // namespace

extern "C" [[gnu::noipa]] std::size_t np_cfi_unwind_callback() {
  ucontext_t uc;
  ::getcontext(&uc);
  return np::console::cfi_backtrace(*g_callback_index, uc, g_callback_frames);
}

extern "C" [[gnu::noipa]] std::size_t np_cfi_calls_no_fde() {
  const std::size_t n = np_cfi_no_fde();
  g_cfi_sink = g_cfi_sink + 1;
  return n;
}

extern "C" [[gnu::noipa]] void np_cfi_segv_caller() {
  g_cfi_sink = np_cfi_fault_at_entry();
  g_cfi_sink = g_cfi_sink + 1;
}

namespace np::console {
namespace {

// ---- An index in a read-only mapping, as a crash handler would keep it ------

class MappedIndex {
 public:
  MappedIndex() {
    void* p = ::mmap(nullptr, sizeof(CfiIndex), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    index_ = static_cast<CfiIndex*>(p);
    EXPECT_TRUE(build_cfi_index(*index_));
    EXPECT_EQ(::mprotect(p, sizeof(CfiIndex), PROT_READ), 0);
  }
  ~MappedIndex() { ::munmap(index_, sizeof(CfiIndex)); }
  MappedIndex(const MappedIndex&) = delete;
  MappedIndex& operator=(const MappedIndex&) = delete;
  const CfiIndex& get() const { return *index_; }

 private:
  CfiIndex* index_;
};

const CfiIndex& shared_index() {
  static const MappedIndex ix;
  return ix.get();
}

// The function holding `pc`: an exact pc (a trace's out[0], a frame a signal
// interrupted) as it is, a return address at pc - 1.
std::string name_of(std::uintptr_t pc, bool exact) {
  const Symbol s = test_symbolizer().lookup(exact ? pc : pc - 1);
  return s.function == nullptr ? "??" : s.function;
}

// Names for a trace, every frame but the first taken as a return address.
std::vector<std::string> names_of(std::span<const std::uintptr_t> frames) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < frames.size(); ++i) names.push_back(name_of(frames[i], i == 0));
  return names;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += "\n  " + n;
  return s;
}

// The index of the first name containing `part` at or after `from`, or -1.
long find_name(const std::vector<std::string>& names, const std::string& part, std::size_t from = 0) {
  for (std::size_t i = from; i < names.size(); ++i) {
    if (names[i].find(part) != std::string::npos) return static_cast<long>(i);
  }
  return -1;
}

// The index of the first name equal to `name`, or -1.
long find_exact(const std::vector<std::string>& names, const std::string& name) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<long>(i);
  }
  return -1;
}

// Restores a signal's disposition when the test ends, however it ends.
class SignalRestorer {
 public:
  explicit SignalRestorer(int sig) : sig_(sig) { ::sigaction(sig, nullptr, &old_); }
  ~SignalRestorer() { ::sigaction(sig_, &old_, nullptr); }
  SignalRestorer(const SignalRestorer&) = delete;
  SignalRestorer& operator=(const SignalRestorer&) = delete;

 private:
  int sig_;
  struct sigaction old_ {};
};

void install(int sig, void (*handler)(int, siginfo_t*, void*)) {
  struct sigaction sa {};
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(::sigaction(sig, &sa, nullptr), 0);
}

// What the handlers below leave for the test to check.
sigjmp_buf g_jump;
std::array<std::uintptr_t, 64> g_cfi{};
std::array<std::uintptr_t, 64> g_fp{};
std::size_t g_cfi_n = 0;
std::size_t g_fp_n = 0;

void unwind_both(void* ctx) {
  const auto& uc = *static_cast<const ucontext_t*>(ctx);
  g_cfi_n = cfi_backtrace(shared_index(), uc, g_cfi);
  g_fp_n = backtrace_from_context(uc, g_fp);
}

void on_abort(int, siginfo_t*, void* ctx) {
  unwind_both(ctx);
  siglongjmp(g_jump, 1);
}

TEST(CfiIndex, HoldsTheExecutableLibcAndTheVdso) {
  const CfiIndex& ix = shared_index();
  ASSERT_TRUE(cfi_index_intact(ix));
  EXPECT_EQ(ix.dropped, 0u);
  const std::span<const CfiObject> objects(ix.objects.data(), ix.count);
  const auto holding = [&](std::uintptr_t pc) -> const CfiObject* {
    for (const CfiObject& o : objects) {
      if (pc >= o.text_start && pc < o.text_end) return &o;
    }
    return nullptr;
  };
  const CfiObject* exe = holding(address_of(reinterpret_cast<const void*>(&np_cfi_abort_outer)));
  const CfiObject* libc = holding(address_of(reinterpret_cast<const void*>(&::abort)));
  ASSERT_NE(exe, nullptr);
  ASSERT_NE(libc, nullptr);
  EXPECT_NE(exe, libc);
  EXPECT_GT(exe->fde_count, 100u);
  EXPECT_GT(libc->fde_count, 1000u);
  EXPECT_GE(exe->eh_frame, exe->bias);
  // The vDSO's image starts at its load bias (its first PT_LOAD is at 0).
  const auto vdso = static_cast<std::uintptr_t>(::getauxval(AT_SYSINFO_EHDR));
  bool vdso_found = false;
  for (const CfiObject& o : objects) {
    if (o.bias == vdso) vdso_found = o.fde_count > 0;
  }
  EXPECT_TRUE(vdso_found);
  for (std::size_t i = 1; i < objects.size(); ++i) EXPECT_LE(objects[i - 1].text_end, objects[i].text_start);
}

TEST(CfiBacktrace, UnwindsAnAbortThroughLibcAndAFramelessFunctionToTheTestBody) {
  test_symbolizer();
  shared_index();
  SignalRestorer restore(SIGABRT);
  install(SIGABRT, on_abort);
  g_cfi_n = g_fp_n = 0;
  if (sigsetjmp(g_jump, 1) == 0) np_cfi_abort_outer();

  const auto cfi = names_of(std::span(g_cfi.data(), g_cfi_n));
  const auto fp = names_of(std::span(g_fp.data(), g_fp_n));
  SCOPED_TRACE("CFI:" + joined(cfi) + "\nframe pointers:" + joined(fp));
  // abort, then the chain in order, then this test's body and on to main.
  const long at_abort = find_exact(cfi, "abort");
  ASSERT_GE(at_abort, 0);
  const long leaf = find_name(cfi, "np_cfi_abort_leaf", at_abort);
  ASSERT_EQ(leaf, at_abort + 1);
  EXPECT_EQ(find_name(cfi, "np_cfi_frameless", leaf), leaf + 1);
  EXPECT_EQ(find_name(cfi, "np_cfi_abort_outer", leaf), leaf + 2);
  EXPECT_EQ(find_name(cfi, "UnwindsAnAbortThroughLibcAndAFramelessFunctionToTheTestBody", leaf), leaf + 3);
  EXPECT_GT(find_exact(cfi, "main"), leaf + 3);
  // Frame pointers cannot cross the frameless function: its caller and
  // everything above are missing.
  EXPECT_EQ(find_name(fp, "np_cfi_abort_outer"), -1);
  EXPECT_EQ(find_name(fp, "UnwindsAnAbortThroughLibcAndAFramelessFunctionToTheTestBody"), -1);
  EXPECT_GT(g_cfi_n, g_fp_n + 3);
}

// A crash inside the program's own signal handler: SIGSEGV's handler raises
// SIGUSR1, whose handler unwinds.
std::uintptr_t g_restorer = 0;

void on_usr1(int, siginfo_t*, void* ctx) { unwind_both(ctx); }

void on_segv(int, siginfo_t*, void*) {
  ::raise(SIGUSR1);
  siglongjmp(g_jump, 1);
}

TEST(CfiBacktrace, PassesThroughANestedSignalFrameToTheFaultingFunction) {
  test_symbolizer();
  shared_index();
  SignalRestorer restore_segv(SIGSEGV);
  SignalRestorer restore_usr1(SIGUSR1);
  install(SIGSEGV, on_segv);
  install(SIGUSR1, on_usr1);
  // The kernel returns from a handler through sa_restorer, glibc's
  // __restore_rt (a local symbol: the symbolizer cannot name it).
  struct sigaction now {};
  ASSERT_EQ(::sigaction(SIGSEGV, nullptr, &now), 0);
  g_restorer = reinterpret_cast<std::uintptr_t>(now.sa_restorer);
  ASSERT_NE(g_restorer, 0u);
  g_cfi_n = 0;
  if (sigsetjmp(g_jump, 1) == 0) np_cfi_segv_caller();

  const auto cfi = names_of(std::span(g_cfi.data(), g_cfi_n));
  SCOPED_TRACE("CFI:" + joined(cfi));
  const long handler = find_name(cfi, "on_segv");
  ASSERT_GE(handler, 1);
  // The handler returns to the trampoline; the frame after it is the
  // faulting instruction itself, exact, then its callers.
  ASSERT_LT(static_cast<std::size_t>(handler) + 4, g_cfi_n);
  EXPECT_EQ(g_cfi[handler + 1], g_restorer);
  EXPECT_EQ(name_of(g_cfi[handler + 2], true), "np_cfi_fault_at_entry");
  EXPECT_EQ(cfi[handler + 3], "np_cfi_segv_caller");
  EXPECT_NE(cfi[handler + 4].find("PassesThroughANestedSignalFrameToTheFaultingFunction"), std::string::npos);
}

// A real context, taken where the test stands: its frames are live.
[[gnu::noinline]] std::size_t unwind_here(const CfiIndex& ix, std::span<std::uintptr_t> out) {
  ucontext_t uc;
  ::getcontext(&uc);
  return cfi_backtrace(ix, uc, out);
}

TEST(CfiBacktrace, TreatsAnOverwrittenIndexAsEmpty) {
  std::array<std::uintptr_t, 32> out{};
  ASSERT_GE(unwind_here(shared_index(), out), 4u);

  // A copy, overwritten in one place at a time: each gives the context's pc alone.
  auto copy = std::make_unique<CfiIndex>(shared_index());
  ASSERT_TRUE(cfi_index_intact(*copy));
  const auto corrupt = [&](const char* what, auto&& change) {
    *copy = shared_index();
    change(*copy);
    EXPECT_FALSE(cfi_index_intact(*copy)) << what;
    out.fill(0);
    EXPECT_EQ(unwind_here(*copy, out), 1u) << what;
    EXPECT_NE(out[0], 0u) << what;
  };
  corrupt("magic", [](CfiIndex& ix) { ix.magic = 0x4141414141414141; });
  corrupt("count past capacity", [](CfiIndex& ix) { ix.count = CfiIndex::kCapacity + 1; });
  corrupt("count within it", [](CfiIndex& ix) { ix.count -= 1; });
  corrupt("a table address", [](CfiIndex& ix) { ix.objects[0].table ^= 0x1000; });
  corrupt("zeroed", [](CfiIndex& ix) { std::memset(static_cast<void*>(&ix), 0, sizeof ix); });
}

TEST(CfiBacktrace, UnwindsFromAContextToMain) {
  test_symbolizer();
  std::array<std::uintptr_t, 64> out{};
  const std::size_t n = unwind_here(shared_index(), out);
  const auto names = names_of(std::span(out.data(), n));
  SCOPED_TRACE("CFI:" + joined(names));
  ASSERT_GE(n, 4u);
  EXPECT_NE(names[0].find("unwind_here"), std::string::npos);
  EXPECT_NE(names[1].find("UnwindsFromAContextToMain"), std::string::npos);
  const long main_at = find_exact(names, "main");
  EXPECT_GT(main_at, 1);
  // _start marks the return address undefined: the walk ends there or in
  // libc's start code, not in garbage past it.
  EXPECT_LE(n, static_cast<std::size_t>(main_at) + 4);
}

TEST(CfiBacktrace, TakesAFramePointerStepWhereNoFdeCoversThePc) {
  test_symbolizer();
  g_callback_index = &shared_index();
  const std::size_t n = np_cfi_calls_no_fde();
  const auto names = names_of(std::span(g_callback_frames.data(), n));
  SCOPED_TRACE("CFI:" + joined(names));
  ASSERT_GE(n, 5u);
  EXPECT_EQ(names[0], "np_cfi_unwind_callback");
  EXPECT_EQ(names[1], "np_cfi_no_fde");
  EXPECT_EQ(names[2], "np_cfi_calls_no_fde");  // found by the rbp step
  EXPECT_NE(names[3].find("TakesAFramePointerStepWhereNoFdeCoversThePc"), std::string::npos);
  EXPECT_GT(find_exact(names, "main"), 3);  // and CFI again from there
}

TEST(CfiBacktrace, StopsWhenTheCfaStopsRising) {
  // A frame-pointer function's pc (CFA = rbp + 16) and a frame whose saved
  // rbp is itself: every step gives the same CFA and the same frame.
  std::array<std::uintptr_t, 64> real{};
  ASSERT_GE(unwind_here(shared_index(), real), 3u);
  const std::uintptr_t ret = real[1];  // into this test's body
  alignas(16) std::uintptr_t stack[16] = {};
  stack[8] = address_of(&stack[8]);
  stack[9] = ret;
  ucontext_t uc{};
  uc.uc_mcontext.gregs[REG_RIP] = static_cast<greg_t>(ret);
  uc.uc_mcontext.gregs[REG_RSP] = static_cast<greg_t>(address_of(&stack[0]));
  uc.uc_mcontext.gregs[REG_RBP] = static_cast<greg_t>(address_of(&stack[8]));
  std::array<std::uintptr_t, 16> out{};
  // ret, ret (CFA rose), ret (CFA the same once); the same again ends it.
  EXPECT_EQ(cfi_backtrace(shared_index(), uc, out), 3u);
  EXPECT_EQ(out[2], ret);
}

ucontext_t context_of(std::mt19937_64& rng) {
  ucontext_t uc{};
  for (auto& r : uc.uc_mcontext.gregs) r = static_cast<greg_t>(rng());
  return uc;
}

TEST(CfiBacktrace, EndsWithinBoundsOnGarbageRegisters) {
  const CfiIndex& ix = shared_index();
  std::mt19937_64 rng(1234);
  // Code addresses worth starting from: the walk then reads real CFI
  // against a stack of random words.
  const std::uintptr_t code[] = {
      address_of(reinterpret_cast<const void*>(&np_cfi_frameless)) + 40,
      address_of(reinterpret_cast<const void*>(&::abort)) + 10,
      address_of(reinterpret_cast<const void*>(&::getpid)) + 3,
  };
  std::vector<std::uintptr_t> stack(512);
  for (int round = 0; round < 3000; ++round) {
    ucontext_t uc = context_of(rng);
    auto& g = uc.uc_mcontext.gregs;
    switch (round % 3) {
      case 0: g[REG_RSP] = 0x10; break;  // unmapped, rip random
      case 1:
        for (auto& w : stack) w = rng() % 4 == 0 ? code[rng() % 3] + rng() % 64 : rng();
        g[REG_RIP] = static_cast<greg_t>(code[rng() % 3] + rng() % 200);
        g[REG_RSP] = static_cast<greg_t>(address_of(stack.data() + rng() % 256));
        g[REG_RBP] = static_cast<greg_t>(address_of(stack.data() + rng() % 256));
        break;
      case 2: g[REG_RIP] = 0; break;  // a jump to 0 with a random rsp
    }
    std::array<std::uintptr_t, 16> out{};
    const std::size_t n = cfi_backtrace(ix, uc, std::span(out).first(1 + round % 15));
    ASSERT_GE(n, 1u);
    ASSERT_LE(n, 1 + static_cast<std::size_t>(round % 15));
    ASSERT_EQ(out[0], static_cast<std::uintptr_t>(g[REG_RIP]));
    for (std::size_t i = n; i < out.size(); ++i) ASSERT_EQ(out[i], 0u) << "wrote past what it returned";
  }
}

TEST(CfiBacktrace, TakesTheReturnAddressAtRspWhenThePcIsInNoObject) {
  // A call through a null function pointer: rip is 0, the call pushed its
  // return address at rsp. The words above it are garbage: the walk may
  // stop after that frame, but must take it.
  std::array<std::uintptr_t, 64> real{};
  ASSERT_GE(unwind_here(shared_index(), real), 3u);
  alignas(16) std::uintptr_t stack[8] = {real[1], 0, 0, 0, 0, 0, 0, 0};
  ucontext_t uc{};
  uc.uc_mcontext.gregs[REG_RIP] = 0;
  uc.uc_mcontext.gregs[REG_RSP] = static_cast<greg_t>(address_of(stack));
  std::array<std::uintptr_t, 8> out{};
  ASSERT_GE(cfi_backtrace(shared_index(), uc, out), 2u);
  EXPECT_EQ(out[0], 0u);
  EXPECT_EQ(out[1], real[1]);
  // A word that returns into no object is not taken.
  stack[0] = 0x4242;
  EXPECT_EQ(cfi_backtrace(shared_index(), uc, out), 1u);
}

TEST(CfiBacktrace, IsBoundedByItsOutput) {
  std::array<std::uintptr_t, 64> all{};
  const std::size_t n = unwind_here(shared_index(), all);
  ASSERT_GE(n, 4u);
  for (std::size_t size = 0; size < n; ++size) {
    std::array<std::uintptr_t, 64> out{};
    EXPECT_EQ(unwind_here(shared_index(), std::span(out).first(size)), size);
    EXPECT_EQ(out[size], 0u);
  }
}

TEST(CfiBacktrace, LeavesErrnoAsItWas) {
  ucontext_t uc{};
  uc.uc_mcontext.gregs[REG_RSP] = 0x10;  // every read fails with EFAULT
  std::array<std::uintptr_t, 4> out{};
  errno = 1234;
  cfi_backtrace(shared_index(), uc, out);
  EXPECT_EQ(errno, 1234);
}

TEST(CfiBacktrace, AllocatesNothing) {
  const CfiIndex& ix = shared_index();
  std::array<std::uintptr_t, 64> out{};
  testing::AllocGuard guard;
  const std::size_t n = unwind_here(ix, out);
  EXPECT_EQ(guard.stop(), 0u);
  EXPECT_GE(n, 4u);
}

// ---- The byte-level pieces, over buffers -----------------------------------

// Memory over one buffer that counts every request outside it.
struct Buffer {
  std::span<const unsigned char> bytes;
  mutable std::size_t outside = 0;

  std::uintptr_t base() const { return address_of(bytes.data()); }
  std::uintptr_t end() const { return base() + bytes.size(); }
  cfi::Memory memory() const { return {&read, this}; }

  static bool read(const void* ctx, std::uintptr_t addr, void* dst, std::size_t len) noexcept {
    const auto& b = *static_cast<const Buffer*>(ctx);
    if (addr < b.base() || addr > b.end() || len > b.end() - addr) {
      ++b.outside;
      return false;
    }
    std::memcpy(dst, b.bytes.data() + (addr - b.base()), len);
    return true;
  }
};

// "Stack" memory that answers any address with a word made of it, and
// refuses one address in eight.
bool any_memory(const void*, std::uintptr_t addr, void* dst, std::size_t len) noexcept {
  if (addr % 8 == 3) return false;
  const std::uint64_t v = addr * 0x9e3779b97f4a7c15;
  std::memcpy(dst, &v, std::min(len, sizeof v));
  return true;
}
constexpr cfi::Memory kAnyMemory{&any_memory, nullptr};

cfi::Registers all_registers(std::uintptr_t v) {
  cfi::Registers r;
  for (unsigned i = 0; i < cfi::kColumns; ++i) r.set(i, v + i * 8);
  return r;
}

// GCC's x86-64 CIE ("zR", code 1, data -8, return column 16, FDE pointers
// pcrel|sdata4; initially CFA = rsp + 8, return address at CFA - 8), then
// an FDE with the instructions GCC emits for a frame-pointer function with
// an early return: push rbp; mov rbp, rsp; ...; leave; ret; ... Written by
// hand from `readelf --debug-dump=frames` of such a function.
const unsigned char kCfaProgram[] = {
    0x41,              // advance_loc 1          (after push rbp)
    0x0e, 0x10,        // def_cfa_offset 16
    0x86, 0x02,        // offset r6 (rbp) at cfa-16
    0x43,              // advance_loc 3          (after mov rbp, rsp)
    0x0d, 0x06,        // def_cfa_register r6
    0x55,              // advance_loc 21         (after leave, at 25)
    0x0a,              // remember_state
    0x0c, 0x07, 0x08,  // def_cfa r7 (rsp) + 8
    0x41,              // advance_loc 1          (after ret, at 26)
    0x0b,              // restore_state: rbp + 16 again
};

std::vector<unsigned char> cie_and_fde(std::span<const unsigned char> program, std::int32_t pc_delta,
                                       std::uint32_t range) {
  std::vector<unsigned char> b = {
      0x14, 0, 0, 0,                    // CIE length 20
      0, 0, 0, 0,                       // CIE id
      1, 'z', 'R', 0,                   // version 1, "zR"
      0x01, 0x78, 0x10,                 // code align 1, data align -8, return column 16
      0x01, 0x1b,                       // augmentation length 1, R = pcrel|sdata4
      0x0c, 0x07, 0x08,                 // def_cfa r7 + 8
      0x90, 0x01,                       // offset r16 at cfa-8
      0, 0,                             // nop padding
  };
  const std::size_t fde = b.size();
  const auto put32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<unsigned char>(v >> (8 * i)));
  };
  put32(static_cast<std::uint32_t>(4 + 4 + 4 + 1 + program.size()));  // length
  put32(static_cast<std::uint32_t>(fde + 4));                         // back to the CIE
  put32(static_cast<std::uint32_t>(pc_delta));                        // pc_begin, from this field
  put32(range);
  b.push_back(0);  // augmentation data length
  b.insert(b.end(), program.begin(), program.end());
  return b;
}

TEST(CfiProgram, ParsesAGccCieAndFde) {
  const auto bytes = cie_and_fde(kCfaProgram, -0x1000, 40);
  const Buffer buf{bytes};
  cfi::Fde fde;
  ASSERT_TRUE(cfi::parse_fde(buf.memory(), buf.base() + 24, 0, fde));
  EXPECT_EQ(fde.cie.code_align, 1u);
  EXPECT_EQ(fde.cie.data_align, -8);
  EXPECT_EQ(fde.cie.fde_encoding, 0x1b);
  EXPECT_FALSE(fde.cie.signal_frame);
  EXPECT_EQ(fde.cie.insns, buf.base() + 17);
  EXPECT_EQ(fde.cie.insns_end, buf.base() + 24);
  EXPECT_EQ(fde.pc_begin, buf.base() + 24 + 8 - 0x1000);
  EXPECT_EQ(fde.pc_end, fde.pc_begin + 40);
  EXPECT_EQ(fde.insns, buf.base() + 24 + 17);
  EXPECT_EQ(fde.insns_end, buf.end());
  EXPECT_EQ(buf.outside, 0u);
  // Every truncation is refused, never read past.
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    const Buffer cut{std::span(bytes).first(len)};
    EXPECT_FALSE(cfi::parse_fde(cut.memory(), cut.base() + 24, 0, fde)) << len;
  }
  // The CIE itself is not an FDE.
  EXPECT_FALSE(cfi::parse_fde(buf.memory(), buf.base(), 0, fde));
}

TEST(CfiProgram, RunsAGccPrologueToTheRowCoveringEachPc) {
  const auto bytes = cie_and_fde(kCfaProgram, 0, 40);
  const Buffer buf{bytes};
  cfi::Fde fde;
  ASSERT_TRUE(cfi::parse_fde(buf.memory(), buf.base() + 24, 0, fde));
  cfi::Row initial;
  ASSERT_TRUE(cfi::run_cfa_program(buf.memory(), fde.cie.insns, fde.cie.insns_end, fde.cie, 0, fde.pc_begin,
                                   UINTPTR_MAX, nullptr, initial));
  struct Case {
    std::uintptr_t offset;
    unsigned cfa_reg;
    std::int64_t cfa_offset;
    cfi::How rbp;
  };
  const Case cases[] = {
      {0, 7, 8, cfi::How::kUnspecified},   {1, 7, 16, cfi::How::kOffset}, {3, 7, 16, cfi::How::kOffset},
      {4, 6, 16, cfi::How::kOffset},       {24, 6, 16, cfi::How::kOffset}, {25, 7, 8, cfi::How::kOffset},
      {26, 6, 16, cfi::How::kOffset},      {39, 6, 16, cfi::How::kOffset},
  };
  for (const Case& c : cases) {
    cfi::Row row = initial;
    ASSERT_TRUE(cfi::run_cfa_program(buf.memory(), fde.insns, fde.insns_end, fde.cie, 0, fde.pc_begin,
                                     fde.pc_begin + c.offset, &initial, row));
    EXPECT_EQ(row.cfa.how, cfi::How::kRegister) << c.offset;
    EXPECT_EQ(row.cfa.arg, c.cfa_reg) << c.offset;
    EXPECT_EQ(row.cfa_offset, c.cfa_offset) << c.offset;
    EXPECT_EQ(row.reg[cfi::kRbp].how, c.rbp) << c.offset;
    EXPECT_EQ(row.reg[cfi::kRip].how, cfi::How::kOffset) << c.offset;
    EXPECT_EQ(static_cast<std::int64_t>(row.reg[cfi::kRip].arg), -8) << c.offset;
    if (c.rbp == cfi::How::kOffset) {
      EXPECT_EQ(static_cast<std::int64_t>(row.reg[cfi::kRbp].arg), -16) << c.offset;
    }
  }
  EXPECT_EQ(buf.outside, 0u);

  // And the caller's registers from the row at offset 10: CFA = rbp + 16,
  // rbp saved at CFA - 16, the return address at CFA - 8.
  cfi::Row row = initial;
  ASSERT_TRUE(cfi::run_cfa_program(buf.memory(), fde.insns, fde.insns_end, fde.cie, 0, fde.pc_begin,
                                   fde.pc_begin + 10, &initial, row));
  // [rbp]: the saved rbp, [rbp + 8]: the return address.
  alignas(16) const std::uintptr_t frame[4] = {0x1111, 0x7000, 0x2222, 0x3333};
  const Buffer stack{std::span(reinterpret_cast<const unsigned char*>(frame), sizeof frame)};
  cfi::Registers regs = all_registers(0x100);
  regs.set(cfi::kRbp, address_of(&frame[0]));
  cfi::Registers caller;
  std::uintptr_t cfa = 0;
  ASSERT_TRUE(cfi::apply_row(row, buf.memory(), stack.memory(), regs, caller, cfa));
  EXPECT_EQ(cfa, address_of(&frame[2]));
  EXPECT_EQ(caller.value[cfi::kRsp], cfa);
  EXPECT_EQ(caller.value[cfi::kRbp], 0x1111u);
  EXPECT_EQ(caller.value[cfi::kRip], 0x7000u);
  EXPECT_EQ(caller.value[3], regs.value[3]);  // rbx: no rule, unchanged
  // An undefined return address is the outermost frame.
  row.reg[cfi::kRip] = cfi::Rule{0, 0, cfi::How::kUndefined};
  EXPECT_FALSE(cfi::apply_row(row, buf.memory(), stack.memory(), regs, caller, cfa));
}

TEST(CfiProgram, RefusesUnbalancedAndTooDeepRememberState) {
  const cfi::Cie cie;
  cfi::Row row;
  const unsigned char restore_first[] = {0x0b};
  const Buffer a{restore_first};
  EXPECT_FALSE(cfi::run_cfa_program(a.memory(), a.base(), a.end(), cie, 0, 0, 100, nullptr, row));
  std::vector<unsigned char> deep(cfi::kRememberDepth + 1, 0x0a);
  const Buffer b{deep};
  EXPECT_FALSE(cfi::run_cfa_program(b.memory(), b.base(), b.end(), cie, 0, 0, 100, nullptr, row));
  deep.pop_back();
  const Buffer c{deep};
  EXPECT_TRUE(cfi::run_cfa_program(c.memory(), c.base(), c.end(), cie, 0, 0, 100, nullptr, row));
}

TEST(CfiExpression, ComputesThePltEntryCfa) {
  // GNU ld's .plt FDE (readelf --debug-dump=frames of any PLT-using
  // executable): CFA = rsp + 8, plus 8 once the entry has pushed its index
  // (at offset 11 and later of each 16-byte entry).
  const unsigned char expr[] = {0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22};
  const Buffer buf{expr};
  cfi::Registers regs = all_registers(0);
  regs.set(cfi::kRsp, 0x7ff000);
  std::uintptr_t cfa = 0;
  for (std::uintptr_t at = 0; at < 16; ++at) {
    regs.set(cfi::kRip, 0x401020 + at);
    ASSERT_TRUE(cfi::evaluate(buf.memory(), buf.base(), sizeof expr, kAnyMemory, regs, nullptr, cfa));
    EXPECT_EQ(cfa, at >= 11 ? 0x7ff010u : 0x7ff008u) << at;
  }
  EXPECT_EQ(buf.outside, 0u);
}

TEST(CfiExpression, EvaluatesStackArithmeticAndBranches) {
  // Registers: all_registers(0), so register r holds 8 * r. Results worked
  // out by hand from DWARF 5 section 2.5.1.
  struct Case {
    std::vector<unsigned char> expr;
    std::uintptr_t want;
  };
  const Case cases[] = {
      {{0x08, 0xff}, 0xff},                                          // const1u
      {{0x09, 0xff}, ~std::uintptr_t{0}},                            // const1s -1
      {{0x0b, 0x00, 0x80}, static_cast<std::uintptr_t>(-32768)},     // const2s
      {{0x10, 0xe5, 0x8e, 0x26}, 624485},                            // constu (DWARF 5's ULEB example)
      {{0x11, 0x7f}, ~std::uintptr_t{0}},                            // consts -1
      {{0x35, 0x37, 0x1c}, static_cast<std::uintptr_t>(-2)},         // 5 - 7
      {{0x35, 0x37, 0x16, 0x1c}, 2},                                 // swap: 7 - 5
      {{0x31, 0x32, 0x33, 0x17, 0x13, 0x13}, 3},                     // rot: [1 2 3] -> [3 1 2], drop, drop
      {{0x33, 0x32, 0x15, 0x01, 0x1e}, 6},                           // pick 1: [3 2] -> [3 2 3], mul
      {{0x31, 0x32, 0x14, 0x22, 0x22}, 4},                           // over: [1 2 1], plus, plus
      {{0x3a, 0x23, 0x05}, 15},                                      // plus_uconst
      {{0x31, 0x3f, 0x24}, 0x8000},                                  // 1 << 15
      {{0x3f, 0x31, 0x25}, 7},                                       // 15 >> 1
      {{0x09, 0xf0, 0x32, 0x26}, static_cast<std::uintptr_t>(-4)},   // -16 >> 2, arithmetic
      {{0x3f, 0x36, 0x1a, 0x31, 0x21, 0x33, 0x27}, 4},               // (15 & 6) | 1 = 7, ^ 3
      {{0x09, 0xf9, 0x32, 0x1b}, static_cast<std::uintptr_t>(-3)},   // -7 / 2, signed
      {{0x37, 0x33, 0x1d}, 1},                                       // 7 mod 3
      {{0x09, 0xff, 0x31, 0x2d}, 1},                                 // -1 < 1, signed
      {{0x35, 0x35, 0x29, 0x35, 0x36, 0x2e, 0x22}, 2},               // 5 == 5, 5 != 6, plus
      {{0x30, 0x28, 0x02, 0x00, 0x31, 0x96, 0x37}, 7},               // bra not taken, lit1, nop, lit7
      {{0x31, 0x28, 0x01, 0x00, 0x33, 0x38}, 8},                     // bra taken over lit3
      {{0x2f, 0x01, 0x00, 0x33, 0x38}, 8},                           // skip over lit3
      {{0x39, 0x1f, 0x19}, 9},                                       // neg, abs
      {{0x70, 0x10}, 16},                                            // breg0 + 16
      {{0x92, 0x07, 0x78}, 7 * 8 - 8},                               // bregx rsp - 8
      {{0x08, 0x10, 0x94, 0x01}, 0x10 * 0x9e3779b97f4a7c15 & 0xff},  // deref_size 1 at 0x10
  };
  for (const Case& c : cases) {
    const Buffer buf{c.expr};
    std::uintptr_t got = 0;
    EXPECT_TRUE(cfi::evaluate(buf.memory(), buf.base(), c.expr.size(), kAnyMemory, all_registers(0), nullptr, got))
        << ::testing::PrintToString(c.expr);
    EXPECT_EQ(got, c.want) << ::testing::PrintToString(c.expr);
    EXPECT_EQ(buf.outside, 0u);
  }
  // Refused: underflow, branches out of the expression, DW_OP_reg0 (a
  // location, not a value), division by zero, a deref the memory refuses,
  // an empty expression, an endless loop.
  const std::vector<std::vector<unsigned char>> bad = {
      {0x22}, {0x31, 0x2f, 0x10, 0x00}, {0x2f, 0xf0, 0xff}, {0x50}, {0x31, 0x30, 0x1b}, {0x33, 0x06}, {},
      {0x2f, 0xfd, 0xff}};  // the last: a skip to itself, ended by the operation count
  for (const auto& expr : bad) {
    const Buffer buf{expr};
    std::uintptr_t got = 0;
    EXPECT_FALSE(cfi::evaluate(buf.memory(), buf.base(), expr.size(), kAnyMemory, all_registers(0), nullptr, got))
        << ::testing::PrintToString(expr);
    EXPECT_EQ(buf.outside, 0u);
  }
}

TEST(CfiEncoding, ReadsTheFormatsAndApplications) {
  struct Case {
    std::uint8_t enc;
    std::vector<unsigned char> bytes;
    bool ok;
    std::uintptr_t want;  // relative to the field for pcrel, to 0x1000 for datarel
  };
  const Case cases[] = {
      {0x00, {1, 2, 3, 4, 5, 6, 7, 8}, true, 0x0807060504030201},
      {0x01, {0xe5, 0x8e, 0x26}, true, 624485},
      {0x02, {0xfe, 0xff}, true, 0xfffe},
      {0x0a, {0xfe, 0xff}, true, static_cast<std::uintptr_t>(-2)},
      {0x03, {0xfc, 0xff, 0xff, 0xff}, true, 0xfffffffc},
      {0x0b, {0xfc, 0xff, 0xff, 0xff}, true, static_cast<std::uintptr_t>(-4)},
      {0x09, {0x7f}, true, static_cast<std::uintptr_t>(-1)},
      {0x1b, {0x10, 0, 0, 0}, true, 0x10},           // pcrel
      {0x3b, {0xf0, 0xff, 0xff, 0xff}, true, 0xff0},  // datarel: 0x1000 - 16
      {0x9b, {0x10, 0, 0, 0}, true, 0x10},           // indirect ignored: the value, not followed
      {0x0b, {0xfc, 0xff, 0xff}, false, 0},          // truncated
      {0x5b, {0, 0, 0, 0}, false, 0},                // aligned
      {0x2b, {0, 0, 0, 0}, false, 0},                // textrel
      {0x07, {0, 0, 0, 0}, false, 0},                // no such format
      {0xff, {0, 0, 0, 0}, false, 0},                // omit
  };
  for (const Case& c : cases) {
    const Buffer buf{c.bytes};
    cfi::Cursor cur(buf.memory(), buf.base(), buf.end());
    std::uintptr_t got = 0;
    EXPECT_EQ(cfi::read_encoded(cur, c.enc, 0x1000, got), c.ok) << int{c.enc};
    if (!c.ok) continue;
    const std::uintptr_t want = (c.enc & 0x70) == 0x10 ? buf.base() + c.want : c.want;
    EXPECT_EQ(got, want) << int{c.enc};
    EXPECT_TRUE(cur.at_end()) << int{c.enc};
    EXPECT_EQ(buf.outside, 0u);
  }
}

// ---- Random bytes: never outside the input, always done ---------------------

std::vector<unsigned char> random_bytes(std::mt19937_64& rng, std::size_t max) {
  std::vector<unsigned char> b(rng() % (max + 1));
  for (auto& x : b) {
    // Mostly opcodes the interpreters know, so that they get deep.
    x = rng() % 3 == 0 ? static_cast<unsigned char>(rng() % 0x30) : static_cast<unsigned char>(rng());
  }
  return b;
}

TEST(CfiProgram, NeverReadsOutsideRandomInstructions) {
  std::mt19937_64 rng(20240611);
  for (int round = 0; round < 20000; ++round) {
    const auto bytes = random_bytes(rng, 96);
    const Buffer buf{bytes};
    cfi::Cie cie;
    cie.code_align = 1 + rng() % 4;
    cie.data_align = -8;
    cie.fde_encoding = rng() % 2 == 0 ? 0x1b : 0x03;
    cfi::Row initial, row;
    const std::uintptr_t pc = rng() % 2 == 0 ? UINTPTR_MAX : rng() % 300;
    const bool ok = cfi::run_cfa_program(buf.memory(), buf.base(), buf.end(), cie, 0x1000, 0, pc,
                                         rng() % 2 == 0 ? &initial : nullptr, row);
    ASSERT_EQ(buf.outside, 0u) << "round " << round;
    if (!ok) continue;
    // Rules with expressions point into the input; applying them reads there.
    cfi::Registers caller;
    std::uintptr_t cfa = 0;
    (void)cfi::apply_row(row, buf.memory(), kAnyMemory, all_registers(rng()), caller, cfa);
    ASSERT_EQ(buf.outside, 0u) << "round " << round;
  }
}

TEST(CfiExpression, NeverReadsOutsideRandomExpressions) {
  std::mt19937_64 rng(99);
  std::size_t evaluated = 0;
  for (int round = 0; round < 50000; ++round) {
    auto bytes = random_bytes(rng, 48);
    for (auto& x : bytes) {
      if (rng() % 2 == 0) x = static_cast<unsigned char>(0x12 + rng() % 0x90);  // stack, arithmetic, lit, breg
    }
    const Buffer buf{bytes};
    const std::uintptr_t cfa = rng();
    std::uintptr_t got = 0;
    evaluated += cfi::evaluate(buf.memory(), buf.base(), bytes.size(), kAnyMemory, all_registers(rng()),
                               rng() % 2 == 0 ? &cfa : nullptr, got);
    ASSERT_EQ(buf.outside, 0u) << "round " << round;
  }
  EXPECT_GT(evaluated, 1000u);  // the random expressions did get evaluated, not all refused
}

TEST(CfiProgram, SurvivesRandomlyCorruptedEntries) {
  // Reads outside the buffer are allowed here (a corrupted CIE pointer points
  // anywhere) but refused, as safe_read would refuse an unmapped one: the
  // parse and the run must end, and a parsed FDE's ranges must be ordered.
  std::mt19937_64 rng(5);
  const auto golden = cie_and_fde(kCfaProgram, 0, 40);
  std::size_t parsed = 0;
  for (int round = 0; round < 20000; ++round) {
    auto bytes = golden;
    for (int flips = 1 + static_cast<int>(rng() % 4); flips > 0; --flips) {
      bytes[rng() % bytes.size()] = static_cast<unsigned char>(rng());
    }
    const Buffer buf{bytes};
    cfi::Fde fde;
    if (!cfi::parse_fde(buf.memory(), buf.base() + 24, buf.base(), fde)) continue;
    ++parsed;
    ASSERT_LE(fde.insns, fde.insns_end);
    ASSERT_LE(fde.cie.insns, fde.cie.insns_end);
    ASSERT_LE(fde.pc_begin, fde.pc_end);
    cfi::Row initial;
    if (!cfi::run_cfa_program(buf.memory(), fde.cie.insns, fde.cie.insns_end, fde.cie, 0, fde.pc_begin,
                              UINTPTR_MAX, nullptr, initial)) {
      continue;
    }
    cfi::Row row = initial;
    (void)cfi::run_cfa_program(buf.memory(), fde.insns, fde.insns_end, fde.cie, 0, fde.pc_begin,
                               fde.pc_begin + rng() % 64, &initial, row);
  }
  EXPECT_GT(parsed, 1000u);
}

}  // namespace
}  // namespace np::console
