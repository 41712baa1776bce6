// netpoll listen as a test runs it: a separate process inside a namespace,
// its standard output and error in files of a directory of the test's own
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
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "netns.h"
#include "temp_dir.h"

namespace np::tools {

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::size_t count_of(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + needle.size())) ++n;
  return n;
}

// Loss each way between a console in `a` and a listener on port 6666 in
// `b`: `percent` of the records into b and of the answers into a are
// dropped at each veth end's egress (nftables, netdev family: it sees
// netpoll's AF_PACKET frames and the kernel's alike; an input hook would
// miss answers a packet socket takes first). losses_each_way() then says
// whether both rules dropped some.
// `a_rule`/`b_rule`: what each side's egress drops, an nftables expression
// (by default a random `percent` of the records to the listener's port 6666
// and of the answers from it).
inline std::string random_udp_loss(const std::string& match, int percent) {
  return "udp " + match + " numgen random mod 100 '<' " + std::to_string(percent);
}

// Every n-th datagram that matches (a count, not a chance: a direction that
// carries only a handful of datagrams, as range acks do, still loses some).
inline std::string every_nth_udp_loss(const std::string& match, int n) {
  return "udp " + match + " numgen inc mod " + std::to_string(n) + " 0";
}

// The datagrams the loss rule in `ns` has dropped (-1: none listed).
inline long dropped_by_loss_rule(const np::testing::Netns& ns) {
  const std::string out = "/tmp/np-nft-count-" + std::to_string(::getpid());
  if (::system((ns.exec() + "nft list table netdev loss > " + out).c_str()) != 0) return -1;
  const std::string rules = read_file(out);
  std::filesystem::remove(out);
  const auto at = rules.find("counter packets ");
  return at == std::string::npos ? -1 : std::stol(rules.substr(at + 16));
}

inline void lose_udp_each_way(const np::testing::VethBed& bed, int percent, std::string a_rule = "",
                              std::string b_rule = "") {
  if (a_rule.empty()) a_rule = random_udp_loss("dport 6666", percent);
  if (b_rule.empty()) b_rule = random_udp_loss("sport 6666", percent);
  for (const auto& [ns, ifname, rule] : {std::tuple{&bed.a, bed.a_if, a_rule}, std::tuple{&bed.b, bed.b_if, b_rule}}) {
    ASSERT_EQ(::system((ns->exec() + "nft add table netdev loss").c_str()), 0);
    ASSERT_EQ(::system((ns->exec() + "nft 'add chain netdev loss out { type filter hook egress device " + ifname +
                        " priority 0; }'")
                           .c_str()),
              0);
    ASSERT_EQ(::system((ns->exec() + "nft add rule netdev loss out " + rule + " counter drop").c_str()), 0);
  }
}

inline void expect_losses_each_way(const np::testing::VethBed& bed) {
  for (const auto* ns : {&bed.a, &bed.b}) {
    const std::string out = "/tmp/np-nft-" + std::to_string(::getpid());
    ASSERT_EQ(::system((ns->exec() + "nft list ruleset > " + out).c_str()), 0);
    const std::string rules = read_file(out);
    std::filesystem::remove(out);
    EXPECT_NE(rules.find("counter packets "), std::string::npos) << rules;
    EXPECT_EQ(rules.find("counter packets 0 "), std::string::npos) << "no loss one way: " << rules;
  }
}

// `netpoll listen ARGS` running inside `ns`, stdout and stderr to files.
class Listener {
 public:
  Listener(const np::testing::Netns& ns, std::vector<std::string> args, const np::testing::TempDir& dir)
      : out_(dir.path() / "stdout"), err_(dir.path() / "stderr") {
    args.insert(args.begin(), {NP_NETPOLL_BIN, "listen"});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string ns_path = "/var/run/netns/" + ns.name();
    const std::string out = out_.string(), err = err_.string();
    // A previous listener's files (same directory) must not pass for this
    // one's: its "port" line would say ready before this one has bound.
    std::filesystem::remove(out_);
    std::filesystem::remove(err_);
    pid_ = ::fork();
    if (pid_ == 0) {
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int nsfd = ::open(ns_path.c_str(), O_RDONLY);
      if (o < 0 || e < 0 || nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) ::_exit(125);
      ::dup2(o, 1);
      ::dup2(e, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    // Ready when it says where it listens.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (read_file(err_).find(" port ") == std::string::npos && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ~Listener() { stop(); }

  // Waits (bounded) for it to exit on its own (--count, --timeout).
  int wait(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    if (pid_ <= 0) return status_;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, &status_, WNOHANG) == pid_) {
        pid_ = -1;
        return status_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "netpoll listen did not exit; stderr:\n" << read_file(err_);
    return stop();
  }
  int stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, &status_, 0);
      pid_ = -1;
    }
    return status_;
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  std::string out() const { return read_file(out_); }
  std::string err() const { return read_file(err_); }

 private:
  std::filesystem::path out_, err_;
  pid_t pid_ = -1;
  int status_ = -1;
};

// Checks listen's text lines for the records a sender numbered 0..n-1
// with the text "<what> <n>": each once, in order, no gap.
inline void expect_each_once_in_order(const std::string& out, int n, const std::string& what,
                                      const std::string& context) {
  std::size_t at = 0;
  for (int i = 0; i < n; ++i) {
    const std::string want = " " + std::to_string(i) + " " + what + " " + std::to_string(i) + "\n";
    const auto found = out.find(want, at);
    ASSERT_NE(found, std::string::npos) << what << " " << i << " missing or out of order\n" << context;
    at = found + want.size();
  }
  EXPECT_EQ(count_of(out, " " + what + " "), static_cast<std::size_t>(n)) << "a record delivered twice";
  EXPECT_EQ(out.find(" gap "), std::string::npos) << out;
}

// How many times `re` matches in `text`.
inline std::size_t count_matches(const std::string& text, const std::string& re) {
  const std::regex r(re);
  return static_cast<std::size_t>(std::distance(std::sregex_iterator(text.begin(), text.end(), r), std::sregex_iterator()));
}

// The netpoll binary under test.
inline const std::string kNetpollBin = NP_NETPOLL_BIN;

inline std::string netpoll_in(const np::testing::Netns& ns) { return ns.exec() + kNetpollBin; }

}  // namespace np::tools
