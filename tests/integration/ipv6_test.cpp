// IPv6 through netpoll's own path, against the Linux kernel over veth pairs
// in namespaces (issue 15).
//
// Namespace `a` holds np0 with fd77::1 (the kernel's) where netpoll runs on
// packet:np0; namespace `b` holds np1 with fd77::2, whose kernel is the
// peer. Clients that must answer neighbour solicitations themselves use
// fd77::5, an address the kernel in `a` does not have. Addresses are added
// without duplicate address detection (nodad), so they are usable at once.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "listener.h"
#include "inbox.h"
#include "net_helpers.h"
#include "netns.h"
#include "netpoll/base/bytes.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/dev/open.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv6.h"
#include "netpoll/wire/udp.h"
#include "segments.h"
#include "temp_dir.h"

namespace np::core {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;

struct Ipv6Bed : VethBed {
  Ipv6Bed() {
    sh_ok(a.exec() + "ip -6 addr add fd77::1/64 dev " + a_if + " nodad");
    sh_ok(b.exec() + "ip -6 addr add fd77::2/64 dev " + b_if + " nodad");
  }
};

ClientConfig v6_client(const std::string& target, Inbox* inbox, std::vector<std::string>* log) {
  ClientConfig c;
  auto t = parse_targets(target);
  EXPECT_TRUE(t) << (t ? "" : t.error().message);
  c.target = t->targets.at(0);  // resolution as by default: 3 tries, 1 s apart
  if (inbox != nullptr) c.rx_hook = inbox->hook();
  if (log != nullptr) c.log = [log](const std::string& s) { log->push_back(s); };
  return c;
}

SetupResult<std::unique_ptr<Netpoll>> v6_setup_in(const Netns& ns, ClientConfig cfg) {
  ScopedNetns in(ns);
  return Netpoll::setup(std::move(cfg));
}

bool has_line(const std::vector<std::string>& log, const std::string& line) {
  return std::find(log.begin(), log.end(), line) != log.end();
}

std::string joined(const std::vector<std::string>& log) {
  std::string s;
  for (const auto& l : log) s += l + "\n";
  return s;
}

class Ipv6OverVeth : public ::testing::Test {
 protected:
  Ipv6Bed bed;
};

TEST_F(Ipv6OverVeth, OurDatagramReachesAKernelSocketExactly) {
  UdpSocket peer(bed.b, "fd77::2", 6666);
  std::vector<std::string> log;
  // No source address: the interface's global one, not its link-local one.
  auto np = v6_setup_in(bed.a, v6_client("6665@/np0,6666@fd77::2/", nullptr, &log));
  ASSERT_TRUE(np) << np.error().message;
  EXPECT_TRUE(has_line(log, "netpoll: local IPv6 fd77::1")) << joined(log);
  EXPECT_TRUE(has_line(log, "netpoll: remote ethernet address " + bed.b_mac + " (neighbour advertisement from fd77::2)"))
      << joined(log);
  EXPECT_NE((*np)->describe().find("netpoll: remote IPv6 address fd77::2\n"), std::string::npos) << (*np)->describe();
  for (const std::size_t n : {1u, 13u, 1232u}) {
    std::string msg(n, 'x');
    for (std::size_t i = 0; i < n; ++i) msg[i] = static_cast<char>('a' + i % 26);
    ASSERT_TRUE((*np)->send_udp(as_bytes(msg)));
    std::string from;
    auto got = peer.receive(2000ms, &from);
    ASSERT_TRUE(got) << "nothing arrived for a " << n << "-byte datagram";
    EXPECT_EQ(as_text(*got), msg);
    EXPECT_EQ(from, "[fd77::1]:6665");
  }
  EXPECT_EQ((*np)->stats().tx_datagrams.value(), 3u);
  EXPECT_EQ((*np)->shared().stats().nd_solicits_sent.value(), 1u);
  EXPECT_EQ((*np)->shared().stats().tx_drops.total(), 0u);
}

// Datagrams in segments over IPv6: one transmission (the kernel cuts it
// before the veth here, as for a NIC without UDP segmentation), a datagram
// each on the wire, each with a checksum that verifies.
TEST_F(Ipv6OverVeth, SegmentsGoOutAsDatagramsEachWithItsOwnChecksum) {
  sh_ok(bed.a.exec() + "ethtool -K " + bed.a_if + " tx-udp-segmentation off");
  UdpSocket peer(bed.b, "fd77::2", 6666);
  // The wire from the peer's side (the packet device completes a checksum
  // the kernel left partial over the veth, from what our headers said).
  auto wire = open_in(bed.b, "packet:np1");
  ASSERT_TRUE(wire);
  auto np = v6_setup_in(bed.a, v6_client("6665@/np0,6666@fd77::2/", nullptr, nullptr));
  ASSERT_TRUE(np) << np.error().message;
  std::vector<std::string> msgs;
  for (int i = 0; i < 3; ++i) msgs.push_back(std::string(1200, static_cast<char>('k' + i)));
  msgs.push_back(std::string(77, 'o'));
  send_segments_and_expect_each(**np, peer, msgs, 6666, "[fd77::1]:6665");
  if (::testing::Test::HasFatalFailure()) return;
  std::vector<std::string> seen;
  std::size_t bad = 0;
  receive_until(*wire, 2000ms, [&](std::span<const std::byte> frame) {
    const auto eth = wire::EthernetFrame<const std::byte>::check(frame);
    if (!eth || eth->ethertype() != wire::ethertype::kIpv6) return false;
    const auto ip = wire::Ipv6Packet<const std::byte>::check(eth->payload());
    if (!ip || ip->next_header() != wire::ip_proto::kUdp) return false;
    const auto udp = wire::UdpPacket<const std::byte>::check(ip->payload());
    if (!udp || udp->dst_port() != 6666) return false;
    if (!udp->verify_checksum(ip->src(), ip->dst())) ++bad;
    seen.push_back(std::string(as_text(udp->payload())));
    return seen.size() == msgs.size();
  });
  EXPECT_EQ(seen, msgs);
  EXPECT_EQ(bad, 0u) << "datagrams whose checksum does not verify";
  EXPECT_TRUE((*np)->shared().device().segments_udp()) << "the kernel took the segmented transmission";
  EXPECT_EQ((*np)->stats().tx_datagrams.value(), msgs.size());
}

TEST_F(Ipv6OverVeth, KernelSolicitsOurAddressAndItsNeighbourTableHoldsOurMac) {
  Inbox inbox;
  auto np = v6_setup_in(bed.a, v6_client("6666@fd77::5/np0,@::/", &inbox, nullptr));
  ASSERT_TRUE(np) << np.error().message;
  // The solicited-node group of fd77::5 is joined on the interface.
  std::string groups;
  sh(bed.a.exec() + "ip maddr show dev np0", &groups);
  EXPECT_NE(groups.find("link  33:33:ff:00:00:05"), std::string::npos) << groups;

  UdpSocket peer(bed.b, "fd77::2", 5555);
  ASSERT_TRUE(peer.send_to("fd77::5", 6666, as_bytes("who is fd77::5?")));
  ASSERT_TRUE(inbox.wait_for(1)) << (*np)->shared().stats_text();
  EXPECT_EQ(inbox.snapshot()[0], "who is fd77::5?");
  EXPECT_EQ(inbox.infos[0].src_ip.to_string(), "fd77::2");
  EXPECT_EQ(inbox.infos[0].src_port, 5555);
  EXPECT_GE((*np)->shared().stats().nd_adverts_sent.value(), 1u);
  std::string neigh;
  sh("ip -n " + bed.b.name() + " -6 neigh show fd77::5", &neigh);
  EXPECT_NE(neigh.find("lladdr " + bed.a_mac), std::string::npos) << neigh;  // the kernel took our advertisement
  EXPECT_EQ(neigh.find("FAILED"), std::string::npos) << neigh;
}

TEST_F(Ipv6OverVeth, NetpollRecvPrintsTheKernelsDatagrams) {
  TempDir dir("np-recv6");
  const auto out = dir.path() / "out";
  const auto err = dir.path() / "err";
  ASSERT_TRUE(sh_ok(bed.a.exec() + "sh -c \"" + NP_NETPOLL_BIN +
                    " recv --count 2 --timeout 20 '6666@fd77::5/np0,@::/' > " + out.string() + " 2> " + err.string() +
                    " & echo \\$! > " + (dir.path() / "pid").string() + "\""));
  struct Stop {
    std::filesystem::path pid;
    ~Stop() { sh("kill $(cat " + pid.string() + ") 2>/dev/null"); }
  } stop{dir.path() / "pid"};
  for (int i = 0; i < 500 && tools::read_file(err).empty(); ++i) std::this_thread::sleep_for(10ms);
  UdpSocket peer(bed.b, "fd77::2", 5555);
  ASSERT_TRUE(peer.send_to("fd77::5", 6666, as_bytes("first\n")));
  ASSERT_TRUE(peer.send_to("fd77::5", 6666, as_bytes("second")));
  std::string text;
  for (int i = 0; i < 500 && tools::count_of(text = tools::read_file(out), "\n") < 2; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(text, "[fd77::2]:5555 first\n[fd77::2]:5555 second\n") << tools::read_file(err);
}

// Frames made by hand in `b` (a packet socket on np1), each broken in one
// way, to a client on fd77::5 in `a`: each is counted under its reason and
// none reaches the hook; a good one after them does.
TEST_F(Ipv6OverVeth, MalformedFramesAreDroppedAndCountedUnderTheirReasons) {
  // The kernel in b reports its multicast groups (MLD, behind a hop-by-hop
  // header) at random moments after the link came up: kept off the wire
  // here (nftables, b's egress), so that each count below is our frame's.
  ASSERT_TRUE(sh_ok(bed.b.exec() + "nft add table netdev nomld"));
  ASSERT_TRUE(sh_ok(bed.b.exec() + "nft 'add chain netdev nomld out { type filter hook egress device np1 priority 0; }'"));
  ASSERT_TRUE(sh_ok(bed.b.exec() + "nft add rule netdev nomld out ip6 nexthdr 0 drop"));
  Inbox inbox;
  auto np = v6_setup_in(bed.a, v6_client("6666@fd77::5/np0,@::/", &inbox, nullptr));
  ASSERT_TRUE(np) << np.error().message;
  auto raw = open_in(bed.b, "packet:np1");
  ASSERT_TRUE(raw);
  const MacAddr a_mac = *MacAddr::parse(bed.a_mac), b_mac = *MacAddr::parse(bed.b_mac);
  const Ipv6Addr ours = *Ipv6Addr::parse("fd77::5"), peer = *Ipv6Addr::parse("fd77::2");
  const auto frame = [&](const Ipv6Addr& dst, std::string_view payload) {
    std::vector<std::byte> f(62 + payload.size());
    const wire::UdpRepr udp{5555, 6666, as_bytes(payload)};
    auto ip_area = wire::EthernetRepr{b_mac, a_mac, wire::ethertype::kIpv6}.emit(f);
    auto udp_area =
        wire::Ipv6Repr{peer, dst, wire::ip_proto::kUdp, static_cast<std::uint16_t>(udp.buffer_len()), 64}.emit(ip_area);
    udp.emit(udp_area, peer, dst);
    return f;
  };
  const auto ip_of = [](std::vector<std::byte>& f) {
    return wire::Ipv6Packet<std::byte>::new_unchecked(std::span(f).subspan(14));
  };
  struct Case {
    RxDrop reason;
    std::vector<std::byte> frame;
  };
  std::vector<Case> cases;
  {
    auto f = frame(ours, "bad payload length");
    ip_of(f).set_payload_len(200);
    cases.push_back({RxDrop::kIpv6Length, f});
  }
  {
    auto f = frame(ours, "extension header");
    ip_of(f).set_next_header(wire::ip_proto::kIpv6Fragment);
    cases.push_back({RxDrop::kIpv6ExtHeader, f});
  }
  {
    auto f = frame(ours, "zero checksum");
    wire::UdpPacket<std::byte>::new_unchecked(std::span(f).subspan(54)).set_checksum(0);
    cases.push_back({RxDrop::kUdpNoChecksum, f});
  }
  {
    auto f = frame(ours, "bad checksum");
    f.back() ^= std::byte{0x20};
    cases.push_back({RxDrop::kUdpChecksum, f});
  }
  cases.push_back({RxDrop::kNoClient, frame(*Ipv6Addr::parse("fd77::9"), "foreign destination")});
  const SharedDeviceStats& st = (*np)->shared().stats();
  for (const auto& c : cases) {
    const auto before = st.rx_drops.value(c.reason);
    ASSERT_EQ(raw->transmit(c.frame), dev::TxStatus::kOk);
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (st.rx_drops.value(c.reason) == before && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    EXPECT_EQ(st.rx_drops.value(c.reason), before + 1) << to_string(c.reason) << "\n" << (*np)->shared().stats_text();
  }
  ASSERT_EQ(raw->transmit(frame(ours, "good")), dev::TxStatus::kOk);
  ASSERT_TRUE(inbox.wait_for(1));
  EXPECT_EQ(inbox.snapshot(), (std::vector<std::string>{"good"}));
  const std::string json = (*np)->shared().stats_json();
  for (const char* field : {R"("ipv6_length":1)", R"("ipv6_ext_header":1)", R"("udp_no_checksum":1)",
                            R"("udp_checksum":1)"}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << "\n" << json;
  }
}

// a (fd77:1::1) -- r (fd77:1::2 | fd77:2::1, forwarding) -- c (fd77:2::2):
// the target is off-link, so netpoll resolves the gateway the kernel's
// route names and sends the datagram to its MAC.
TEST(Ipv6Routed, OffLinkTargetIsReachedThroughTheGatewayOfTheRoute) {
  Netns a{"a6"}, r{"r6"}, c{"c6"};
  ASSERT_TRUE(sh_ok("ip link add np0 netns " + a.name() + " type veth peer name r0 netns " + r.name()));
  ASSERT_TRUE(sh_ok("ip link add r1 netns " + r.name() + " type veth peer name np1 netns " + c.name()));
  ASSERT_TRUE(sh_ok(a.exec() + "ip -6 addr add fd77:1::1/64 dev np0 nodad"));
  ASSERT_TRUE(sh_ok(r.exec() + "ip -6 addr add fd77:1::2/64 dev r0 nodad"));
  ASSERT_TRUE(sh_ok(r.exec() + "ip -6 addr add fd77:2::1/64 dev r1 nodad"));
  ASSERT_TRUE(sh_ok(c.exec() + "ip -6 addr add fd77:2::2/64 dev np1 nodad"));
  for (const auto& [ns, ifs] : {std::pair{&a, "np0"}, std::pair{&r, "r0 r1"}, std::pair{&c, "np1"}}) {
    ASSERT_TRUE(sh_ok(ns->exec() + "sh -c 'for i in " + ifs + "; do ip link set $i up || exit 1; done'"));
  }
  ASSERT_TRUE(sh_ok(r.exec() + "sysctl -qw net.ipv6.conf.all.forwarding=1"));
  ASSERT_TRUE(sh_ok(a.exec() + "ip -6 route add default via fd77:1::2"));
  ASSERT_TRUE(sh_ok(c.exec() + "ip -6 route add default via fd77:2::1"));
  const std::string router_mac = mac_of(r, "r0");

  UdpSocket far(c, "fd77:2::2", 6666);
  std::vector<std::string> log;
  auto np = v6_setup_in(a, v6_client("6665@/np0,6666@fd77:2::2/", nullptr, &log));
  ASSERT_TRUE(np) << np.error().message;
  EXPECT_TRUE(has_line(log, "netpoll: remote IP fd77:2::2 is off-link: resolving gateway fd77:1::2")) << joined(log);
  EXPECT_TRUE(has_line(log, "netpoll: remote ethernet address " + router_mac +
                                " (neighbour advertisement from fd77:1::2)"))
      << joined(log);
  EXPECT_EQ((*np)->remote_mac().to_string(), router_mac);
  ASSERT_TRUE((*np)->send_udp(as_bytes("through the router")));
  std::string from;
  auto got = far.receive(3000ms, &from);
  ASSERT_TRUE(got) << "nothing arrived through the router";
  EXPECT_EQ(as_text(*got), "through the router");
  EXPECT_EQ(from, "[fd77:1::1]:6665");
}

// The crash of a program under `netpoll run`, witnessed and in-process
// (--no-trace: the preloaded crash path and its own route), reaches
// `netpoll listen` in `b` over IPv6.
TEST_F(Ipv6OverVeth, ACrashUnderNetpollRunArrivesAtNetpollListen) {
  for (const std::string mode : {"", "--no-trace "}) {
    TempDir dir("np-run6");
    tools::Listener listen(bed.b, {}, dir);
    std::string output;
    const int rc = sh(bed.a.exec() + NP_NETPOLL_BIN + " run --quiet " + mode +
                          "'+6665@/np0,6666@fd77::2/' -- sh -c 'echo before the crash; kill -SEGV $$'",
                      &output);
    EXPECT_EQ(rc, 128 + SIGSEGV) << mode << output;
    std::string out;
    for (int i = 0; i < 1000 && (out = listen.out()).find("netpoll run: sh (pid ") == std::string::npos; ++i)
      std::this_thread::sleep_for(10ms);
    listen.stop();
    EXPECT_NE(out.find(" [fd77::1]:6665 "), std::string::npos) << mode << out;
    EXPECT_NE(out.find(" before the crash\n"), std::string::npos) << mode << out;
    EXPECT_NE(out.find(" crashed: SIGSEGV (SI_USER"), std::string::npos) << mode << out << listen.err();
    EXPECT_NE(out.find(") killed by signal 11 (SIGSEGV)"), std::string::npos) << mode << out;
  }
}

// netconsole's reliable mode over IPv6: every line acknowledged by
// `netpoll listen --ack` in `b`, the console exits 0.
TEST_F(Ipv6OverVeth, ReliableConsoleRecordsAreAcknowledgedOverIpv6) {
  TempDir dir("np-rel6");
  tools::Listener listen(bed.b, {"--ack"}, dir);
  std::string output;
  const int rc = sh(bed.a.exec() + "sh -c \"seq 0 49 | sed 's/^/line /' | " + NP_NETPOLL_BIN +
                        " console --reliable --new-stream '+6665@/np0,6666@fd77::2/'\" 2>&1",
                    &output);
  EXPECT_EQ(rc, 0) << output;
  std::string out;
  for (int i = 0; i < 1000 && tools::count_of(out = listen.out(), " line ") < 50; ++i)
    std::this_thread::sleep_for(10ms);
  listen.stop();
  tools::expect_each_once_in_order(out, 50, "line", out + listen.err());
  EXPECT_EQ(output.find("without acknowledgement"), std::string::npos) << output;
}

}  // namespace
}  // namespace np::core
