// The test bed of the benchmarks: two network namespaces joined by a veth
// pair (a: npb0 10.99.0.1, b: npb1 10.99.0.2), made for one run and always
// removed (by the destructor, or by a janitor process when this one dies
// without running it: killed, crashed), plus the measuring helpers they
// share.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <functional>
#include <string>

namespace np::tools {

// Runs a shell command quietly; its exit status.
int run_cmd(const std::string& cmd);

struct BenchNet {
  std::string a, b;
  bool ok = false;
  int janitor_fd = -1;  // its end of the janitor's pipe
  BenchNet();
  ~BenchNet();
  BenchNet(const BenchNet&) = delete;
  BenchNet& operator=(const BenchNet&) = delete;

  // Gives a's kernel a permanent neighbour entry for the peer (no ARP) and,
  // with `drop`, makes b drop every frame at ingress (nftables netdev hook).
  // Returns the peer's MAC, or "" with `error` set.
  std::string prepare_peer(bool drop, std::string& error);

  // After prepare_peer(true): counts the UDP datagrams to `port` the peer
  // drops (an nftables counter; a rule more per frame, so only for the
  // benchmarks that ask). The count so far, or -1 if it cannot be read.
  bool count_peer_udp(std::uint16_t port);
  std::int64_t peer_udp_count() const;
};

// Moves the calling thread into a namespace until the end of the scope.
class InNetns {
 public:
  explicit InNetns(const std::string& name);
  ~InNetns();
  InNetns(const InNetns&) = delete;
  InNetns& operator=(const InNetns&) = delete;
  bool ok() const { return ok_; }

 private:
  int saved_ = -1;
  bool ok_ = false;
};

std::string mac_in(const std::string& ns, const std::string& ifname);

// 10.99.0.2:6666, the peer's address.
sockaddr_in peer_addr();

// Runs `one` (which sends some datagrams and returns how many) for
// `seconds`; returns the datagrams sent and the time taken.
struct Slice {
  std::uint64_t datagrams = 0;
  double seconds = 0;
};
Slice measure(double seconds, const std::function<std::uint64_t()>& one);

}  // namespace np::tools
