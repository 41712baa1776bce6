// netpoll bench listen: the receiver at fixed offered rates, next to a
// bare recvmmsg drain loop on the same setup (the ceiling).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "listen_worker.h"
#include "netpoll/wire/netconsole.h"

namespace np::tools {
namespace {

namespace nc = np::wire::netconsole;
using Steady = std::chrono::steady_clock;

constexpr const char* kHelp =
    "usage: netpoll bench listen [--seconds S] [--rates LIST] [--big-rates LIST]\n"
    "\n"
    "Offers netconsole records over loopback at fixed rates (a paced kernel\n"
    "UDP sender on its own thread) and, for each rate, measures side by side:\n"
    "  drain    a bare recvmmsg loop that discards what it reads: the ceiling\n"
    "  listen   netpoll listen's receiving thread: parsing, reassembly,\n"
    "           ordering, writing each record to a file\n"
    "records/s received, loss, and receiver CPU (user+system of the receiving\n"
    "thread) in microseconds per record (per datagram for drain).\n"
    "  --rates LIST      short records per second (default 50000,100000,200000,400000)\n"
    "  --big-rates LIST  2500-byte records per second, 3 fragments each\n"
    "                    (default 20000,50000,100000)\n"
    "  --seconds S       per measurement (default 2)\n";

std::vector<std::uint64_t> parse_rates(const std::string& list) {
  std::vector<std::uint64_t> out;
  std::size_t at = 0;
  while (at <= list.size()) {
    const auto comma = list.find(',', at);
    const std::string item = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    try {
      out.push_back(std::stoull(item));
    } catch (const std::exception&) {
      throw UsageError("rate list '" + list + "': expected numbers separated by commas");
    }
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

double thread_cpu_us() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// The datagrams of `records` records, built once: short ones, or 2500-byte
// ones in three fragments.
std::vector<std::string> make_datagrams(std::size_t records, bool big) {
  std::vector<std::string> out;
  const std::string big_text(2500 - 1, 'x');
  for (std::size_t i = 0; i < records; ++i) {
    const nc::Header h{{}, 1, 6, i, 1000 + i, false, false};
    char head[nc::kMaxHeader];
    const auto n = nc::format_header(h, head);
    const std::string body = big ? big_text + "\n" : "bench record " + std::to_string(i) + " from the sender\n";
    nc::emit_extended(std::string_view(head, n), body, [&](std::string_view d) { out.emplace_back(d); });
  }
  return out;
}

struct Result {
  double received_per_s = 0;
  double loss = 0;  // fraction of records
  double cpu_us_per_unit = 0;
};

// Sends `datagrams` (cycling; records are numbered anew each cycle) to
// port at `dgram_rate` datagrams/s for `seconds`; returns datagrams sent.
std::uint64_t send_paced(std::uint16_t port, const std::vector<std::string>& datagrams, double dgram_rate,
                         double seconds) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
  constexpr std::size_t kBatch = 32;
  mmsghdr msgs[kBatch]{};
  iovec iov[kBatch]{};
  const auto start = Steady::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  std::uint64_t sent = 0;
  for (auto now = start; now < end; now = Steady::now()) {
    const auto due = static_cast<std::uint64_t>(std::chrono::duration<double>(now - start).count() * dgram_rate);
    if (sent >= due) {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      continue;
    }
    const std::size_t n = std::min<std::uint64_t>(kBatch, due - sent);
    for (std::size_t i = 0; i < n; ++i) {
      const std::string& d = datagrams[(sent + i) % datagrams.size()];
      iov[i] = {const_cast<char*>(d.data()), d.size()};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int r = ::sendmmsg(fd, msgs, static_cast<unsigned>(n), 0);
    if (r > 0) sent += static_cast<std::uint64_t>(r);
  }
  ::close(fd);
  return sent;
}

Result run_drain(const std::vector<std::string>& datagrams, std::size_t per_record, double rate, double seconds) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const int rcvbuf = 64 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  std::atomic<bool> done{false};
  std::uint64_t received = 0;
  double cpu = 0;
  std::thread rx([&] {
    constexpr unsigned kBatch = 64;
    std::vector<char> bufs(kBatch * 4096);
    mmsghdr msgs[kBatch]{};
    iovec iov[kBatch]{};
    for (unsigned i = 0; i < kBatch; ++i) {
      iov[i] = {bufs.data() + i * 4096, 4096};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const double c0 = thread_cpu_us();
    for (;;) {
      const int n = ::recvmmsg(fd, msgs, kBatch, 0, nullptr);
      if (n > 0) {
        received += static_cast<std::uint64_t>(n);
        continue;
      }
      if (done.load()) break;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    cpu = thread_cpu_us() - c0;
  });
  const std::uint64_t sent = send_paced(ntohs(sa.sin_port), datagrams, rate * static_cast<double>(per_record), seconds);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  done = true;
  rx.join();
  ::close(fd);
  Result r;
  r.received_per_s = static_cast<double>(received) / static_cast<double>(per_record) / seconds;
  r.loss = sent == 0 ? 0 : 1.0 - static_cast<double>(received) / static_cast<double>(sent);
  r.cpu_us_per_unit = received == 0 ? 0 : cpu / static_cast<double>(received);  // per datagram
  return r;
}

Result run_listen(const std::vector<std::string>& datagrams, std::size_t per_record, double rate, double seconds,
                  const std::string& dir) {
  listen::Options o;
  o.bind = "127.0.0.1";
  o.port = 0;
  o.workers = 1;
  o.to_stdout = false;
  o.dir = dir;
  o.limits.window = 1024;
  o.limits.memory = 8 << 20;
  listen::Shared shared;
  auto w = listen::Worker::open(0, o, shared);
  if (!w) throw UsageError(w.error().message);
  double cpu = 0;
  std::thread rx([&] {
    const double c0 = thread_cpu_us();
    (*w)->run();
    cpu = thread_cpu_us() - c0;
  });
  const std::uint64_t sent =
      send_paced((*w)->bound_port(), datagrams, rate * static_cast<double>(per_record), seconds);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // past the reorder timeout
  shared.stop = true;
  rx.join();
  np::listen::SourceStats total;
  (*w)->add_totals(total);
  const std::uint64_t records = total.records.value();
  const std::uint64_t sent_records = sent / per_record;
  Result r;
  r.received_per_s = static_cast<double>(records) / seconds;
  r.loss = sent_records == 0 ? 0 : 1.0 - static_cast<double>(records) / static_cast<double>(sent_records);
  if (r.loss < 0) r.loss = 0;  // a record cut by the end of sending still counts once
  r.cpu_us_per_unit = records == 0 ? 0 : cpu / static_cast<double>(records);
  return r;
}

}  // namespace

int bench_listen(int argc, char** argv) {
  ArgParser args;
  args.option("seconds").option("rates").option("big-rates").flag("help");
  args.parse(argc, argv, 3);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const double seconds = args.get_seconds("seconds", 2);
  const auto rates = parse_rates(args.get("rates").value_or("50000,100000,200000,400000"));
  const auto big_rates = parse_rates(args.get("big-rates").value_or("20000,50000,100000"));
  const auto dir = std::filesystem::temp_directory_path() / ("netpoll-bench-listen-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  std::printf("netpoll bench listen: loopback, %.1f s per measurement; receiver CPU = user+system of the receiving "
              "thread\n\n",
              seconds);
  std::printf("%-7s %9s | %12s %7s %10s | %12s %7s %10s | %7s\n", "records", "offered/s", "drain recv/s", "loss",
              "us/dgram", "listen rec/s", "loss", "us/record", "ratio");
  bool zero_loss = true, cpu_ok = true;
  for (const bool big : {false, true}) {
    const auto datagrams = make_datagrams(big ? 4096 : 65536, big);
    const std::size_t per_record = big ? 3 : 1;
    for (const std::uint64_t rate : big ? big_rates : rates) {
      const Result d = run_drain(datagrams, per_record, static_cast<double>(rate), seconds);
      const Result l = run_listen(datagrams, per_record, static_cast<double>(rate), seconds, dir.string());
      const double ratio = d.cpu_us_per_unit > 0 ? l.cpu_us_per_unit / d.cpu_us_per_unit : 0;
      std::printf("%-7s %9llu | %12.0f %6.2f%% %10.3f | %12.0f %6.2f%% %10.3f | %6.2fx\n", big ? "2500 B" : "short",
                  static_cast<unsigned long long>(rate), d.received_per_s, 100 * d.loss, d.cpu_us_per_unit,
                  l.received_per_s, 100 * l.loss, l.cpu_us_per_unit, ratio);
      std::fflush(stdout);
      if (d.loss < 0.0001 && l.loss > 0.0001) zero_loss = false;
      if (ratio > 1.5) cpu_ok = false;
      std::filesystem::remove_all(dir);
      std::filesystem::create_directories(dir);
    }
  }
  std::filesystem::remove_all(dir);
  std::printf("\ntargets: zero loss wherever the drain loop has none: %s; listen CPU per record <= 1.5x drain CPU "
              "per datagram: %s\n",
              zero_loss ? "met" : "NOT met", cpu_ok ? "met" : "NOT met");
  return 0;
}

}  // namespace np::tools
