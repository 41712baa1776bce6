// The AF_XDP backend against the Linux kernel, over a veth pair: what the
// core's own tests cannot show (they run over packet: and xdp: alike, in
// core_test.cpp): that the kernel keeps its networking on an interface
// netpoll holds with xdp:, that the XDP program leaves with the device (and
// one left by a process that died is replaced), every refusal a person can
// act on, and the device's own data path without allocation.
//
// Namespace `a` holds np0 (kernel address 10.77.0.1), `b` holds np1
// (10.77.0.2). 10.77.0.5 is an address only netpoll has.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "alloc_guard.h"
#include "inbox.h"
#include "net_helpers.h"
#include "netns.h"
#include "netpoll/base/bytes.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/dev/open.h"

namespace np::core {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;

SetupResult<std::unique_ptr<Netpoll>> xdp_client(const Netns& ns, const std::string& target, Inbox* inbox) {
  ClientConfig c;
  auto t = parse_targets(target);
  if (!t) return setup_error(t.error().code, t.error().message);
  c.target = t->targets.at(0);
  c.resolve.interval = 200ms;
  if (inbox != nullptr) c.rx_hook = inbox->hook();
  ScopedNetns in(ns);
  return Netpoll::setup(std::move(c));
}

// What `ip link` says of an interface's XDP program ("" when none).
std::string xdp_on(const Netns& ns, const std::string& ifname) {
  std::string out;
  sh("ip -n " + ns.name() + " -d link show " + ifname, &out);
  const auto at = out.find("prog/xdp");
  return at == std::string::npos ? "" : out.substr(at, out.find('\n', at) - at);
}

std::string open_error(const Netns& ns, const std::string& spec) {
  ScopedNetns in(ns);
  auto d = dev::open_device(spec);
  if (d) return "(opened)";
  return d.error().message;
}

// While netpoll holds np0 with xdp: (a client on an address of its own and
// one on the kernel's address), the kernel in the same namespace still
// answers ping, resolves its neighbours and receives its UDP; netpoll gets
// its datagrams and sees none of the kernel's traffic.
TEST(XdpCoexistence, TheKernelKeepsItsNetworkingOnTheInterface) {
  VethBed bed;
  Inbox own, shared_ip;
  auto c1 = xdp_client(bed.a, "6666@10.77.0.5/xdp:np0,@0.0.0.0/", &own);
  ASSERT_TRUE(c1) << c1.error().message;
  auto c2 = xdp_client(bed.a, "6667@10.77.0.1/xdp:np0,@0.0.0.0/", &shared_ip);
  ASSERT_TRUE(c2) << c2.error().message;
  ASSERT_EQ(&(*c1)->shared(), &(*c2)->shared());
  EXPECT_NE(xdp_on(bed.a, bed.a_if), "");

  UdpSocket kernel_side(bed.a, bed.a_ip, 7777);
  UdpSocket peer(bed.b, bed.b_ip, 5555);
  ASSERT_TRUE(sh_ok(bed.a.exec() + "ip neigh flush dev np0"));
  ASSERT_TRUE(sh_ok(bed.b.exec() + "ip neigh flush dev np1"));

  // The peer pings the kernel's address, and the kernel pings the peer
  // (its own ARP request answered to it, not to netpoll).
  std::string out;
  EXPECT_EQ(sh(bed.b.exec() + "ping -c 20 -i 0.01 -W 2 10.77.0.1", &out), 0) << out;
  EXPECT_NE(out.find("20 received"), std::string::npos) << out;
  EXPECT_EQ(sh(bed.a.exec() + "ping -c 3 -i 0.01 -W 2 10.77.0.2", &out), 0) << out;
  EXPECT_NE(out.find("3 received"), std::string::npos) << out;

  // The kernel's UDP, on its address; netpoll's, on both.
  ASSERT_TRUE(peer.send_to("10.77.0.1", 7777, as_bytes("for the kernel")));
  ASSERT_TRUE(peer.send_to("10.77.0.5", 6666, as_bytes("for netpoll alone")));
  ASSERT_TRUE(peer.send_to("10.77.0.1", 6667, as_bytes("for netpoll on the kernel's address")));
  auto got = kernel_side.receive(2000ms);
  ASSERT_TRUE(got);
  EXPECT_EQ(as_text(*got), "for the kernel");
  ASSERT_TRUE(own.wait_for(1));
  ASSERT_TRUE(shared_ip.wait_for(1));
  EXPECT_EQ(own.snapshot(), (std::vector<std::string>{"for netpoll alone"}));
  EXPECT_EQ(shared_ip.snapshot(), (std::vector<std::string>{"for netpoll on the kernel's address"}));

  // netpoll saw its two datagrams, the ARP for 10.77.0.5 and perhaps a
  // later probe of it: none of the 46 ping frames, the kernel's ARP or its
  // datagram; and it dropped nothing.
  const auto& st = (*c1)->shared().stats();
  EXPECT_EQ(st.rx_delivered.value(), 2u);
  EXPECT_EQ(st.rx_drops.total(), 0u) << (*c1)->shared().stats_text();
  EXPECT_LE(st.rx_frames.value(), 5u) << (*c1)->shared().stats_text();
  EXPECT_GE(st.arp_replies_sent.value(), 1u);
  // The kernel learnt 10.77.0.5 from netpoll's reply, and 10.77.0.1 from its own.
  sh("ip -n " + bed.b.name() + " neigh show", &out);
  EXPECT_NE(out.find("10.77.0.5 dev np1 lladdr " + bed.a_mac), std::string::npos) << out;
  EXPECT_NE(out.find("10.77.0.1 dev np1 lladdr " + bed.a_mac), std::string::npos) << out;

  // The last client out takes the program with it.
  c1->reset();
  EXPECT_NE(xdp_on(bed.a, bed.a_if), "") << "a client is still there";
  c2->reset();
  EXPECT_EQ(xdp_on(bed.a, bed.a_if), "");
}

// A client on the kernel's own address (netconsole's default) resolves its
// peer although the kernel holds that address: the answer to netpoll's ARP
// request is netpoll's, the kernel's next one the kernel's.
TEST(XdpCoexistence, ResolvesItsPeerFromTheKernelsAddress) {
  VethBed bed;
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  auto np = xdp_client(bed.a, "6665@/xdp:np0,6666@10.77.0.2/", nullptr);
  ASSERT_TRUE(np) << np.error().message;
  EXPECT_EQ((*np)->remote_mac().to_string(), bed.b_mac);
  ASSERT_TRUE((*np)->send_udp(as_bytes("from the kernel's address")));
  std::string from;
  auto got = peer.receive(2000ms, &from);
  ASSERT_TRUE(got);
  EXPECT_EQ(as_text(*got), "from the kernel's address");
  EXPECT_EQ(from, "10.77.0.1:6665");
  std::string out;
  ASSERT_TRUE(sh_ok(bed.a.exec() + "ip neigh flush dev np0"));
  EXPECT_EQ(sh(bed.a.exec() + "ping -c 2 -i 0.01 -W 2 10.77.0.2", &out), 0) << out;
}

// A client with a device of its own in the same process (netdump's stream,
// the gdb stub, remote commands ask for rx=copy) cannot have a second
// AF_XDP socket on the queue: it takes packet:np0?rx=copy, says so, and
// gets its datagrams (its port is not claimed: the program passes them to
// the kernel's side, where AF_PACKET sees them) while the xdp: client keeps
// getting its own.
TEST(XdpCoexistence, AClientWithADeviceOfItsOwnTakesAfPacket) {
  VethBed bed;
  Inbox main_inbox, own_inbox;
  auto main_client = xdp_client(bed.a, "6666@10.77.0.1/xdp:np0,@0.0.0.0/", &main_inbox);
  ASSERT_TRUE(main_client) << main_client.error().message;
  std::vector<std::string> log;
  ClientConfig c;
  c.target = parse_targets("7000@/xdp:np0,@0.0.0.0/")->targets.at(0);
  c.device.rx_copy = true;
  c.rx_hook = own_inbox.hook();
  c.log = [&log](const std::string& line) { log.push_back(line); };
  Registry own;
  SetupResult<std::unique_ptr<Netpoll>> control = setup_error(Errc::kIo, "not set up");
  {
    ScopedNetns in(bed.a);
    control = Netpoll::setup(std::move(c), own);
  }
  ASSERT_TRUE(control) << control.error().message;
  EXPECT_EQ((*control)->shared().spec().kind, "packet");
  ASSERT_NE((*control)->shared().spec().option("rx"), nullptr);
  EXPECT_EQ(*(*control)->shared().spec().option("rx"), "copy");
  EXPECT_NE(std::find(log.begin(), log.end(),
                      "netpoll: xdp:np0: this client receives on packet:np0?rx=copy (one AF_XDP socket per queue)"),
            log.end());
  UdpSocket peer(bed.b, bed.b_ip, 5555);
  ASSERT_TRUE(peer.send_to("10.77.0.1", 7000, as_bytes("to the control channel")));
  ASSERT_TRUE(peer.send_to("10.77.0.1", 6666, as_bytes("to the xdp client")));
  ASSERT_TRUE(own_inbox.wait_for(1));
  ASSERT_TRUE(main_inbox.wait_for(1));
  std::this_thread::sleep_for(50ms);  // nothing more may arrive
  EXPECT_EQ(own_inbox.snapshot(), (std::vector<std::string>{"to the control channel"}));
  EXPECT_EQ(main_inbox.snapshot(), (std::vector<std::string>{"to the xdp client"}));
}

TEST(XdpDevice, RefusesAQueueOutOfRange) {
  VethBed bed;
  EXPECT_EQ(open_error(bed.a, "xdp:np0?queue=1"),
            "xdp:np0?queue=1: queue 1 is out of range: np0 has 1 receive queue: use queue=0, or packet:np0, which "
            "sees every queue");
  EXPECT_EQ(xdp_on(bed.a, bed.a_if), "") << "nothing is left attached";
}

TEST(XdpDevice, RefusesAnInterfaceWithoutNativeXdp) {
  VethBed bed;
  ASSERT_TRUE(sh_ok(bed.a.exec() + "ip link add npbr0 type bridge"));
  ASSERT_TRUE(sh_ok(bed.a.exec() + "ip link set npbr0 up"));
  EXPECT_EQ(open_error(bed.a, "xdp:npbr0"),
            "xdp:npbr0: npbr0's driver has no native XDP support: use xdp:npbr0?mode=skb (the kernel's generic XDP, "
            "slower than AF_PACKET) or packet:npbr0");
}

TEST(XdpDevice, WithoutPrivilegeSaysWhatIsMissingAndTheFallback) {
  VethBed bed;
  const auto error = open_error_without(CAP_NET_RAW, "xdp:np0", &bed.a);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, Errc::kPermission);
  EXPECT_EQ(error->message,
            "xdp:np0: AF_XDP needs CAP_NET_RAW, CAP_BPF and CAP_NET_ADMIN (run as root), or use packet:np0 "
            "(CAP_NET_RAW only)");
}

// Someone else's program, attached the classic way (a netlink attach, as
// `ip link set dev X xdp obj ...` does): netpoll's cannot run beside it.
TEST(XdpDevice, RefusesAnInterfaceWithSomeoneElsesProgram) {
  VethBed bed;
  // return XDP_PASS: r0 = 2; exit
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  const int prog = ::bpf_prog_load(BPF_PROG_TYPE_XDP, "other_prog", "GPL", insns, 2, nullptr);
  ASSERT_GE(prog, 0) << std::strerror(errno);
  int ifindex = 0;
  {
    ScopedNetns in(bed.a);
    ifindex = static_cast<int>(::if_nametoindex("np0"));
    ASSERT_EQ(::bpf_xdp_attach(ifindex, prog, XDP_FLAGS_DRV_MODE, nullptr), 0) << std::strerror(errno);
  }
  bpf_prog_info info{};
  __u32 len = sizeof info;
  ASSERT_EQ(::bpf_obj_get_info_by_fd(prog, &info, &len), 0);
  EXPECT_EQ(open_error(bed.a, "xdp:np0"),
            "xdp:np0: an XDP program (id " + std::to_string(info.id) +
                ", \"other_prog\") is already attached to np0, not through libxdp's dispatcher, so netpoll's cannot "
                "run beside it: detach it (ip link set dev np0 xdp off) if it is not needed, or use packet:np0");
  EXPECT_NE(xdp_on(bed.a, bed.a_if).find("id " + std::to_string(info.id)), std::string::npos) << "left in place";
  {
    ScopedNetns in(bed.a);
    EXPECT_EQ(::bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, nullptr), 0);
  }
  ::close(prog);
}

TEST(XdpDevice, RefusesASecondDeviceOnTheInterface) {
  VethBed bed;
  auto first = open_in(bed.a, "xdp:np0");
  ASSERT_NE(first, nullptr);
  const std::string error = open_error(bed.a, "xdp:np0?frames=128");
  // "...(id N) is already on np0, ...": N is the kernel's, so the text around it.
  const std::string head = "xdp:np0?frames=128: netpoll's XDP program (id ";
  const std::string tail =
      ") is already on np0, loaded by another xdp: device of this process: one netpoll process per interface "
      "(libxdp's dispatcher, which lets programs share an interface, needs bpffs at /sys/fs/bpf); use packet:np0 here";
  EXPECT_EQ(error.substr(0, head.size()), head) << error;
  ASSERT_GT(error.size(), head.size() + tail.size()) << error;
  EXPECT_EQ(error.substr(error.size() - tail.size()), tail) << error;
  EXPECT_EQ(error.substr(head.size(), error.size() - head.size() - tail.size()).find_first_not_of("0123456789"),
            std::string::npos)
      << error;
  // The first is untouched and still works.
  EXPECT_NE(xdp_on(bed.a, bed.a_if), "");
  first.reset();
  EXPECT_EQ(xdp_on(bed.a, bed.a_if), "");
}

// A netpoll process killed while it held the interface leaves its program
// attached (the kernel keeps an XDP program until it is detached); it
// passes everything to the kernel meanwhile (its socket is gone), and the
// next netpoll replaces it.
TEST(XdpDevice, ReplacesAProgramLeftByAProcessThatDied) {
  VethBed bed;
  std::string out;
  const int status = sh(bed.a.exec() + "sh -c '" + NP_NETPOLL_BIN +
                            " recv 6666@10.77.0.5/xdp:np0,@0.0.0.0/ & sleep 2; kill -KILL $!; wait $!'",
                        &out);
  EXPECT_EQ(status, 128 + 9) << out;
  const std::string left = xdp_on(bed.a, bed.a_if);
  ASSERT_NE(left, "") << "the killed process's program is still attached";
  // Meanwhile the kernel's networking works.
  EXPECT_EQ(sh(bed.b.exec() + "ping -c 2 -i 0.01 -W 2 10.77.0.1", &out), 0) << out;

  Inbox inbox;
  auto np = xdp_client(bed.a, "6666@10.77.0.5/xdp:np0,@0.0.0.0/", &inbox);
  ASSERT_TRUE(np) << np.error().message;
  EXPECT_NE(xdp_on(bed.a, bed.a_if), left) << "a program of its own";
  UdpSocket peer(bed.b, bed.b_ip, 5555);
  ASSERT_TRUE(peer.send_to("10.77.0.5", 6666, as_bytes("after the replacement")));
  ASSERT_TRUE(inbox.wait_for(1));
  EXPECT_EQ(inbox.snapshot(), (std::vector<std::string>{"after the replacement"}));
}

// The device alone, every frame of the queue its own (redirect=all):
// transmit and receive without one allocation, frames intact both ways.
TEST(XdpDevice, DataPathAllocatesNothing) {
  VethBed bed;
  auto dev = open_in(bed.a, "xdp:np0?redirect=all");
  ASSERT_NE(dev, nullptr);
  UdpSocket peer(bed.b, bed.b_ip, 6666);
  ASSERT_TRUE(sh_ok("ip -n " + bed.b.name() + " neigh replace 10.77.0.1 lladdr " + bed.a_mac + " dev np1"));
  const Endpoint ours{*MacAddr::parse(bed.a_mac), Ipv4Addr(10, 77, 0, 1), 6665};
  const Endpoint theirs{*MacAddr::parse(bed.b_mac), Ipv4Addr(10, 77, 0, 2), 6666};
  const auto frame = udp_frame(ours, theirs, as_bytes("through AF_XDP"));
  constexpr int kFrames = 100;
  for (int i = 0; i < kFrames; ++i) ASSERT_TRUE(peer.send_to("10.77.0.1", 6665, as_bytes("to AF_XDP")));

  int sent = 0, received = 0, intact = 0;
  AllocGuard guard;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while ((sent < kFrames || intact < kFrames) && std::chrono::steady_clock::now() < until) {
    if (sent < kFrames && dev->transmit(frame) == dev::TxStatus::kOk) ++sent;
    dev->poll();
    dev->receive(16, [&](std::span<const std::byte> f) {
      ++received;
      const std::string_view text(reinterpret_cast<const char*>(f.data()), f.size());
      if (f.size() == 14 + 20 + 8 + 9 && text.substr(42) == "to AF_XDP") ++intact;
    });
  }
  const auto allocations = guard.stop();
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(sent, kFrames);
  EXPECT_EQ(intact, kFrames);
  EXPECT_GE(received, kFrames);  // and whatever else the peer sent (IPv6 neighbour discovery)
  int arrived = 0;
  while (auto got = peer.receive(300ms)) arrived += as_text(*got) == "through AF_XDP";
  EXPECT_EQ(arrived, kFrames);
  EXPECT_EQ(dev->stats().rx_dropped.value(), 0u);
}

}  // namespace
}  // namespace np::core
