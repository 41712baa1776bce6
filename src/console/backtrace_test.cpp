#include "netpoll/console/backtrace.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "alloc_guard.h"
#include "netpoll/console/symbolizer.h"
#include "test_support.h"

// Three nested calls with names we know. noipa: never inlined, cloned or
// merged; the store after each call keeps it from being a tail call (a
// sibling call would reuse the caller's frame and drop it from the trace).
namespace {
volatile std::size_t g_bt_sink = 0;
std::array<std::uintptr_t, 32> g_bt_frames{};
}  // namespace

extern "C" [[gnu::noipa]] std::size_t np_bt_inner() {
  const std::size_t n = np::console::backtrace_here(g_bt_frames);
  g_bt_sink = g_bt_sink + n;
  return n;
}
extern "C" [[gnu::noipa]] std::size_t np_bt_middle() {
  const std::size_t n = np_bt_inner();
  g_bt_sink = g_bt_sink + 1;
  return n;
}
extern "C" [[gnu::noipa]] std::size_t np_bt_outer() {
  const std::size_t n = np_bt_middle();
  g_bt_sink = g_bt_sink + 1;
  return n;
}

namespace np::console {
namespace {

// The name of the function a return address returns into.
std::string caller_name(std::uintptr_t return_address) {
  const Symbol s = test_symbolizer().lookup(return_address - 1);
  return s.function == nullptr ? "??" : s.function;
}

TEST(BacktraceHere, ListsThreeNestedCallersInOrder) {
  const std::size_t n = np_bt_outer();
  ASSERT_GE(n, 4u);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < n; ++i) names.push_back(caller_name(g_bt_frames[i]));
  EXPECT_EQ(names[0], "np_bt_inner");
  EXPECT_EQ(names[1], "np_bt_middle");
  EXPECT_EQ(names[2], "np_bt_outer");
  // and then this test's body, which called them
  EXPECT_NE(names[3].find("ListsThreeNestedCallersInOrder"), std::string::npos) << names[3];
}

// A context as a signal handler would get it, with the registers the walk reads.
ucontext_t context(std::uintptr_t rip, std::uintptr_t rsp, std::uintptr_t rbp) {
  ucontext_t uc{};
  uc.uc_mcontext.gregs[REG_RIP] = static_cast<greg_t>(rip);
  uc.uc_mcontext.gregs[REG_RSP] = static_cast<greg_t>(rsp);
  uc.uc_mcontext.gregs[REG_RBP] = static_cast<greg_t>(rbp);
  return uc;
}

// Readable code: the walk then takes RIP as it is and starts from RBP.
const std::uintptr_t kPc = address_of(reinterpret_cast<const void*>(&np_bt_inner)) + 4;

TEST(BacktraceFromContext, StopsAtAGarbageFramePointerWithoutCrashing) {
  alignas(16) std::uintptr_t readable[4] = {};
  const std::uintptr_t garbage[] = {
      0x10,                                  // unmapped, aligned
      0x00007ffffffff000,                    // top of user space, unmapped
      0xdeadbeefdeadbee0,                    // non-canonical: not even an address
      address_of(readable) + 3,              // readable but misaligned
      0,                                     // the outermost frame's null RBP
  };
  for (const std::uintptr_t rbp : garbage) {
    std::array<std::uintptr_t, 16> out{};
    const ucontext_t uc = context(kPc, address_of(readable), rbp);
    ASSERT_EQ(backtrace_from_context(uc, out), 1u) << std::hex << rbp;
    EXPECT_EQ(out[0], kPc);
  }
}

// Real return addresses for fake stacks (the walk takes only words that
// follow a call instruction): the ones after np_bt_inner's direct call to
// backtrace_here, np_bt_middle's to np_bt_inner and np_bt_outer's to
// np_bt_middle.
struct Returns {
  std::uintptr_t into_inner, into_middle, into_outer;
};
Returns real_returns() {
  np_bt_outer();
  return {g_bt_frames[0], g_bt_frames[1], g_bt_frames[2]};
}

TEST(BacktraceFromContext, FollowsAChainUntilItTurnsBack) {
  // Three frames on a fake stack, each [saved RBP, return address]; the
  // third points back down, which no real caller's frame does.
  const Returns r = real_returns();
  alignas(16) std::uintptr_t stack[8] = {};
  const auto at = [&](int i) { return address_of(&stack[i]); };
  stack[0] = at(2), stack[1] = r.into_inner;
  stack[2] = at(4), stack[3] = r.into_middle;
  stack[4] = at(0), stack[5] = r.into_outer;
  std::array<std::uintptr_t, 16> out{};
  ASSERT_EQ(backtrace_from_context(context(kPc, 0, at(0)), out), 4u);
  EXPECT_EQ(out[0], kPc);
  EXPECT_EQ(out[1], r.into_inner);
  EXPECT_EQ(out[2], r.into_middle);
  EXPECT_EQ(out[3], r.into_outer);
}

TEST(BacktraceFromContext, StopsAtAReturnAddressThatFollowsNoCall) {
  const Returns r = real_returns();
  alignas(16) std::uintptr_t stack[8] = {};
  const auto at = [&](int i) { return address_of(&stack[i]); };
  stack[0] = at(2), stack[1] = r.into_inner;
  stack[2] = at(4), stack[3] = 0x2222;  // RBP used as a plain register would look like this
  stack[4] = at(6), stack[5] = r.into_outer;
  std::array<std::uintptr_t, 16> out{};
  ASSERT_EQ(backtrace_from_context(context(kPc, 0, at(0)), out), 2u);
  EXPECT_EQ(out[1], r.into_inner);
}

TEST(BacktraceFromContext, EndsAtAZeroReturnAddress) {
  const Returns r = real_returns();
  alignas(16) std::uintptr_t stack[4] = {};
  stack[0] = address_of(&stack[2]), stack[1] = r.into_inner;
  stack[2] = 0, stack[3] = 0;  // what _start leaves as the outermost frame
  std::array<std::uintptr_t, 16> out{};
  EXPECT_EQ(backtrace_from_context(context(kPc, 0, address_of(&stack[0])), out), 2u);
}

TEST(BacktraceFromContext, IsBoundedByItsOutput) {
  // An ever-rising chain: only the size of `out` ends it.
  const Returns r = real_returns();
  alignas(16) std::uintptr_t stack[64] = {};
  for (int i = 0; i + 3 < 64; i += 2) {
    stack[i] = address_of(&stack[i + 2]);
    stack[i + 1] = i % 4 == 0 ? r.into_inner : r.into_middle;
  }
  std::array<std::uintptr_t, 5> out{};
  EXPECT_EQ(backtrace_from_context(context(kPc, 0, address_of(&stack[0])), out), 5u);
  EXPECT_EQ(out[4], r.into_middle);
  EXPECT_EQ(backtrace_from_context(context(kPc, 0, address_of(&stack[0])), std::span<std::uintptr_t>()), 0u);
}

TEST(BacktraceFromContext, TakesTheReturnAddressAtRspFromAFramelessCallee) {
  // A leaf without a frame faulted inside backtrace_here (the callee of
  // np_bt_inner's call): its return address is at RSP, RBP is still the
  // caller's frame.
  const Returns r = real_returns();
  const std::uintptr_t in_callee = address_of(reinterpret_cast<const void*>(&backtrace_here)) + 1;
  alignas(16) std::uintptr_t stack[4] = {};
  stack[0] = r.into_inner;                 // at RSP
  stack[2] = 0, stack[3] = r.into_middle;  // the caller's frame
  std::array<std::uintptr_t, 16> out{};
  ASSERT_EQ(backtrace_from_context(context(in_callee, address_of(&stack[0]), address_of(&stack[2])), out), 3u);
  EXPECT_EQ(out[0], in_callee);
  EXPECT_EQ(out[1], r.into_inner);
  EXPECT_EQ(out[2], r.into_middle);
}

TEST(BacktraceFromContext, IgnoresAWordAtRspThatIsNoReturnIntoTheCaller) {
  const Returns r = real_returns();
  const std::uintptr_t in_callee = address_of(reinterpret_cast<const void*>(&backtrace_here)) + 1;
  // (in a shared library: far from this executable's code)
  const std::uintptr_t elsewhere = address_of(reinterpret_cast<const void*>(&::getpid)) + 1;
  alignas(16) std::uintptr_t stack[4] = {};
  stack[2] = 0, stack[3] = r.into_middle;
  struct Case {
    const char* what;
    std::uintptr_t pc, at_rsp;
  };
  const Case cases[] = {
      {"a return from a call to another function", elsewhere, r.into_inner},
      {"a data pointer", in_callee, address_of(g_bt_frames.data())},
      {"a stack address (a saved RBP)", in_callee, address_of(&stack[2])},
      {"a small integer", in_callee, 0x4242},
  };
  for (const Case& c : cases) {
    stack[0] = c.at_rsp;
    std::array<std::uintptr_t, 16> out{};
    ASSERT_EQ(backtrace_from_context(context(c.pc, address_of(&stack[0]), address_of(&stack[2])), out), 2u) << c.what;
    EXPECT_EQ(out[1], r.into_middle) << c.what;
  }
}

TEST(BacktraceFromContext, TakesTheReturnAddressAtRspWhenThePcIsUnmapped) {
  // A call through a null function pointer: RIP is 0, the call pushed its
  // return address at RSP, and RBP is still the caller's frame.
  const Returns r = real_returns();
  alignas(16) std::uintptr_t stack[4] = {};
  stack[0] = r.into_inner;
  stack[2] = 0, stack[3] = r.into_middle;
  std::array<std::uintptr_t, 16> out{};
  ASSERT_EQ(backtrace_from_context(context(0, address_of(&stack[0]), address_of(&stack[2])), out), 3u);
  EXPECT_EQ(out[0], 0u);
  EXPECT_EQ(out[1], r.into_inner);
  EXPECT_EQ(out[2], r.into_middle);
  // A word that follows no call instruction is not taken.
  stack[0] = 0x4242;
  ASSERT_EQ(backtrace_from_context(context(0, address_of(&stack[0]), address_of(&stack[2])), out), 2u);
  EXPECT_EQ(out[1], r.into_middle);
}

TEST(BacktraceFromContext, LeavesErrnoAsItWas) {
  std::array<std::uintptr_t, 4> out{};
  errno = 1234;
  backtrace_from_context(context(0, 0x10, 0x10), out);  // every read fails with EFAULT
  EXPECT_EQ(errno, 1234);
  backtrace_here(out);
  EXPECT_EQ(errno, 1234);
}

TEST(Backtrace, AllocatesNothing) {
  const Returns r = real_returns();
  alignas(16) std::uintptr_t stack[4] = {};
  stack[0] = address_of(&stack[2]), stack[1] = r.into_inner;
  std::array<std::uintptr_t, 32> out{};
  testing::AllocGuard guard;
  const std::size_t here = backtrace_here(out);
  const std::size_t from_context = backtrace_from_context(context(kPc, 0, address_of(&stack[0])), out);
  EXPECT_EQ(guard.stop(), 0u);
  EXPECT_GE(here, 1u);
  EXPECT_EQ(from_context, 2u);
}

}  // namespace
}  // namespace np::console
