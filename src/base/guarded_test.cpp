#include "netpoll/base/guarded.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

namespace np {
namespace {

// Runs `fn` in a child process; its wait status.
template <class Fn>
int in_child(Fn fn) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The fault must kill the child, not be reported by a sanitizer's handler.
    ::signal(SIGSEGV, SIG_DFL);
    ::signal(SIGBUS, SIG_DFL);
    fn();
    ::_exit(0);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return st;
}

TEST(GuardedRegion, PlacesObjectsAlignedUntilFull) {
  auto r = GuardedRegion::map(100, "test");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size(), static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
  auto* a = r->make<char>('x');
  auto* b = r->make<std::uint64_t>(7u);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b) % alignof(std::uint64_t), 0u);
  EXPECT_TRUE(r->contains(b, sizeof *b));
  EXPECT_EQ(r->take(r->size(), 1), nullptr) << "more than is left";
  EXPECT_FALSE(r->contains(r->data() + r->size()));
}

TEST(GuardedRegion, AnOverrunIntoItFaultsOnTheGuardPage) {
  auto r = GuardedRegion::map(4096, "test");
  ASSERT_TRUE(r);
  std::byte* before = r->data() - 1;
  std::byte* after = r->data() + r->size();
  EXPECT_TRUE(WIFSIGNALED(in_child([&] { *reinterpret_cast<volatile std::byte*>(before) = std::byte{1}; })));
  EXPECT_TRUE(WIFSIGNALED(in_child([&] { *reinterpret_cast<volatile std::byte*>(after) = std::byte{1}; })));
  const int ok = in_child([&] { *reinterpret_cast<volatile std::byte*>(r->data()) = std::byte{1}; });
  EXPECT_TRUE(WIFEXITED(ok) && WEXITSTATUS(ok) == 0);
}

TEST(GuardedRegion, ASealedRegionRefusesWritesAndKeepsItsBytes) {
  auto r = GuardedRegion::map(4096, "test");
  ASSERT_TRUE(r);
  auto* v = r->make<int>(42);
  ASSERT_TRUE(r->seal());
  const int st = in_child([&] { *reinterpret_cast<volatile int*>(v) = 1; });
  ASSERT_TRUE(WIFSIGNALED(st));
  EXPECT_EQ(WTERMSIG(st), SIGSEGV);
  EXPECT_EQ(*v, 42);
  ASSERT_TRUE(r->unseal());
  *v = 43;
  EXPECT_EQ(*v, 43);
}

TEST(GuardedRegion, PopulatingKeepsWhatThePagesHold) {
  // netpoll run backs its record ring once its program runs, with records
  // possibly in it already: every byte stays, in the process and in a
  // child whose pages fork() made copy-on-write.
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  auto r = GuardedRegion::map(4 * page, "test");
  ASSERT_TRUE(r);
  for (std::size_t i = 0; i < r->size(); ++i) r->data()[i] = static_cast<std::byte>(i * 7 + 1);
  const auto intact = [&] {
    for (std::size_t i = 0; i < r->size(); ++i) {
      if (r->data()[i] != static_cast<std::byte>(i * 7 + 1)) return false;
    }
    return true;
  };
  r->populate();
  EXPECT_TRUE(intact());
  // Both ways: MADV_POPULATE_WRITE, and the touch of each page that older
  // kernels get.
  for (const bool by_touch : {false, true}) {
    const int st = in_child([&] {
      if (by_touch) {
        detail::touch_each_page(r->data(), r->size());
      } else {
        r->populate();
      }
      ::_exit(intact() ? 0 : 1);
    });
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << by_touch << " " << st;
  }
}

}  // namespace
}  // namespace np
