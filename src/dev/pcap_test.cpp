#include "netpoll/dev/pcap.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "alloc_guard.h"
#include "frames.h"
#include "netns.h"
#include "netpoll/dev/open.h"
#include "netpoll/dev/pair.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/udp.h"

namespace np::dev {
namespace {

using np::testing::Bytes;
using np::testing::drain;

// A directory of our own under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/np-pcap-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes b(c.size());
  std::memcpy(b.data(), c.data(), c.size());
  return b;
}

template <class T>
T host(const Bytes& b, std::size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}

// An Ethernet/IPv4/UDP frame built by our wire layer.
Bytes udp_frame(const MacAddr& src_mac, const MacAddr& dst_mac, const Ipv4Addr& src, const Ipv4Addr& dst,
                std::uint16_t sport, std::uint16_t dport, std::string_view payload, std::uint16_t ident) {
  wire::UdpRepr udp;
  udp.src_port = sport;
  udp.dst_port = dport;
  udp.payload = as_bytes(payload);
  wire::Ipv4Repr ip;
  ip.src = src;
  ip.dst = dst;
  ip.protocol = wire::ip_proto::kUdp;
  ip.payload_len = static_cast<std::uint16_t>(udp.buffer_len());
  ip.ident = ident;
  wire::EthernetRepr eth;
  eth.src = src_mac;
  eth.dst = dst_mac;
  eth.ethertype = wire::ethertype::kIpv4;
  Bytes f(wire::EthernetRepr::header_len() + ip.buffer_len());
  udp.emit(ip.emit(eth.emit(f)), src, dst);
  return f;
}

Bytes plain_frame(std::uint8_t tag, std::size_t size) {
  Bytes f(size);
  for (std::size_t i = 0; i < size; ++i) f[i] = std::byte(static_cast<std::uint8_t>(tag + i));
  f[0] = std::byte{0x02};  // unicast destination
  return f;
}

std::int64_t realtime_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

TEST(PcapWriter, WritesTheClassicHeaderAndOneRecordPerFrame) {
  TempDir dir;
  const std::string path = dir.file("bytes.pcap");
  const std::int64_t before = realtime_us();
  auto a = open_device("pair:pcap-bytes?pcap=" + path);
  auto b = open_device("pair:pcap-bytes");
  ASSERT_TRUE(a && b) << (a ? b.error().message : a.error().message);
  const Bytes f1 = plain_frame(1, 60), f2 = plain_frame(2, 1514), f3 = plain_frame(3, 14);
  ASSERT_EQ((*a)->transmit(f1), TxStatus::kOk);
  ASSERT_EQ((*a)->transmit(f2), TxStatus::kOk);
  ASSERT_EQ((*b)->transmit(f3), TxStatus::kOk);
  EXPECT_EQ(drain(**a, 16), std::vector<Bytes>{f3});
  EXPECT_EQ(drain(**b, 16), (std::vector<Bytes>{f1, f2}));

  const auto* pcap = dynamic_cast<const PcapDevice*>(a->get());
  ASSERT_NE(pcap, nullptr);
  EXPECT_EQ(pcap->pcap_stats().tx_records.value(), 2u);
  EXPECT_EQ(pcap->pcap_stats().rx_records.value(), 1u);
  EXPECT_EQ(pcap->pcap_stats().tx_write_errors.value(), 0u);
  a->reset();  // closes the file
  const std::int64_t after = realtime_us();

  const Bytes file = read_file(path);
  ASSERT_EQ(file.size(), 24u + 3 * 16 + 60 + 1514 + 14);
  EXPECT_EQ(host<std::uint32_t>(file, 0), 0xa1b2c3d4u);  // host order, as libpcap writes it
  EXPECT_EQ(host<std::uint16_t>(file, 4), 2u);
  EXPECT_EQ(host<std::uint16_t>(file, 6), 4u);
  EXPECT_EQ(host<std::int32_t>(file, 8), 0);
  EXPECT_EQ(host<std::uint32_t>(file, 12), 0u);
  EXPECT_EQ(host<std::uint32_t>(file, 16), 65535u);
  EXPECT_EQ(host<std::uint32_t>(file, 20), 1u);

  std::size_t off = 24;
  std::int64_t last = 0;
  for (const Bytes* want : {&f1, &f2, &f3}) {
    const std::int64_t ts = std::int64_t{host<std::uint32_t>(file, off)} * 1'000'000 + host<std::uint32_t>(file, off + 4);
    EXPECT_LT(host<std::uint32_t>(file, off + 4), 1'000'000u);
    EXPECT_GE(ts, before);
    EXPECT_LE(ts, after);
    EXPECT_GE(ts, last);
    last = ts;
    EXPECT_EQ(host<std::uint32_t>(file, off + 8), want->size());   // incl_len
    EXPECT_EQ(host<std::uint32_t>(file, off + 12), want->size());  // orig_len
    EXPECT_TRUE(std::equal(want->begin(), want->end(), file.begin() + static_cast<std::ptrdiff_t>(off + 16)));
    off += 16 + want->size();
  }
}

TEST(PcapWriter, RecordsOnlyFramesTheInnerDeviceTook) {
  TempDir dir;
  const std::string path = dir.file("busy.pcap");
  auto a = open_device("pair:pcap-busy?pcap=" + path);
  auto b = open_device("pair:pcap-busy?slots=2");
  ASSERT_TRUE(a && b) << (a ? b.error().message : a.error().message);
  EXPECT_EQ((*a)->transmit(plain_frame(1, 60)), TxStatus::kOk);
  EXPECT_EQ((*a)->transmit(plain_frame(2, 61)), TxStatus::kOk);
  EXPECT_EQ((*a)->transmit(plain_frame(3, 62)), TxStatus::kBusy);
  EXPECT_EQ((*a)->transmit(plain_frame(4, 13)), TxStatus::kError);
  a->reset();
  const Bytes file = read_file(path);
  ASSERT_EQ(file.size(), 24u + 16 + 60 + 16 + 61);
  EXPECT_EQ(host<std::uint32_t>(file, 24 + 8), 60u);
  EXPECT_EQ(host<std::uint32_t>(file, 24 + 16 + 60 + 8), 61u);
}

TEST(PcapWriter, ForwardsEverythingElseToTheInnerDevice) {
  TempDir dir;
  auto inner = open_pair_device("pair:pcap-fwd?mtu=9000", "pcap-fwd", [] {
    PairOptions o;
    o.mtu = 9000;
    o.mac = MacAddr(2, 1, 2, 3, 4, 5);
    return o;
  }());
  ASSERT_TRUE(inner);
  PairDevice* raw = inner->get();
  auto d = wrap_pcap(std::move(*inner), dir.file("fwd.pcap"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ((*d)->mac(), MacAddr(2, 1, 2, 3, 4, 5));
  EXPECT_EQ((*d)->mtu(), 9000u);
  EXPECT_EQ((*d)->fd(), raw->fd());
  EXPECT_EQ((*d)->name(), "pair:pcap-fwd?mtu=9000");
  EXPECT_EQ(&(*d)->stats(), &raw->stats());
  EXPECT_FALSE((*d)->link().carrier);
  EXPECT_TRUE((*d)->link().running);
}

TEST(PcapWriter, AnUnwritableFileIsASetupErrorNamingIt) {
  TempDir dir;
  const std::string missing = dir.file("no/such/dir.pcap");
  auto a = open_device("pair:pcap-bad?pcap=" + missing);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().message, "pcap file '" + missing + "': No such file or directory");
  // The pair end opened underneath was closed again: both ends are free.
  auto x = open_device("pair:pcap-bad");
  auto y = open_device("pair:pcap-bad");
  EXPECT_TRUE(x && y);

  auto full = open_device("pair:pcap-full?pcap=/dev/full");
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().message, "pcap file '/dev/full': cannot write the header: No space left on device");
}

// RLIMIT_FSIZE makes the file "full" after the first record; the frames
// keep flowing, the failures are counted, and the writer stops after the
// partial record instead of appending garbage behind it.
TEST(PcapWriter, WriteErrorsAreCountedAndNeverStopTheDevice) {
  TempDir dir;
  const std::string path = dir.file("limit.pcap");
  auto a = open_device("pair:pcap-limit?pcap=" + path);
  auto b = open_device("pair:pcap-limit");
  ASSERT_TRUE(a && b);
  const auto* pcap = dynamic_cast<const PcapDevice*>(a->get());
  ASSERT_NE(pcap, nullptr);

  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto* old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 24 + 16 + 60 + 10;  // the header, one record, 10 bytes of the next
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::vector<TxStatus> results;
  for (std::uint8_t i = 0; i < 4; ++i) results.push_back((*a)->transmit(plain_frame(i, 60)));
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, old_handler);

  EXPECT_EQ(results, std::vector<TxStatus>(4, TxStatus::kOk));
  EXPECT_EQ(drain(**b, 16).size(), 4u);
  EXPECT_EQ(pcap->pcap_stats().tx_records.value(), 1u);
  EXPECT_EQ(pcap->pcap_stats().tx_write_errors.value(), 3u);
  // Broken off: even with room again, nothing more is appended.
  EXPECT_EQ((*a)->transmit(plain_frame(9, 60)), TxStatus::kOk);
  EXPECT_EQ(pcap->pcap_stats().tx_write_errors.value(), 4u);
  a->reset();
  EXPECT_EQ(read_file(path).size(), 24u + 16 + 60 + 10);
}

// tcpdump, an independent reader, sees what we meant to write.
TEST(PcapWriter, TcpdumpReadsOurUdpFrames) {
  if (testing::sh("command -v tcpdump >/dev/null") != 0) GTEST_SKIP() << "tcpdump not installed";
  TempDir dir;
  const std::string path = dir.file("udp.pcap");
  auto a = open_device("pair:pcap-tcpdump?pcap=" + path);
  auto b = open_device("pair:pcap-tcpdump");
  ASSERT_TRUE(a && b);
  const MacAddr ma = (*a)->mac(), mb = (*b)->mac();
  const Ipv4Addr ia(10, 0, 0, 1), ib(10, 0, 0, 2);
  const std::vector<Bytes> sent = {
      udp_frame(ma, mb, ia, ib, 6665, 6666, "hello 0", 1),
      udp_frame(ma, mb, ia, ib, 6665, 6666, "a somewhat longer console line\n", 2),
  };
  const Bytes reply = udp_frame(mb, ma, ib, ia, 6666, 6665, "ok", 7);
  for (const auto& f : sent) ASSERT_EQ((*a)->transmit(f), TxStatus::kOk);
  ASSERT_EQ((*b)->transmit(reply), TxStatus::kOk);
  ASSERT_EQ(drain(**a, 16).size(), 1u);
  a->reset();

  std::string out;
  ASSERT_EQ(testing::sh("tcpdump -r " + path + " -nn -e -x", &out), 0) << out;

  // tcpdump prints a line per frame, then the frame from the IP header on
  // in hex ("\t0x0010:  0a00 0002 ..."). Collect both per frame.
  struct Seen {
    std::string line;
    Bytes ip;
  };
  std::vector<Seen> seen;
  bool header_ok = false;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("reading from file " + path + ", link-type EN10MB (Ethernet), snapshot length 65535", 0) == 0) {
      header_ok = true;
    } else if (line.rfind("\t0x", 0) == 0 && !seen.empty()) {
      std::istringstream hex(line.substr(line.find(':') + 1));
      for (std::string group; hex >> group;) {
        for (std::size_t i = 0; i + 1 < group.size(); i += 2) {
          seen.back().ip.push_back(std::byte(static_cast<std::uint8_t>(std::stoul(group.substr(i, 2), nullptr, 16))));
        }
      }
    } else if (line.size() > 16 && line[2] == ':' && line[5] == ':' && line[8] == '.') {
      seen.push_back({line.substr(16), {}});  // without "HH:MM:SS.uuuuuu "
    }
  }
  EXPECT_TRUE(header_ok) << out;
  ASSERT_EQ(seen.size(), 3u) << out;
  EXPECT_EQ(seen[0].line,
            "02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv4 (0x0800), length 49: "
            "10.0.0.1.6665 > 10.0.0.2.6666: UDP, length 7");
  EXPECT_EQ(seen[1].line,
            "02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv4 (0x0800), length 73: "
            "10.0.0.1.6665 > 10.0.0.2.6666: UDP, length 31");
  EXPECT_EQ(seen[2].line,
            "02:00:00:00:00:02 > 02:00:00:00:00:01, ethertype IPv4 (0x0800), length 44: "
            "10.0.0.2.6666 > 10.0.0.1.6665: UDP, length 2");
  const Bytes* frames[] = {&sent[0], &sent[1], &reply};
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(seen[k].ip, Bytes(frames[k]->begin() + 14, frames[k]->end())) << "frame " << k;
  }
}

}  // namespace
}  // namespace np::dev

namespace np::dev {
namespace {

TEST(PcapWriter, RecordingAllocatesNothing) {
  TempDir dir;
  const std::string path = dir.file("guard.pcap");
  auto a = open_device("pair:pcap-guard?pcap=" + path);
  auto b = open_device("pair:pcap-guard");
  ASSERT_TRUE(a && b) << (a ? b.error().message : a.error().message);
  const Bytes frame = plain_frame(7, 200);
  std::size_t sent = 0, received = 0;
  testing::AllocGuard guard;
  for (int i = 0; i < 50; ++i) {
    sent += (*a)->transmit(frame) == TxStatus::kOk;
    sent += (*a)->transmit_more(frame) == TxStatus::kOk;
    (*a)->poll();
    received += (*b)->receive(16, [](std::span<const std::byte>) {});
    sent += (*b)->transmit(frame) == TxStatus::kOk;
    received += (*a)->receive(16, [](std::span<const std::byte>) {});
  }
  const auto allocations = guard.stop();
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(sent, 150u);
  EXPECT_EQ(received, 150u);
  const auto* pcap = dynamic_cast<const PcapDevice*>(a->get());
  ASSERT_NE(pcap, nullptr);
  EXPECT_EQ(pcap->pcap_stats().tx_records.value() + pcap->pcap_stats().rx_records.value(), 150u);
}

}  // namespace
}  // namespace np::dev
