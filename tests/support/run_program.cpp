#include "run_program.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace np::testing {

using namespace std::chrono_literals;

// Runs argv inside `ns` (or here), in a fresh directory with core dumps
// allowed; killed (and a failure) after 20 s.
Outcome run_program(const Netns* ns, const std::vector<std::string>& args) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("np-run-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
  std::filesystem::create_directories(dir);
  std::vector<std::string> argv_s = args;
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string ns_path = ns != nullptr ? "/var/run/netns/" + ns->name() : "";
  const std::string dir_s = dir.string();
  const std::string out_s = (dir / "output").string();
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::chdir(dir_s.c_str()) != 0) ::_exit(126);
    const int out = ::open(out_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) ::_exit(126);
    const rlimit core{64 << 20, 64 << 20};
    ::setrlimit(RLIMIT_CORE, &core);
#if defined(__SANITIZE_ADDRESS__)
    ::setenv("ASAN_OPTIONS", kSanitizedChildOptions, 1);
#endif
    if (!ns_path.empty()) {
      const int fd = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) ::_exit(125);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  Outcome o;
  const auto deadline = start + 20s;
  for (;;) {
    if (::waitpid(pid, &o.status, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &o.status, 0);
      ADD_FAILURE() << args[0] << " " << (args.size() > 1 ? args[1] : "") << " hung and was killed";
      break;
    }
    std::this_thread::sleep_for(2ms);
  }
  o.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  std::ifstream in(out_s);
  std::stringstream ss;
  ss << in.rdbuf();
  o.output = ss.str();
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("core", 0) == 0) o.core_file = true;
  }
  std::filesystem::remove_all(dir);
  return o;
}

}  // namespace np::testing
