// netdump end to end: a process's core, made in the process, sent through
// netpoll's path across a veth pair to `netpoll dumpd` in the peer
// namespace, opened by gdb with the program. `netpoll run --dump` (the
// crash path after the crash record), a program that broke its heap, and
// the library's live dump (the process goes on).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "alloc_guard.h"
#include "dump_server.h"
#include "listener.h"
#include "netns.h"
#include "netpoll/core/options.h"
#include "netpoll/netdump/dumper.h"
#include "temp_dir.h"

namespace np::tools {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;
namespace fs = std::filesystem;

// The files dumpd kept under `dir` whose names end with `suffix`.
std::vector<fs::path> kept(const fs::path& dir, const std::string& suffix) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(e.path());
  }
  return out;
}

// Waits (bounded) until dumpd has kept one complete core; its path.
fs::path wait_for_core(const fs::path& dir, const DumpServer& server) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto cores = kept(dir, ".core"); !cores.empty()) return cores.front();
    std::this_thread::sleep_for(20ms);
  }
  ADD_FAILURE() << "no complete core; dumpd said:\n" << server.err();
  return {};
}

std::string gdb(const std::string& program, const fs::path& core, const std::vector<std::string>& commands) {
  std::string cmd = "gdb -batch -nx";
  for (const auto& c : commands) cmd += " -ex '" + c + "'";
  cmd += " " + program + " " + core.string() + " 2>&1";
  std::string out;
  sh(cmd, &out);
  return out;
}

std::string run_with_dump(const VethBed& bed, const std::vector<std::string>& program, int* status,
                          const std::string& options = "") {
  std::string cmd = bed.a.exec() + kNetpollBin + " run --new-stream --dump " + bed.b_ip + " " + options + " '+6665@/" +
                    bed.a_if + ",6666@" + bed.b_ip + "/' --";
  for (const auto& p : program) cmd += " " + p;
  std::string out;
  *status = sh(cmd + " 2>&1", &out);
  return out;
}

TEST(NetdumpOverVeth, RunDumpSendsTheCrashedProgramsCoreAndGdbOpensIt) {
  VethBed bed;
  TempDir dir;
  DumpServer server(bed.b, {"--dir", (dir.path() / "cores").string(), "--quiet"}, dir);
  int status = 0;
  const std::string out = run_with_dump(bed, {NP_CORE_CHILD, "plain"}, &status);
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(killed by signal 11 \(SIGSEGV\); core sent to 10\.77\.0\.2:20023 \(\d+ bytes in \d+ ms\)\n)")))
      << out;
  const fs::path core = wait_for_core(dir.path() / "cores", server);
  ASSERT_FALSE(core.empty());
  EXPECT_EQ(core.parent_path().filename(), "10.77.0.1");
  // The .json beside it: what the herald said and how it went.
  const std::string json = read_file(fs::path(core).replace_extension(".json"));
  for (const char* says : {"\"complete\":true", "\"kind\":\"crash\"", "\"program\":\"core_child\"", "\"signal\":11",
                           "\"threads\":4", "\"client_port\":20024"}) {
    EXPECT_NE(json.find(says), std::string::npos) << says << " in " << json;
  }
  const std::string g = gdb(NP_CORE_CHILD, core,
                            {"thread apply all bt", "print core_child_global", "print core_child_heap_string",
                             "info sharedlibrary"});
  EXPECT_NE(g.find("Program terminated with signal SIGSEGV"), std::string::npos) << g;
  // The faulting thread is the current one, its function on top.
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(\n#0 [^\n]*crash_in_delta_function)"))) << g;
  EXPECT_EQ(count_matches(g, R"(\nThread \d+ \(Thread 0x[0-9a-f]+ \(LWP \d+\)\))"), 4u) << g;
  for (const char* fn : {"waits_in_alpha_read", "sleeps_in_beta_nanosleep", "blocks_in_gamma_condvar", " in main ("}) {
    EXPECT_NE(g.find(fn), std::string::npos) << fn << "\n" << g;
  }
  EXPECT_NE(g.find("$1 = 424242"), std::string::npos) << g;
  EXPECT_NE(g.find("\"netpoll core child heap string\""), std::string::npos) << g;
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(Yes\s+/[^\n]*/libc\.so\.6)"))) << g;
  server.stop();
  const std::string err = server.err();
  EXPECT_NE(err.find("sessions 1, complete 1, partial 0,"), std::string::npos) << err;
  EXPECT_NE(err.find("stranger 0"), std::string::npos) << err;
  EXPECT_NE(err.find("acks failed 0,"), std::string::npos) << err;
}

TEST(NetdumpOverVeth, AProgramThatBrokeItsHeapStillSendsACoreGdbOpens) {
  VethBed bed;
  TempDir dir;
  DumpServer server(bed.b, {"--dir", (dir.path() / "cores").string(), "--quiet"}, dir);
  int status = 0;
  // Zeroes the heap, malloc's metadata included, then faults.
  const std::string out = run_with_dump(bed, {NP_TORTURE_CHILD, "heap-wipe"}, &status);
  const fs::path core = wait_for_core(dir.path() / "cores", server);
  ASSERT_FALSE(core.empty()) << out;
  const std::string g = gdb(NP_TORTURE_CHILD, core, {"bt", "info sharedlibrary"});
  EXPECT_NE(g.find("Program terminated with signal"), std::string::npos) << g;
  EXPECT_NE(g.find("heap_wipe"), std::string::npos) << g;
  EXPECT_NE(g.find("libc.so.6"), std::string::npos) << g;
}

TEST(NetdumpOverVeth, NoServerIsSaidInTheExitRecordWithinTheDumpDeadline) {
  VethBed bed;
  int status = 0;
  const auto start = std::chrono::steady_clock::now();
  const std::string out = run_with_dump(bed, {NP_CORE_CHILD, "plain"}, &status, "--dump-deadline 1");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_NE(out.find("killed by signal 11 (SIGSEGV); core not sent: no dump server answered at 10.77.0.2:20023 "
                     "(timed out)\n"),
            std::string::npos)
      << out;
}

TEST(NetdumpOverVeth, ALiveDumpLeavesTheProcessRunningAndGdbSeesWhereItWas) {
  VethBed bed;
  TempDir dir;
  DumpServer server(bed.b, {"--dir", (dir.path() / "cores").string(), "--quiet"}, dir);
  std::unique_ptr<netdump::Dumper> dumper;
  {
    ScopedNetns in(bed.a);
    netdump::DumperConfig cfg;
    auto parsed = core::parse_targets("20024@/" + bed.a_if + ",20023@" + bed.b_ip + "/");
    ASSERT_TRUE(parsed);
    cfg.stream.client.target = parsed->targets.at(0);
    cfg.stream.client.target.device = "packet:" + bed.a_if;
    auto d = netdump::Dumper::setup(std::move(cfg));
    ASSERT_TRUE(d) << d.error().message;
    dumper = std::move(*d);
  }
  AllocGuard guard;
  const netdump::DumpOutcome o = dumper->dump_live();
  EXPECT_EQ(guard.stop(), 0u);
  ASSERT_TRUE(o.complete) << to_string(o.error);
  EXPECT_EQ(o.core.signal, 0);
  EXPECT_GT(o.core.bytes_sent, 0u);
  EXPECT_EQ(dumper->stream().stats().finished.value(), 1u);
  // Still here, and the core says where this thread was.
  const fs::path core = wait_for_core(dir.path() / "cores", server);
  ASSERT_FALSE(core.empty());
  const std::string json = read_file(fs::path(core).replace_extension(".json"));
  EXPECT_NE(json.find("\"kind\":\"live\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"pid\":" + std::to_string(::getpid())), std::string::npos) << json;
  const std::string g = gdb("/proc/" + std::to_string(::getpid()) + "/exe", core, {"bt"});
  EXPECT_NE(g.find("ALiveDumpLeavesTheProcessRunningAndGdbSeesWhereItWas"), std::string::npos) << g;
  EXPECT_NE(g.find("dump_live"), std::string::npos) << g;
}

}  // namespace
}  // namespace np::tools
