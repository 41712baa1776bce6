// netpoll bench dumpd: a dump sent with debugnet's protocol, netpoll
// dumpd's server next to a bare loop that only acknowledges (the ceiling).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "netpoll/base/bytes.h"
#include "netpoll/base/clock.h"
#include "netpoll/dumpd/server.h"
#include "netpoll/wire/debugnet.h"

namespace np::tools {
namespace {

namespace dn = np::wire::debugnet;

constexpr const char* kHelp =
    "usage: netpoll bench dumpd [--size BYTES] [--chunk N] [--to ADDR:PORT] [--dir DIR]\n"
    "       netpoll bench dumpd --ack-only ADDR:PORT\n"
    "\n"
    "Sends a dump of --size random bytes (default 268435456) with debugnet's\n"
    "protocol from a kernel UDP socket, as FreeBSD's debugnet does: 64 DATA\n"
    "of --chunk bytes (default 1448: a 1500-byte MTU) sent together\n"
    "(sendmmsg), then their acks awaited, what is missing after 50 ms resent;\n"
    "then FINISHED. Prints MB/s of dump.\n"
    "Without --to, on loopback, side by side:\n"
    "  ack-only  a bare loop that acknowledges each datagram unread (recvmmsg,\n"
    "            sendmmsg), no file: the ceiling of the send path\n"
    "  dumpd     netpoll dumpd's server in this process, writing to --dir\n"
    "            (default: the temporary directory; its file is removed)\n"
    "With --to ADDR:PORT, the sender alone against a netpoll dumpd there (in\n"
    "another namespace, over veth: run this with ip netns exec); --ack-only\n"
    "ADDR:PORT runs the bare acknowledging loop there until SIGINT, for --to's\n"
    "ceiling on the same path.\n";

struct Target {
  sockaddr_in addr{};
};

Target parse_target(const std::string& text) {
  const auto colon = text.rfind(':');
  Target t;
  t.addr.sin_family = AF_INET;
  if (colon == std::string::npos || ::inet_pton(AF_INET, text.substr(0, colon).c_str(), &t.addr.sin_addr) != 1)
    throw UsageError("--to '" + text + "': expected IPV4:PORT");
  t.addr.sin_port = htons(static_cast<std::uint16_t>(std::stoul(text.substr(colon + 1))));
  return t;
}

struct Result {
  double seconds = 0;
  std::uint64_t resent = 0;
  bool ok = false;
};

// One dump of `data` to `to`, debugnet's way. Bounded: gives up after 5 s
// without progress.
Result send_dump(const sockaddr_in& to, std::span<const std::byte> data, std::size_t chunk) {
  Result res;
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int big = 8 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  std::uint32_t seq = 1;
  sockaddr_in session = to;
  const auto exchange = [&](std::span<const std::byte> msg, std::uint32_t want, const sockaddr_in& where,
                            sockaddr_in* from) {
    for (int t = 0; t < 50; ++t) {
      ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&where), sizeof where);
      pollfd p{fd, POLLIN, 0};
      while (::poll(&p, 1, 100) > 0) {
        std::uint32_t ack = 0;
        sockaddr_in src{};
        socklen_t len = sizeof src;
        if (::recvfrom(fd, &ack, sizeof ack, 0, reinterpret_cast<sockaddr*>(&src), &len) == 4 && ntohl(ack) == want) {
          if (from != nullptr) *from = src;
          return true;
        }
      }
    }
    return false;
  };
  const std::string desc = "kind=live\nprogram=bench\npid=" + std::to_string(::getpid()) +
                           "\nsize=" + std::to_string(data.size()) + "\n";
  std::vector<std::byte> herald(24 + desc.size());
  np::wire::DebugnetRepr{dn::kHerald, seq, 0, 1, as_bytes(desc)}.emit(herald);
  const auto start = std::chrono::steady_clock::now();
  if (!exchange(herald, seq++, to, &session)) {
    ::close(fd);
    return res;
  }
  constexpr unsigned kWindow = dn::kMaxInFlight;
  std::byte headers[kWindow][24];
  iovec iov[kWindow][2];
  mmsghdr msgs[kWindow]{};
  std::uint32_t acks[kWindow];
  iovec ack_iov[kWindow];
  mmsghdr ack_msgs[kWindow]{};
  for (unsigned i = 0; i < kWindow; ++i) {
    ack_iov[i] = {&acks[i], sizeof acks[i]};
    ack_msgs[i].msg_hdr.msg_iov = &ack_iov[i];
    ack_msgs[i].msg_hdr.msg_iovlen = 1;
  }
  std::uint64_t offset = 0;
  while (offset < data.size()) {
    // A batch of up to 64, then all of their acks.
    unsigned n = 0;
    const std::uint32_t first = seq;
    for (; n < kWindow && offset < data.size(); ++n, ++seq) {
      const std::size_t len = std::min<std::size_t>(chunk, data.size() - offset);
      auto m = np::wire::DebugnetMessage<std::byte>::new_unchecked(headers[n]);
      m.set_type(dn::kData);
      m.set_seqno(seq);
      m.set_offset(offset);
      m.set_len(static_cast<std::uint32_t>(len));
      m.set_aux2(0);
      iov[n][0] = {headers[n], 24};
      iov[n][1] = {const_cast<std::byte*>(data.data() + offset), len};
      msgs[n].msg_hdr = {};
      msgs[n].msg_hdr.msg_name = &session;
      msgs[n].msg_hdr.msg_namelen = sizeof session;
      msgs[n].msg_hdr.msg_iov = iov[n];
      msgs[n].msg_hdr.msg_iovlen = 2;
      offset += len;
    }
    std::uint64_t acked = 0;  // bit i: first + i
    const std::uint64_t all = n == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
    for (unsigned sent = 0; sent < n;) {
      const int k = ::sendmmsg(fd, msgs + sent, n - sent, 0);
      if (k <= 0) break;
      sent += static_cast<unsigned>(k);
    }
    auto last_progress = std::chrono::steady_clock::now();
    while (acked != all) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) {
        if (std::chrono::steady_clock::now() - last_progress > std::chrono::seconds(5)) {
          ::close(fd);
          return res;
        }
        for (unsigned i = 0; i < n; ++i) {
          if ((acked & (std::uint64_t{1} << i)) == 0) {
            ::sendmsg(fd, &msgs[i].msg_hdr, 0);
            ++res.resent;
          }
        }
        continue;
      }
      const int k = ::recvmmsg(fd, ack_msgs, kWindow, MSG_DONTWAIT, nullptr);
      for (int i = 0; i < k; ++i) {
        if (ack_msgs[i].msg_len != 4) continue;
        const std::uint32_t a = ntohl(acks[i]) - first;
        if (a < n) acked |= std::uint64_t{1} << a;
      }
      last_progress = std::chrono::steady_clock::now();
    }
  }
  std::byte fin[24];
  np::wire::DebugnetRepr{dn::kFinished, seq, data.size(), 0, {}}.emit(fin);
  res.ok = exchange(fin, seq, session, nullptr);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  return res;
}

// Acknowledges every datagram from its own socket (the herald too), unread.
class AckOnly {
 public:
  explicit AckOnly(sockaddr_in a) : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    const int big = 8 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~AckOnly() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }

 private:
  void run() {
    constexpr unsigned kBatch = 64;
    std::vector<std::byte> buf(kBatch * 2048);
    mmsghdr msgs[kBatch]{}, out[kBatch]{};
    iovec iov[kBatch], out_iov[kBatch];
    sockaddr_in from[kBatch];
    std::uint32_t acks[kBatch];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      for (unsigned i = 0; i < kBatch; ++i) {
        iov[i] = {buf.data() + i * 2048, 2048};
        msgs[i].msg_hdr = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      }
      const int n = ::recvmmsg(fd_, msgs, kBatch, MSG_DONTWAIT, nullptr);
      for (int i = 0; i < n; ++i) {
        std::memcpy(&acks[i], buf.data() + i * 2048 + 4, 4);
        out_iov[i] = {&acks[i], 4};
        out[i].msg_hdr = {};
        out[i].msg_hdr.msg_iov = &out_iov[i];
        out[i].msg_hdr.msg_iovlen = 1;
        out[i].msg_hdr.msg_name = &from[i];
        out[i].msg_hdr.msg_namelen = sizeof from[i];
      }
      if (n > 0) ::sendmmsg(fd_, out, static_cast<unsigned>(n), 0);
    }
  }
  int fd_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void print(const char* what, const Result& r, std::size_t size) {
  if (!r.ok) {
    std::printf("%-9s  failed (no progress for 5 s)\n", what);
    return;
  }
  std::printf("%-9s  %8.1f MB/s  %6.3f s  %llu resent\n", what, static_cast<double>(size) / r.seconds / 1e6, r.seconds,
              static_cast<unsigned long long>(r.resent));
}

}  // namespace

int bench_dumpd(int argc, char** argv) {
  ArgParser args;
  args.option("size").option("chunk").option("to").option("ack-only").option("dir").flag("help");
  args.parse(argc, argv, 3);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const std::size_t size = args.get_uint("size", 256u << 20, 1, 16ull << 30);
  const std::size_t chunk = args.get_uint("chunk", 1448, 1, 65507 - 24);
  std::vector<std::byte> data(size);
  std::mt19937_64 rng(1);
  for (std::size_t i = 0; i + 8 <= size; i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(data.data() + i, &v, 8);
  }
  if (auto at = args.get("ack-only")) {
    AckOnly ceiling(parse_target(*at).addr);
    install_stop_signals();
    std::fprintf(stderr, "acknowledging at %s until SIGINT\n", at->c_str());
    while (!stop_requested()) nap(std::chrono::milliseconds(50));
    return 0;
  }
  if (auto to = args.get("to")) {
    print("dumpd", send_dump(parse_target(*to).addr, data, chunk), size);
    return 0;
  }
  sockaddr_in lo{};
  lo.sin_family = AF_INET;
  lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  {
    AckOnly ceiling(lo);
    lo.sin_port = htons(ceiling.port());
    print("ack-only", send_dump(lo, data, chunk), size);
  }
  const std::string dir =
      args.get("dir").value_or((std::filesystem::temp_directory_path() / ("np-bench-dumpd-" + std::to_string(::getpid()))).string());
  dumpd::Options o;
  o.dir = dir;
  o.bind = "127.0.0.1";
  o.port = 0;
  auto server = dumpd::Server::open(o);
  if (!server) {
    print_error("bench dumpd", server.error().message);
    return 1;
  }
  std::atomic<bool> stop{false};
  std::thread serving([&] { (*server)->run(stop); });
  lo.sin_port = htons((*server)->port());
  print("dumpd", send_dump(lo, data, chunk), size);
  stop = true;
  serving.join();
  if (!args.has("dir")) std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace np::tools
