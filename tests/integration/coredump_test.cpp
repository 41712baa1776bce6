// netpoll coredump fed by hand (its standard input from a file, no
// core_pattern: tests/integration/serial/ has the kernel's own): its help,
// its errors, a server that does not answer, and a core that arrives at
// netpoll dumpd byte for byte, with loss each way and without.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "dump_server.h"
#include "listener.h"
#include "netns.h"
#include "temp_dir.h"

namespace np::tools {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;
namespace fs = std::filesystem;

std::string sha256(const fs::path& p) {
  std::string out;
  EXPECT_EQ(sh("sha256sum " + p.string(), &out), 0) << out;
  return out.substr(0, out.find(' '));
}

// `netpoll coredump ARGS < input`: its exit status and standard error.
struct Helper {
  int status = -1;
  std::string err;
  std::chrono::milliseconds took{};
};
Helper coredump(const std::string& args, const std::string& input) {
  Helper h;
  const auto start = std::chrono::steady_clock::now();
  h.status = sh("(" + kNetpollBin + " coredump " + args + " < " + input + " 2>&1 >/dev/null)", &h.err);
  h.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  return h;
}

// The .core and .json files dumpd wrote for `pid` under `dir`.
std::pair<fs::path, fs::path> dump_files(const fs::path& dir, std::uint32_t pid) {
  std::pair<fs::path, fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find("-" + std::to_string(pid) + "-") == std::string::npos) continue;
    if (name.ends_with(".core")) out.first = e.path();
    if (name.ends_with(".json")) out.second = e.path();
  }
  return out;
}

// A core as netpoll's own writer makes it (core_child live: four threads,
// holes where its pages were zeros); the kernel's is in serial/.
fs::path make_core(const TempDir& dir) {
  const fs::path core = dir.path() / "input.core";
  std::string out;
  EXPECT_EQ(sh(std::string(NP_CORE_CHILD) + " live " + core.string() + " < /dev/null", &out), 0) << out;
  return core;
}

TEST(CoredumpCommand, HelpShowsTheCorePatternLineAndWhatTheKernelDoes) {
  std::string help;
  ASSERT_EQ(sh(kNetpollBin + " coredump --help", &help), 0);
  EXPECT_EQ(help.rfind("usage: netpoll coredump --to HOST[:PORT] [options] PID SIGNAL COMM\n", 0), 0u) << help;
  for (const char* says :
       {"  echo '|/usr/bin/netpoll coredump --to 10.0.0.2 %P %s %e' \\\n      > /proc/sys/kernel/core_pattern\n",
        "  --to HOST[:PORT] ", "  --device DEV ", "  --local-port N ", "(default 20024, netdump's)",
        "  --netns NAME ", "/var/run/netns/NAME", "  --timeout S ", "(default 300)", "  --quiet ",
        "runs as root in the initial\nnamespaces", "RLIMIT_CORE is not applied to a pipe, except that a limit of 1 means no\ncore",
        "core_pipe_limit", "/dev/kmsg", "gdb PROGRAM CORE"}) {
    EXPECT_NE(help.find(says), std::string::npos) << says;
  }
  std::string top;
  ASSERT_EQ(sh(kNetpollBin + " --help", &top), 0);
  EXPECT_NE(top.find("  coredump   the kernel's core_pattern helper: every core of the host to dumpd\n"),
            std::string::npos)
      << top;
}

TEST(CoredumpCommand, ABadArgumentSaysWhatIsWrong) {
  const std::pair<std::string, std::string> cases[] = {
      {"1 11 prog", "--to HOST[:PORT] is required (the dump server)"},
      {"--to 10.0.0.2", "expected PID SIGNAL COMM (the kernel's %P %s %e) after the options, got 0 words"},
      {"--to 10.0.0.2 1 11", "expected PID SIGNAL COMM (the kernel's %P %s %e) after the options, got 2 words"},
      {"--to 10.0.0.300 1 11 prog",
       "--to '10.0.0.300': expected HOST[:PORT] with an IPv4 address, e.g. 10.0.0.2:20023"},
      {"--to 10.0.0.2:0 1 11 prog", "--to '10.0.0.2:0': expected a port from 1 to 65535 after ':'"},
      {"--to 10.0.0.2 pid 11 prog", "PID 'pid': expected a whole number from 1 to 2147483647 (the kernel's %P)"},
      {"--to 10.0.0.2 0 11 prog", "PID '0': expected a whole number from 1 to 2147483647 (the kernel's %P)"},
      {"--to 10.0.0.2 1 0 prog", "SIGNAL '0': expected a whole number from 1 to 127 (the kernel's %s)"},
      {"--to 10.0.0.2 1 -11 prog", "SIGNAL '-11': expected a whole number from 1 to 127 (the kernel's %s)"},
      {"--to 10.0.0.2 --timeout 0 1 11 prog", "--timeout '0': expected seconds, more than 0 and at most 86400"},
      {"--to 10.0.0.2 --netns ../x 1 11 prog", "--netns '../x': expected a name in /var/run/netns"},
      {"--to 10.0.0.2 --bogus 1 11 prog", "unknown option --bogus"},
  };
  for (const auto& [args, message] : cases) {
    const Helper h = coredump(args, "/dev/null");
    EXPECT_EQ(h.status, 2) << args;
    EXPECT_EQ(h.err, "netpoll coredump: " + message + "\nTry 'netpoll coredump --help'.\n") << args;
  }
}

TEST(CoredumpCommand, TakesEverythingFromPidOnAsTheKernelsWords) {
  // A program may be named "--x" or "-bash"; an older kernel splits a
  // name with spaces: every word after SIGNAL is the name. Empty input
  // ends it early, before the network: the name is in the message.
  const Helper dashes = coredump("--to 10.0.0.2 --quiet 7 6 --weird name here", "/dev/null");
  EXPECT_EQ(dashes.status, 1);
  EXPECT_EQ(dashes.err, "netpoll coredump: --weird name here pid 7 signal 6: no core on standard input, nothing sent\n");
}

TEST(CoredumpCommand, EmptyInputSendsNothingAndFails) {
  const Helper h = coredump("--to 10.0.0.2 1234 11 prog", "/dev/null");
  EXPECT_EQ(h.status, 1);
  EXPECT_EQ(h.err, "netpoll coredump: prog pid 1234 signal 11: no core on standard input, nothing sent\n");
  EXPECT_LT(h.took, 2s) << "nothing to wait for";
}

TEST(CoredumpCommand, ANamespaceThatDoesNotExistIsAFailure) {
  const Helper h = coredump("--to 10.0.0.2 --netns np-no-such-namespace 1234 11 prog", "/dev/null");
  EXPECT_EQ(h.status, 1);
  EXPECT_EQ(h.err, "netpoll coredump: prog pid 1234 signal 11: core not sent: cannot open "
                   "/var/run/netns/np-no-such-namespace: No such file or directory\n");
}

TEST(CoredumpCommand, NoServerIsAClearFailureInBoundedTime) {
  VethBed bed;
  TempDir dir;
  const fs::path core = make_core(dir);
  // The peer's kernel answers ARP, nobody listens on port 20023.
  const Helper h = coredump("--netns " + bed.a.name() + " --to " + bed.b_ip + " 1234 11 prog", core.string());
  EXPECT_EQ(h.status, 1);
  const std::string want = "netpoll coredump: prog pid 1234 signal 11: core not sent to " + bed.b_ip +
                           ":20023 (" + bed.b_ip + ":20023 via packet:" + bed.a_if + " from " + bed.a_ip +
                           ":20024): no answer from the server (herald sent 25 times in ";
  EXPECT_EQ(h.err.rfind(want, 0), 0u) << h.err;
  EXPECT_LT(h.took, 15s);
}

TEST(CoredumpCommand, TheTimeoutBoundsAHelperWithoutAServer) {
  VethBed bed;
  TempDir dir;
  const fs::path core = make_core(dir);
  const Helper h =
      coredump("--netns " + bed.a.name() + " --to " + bed.b_ip + " --timeout 1 1234 11 prog", core.string());
  EXPECT_EQ(h.status, 1);
  EXPECT_NE(h.err.find(": the --timeout ran out before the server answered\n"), std::string::npos) << h.err;
  EXPECT_LT(h.took, 4s);
}

// The same core twice, once over a clean link and once with a fifth of
// the datagrams lost each way: both files at the server are the input,
// byte for byte (its holes read back as the zeros they stand for).
TEST(CoredumpCommand, ACoreArrivesByteIdenticalWithAndWithoutLossEachWay) {
  VethBed bed;
  TempDir dir;
  const fs::path core = make_core(dir);
  const fs::path dumps = dir.path() / "dumps";
  DumpServer d(bed.b, {"--dir", dumps.string(), "--bind", bed.b_ip}, dir);
  const std::string to = "--netns " + bed.a.name() + " --to " + bed.b_ip;

  const Helper clean = coredump(to + " --device " + bed.a_if + " 4242 11 core_child", core.string());
  ASSERT_EQ(clean.status, 0) << clean.err << d.err();
  ASSERT_TRUE(d.wait_for(" pid 4242: ")) << d.err();
  // A fifth each way, every fifth datagram: the acks are few (ranges).
  lose_udp_each_way(bed, 20, every_nth_udp_loss("sport 20024", 5), every_nth_udp_loss("dport 20024", 5));
  const Helper lossy = coredump(to + " 4243 6 core_child", core.string());
  ASSERT_EQ(lossy.status, 0) << lossy.err << d.err();
  ASSERT_TRUE(d.wait_for(" pid 4243: ")) << d.err();
  expect_losses_each_way(bed);

  const auto [clean_core, clean_json] = dump_files(dumps, 4242);
  const auto [lossy_core, lossy_json] = dump_files(dumps, 4243);
  ASSERT_FALSE(clean_core.empty()) << d.err();
  ASSERT_FALSE(lossy_core.empty()) << d.err();
  const std::string want = sha256(core);
  EXPECT_EQ(sha256(clean_core), want);
  EXPECT_EQ(sha256(lossy_core), want);
  EXPECT_EQ(fs::file_size(lossy_core), fs::file_size(core));

  // What the helper said: the size, the threads, and the retransmits
  // the loss cost (none without it).
  const std::string size = std::to_string(fs::file_size(core));
  const auto retransmits = [](const std::string& err) {
    auto end = err.rfind(" retransmits\n");
    if (end == std::string::npos) end = err.rfind(" retransmit\n");
    const auto start = err.rfind(' ', end - 1);
    return end == std::string::npos ? -1 : std::stoi(err.substr(start + 1, end - start - 1));
  };
  EXPECT_EQ(clean.err.rfind("netpoll coredump: core_child pid 4242 signal 11: ", 0), 0u) << clean.err;
  EXPECT_NE(clean.err.find(" core (4 threads) sent to " + bed.b_ip + ":20023 via packet:" + bed.a_if + " from " +
                           bed.a_ip + ":20024 in "),
            std::string::npos)
      << clean.err;
  // A fifth of the transmissions lost, and the core whole (above). Full
  // packets in a row go out as one segmented transmission (up to 44 of
  // ~300), which the rule, before the kernel cuts it, drops whole: the
  // drops are fewer than the packets they hold, and the resends many. The
  // count the helper prints is not checked against the drops: a dropped
  // copy of a packet whose ack was lost needs no resend, and without loss
  // some go again too, when an ack is late.
  EXPECT_GE(dropped_by_loss_rule(bed.a), 5);
  EXPECT_GT(retransmits(lossy.err), 20) << lossy.err;
  EXPECT_EQ(count_of(lossy.err, "\n"), 1u) << "one line: " << lossy.err;

  const std::string json = read_file(lossy_json);
  for (const std::string& field : std::vector<std::string>{"\"complete\":true,", "\"kind\":\"kernel\",\"program\":\"core_child\",\"pid\":4243,"
                                                        "\"signal\":6,\"threads\":4,",
                                  "\"size\":" + size + ",", "\"file_size\":" + size + ","}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << "\n" << json;
  }
}

// A core cut short (the kernel's write failed, or the input is not a
// whole core) still goes to the server, which keeps it as partial; the
// helper says so and fails.
TEST(CoredumpCommand, ACutCoreIsSentAndKeptAsPartial) {
  VethBed bed;
  TempDir dir;
  const fs::path core = make_core(dir);
  const fs::path cut = dir.path() / "cut.core";
  fs::copy_file(core, cut);
  fs::resize_file(cut, 100'000);
  const fs::path dumps = dir.path() / "dumps";
  DumpServer d(bed.b, {"--dir", dumps.string(), "--bind", bed.b_ip}, dir);
  const Helper h = coredump("--netns " + bed.a.name() + " --to " + bed.b_ip + " 77 11 core_child", cut.string());
  EXPECT_EQ(h.status, 1);
  EXPECT_NE(h.err.find("; the server keeps it as partial: it ended at 97.7 KiB of "), std::string::npos) << h.err;
  ASSERT_TRUE(d.wait_for("dump partial: ")) << d.err();
  EXPECT_NE(d.err().find(": the client gave up; "), std::string::npos) << d.err();
}

}  // namespace
}  // namespace np::tools
