// netpoll bench listen: the receiver at fixed offered rates, next to a
// bare recvmmsg drain loop on the same setup (the ceiling).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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
#include "netpoll/base/clock.h"
#include "netpoll/receiver/worker.h"
#include "netpoll/wire/netconsole.h"

namespace np::tools {
namespace {

namespace nc = np::wire::netconsole;
using Steady = std::chrono::steady_clock;

constexpr const char* kHelp =
    "usage: netpoll bench listen [--seconds S] [--repeat N] [--rates LIST] [--big-rates LIST]\n"
    "                           [--dir DIR] [--no-write]\n"
    "\n"
    "Offers netconsole records over loopback at fixed rates (a paced kernel\n"
    "UDP sender on its own thread) and, for each rate, measures side by side:\n"
    "  drain    a bare recvmmsg loop that discards what it reads: the ceiling\n"
    "           (it waits for datagrams as listen does: poll() when empty, a\n"
    "           250 us nap after a batch, so only the work differs)\n"
    "  listen   netpoll listen's receiving thread: parsing, reassembly,\n"
    "           ordering, writing each record to a file\n"
    "records/s received, loss, and receiver CPU (user+system of the receiving\n"
    "thread) in microseconds per record (per datagram for drain).\n"
    "  --rates LIST      short records per second (default 50000,100000,200000,400000)\n"
    "  --big-rates LIST  2500-byte records per second, 3 fragments each\n"
    "                    (default 20000,50000,100000)\n"
    "  --seconds S       per run (default 1)\n"
    "  --repeat N        runs per figure, drain and listen alternating; the\n"
    "                    median is printed, and the worst loss (default 3)\n"
    "  --no-write        listen formats every record but writes nothing: what\n"
    "                    writing the file costs, told apart\n"
    "  --dir DIR         where the receiver writes its file (default: the\n"
    "                    temporary directory; its file system's write cost is\n"
    "                    part of the figure)\n";

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

// The most CPU per datagram listen may take against the drain loop's, at
// every rate: short records, 2500-byte records (formatting and writing
// included).
constexpr double kCpuTarget[2] = {1.3, 1.6};

double thread_cpu_us() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// The sender's records, numbered from 0 without end: a short one (one
// datagram) or a 2500-byte one (three fragments), built as the kernel
// builds them.
class RecordSource {
 public:
  explicit RecordSource(bool big) : big_(big), big_text_(2500 - 1, 'x') { big_text_ += '\n'; }
  std::size_t per_record() const { return big_ ? 3 : 1; }
  // Appends the next record's datagrams to `out` (each at most 1000 bytes).
  void next(std::vector<std::string>& out, std::size_t& used) {
    const nc::Header h{{}, 1, 6, seq_, 1000 + seq_, false, false};
    char head[nc::kMaxHeader];
    const auto n = nc::format_header(h, head);
    std::string_view body = big_text_;
    char line[64];
    if (!big_) {
      const int len = std::snprintf(line, sizeof line, "bench record %llu from the sender\n",
                                    static_cast<unsigned long long>(seq_));
      body = std::string_view(line, static_cast<std::size_t>(len));
    }
    nc::emit_extended(std::string_view(head, n), body, [&](std::string_view d) { out[used++].assign(d); });
    ++seq_;
  }

 private:
  bool big_;
  std::string big_text_;
  std::uint64_t seq_ = 0;
};

struct Result {
  double sent_per_s = 0;      // records the sender managed to offer
  double received_per_s = 0;  // records
  double loss = 0;            // fraction of records
  double cpu_us_per_record = 0;
  double cpu_us_per_datagram = 0;
};

// Sends records to `port` at `record_rate` records/s for `seconds`, whole
// records per batch; returns records sent.
std::uint64_t send_paced(std::uint16_t port, bool big, double record_rate, double seconds) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
  RecordSource records(big);
  constexpr std::size_t kBatch = 30;  // datagrams: whole records of 1 or 3
  std::vector<std::string> bufs(kBatch);
  for (auto& b : bufs) b.reserve(nc::kMaxDatagram);
  mmsghdr msgs[kBatch]{};
  iovec iov[kBatch]{};
  const auto start = Steady::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  std::uint64_t sent = 0;
  for (auto now = start; now < end; now = Steady::now()) {
    const auto due = static_cast<std::uint64_t>(std::chrono::duration<double>(now - start).count() * record_rate);
    if (sent >= due) {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      continue;
    }
    const std::size_t n_records = std::min<std::uint64_t>(kBatch / records.per_record(), due - sent);
    std::size_t used = 0;
    for (std::size_t i = 0; i < n_records; ++i) records.next(bufs, used);
    for (std::size_t i = 0; i < used; ++i) {
      iov[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // Loopback does not drop on the sending side; a short count is the
    // socket's send buffer: the rest goes in the next call.
    std::size_t done = 0;
    while (done < used) {
      const int r = ::sendmmsg(fd, msgs + done, static_cast<unsigned>(used - done), 0);
      if (r <= 0) break;
      done += static_cast<std::size_t>(r);
    }
    sent += n_records;
  }
  ::close(fd);
  return sent;
}

Result run_drain(bool big, double rate, double seconds) {
  const std::size_t per_record = big ? 3 : 1;
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
    ::pthread_setname_np(::pthread_self(), "drain");
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
    // Waits as a listen worker does (receiver/worker.h): poll() when the
    // socket is empty, a nap after a batch; then only the work differs.
    bool busy = false;
    while (!done.load()) {
      if (busy) {
        np::nap(receiver::kBatchNap);
      } else {
        pollfd pfd{fd, POLLIN, 0};
        ::poll(&pfd, 1, 50);
      }
      busy = false;
      for (;;) {
        const int n = ::recvmmsg(fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
        if (n <= 0) break;
        busy = true;
        received += static_cast<std::uint64_t>(n);
        if (n < static_cast<int>(kBatch)) break;
      }
    }
    cpu = thread_cpu_us() - c0;
  });
  const std::uint64_t sent = send_paced(ntohs(sa.sin_port), big, rate, seconds) * per_record;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  done = true;
  rx.join();
  ::close(fd);
  Result r;
  r.sent_per_s = static_cast<double>(sent) / static_cast<double>(per_record) / seconds;
  r.received_per_s = static_cast<double>(received) / static_cast<double>(per_record) / seconds;
  r.loss = sent == 0 ? 0 : 1.0 - static_cast<double>(received) / static_cast<double>(sent);
  r.cpu_us_per_datagram = received == 0 ? 0 : cpu / static_cast<double>(received);
  r.cpu_us_per_record = r.cpu_us_per_datagram * static_cast<double>(per_record);
  return r;
}

Result run_listen(bool big, double rate, double seconds, const std::string& dir, bool write) {
  receiver::Options o;
  o.bind = "127.0.0.1";
  o.port = 0;
  o.workers = 1;
  o.to_stdout = !write;  // not writing: formatted for standard output, discarded
  o.discard_output = !write;
  o.dir = write ? dir : "";
  o.limits.window = 1024;
  o.limits.memory = 8 << 20;
  receiver::Shared shared;
  auto w = receiver::Worker::open(0, o, shared);
  if (!w) throw UsageError(w.error().message);
  double cpu = 0;
  std::thread rx([&] {
    const double c0 = thread_cpu_us();
    (*w)->run();
    cpu = thread_cpu_us() - c0;
  });
  const std::uint64_t sent_records = send_paced((*w)->bound_port(), big, rate, seconds);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // past the reorder timeout
  shared.stop = true;
  rx.join();
  np::listen::SourceStats total;
  (*w)->add_totals(total);
  const std::uint64_t records = total.records.value();
  Result r;
  r.sent_per_s = static_cast<double>(sent_records) / seconds;
  r.received_per_s = static_cast<double>(records) / seconds;
  r.loss = sent_records == 0 ? 0 : 1.0 - static_cast<double>(records) / static_cast<double>(sent_records);
  r.cpu_us_per_record = records == 0 ? 0 : cpu / static_cast<double>(records);
  const std::uint64_t datagrams = total.datagrams.value();
  r.cpu_us_per_datagram = datagrams == 0 ? 0 : cpu / static_cast<double>(datagrams);
  return r;
}

}  // namespace

// Median of three (or fewer) figures.
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int bench_listen(int argc, char** argv) {
  ArgParser args;
  args.option("seconds").option("rates").option("big-rates").option("dir").option("repeat").flag("no-write");
  args.flag("help");
  args.parse(argc, argv, 3);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const double seconds = args.get_seconds("seconds", 1);
  const std::size_t repeat = args.get_uint("repeat", 3, 1, 100);
  const bool write = !args.has("no-write");
  const auto rates = parse_rates(args.get("rates").value_or("50000,100000,200000,400000"));
  const auto big_rates = parse_rates(args.get("big-rates").value_or("20000,50000,100000"));
  const std::filesystem::path base = args.get("dir").value_or(std::filesystem::temp_directory_path().string());
  const auto dir = base / ("netpoll-bench-listen-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  std::printf("netpoll bench listen: loopback; each figure the median of %zu runs of %.1f s, drain and listen "
              "alternating;\nreceiver CPU = user+system of the receiving thread; listen %s\n\n",
              repeat, seconds, write ? ("writes a file in " + base.string()).c_str() : "formats but writes nothing");
  std::printf("%-7s %9s | %12s %7s %9s | %12s %7s %9s %9s | %6s\n", "records", "offered/s", "drain rec/s", "loss",
              "us/dgram", "listen rec/s", "loss", "us/record", "us/dgram", "ratio");
  bool sender_limited = false;
  bool zero_loss[2] = {true, true}, cpu_ok[2] = {true, true};
  for (const bool big : {false, true}) {
    for (const std::uint64_t rate : big ? big_rates : rates) {
      std::vector<Result> ds, ls;
      for (std::size_t i = 0; i < repeat; ++i) {
        ds.push_back(run_drain(big, static_cast<double>(rate), seconds));
        ls.push_back(run_listen(big, static_cast<double>(rate), seconds, dir.string(), write));
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
      }
      const auto med = [](const std::vector<Result>& rs, double Result::*field) {
        std::vector<double> v;
        for (const Result& r : rs) v.push_back(r.*field);
        return median(v);
      };
      const auto worst_loss = [](const std::vector<Result>& rs) {
        double w = 0;
        for (const Result& r : rs) w = std::max(w, r.loss);
        return w;
      };
      const double d_loss = worst_loss(ds), l_loss = worst_loss(ls);
      const double d_cpu = med(ds, &Result::cpu_us_per_datagram);
      const double l_cpu = med(ls, &Result::cpu_us_per_datagram);
      // CPU per datagram against the drain loop's: for short records that
      // is per record; a 2500-byte record is three datagrams to both.
      const double ratio = d_cpu > 0 ? l_cpu / d_cpu : 0;
      std::printf("%-7s %9llu | %12.0f %6.2f%% %9.3f | %12.0f %6.2f%% %9.3f %9.3f | %5.2fx\n",
                  big ? "2500 B" : "short", static_cast<unsigned long long>(rate), med(ds, &Result::received_per_s),
                  100 * d_loss, d_cpu, med(ls, &Result::received_per_s), 100 * l_loss,
                  med(ls, &Result::cpu_us_per_record), l_cpu, ratio);
      // The sender shares the machine: past some rate it cannot offer more.
      const double offered = std::min(med(ds, &Result::sent_per_s), med(ls, &Result::sent_per_s));
      if (offered < 0.98 * static_cast<double>(rate)) {
        std::printf("        (the sender offered only %.0f/s: the figures are for what it sent)\n", offered);
        sender_limited = true;
      }
      std::fflush(stdout);
      if (d_loss == 0 && l_loss > 0) zero_loss[big] = false;
      if (ratio > kCpuTarget[big]) cpu_ok[big] = false;
    }
  }
  std::filesystem::remove_all(dir);
  const auto verdict = [](bool ok) { return ok ? "met" : "NOT met"; };
  std::printf("\ntargets            zero loss where drain has none   CPU per datagram against drain's\n");
  std::printf("  short records    %-32s <= %.1fx: %s\n", verdict(zero_loss[0]), kCpuTarget[0], verdict(cpu_ok[0]));
  std::printf("  2500-byte        %-32s <= %.1fx: %s\n", verdict(zero_loss[1]), kCpuTarget[1], verdict(cpu_ok[1]));
  if (sender_limited) std::printf("(some rates were beyond what the sender could offer on this machine)\n");
  return 0;
}

}  // namespace np::tools
