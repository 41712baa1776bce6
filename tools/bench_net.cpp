#include "bench_net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

extern char** environ;

namespace np::tools {
namespace {

// A shell in a process group of its own (a ctrl-C at the terminal does not
// reach it) that reads its standard input, a pipe from this process, to
// the end, and then deletes the namespaces. The end comes when this process
// ends, however it ends; the pipe is close-on-exec here, so the programs a
// benchmark starts do not hold it open. The write end, or -1.
int start_janitor(const std::string& a, const std::string& b) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return -1;
  std::string script = "cat >/dev/null; ip netns del " + a + "; ip netns del " + b;
  std::string sh = "sh", dash_c = "-c";
  char* argv[] = {sh.data(), dash_c.data(), script.data(), nullptr};
  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawn_file_actions_adddup2(&fa, p[0], 0);
  ::posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  ::posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t at;
  ::posix_spawnattr_init(&at);
  ::posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
  ::posix_spawnattr_setpgroup(&at, 0);
  pid_t pid = -1;
  const int err = ::posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
  ::posix_spawn_file_actions_destroy(&fa);
  ::posix_spawnattr_destroy(&at);
  ::close(p[0]);
  if (err != 0) {
    ::close(p[1]);
    return -1;
  }
  return p[1];
}

}  // namespace

int run_cmd(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

BenchNet::BenchNet() {
  const std::string tag = std::to_string(::getpid());
  a = "npbench-a-" + tag;
  b = "npbench-b-" + tag;
  janitor_fd = start_janitor(a, b);
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
  if (janitor_fd >= 0) ::close(janitor_fd);  // it finds them gone
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

bool BenchNet::count_peer_udp(std::uint16_t port) {
  return run_cmd("ip netns exec " + b + " nft add counter netdev npbench udpcount") == 0 &&
         run_cmd("ip netns exec " + b + " nft insert rule netdev npbench sink udp dport " + std::to_string(port) +
                 " counter name udpcount drop") == 0;
}

std::int64_t BenchNet::peer_udp_count() const {
  const std::string cmd = "ip netns exec " + b + " nft list counter netdev npbench udpcount";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::int64_t packets = -1;
  char line[256];
  while (std::fgets(line, sizeof line, p) != nullptr) {
    long long n = 0;
    if (std::sscanf(line, " packets %lld", &n) == 1) packets = n;
  }
  ::pclose(p);
  return packets;
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
