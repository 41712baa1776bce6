// Remote commands end to end: a program under `netpoll run --commands` (or
// with the library's command server) in one namespace, `netpoll cmd` in
// the other sending it commands through the veth pair, the console stream
// read there by a kernel UDP socket, and stock gdb where a command leads
// to it. Forged datagrams are made with the command layer and sent from a
// kernel socket, as anyone on the network could.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "background.h"
#include "dump_server.h"
#include "listener.h"
#include "net_helpers.h"
#include "netns.h"
#include "netpoll/base/bytes.h"
#include "netpoll/base/clock.h"
#include "netpoll/command/key.h"
#include "netpoll/command/verifier.h"
#include "netpoll/wire/command.h"
#include "temp_dir.h"

namespace np::tools {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;
namespace fs = std::filesystem;

const std::string kCmdChild = NP_CMD_CHILD;

// A key made by netpoll keygen in the test's directory.
std::string cmds_keygen(const TempDir& dir, const std::string& name = "key") {
  const std::string path = (dir.path() / name).string();
  std::string out;
  EXPECT_EQ(sh(kNetpollBin + " keygen " + path + " 2>&1", &out), 0) << out;
  return path;
}

// `netpoll run --commands KEY [options] '+6665@/np0,6666@B/' -- cmd_child ARGS`.
std::string cmds_run_command(const VethBed& bed, const std::string& key, const std::string& options,
                             const std::string& child_args) {
  return bed.a.exec() + kNetpollBin + " run --new-stream --commands " + key + " " + options + " '+6665@/" + bed.a_if +
         ",6666@" + bed.b_ip + "/' -- " + kCmdChild + " " + child_args;
}

struct CmdResult {
  int status = -1;
  std::string out;  // stdout, then stderr
};

// `netpoll cmd` in the peer namespace.
CmdResult cmds_send(const VethBed& bed, const std::string& key, const std::string& command,
                    const std::string& options = "") {
  CmdResult r;
  std::string all;
  const int st = sh(bed.b.exec() + kNetpollBin + " cmd --key " + key + " " + options + " " + bed.a_ip + " " + command +
                        " 2>&1",
                    &all);
  r.status = st;
  r.out = all;
  return r;
}

// The record (text) of thread NAME in a stacks reply: from its "thread"
// line to the next.
std::string cmds_thread_record(const std::string& reply, const std::string& name) {
  const auto at = reply.find("(" + name + ")\n");
  if (at == std::string::npos) return {};
  const auto start = reply.rfind("thread ", at);
  const auto end = reply.find("\nthread ", at);
  return reply.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// A request sealed with the key in `path` (or a forger's), as bytes.
std::vector<std::byte> cmds_request(const command::Key& k, std::uint64_t counter, std::int64_t ts,
                                    std::string_view body) {
  std::vector<std::byte> out(wire::command::kHeaderLen + body.size() + wire::command::kMacLen);
  static_cast<void>(command::seal_request(k, counter, static_cast<std::uint64_t>(ts), as_bytes(body), out));
  return out;
}

// Records by sequence number; the first whose text holds `text`, or end.
using Records = std::map<std::uint64_t, ConsoleRecord>;
Records::const_iterator cmds_find_record(const Records& rs, const std::string& text) {
  for (auto it = rs.begin(); it != rs.end(); ++it)
    if (it->second.text.find(text) != std::string::npos) return it;
  return rs.end();
}

// One program under netpoll run --commands, and the console's listener.
class CommandsOverVeth : public ::testing::Test {
 protected:
  void launch(const std::string& child_args, const std::string& options = "", const std::string& ready = "ready") {
    key_ = cmds_keygen(dir_);
    console_ = std::make_unique<UdpSocket>(bed_.b, bed_.b_ip, 6666);
    collector_ = std::make_unique<DatagramCollector>(*console_);
    run_ = std::make_unique<Background>(cmds_run_command(bed_, key_, options, child_args), dir_, "run");
    ASSERT_TRUE(run_->wait_for(ready, 20s)) << run_->err();
  }
  CmdResult send(const std::string& command, const std::string& options = "") {
    return cmds_send(bed_, key_, command, options);
  }
  // The console stream so far: the program is ended first (it would go on
  // ticking, and the collector reads until the stream is quiet).
  // The last "err tick N" the program printed, as the runner echoed it.
  unsigned long last_tick() const {
    unsigned long last = 0;
    const std::string err = run_->err();
    const std::regex tick(R"(err tick (\d+))");
    for (std::sregex_iterator it(err.begin(), err.end(), tick), end; it != end; ++it)
      last = std::max(last, std::stoul((*it)[1]));
    return last;
  }
  // Waits (bounded) until the program has printed `more` ticks after the
  // last one now.
  void wait_ticks(unsigned long more) const {
    const unsigned long want = last_tick() + more;
    for (int i = 0; i < 400 && last_tick() < want; ++i) std::this_thread::sleep_for(50ms);
    ASSERT_GE(last_tick(), want) << run_->err();
  }
  Records records() {
    run_->stop();
    return parse_records(collector_->finish());
  }

  VethBed bed_;
  TempDir dir_;
  std::string key_;
  std::unique_ptr<UdpSocket> console_;
  std::unique_ptr<DatagramCollector> collector_;
  std::unique_ptr<Background> run_;
};

TEST_F(CommandsOverVeth, HelpStatsAndMemoryAnswerAndTheConsoleStreamShowsWhoAskedWhat) {
  launch("ticks");
  const CmdResult h = send("h");
  ASSERT_EQ(h.status, 0) << h.out;
  for (const char* line : {"h  help: ", "t  stacks: ", "m  memory: ", "l  level [N]: ", "s  stats: ", "d  dump: ",
                           "g  gdb: ", "c  crash: ", "k  terminate: "})
    EXPECT_NE(h.out.find(line), std::string::npos) << line << "\n" << h.out;
  const CmdResult m = send("memory");
  ASSERT_EQ(m.status, 0) << m.out;
  EXPECT_TRUE(std::regex_search(m.out, std::regex(R"(memory of process \d+:\nVmSize [0-9]+ kB\n)"))) << m.out;
  EXPECT_TRUE(std::regex_search(m.out, std::regex(R"(\nVmRSS [0-9]+ kB\n)"))) << m.out;
  EXPECT_TRUE(std::regex_search(m.out, std::regex(R"(\nheap: arena [0-9]+ bytes, in use [0-9]+ bytes)"))) << m.out;
  const CmdResult s = send("s");
  ASSERT_EQ(s.status, 0) << s.out;
  EXPECT_NE(s.out.find("remote commands: accepted 3, run 3, unknown 0"), std::string::npos) << s.out;
  EXPECT_TRUE(std::regex_search(s.out, std::regex(R"(\nconsole: level 8, logged \d+)"))) << s.out;
  EXPECT_NE(s.out.find("\ntarget 1 +6665@10.77.0.1/np0,6666@10.77.0.2/"), std::string::npos) << s.out;
  EXPECT_TRUE(std::regex_search(s.out, std::regex(R"(\ncommands' device packet:np0: rx frames \d+, delivered 3)"))) << s.out;
  const Records rs = records();
  // Who asked what, then the reply, as records.
  const auto asked = cmds_find_record(rs, "remote command from 10.77.0.2:");
  ASSERT_NE(asked, rs.end());
  EXPECT_TRUE(std::regex_search(asked->second.text, std::regex(R"(^remote command from 10\.77\.0\.2:\d+ \(key [0-9a-f]{8}\): h$)")))
      << asked->second.text;
  const auto help = cmds_find_record(rs, "commands (letter, name, what it does):");
  ASSERT_NE(help, rs.end());
  EXPECT_GT(help->first, asked->first);
  EXPECT_NE(cmds_find_record(rs, "memory of process "), rs.end());
  EXPECT_NE(cmds_find_record(rs, "remote commands: accepted 3"), rs.end());
}

TEST_F(CommandsOverVeth, StacksShowEveryThreadByNameWithItsTopFrame) {
  launch("ticks");
  const CmdResult t = send("t");
  ASSERT_EQ(t.status, 0) << t.out;
  struct Want {
    const char* name;
    const char* function;  // its own function, below libc's
    const char* top;       // its top frames: where it waits, as the symbolizer names it
  };
  // glibc's futex wait has no exported name: frame #0 is libc by offset,
  // pthread_cond_wait the frame above it.
  for (const Want& w : {Want{"alpha-reader", "waits_in_alpha_read", R"(\n#0 0x[0-9a-f]{16} [^\n]*read\+0x)"},
                        Want{"beta-sleeper", "sleeps_in_beta_nanosleep", R"(\n#0 0x[0-9a-f]{16} [^\n]*nanosleep\+0x)"},
                        Want{"gamma-waiter", "blocks_in_gamma_condvar",
                             R"(\n#0 0x[0-9a-f]{16} [^\n]*\(libc\.so\.6[^\n]*\n#1 0x[0-9a-f]{16} pthread_cond_wait\+0x)"}}) {
    const std::string rec = cmds_thread_record(t.out, w.name);
    ASSERT_FALSE(rec.empty()) << w.name << "\n" << t.out;
    EXPECT_TRUE(std::regex_search(rec, std::regex(w.top))) << w.name << "\n" << rec;
    EXPECT_NE(rec.find(w.function), std::string::npos) << rec;
  }
  // The main thread prints its ticks (sleeping in between), np-cmd answers.
  EXPECT_FALSE(cmds_thread_record(t.out, "cmd_child").empty()) << t.out;
  EXPECT_NE(t.out.find("(np-cmd): running this command"), std::string::npos) << t.out;
  EXPECT_TRUE(std::regex_search(t.out, std::regex(R"(\nstacks: \d+ threads\n$)"))) << t.out;
  // One record per thread in the console stream too.
  const Records rs = records();
  const auto alpha = cmds_find_record(rs, "(alpha-reader)\n#0 ");
  ASSERT_NE(alpha, rs.end());
  EXPECT_NE(alpha->second.text.find("waits_in_alpha_read"), std::string::npos) << alpha->second.text;
  EXPECT_EQ(alpha->second.text.find("(beta-sleeper)"), std::string::npos) << alpha->second.text;
}

TEST_F(CommandsOverVeth, AProgramStuckForEverStillAnswersAndShowsWhereItIsStuck) {
  launch("stuck", "", "stuck");
  const CmdResult t = send("t");
  ASSERT_EQ(t.status, 0) << t.out;
  const std::string main_thread = cmds_thread_record(t.out, "cmd_child");
  ASSERT_FALSE(main_thread.empty()) << t.out;
  // Waiting for the lock, inside the function that took it, called from main.
  EXPECT_TRUE(std::regex_search(main_thread, std::regex(R"(\n#\d+ 0x[0-9a-f]+ [^\n]*(mutex_lock|lll_lock_wait))")))
      << main_thread;
  EXPECT_NE(main_thread.find("stuck_in_zeta_lock"), std::string::npos) << main_thread;
  EXPECT_NE(main_thread.find(" main+0x"), std::string::npos) << main_thread;
  const std::string holder = cmds_thread_record(t.out, "zeta-holder");
  EXPECT_TRUE(std::regex_search(holder, std::regex(R"(mutex_lock|lll_lock_wait)"))) << holder;
  // And it goes on answering.
  EXPECT_EQ(send("h").status, 0);
}

TEST_F(CommandsOverVeth, LevelChangesWhichRecordsAreSent) {
  launch("ticks");
  const CmdResult l4 = send("l 4");
  ASSERT_EQ(l4.status, 0) << l4.out;
  EXPECT_EQ(l4.out, "console level 4 (was 8): records at emerg, alert, crit, err are sent\n");
  wait_ticks(25);  // ticks go on (20 a second) meanwhile
  const CmdResult l = send("level");
  EXPECT_EQ(l.out, "console level 4: records at emerg, alert, crit, err are sent\n");
  const CmdResult bad = send("l 9");
  EXPECT_EQ(bad.out, "level: expected a level 0 to 8, not '9'\n");
  const Records rs = records();
  const auto changed = cmds_find_record(rs, "console level 4 (was 8)");
  ASSERT_NE(changed, rs.end());
  std::size_t err_after = 0, out_after = 0, out_before = 0;
  for (const auto& [seq, r] : rs) {
    const bool out = r.text.starts_with("out tick "), err = r.text.starts_with("err tick ");
    if (seq > changed->first) {
      out_after += out;
      err_after += err;
    } else {
      out_before += out;
    }
  }
  EXPECT_GT(out_before, 0u);           // info records went out before
  EXPECT_EQ(out_after, 0u);            // none after: info (6) is not below 4
  EXPECT_GT(err_after, 10u);           // err (3) is
}

TEST_F(CommandsOverVeth, TerminateEndsTheProgramWithSigterm) {
  launch("ticks");
  const CmdResult k = send("k");
  ASSERT_EQ(k.status, 0) << k.out;
  EXPECT_TRUE(std::regex_search(k.out, std::regex(R"(^terminate: sending SIGTERM to process \d+\n$)"))) << k.out;
  const int status = run_->wait(20s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
  EXPECT_NE(run_->err().find("killed by signal 15 (SIGTERM)"), std::string::npos) << run_->err();
}

TEST_F(CommandsOverVeth, CrashRunsTheCrashPathAsARealCrash) {
  launch("ticks");
  const CmdResult c = send("c");
  ASSERT_EQ(c.status, 0) << c.out;
  EXPECT_EQ(c.out, "crash: crashing now (SIGSEGV at address 0 on thread np-cmd), as asked\n");
  const int status = run_->wait(20s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGSEGV);
  EXPECT_NE(run_->err().find("killed by signal 11 (SIGSEGV)"), std::string::npos) << run_->err();
  const Records rs = records();
  bool crash_record = false;
  for (const auto& [seq, r] : rs) {
    if (r.level != 0) continue;  // the crash record is the one at emerg
    crash_record = true;
    EXPECT_TRUE(r.text.starts_with("crashed: SIGSEGV (SEGV_MAPERR: address not mapped) at address 0x0000000000000000\n"))
        << r.text;
    EXPECT_NE(r.text.find("(np-cmd) of process"), std::string::npos) << r.text;
  }
  EXPECT_TRUE(crash_record);
}

TEST_F(CommandsOverVeth, DumpSendsACoreGdbOpensWhileTheProgramGoesOn) {
  DumpServer server(bed_.b, {"--dir", (dir_.path() / "cores").string(), "--quiet"}, dir_);
  launch("ticks", "--dump " + bed_.b_ip);
  const CmdResult d = send("d", "--timeout 120");
  ASSERT_EQ(d.status, 0) << d.out;
  EXPECT_TRUE(std::regex_search(d.out, std::regex(R"(^dump: core of process \d+ sent to 10\.77\.0\.2:20023 [^\n]*: \d+ bytes \(\d+ threads\) in \d+ ms; the process goes on\n$)")))
      << d.out;
  // Still running: it answers, and ticks on.
  EXPECT_EQ(send("h").status, 0);
  fs::path core;
  for (const auto& e : fs::recursive_directory_iterator(dir_.path() / "cores"))
    if (e.path().extension() == ".core") core = e.path();
  ASSERT_FALSE(core.empty()) << server.err();
  std::string g;
  sh("gdb -batch -nx -ex 'info threads' -ex 'thread apply all bt' " + kCmdChild + " " + core.string() + " 2>&1", &g);
  for (const char* fn : {"waits_in_alpha_read", "sleeps_in_beta_nanosleep", "blocks_in_gamma_condvar"})
    EXPECT_NE(g.find(fn), std::string::npos) << fn << "\n" << g;
  // Every thread (a core keeps no names): the four of the program, and
  // np-cmd making the core from the command.
  EXPECT_EQ(count_matches(g, R"(\nThread \d+ \(Thread 0x[0-9a-f]+ \(LWP \d+\)\))"), 5u) << g;
  EXPECT_NE(g.find("dump_command"), std::string::npos) << g;
  EXPECT_TRUE(run_->wait_for("err tick", 1s));
}

TEST_F(CommandsOverVeth, GdbBreaksInForTheAddressThatAskedAndTheProgramGoesOnAfterDetach) {
  launch("ticks", "--gdb --gdb-wait 60");
  const CmdResult g = send("g");
  ASSERT_EQ(g.status, 0) << g.out;
  EXPECT_NE(g.out.find("gdb: every thread stops now and waits for gdb from 10.77.0.2 only (60 s): gdb " + kCmdChild +
                       " -ex 'target remote udp:10.77.0.1:6443'"),
            std::string::npos)
      << g.out;
  // Another address of the peer's: not served (the grant is 10.77.0.2's).
  ASSERT_TRUE(sh_ok(bed_.b.exec() + "ip addr add 10.77.0.3/24 dev " + bed_.b_if));
  UdpSocket other(bed_.b, "10.77.0.3", 40002);
  const std::string_view query = "$?#3f";
  ASSERT_TRUE(other.send_to(bed_.a_ip, 6443, std::as_bytes(std::span(query.data(), query.size()))));
  EXPECT_FALSE(other.receive(500ms).has_value());
  std::string out;
  sh(bed_.b.exec() + "timeout 120 gdb -batch -nx -ex 'set pagination off' -ex 'target remote udp:10.77.0.1:6443' "
                     "-ex 'info threads' -ex 'detach' " +
         kCmdChild + " 2>&1",
     &out);
  for (const char* name : {"\"alpha-reader\"", "\"beta-sleeper\"", "\"gamma-waiter\"", "\"cmd_child\""})
    EXPECT_NE(out.find(name), std::string::npos) << name << "\n" << out;
  // np-cmd broke in: it is the stopped thread gdb starts from.
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\* +\d+ +Thread \d+ "np-cmd" +0x[0-9a-f]+ in np::gdb::Stub::break_in)"))) << out;
  EXPECT_NE(out.find("[Inferior 1 (Remote target) detached]"), std::string::npos) << out;
  // Let go: it answers again and ticks on.
  const CmdResult h = send("h");
  EXPECT_EQ(h.status, 0) << h.out;
}

TEST_F(CommandsOverVeth, AProgramWaitingForGdbAfterACrashStillAnswersAndGdbAttachesFromTheAskingAddress) {
  launch("ticks", "--gdb --gdb-wait 60");
  std::smatch m;
  const std::string out = run_->out();
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(ready pid (\d+))"))) << out;
  const pid_t child = static_cast<pid_t>(std::stol(m[1]));
  ASSERT_EQ(::kill(child, SIGSEGV), 0);  // our own child, as a crash from outside would come
  ASSERT_TRUE(run_->wait_for("waiting 60 s for gdb at udp:10.77.0.1:6443", 20s)) << run_->err();
  // Every thread but np-cmd is held; np-cmd answers. The main thread is in
  // the crash path, serving gdb.
  const CmdResult t = send("t");
  ASSERT_EQ(t.status, 0) << t.out;
  const std::string main_thread = cmds_thread_record(t.out, "cmd_child");
  EXPECT_NE(main_thread.find("serve_crash"), std::string::npos) << t.out;
  EXPECT_NE(main_thread.find("ticks"), std::string::npos) << main_thread;
  // Nobody is served until a `gdb` command names an address.
  const CmdResult g = send("g");
  ASSERT_EQ(g.status, 0) << g.out;
  EXPECT_NE(g.out.find("gdb: after the crash the program waits for gdb from 10.77.0.2 only (60 s): gdb " + kCmdChild),
            std::string::npos)
      << g.out;
  std::string gdb_out;
  sh(bed_.b.exec() + "timeout 120 gdb -batch -nx -ex 'set pagination off' -ex 'target remote udp:10.77.0.1:6443' "
                     "-ex 'info threads' -ex 'kill' " +
         kCmdChild + " 2>&1",
     &gdb_out);
  EXPECT_NE(gdb_out.find("\"alpha-reader\""), std::string::npos) << gdb_out;
  EXPECT_NE(gdb_out.find("[Inferior 1 (Remote target) killed]"), std::string::npos) << gdb_out;
  const int status = run_->wait(30s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGSEGV);
}

TEST_F(CommandsOverVeth, ForgedReplayedStaleTruncatedAndOversizedRequestsAreDroppedCountedAndNeverRun) {
  launch("ticks");
  auto ring = command::load_key_file(key_);
  ASSERT_TRUE(ring) << ring.error().message;
  const command::Key key = (*ring)[0];
  command::Key forger = key;
  forger.secret[3] ^= 0x20;
  command::Key stranger = key;
  stranger.id ^= 1;
  UdpSocket from(bed_.b, bed_.b_ip, 41000);
  const auto send_raw = [&](std::span<const std::byte> d) { ASSERT_TRUE(from.send_to(bed_.a_ip, 6665, d)); };
  const std::int64_t now = realtime_ns();
  // Each asks for `k` (terminate): had one run, the program would be gone.
  send_raw(cmds_request(forger, static_cast<std::uint64_t>(now), now, "k"));                  // bad MAC
  send_raw(cmds_request(stranger, static_cast<std::uint64_t>(now) + 1, now, "k"));            // unknown key id
  send_raw(cmds_request(key, static_cast<std::uint64_t>(now) + 2, now - 120'000'000'000, "k"));  // stale
  const auto good = cmds_request(key, static_cast<std::uint64_t>(now) + 3, now, "h");
  send_raw(std::span(good).first(50));                                                      // truncated
  send_raw(cmds_request(key, static_cast<std::uint64_t>(now) + 4, now, "k " + std::string(300, 'x')));  // oversized
  send_raw(good);                                                                           // runs: help
  const auto reply = from.receive(5s);
  ASSERT_TRUE(reply.has_value());
  send_raw(good);                                                                           // replayed
  const CmdResult s = send("s");
  ASSERT_EQ(s.status, 0) << s.out;
  EXPECT_NE(s.out.find("remote commands: accepted 2, run 2, unknown 0"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("dropped 6 (truncated 1, oversized 1, unknown_key 1, bad_mac 1, stale 1, replay 1)"),
            std::string::npos)
      << s.out;
  // Never run: the program is alive and ticking.
  ASSERT_TRUE(run_->wait_for("err tick", 1s));
  const Records rs = records();
  const auto report = cmds_find_record(rs, "remote commands dropped: ");
  ASSERT_NE(report, rs.end());
  EXPECT_TRUE(std::regex_search(report->second.text, std::regex(R"(none was run$)"))) << report->second.text;
  EXPECT_EQ(report->second.level, 4);  // warning
  EXPECT_EQ(cmds_find_record(rs, "terminate: sending SIGTERM"), rs.end());
}

TEST_F(CommandsOverVeth, AFloodOfForgeriesIsReportedAtMostOnceASecondAndTheConsoleKeepsUp) {
  launch("ticks");
  auto ring = command::load_key_file(key_);
  ASSERT_TRUE(ring);
  command::Key forger = (*ring)[0];
  forger.secret[0] ^= 1;
  UdpSocket from(bed_.b, bed_.b_ip, 41001);
  const auto start = std::chrono::steady_clock::now();
  const unsigned long before = last_tick();
  // 3000 forgeries over about 1.5 s, while the program goes on printing.
  const std::int64_t now = realtime_ns();
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(from.send_to(bed_.a_ip, 6665, cmds_request(forger, static_cast<std::uint64_t>(now) + i, now, "c")));
    if (i % 100 == 99) std::this_thread::sleep_for(50ms);
  }
  // Ticks printed during the flood, and as many after it, reach the stream.
  const unsigned long during = last_tick();
  for (int i = 0; i < 400 && last_tick() < std::max(during, before + 20) + 10; ++i) std::this_thread::sleep_for(50ms);
  const CmdResult s = send("s");
  ASSERT_EQ(s.status, 0) << s.out;
  const auto took = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(s.out, m, std::regex(R"(bad_mac (\d+))"))) << s.out;
  const auto counted = std::stoul(m[1]);
  EXPECT_GT(counted, 2000u) << s.out;  // the kernel's veth may drop a few of a burst, netpoll counts what it sees
  const Records rs = records();
  std::size_t reports = 0;
  std::vector<unsigned long> ticks;
  for (const auto& [seq, r] : rs) {
    if (r.text.starts_with("remote commands dropped: ")) ++reports;
    if (r.text.starts_with("err tick ")) ticks.push_back(std::stoul(r.text.substr(9)));
  }
  EXPECT_GE(reports, 1u);
  EXPECT_LE(reports, static_cast<std::size_t>(took.count()) + 2);
  // The console kept every line meanwhile: no tick missing.
  ASSERT_GT(ticks.size(), 20u);
  EXPECT_LE(ticks.front(), before + 1);
  EXPECT_GE(ticks.back(), during);
  for (std::size_t i = 1; i < ticks.size(); ++i) EXPECT_EQ(ticks[i], ticks[i - 1] + 1) << i;
  EXPECT_EQ(cmds_find_record(rs, "crash: "), rs.end());
}

TEST(CommandsWithoutKey, NothingIsReceivedWithoutCommandsAndAnOpenKeyFileIsRefused) {
  VethBed bed;
  TempDir dir;
  const std::string key = cmds_keygen(dir);
  Background run(bed.a.exec() + kNetpollBin + " run --new-stream '+6665@/" + bed.a_if + ",6666@" + bed.b_ip + "/' -- " +
                     kCmdChild + " ticks",
                 dir, "run");
  ASSERT_TRUE(run.wait_for("ready", 20s)) << run.err();
  const CmdResult h = cmds_send(bed, key, "h", "--timeout 2");
  EXPECT_EQ(h.status, 1) << h.out;
  EXPECT_NE(h.out.find("netpoll cmd: no answer from 10.77.0.1:6665 within 2 s (sent 2 times"), std::string::npos)
      << h.out;
  // A key others may read: both ends refuse it, saying how to fix it.
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  std::string out;
  EXPECT_EQ(sh(cmds_run_command(bed, key, "", "ticks") + " 2>&1", &out), 2) << out;
  EXPECT_NE(out.find("is accessible by group or others (mode 0644); refusing it: chmod 600 " + key), std::string::npos)
      << out;
  const CmdResult refused = cmds_send(bed, key, "h");
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.out.find("chmod 600"), std::string::npos) << refused.out;
}

TEST(CommandsInAProgram, ACommandTheProgramAddedAnswersThroughTheLibrary) {
  VethBed bed;
  TempDir dir;
  const std::string key = cmds_keygen(dir);
  UdpSocket console(bed.b, bed.b_ip, 6666);
  DatagramCollector collector(console);
  Background child(bed.a.exec() + kCmdChild + " library " + bed.a_if + " " + bed.a_ip + " " + bed.b_ip + " " + key, dir,
                   "child");
  ASSERT_TRUE(child.wait_for("ready", 20s)) << child.err();
  const CmdResult greet = cmds_send(bed, key, "greet remote world");
  ASSERT_EQ(greet.status, 0) << greet.out;
  EXPECT_EQ(greet.out, "hello, remote world\n");
  const CmdResult h = cmds_send(bed, key, "help");
  EXPECT_NE(h.out.find("the program's:\n   greet: says hello to its arguments"), std::string::npos) << h.out;
  const Records rs = parse_records(collector.finish());
  EXPECT_NE(cmds_find_record(rs, "): greet remote world"), rs.end());
  EXPECT_NE(cmds_find_record(rs, "hello, remote world"), rs.end());
}

}  // namespace
}  // namespace np::tools
