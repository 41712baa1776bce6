// netpoll dumpd as a test runs it: a separate process inside a namespace,
// its standard error in a file of a directory of the test's own
// (integration tests only: the binary is NP_NETPOLL_BIN).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "listener.h"
#include "netns.h"
#include "temp_dir.h"

namespace np::tools {

// `netpoll dumpd ARGS` inside `ns`, its standard error in a file; ready
// once it says its port.
class DumpServer {
 public:
  DumpServer(const np::testing::Netns& ns, std::vector<std::string> args, const np::testing::TempDir& dir)
      : err_(dir.path() / "dumpd.err") {
    args.insert(args.begin(), {NP_NETPOLL_BIN, "dumpd"});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string ns_path = "/var/run/netns/" + ns.name(), err_path = err_.string();
    pid_ = ::fork();
    if (pid_ == 0) {
      const int e = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int nsfd = ::open(ns_path.c_str(), O_RDONLY);
      if (e < 0 || nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) ::_exit(125);
      ::dup2(e, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (err().find(" port ") == std::string::npos && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ~DumpServer() { stop(SIGKILL); }
  // Sends `sig` and waits for the exit (bounded); the exit status.
  int stop(int sig = SIGINT) {
    if (pid_ <= 0) return status_;
    ::kill(pid_, sig);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (::waitpid(pid_, &status_, WNOHANG) != pid_) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ADD_FAILURE() << "netpoll dumpd did not stop; stderr:\n" << err();
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status_, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    return status_;
  }
  std::string err() const { return read_file(err_); }
  // Waits (bounded) until its standard error holds `text`.
  bool wait_for(const std::string& text, std::chrono::milliseconds limit = std::chrono::seconds(30)) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (err().find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }

 private:
  std::filesystem::path err_;
  pid_t pid_ = -1;
  int status_ = -1;
};

}  // namespace np::tools
