// The gdb stub end to end: stock gdb (from apt), in the peer namespace,
// attaches over UDP (`target remote udp:IP:PORT`) to a process in the
// other namespace through netpoll's path: a crashed program under
// `netpoll run --gdb`, and a live one that breaks in.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "background.h"
#include "dump_server.h"
#include "listener.h"
#include "net_helpers.h"
#include "netns.h"
#include "temp_dir.h"

namespace np::tools {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;
namespace fs = std::filesystem;

const std::string kBin = NP_NETPOLL_BIN;
const std::string kChild = NP_GDB_CHILD;

// gdb in batch mode inside `ns`, attached to udp:ADDRESS, running
// `commands`; what it printed.
std::string gdb_remote(const Netns& ns, const std::string& program, const std::string& address,
                       const std::vector<std::string>& commands, const std::vector<std::string>& before = {}) {
  std::string cmd = ns.exec() + "timeout 240 gdb -batch -nx -ex 'set pagination off' -ex 'set confirm off'";
  for (const auto& c : before) cmd += " -ex '" + c + "'";
  cmd += " -ex 'target remote udp:" + address + "'";
  for (const auto& c : commands) cmd += " -ex '" + c + "'";
  cmd += " " + program + " 2>&1";
  std::string out;
  sh(cmd, &out);
  return out;
}

std::string run_crash_command(const VethBed& bed, int wait_s) {
  return bed.a.exec() + kBin + " run --new-stream --gdb --gdb-wait " + std::to_string(wait_s) + " '+6665@/" +
         bed.a_if + ",6666@" + bed.b_ip + "/' -- " + kChild + " crash";
}

// What gdb says about the crashed gdb_child (the assertions every crash
// session shares).
void expect_crash_session(const std::string& g) {
  // The faulting thread is current, its function and line on top, its
  // caller below.
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(\n#0  (0x[0-9a-f]+ in )?crash_in_delta_function \(\) at [^\n]*gdb_child\.cpp:\d+)"))) << g;
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(\n#1  0x[0-9a-f]+ in caller_with_locals \(depth=21\) at [^\n]*gdb_child\.cpp:\d+)")))
      << g;
  // Every thread, with its name.
  for (const char* name : {"\"gdb_child\"", "\"alpha-reader\"", "\"beta-sleeper\"", "\"gamma-waiter\""})
    EXPECT_EQ(count_matches(g, std::string(R"(\n[* ] +\d+ +Thread \d+ )") + name), 1u) << name << "\n" << g;
  // A frame inside libc resolves (the reader thread waits in read(2)).
  EXPECT_TRUE(std::regex_search(g, std::regex(R"("alpha-reader" +0x[0-9a-f]+ in [_A-Za-z]*read \([^\n]*\) at [^\n]*read\.c:\d+)")))
      << g;
  EXPECT_NE(g.find("$1 = 515151"), std::string::npos) << g;
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(0x[0-9a-f]+:\s+"netpoll gdb child heap string")"))) << g;
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(0x[0-9a-f]+ +0x[0-9a-f]+ +Yes[^\n]*/libc\.so\.6)"))) << g;
  EXPECT_NE(g.find("local_counter = 31337"), std::string::npos) << g;
  EXPECT_NE(g.find("local_twice = 42"), std::string::npos) << g;
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(\[Inferior 1 \(Remote target\) killed\])"))) << g;
}

const std::vector<std::string> kCrashCommands = {
    "bt", "info threads", "print gdb_child_global", "x/s gdb_child_heap_string", "info sharedlibrary",
    "frame 1", "info locals", "kill"};

TEST(GdbStubOverVeth, RunGdbServesACrashedProgramAndKillEndsItWithItsSignal) {
  VethBed bed;
  TempDir dir;
  UdpSocket console(bed.b, bed.b_ip, 6666);
  DatagramCollector collector(console);
  Background run(run_crash_command(bed, 60), dir, "run");
  ASSERT_TRUE(run.wait_for("waiting 60 s for gdb at udp:10.77.0.1:6443", 20s)) << run.err();
  const std::string g = gdb_remote(bed.b, kChild, "10.77.0.1:6443", kCrashCommands);
  expect_crash_session(g);
  const int status = run.wait(30s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGSEGV);
  const std::string err = run.err();
  EXPECT_NE(err.find("killed by signal 11 (SIGSEGV)"), std::string::npos) << err;
  EXPECT_TRUE(std::regex_search(err, std::regex(R"(netpoll gdb: session ended \(killed\): packets \d+, resends \d+, strangers 0, garbage 0, bad packets 0)")))
      << err;
  // The crash record ends with the command that attaches.
  const auto records = parse_records(collector.finish());
  bool found = false;
  for (const auto& [seq, r] : records) {
    if (r.level != 0) continue;  // the crash record is the one at emerg
    const std::string want = "stopped for gdb (60 s): gdb " + kChild + " -ex 'target remote udp:10.77.0.1:6443'";
    EXPECT_TRUE(r.text.ends_with(want)) << r.text;
    found = true;
  }
  EXPECT_TRUE(found) << "no crash record";
}

TEST(GdbStubOverVeth, TheProgramsChildrenKeepTheCrashPathWithoutTheStubsPort) {
  VethBed bed;
  TempDir dir;
  // A shell that starts children: the stub's port is the program's; each
  // child (also preloaded) must neither fight for it nor lose its crash
  // path, nor say anything on the program's standard error.
  Background run(bed.a.exec() + kBin + " run --new-stream --gdb '+6665@/" + bed.a_if + ",6666@" + bed.b_ip +
                     "/' -- sh -c 'sleep 0.1; sleep 0.1; /bin/true; echo end'",
                 dir, "run");
  const int status = run.wait(30s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << run.err();
  EXPECT_EQ(run.err().find("crash path not installed"), std::string::npos) << run.err();
  EXPECT_NE(run.out().find("end\n"), std::string::npos) << run.out();
}

TEST(GdbStubOverVeth, TheCrashSessionCompletesUnderLossBothWays) {
  VethBed bed;
  TempDir dir;
  // 15 % of the stub's datagrams and of gdb's are dropped, at each veth
  // end's egress.
  lose_udp_each_way(bed, 15, random_udp_loss("sport 6443", 15), random_udp_loss("dport 6443", 15));
  Background run(run_crash_command(bed, 200), dir, "run");
  ASSERT_TRUE(run.wait_for("waiting 200 s for gdb at udp:10.77.0.1:6443", 20s)) << run.err();
  // gdb waits a second (not two) for an answer before it asks again. Its
  // side of the protocol goes to a file, shown if the test fails: once in
  // CI gdb printed a wrong value here (a reply taken for another request's).
  const fs::path protocol = dir.path() / "remote-protocol.log";
  const std::string g = gdb_remote(bed.b, kChild, "10.77.0.1:6443", kCrashCommands,
                                   {"set remotetimeout 1", "set logging file " + protocol.string(),
                                    "set logging debugredirect on", "set logging enabled on", "set debug remote 1"});
  expect_crash_session(g);
  const int status = run.wait(60s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGSEGV);
  expect_losses_each_way(bed);
  if (HasFailure()) {
    std::ifstream in(protocol);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    const std::size_t from = lines.size() > 600 ? lines.size() - 600 : 0;
    std::cerr << "gdb's side of the protocol, its last " << lines.size() - from << " of " << lines.size()
              << " lines:\n";
    for (std::size_t i = from; i < lines.size(); ++i) std::cerr << lines[i] << "\n";
    std::cerr << "the runner's standard error:\n" << run.err() << "\n";
  }
}

TEST(GdbStubOverVeth, ASecondPeerIsRefusedWhileASessionIsOpenAndGarbageIsCounted) {
  VethBed bed;
  TempDir dir;
  ASSERT_TRUE(sh_ok(bed.b.exec() + "ip addr add 10.77.0.3/24 dev " + bed.b_if));
  Background run(run_crash_command(bed, 60), dir, "run");
  ASSERT_TRUE(run.wait_for("waiting 60 s for gdb at udp:10.77.0.1:6443", 20s)) << run.err();
  // Before any gdb: datagrams that hold no valid packet are counted as
  // garbage and not answered; a bare acknowledgement (gdb opens with one)
  // is not garbage.
  UdpSocket noise(bed.b, bed.b_ip, 40001);
  for (const char* junk : {"hello", "$qC#00", "+"}) {
    const std::string_view j(junk);
    ASSERT_TRUE(noise.send_to("10.77.0.1", 6443, std::as_bytes(std::span(j.data(), j.size()))));
  }
  EXPECT_FALSE(noise.receive(300ms).has_value());
  // gdb attaches, then waits (a shell command inside gdb) until the test
  // has tried a second peer.
  const fs::path sent = dir.path() / "sent", attached = dir.path() / "attached";
  Background gdb(bed.b.exec() + "timeout 120 gdb -batch -nx -ex 'set pagination off' -ex 'set confirm off' -ex 'target remote udp:10.77.0.1:6443' -ex 'shell touch " +
                     attached.string() + "; timeout 20 sh -c \"while [ ! -e " + sent.string() +
                     " ]; do sleep 0.05; done\"' -ex bt -ex kill " + kChild,
                 dir, "gdb");
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!fs::exists(attached) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(fs::exists(attached)) << gdb.out() << gdb.err();
  UdpSocket stranger(bed.b, "10.77.0.3", 40002);
  const std::string q = "$?#3f";
  ASSERT_TRUE(stranger.send_to("10.77.0.1", 6443, std::as_bytes(std::span(q.data(), q.size()))));
  EXPECT_FALSE(stranger.receive(500ms).has_value()) << "the stub answered a second peer";
  { std::ofstream touch(sent); }
  const int gdb_status = gdb.wait(60s);
  EXPECT_TRUE(WIFEXITED(gdb_status) && WEXITSTATUS(gdb_status) == 0) << gdb.out() << gdb.err();
  EXPECT_TRUE(std::regex_search(gdb.out(), std::regex(R"(\n#0  (0x[0-9a-f]+ in )?crash_in_delta_function \(\))"))) << gdb.out();
  const int status = run.wait(30s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGSEGV);
  const std::string err = run.err();
  EXPECT_TRUE(std::regex_search(err, std::regex(R"(session ended \(killed\): packets \d+, resends \d+, strangers 1, garbage 2, bad packets 0)")))
      << err;
}

TEST(GdbStubOverVeth, BreakInStopsALiveProgramAndGdbStepsThroughItToItsNormalEnd) {
  VethBed bed;
  TempDir dir;
  Background child(bed.a.exec() + kChild + " breakin " + bed.a_if + " 10.77.0.1 6443", dir, "child");
  ASSERT_TRUE(child.wait_for("ready", 20s)) << child.err();
  const std::string g = gdb_remote(bed.b, kChild, "10.77.0.1:6443",
                                   {"bt 2", "break add_square", "continue", "next", "finish", "delete", "continue"});
  // Stopped where it broke in, in main.
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(#1  0x[0-9a-f]+ in main \([^\n]*gdb_child\.cpp:\d+)"))) << g;
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(Breakpoint 1 at 0x[0-9a-f]+: file [^\n]*gdb_child\.cpp, line \d+\.)"))) << g;
  // Hit in add_square; `next` then shows a later line of it (which lines
  // depends on the optimiser: the sanitizer build's -O1 stops on the
  // function's first line).
  std::smatch hit;
  ASSERT_TRUE(std::regex_search(
      g, hit, std::regex(R"(hit Breakpoint 1, add_square \(i=(i@entry=)?0\) at [^\n]*gdb_child\.cpp:(\d+)\n\d+\t[^\n]*\n(\d+)\t)")))
      << g;
  EXPECT_GT(std::stoi(hit[3].str()), std::stoi(hit[2].str())) << g;
  EXPECT_EQ(count_matches(g, "hit Breakpoint 1"), 1u) << g;  // deleted before it could be hit again
  // finish: back in main, on the line that called it, with its value.
  EXPECT_TRUE(std::regex_search(
      g, std::regex(R"(in main \([^\n]*\) at [^\n]*gdb_child\.cpp:\d+\n\d+\s+for \(int i = 0; i < 4; \+\+i\) total \+= add_square\(i\);\nValue returned is \$1 = 0\n)")))
      << g;
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(\[Inferior 1 \(Remote target\) exited with code 03\])"))) << g;
  const int status = child.wait(30s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_EQ(child.out(), "ready\ntotal 14\n");
}

TEST(GdbStubOverVeth, NoGdbInTimeAndTheCoreGoesToDumpdBeforeTheProgramDies) {
  VethBed bed;
  TempDir dir;
  DumpServer server(bed.b, {"--dir", (dir.path() / "cores").string(), "--quiet"}, dir);
  Background run(bed.a.exec() + kBin + " run --new-stream --gdb --gdb-wait 2 --dump " + bed.b_ip + " '+6665@/" +
                     bed.a_if + ",6666@" + bed.b_ip + "/' -- " + kChild + " crash",
                 dir, "run");
  const int status = run.wait(60s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGSEGV);
  const std::string err = run.err();
  EXPECT_NE(err.find("waiting 2 s for gdb at udp:10.77.0.1:6443"), std::string::npos) << err;
  EXPECT_NE(err.find("netpoll gdb: session ended (no gdb in time): packets 0,"), std::string::npos) << err;
  EXPECT_TRUE(std::regex_search(err, std::regex(R"(killed by signal 11 \(SIGSEGV\); core sent to 10\.77\.0\.2:20023 \(\d+ bytes in \d+ ms\))")))
      << err;
  // The core the dump server kept holds every thread (the stub let them go
  // and the core writer stopped them again).
  fs::path core;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (core.empty() && std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(dir.path() / "cores"))
      for (const auto& e : fs::recursive_directory_iterator(dir.path() / "cores"))
        if (e.path().extension() == ".core") core = e.path();
    if (core.empty()) std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(core.empty()) << "no complete core; dumpd said:\n" << server.err();
  const std::string json = read_file(fs::path(core).replace_extension(".json"));
  for (const char* says : {"\"complete\":true", "\"signal\":11", "\"threads\":4"})
    EXPECT_NE(json.find(says), std::string::npos) << says << " in " << json;
}

TEST(GdbStubOverVeth, GdbsInterruptStopsTheRunningProgramWhichGoesOnWhenToldTo) {
  VethBed bed;
  TempDir dir;
  Background child(bed.a.exec() + kChild + " spin " + bed.a_if + " 10.77.0.1 6443", dir, "child");
  ASSERT_TRUE(child.wait_for("ready", 20s)) << child.err();
  // gdb's own pid (ip netns exec execs it), for its Ctrl-C.
  const fs::path pidfile = dir.path() / "gdb.pid";
  Background gdb("echo $$ > " + pidfile.string() + "; exec " + bed.b.exec() +
                     "gdb -batch -nx -ex 'set pagination off' -ex 'target remote udp:10.77.0.1:6443' -ex continue "
                     "-ex 'bt 1' -ex 'thread 6' -ex stepi -ex stepi -ex 'print $pc' -ex 'info threads' -ex 'thread 1' "
                     "-ex 'set var gdb_child_told = 1' -ex continue " + kChild,
                 dir, "gdb");
  // The program says when gdb has let it go; gdb then waits for a stop.
  ASSERT_TRUE(child.wait_for("running", 30s)) << gdb.out() << gdb.err();
  const pid_t gdb_pid = std::stoi(read_file(pidfile));
  ASSERT_EQ(::kill(gdb_pid, SIGINT), 0);
  const int gdb_status = gdb.wait(60s);
  EXPECT_TRUE(WIFEXITED(gdb_status) && WEXITSTATUS(gdb_status) == 0) << gdb_status;
  const std::string g = gdb.out() + gdb.err();
  EXPECT_NE(g.find("Thread 1 \"gdb_child\" received signal SIGINT, Interrupt."), std::string::npos) << g;
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(\n#0  (0x[0-9a-f]+ in )?spin_until_told \(\) at [^\n]*gdb_child\.cpp:\d+)"))) << g;
  // A thread held while another serves is stepped on its own: thread 6
  // (created sixth: main, the stub's watcher, alpha, beta, gamma, epsilon)
  // is still the current one, two instructions on, in its function. (gdb
  // leaves the address out of a frame whose pc starts a line, as the
  // loop's first instruction does.)
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(\[Switching to thread 6 \(Thread \d+\)\]\n#0  (0x[0-9a-f]+ in )?spins_in_epsilon \(\))")))
      << g;
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(\$1 = \(void \(\*\)\(void\)\) 0x[0-9a-f]+ <spins_in_epsilon\(\)\+\d+>)"))) << g;
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(\n\* 6 +Thread \d+ "epsilon-spinner" +(0x[0-9a-f]+ in )?spins_in_epsilon \(\))"))) << g;
  EXPECT_TRUE(std::regex_search(g, std::regex(R"(\[Inferior 1 \(Remote target\) exited with code 04\])"))) << g;
  const int status = child.wait(30s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 4);
  EXPECT_EQ(child.out(), "ready\nrunning\ntold\n");
}

TEST(GdbStubOverVeth, ContinuingACrashedProgramLetsItDieOfItsSignal) {
  VethBed bed;
  TempDir dir;
  Background run(run_crash_command(bed, 60), dir, "run");
  ASSERT_TRUE(run.wait_for("waiting 60 s for gdb at udp:10.77.0.1:6443", 20s)) << run.err();
  const std::string g = gdb_remote(bed.b, kChild, "10.77.0.1:6443", {"continue"});
  EXPECT_NE(g.find("Program terminated with signal SIGSEGV, Segmentation fault."), std::string::npos) << g;
  const int status = run.wait(30s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGSEGV);
  EXPECT_NE(run.err().find("netpoll gdb: session ended (continued: the program dies of its signal)"), std::string::npos)
      << run.err();
}

}  // namespace
}  // namespace np::tools
