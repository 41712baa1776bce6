// The core over the in-memory wire: two hosts, A (10.0.0.1) and B
// (10.0.0.2), each a Netpoll client on one end of a pair. A raw end (a plain
// device, no netpoll) is used where a test must craft frames by hand.
#include "netpoll/core/netpoll.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "alloc_guard.h"
#include "netpoll/base/bytes.h"
#include "netpoll/dev/open.h"
#include "netpoll/dev/pair.h"
#include "testing.h"
#include "netpoll/wire/arp.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/udp.h"

namespace np::core {
namespace {

using namespace np::wire;
using namespace std::chrono_literals;

std::string unique_wire() {
  static std::atomic<int> n{0};
  return "core-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

struct Received {
  std::vector<std::string> payloads;
  std::vector<RxInfo> infos;
  bool keep = true;  // false: only count (a hook that allocates nothing)
  std::size_t count = 0;
};

ClientConfig config(const std::string& device, const std::string& target_text, Received* rx = nullptr) {
  ClientConfig c;
  auto t = parse_targets(target_text);
  EXPECT_TRUE(t) << (t ? "" : t.error().message);
  c.target = t->targets.at(0);
  c.target.device = device;
  c.device.service_thread = false;  // tests poll by hand: deterministic
  c.resolve.tries = 2;
  c.resolve.interval = 50ms;
  if (rx != nullptr) {
    c.rx_hook = [rx](Netpoll&, const RxInfo& info, std::span<const std::byte> payload) {
      ++rx->count;
      if (!rx->keep) return;
      rx->payloads.emplace_back(as_text(payload));
      rx->infos.push_back(info);
    };
  }
  return c;
}

// Builds a UDP frame by hand, as a foreign host would.
std::vector<std::byte> udp_frame(const MacAddr& src_mac, const MacAddr& dst_mac, Ipv4Addr src, Ipv4Addr dst,
                                 std::uint16_t sport, std::uint16_t dport, std::string_view payload) {
  std::vector<std::byte> f(42 + payload.size());
  const UdpRepr udp{sport, dport, as_bytes(payload)};
  auto ip_area = EthernetRepr{src_mac, dst_mac, ethertype::kIpv4}.emit(f);
  auto udp_area =
      Ipv4Repr{src, dst, ip_proto::kUdp, static_cast<std::uint16_t>(udp.buffer_len()), 64, 7, false, 0}.emit(ip_area);
  udp.emit(udp_area, src, dst);
  return f;
}

// Polls both sides until `done` or a deadline.
template <class F>
bool poll_until(std::initializer_list<Netpoll*> clients, F done, std::chrono::milliseconds limit = 2000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    for (auto* c : clients) c->poll();
    if (done()) return true;
    std::this_thread::sleep_for(100us);
  }
  return false;
}

class TwoHosts : public ::testing::Test {
 protected:
  void SetUp() override {
    wire_ = unique_wire();
    auto b = Netpoll::setup(config("pair:" + wire_ + "?mac=02:00:00:00:00:0b", "6666@10.0.0.2/,6665@10.0.0.1/02:00:00:00:00:0a", &rx_b_));
    ASSERT_TRUE(b) << b.error().message;
    b_ = std::move(*b);
    auto a = Netpoll::setup(config("pair:" + wire_ + "?mac=02:00:00:00:00:0a", "6665@10.0.0.1/,6666@10.0.0.2/02:00:00:00:00:0b", &rx_a_));
    ASSERT_TRUE(a) << a.error().message;
    a_ = std::move(*a);
  }
  dev::PairDevice& pair_of(Netpoll& np) { return dynamic_cast<dev::PairDevice&>(np.shared().device()); }

  std::string wire_;
  Received rx_a_, rx_b_;
  std::unique_ptr<Netpoll> a_, b_;
};

TEST_F(TwoHosts, DatagramArrivesWithPayloadAndAddresses) {
  ASSERT_TRUE(a_->send_udp(as_bytes("hello over the wire")));
  ASSERT_TRUE(poll_until({b_.get()}, [&] { return !rx_b_.payloads.empty(); }));
  ASSERT_EQ(rx_b_.payloads.size(), 1u);
  EXPECT_EQ(rx_b_.payloads[0], "hello over the wire");
  EXPECT_EQ(rx_b_.infos[0].src_ip, Ipv4Addr(10, 0, 0, 1));
  EXPECT_EQ(rx_b_.infos[0].src_port, 6665);
  EXPECT_EQ(rx_b_.infos[0].dst_ip, Ipv4Addr(10, 0, 0, 2));
  EXPECT_EQ(rx_b_.infos[0].dst_port, 6666);
  EXPECT_EQ(rx_b_.infos[0].src_mac, MacAddr(2, 0, 0, 0, 0, 0x0a));
  EXPECT_EQ(a_->stats().tx_datagrams.value(), 1u);
  EXPECT_EQ(b_->stats().rx_datagrams.value(), 1u);
  EXPECT_EQ(b_->shared().stats().rx_delivered.value(), 1u);
}

TEST_F(TwoHosts, StatsListEveryDropReasonInJsonAndTheNonZeroOnesInText) {
  ASSERT_FALSE(a_->send_udp(as_bytes(std::string(a_->max_payload() + 1, 'x'))));  // tx drop too_big
  // To a port nobody on B listens on: rx drop no_client.
  ASSERT_EQ(a_->shared().device().transmit(udp_frame(MacAddr(2, 0, 0, 0, 0, 0x0a), MacAddr(2, 0, 0, 0, 0, 0x0b),
                                                     Ipv4Addr(10, 0, 0, 1), Ipv4Addr(10, 0, 0, 2), 6665, 7777, "x")),
            dev::TxStatus::kOk);
  ASSERT_TRUE(poll_until({b_.get()}, [&] { return b_->shared().stats().rx_drops.total() == 1; }));

  const std::string tx_drops = R"("drops":{"too_big":1,"no_buffer":0,"queue_full":0,"device_error":0,"shutdown":0})";
  EXPECT_NE(a_->stats_json().find(tx_drops), std::string::npos) << a_->stats_json();
  EXPECT_NE(a_->shared().stats_json().find(tx_drops), std::string::npos) << a_->shared().stats_json();
  const std::string rx_drops =
      R"("drops":{"runt":0,"other_host":0,"not_ip":0,"ip_truncated":0,"ip_header":0,"ip_checksum":0,)"
      R"("ip_length":0,"ip_fragment":0,"ip_options":0,"ipv6_truncated":0,"ipv6_header":0,"ipv6_length":0,)"
      R"("ipv6_ext_header":0,"not_udp":0,"udp_truncated":0,"udp_length":0,"udp_no_checksum":0,)"
      R"("udp_checksum":0,"no_client":1,"arp_malformed":0,"arp_ignored":0,"nd_malformed":0,)"
      R"("nd_ignored":0,"icmpv6_other":0,"queue_full":0,"too_long":0,"no_handler":0})";
  EXPECT_NE(b_->shared().stats_json().find(rx_drops), std::string::npos) << b_->shared().stats_json();

  const std::string a_text = a_->shared().stats_text();
  EXPECT_NE(a_text.find("\n  tx drop too_big         1\n"), std::string::npos) << a_text;
  EXPECT_EQ(a_text.find("drop no_buffer"), std::string::npos) << a_text;
  EXPECT_EQ(a_text.find("rx drop"), std::string::npos) << a_text;
  const std::string b_text = b_->shared().stats_text();
  EXPECT_NE(b_text.find("\n  rx drop no_client       1\n"), std::string::npos) << b_text;
  EXPECT_EQ(b_text.find("rx drop runt"), std::string::npos) << b_text;
  EXPECT_EQ(b_text.find("tx drop"), std::string::npos) << b_text;
}

TEST_F(TwoHosts, IpIdentCountsUpFromOnePerDevice) {
  std::vector<std::uint16_t> idents;
  auto raw_end = dev::open_device("pair:" + unique_wire());  // unused: keeps the API honest
  ASSERT_TRUE(raw_end);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(a_->send_udp(as_bytes("x")));
  // Read the frames off B's device directly, before netpoll sees them.
  b_->shared().device().receive(16, [&](std::span<const std::byte> f) {
    idents.push_back(Ipv4Packet<const std::byte>::check(f.subspan(14))->ident());
  });
  EXPECT_EQ(idents, (std::vector<std::uint16_t>{1, 2, 3}));
}

TEST_F(TwoHosts, IpIdentsGoOnPastABlockAndStayUniqueWhenTheDeviceIsBusy) {
  // The lock's holder takes identifications a block at a time: a lone
  // sender's still count up across blocks; a frame built while the device
  // is taken (a pool frame) gets one outside every block handed out.
  std::vector<std::uint16_t> idents;
  const auto drain = [&] {
    b_->shared().device().receive(64, [&](std::span<const std::byte> f) {
      idents.push_back(Ipv4Packet<const std::byte>::check(f.subspan(14))->ident());
    });
  };
  const std::size_t n = 3 * SharedDeviceTesting::kIdentBlock + 5;
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(a_->send_udp(as_bytes("x")));
    if (i % 16 == 15) drain();
  }
  drain();
  ASSERT_EQ(idents.size(), n);
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(idents[i], i + 1) << i;

  // A datagram built while another thread holds the transmit lock: it is
  // queued, and the next one waits behind it.
  idents.clear();
  ASSERT_TRUE(SharedDeviceTesting::hold_tx_lock(a_->shared()));
  std::thread other([&] { EXPECT_TRUE(a_->send_udp(as_bytes("y"))); });
  other.join();
  SharedDeviceTesting::let_go_tx_lock(a_->shared());
  ASSERT_TRUE(a_->send_udp(as_bytes("z")));
  a_->poll();
  ASSERT_TRUE(a_->send_udp(as_bytes("w")));  // the queue is empty again: the lock's holder builds it
  drain();
  const std::size_t blocks_taken = 4;  // n identifications came from four blocks
  ASSERT_EQ(idents.size(), 3u);
  EXPECT_EQ(idents[0], blocks_taken * SharedDeviceTesting::kIdentBlock + 1) << "the first number after the blocks";
  EXPECT_EQ(idents[1], blocks_taken * SharedDeviceTesting::kIdentBlock + 2);
  EXPECT_EQ(idents[2], n + 1) << "the lock's holder goes on with its block";
}

TEST_F(TwoHosts, PayloadBeyondMtuIsRefusedCountedAndShownToTheDropHandler) {
  std::string big(a_->max_payload() + 1, 'x');
  EXPECT_EQ(a_->max_payload(), 1500u - 28u);
  auto r = a_->send_udp(as_bytes(big));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::kTooBig);
  EXPECT_EQ(a_->stats().tx_drops.value(TxDrop::kTooBig), 1u);
  EXPECT_EQ(a_->shared().stats().tx_drops.value(TxDrop::kTooBig), 1u);
  EXPECT_TRUE(a_->send_udp(as_bytes(std::string(a_->max_payload(), 'y'))));
}

TEST(Netpoll, DropHandlerSeesThePayloadAndReason) {
  const std::string wire = unique_wire();
  auto cfg = config("pair:" + wire, "6665@10.0.0.1/,6666@10.0.0.2/02:00:00:00:00:0b");
  std::vector<std::pair<std::string, TxDrop>> drops;
  cfg.drop_handler = [&drops](Netpoll&, std::span<const std::byte> p, TxDrop why) { drops.emplace_back(std::string(as_text(p)), why); };
  auto a = Netpoll::setup(std::move(cfg));
  ASSERT_TRUE(a) << a.error().message;
  std::string big((*a)->max_payload() + 5, 'z');
  ASSERT_FALSE((*a)->send_udp(as_bytes(big)));
  ASSERT_EQ(drops.size(), 1u);
  EXPECT_EQ(drops[0].first, big);
  EXPECT_EQ(drops[0].second, TxDrop::kTooBig);
}

TEST_F(TwoHosts, ResolvesTheRemoteMacByArp) {
  // A fresh client on A without a MAC: B answers for 10.0.0.2 while polled.
  std::atomic<bool> stop{false};
  std::thread b_poller([&] {
    while (!stop) {
      b_->poll();
      std::this_thread::sleep_for(200us);
    }
  });
  auto cfg = config("pair:" + wire_ + "?mac=02:00:00:00:00:0a", "7000@10.0.0.1/,7001@10.0.0.2/");
  std::vector<std::string> log;
  cfg.log = [&log](const std::string& s) { log.push_back(s); };
  auto c = Netpoll::setup(std::move(cfg));
  stop = true;
  b_poller.join();
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ((*c)->remote_mac(), MacAddr(2, 0, 0, 0, 0, 0x0b));
  EXPECT_EQ(b_->shared().stats().arp_replies_sent.value(), 1u);
  EXPECT_EQ((*c)->shared().stats().arp_requests_sent.value(), 1u);
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back(), "netpoll: remote ethernet address 02:00:00:00:00:0b (ARP reply from 10.0.0.2)");
  EXPECT_EQ((*c)->shared().cached_mac(Ipv4Addr(10, 0, 0, 2)), MacAddr(2, 0, 0, 0, 0, 0x0b));

  // A second client to the same peer on the same device asks nobody.
  auto cfg2 = config("pair:" + wire_ + "?mac=02:00:00:00:00:0a", "7002@10.0.0.1/,7003@10.0.0.2/");
  cfg2.log = [&log](const std::string& s) { log.push_back(s); };
  auto d = Netpoll::setup(std::move(cfg2));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ((*d)->remote_mac(), MacAddr(2, 0, 0, 0, 0, 0x0b));
  EXPECT_EQ(log.back(), "netpoll: remote ethernet address 02:00:00:00:00:0b (cached for 10.0.0.2)");
  EXPECT_EQ((*d)->shared().stats().arp_requests_sent.value(), 1u);
}

TEST_F(TwoHosts, ClientStatisticsReadForPeopleAndAsJson) {
  ASSERT_TRUE(a_->send_udp(as_bytes("12345")));
  ASSERT_FALSE(a_->send_udp(as_bytes(std::string(a_->max_payload() + 1, 'x'))));
  EXPECT_EQ(a_->stats_text(),
            "client netpoll 10.0.0.1:6665 -> 10.0.0.2:6666 (02:00:00:00:00:0b) on pair:" + wire_ +
                "?mac=02:00:00:00:00:0a\n"
                "  tx datagrams 1, bytes 5\n"
                "  tx drop too_big 1\n"
                "  rx datagrams 0, bytes 0\n");
  const std::string json = a_->stats_json();
  EXPECT_NE(json.find("\"tx\":{\"datagrams\":1,\"bytes\":5,\"drops\":{\"too_big\":1,"), std::string::npos) << json;
}

TEST(Netpoll, FallsBackToBroadcastWithAWarningWhenNobodyAnswers) {
  const std::string wire = unique_wire();
  auto cfg = config("pair:" + wire, "6665@10.0.0.1/,6666@10.0.0.99/");
  std::vector<std::string> log;
  cfg.log = [&log](const std::string& s) { log.push_back(s); };
  auto a = Netpoll::setup(std::move(cfg));
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ((*a)->remote_mac(), MacAddr::broadcast());
  EXPECT_EQ((*a)->shared().stats().arp_requests_sent.value(), 2u);  // tries = 2 in these tests
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back(),
            "netpoll: warning: no ARP reply from 10.0.0.99 after 2 tries: sending to the broadcast address "
            "ff:ff:ff:ff:ff:ff");
}

TEST(Netpoll, RefusesToResolveWhenBroadcastIsNotAllowed) {
  auto cfg = config("pair:" + unique_wire(), "6665@10.0.0.1/,6666@10.0.0.99/");
  cfg.resolve.allow_broadcast = false;
  cfg.resolve.tries = 1;
  auto a = Netpoll::setup(std::move(cfg));
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().message, "netpoll: no ARP reply from 10.0.0.99 after 1 tries");
}

TEST(Netpoll, DeviceWithoutKernelInterfaceNeedsALocalIp) {
  auto a = Netpoll::setup(config("pair:" + unique_wire(), "6665@/,6666@10.0.0.2/02:00:00:00:00:02"));
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, Errc::kNoAddress);
  EXPECT_NE(a.error().message.find("has no kernel interface to take an address from"), std::string::npos);
}

TEST(Netpoll, AReceiveOnlyClientNamesOneRemoteMacAtSetupAndInItsStatistics) {
  auto c = Netpoll::setup(config("pair:" + unique_wire() + "?mac=02:00:00:00:00:0b", "7001@10.0.0.2/,@0.0.0.0/"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_NE((*c)->describe().find("remote ethernet address ff:ff:ff:ff:ff:ff\n"), std::string::npos)
      << (*c)->describe();
  EXPECT_NE((*c)->stats_json().find(R"("remote_mac":"ff:ff:ff:ff:ff:ff")"), std::string::npos) << (*c)->stats_json();
  EXPECT_NE((*c)->stats_text().find("(ff:ff:ff:ff:ff:ff)"), std::string::npos) << (*c)->stats_text();
}

// A receive-only client answers whoever sent: from its own IP and port to
// the sender's IP, port and MAC as its frame gave them (a raw end, no ARP).
TEST(Netpoll, AReceiveOnlyClientAnswersTheSenderOfADatagram) {
  const std::string wire = unique_wire();
  Received rx;
  auto b = Netpoll::setup(config("pair:" + wire + "?mac=02:00:00:00:00:0b", "7001@10.0.0.2/,@0.0.0.0/", &rx));
  ASSERT_TRUE(b) << b.error().message;
  auto raw = dev::open_device("pair:" + wire + "?mac=02:00:00:00:00:0c");
  ASSERT_TRUE(raw) << raw.error().message;
  const MacAddr a_mac(2, 0, 0, 0, 0, 0x0c);
  ASSERT_EQ((*raw)->transmit(udp_frame(a_mac, MacAddr(2, 0, 0, 0, 0, 0x0b), Ipv4Addr(10, 0, 0, 9),
                                       Ipv4Addr(10, 0, 0, 2), 5555, 7001, "question")),
            dev::TxStatus::kOk);
  ASSERT_TRUE(poll_until({b->get()}, [&] { return rx.count == 1; }));
  const RxInfo& from = rx.infos.at(0);
  EXPECT_FALSE((*b)->send_udp(as_bytes("nobody")));  // no target: send_udp refuses
  ASSERT_TRUE((*b)->send_udp_to({from.src_mac, from.src_ip, from.src_port}, as_bytes("answer")));
  std::vector<std::byte> got;
  for (int i = 0; i < 100 && got.empty(); ++i) {
    (*raw)->receive(1, [&](std::span<const std::byte> f) { got.assign(f.begin(), f.end()); });
  }
  ASSERT_FALSE(got.empty());
  const auto eth = EthernetFrame<const std::byte>::check(got);
  ASSERT_TRUE(eth);
  EXPECT_EQ(eth->dst(), a_mac);
  EXPECT_EQ(eth->src(), MacAddr(2, 0, 0, 0, 0, 0x0b));
  const auto ip = Ipv4Packet<const std::byte>::check(eth->payload());
  ASSERT_TRUE(ip);
  const auto ipr = Ipv4Repr::parse(*ip);
  ASSERT_TRUE(ipr);
  EXPECT_EQ(ipr->src, Ipv4Addr(10, 0, 0, 2));
  EXPECT_EQ(ipr->dst, Ipv4Addr(10, 0, 0, 9));
  const auto up = UdpPacket<const std::byte>::check(ip->payload());
  ASSERT_TRUE(up);
  const auto udp = UdpRepr::parse(*up, ipr->src, ipr->dst);  // the checksum verifies
  ASSERT_TRUE(udp);
  EXPECT_EQ(udp->src_port, 7001);
  EXPECT_EQ(udp->dst_port, 5555);
  EXPECT_EQ(as_text(udp->payload), "answer");
  EXPECT_EQ((*b)->stats().tx_datagrams.value(), 1u);
  // Nowhere to send to: refused, nothing sent.
  EXPECT_EQ((*b)->send_udp_to({a_mac, Ipv4Addr(), 5555}, as_bytes("x")).error(), Errc::kInvalidArgument);
  EXPECT_EQ((*b)->send_udp_to({a_mac, Ipv4Addr(10, 0, 0, 9), 0}, as_bytes("x")).error(), Errc::kInvalidArgument);
  EXPECT_EQ((*b)->stats().tx_datagrams.value(), 1u);
}

TEST(Netpoll, ClientsOnOneDeviceGetOnlyTheirOwnPortsAndSharedMatchesGetBoth) {
  const std::string wire = unique_wire();
  const std::string dev_b = "pair:" + wire + "?mac=02:00:00:00:00:0b";
  Received r1, r2, r3;
  auto c1 = Netpoll::setup(config(dev_b, "7001@10.0.0.2/,@0.0.0.0/", &r1));
  auto c2 = Netpoll::setup(config(dev_b, "7002@10.0.0.2/,@0.0.0.0/", &r2));
  auto c3 = Netpoll::setup(config(dev_b, "7002@10.0.0.2/,@10.0.0.1/", &r3));  // matches 7002 from 10.0.0.1 only
  ASSERT_TRUE(c1 && c2 && c3);
  EXPECT_EQ(&(*c1)->shared(), &(*c2)->shared());  // one shared device state
  EXPECT_EQ((*c1)->shared().clients(), 3u);

  auto raw = dev::open_device("pair:" + wire + "?mac=02:00:00:00:00:0a");
  ASSERT_TRUE(raw) << raw.error().message;
  const MacAddr a_mac(2, 0, 0, 0, 0, 0x0a), b_mac(2, 0, 0, 0, 0, 0x0b);
  const Ipv4Addr a_ip(10, 0, 0, 1), b_ip(10, 0, 0, 2), other_ip(10, 0, 0, 7);
  for (const auto& f : {udp_frame(a_mac, b_mac, a_ip, b_ip, 5000, 7001, "to 7001"),
                        udp_frame(a_mac, b_mac, a_ip, b_ip, 5000, 7002, "to 7002 from .1"),
                        udp_frame(a_mac, b_mac, other_ip, b_ip, 5000, 7002, "to 7002 from .7"),
                        udp_frame(a_mac, b_mac, a_ip, b_ip, 5000, 7003, "to nobody")}) {
    ASSERT_EQ((*raw)->transmit(f), dev::TxStatus::kOk);
  }
  (*c1)->poll();
  EXPECT_EQ(r1.payloads, (std::vector<std::string>{"to 7001"}));
  EXPECT_EQ(r2.payloads, (std::vector<std::string>{"to 7002 from .1", "to 7002 from .7"}));
  EXPECT_EQ(r3.payloads, (std::vector<std::string>{"to 7002 from .1"}));
  EXPECT_EQ((*c1)->shared().stats().rx_drops.value(RxDrop::kNoClient), 1u);
  EXPECT_EQ((*c1)->shared().stats().rx_delivered.value(), 3u);

  // The last client out releases the device; a new client opens it afresh.
  SharedDevice* first = &(*c1)->shared();
  c1->reset();
  c2->reset();
  EXPECT_EQ(first->clients(), 1u);
  c3->reset();
  auto again = Netpoll::setup(config(dev_b, "7001@10.0.0.2/,@0.0.0.0/"));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ((*again)->shared().clients(), 1u);
  EXPECT_EQ((*again)->shared().stats().rx_frames.value(), 0u);
}

// One frame per drop reason, crafted by hand and sent from a raw end.
TEST(Netpoll, CountsEveryReceiveDropUnderItsReason) {
  const std::string wire = unique_wire();
  Received rx;
  auto b = Netpoll::setup(config("pair:" + wire + "?mac=02:00:00:00:00:0b", "6666@10.0.0.2/,@0.0.0.0/", &rx));
  ASSERT_TRUE(b) << b.error().message;
  auto raw = dev::open_device("pair:" + wire + "?mac=02:00:00:00:00:0a");
  ASSERT_TRUE(raw);
  const MacAddr a_mac(2, 0, 0, 0, 0, 0x0a), b_mac(2, 0, 0, 0, 0, 0x0b);
  const Ipv4Addr a_ip(10, 0, 0, 1), b_ip(10, 0, 0, 2);
  const auto good = [&] { return udp_frame(a_mac, b_mac, a_ip, b_ip, 5000, 6666, "payload!"); };
  const auto refill_ip_checksum = [](std::vector<std::byte>& f) {
    Ipv4Packet<std::byte>::new_unchecked(std::span(f).subspan(14)).fill_checksum();
  };

  struct Case {
    RxDrop reason;
    std::vector<std::byte> frame;
  };
  std::vector<Case> cases;  // (a runt cannot cross a device: every backend refuses one)
  {
    auto f = good();
    EthernetFrame<std::byte>::new_unchecked(f).set_dst(MacAddr(2, 0, 0, 0, 0, 0x99));
    cases.push_back({RxDrop::kOtherHost, f});
  }
  {
    auto f = good();
    EthernetFrame<std::byte>::new_unchecked(f).set_ethertype(0x88b5);
    cases.push_back({RxDrop::kNotIp, f});
  }
  {
    auto f = good();
    f.resize(14 + 12);
    cases.push_back({RxDrop::kIpTruncated, f});
  }
  {
    auto f = good();
    f[14] = std::byte{0x65};  // version 6
    cases.push_back({RxDrop::kIpHeader, f});
  }
  {
    auto f = good();
    f[14 + 10] ^= std::byte{0xff};
    cases.push_back({RxDrop::kIpChecksum, f});
  }
  {
    auto f = good();
    Ipv4Packet<std::byte>::new_unchecked(std::span(f).subspan(14)).set_total_len(500);
    refill_ip_checksum(f);
    cases.push_back({RxDrop::kIpLength, f});
  }
  {
    auto f = good();
    Ipv4Packet<std::byte>::new_unchecked(std::span(f).subspan(14)).set_frag(false, true, 0);
    refill_ip_checksum(f);
    cases.push_back({RxDrop::kIpFragment, f});
  }
  {
    // IHL 6 with a 4-byte option (NOP x4) spliced in.
    auto f = good();
    f.insert(f.begin() + 34, 4, std::byte{0x01});
    auto ip = Ipv4Packet<std::byte>::new_unchecked(std::span(f).subspan(14));
    ip.set_version_and_header_len(4, 24);
    ip.set_total_len(static_cast<std::uint16_t>(f.size() - 14));
    refill_ip_checksum(f);
    cases.push_back({RxDrop::kIpOptions, f});
  }
  {
    auto f = good();
    Ipv4Packet<std::byte>::new_unchecked(std::span(f).subspan(14)).set_protocol(ip_proto::kTcp);
    refill_ip_checksum(f);
    cases.push_back({RxDrop::kNotUdp, f});
  }
  {
    auto f = good();
    f.resize(14 + 20 + 4);
    Ipv4Packet<std::byte>::new_unchecked(std::span(f).subspan(14)).set_total_len(24);
    refill_ip_checksum(f);
    cases.push_back({RxDrop::kUdpTruncated, f});
  }
  {
    auto f = good();
    f[14 + 20 + 5] = std::byte{9};  // UDP length 9, IP says 16
    cases.push_back({RxDrop::kUdpLength, f});
  }
  {
    auto f = good();
    f.back() ^= std::byte{0x01};
    cases.push_back({RxDrop::kUdpChecksum, f});
  }
  cases.push_back({RxDrop::kNoClient, udp_frame(a_mac, b_mac, a_ip, Ipv4Addr(10, 0, 0, 3), 5000, 6666, "not ours")});
  {
    auto f = good();
    f.resize(14 + 10);
    EthernetFrame<std::byte>::new_unchecked(f).set_ethertype(ethertype::kArp);
    cases.push_back({RxDrop::kArpMalformed, f});
  }
  {
    std::vector<std::byte> f(42);
    auto arp = EthernetRepr{a_mac, MacAddr::broadcast(), ethertype::kArp}.emit(f);
    ArpRepr{ArpOp::kRequest, a_mac, a_ip, MacAddr(), Ipv4Addr(10, 0, 0, 50)}.emit(arp);
    cases.push_back({RxDrop::kArpIgnored, f});
  }

  for (const auto& c : cases) {
    const auto before = (*b)->shared().stats().rx_drops.value(c.reason);
    ASSERT_EQ((*raw)->transmit(c.frame), dev::TxStatus::kOk);
    (*b)->poll();
    EXPECT_EQ((*b)->shared().stats().rx_drops.value(c.reason), before + 1) << to_string(c.reason);
  }
  EXPECT_EQ((*b)->shared().stats().rx_drops.total(), cases.size());
  EXPECT_TRUE(rx.payloads.empty());
  // And a good one still gets through; padding after the datagram is trimmed.
  auto f = good();
  f.resize(80, std::byte{0});
  ASSERT_EQ((*raw)->transmit(f), dev::TxStatus::kOk);
  (*b)->poll();
  EXPECT_EQ(rx.payloads, (std::vector<std::string>{"payload!"}));
}

TEST_F(TwoHosts, WithCarrierDownSendsQueueInOrderUpToTheBoundAndDrainAfter) {
  pair_of(*a_).set_carrier(false);
  const std::size_t limit = a_->shared().config().deferred_limit;
  std::size_t refused = 0;
  for (std::size_t i = 0; i < limit + 5; ++i) {
    if (!a_->send_udp(as_bytes("msg " + std::to_string(i)))) ++refused;
  }
  EXPECT_EQ(refused, 5u);
  EXPECT_EQ(a_->shared().deferred_depth(), limit);
  EXPECT_EQ(a_->shared().stats().tx_drops.value(TxDrop::kQueueFull), 5u);
  EXPECT_EQ(a_->shared().stats().deferred_high.value(), limit);
  a_->poll();
  EXPECT_EQ(a_->shared().deferred_depth(), limit);  // still down: kept, not lost

  pair_of(*a_).set_carrier(true);
  a_->poll();  // drains the deferred queue
  EXPECT_EQ(a_->shared().deferred_depth(), 0u);
  ASSERT_TRUE(poll_until({b_.get()}, [&] { return rx_b_.payloads.size() == limit; }));
  for (std::size_t i = 0; i < limit; ++i) EXPECT_EQ(rx_b_.payloads[i], "msg " + std::to_string(i));
  // A new send goes straight out again.
  ASSERT_TRUE(a_->send_udp(as_bytes("after")));
  EXPECT_EQ(a_->shared().stats().tx_direct.value(), 1u);
}

TEST_F(TwoHosts, TrapModeQueuesArpUntilAfterThePollAndPassthroughSeesTheRest) {
  std::vector<std::uint16_t> passed;
  b_->shared().set_passthrough([&passed](std::span<const std::byte> f) {
    passed.push_back(EthernetFrame<const std::byte>::check(f)->ethertype());
  });
  auto raw = dev::open_device("pair:" + unique_wire());  // unrelated, proves nothing leaks across wires
  ASSERT_TRUE(raw);
  const MacAddr a_mac(2, 0, 0, 0, 0, 0x0a), b_mac(2, 0, 0, 0, 0, 0x0b);
  std::vector<std::byte> other(60);
  EthernetRepr{a_mac, b_mac, 0x88b5}.emit(other);
  std::vector<std::byte> who_has(42);
  ArpRepr{ArpOp::kRequest, a_mac, Ipv4Addr(10, 0, 0, 1), MacAddr(), Ipv4Addr(10, 0, 0, 2)}.emit(
      EthernetRepr{a_mac, MacAddr::broadcast(), ethertype::kArp}.emit(who_has));

  auto& a_dev = a_->shared().device();
  // Not trapped: ARP answered directly, foreign frames passed through.
  ASSERT_EQ(a_dev.transmit(other), dev::TxStatus::kOk);
  ASSERT_EQ(a_dev.transmit(who_has), dev::TxStatus::kOk);
  b_->poll();
  EXPECT_EQ(passed, (std::vector<std::uint16_t>{0x88b5}));
  EXPECT_EQ(b_->shared().stats().arp_replies_sent.value(), 1u);
  EXPECT_EQ(b_->shared().dispatcher().counters(Proto::kArp).direct.value(), 1u);

  // Trapped: everything consumed, ARP queued and answered after the poll.
  b_->shared().set_trap(true);
  ASSERT_EQ(a_dev.transmit(other), dev::TxStatus::kOk);
  ASSERT_EQ(a_dev.transmit(who_has), dev::TxStatus::kOk);
  b_->poll();
  EXPECT_EQ(passed.size(), 1u);
  EXPECT_EQ(b_->shared().stats().rx_drops.value(RxDrop::kNotIp), 1u);
  const auto& arp = b_->shared().dispatcher().counters(Proto::kArp);
  EXPECT_EQ(arp.queued.value(), 1u);
  EXPECT_EQ(arp.deferred.value(), 1u);
  EXPECT_EQ(arp.dispatched.value(), 2u);
  EXPECT_EQ(b_->shared().stats().arp_replies_sent.value(), 2u);
  b_->shared().set_trap(false);
  // Both replies reached A's device.
  int replies = 0;
  a_dev.receive(16, [&](std::span<const std::byte> f) {
    auto eth = EthernetFrame<const std::byte>::check(f);
    if (eth->ethertype() != ethertype::kArp) return;
    auto r = ArpRepr::parse(*ArpPacket<const std::byte>::check(eth->payload()));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->op, ArpOp::kReply);
    EXPECT_EQ(r->source_ip, Ipv4Addr(10, 0, 0, 2));
    EXPECT_EQ(r->source_mac, b_mac);
    EXPECT_EQ(r->target_mac, a_mac);
    ++replies;
  });
  EXPECT_EQ(replies, 2);
}

TEST_F(TwoHosts, NeverAnswersArpForLoopbackOrMulticastTargets) {
  const MacAddr a_mac(2, 0, 0, 0, 0, 0x0a);
  for (const Ipv4Addr target : {Ipv4Addr(127, 0, 0, 1), Ipv4Addr(224, 0, 0, 1)}) {
    std::vector<std::byte> f(42);
    ArpRepr{ArpOp::kRequest, a_mac, Ipv4Addr(10, 0, 0, 1), MacAddr(), target}.emit(
        EthernetRepr{a_mac, MacAddr::broadcast(), ethertype::kArp}.emit(f));
    ASSERT_EQ(a_->shared().device().transmit(f), dev::TxStatus::kOk);
  }
  b_->poll();
  EXPECT_EQ(b_->shared().stats().arp_replies_sent.value(), 0u);
  EXPECT_EQ(b_->shared().stats().rx_drops.value(RxDrop::kArpIgnored), 2u);
}

TEST_F(TwoHosts, SendAndPollAllocateNothing) {
  // Warm up once (first-use paths such as the thread id cache).
  ASSERT_TRUE(a_->send_udp(as_bytes("warm")));
  b_->poll();
  rx_b_.keep = false;  // storing payloads would allocate
  std::size_t n = 0;
  testing::AllocGuard guard;
  for (int i = 0; i < 100; ++i) {
    n += a_->send_udp(as_bytes("no heap here")).has_value();
    b_->poll();
    a_->poll();
  }
  pair_of(*a_).set_carrier(false);  // the deferred path too
  for (int i = 0; i < 5; ++i) n += a_->send_udp(as_bytes("queued")).has_value();
  pair_of(*a_).set_carrier(true);
  a_->poll();
  b_->poll();
  const auto allocations = guard.stop();
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(n, 105u);
  EXPECT_EQ(rx_b_.count, 106u);
}

Netpoll* g_signal_client = nullptr;
std::atomic<int> g_signal_sent{0};

TEST_F(TwoHosts, SendWorksFromASignalHandler) {
  g_signal_client = a_.get();
  struct sigaction sa {};
  sa.sa_handler = [](int) {
    if (g_signal_client->send_udp(as_bytes("from a signal handler"))) g_signal_sent.fetch_add(1);
  };
  struct sigaction old {};
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  ::raise(SIGUSR1);
  sigaction(SIGUSR1, &old, nullptr);
  EXPECT_EQ(g_signal_sent.load(), 1);
  ASSERT_TRUE(poll_until({b_.get()}, [&] { return !rx_b_.payloads.empty(); }));
  EXPECT_EQ(rx_b_.payloads[0], "from a signal handler");
}

TEST_F(TwoHosts, ConcurrentSendersLoseNothingAndCountEverything) {
  // Four threads against B's service of the wire; every datagram is either
  // delivered or counted as a drop.
  std::atomic<bool> stop{false};
  std::thread poller([&] {
    while (!stop) b_->poll(64);
  });
  std::atomic<std::uint64_t> ok{0}, failed{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        if (a_->send_udp(as_bytes("t" + std::to_string(t) + " " + std::to_string(i)))) {
          ok.fetch_add(1);
        } else {
          failed.fetch_add(1);
        }
      }
    });
  }
  for (auto& s : senders) s.join();
  for (int i = 0; i < 100 && a_->shared().deferred_depth() > 0; ++i) {
    a_->poll();
    std::this_thread::sleep_for(1ms);
  }
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  // The hook runs on the poller thread: watch the client's atomic counter.
  while (b_->stats().rx_datagrams.value() < ok.load() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  stop = true;
  poller.join();
  EXPECT_EQ(ok.load() + failed.load(), 8000u);
  EXPECT_EQ(rx_b_.payloads.size(), ok.load());
  EXPECT_EQ(a_->shared().stats().tx_drops.total(), failed.load());
}

}  // namespace
}  // namespace np::core

namespace np::core {
namespace {

TEST_F(TwoHosts, EmergencyOwnerSendsWhileOtherThreadsOnlyQueue) {
  ASSERT_TRUE(a_->shared().enter_emergency(std::chrono::milliseconds(10)));
  // Another thread's send is queued, not transmitted.
  std::thread other([&] { EXPECT_TRUE(a_->send_udp(as_bytes("from another thread"))); });
  other.join();
  EXPECT_EQ(a_->shared().deferred_depth(), 1u);
  // The owner drains the queue first, then sends: order is kept.
  ASSERT_TRUE(a_->send_udp(as_bytes("from the owner")));
  EXPECT_EQ(a_->shared().deferred_depth(), 0u);
  ASSERT_TRUE(poll_until({b_.get()}, [&] { return rx_b_.payloads.size() == 2; }));
  EXPECT_EQ(rx_b_.payloads, (std::vector<std::string>{"from another thread", "from the owner"}));
}

TEST_F(TwoHosts, EmergencyTakesATransmitLockHeldByAStuckThread) {
  // A thread that holds the transmit lock and never gives it back (as one
  // frozen in the middle of a transmit would).
  std::atomic<bool> holding{false}, release{false};
  std::thread stuck([&] {
    a_->shared().flush();  // warm the thread id cache
    ASSERT_TRUE(SharedDeviceTesting::hold_tx_lock(a_->shared()));
    holding = true;
    while (!release) std::this_thread::sleep_for(1ms);
  });
  while (!holding) std::this_thread::sleep_for(1ms);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(a_->shared().enter_emergency(std::chrono::milliseconds(50)));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 50ms);
  ASSERT_TRUE(a_->send_udp(as_bytes("delivered anyway")));
  ASSERT_TRUE(poll_until({b_.get()}, [&] { return rx_b_.payloads.size() == 1; }));
  EXPECT_EQ(rx_b_.payloads[0], "delivered anyway");
  release = true;
  stuck.join();
}

}  // namespace
}  // namespace np::core
