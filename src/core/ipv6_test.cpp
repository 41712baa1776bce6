// The core over IPv6 on the in-memory wire: host B (fd77::1, 02:00:00:00:00:01)
// is a Netpoll client on one end of a pair; the other end is a raw device
// playing host A (fd77::2, 02:00:00:00:00:02) with frames made by hand or
// by scapy (the wire tests' golden packets), or a second client.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "../wire/golden.h"
#include "alloc_guard.h"
#include "netpoll/base/bytes.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/dev/open.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/ipv6.h"
#include "netpoll/wire/ndisc.h"
#include "netpoll/wire/udp.h"

namespace np::core {
namespace {

using namespace np::wire;
using namespace std::chrono_literals;

const MacAddr kMacB(2, 0, 0, 0, 0, 1);
const MacAddr kMacA(2, 0, 0, 0, 0, 2);
const Ipv6Addr kIpB = *Ipv6Addr::parse("fd77::1");
const Ipv6Addr kIpA = *Ipv6Addr::parse("fd77::2");

std::string v6_wire() {
  static std::atomic<int> n{0};
  return "core-v6-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

struct V6Inbox {
  std::vector<std::string> payloads;
  std::vector<RxInfo> infos;
  bool keep = true;
  std::size_t count = 0;
};

ClientConfig v6_config(const std::string& device, const std::string& target_text, V6Inbox* rx = nullptr,
                       std::vector<std::string>* log = nullptr) {
  ClientConfig c;
  auto t = parse_targets(target_text);
  EXPECT_TRUE(t) << (t ? "" : t.error().message);
  c.target = t->targets.at(0);
  c.target.device = device;
  c.device.service_thread = false;
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
  if (log != nullptr) c.log = [log](const std::string& s) { log->push_back(s); };
  return c;
}

// A UDP datagram over IPv6 as a foreign host would send it.
std::vector<std::byte> udp6_frame(const Ipv6Addr& src, const Ipv6Addr& dst, std::uint16_t sport, std::uint16_t dport,
                                  std::string_view payload, const MacAddr& dst_mac = kMacB) {
  std::vector<std::byte> f(62 + payload.size());
  const UdpRepr udp{sport, dport, as_bytes(payload)};
  auto ip_area = EthernetRepr{kMacA, dst_mac, ethertype::kIpv6}.emit(f);
  auto udp_area = Ipv6Repr{src, dst, ip_proto::kUdp, static_cast<std::uint16_t>(udp.buffer_len()), 64}.emit(ip_area);
  udp.emit(udp_area, src, dst);
  return f;
}

// A neighbour discovery message from A, hop limit 255.
std::vector<std::byte> ndisc_frame(const NdiscRepr& nd, const Ipv6Addr& src, const Ipv6Addr& dst,
                                   const MacAddr& dst_mac) {
  std::vector<std::byte> f(54 + nd.buffer_len());
  auto ip_area = EthernetRepr{kMacA, dst_mac, ethertype::kIpv6}.emit(f);
  auto icmp = Ipv6Repr{src, dst, ip_proto::kIcmpv6, static_cast<std::uint16_t>(nd.buffer_len()), 255}.emit(ip_area);
  nd.emit(icmp, src, dst);
  return f;
}

std::vector<std::vector<std::byte>> frames_on(dev::Device& d) {
  std::vector<std::vector<std::byte>> out;
  for (int i = 0; i < 50 && out.empty(); ++i) {
    d.receive(64, [&](std::span<const std::byte> f) { out.emplace_back(f.begin(), f.end()); });
  }
  return out;
}

class Ipv6Host : public ::testing::Test {
 protected:
  void SetUp() override {
    wire_ = v6_wire();
    auto b = Netpoll::setup(v6_config(dev_b(), "6666@fd77::1/,@::/", &rx_));
    ASSERT_TRUE(b) << b.error().message;
    b_ = std::move(*b);
    auto raw = dev::open_device("pair:" + wire_ + "?mac=02:00:00:00:00:02");
    ASSERT_TRUE(raw) << raw.error().message;
    raw_ = std::move(*raw);
  }
  std::string dev_b() const { return "pair:" + wire_ + "?mac=02:00:00:00:00:01"; }
  void inject(std::span<const std::byte> f) {
    ASSERT_EQ(raw_->transmit(f), dev::TxStatus::kOk);
    b_->poll();
  }
  const SharedDeviceStats& st() { return b_->shared().stats(); }

  std::string wire_;
  V6Inbox rx_;
  std::unique_ptr<Netpoll> b_;
  std::unique_ptr<dev::Device> raw_;
};

TEST_F(Ipv6Host, SendsTheGoldenFrameByteForByte) {
  // The same datagram scapy made: hop limit 32, flow label 0, the UDP
  // checksum over the IPv6 pseudo-header.
  auto c = Netpoll::setup(v6_config(dev_b(), "6665@fd77::1/,6666@fd77::2/02:00:00:00:00:02"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ((*c)->family(), IpFamily::kV6);
  ASSERT_TRUE((*c)->send_udp(as_bytes("netpoll")));
  const auto got = frames_on(*raw_);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], std::vector<std::byte>(golden::kUdp6Frame.begin(), golden::kUdp6Frame.end()));
}

TEST_F(Ipv6Host, CarriesTwentyBytesLessThanIpv4) {
  auto c = Netpoll::setup(v6_config(dev_b(), "6665@fd77::1/,6666@fd77::2/02:00:00:00:00:02"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ((*c)->max_payload(), 1500u - 48u);
  EXPECT_EQ(b_->shared().max_payload(IpFamily::kV4), 1500u - 28u);
  EXPECT_FALSE((*c)->send_udp(as_bytes(std::string(1453, 'x'))));
  EXPECT_EQ((*c)->stats().tx_drops.value(TxDrop::kTooBig), 1u);
  ASSERT_TRUE((*c)->send_udp(as_bytes(std::string(1452, 'y'))));
  const auto got = frames_on(*raw_);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].size(), 1514u);
}

TEST_F(Ipv6Host, DeliversADatagramWithItsAddresses) {
  inject(udp6_frame(kIpA, kIpB, 5555, 6666, "hello over IPv6"));
  ASSERT_EQ(rx_.payloads, (std::vector<std::string>{"hello over IPv6"}));
  EXPECT_EQ(rx_.infos[0].src_ip, IpAddr(kIpA));
  EXPECT_EQ(rx_.infos[0].dst_ip, IpAddr(kIpB));
  EXPECT_EQ(rx_.infos[0].src_port, 5555);
  EXPECT_EQ(rx_.infos[0].src_mac, kMacA);
  EXPECT_EQ(st().rx_delivered.value(), 1u);
}

TEST_F(Ipv6Host, AnswersTheGoldenSolicitationWithTheGoldenAdvertisement) {
  // scapy's solicitation for fd77::1 from fd77::2; the answer must be
  // scapy's advertisement: to the solicitor, solicited and override, our
  // link-layer address, hop limit 255.
  inject(golden::kNdiscSolicitFrame);
  const auto got = frames_on(*raw_);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], std::vector<std::byte>(golden::kNdiscAdvertFrame.begin(), golden::kNdiscAdvertFrame.end()));
  EXPECT_EQ(st().nd_adverts_sent.value(), 1u);
  // The solicitor's link-layer option taught us its MAC.
  EXPECT_EQ(b_->shared().cached_mac(kIpA), kMacA);
  EXPECT_EQ(st().rx_drops.total(), 0u);
}

TEST_F(Ipv6Host, DefendsItsAddressAgainstAnotherNodesDuplicateDetection) {
  // From :: to the solicited-node group, no option (RFC 4862): answered to
  // all nodes, not marked solicited (RFC 4861 section 7.2.4).
  const Ipv6Addr group = kIpB.solicited_node();
  inject(ndisc_frame({NdiscRepr::Kind::kSolicit, kIpB, std::nullopt}, Ipv6Addr::any(), group,
                     ipv6_multicast_mac(group)));
  const auto got = frames_on(*raw_);
  ASSERT_EQ(got.size(), 1u);
  const auto eth = *EthernetFrame<const std::byte>::check(got[0]);
  EXPECT_EQ(eth.dst(), MacAddr(0x33, 0x33, 0, 0, 0, 1));
  const auto pkt = *Ipv6Packet<const std::byte>::check(eth.payload());
  const auto ip = *Ipv6Repr::parse(pkt);
  EXPECT_EQ(ip.dst, Ipv6Addr::all_nodes());
  const auto na = NdiscRepr::parse(*Icmpv6Packet<const std::byte>::check(pkt.payload()), ip);
  ASSERT_TRUE(na);
  EXPECT_EQ(na->kind, NdiscRepr::Kind::kAdvert);
  EXPECT_FALSE(na->solicited);
  EXPECT_TRUE(na->override_entry);
  EXPECT_EQ(na->link_addr, kMacB);
}

TEST_F(Ipv6Host, IgnoresSolicitationsForAddressesNoClientHas) {
  inject(ndisc_frame({NdiscRepr::Kind::kSolicit, *Ipv6Addr::parse("fd77::99"), kMacA}, kIpA,
                     Ipv6Addr::parse("fd77::99")->solicited_node(), MacAddr(0x33, 0x33, 0xff, 0, 0, 0x99)));
  EXPECT_TRUE(frames_on(*raw_).empty());
  EXPECT_EQ(st().rx_drops.value(RxDrop::kNdIgnored), 1u);
  EXPECT_EQ(st().nd_adverts_sent.value(), 0u);
}

TEST_F(Ipv6Host, ResolvesTheRemoteMacByNeighbourSolicitation) {
  // A client on A's end (in place of the raw one) answers for fd77::2
  // while polled.
  raw_.reset();
  auto a = Netpoll::setup(v6_config("pair:" + wire_ + "?mac=02:00:00:00:00:02", "7000@fd77::2/,@::/"));
  ASSERT_TRUE(a) << a.error().message;
  std::atomic<bool> stop{false};
  std::thread a_poller([&] {
    while (!stop) {
      (*a)->poll();
      std::this_thread::sleep_for(200us);
    }
  });
  std::vector<std::string> log;
  auto c = Netpoll::setup(v6_config(dev_b(), "6665@fd77::1/,7000@fd77::2/", nullptr, &log));
  stop = true;
  a_poller.join();
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ((*c)->remote_mac(), kMacA);
  EXPECT_EQ(st().nd_solicits_sent.value(), 1u);
  EXPECT_EQ((*a)->shared().stats().nd_adverts_sent.value(), 1u);
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back(), "netpoll: remote ethernet address 02:00:00:00:00:02 (neighbour advertisement from fd77::2)");
  EXPECT_EQ(b_->shared().cached_mac(kIpA), kMacA);
  EXPECT_FALSE(b_->shared().cached_mac(Ipv4Addr(0xfd, 0x77, 0, 0)));  // a key of the other family is no match
  // And the datagram goes out to it.
  V6Inbox got;
  auto listener = Netpoll::setup(v6_config("pair:" + wire_ + "?mac=02:00:00:00:00:02", "7000@fd77::2/,@::/", &got));
  ASSERT_TRUE(listener);
  ASSERT_TRUE((*c)->send_udp(as_bytes("resolved")));
  (*listener)->poll();
  EXPECT_EQ(got.payloads, (std::vector<std::string>{"resolved"}));
}

TEST_F(Ipv6Host, SolicitsAtTheSolicitedNodeGroupThenBroadcastsWithAWarning) {
  std::vector<std::string> log;
  auto c = Netpoll::setup(v6_config(dev_b(), "6665@fd77::1/,6666@fd77::ab:cdef/", nullptr, &log));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ((*c)->remote_mac(), MacAddr::broadcast());
  EXPECT_EQ(st().nd_solicits_sent.value(), 2u);  // tries = 2 here
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back(),
            "netpoll: warning: no neighbour advertisement from fd77::ab:cdef after 2 tries: sending to the broadcast "
            "address ff:ff:ff:ff:ff:ff");
  const auto got = frames_on(*raw_);
  ASSERT_EQ(got.size(), 2u);
  for (const auto& f : got) {
    const auto eth = *EthernetFrame<const std::byte>::check(f);
    EXPECT_EQ(eth.dst(), MacAddr(0x33, 0x33, 0xff, 0xab, 0xcd, 0xef));
    const auto pkt = *Ipv6Packet<const std::byte>::check(eth.payload());
    const auto ip = *Ipv6Repr::parse(pkt);
    EXPECT_EQ(ip.src, kIpB);
    EXPECT_EQ(ip.dst.to_string(), "ff02::1:ffab:cdef");
    EXPECT_EQ(ip.hop_limit, 255);
    const auto ns = NdiscRepr::parse(*Icmpv6Packet<const std::byte>::check(pkt.payload()), ip);
    ASSERT_TRUE(ns);
    EXPECT_EQ(ns->kind, NdiscRepr::Kind::kSolicit);
    EXPECT_EQ(ns->target.to_string(), "fd77::ab:cdef");
    EXPECT_EQ(ns->link_addr, kMacB);
  }
}

TEST_F(Ipv6Host, SendsToAMulticastGroupAtItsMappedAddressWithoutAsking) {
  auto c = Netpoll::setup(v6_config(dev_b(), "6665@fd77::1/,6666@ff02::1:2/"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ((*c)->remote_mac(), MacAddr(0x33, 0x33, 0, 1, 0, 2));
  EXPECT_EQ(st().nd_solicits_sent.value(), 0u);
}

TEST_F(Ipv6Host, RefusesToAnswerAnAddressOfTheOtherFamily) {
  auto c = Netpoll::setup(v6_config(dev_b(), "6665@fd77::1/,6666@fd77::2/02:00:00:00:00:02"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ((*c)->send_udp_to({kMacA, Ipv4Addr(10, 0, 0, 2), 5000}, as_bytes("x")).error(), Errc::kInvalidArgument);
  EXPECT_EQ((*c)->send_udp_to({kMacA, Ipv6Addr::any(), 5000}, as_bytes("x")).error(), Errc::kInvalidArgument);
  ASSERT_TRUE((*c)->send_udp_to({kMacA, kIpA, 5000}, as_bytes("x")));
}

TEST_F(Ipv6Host, Ipv4AndIpv6ClientsShareADeviceAndEachGetsItsOwn) {
  V6Inbox v4;
  auto c4 = Netpoll::setup(v6_config(dev_b(), "6666@10.0.0.1/,@0.0.0.0/", &v4));
  ASSERT_TRUE(c4) << c4.error().message;
  EXPECT_EQ(&(*c4)->shared(), &b_->shared());
  inject(udp6_frame(kIpA, kIpB, 5555, 6666, "six"));
  std::vector<std::byte> f(42 + 4);
  const UdpRepr udp{5555, 6666, as_bytes("four")};
  auto ip_area = EthernetRepr{kMacA, kMacB, ethertype::kIpv4}.emit(f);
  udp.emit(Ipv4Repr{Ipv4Addr(10, 0, 0, 2), Ipv4Addr(10, 0, 0, 1), ip_proto::kUdp, 12, 64, 1, false, 0}.emit(ip_area),
           Ipv4Addr(10, 0, 0, 2), Ipv4Addr(10, 0, 0, 1));
  inject(f);
  EXPECT_EQ(rx_.payloads, (std::vector<std::string>{"six"}));
  EXPECT_EQ(v4.payloads, (std::vector<std::string>{"four"}));
}

TEST_F(Ipv6Host, TrapModeAnswersSolicitationsAfterThePoll) {
  b_->shared().set_trap(true);
  inject(golden::kNdiscSolicitFrame);
  b_->shared().set_trap(false);
  const auto& nd = b_->shared().dispatcher().counters(Proto::kNdisc);
  EXPECT_EQ(nd.queued.value(), 1u);
  EXPECT_EQ(nd.deferred.value(), 1u);
  EXPECT_EQ(st().nd_adverts_sent.value(), 1u);
  EXPECT_EQ(frames_on(*raw_).size(), 1u);
}

// One IPv6 frame per drop reason, made by hand, sent from the raw end.
TEST_F(Ipv6Host, CountsEveryIpv6ReceiveDropUnderItsReason) {
  const auto good = [&] { return udp6_frame(kIpA, kIpB, 5000, 6666, "payload!"); };
  const auto ip_of = [](std::vector<std::byte>& f) { return Ipv6Packet<std::byte>::new_unchecked(std::span(f).subspan(14)); };
  struct Case {
    RxDrop reason;
    std::vector<std::byte> frame;
  };
  std::vector<Case> cases;
  {
    auto f = good();
    f.resize(14 + 39);
    cases.push_back({RxDrop::kIpv6Truncated, f});
  }
  {
    auto f = good();
    f[14] = std::byte{0x40};  // version 4 in an IPv6 frame
    cases.push_back({RxDrop::kIpv6Header, f});
  }
  {
    auto f = good();
    ip_of(f).set_payload_len(17);  // one more than the frame holds
    cases.push_back({RxDrop::kIpv6Length, f});
  }
  {
    auto f = good();
    ip_of(f).set_next_header(ip_proto::kIpv6Fragment);
    cases.push_back({RxDrop::kIpv6ExtHeader, f});
  }
  {
    auto f = good();
    ip_of(f).set_next_header(ip_proto::kTcp);
    cases.push_back({RxDrop::kNotUdp, f});
  }
  {
    auto f = good();
    f.resize(14 + 40 + 4);
    ip_of(f).set_payload_len(4);
    cases.push_back({RxDrop::kUdpTruncated, f});
  }
  {
    auto f = good();
    f[14 + 40 + 5] = std::byte{9};  // UDP length 9, IPv6 says 16
    cases.push_back({RxDrop::kUdpLength, f});
  }
  {
    auto f = good();
    f.back() ^= std::byte{0x01};
    cases.push_back({RxDrop::kUdpChecksum, f});
  }
  {
    auto f = good();
    UdpPacket<std::byte>::new_unchecked(std::span(f).subspan(54)).set_checksum(0);
    cases.push_back({RxDrop::kUdpNoChecksum, f});
  }
  cases.push_back({RxDrop::kNoClient, udp6_frame(kIpA, *Ipv6Addr::parse("fd77::3"), 5000, 6666, "foreign dst")});
  cases.push_back({RxDrop::kNoClient, udp6_frame(kIpA, kIpB, 5000, 7777, "no such port")});
  {
    auto f = std::vector<std::byte>(golden::kNdiscSolicitFrame.begin(), golden::kNdiscSolicitFrame.end());
    ip_of(f).set_hop_limit(64);  // from beyond a router
    cases.push_back({RxDrop::kNdMalformed, f});
  }
  {
    auto f = std::vector<std::byte>(golden::kNdiscSolicitFrame.begin(), golden::kNdiscSolicitFrame.end());
    f[54 + 2] ^= std::byte{0x01};  // ICMPv6 checksum
    cases.push_back({RxDrop::kNdMalformed, f});
  }
  {
    // An unsolicited advertisement to us for an address nobody here has
    // asked for is learned, not dropped; one to another host is ignored.
    cases.push_back({RxDrop::kNdIgnored,
                     ndisc_frame({NdiscRepr::Kind::kAdvert, kIpA, kMacA, false, true, true}, kIpA,
                                 *Ipv6Addr::parse("fd77::3"), MacAddr(0x33, 0x33, 0, 0, 0, 3))});
  }
  {
    // An echo request (ping): netpoll answers no ICMPv6 but neighbour discovery.
    std::vector<std::byte> f(54 + 8);
    auto icmp = Ipv6Repr{kIpA, kIpB, ip_proto::kIcmpv6, 8, 64}.emit(EthernetRepr{kMacA, kMacB, ethertype::kIpv6}.emit(f));
    auto p = Icmpv6Packet<std::byte>::new_unchecked(icmp);
    p.set_type(icmpv6_type::kEchoRequest);
    p.set_code(0);
    p.fill_checksum(kIpA, kIpB);
    cases.push_back({RxDrop::kIcmpv6Other, f});
  }
  for (const auto& c : cases) {
    const auto before = st().rx_drops.value(c.reason);
    inject(c.frame);
    EXPECT_EQ(st().rx_drops.value(c.reason), before + 1) << to_string(c.reason);
  }
  EXPECT_EQ(st().rx_drops.total(), cases.size());
  EXPECT_TRUE(rx_.payloads.empty());
  EXPECT_TRUE(frames_on(*raw_).empty());  // nothing was answered
  // A good one still gets through; padding after the datagram is trimmed.
  auto f = good();
  f.resize(100, std::byte{0});
  inject(f);
  EXPECT_EQ(rx_.payloads, (std::vector<std::string>{"payload!"}));
  const std::string text = b_->shared().stats_text();
  for (const char* line : {"\n  rx drop ipv6_ext_header 1\n", "\n  rx drop udp_no_checksum 1\n",
                           "\n  rx drop nd_malformed    2\n", "\n  rx drop no_client       2\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << text;
  }
}

TEST_F(Ipv6Host, SendReceiveAndNeighbourDiscoveryAllocateNothing) {
  auto c = Netpoll::setup(v6_config(dev_b(), "6665@fd77::1/,6666@fd77::2/02:00:00:00:00:02"));
  ASSERT_TRUE(c) << c.error().message;
  const auto datagram = udp6_frame(kIpA, kIpB, 5000, 6666, "no heap here");
  const std::vector<std::byte> solicit(golden::kNdiscSolicitFrame.begin(), golden::kNdiscSolicitFrame.end());
  // Warm up once (first-use paths such as the thread id cache).
  ASSERT_TRUE((*c)->send_udp(as_bytes("warm")));
  inject(datagram);
  raw_->receive(64, [](std::span<const std::byte>) {});
  rx_.keep = false;
  std::size_t sent = 0;
  std::size_t seen = 0;
  testing::AllocGuard guard;
  for (int i = 0; i < 100; ++i) {
    sent += (*c)->send_udp(as_bytes("no heap here")).has_value();
    static_cast<void>(raw_->transmit(datagram));
    static_cast<void>(raw_->transmit(solicit));
    b_->poll();
    seen += raw_->receive(64, [](std::span<const std::byte>) {});
  }
  const auto allocations = guard.stop();
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(sent, 100u);
  EXPECT_EQ(seen, 200u);  // each round: our datagram and our advertisement
  EXPECT_EQ(rx_.count, 101u);
  EXPECT_EQ(st().nd_adverts_sent.value(), 100u);
}

}  // namespace
}  // namespace np::core
