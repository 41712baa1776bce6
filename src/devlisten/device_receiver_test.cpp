// netpoll listen's device path over the in-memory wire: a raw end (a plain
// device, no netpoll) plays the senders, frame by frame, and reads what
// the receiver sends back.
#include "netpoll/devlisten/device_receiver.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "alloc_guard.h"
#include "net_helpers.h"
#include "temp_dir.h"
#include "netpoll/dev/open.h"
#include "netpoll/wire/netconsole.h"

namespace np::devlisten {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;
using receiver::OutputFormat;
namespace nc = np::wire::netconsole;

const MacAddr kOurMac(2, 0, 0, 0, 0, 0x0b);
const MacAddr kSenderMac(2, 0, 0, 0, 0, 0x0a);
const Endpoint kSender{kSenderMac, Ipv4Addr(10, 0, 0, 1), 6665};
const Endpoint kUs{kOurMac, Ipv4Addr(10, 0, 0, 2), 6666};

std::string unique_wire() {
  static std::atomic<int> n{0};
  return "devlisten-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}


// The extended datagrams of record `seq`, text `text`.
std::vector<std::string> record(std::uint64_t seq, const std::string& text) {
  std::vector<std::string> out;
  const nc::Header h{{}, 1, 6, seq, 1000 + seq, false, false};
  char head[nc::kMaxHeader];
  const auto n = nc::format_header(h, head);
  nc::emit_extended(std::string_view(head, n), text + "\n", [&](std::string_view d) { out.emplace_back(d); });
  return out;
}

// A receiver on one end of a fresh wire, a raw device on the other, the
// receiver's thread running until stop().
class OnAWire {
 public:
  explicit OnAWire(receiver::Options o) : wire_(unique_wire()), options_(std::move(o)) {
    DeviceOptions d;
    d.device = spec();
    d.ip = kUs.ip;
    auto r = DeviceReceiver::open(options_, d, shared_, registry_);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    if (r) receiver_ = std::move(*r);
    auto raw = dev::open_device("pair:" + wire_ + "?mac=" + kSenderMac.to_string() + "&slots=4096");
    EXPECT_TRUE(raw) << (raw ? "" : raw.error().message);
    if (raw) raw_ = std::move(*raw);
  }
  ~OnAWire() { stop(); }

  bool ok() const { return receiver_ && raw_; }
  std::string spec() const { return "pair:" + wire_ + "?mac=" + kOurMac.to_string(); }
  DeviceReceiver& receiver() { return *receiver_; }
  dev::Device& raw() { return *raw_; }
  receiver::Shared& shared() { return shared_; }
  void start() {
    shared_.stop = false;
    thread_ = std::thread([this] { receiver_->run(); });
  }
  void stop() {
    shared_.stop = true;
    if (thread_.joinable()) thread_.join();
  }
  // Sends a frame, waiting (bounded) while the receiver's ring is full.
  bool send(std::span<const std::byte> frame) {
    for (int i = 0; i < 20000; ++i) {
      const auto st = raw_->transmit(frame);
      if (st == dev::TxStatus::kOk) return true;
      if (st == dev::TxStatus::kError) return false;
      std::this_thread::sleep_for(50us);
    }
    return false;
  }
  bool send_datagram(const Endpoint& from, std::string_view payload) { return send(udp_frame(from, kUs, as_bytes(payload))); }
  std::uint64_t records() const {
    np::listen::SourceStats s;
    receiver_->engine().add_totals(s);
    return s.records.value();
  }
  bool wait_records(std::uint64_t n) {
    for (int i = 0; i < 1000 && records() < n; ++i) std::this_thread::sleep_for(5ms);
    return records() >= n;
  }

 private:
  std::string wire_;
  const receiver::Options options_;
  core::Registry registry_;
  receiver::Shared shared_;
  std::unique_ptr<DeviceReceiver> receiver_;
  std::unique_ptr<dev::Device> raw_;
  std::thread thread_;
};

receiver::Options to_dir(const TempDir& dir, OutputFormat format) {
  receiver::Options o;
  o.port = kUs.port;
  o.to_stdout = false;
  o.dir = dir.path().string();
  o.format = format;
  return o;
}

TEST(DeviceReceiver, WritesRecordsInOrderAndCountsEveryFrameItDrops) {
  TempDir dir;
  OnAWire w(to_dir(dir, OutputFormat::kText));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.receiver().where(), "10.0.0.2 port 6666 on " + w.spec() + " (02:00:00:00:00:0b)");
  w.start();
  // Out of order, and the middle one in two fragments.
  for (const auto& d : record(1, std::string(1500, 'm'))) ASSERT_TRUE(w.send_datagram(kSender, d));
  for (const auto& d : record(0, "first")) ASSERT_TRUE(w.send_datagram(kSender, d));
  for (const auto& d : record(2, "third")) ASSERT_TRUE(w.send_datagram(kSender, d));
  // What netpoll's path drops, each for its reason: another port; a UDP
  // checksum off by one; another host's MAC; another EtherType (local
  // experimental, IEEE 802).
  ASSERT_TRUE(w.send(udp_frame(kSender, Endpoint{kOurMac, kUs.ip, 7777}, as_bytes("x"))));
  auto bad = udp_frame(kSender, kUs, as_bytes("14,9,1,-;bad checksum\n"));
  bad[14 + 20 + 6] ^= std::byte{1};
  ASSERT_TRUE(w.send(bad));
  ASSERT_TRUE(w.send(udp_frame(kSender, Endpoint{MacAddr(2, 0, 0, 0, 0, 0x0e), kUs.ip, kUs.port}, as_bytes("x"))));
  auto other = udp_frame(kSender, kUs, as_bytes("x"));
  other[12] = std::byte{0x88};
  other[13] = std::byte{0xb5};
  ASSERT_TRUE(w.send(other));
  ASSERT_TRUE(w.wait_records(3));
  w.stop();
  const std::string file = read_file(dir.path() / "10.0.0.1_6665.log");
  std::vector<std::string> lines;
  for (std::size_t at = 0, nl; (nl = file.find('\n', at)) != std::string::npos; at = nl + 1)
    lines.push_back(file.substr(at + 28, nl - at - 28));  // the receive time cut off
  ASSERT_EQ(lines.size(), 3u) << file;
  EXPECT_EQ(lines[0], "10.0.0.1:6665 user.info 0 first");
  EXPECT_EQ(lines[1], "10.0.0.1:6665 user.info 1 " + std::string(1500, 'm'));
  EXPECT_EQ(lines[2], "10.0.0.1:6665 user.info 2 third");

  const std::string json = w.receiver().stats_report(OutputFormat::kJson);
  EXPECT_EQ(json.rfind(R"({"total":{"records":3,"datagrams":4,"fragments":2,"reassembled":1,)", 0), 0u) << json;
  EXPECT_NE(json.find(R"("sources":{"10.0.0.1:6665":{"records":3,)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"(,"netpoll":{"client":{)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("rx":{"frames":8,"delivered":4,"passed":0,"drops":{"runt":0,"other_host":1,"not_ip":1,)"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("udp_checksum":1,"no_client":1,)"), std::string::npos) << json;
  EXPECT_EQ(json.substr(json.size() - 3), "}}\n");
  const std::string text = w.receiver().stats_report(OutputFormat::kText);
  EXPECT_EQ(text.rfind("netpoll listen: records 3, datagrams 4, ", 0), 0u) << text;
  // --metrics: the same counts, the device's and the client's included.
  const std::string metrics = w.receiver().stats_report(receiver::ReportFormat::metrics(256));
  for (const char* line : {"\nnetpoll_listen_records_total 3\n", "\nnetpoll_listen_source_records_total{source=\"10.0.0.1:6665\"} 3\n",
                           "\nnetpoll_listen_netpoll_device_rx_frames 8\n",
                           "\nnetpoll_listen_netpoll_device_rx_drops_other_host 1\n",
                           "\nnetpoll_listen_netpoll_device_rx_drops_udp_checksum 1\n",
                           "\nnetpoll_listen_netpoll_client_rx_datagrams 4\n"}) {
    EXPECT_NE(metrics.find(line), std::string::npos) << line << "\n" << metrics;
  }
  for (const char* line : {"\n  rx frames               8\n", "\n  rx drop not_ip          1\n",
                           "\n  rx drop other_host      1\n", "\n  rx drop udp_checksum    1\n",
                           "\n  rx drop no_client       1\n", "\n  rx datagrams 4, bytes "}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

// Reliable mode: the answer leaves from our address and port for the
// source's, at the Ethernet address its frames came from.
TEST(DeviceReceiver, AnswersInReliableModeThroughNetpollsSendPath) {
  TempDir dir;
  receiver::Options o = to_dir(dir, OutputFormat::kJson);
  o.limits.reliable = true;
  o.limits.window = 1024;
  OnAWire w(o);
  ASSERT_TRUE(w.ok());
  w.start();
  // Through a router: the frames' source MAC is not the sender's own.
  const Endpoint far{MacAddr(2, 0, 0, 0, 0, 0x0a), Ipv4Addr(192, 168, 9, 9), 6665};
  for (std::uint64_t seq = 0; seq < 3; ++seq) {
    for (const auto& d : record(seq, "r" + std::to_string(seq))) ASSERT_TRUE(w.send_datagram(far, d));
  }
  // Its answers, until one acknowledges all three.
  std::vector<std::string> answers;
  std::optional<Udp> last;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline && (answers.empty() || answers.back() != "ncrx2")) {
    receive_until(w.raw(), 100ms, [&](std::span<const std::byte> f) {
      auto u = parse_udp(f);
      if (!u) return false;
      answers.emplace_back(reinterpret_cast<const char*>(u->payload.data()), u->payload.size());
      last = *u;
      return true;
    });
  }
  ASSERT_FALSE(answers.empty());
  EXPECT_EQ(answers.back(), "ncrx2");
  ASSERT_TRUE(last);
  EXPECT_EQ(last->src_mac, kOurMac);
  EXPECT_EQ(last->dst_mac, far.mac);
  EXPECT_EQ(last->src, kUs.ip);
  EXPECT_EQ(last->src_port, kUs.port);
  EXPECT_EQ(last->dst, far.ip);
  EXPECT_EQ(last->dst_port, far.port);
  w.stop();
  const std::string json = w.receiver().stats_report(OutputFormat::kJson);
  EXPECT_NE(json.find(R"("responses_sent":)" + std::to_string(answers.size()) + ","), std::string::npos)
      << answers.size() << "\n" << json;
  EXPECT_NE(json.find(R"("responses_failed":0,)"), std::string::npos) << json;
  EXPECT_NE(read_file(dir.path() / "192.168.9.9_6665.json").find(R"("seq":2,)"), std::string::npos);
}

// After a source's first datagrams, receiving through netpoll's path,
// parsing, reassembling, formatting and writing allocate nothing.
TEST(DeviceReceiver, ReceivesFormatsAndWritesWithoutAllocating) {
  for (const OutputFormat format : {OutputFormat::kText, OutputFormat::kJson}) {
    TempDir dir;
    OnAWire w(to_dir(dir, format));
    ASSERT_TRUE(w.ok());
    const auto send = [&](std::uint64_t from, std::uint64_t to) {
      for (std::uint64_t seq = from; seq < to; ++seq) {
        const std::string text = "record " + std::to_string(seq) + (seq % 3 == 0 ? " " + std::string(2500, 'x') : "");
        for (const auto& d : record(seq, text)) ASSERT_TRUE(w.send_datagram(kSender, d));
      }
    };
    w.start();  // warm-up: the source is made, its file opened, buffers grow
    send(0, 300);
    ASSERT_TRUE(w.wait_records(300));
    w.stop();

    std::uint64_t allocations = ~0ull;
    w.shared().stop = false;
    std::thread measured([&] {
      AllocGuard guard;
      w.receiver().run();
      allocations = guard.stop();
    });
    send(300, 2000);
    EXPECT_TRUE(w.wait_records(2000));
    w.shared().stop = true;
    measured.join();
    EXPECT_EQ(allocations, 0u) << (format == OutputFormat::kJson ? "json" : "text");
    const std::string out = read_file(dir.path() / (format == OutputFormat::kJson ? "10.0.0.1_6665.json" : "10.0.0.1_6665.log"));
    std::size_t at = 0;
    for (std::uint64_t seq = 0; seq < 2000; seq += 97) {
      at = out.find(format == OutputFormat::kJson ? "\"seq\":" + std::to_string(seq) + ","
                                                  : " user.info " + std::to_string(seq) + " record ",
                    at);
      ASSERT_NE(at, std::string::npos) << seq;
    }
  }
}

TEST(DeviceReceiver, RefusesWhatItCannotReceiveOn) {
  receiver::Shared shared;
  core::Registry registry;
  receiver::Options o;
  DeviceOptions d;
  d.device = "pair:" + unique_wire();
  d.ip = Ipv4Addr(10, 0, 0, 2);
  o.port = 0;
  auto r = DeviceReceiver::open(o, d, shared, registry);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "netpoll's own path needs a port to receive on, not 0");
  o.port = 6666;
  d.ip = Ipv4Addr(127, 0, 0, 1);
  r = DeviceReceiver::open(o, d, shared, registry);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "127.0.0.1 cannot be received on: a unicast IPv4 address, not loopback");
  d.ip = Ipv4Addr(10, 0, 0, 2);
  d.device = "pair:" + unique_wire() + "?mtu=1";
  r = DeviceReceiver::open(o, d, shared, registry);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("mtu"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace np::devlisten
