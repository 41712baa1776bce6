// Cores written by np::dump::CoreWriter inside core_child, opened with
// stock gdb and the program binary: what gdb prints is what is checked
// (threads and their functions, the crashing frame, a global, a heap
// string, the shared libraries with their symbols), and compared with a
// reference core of the same process made by gcore (live) or by the
// kernel (crash).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.h"

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kChild = NP_CORE_CHILD;
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// A child process with its standard input and output on pipes.
class Child {
 public:
  Child(const std::vector<std::string>& args, const fs::path& cwd) : argv0_(args.at(0)) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    std::vector<std::string> a = args;
    std::vector<char*> argv;
    for (auto& s : a) argv.push_back(s.data());
    argv.push_back(nullptr);
    const std::string dir = cwd.string();
    pid_ = ::fork();
    if (pid_ == 0) {
      if (::chdir(dir.c_str()) != 0) ::_exit(126);
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
      ::setrlimit(RLIMIT_CORE, &unlimited);  // the kernel's reference core, where it writes one
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    in_ = in[1];
    out_ = out[0];
    ::fcntl(out_, F_SETFL, O_NONBLOCK);
  }
  ~Child() {
    close_input();
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status_, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  pid_t pid() const { return pid_; }
  // Output until `marker` appears or `limit` passes.
  std::string read_until(std::string_view marker, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (output_.find(marker) == std::string::npos && std::chrono::steady_clock::now() < until) {
      if (!drain()) break;
      std::this_thread::sleep_for(5ms);
    }
    return output_;
  }
  void close_input() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }
  // Waits for the exit (killing it after `limit`), reading its output
  // meanwhile; the wait status.
  int wait(std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!reaped_) {
      drain();
      if (::waitpid(pid_, &status_, WNOHANG) == pid_) {
        reaped_ = true;
        break;
      }
      if (std::chrono::steady_clock::now() > until) {
        ADD_FAILURE() << argv0_ << " hung and was killed";
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status_, 0);
        reaped_ = true;
      }
      std::this_thread::sleep_for(5ms);
    }
    drain();
    return status_;
  }
  const std::string& output() const { return output_; }

 private:
  // Reads what is there without waiting; false at the end of the output.
  bool drain() {
    for (int i = 0; i < 1024; ++i) {
      char buf[4096];
      const ssize_t n = ::read(out_, buf, sizeof buf);
      if (n > 0) {
        output_.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      return n < 0;  // EAGAIN: more may come
    }
    return true;
  }

  std::string argv0_;
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  int status_ = 0;
  bool reaped_ = false;
  std::string output_;
};

// Runs a command to its end (killed after `limit`); its output.
std::string run(const std::vector<std::string>& args, std::chrono::milliseconds limit = 60s) {
  Child c(args, fs::temp_directory_path());
  c.close_input();
  c.wait(limit);
  return c.output();
}

std::string gdb(const std::string& core) {
  return run({"/usr/bin/gdb", "-batch", "-nx", "-ex", "info threads", "-ex", "thread apply all bt", "-ex",
              "print core_child_global", "-ex", "print core_child_heap_string", "-ex", "info sharedlibrary",
              kChild, core});
}

// What gdb said about the threads: each thread's frames (function names,
// innermost first) by LWP, and which LWP is current.
struct Threads {
  std::map<long, std::vector<std::string>> frames;
  long current = -1;
  std::size_t listed = 0;  // lines of "info threads"
};

// The function of a backtrace line: "#1  0x... in NAME (args) at f:l" or
// "#0  NAME (args) at f:l"; NAME may itself hold "(anonymous namespace)".
std::string function_of(const std::string& line) {
  std::string s = line.substr(line.find(' '));
  s.erase(0, s.find_first_not_of(' '));
  static const std::regex address("^0x[0-9a-f]+ in ");
  s = std::regex_replace(s, address, "");
  const std::size_t args = s.find(" (");
  return args == std::string::npos ? s : s.substr(0, args);
}

Threads parse_threads(const std::string& out) {
  Threads t;
  static const std::regex info_line(R"(^(\*| ) +\d+ +(?:Thread 0x[0-9a-f]+ \()?LWP (\d+)\)?)");
  static const std::regex thread_header(R"(^Thread \d+ \((?:Thread 0x[0-9a-f]+ \()?LWP (\d+)\)?\):)");
  std::istringstream in(out);
  std::string line;
  long lwp = -1;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, info_line)) {
      ++t.listed;
      if (m[1] == "*") t.current = std::stol(m[2]);
    } else if (std::regex_search(line, m, thread_header)) {
      lwp = std::stol(m[1]);
      t.frames[lwp];
    } else if (lwp >= 0 && line.rfind('#', 0) == 0) {
      t.frames[lwp].push_back(function_of(line));
    } else if (line.empty()) {
      lwp = -1;
    }
  }
  return t;
}

// The LWP whose backtrace has a frame containing `name`.
std::optional<long> thread_in(const Threads& t, std::string_view name) {
  for (const auto& [lwp, frames] : t.frames) {
    for (const auto& f : frames) {
      if (f.find(name) != std::string::npos) return lwp;
    }
  }
  return std::nullopt;
}

// Frames from the innermost down to the first one containing `name`.
std::vector<std::string> frames_to(const Threads& t, long lwp, std::string_view name) {
  std::vector<std::string> out;
  const auto it = t.frames.find(lwp);
  if (it == t.frames.end()) return out;
  for (const auto& f : it->second) {
    out.push_back(f);
    if (f.find(name) != std::string::npos) break;
  }
  return out;
}

std::string dump_of(const Threads& t) {
  std::ostringstream o;
  for (const auto& [lwp, frames] : t.frames) {
    o << "LWP " << lwp << ":";
    for (const auto& f : frames) o << " | " << f;
    o << "\n";
  }
  return o.str();
}

constexpr const char* kWorkers[] = {"waits_in_alpha_read", "sleeps_in_beta_nanosleep", "blocks_in_gamma_condvar"};

// What every core of core_child must show in gdb.
void expect_common(const std::string& out, const Threads& t) {
  EXPECT_EQ(t.listed, 4u) << out;
  EXPECT_EQ(t.frames.size(), 4u) << out;
  for (const char* w : kWorkers) EXPECT_TRUE(thread_in(t, w).has_value()) << w << "\n" << out;
  EXPECT_NE(out.find("$1 = 424242"), std::string::npos) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\$2 = 0x[0-9a-f]+ "netpoll core child heap string")"))) << out;
  // libc, found through the core's NT_FILE and link map, symbols read.
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(0x[0-9a-f]+ +0x[0-9a-f]+ +Yes.*libc\.so\.6)"))) << out;
  EXPECT_EQ(out.find("Couldn't"), std::string::npos) << out;
  EXPECT_EQ(out.find("failed to read"), std::string::npos) << out;
}

// The workers' stacks, innermost frame to their own function, are the
// same in both cores.
void expect_same_workers(const Threads& ours, const Threads& ref) {
  for (const char* w : kWorkers) {
    const auto a = thread_in(ours, w);
    const auto b = thread_in(ref, w);
    ASSERT_TRUE(a && b) << w;
    EXPECT_EQ(*a, *b) << w;  // the same thread (LWP)
    EXPECT_EQ(frames_to(ours, *a, w), frames_to(ref, *b, w)) << w << "\nours:\n" << dump_of(ours) << "reference:\n"
                                                             << dump_of(ref);
  }
}

TEST(CoreDump, LiveCoreOpensInGdbLikeGcoresOfTheSameProcess) {
  np::testing::TempDir dir("coredump");
  const fs::path core = dir.path() / "netpoll.core";
  Child child({kChild, "live", core.string()}, dir.path());
  const std::string said = child.read_until("ready", 20s);
  ASSERT_NE(said.find("ready"), std::string::npos) << said;
  EXPECT_NE(said.find("dumped threads=4 without_registers=0"), std::string::npos) << said;
  // The process lives on: a reference core of it, taken by gdb (not of a
  // sanitized process: gcore sets out to write ASan's terabytes of
  // reserved shadow memory and does not finish).
  std::string gcore_out;
  if (!kSanitized)
    gcore_out = run({"/usr/bin/gcore", "-o", (dir.path() / "gcore").string(), std::to_string(child.pid())});
  child.close_input();
  const int status = child.wait(10s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << child.output();

  const std::string out = gdb(core.string());
  const Threads ours = parse_threads(out);
  expect_common(out, ours);
  // The current thread is the one that dumped, where it dumped.
  EXPECT_EQ(ours.current, child.pid()) << out;
  EXPECT_TRUE(thread_in(ours, "dump_live_from_epsilon") == ours.current) << out;

  if (kSanitized) GTEST_SKIP() << "our core checked; no gcore reference of a sanitized process";
  const fs::path ref = dir.path() / ("gcore." + std::to_string(child.pid()));
  ASSERT_TRUE(fs::exists(ref)) << gcore_out;
  const std::string ref_out = gdb(ref.string());
  const Threads theirs = parse_threads(ref_out);
  EXPECT_EQ(theirs.frames.size(), ours.frames.size()) << ref_out;
  expect_same_workers(ours, theirs);
}

TEST(CoreDump, CrashCoreShowsTheFaultingFunctionOnTop) {
  np::testing::TempDir dir("coredump");
  const fs::path core = dir.path() / "netpoll.core";
  Child child({kChild, "crash", core.string()}, dir.path());
  const int status = child.wait(20s);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) << status << "\n" << child.output();
  EXPECT_NE(child.output().find("dumped threads=4 without_registers=0"), std::string::npos) << child.output();

  const std::string out = gdb(core.string());
  const Threads ours = parse_threads(out);
  expect_common(out, ours);
  EXPECT_NE(out.find("Program terminated with signal SIGSEGV, Segmentation fault."), std::string::npos) << out;
  ASSERT_EQ(ours.current, child.pid()) << out;
  const auto& top = ours.frames.at(ours.current);
  ASSERT_FALSE(top.empty()) << out;
  EXPECT_NE(top[0].find("crash_in_delta_function"), std::string::npos) << out;

  // The kernel's own core of the same death, where the machine writes
  // one into the working directory.
  std::optional<fs::path> kernel_core;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    const std::string name = e.path().filename().string();
    if (name.rfind("core", 0) == 0) kernel_core = e.path();
  }
  if (!kernel_core) GTEST_SKIP() << "no kernel core to compare with (core_pattern is not a plain file name here)";
  const std::string ref_out = gdb(kernel_core->string());
  const Threads theirs = parse_threads(ref_out);
  EXPECT_EQ(theirs.frames.size(), ours.frames.size()) << ref_out;
  EXPECT_EQ(theirs.current, ours.current) << ref_out;
  ASSERT_TRUE(theirs.frames.count(theirs.current) == 1 && !theirs.frames.at(theirs.current).empty()) << ref_out;
  EXPECT_EQ(theirs.frames.at(theirs.current)[0], top[0]);
  expect_same_workers(ours, theirs);
}

TEST(CoreDump, CoreOfAProcessThatBrokeItsHeapStillOpens) {
  // As in the torture suite: ASan's allocator owns the heap this breaks
  // (it stops the overrun itself).
  if (kSanitized) GTEST_SKIP() << "the sanitizer build's heap is ASan's";
  np::testing::TempDir dir("coredump");
  const fs::path core = dir.path() / "netpoll.core";
  Child child({kChild, "heap", core.string()}, dir.path());
  const int status = child.wait(20s);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) << status << "\n" << child.output();
  EXPECT_NE(child.output().find("dumped threads=4 without_registers=0"), std::string::npos) << child.output();

  const std::string out = gdb(core.string());
  const Threads ours = parse_threads(out);
  expect_common(out, ours);
  EXPECT_NE(out.find("Program terminated with signal SIGABRT, Aborted."), std::string::npos) << out;
  ASSERT_EQ(ours.current, child.pid()) << out;
  const auto frames = frames_to(ours, ours.current, "corrupt_heap_then_free");
  ASSERT_FALSE(frames.empty()) << out;
  EXPECT_NE(frames.back().find("corrupt_heap_then_free"), std::string::npos) << out;
  bool saw_abort = false;
  for (const auto& f : frames) saw_abort = saw_abort || f.find("abort") != std::string::npos;
  EXPECT_TRUE(saw_abort) << out;
}

}  // namespace
