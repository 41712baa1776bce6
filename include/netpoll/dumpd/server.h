// netpoll dumpd's server: the sockets and files around the protocol logic
// of dumpd/session.h.
//
// One thread polls the herald socket and every session's socket. A herald
// that check_herald() accepts gets a fresh UDP socket, bound to the
// address the herald came to (IP_PKTINFO: the client checks that answers
// come from the address it sent to) on a port the kernel picks; the
// herald's ack goes out of that socket, and the client sends everything
// else to its port. The socket is not connected: a netpoll client receives
// on its own path, so its host's kernel answers each ack with an ICMP port
// unreachable, which a connected socket would report at its next send and
// not send. What comes to the port from anyone but the client is refused
// and counted ("stranger"). A resent herald from the
// same client (address, port, pid) before any DATA is answered again from
// the same socket.
//
// Datagrams are taken in batches (recvmmsg), each goes through its
// session's state machine, contiguous writes of a batch go out as one
// pwritev, and the batch's acks as one sendmmsg after its writes: an ack
// is never sent for bytes that are not in the file.
//
// Files: DIR/<client address>/<UTC herald time>-<pid>-<program> and
//   .core.part     while the dump comes in (sparse: only what is sent)
//   .core          complete: renamed into place after ftruncate to
//                  FINISHED's offset, fsync, and the .json
//   .core.partial  the client gave up, went silent, started over, a write
//                  failed, or the server stopped
//   .json          beside either: what the herald said and how it went
// (a suffix -2, -3, ... keeps two dumps of one second apart). A session
// that ends partial before any DATA keeps nothing.
//
// Memory: the receive buffers are made once; each session is fixed state
// (its DumpInfo bounded by herald.h) and there are at most max_clients.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "netpoll/base/result.h"
#include "netpoll/dumpd/session.h"
#include "netpoll/dumpd/stats.h"

namespace np::dumpd {

// The most sessions --max-clients may allow (one poll(2) set).
inline constexpr unsigned kMaxClients = 1024;

struct Options {
  std::string dir = "/var/crash/netpoll";
  std::string bind = "::";  // every IPv6 and IPv4 address
  std::uint16_t port = 20023;  // 0: a port the kernel picks (tests)
  Limits limits;
  unsigned max_clients = 16;  // 1 to kMaxClients
  // Run after each dump that kept a file, not waited for:
  //   SCRIPT complete|partial CORE JSON CLIENT
  std::string exec;
  // A progress line per session at most this often, the first one this
  // long after the herald (so small dumps have none).
  std::int64_t progress_ns = 5'000'000'000;
  int rcvbuf = 8 << 20;  // each session socket's receive buffer
  // While a dump is arriving, how long the server looks for datagrams
  // without sleeping before it sleeps in poll(2). A sleeping server wakes
  // well after its datagram arrived (an idle virtual CPU: hundreds of
  // microseconds), and every acknowledgement it owes waits for that. 0:
  // sleep at once.
  std::int64_t spin_ns = 100'000;
  // One line per event for a person (no trailing newline); empty: none.
  std::function<void(const std::string&)> log;
};

class Server {
 public:
  // Binds the herald socket and makes DIR. Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<Server>> open(const Options& options);
  ~Server();

  // Serves until `stop` (looked at least every 100 ms); then every session
  // still receiving ends partial (End::kStopped). Context: the server's
  // own thread.
  void run(const std::atomic<bool>& stop);

  // The herald port (the kernel's pick with port 0). Context: any.
  std::uint16_t port() const noexcept { return port_; }
  // Context: any thread (counters are atomic).
  const DumpdStats& stats() const noexcept { return stats_; }
  // Sessions open now (receiving or lingering). Context: any thread.
  unsigned sessions() const noexcept { return open_sessions_.load(std::memory_order_relaxed); }

 private:
  struct Client;
  struct Buffers;
  explicit Server(const Options& options);

  void poll_once(std::int64_t now_ns);
  void drain_heralds();
  void herald(const std::byte* data, std::size_t len, const void* peer, unsigned peer_len, const void* local,
              unsigned local_len, std::int64_t now_ns);
  std::unique_ptr<Client> open_client(const Herald& h, const void* peer, unsigned peer_len, const void* local,
                                      unsigned local_len, std::int64_t now_ns);
  void drain_client(Client& c);
  void send_ack(int sock, const sockaddr_storage& to, std::uint32_t seqno);
  void finish(Client& c, End end, std::uint64_t final_size, std::int64_t now_ns);
  void end_partial(Client& c, End end, std::int64_t now_ns);
  int write_json(Client& c, bool complete, std::int64_t now_ns);  // 0 or an errno
  void keep(Client& c, bool complete, std::int64_t now_ns);
  void run_exec(const Client& c, bool complete);
  void reap_children();
  void progress(Client& c, std::int64_t now_ns);
  void say(const std::string& line) const;
  void setup_failed(const std::string& why);
  void note_drops(int fd_index, std::uint32_t total);

  const Options options_;
  int fd_ = -1;
  int family_ = 0;
  std::uint16_t port_ = 0;
  std::unique_ptr<Buffers> buffers_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<int> children_;  // --exec scripts still running
  std::uint32_t herald_drops_ = 0;  // the herald socket's SO_RXQ_OVFL total so far
  std::int64_t last_setup_log_ns_ = 0;
  std::string last_setup_log_;
  DumpdStats stats_;
  std::atomic<unsigned> open_sessions_{0};
};

}  // namespace np::dumpd
