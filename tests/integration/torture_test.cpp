// The torture suite: programs that die in hostile ways (torture_child,
// torture_static), each run three ways inside namespace `a`, with a kernel
// UDP socket in `b` as the receiver:
//   traced     netpoll run: the runner witnesses the crash from outside;
//   no-trace   netpoll run --no-trace: the preloaded in-process crash path;
//   library    the program links netpoll's logger and crash handler itself.
// For each: the run ends in bounded time; it dies exactly as the same
// program alone does (signal, core-dump flag, core file); its last lines
// and a crash record naming the signal and the faulting function arrive —
// or, where the in-process path cannot survive what the program did, the
// runner's exit record says that no crash record came. The table of what
// survives what is in the README ("What survives what").
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
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net_helpers.h"
#include "netns.h"
#include "netpoll/console/crash_report.h"
#include "run_program.h"

namespace np::console {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;

enum class Mode { kTraced, kNoTrace, kLibrary };

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kTraced: return "Traced";
    case Mode::kNoTrace: return "NoTrace";
    case Mode::kLibrary: return "Library";
  }
  return "?";
}

struct Scenario {
  const char* name;
  int signal;            // what kills the program; 0: it exits 0
  const char* function;  // a function of the program's the witness's backtrace names
  // The in-process path reports it (no-trace and library); when false,
  // `why` says what it cannot survive.
  bool in_process;
  const char* why = "";
  bool under_asan = true;  // false: ASan owns what the scenario breaks
  // When in_process is false, a report may still come: the crash path
  // may fail to report, not must. Then it must be a right one.
  bool may_report = false;
};

// Test names and ctest's listing show these, not their bytes.
void PrintTo(const Scenario& s, std::ostream* os) { *os << s.name; }
void PrintTo(Mode m, std::ostream* os) { *os << mode_name(m); }

const Scenario kScenarios[] = {
    {"heap-overflow-segv", SIGSEGV, "heap_overflow_segv", true, "", false},
    {"heap-overflow-malloc", SIGABRT, "malloc_until_abort", true, "", false},
    {"heap-wipe", SIGSEGV, "wipe_heap_and_crash", true, "", false},
    // Whether the in-process path still reports depends on the race
    // between the wipe and the threads it breaks (netpoll's sender may
    // fault first, before its state is reached): seen both ways.
    {"anon-wipe", SIGSEGV, "wipe_anon_and_crash", false, "its own memory was overwritten", false, true},
    {"double-free", SIGABRT, "free_twice", true, "", false},
    {"stack-smash", SIGABRT, "smash_stack_frame", true},
    {"stack-overflow-main", SIGSEGV, "recurse_forever", true},
    {"stack-overflow-thread", SIGSEGV, "recurse_forever", true},
    {"abort-printing-threads", SIGABRT, "abort_while_threads_print", true},
    {"sigbus", SIGBUS, "touch_truncated_mapping", true},
    {"sigill", SIGILL, "execute_ud2", true},
    {"sigfpe", SIGFPE, "divide_by_zero", true},
    {"kill-segv", SIGSEGV, "kill_self_segv", true},
    {"crash-in-handler", SIGSEGV, "on_sigusr1", true},
    {"all-blocked", SIGSEGV, "block_all_and_crash", false, "the kernel kills before any handler runs"},
    {"own-handler-reraise", SIGSEGV, "own_handler_and_crash", false, "the program replaced the handler"},
    {"closed-fds", SIGSEGV, "close_fds_and_crash", true},
    {"reused-fds", SIGSEGV, "reuse_fds_and_crash", true},
    {"uncaught-exception", SIGABRT, "throw_uncaught", true},
    {"two-threads", SIGSEGV, "crash_together", true},
};

constexpr bool kAsan =
#if defined(__SANITIZE_ADDRESS__)
    true;
#else
    false;
#endif

class Torture : public ::testing::TestWithParam<std::tuple<Scenario, Mode>> {
 protected:
  std::string target() const { return "+6665@10.77.0.1/np0,6666@10.77.0.2/" + bed.b_mac; }

  // Runs `program` with `args` the way `mode` says; the records that
  // arrived, and how it ended.
  Outcome run_as(Mode mode, const std::string& program, const std::string& scenario) {
    switch (mode) {
      case Mode::kTraced:
        return run_program(&bed.a, {NP_NETPOLL_BIN, "run", "--quiet", "--no-echo", target(), "--", program, scenario});
      case Mode::kNoTrace:
        return run_program(&bed.a,
                   {NP_NETPOLL_BIN, "run", "--quiet", "--no-echo", "--no-trace", target(), "--", program, scenario});
      case Mode::kLibrary:
        return run_program(&bed.a, {program, scenario, "--logger", target()});
    }
    return {};
  }

  VethBed bed;
};

TEST_P(Torture, DiesAsItWouldAndIsReported) {
  const auto& [sc, mode] = GetParam();
  if (kAsan && !sc.under_asan) GTEST_SKIP() << "ASan's allocator owns the heap this scenario breaks";
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  // Read while the program runs: a printing flood must not wait in the
  // socket's buffer until the run is over.
  DatagramCollector collector(peer);
  const Outcome ours = run_as(mode, NP_TORTURE_CHILD, sc.name);
  const auto records = parse_records(collector.finish());
  const Outcome alone = run_program(nullptr, {NP_TORTURE_CHILD, sc.name});
  // What a failure shows: the records, but a long run of lines from the
  // printing threads only as its count, and every gap in the numbers.
  std::string all;
  std::size_t thread_lines = 0;
  std::uint64_t expect = 0;
  for (const auto& [seq, r] : records) {
    if (seq != expect) all += "(gap: " + std::to_string(expect) + ".." + std::to_string(seq - 1) + " missing)\n";
    expect = seq + 1;
    if (r.text.rfind("thread ", 0) == 0 && r.text.find(" line ") != std::string::npos && r.text.size() < 40) {
      ++thread_lines;
      continue;
    }
    all += "[" + std::to_string(seq) + "] " + r.text + "\n";
  }
  if (thread_lines > 0) all += "(and " + std::to_string(thread_lines) + " lines of the printing threads)\n";

  // Bounded: the in-process deadline is 2 s; the witness unwinds in well
  // under one.
  EXPECT_LT(ours.took, 8s);
  // Died as it would have: the same signal, the same core-dump flag and
  // core file.
  ASSERT_TRUE(WIFSIGNALED(alone.status)) << alone.output;
  ASSERT_EQ(WTERMSIG(alone.status), sc.signal);
  if (mode == Mode::kLibrary) {
    ASSERT_TRUE(WIFSIGNALED(ours.status)) << ours.output;
    EXPECT_EQ(WTERMSIG(ours.status), sc.signal);
    EXPECT_EQ(WCOREDUMP(ours.status), WCOREDUMP(alone.status));
  } else {
    ASSERT_TRUE(WIFEXITED(ours.status)) << ours.output;
    EXPECT_EQ(WEXITSTATUS(ours.status), 128 + sc.signal) << ours.output;
    // The runner's word on it names the signal and the core dump.
    const std::string death = std::string("killed by signal ") + std::to_string(sc.signal) + " (" +
                              console::signal_name(sc.signal) + ")" + (WCOREDUMP(alone.status) ? ", core dumped" : "");
    EXPECT_NE(all.find(death), std::string::npos) << death << "\n" << all << "\nthe runner said:\n" << ours.output;
  }
  EXPECT_EQ(ours.core_file, alone.core_file);

  // The crash record: first line names the signal; the backtrace, the
  // program's faulting function.
  const ConsoleRecord* crash = nullptr;
  for (const auto& [seq, r] : records) {
    if (r.text.rfind("crashed: ", 0) == 0 && crash == nullptr) crash = &r;
  }
  const bool reported = mode == Mode::kTraced || sc.in_process;
  if (reported) {
    ASSERT_NE(crash, nullptr) << "no crash record:\n" << all;
    EXPECT_EQ(crash->text.rfind(std::string("crashed: ") + console::signal_name(sc.signal) + " (", 0), 0u) << crash->text;
    EXPECT_NE(crash->text.find(sc.function), std::string::npos) << crash->text;
    EXPECT_EQ(crash->level, 0) << "emerg";
  } else if (crash != nullptr && sc.may_report) {
    EXPECT_EQ(crash->text.rfind(std::string("crashed: ") + console::signal_name(sc.signal) + " (", 0), 0u) << crash->text;
    EXPECT_EQ(crash->level, 0) << "emerg";
  } else {
    EXPECT_EQ(crash, nullptr) << "a crash record where none was expected (" << sc.why << "): update the table";
    if (mode == Mode::kNoTrace) {
      // Honest gaps: the runner says that no report came.
      EXPECT_NE(all.find("; no crash record: "), std::string::npos) << all;
    }
  }
  // The last lines: under netpoll run the runner forwards them (and sends
  // them before the witness's crash record); a library program logged
  // them before the hostile act.
  if (mode != Mode::kLibrary || sc.in_process) {
    std::uint64_t last_line_seq = 0;
    for (int k = 1; k <= 3; ++k) {
      bool found = false;
      for (const auto& [seq, r] : records) {
        if (r.text == "line " + std::to_string(k)) {
          found = true;
          last_line_seq = seq;
        }
      }
      EXPECT_TRUE(found) << "line " << k << " missing:\n" << all;
    }
    if (mode == Mode::kTraced && crash != nullptr) {
      for (const auto& [seq, r] : records) {
        if (&r == crash) {
          EXPECT_GT(seq, last_line_seq) << "the crash record follows the last line";
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Scenarios, Torture,
                         ::testing::Combine(::testing::ValuesIn(kScenarios),
                                            ::testing::Values(Mode::kTraced, Mode::kNoTrace, Mode::kLibrary)),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param).name;
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n + "_" + mode_name(std::get<1>(info.param));
                         });

class TortureBed : public ::testing::Test {
 protected:
  std::string target() const { return "+6665@10.77.0.1/np0,6666@10.77.0.2/" + bed.b_mac; }
  VethBed bed;
};

// A forked child crashes; the program exits 0. The witness traces forks;
// the in-process path is inherited by the child (its handler, its route).
TEST_F(TortureBed, AForkedChildsCrashIsReportedEveryWay) {
  const std::vector<std::vector<std::string>> ways = {
      {NP_NETPOLL_BIN, "run", "--quiet", "--no-echo", target(), "--", NP_TORTURE_CHILD, "fork-crash"},
      {NP_NETPOLL_BIN, "run", "--quiet", "--no-echo", "--no-trace", target(), "--", NP_TORTURE_CHILD, "fork-crash"},
      {NP_TORTURE_CHILD, "fork-crash", "--logger", target()},
  };
  for (const auto& argv : ways) {
    UdpSocket peer(bed.b, bed.b_ip, 6666);
    const Outcome ours = run_program(&bed.a, argv);
    ASSERT_TRUE(WIFEXITED(ours.status)) << argv[1];
    EXPECT_EQ(WEXITSTATUS(ours.status), 0) << argv[1] << ": " << ours.output;
    const auto records = collect_records(peer);
    std::string all;
    bool crash = false;
    for (const auto& [seq, r] : records) {
      all += r.text + "\n";
      if (r.text.rfind("crashed: SIGSEGV (SEGV_MAPERR", 0) == 0 &&
          r.text.find("crash_forked_child") != std::string::npos)
        crash = true;
    }
    EXPECT_TRUE(crash) << argv[1] << " " << argv[2] << ":\n" << all;
    if (argv[0] == NP_NETPOLL_BIN) {
      EXPECT_NE(all.find("parent saw child signal 11\n"), std::string::npos) << all;  // forwarded by the runner
    }
  }
}

// A statically linked program: no preload is possible; the witness does
// not need one. Without tracing, the runner says so, once, and the exit
// record says that no crash record came.
TEST_F(TortureBed, AStaticProgramIsWitnessedAndWithoutTracingTheRunnerSaysWhy) {
  {
    UdpSocket peer(bed.b, bed.b_ip, 6666);
    const Outcome ours =
        run_program(&bed.a, {NP_NETPOLL_BIN, "run", "--quiet", "--no-echo", target(), "--", NP_TORTURE_STATIC, "segv"});
    EXPECT_EQ(WEXITSTATUS(ours.status), 128 + SIGSEGV) << ours.output;
    const auto records = collect_records(peer);
    bool crash = false;
    std::string all;
    for (const auto& [seq, r] : records) {
      all += r.text + "\n";
      if (r.text.rfind("crashed: SIGSEGV", 0) == 0 && r.text.find("crash_null_write") != std::string::npos) crash = true;
    }
    EXPECT_TRUE(crash) << all;
    EXPECT_NE(all.find("line 3\n"), std::string::npos) << all;
  }
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  const Outcome ours = run_program(&bed.a, {NP_NETPOLL_BIN, "run", "--quiet", "--no-echo", "--no-trace", target(), "--",
                                    NP_TORTURE_STATIC, "segv"});
  EXPECT_EQ(WEXITSTATUS(ours.status), 128 + SIGSEGV);
  EXPECT_NE(ours.output.find("is statically linked: the crash path cannot be preloaded into it"), std::string::npos)
      << ours.output;
  const auto records = collect_records(peer);
  std::string all;
  for (const auto& [seq, r] : records) all += r.text + "\n";
  EXPECT_EQ(all.find("crashed: "), std::string::npos) << all;
  EXPECT_NE(all.find("killed by signal 11 (SIGSEGV)"), std::string::npos) << all;
  EXPECT_NE(all.find("; no crash record: "), std::string::npos) << all;
}

// SIGKILL: nobody can see it coming; the exit record says so.
TEST_F(TortureBed, ADeathBySigkillSaysWhyThereIsNoCrashRecord) {
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  const Outcome ours =
      run_program(&bed.a, {NP_NETPOLL_BIN, "run", "--quiet", "--no-echo", target(), "--", "/bin/sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(WEXITSTATUS(ours.status), 128 + SIGKILL);
  const auto records = collect_records(peer);
  std::string all;
  for (const auto& [seq, r] : records) all += r.text + "\n";
  EXPECT_NE(all.find("killed by signal 9 (SIGKILL); no crash record: SIGKILL ends a process before anything can look "
                     "at it"),
            std::string::npos)
      << all;
}

}  // namespace
}  // namespace np::console
