#include "netns.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cerrno>
#include <sstream>

namespace np::testing {
namespace {

std::atomic<int> g_serial{0};

void sweep_stale_namespaces() {
  std::string list;
  if (sh("ip netns list 2>/dev/null", &list) != 0) return;
  std::istringstream in(list);
  std::string line;
  while (std::getline(in, line)) {
    // "np-<pid>-<n>-<tag> (id: 3)"
    if (line.rfind("np-", 0) != 0) continue;
    const std::string name = line.substr(0, line.find(' '));
    const long pid = std::strtol(name.c_str() + 3, nullptr, 10);
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    sh("ip netns del " + name + " 2>/dev/null");
  }
}

}  // namespace

int sh(const std::string& cmd, std::string* output) {
  std::string full = cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  std::string out;
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  if (output != nullptr) {
    *output = out;
  } else if (!out.empty()) {
    std::fwrite(out.data(), 1, out.size(), stderr);
  }
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

bool sh_ok(const std::string& cmd) {
  std::string out;
  const int rc = sh(cmd, &out);
  if (rc != 0) {
    ADD_FAILURE() << "command failed (exit " << rc << "): " << cmd << "\n" << out;
    return false;
  }
  return true;
}

bool can_make_namespaces() { return ::geteuid() == 0; }

Netns::Netns(std::string_view tag) {
  if (g_serial.load() == 0) sweep_stale_namespaces();
  name_ = "np-" + std::to_string(::getpid()) + "-" + std::to_string(++g_serial) + "-" + std::string(tag);
  if (!can_make_namespaces()) {
    ADD_FAILURE() << "network namespace tests need root (run scripts/test as root)";
    return;
  }
  sh_ok("ip netns add " + name_);
  sh_ok(exec() + "ip link set lo up");
}

Netns::~Netns() { sh("ip netns del " + name_ + " 2>/dev/null"); }

ScopedNetns::ScopedNetns(const Netns& ns) {
  saved_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  const std::string path = "/var/run/netns/" + ns.name();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (saved_ < 0 || fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
    ADD_FAILURE() << "cannot enter namespace " << ns.name() << ": " << std::strerror(errno);
  }
  if (fd >= 0) ::close(fd);
}

ScopedNetns::~ScopedNetns() {
  if (saved_ >= 0) {
    if (::setns(saved_, CLONE_NEWNET) != 0) std::abort();  // a thread left in a test namespace is a bug
    ::close(saved_);
  }
}

VethBed::VethBed() {
  sh_ok("ip link add " + a_if + " netns " + a.name() + " type veth peer name " + b_if + " netns " + b.name());
  sh_ok(a.exec() + "ip addr add " + a_ip + "/24 dev " + a_if);
  sh_ok(b.exec() + "ip addr add " + b_ip + "/24 dev " + b_if);
  sh_ok(a.exec() + "ip link set " + a_if + " up");
  sh_ok(b.exec() + "ip link set " + b_if + " up");
  a_mac = mac_of(a, a_if);
  b_mac = mac_of(b, b_if);
}

std::string mac_of(const Netns& ns, const std::string& ifname) {
  std::string out;
  sh(ns.exec() + "cat /sys/class/net/" + ifname + "/address", &out);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace np::testing
