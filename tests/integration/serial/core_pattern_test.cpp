// netpoll coredump as the kernel runs it: kernel.core_pattern pipes the
// core of a crashing program to it, it sends the core from one namespace
// of a veth pair to netpoll dumpd in the other, and gdb opens what
// arrived with the program.
//
// core_pattern belongs to the whole host: every process that crashes
// while it is set meets our helper. So these tests run alone (ctest
// RUN_SERIAL, tests/CMakeLists.txt), set it only around the crash, and
// always put the old value back (CorePattern, also when an assertion
// ends the test).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "dump_server.h"
#include "listener.h"
#include "netns.h"
#include "run_program.h"
#include "temp_dir.h"

namespace np::tools {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;
namespace fs = std::filesystem;

constexpr const char* kCorePattern = "/proc/sys/kernel/core_pattern";
// The kernel keeps at most 127 bytes of the pattern (CORENAME_MAX_SIZE).
constexpr std::size_t kCorePatternMax = 127;

std::string read_sysctl(const char* path) {
  std::string v = read_file(path);
  if (!v.empty() && v.back() == '\n') v.pop_back();
  return v;
}

bool write_sysctl(const char* path, const std::string& value) {
  const int fd = ::open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  ::close(fd);
  return ok;
}

// The host's core_pattern for one test at a time across every build tree
// on the machine (ctest's resource lock covers one ctest run): a lock file
// in /run/lock, waited for at most two minutes.
class HostLock {
 public:
  explicit HostLock(const char* path) : fd_(::open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (fd_ >= 0 && ::flock(fd_, LOCK_EX | LOCK_NB) != 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(50ms);
  }
  ~HostLock() {
    if (fd_ >= 0) ::close(fd_);  // and the lock with it
  }
  HostLock(const HostLock&) = delete;
  HostLock& operator=(const HostLock&) = delete;

 private:
  int fd_;
};

// Sets kernel.core_pattern for its scope; the old value goes back at
// restore() or when it goes out of scope, whatever happened between.
class CorePattern {
 public:
  explicit CorePattern(const std::string& pattern) : saved_(read_sysctl(kCorePattern)) {
    set_ = write_sysctl(kCorePattern, pattern) && read_sysctl(kCorePattern) == pattern;
  }
  ~CorePattern() { restore(); }
  CorePattern(const CorePattern&) = delete;
  CorePattern& operator=(const CorePattern&) = delete;
  bool set() const { return set_; }
  void restore() {
    if (restored_) return;
    restored_ = true;
    if (!write_sysctl(kCorePattern, saved_) || read_sysctl(kCorePattern) != saved_)
      ADD_FAILURE() << "could not put core_pattern back to '" << saved_ << "'";
  }

 private:
  HostLock lock_{"/run/lock/netpoll-test-core-pattern"};  // first: held before the pattern is read
  std::string saved_;
  bool set_ = false;
  bool restored_ = false;
};

// The kernel log from now on (/dev/kmsg, read without blocking).
class KernelLog {
 public:
  KernelLog() : fd_(::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)) {
    if (fd_ >= 0) ::lseek(fd_, 0, SEEK_END);
  }
  ~KernelLog() {
    if (fd_ >= 0) ::close(fd_);
  }
  KernelLog(const KernelLog&) = delete;
  KernelLog& operator=(const KernelLog&) = delete;
  // The messages logged since, one per line ("PRIORITY,SEQ,USEC,FLAGS;"
  // taken off).
  std::string read() {
    char buf[8192];
    for (;;) {
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EPIPE) continue;  // overwritten records: go on with the next
      if (n <= 0) break;
      std::string rec(buf, static_cast<std::size_t>(n));
      const auto semi = rec.find(';');
      const auto nl = rec.find('\n');
      if (semi != std::string::npos && nl != std::string::npos && semi < nl)
        text_ += rec.substr(semi + 1, nl - semi - 1) + "\n";
    }
    return text_;
  }

 private:
  int fd_ = -1;
  std::string text_;
};

std::string gdb(const std::string& program, const std::string& core) {
  std::string out;
  sh("/usr/bin/gdb -batch -nx -ex 'thread apply all bt' -ex 'info sharedlibrary' " + program + " " + core + " 2>&1",
     &out);
  return out;
}

TEST(CorePattern, TheKernelsCoreOfACrashArrivesAndOpensInGdb) {
  VethBed bed;
  TempDir dir;
  const fs::path dumps = dir.path() / "dumps";
  DumpServer d(bed.b, {"--dir", dumps.string(), "--bind", bed.b_ip}, dir);
  ASSERT_NE(d.err().find(" port 20023"), std::string::npos) << d.err();
  KernelLog kmsg;

  const std::string pattern = "|" + std::string(NP_NETPOLL_BIN) + " coredump --netns " + bed.a.name() + " --to " +
                              bed.b_ip + " %P %s %e";
  ASSERT_LE(pattern.size(), kCorePatternMax) << "the build directory's path is too long for core_pattern: " << pattern;
  Outcome crash;
  {
    CorePattern cp(pattern);
    ASSERT_TRUE(cp.set()) << "cannot set " << kCorePattern;
    // The crash, inside the client's namespace as a containerised
    // program's would be; the helper still starts in the initial ones.
    crash = run_program(&bed.a, {NP_CORE_CHILD, "kernel"});
    // By the time the program is gone the kernel has started the helper
    // and piped the whole core: nothing else on the host needs to meet it.
    cp.restore();
  }
  ASSERT_TRUE(WIFSIGNALED(crash.status)) << crash.output;
  EXPECT_EQ(WTERMSIG(crash.status), SIGSEGV);
  EXPECT_TRUE(WCOREDUMP(crash.status)) << "the kernel says it dumped core";
  const auto ready = crash.output.find("ready ");
  ASSERT_NE(ready, std::string::npos) << crash.output;
  const std::string pid = crash.output.substr(ready + 6, crash.output.find('\n', ready) - ready - 6);

  ASSERT_TRUE(d.wait_for("dump complete: " + bed.a_ip + " core_child pid " + pid + ": ")) << d.err();
  EXPECT_NE(d.err().find("dump started: " + bed.a_ip + ":20024 core_child pid " + pid +
                         ", signal 11 (SIGSEGV), 4 threads, kind kernel, host "),
            std::string::npos)
      << d.err();
  fs::path core, json;
  for (const auto& e : fs::recursive_directory_iterator(dumps)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with("-" + pid + "-core_child.core")) core = e.path();
    if (name.ends_with("-" + pid + "-core_child.json")) json = e.path();
  }
  ASSERT_FALSE(core.empty()) << d.err();
  ASSERT_FALSE(json.empty()) << d.err();

  const std::string j = read_file(json);
  const std::string size = std::to_string(fs::file_size(core));
  for (const std::string& field : std::vector<std::string>{"\"complete\":true,",
                                  "\"kind\":\"kernel\",\"program\":\"core_child\",\"pid\":" + pid +
                                      ",\"signal\":11,\"threads\":4,",
                                  "\"size\":" + size + ",", "\"file_size\":" + size + ","}) {
    EXPECT_NE(j.find(field), std::string::npos) << field << "\n" << j;
  }

  // gdb with the program: the crashing function on top of its thread,
  // every thread where it waited, the C library among the libraries.
  const std::string out = gdb(NP_CORE_CHILD, core.string());
  EXPECT_NE(out.find("Program terminated with signal SIGSEGV"), std::string::npos) << out;
  const auto crashed = out.find("::crash_in_delta_function () at ");
  EXPECT_NE(crashed, std::string::npos) << out;
  if (crashed != std::string::npos) {
    EXPECT_EQ(out.compare(out.rfind('\n', crashed) + 1, 3, "#0 "), 0) << "on top of its thread: " << out;
  }
  for (const char* waits : {"::waits_in_alpha_read () at ", "::sleeps_in_beta_nanosleep () at ",
                            "::blocks_in_gamma_condvar () at "})
    EXPECT_NE(out.find(waits), std::string::npos) << waits << "\n" << out;
  EXPECT_EQ(count_of(out, "\nThread "), 4u) << out;
  EXPECT_NE(out.find("/libc.so.6\n"), std::string::npos) << out;
  // gdb's only complaint is the one it has about every core this kernel
  // writes (its XSAVE layout note is newer than gdb), not about ours.
  for (auto at = out.find("warning: "); at != std::string::npos; at = out.find("warning: ", at + 1)) {
    const std::string line = out.substr(at, out.find('\n', at) - at);
    EXPECT_EQ(line.rfind("warning: Section `.reg-xstate/", 0), 0u) << line;
  }

  // The helper's one line, in the kernel log.
  const std::string log = kmsg.read();
  EXPECT_NE(log.find("netpoll coredump: core_child pid " + pid + " signal 11: "), std::string::npos) << log;
  EXPECT_NE(log.find(" core (4 threads) sent to " + bed.b_ip + ":20023 via packet:" + bed.a_if + " from " + bed.a_ip +
                     ":20024 in "),
            std::string::npos)
      << log;
}

}  // namespace
}  // namespace np::tools
