// The witness against real processes: what it calls fatal, what it lets
// through, and that a traced program dies exactly as an untraced one.
#include "netpoll/witness/tracer.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <chrono>
#include <mutex>
#include <thread>

#include "netpoll/witness/report.h"

namespace np::witness {
namespace {

using namespace std::chrono_literals;

struct Traced {
  int status = -1;
  std::vector<CrashStop> crashes;
  std::vector<std::vector<std::string>> records;
  bool traced = false;
};

// Runs `sh -c script` traced (or not) and collects what the tracer saw.
Traced run_sh(const std::string& script, bool trace = true, bool report = false,
           std::function<void(pid_t)> meanwhile = nullptr) {
  Traced r;
  std::mutex m;
  TracerHooks hooks;
  hooks.on_crash = [&](const CrashStop& stop) {
    std::lock_guard lock(m);
    r.crashes.push_back(stop);
    if (report) r.records.push_back(crash_records(stop));
  };
  SpawnSpec spec;
  spec.path = "sh";
  spec.argv = {"sh", "-c", script};
  spec.env_traced = spec.env_untraced = {"PATH=/usr/bin:/bin"};
  auto t = Tracer::spawn(spec, trace, hooks);
  EXPECT_TRUE(t) << (t ? "" : t.error().message);
  if (!t) return r;
  r.traced = (*t)->spawned().traced;
  if (meanwhile) meanwhile((*t)->spawned().pid);
  r.status = (*t)->wait();
  return r;
}

TEST(Tracer, SeesAFatalSignalAndLetsItKillAsWithoutTracing) {
  const Traced traced = run_sh("kill -SEGV $$");
  const Traced plain = run_sh("kill -SEGV $$", false);
  ASSERT_TRUE(traced.traced);
  ASSERT_EQ(traced.crashes.size(), 1u);
  EXPECT_EQ(traced.crashes[0].info.si_signo, SIGSEGV);
  EXPECT_EQ(traced.crashes[0].info.si_code, SI_USER);
  EXPECT_EQ(traced.crashes[0].tid, traced.crashes[0].pid);
  ASSERT_TRUE(WIFSIGNALED(traced.status));
  EXPECT_EQ(WTERMSIG(traced.status), SIGSEGV);
  EXPECT_EQ(traced.status, plain.status) << "same signal, same core-dump flag";
  EXPECT_TRUE(plain.crashes.empty()) << "untraced: nothing is seen";
}

TEST(Tracer, ACaughtSignalIsNotACrash) {
  const Traced r = run_sh("trap 'exit 3' USR1; kill -USR1 $$; sleep 5");
  EXPECT_TRUE(r.crashes.empty());
  ASSERT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(WEXITSTATUS(r.status), 3);
}

TEST(Tracer, AnIgnoredSignalIsNotACrash) {
  const Traced r = run_sh("trap '' TERM; kill -TERM $$; exit 4");
  EXPECT_TRUE(r.crashes.empty());
  ASSERT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(WEXITSTATUS(r.status), 4);
}

TEST(Tracer, SigkillIsNeverSeen) {
  const Traced r = run_sh("kill -KILL $$");
  EXPECT_TRUE(r.crashes.empty());
  ASSERT_TRUE(WIFSIGNALED(r.status));
  EXPECT_EQ(WTERMSIG(r.status), SIGKILL);
}

TEST(Tracer, AGroupStopStaysStoppedUntilContinued) {
  std::atomic<bool> stopped_seen{false};
  const Traced r = run_sh("kill -STOP $$; exit 5", true, false, [&](pid_t pid) {
    // The program must sit stopped (state T in /proc) until SIGCONT.
    for (int i = 0; i < 200 && !stopped_seen; ++i) {
      std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
      std::string all((std::istreambuf_iterator<char>(st)), {});
      const auto paren = all.rfind(')');
      if (paren != std::string::npos && all.size() > paren + 2 && (all[paren + 2] == 'T' || all[paren + 2] == 't'))
        stopped_seen = true;
      std::this_thread::sleep_for(10ms);
    }
    std::this_thread::sleep_for(100ms);
    ::kill(pid, SIGCONT);
  });
  EXPECT_TRUE(stopped_seen);
  EXPECT_TRUE(r.crashes.empty());
  ASSERT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(WEXITSTATUS(r.status), 5);
}

TEST(Tracer, AForkedProcessIsTracedToo) {
  // The child shell dies of SIGABRT; the program itself exits 0.
  const Traced r = run_sh("sh -c 'kill -ABRT $$'; exit 0");
  ASSERT_EQ(r.crashes.size(), 1u);
  EXPECT_EQ(r.crashes[0].info.si_signo, SIGABRT);
  ASSERT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(WEXITSTATUS(r.status), 0);
}

TEST(Tracer, AFailedExecIsReported) {
  TracerHooks hooks;
  SpawnSpec spec;
  spec.path = "/nonexistent/program";
  spec.argv = {"/nonexistent/program"};
  auto t = Tracer::spawn(spec, true, hooks);
  ASSERT_TRUE(t);
  EXPECT_EQ((*t)->spawned().exec_error, ENOENT);
  const int st = (*t)->wait();
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 127);
}

TEST(CrashRecords, NameTheSignalTheThreadAndTheFrames) {
  const Traced r = run_sh("kill -SEGV $$", true, true);
  ASSERT_EQ(r.records.size(), 1u);
  ASSERT_FALSE(r.records[0].empty());
  const std::string& text = r.records[0][0];
  EXPECT_EQ(text.rfind("crashed: SIGSEGV (SI_USER: kill, sent by pid ", 0), 0u) << text;
  EXPECT_NE(text.find("\nthread " + std::to_string(r.crashes[0].tid) + " (sh) of process "), std::string::npos)
      << text;
  EXPECT_NE(text.find("\nrip 0x"), std::string::npos) << text;
  EXPECT_EQ(text.find("trapno"), std::string::npos) << "ptrace has no trap number";
  // The shell called kill(2) through libc: the first frame is libc's kill,
  // named from libc's symbols (or its debug file).
  EXPECT_NE(text.find("\nbacktrace:\n#0 0x"), std::string::npos) << text;
  EXPECT_NE(text.find("kill+0x"), std::string::npos) << text;
  EXPECT_NE(text.find("(libc.so.6)"), std::string::npos) << text;
  EXPECT_NE(text.find("reported by netpoll run from outside the process (1 thread stopped)"), std::string::npos)
      << text;
}

TEST(ElfProbe, TellsStaticFromDynamic) {
  EXPECT_EQ(is_dynamic_elf("/bin/sh"), true);
  EXPECT_EQ(is_dynamic_elf("/nonexistent"), std::nullopt);
  EXPECT_EQ(is_dynamic_elf("/etc/passwd"), std::nullopt);
  EXPECT_EQ(resolve_program("sh").empty(), false);
  EXPECT_EQ(resolve_program("no-such-program-anywhere"), "");
}

}  // namespace
}  // namespace np::witness

#if defined(__SANITIZE_ADDRESS__)
// libdw loads libdebuginfod, whose libcrypto keeps an allocation for the
// process's life: not ours, not a leak to report.
extern "C" const char* __lsan_default_suppressions() { return "leak:libcrypto.so\n"; }
#endif
