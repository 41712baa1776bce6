// The crash path against the real kernel: child programs (crash_child) that
// crash in the ways a dying process does, inside namespace `a`; a kernel
// UDP socket in `b` must receive their last records and a crash record,
// and each must die exactly as the same crash without netpoll dies.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "net_helpers.h"
#include "netns.h"
#include "run_program.h"
#include "netpoll/wire/netconsole.h"

namespace np::console {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;

Outcome run_child(const Netns* ns, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {NP_CRASH_CHILD};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(ns, argv);
}

class CrashPath : public ::testing::Test {
 protected:
  void check(const std::string& scenario, const std::string& control, int signal, int last_words,
             const std::string& first_line_prefix) {
    UdpSocket peer(bed.b, bed.b_ip, 6666);
    const Outcome ours = run_child(&bed.a, {scenario, "+6665@10.77.0.1/np0,6666@10.77.0.2/" + bed.b_mac});
    const Outcome theirs = run_child(nullptr, {control});
    // Died of the same signal, with the same core-dump behaviour, as the
    // same crash without netpoll.
    ASSERT_TRUE(WIFSIGNALED(ours.status)) << "status " << ours.status;
    EXPECT_EQ(WTERMSIG(ours.status), signal);
    ASSERT_TRUE(WIFSIGNALED(theirs.status));
    EXPECT_EQ(WTERMSIG(ours.status), WTERMSIG(theirs.status));
    EXPECT_EQ(WCOREDUMP(ours.status), WCOREDUMP(theirs.status));
    EXPECT_EQ(ours.core_file, theirs.core_file);

    const auto records = collect_records(peer);
    ASSERT_EQ(records.size(), static_cast<std::size_t>(last_words + 1)) << "records that arrived";
    std::uint64_t seq = 0;
    for (const auto& [s, r] : records) {
      EXPECT_EQ(s, seq++) << "no gap";
      if (s < static_cast<std::uint64_t>(last_words)) {
        EXPECT_EQ(r.text, "last words " + std::to_string(s + 1));
      }
    }
    const ConsoleRecord& crash = records.rbegin()->second;
    EXPECT_EQ(crash.level, 0) << "emerg";
    const std::string text = crash.text + "\n";
    EXPECT_EQ(text.rfind(first_line_prefix, 0), 0u) << text;
    EXPECT_NE(text.find("\nthread "), std::string::npos) << text;
    EXPECT_NE(text.find("\nrip 0x"), std::string::npos) << text;
    EXPECT_NE(text.find("\nbacktrace:\n#0 0x"), std::string::npos) << text;
    last_report_ = text;
  }

  VethBed bed;
  std::string last_report_;
};

// glibc's heap, broken on purpose: under AddressSanitizer, ASan's allocator
// and its memset check catch the corruption first, so the scenario would
// test ASan, not us. The optimised build runs it.
constexpr bool kAsanOwnsTheHeap =
#if defined(__SANITIZE_ADDRESS__)
    true;
#else
    false;
#endif

TEST_F(CrashPath, CorruptedHeapThenSegfault) {
  if (kAsanOwnsTheHeap) GTEST_SKIP() << "ASan replaces glibc's heap; the optimised build runs this";
  check("heap-segv", "control-segv", SIGSEGV, 3,
        "crashed: SIGSEGV (SEGV_MAPERR: address not mapped) at address 0x0000000000000010\n");
  EXPECT_NE(last_report_.find("segfault_now"), std::string::npos) << last_report_;
  EXPECT_NE(last_report_.find("(crash-child)"), std::string::npos) << last_report_;
}

TEST_F(CrashPath, StackOverflow) {
  check("stack-overflow", "control-stack", SIGSEGV, 3, "crashed: SIGSEGV (SEGV_");
  EXPECT_NE(last_report_.find("recurse_forever"), std::string::npos) << last_report_;
}

TEST_F(CrashPath, AbortWhileAnotherThreadHoldsTheTransmitLock) {
  check("abort-lock-held", "control-abort", SIGABRT, 3, "crashed: SIGABRT (SI_TKILL");
  // Call-frame information takes the backtrace out of libc (built without
  // frame pointers): abort, then the program's main.
  EXPECT_NE(last_report_.find(" abort+0x"), std::string::npos) << last_report_;
  // (g++ may have moved main's unlikely path into main.cold.)
  EXPECT_TRUE(last_report_.find(" main+0x") != std::string::npos ||
              last_report_.find(" main.cold+0x") != std::string::npos)
      << last_report_;
  EXPECT_NE(last_report_.find(" _start+0x"), std::string::npos) << "to the outermost frame: " << last_report_;
}

// The same, when the sender thread took the records first: the device
// being busy, its sends wait in the deferred queue, which the crash path
// sends before its own records (the crash route alone would leave them).
TEST_F(CrashPath, RecordsWaitingForTheHeldDeviceStillGoOutBeforeTheCrashRecord) {
  check("abort-lock-held-deferred", "control-abort", SIGABRT, 3, "crashed: SIGABRT (SI_TKILL");
}

TEST_F(CrashPath, CrashInsideMalloc) {
  if (kAsanOwnsTheHeap) GTEST_SKIP() << "ASan replaces glibc's malloc; the optimised build runs this";
  check("crash-in-malloc", "control-malloc", SIGABRT, 3, "crashed: SIGABRT (SI_TKILL");
}

TEST_F(CrashPath, EveryRecordStillInTheRingGoesOutBeforeTheCrashRecord) {
  check("burst-segv", "control-segv", SIGSEGV, 500, "crashed: SIGSEGV (SEGV_MAPERR");
}

TEST_F(CrashPath, TheProgramClosedEveryDescriptorNetpollHeld) {
  check("closed-fds-segv", "control-segv", SIGSEGV, 3, "crashed: SIGSEGV (SEGV_MAPERR");
}

TEST_F(CrashPath, TheProgramReusedNetpollsDescriptorsForFiles) {
  check("reused-fds-segv", "control-segv", SIGSEGV, 3, "crashed: SIGSEGV (SEGV_MAPERR");
}

TEST_F(CrashPath, ADeadlineEndsAReportThatCannotFinishAndTheProcessDiesAsItWould) {
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  const auto start = std::chrono::steady_clock::now();
  const Outcome ours = run_child(&bed.a, {"deadline-segv", "+6665@10.77.0.1/np0,6666@10.77.0.2/" + bed.b_mac});
  const auto took = std::chrono::steady_clock::now() - start;
  const Outcome theirs = run_child(nullptr, {"control-segv"});
  ASSERT_TRUE(WIFSIGNALED(ours.status));
  EXPECT_EQ(WTERMSIG(ours.status), SIGSEGV);
  EXPECT_EQ(WCOREDUMP(ours.status), WCOREDUMP(theirs.status));
  EXPECT_EQ(ours.core_file, theirs.core_file);
  // The handler would have waited 10 s; the 300 ms deadline ended it.
  EXPECT_LT(took, 5s);
  // What was sent before the deadline still arrived: the last words.
  const auto records = collect_records(peer);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records.at(2).text, "last words 3");
}

TEST_F(CrashPath, AFaultInsideTheReportDiesOfTheOriginalSignal) {
  const Outcome ours = run_child(&bed.a, {"fault-in-report-abort", "+6665@10.77.0.1/np0,6666@10.77.0.2/" + bed.b_mac});
  const Outcome theirs = run_child(nullptr, {"control-abort"});
  ASSERT_TRUE(WIFSIGNALED(ours.status)) << ours.status;
  EXPECT_EQ(WTERMSIG(ours.status), SIGABRT) << "not the SIGSEGV of the handler's own fault";
  EXPECT_EQ(WCOREDUMP(ours.status), WCOREDUMP(theirs.status));
  EXPECT_EQ(ours.core_file, theirs.core_file);
}

}  // namespace
}  // namespace np::console
