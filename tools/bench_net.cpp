#include "bench_net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace np::tools {

int run_cmd(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

BenchNet::BenchNet() {
  const std::string tag = std::to_string(::getpid());
  a = "npbench-a-" + tag;
  b = "npbench-b-" + tag;
  ok = run_cmd("ip netns add " + a) == 0 && run_cmd("ip netns add " + b) == 0 &&
       run_cmd("ip link add npb0 netns " + a + " type veth peer name npb1 netns " + b) == 0 &&
       run_cmd("ip -n " + a + " addr add 10.99.0.1/24 dev npb0") == 0 &&
       run_cmd("ip -n " + b + " addr add 10.99.0.2/24 dev npb1") == 0 &&
       run_cmd("ip -n " + a + " link set npb0 up") == 0 && run_cmd("ip -n " + b + " link set npb1 up") == 0 &&
       run_cmd("ip -n " + a + " link set lo up") == 0 && run_cmd("ip -n " + b + " link set lo up") == 0;
}

BenchNet::~BenchNet() {
  run_cmd("ip netns del " + a);
  run_cmd("ip netns del " + b);
}

std::string BenchNet::prepare_peer(bool drop, std::string& error) {
  const std::string peer_mac = mac_in(b, "npb1");
  // The kernel sender must not depend on ARP (the peer may drop it).
  run_cmd("ip -n " + a + " neigh replace 10.99.0.2 lladdr " + peer_mac + " dev npb0 nud permanent");
  if (drop && (run_cmd("ip netns exec " + b + " nft add table netdev npbench") != 0 ||
               run_cmd("ip netns exec " + b +
                       " nft 'add chain netdev npbench sink { type filter hook ingress device npb1 priority 0; "
                       "policy drop; }'") != 0)) {
    error = "cannot install the nftables ingress drop in the peer (is nftables installed?)";
    return "";
  }
  return peer_mac;
}

InNetns::InNetns(const std::string& name) {
  saved_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  const int fd = ::open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  ok_ = saved_ >= 0 && fd >= 0 && ::setns(fd, CLONE_NEWNET) == 0;
  if (fd >= 0) ::close(fd);
}

InNetns::~InNetns() {
  if (saved_ >= 0) {
    if (::setns(saved_, CLONE_NEWNET) != 0) std::abort();
    ::close(saved_);
  }
}

std::string mac_in(const std::string& ns, const std::string& ifname) {
  std::string cmd = "ip netns exec " + ns + " cat /sys/class/net/" + ifname + "/address";
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[64] = {};
  if (p != nullptr) {
    if (std::fgets(buf, sizeof buf, p) == nullptr) buf[0] = '\0';
    ::pclose(p);
  }
  std::string s(buf);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Slice measure(double seconds, const std::function<std::uint64_t()>& one) {
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  std::uint64_t n = 0;
  auto now = start;
  while (now < end) {
    for (int i = 0; i < 64; ++i) n += one();
    now = std::chrono::steady_clock::now();
  }
  return {n, std::chrono::duration<double>(now - start).count()};
}

sockaddr_in peer_addr() {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(6666);
  ::inet_pton(AF_INET, "10.99.0.2", &sa.sin_addr);
  return sa;
}

}  // namespace np::tools
