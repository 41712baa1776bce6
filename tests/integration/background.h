// A shell command a test runs in the background: its own process group,
// its standard output and error in files of the test's directory, the
// whole group killed at the end if it is still there (integration tests:
// netpoll run under gdb or remote commands).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "listener.h"
#include "temp_dir.h"

namespace np::tools {

// A command run with /bin/sh in a process group of its own, its output in
// files; the whole group is killed if it is still there at the end.
class Background {
 public:
  Background(const std::string& cmd, const np::testing::TempDir& dir, const std::string& name)
      : out_(dir.path() / (name + ".out")), err_(dir.path() / (name + ".err")) {
    const std::string o = out_.string(), e = err_.string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      const int fo = ::open(o.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int fe = ::open(e.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fo < 0 || fe < 0) ::_exit(125);
      ::dup2(fo, 1);
      ::dup2(fe, 2);
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::setpgid(pid_, pid_);
  }
  ~Background() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // Waits (bounded) until its standard output or error holds `text`.
  bool wait_for(const std::string& text, std::chrono::milliseconds limit) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (out().find(text) != std::string::npos || err().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  // Waits (bounded) for it to end; its status, -1 (and a failure) if not.
  int wait(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "did not end in time; stderr:\n" << err();
    return -1;
  }
  // Ends the whole group now (SIGKILL), if it is still there.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string out() const { return read_file(out_); }
  std::string err() const { return read_file(err_); }

 private:
  std::filesystem::path out_, err_;
  pid_t pid_ = -1;
};

}  // namespace np::tools
