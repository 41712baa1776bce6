// netpoll run against the kernel: unmodified programs, run inside
// namespace `a`, their output and their crash reaching a kernel socket in
// `b`, their exit status passed through.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "net_helpers.h"
#include "netns.h"
#include "run_program.h"
#include "netpoll/wire/netconsole.h"

namespace np::console {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;

// The sanitizer build's programs carry ASan (run_program.h).
const std::string kAsanEnv =
#if defined(__SANITIZE_ADDRESS__)
    std::string("env ASAN_OPTIONS=") + kSanitizedChildOptions + " ";
#else
    "";
#endif

class RunCommand : public ::testing::Test {
 protected:
  // Runs `netpoll run TARGET -- command` in `a`; returns its exit status.
  int run(const std::string& command, std::string* output = nullptr, const std::string& options = "") {
    std::string out;
    const int rc = sh(bed.a.exec() + kAsanEnv + NP_NETPOLL_BIN + " run --quiet " + options + " '+6665@/np0,6666@10.77.0.2/" +
                          bed.b_mac + "' -- " + command,
                      &out);
    if (output != nullptr) *output = out;
    return rc;
  }
  VethBed bed;
};

TEST_F(RunCommand, ForwardsOutputLinesAndTheCrashOfAnUnmodifiedProgram) {
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  std::string output;
  const int rc = run("sh -c 'echo one; echo two >&2; echo three; kill -SEGV $$'", &output);
  EXPECT_EQ(rc, 128 + SIGSEGV);
  EXPECT_NE(output.find("one\n"), std::string::npos) << output;  // passed through too
  const auto records = collect_records(peer);
  ASSERT_EQ(records.size(), 5u);
  std::map<std::string, std::uint64_t> seq_of;
  std::uint64_t expected = 0;
  for (const auto& [seq, r] : records) {
    EXPECT_EQ(seq, expected++) << "one sequence, no gap";
    seq_of[r.text.substr(0, r.text.find('\n'))] = seq;
  }
  ASSERT_TRUE(seq_of.count("one") && seq_of.count("two") && seq_of.count("three"));
  EXPECT_EQ(records.at(seq_of["one"]).level, 6);  // stdout: info
  EXPECT_EQ(records.at(seq_of["two"]).level, 3);  // stderr: err
  EXPECT_LT(seq_of["one"], seq_of["three"]);
  // The crash record, sent by the program itself, after its last output.
  const ConsoleRecord& crash = records.at(3);
  EXPECT_EQ(crash.level, 0);
  EXPECT_EQ(crash.text.rfind("crashed: SIGSEGV (SI_USER", 0), 0u) << crash.text;
  EXPECT_NE(crash.text.find("\nbacktrace:\n"), std::string::npos);
  // And the runner's word on how it ended.
  const ConsoleRecord& last = records.at(4);
  EXPECT_EQ(last.text.rfind("netpoll run: sh (pid ", 0), 0u) << last.text;
  EXPECT_NE(last.text.find(") killed by signal 11 (SIGSEGV)"), std::string::npos) << last.text;
}

TEST_F(RunCommand, ReportsAStackOverflowInAThreadOfAnUnmodifiedProgram) {
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  const int rc = run(std::string(NP_CRASH_CHILD) + " control-thread-stack");
  EXPECT_EQ(rc, 128 + SIGSEGV);
  const auto records = collect_records(peer);
  // The line, the crash record, the main thread's stack (the witness
  // unwinds every thread), the runner's exit record.
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records.at(0).text, "about to overflow a thread's stack");
  const std::string& crash = records.at(1).text;
  EXPECT_EQ(crash.rfind("crashed: SIGSEGV (SEGV_", 0), 0u) << crash;
  EXPECT_NE(crash.find("recurse_forever(int)+0x"), std::string::npos) << "demangled: " << crash;
  EXPECT_NE(crash.find("crash_child.cpp:"), std::string::npos) << "source lines: " << crash;
  EXPECT_NE(crash.find("(2 threads stopped)"), std::string::npos) << crash;
  const std::string& main_thread = records.at(2).text;
  EXPECT_NE(main_thread.find(", at the crash of thread "), std::string::npos) << main_thread;
  EXPECT_NE(main_thread.find(" main+0x"), std::string::npos) << "the main thread waits in join: " << main_thread;
  EXPECT_NE(crash.find("   (the frame above "), std::string::npos) << "a recursion is one line: " << crash;
}

// crashy's stdout is a pipe, so glibc holds its lines in a buffer that the
// crash never flushes: the witness reads them out of the program's memory
// and sends them before the crash record.
TEST_F(RunCommand, LinesTheCLibraryStillHeldArriveBeforeTheCrashRecord) {
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  EXPECT_EQ(run(NP_CRASHY), 128 + SIGSEGV);
  const auto records = collect_records(peer);
  ASSERT_EQ(records.size(), 6u);
  EXPECT_EQ(records.at(0).text, "crashy starting: 3 jobs");
  EXPECT_EQ(records.at(1).text, "job 1 (warm-up) running");
  EXPECT_EQ(records.at(3).text, "job 3 (publish) running");
  EXPECT_EQ(records.at(4).text.rfind("crashed: SIGSEGV (SEGV_MAPERR", 0), 0u) << records.at(4).text;
  EXPECT_NE(records.at(4).text.find("store_result"), std::string::npos) << records.at(4).text;
}

TEST_F(RunCommand, PassesTheExitStatusThrough) {
  EXPECT_EQ(run("sh -c 'exit 0'"), 0);
  EXPECT_EQ(run("sh -c 'exit 7'"), 7);
  EXPECT_EQ(run("sh -c 'kill -TERM $$'"), 128 + SIGTERM);
  std::string output;
  EXPECT_EQ(run("/nonexistent/program", &output), 127);
  EXPECT_NE(output.find("netpoll run: cannot run /nonexistent/program: No such file or directory"), std::string::npos)
      << output;
}

// Standard error's lines take their place among standard output's by
// when they were written, as the runner sees it: when it reads them (two
// pipes; lines that wait in both when the runner wakes are taken in one
// order). --pace keeps the runner a second behind the program: a burst of
// 20,000 lines waits in the runner while an error line is written 300 ms
// after it; the error line must not overtake the burst's last lines, nor
// be overtaken by the lines written 300 ms after it. (At 50 ms apart, a
// runner kept from its CPU that long on a loaded 2-CPU machine read both
// in one wake-up, once in a CI run; so did err-2 and the second burst
// when they were written back to back, in another. Every switch between
// the streams is now 300 ms apart.) Every record arrives, numbered in
// that order.
TEST_F(RunCommand, StandardErrorLinesKeepTheirPlaceAmongStandardOutputs) {
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  DatagramCollector collector(peer);
  ASSERT_EQ(run("sh -c 'seq 1 20000; sleep 0.3; echo err-1 >&2; sleep 0.3; echo out-after; sleep 0.3; "
                "echo err-2 >&2; sleep 0.3; seq 20001 25000; sleep 0.3; echo err-3 >&2'",
                nullptr, "--pace 20000"),
            0);
  const auto records = parse_records(collector.finish());
  std::vector<std::string> want;
  for (int i = 1; i <= 20000; ++i) want.push_back(std::to_string(i));
  want.insert(want.end(), {"err-1", "out-after", "err-2"});
  for (int i = 20001; i <= 25000; ++i) want.push_back(std::to_string(i));
  want.push_back("err-3");
  ASSERT_EQ(records.size(), want.size() + 1) << "every line and the exit record";
  std::uint64_t expected = 0;
  std::size_t wrong = 0;
  for (const auto& [seq, r] : records) {
    EXPECT_EQ(seq, expected) << "no gap";
    if (expected < want.size() && r.text != want[expected] && wrong++ < 5) {
      ADD_FAILURE() << "record " << expected << " is '" << r.text << "', written as line '" << want[expected] << "'";
    }
    ++expected;
  }
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(records.at(20000).level, 3) << "standard error: err";
  EXPECT_EQ(records.at(20001).level, 6) << "standard output: info";
}

// A line of 2500 bytes is one record (Linux's 1024 is no limit here); one
// of 20,000 is three, 8190 + 8190 + 3620 bytes (a record's body at most
// 8191, the most netconsd takes), flagged 'c', '+', '+'.
TEST_F(RunCommand, LongLinesBecomeContinuationRecords) {
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  EXPECT_EQ(run("sh -c 'head -c 2500 /dev/zero | tr \"\\\\0\" x; echo; head -c 20000 /dev/zero | tr \"\\\\0\" y; echo'"),
            0);
  const auto records = collect_records(peer);
  ASSERT_EQ(records.size(), 5u);  // 2500, 8190 + 8190 + 3620, and the exit record
  EXPECT_EQ(records.at(0).text, std::string(2500, 'x'));
  EXPECT_FALSE(records.at(0).continuation);
  EXPECT_EQ(records.at(1).text, std::string(8190, 'y'));
  EXPECT_TRUE(records.at(1).continuation);
  EXPECT_FALSE(records.at(1).follows);
  EXPECT_EQ(records.at(2).text, std::string(8190, 'y'));
  EXPECT_TRUE(records.at(2).continuation && records.at(2).follows);
  EXPECT_EQ(records.at(3).text, std::string(20000 - 2 * 8190, 'y'));
  EXPECT_TRUE(records.at(3).continuation && records.at(3).follows);
  EXPECT_FALSE(records.at(4).continuation);  // the exit record
}

// The limit and what happens beyond it, where a user looks: both commands'
// --help (the same lines go the same way under netpoll run).
TEST(RunCommandHelp, ConsoleAndRunStateTheLongestWholeLineAndTheContinuationRecords) {
  std::string console_help, run_help;
  ASSERT_EQ(sh(std::string(NP_NETPOLL_BIN) + " console --help", &console_help), 0);
  ASSERT_EQ(sh(std::string(NP_NETPOLL_BIN) + " run --help", &run_help), 0);
  EXPECT_NE(console_help.find("Long lines are sent whole. A record carries at most 8191 bytes (its text,\n"
                              "newline, userdata and sysdata), the most netconsd takes: a line of up to\n"
                              "8190 bytes goes as one record"),
            std::string::npos)
      << console_help;
  EXPECT_NE(console_help.find("A longer line goes as several\nrecords cut between UTF-8 characters, the first "
                              "flagged 'c' and the others\n'+' in the extended header"),
            std::string::npos)
      << console_help;
  EXPECT_NE(console_help.find("--stats\ncounts these records as \"continued\"."), std::string::npos) << console_help;
  EXPECT_NE(run_help.find("Long lines are sent whole, as netpoll console sends them: a line of up to\n"
                          "8190 bytes goes as one record (a record carries at most 8191 bytes"),
            std::string::npos)
      << run_help;
  EXPECT_NE(run_help.find("a longer one as several\nrecords cut between UTF-8 characters, flagged 'c' then '+'"),
            std::string::npos)
      << run_help;
}

}  // namespace
}  // namespace np::console
