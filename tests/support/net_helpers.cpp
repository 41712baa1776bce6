#include "net_helpers.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "netpoll/dev/open.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/netconsole.h"
#include "netpoll/wire/udp.h"

namespace np::testing {

using namespace std::chrono_literals;

namespace {

// An IPv4 address, or IPv6 when it has a ':'.
struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&ss); }
};

SockAddr socket_addr(const std::string& ip, std::uint16_t port) {
  SockAddr a;
  if (ip.find(':') != std::string::npos) {
    auto& sa = reinterpret_cast<sockaddr_in6&>(a.ss);
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    ::inet_pton(AF_INET6, ip.c_str(), &sa.sin6_addr);
    a.len = sizeof sa;
  } else {
    auto& sa = reinterpret_cast<sockaddr_in&>(a.ss);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
    a.len = sizeof sa;
  }
  return a;
}

}  // namespace

std::vector<std::byte> udp_frame(const Endpoint& src, const Endpoint& dst, std::span<const std::byte> payload,
                                 std::uint16_t ident) {
  const wire::UdpRepr udp{src.port, dst.port, payload};
  wire::Ipv4Repr ip;
  ip.src = src.ip;
  ip.dst = dst.ip;
  ip.protocol = wire::ip_proto::kUdp;
  ip.payload_len = static_cast<std::uint16_t>(udp.buffer_len());
  ip.ident = ident;
  const wire::EthernetRepr eth{src.mac, dst.mac, wire::ethertype::kIpv4};
  // Emitted into a dirty buffer: every byte must be written by emit().
  std::vector<std::byte> frame(wire::EthernetRepr::header_len() + ip.buffer_len(), std::byte{0xa5});
  udp.emit(ip.emit(eth.emit(frame)), ip.src, ip.dst);
  return frame;
}

Result<Udp> parse_udp(std::span<const std::byte> frame) {
  auto eth = wire::EthernetFrame<const std::byte>::check(frame);
  if (!eth) return fail(eth.error());
  auto er = wire::EthernetRepr::parse(*eth);
  if (!er || er->ethertype != wire::ethertype::kIpv4) return fail(Errc::kUnsupported);
  auto ip = wire::Ipv4Packet<const std::byte>::check(eth->payload());
  if (!ip) return fail(ip.error());
  auto ir = wire::Ipv4Repr::parse(*ip);
  if (!ir) return fail(ir.error());
  if (ir->protocol != wire::ip_proto::kUdp) return fail(Errc::kUnsupported);
  auto up = wire::UdpPacket<const std::byte>::check(ip->payload());
  if (!up) return fail(up.error());
  auto ur = wire::UdpRepr::parse(*up, ir->src, ir->dst);
  if (!ur) return fail(ur.error());
  return Udp{er->src, er->dst, ir->src, ir->dst, ur->src_port, ur->dst_port, up->checksum(),
             std::vector<std::byte>(ur->payload.begin(), ur->payload.end())};
}

UdpSocket::UdpSocket(const Netns& ns, const std::string& ip, std::uint16_t port) {
  ScopedNetns in(ns);
  SockAddr sa = socket_addr(ip, port);
  fd_ = ::socket(sa.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  // Room for thousands of small datagrams: tests often read only after a
  // burst is over, and a full buffer would drop what they look for.
  const int bytes = 64 << 20;
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes);
  if (fd_ < 0 || ::bind(fd_, sa.get(), sa.len) != 0) {
    ADD_FAILURE() << "cannot bind UDP socket to " << ip << ":" << port << " in " << ns.name() << ": "
                  << std::strerror(errno);
  }
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) ::close(fd_);
}

bool UdpSocket::send_to(const std::string& ip, std::uint16_t port, std::span<const std::byte> data) const {
  SockAddr sa = socket_addr(ip, port);
  return ::sendto(fd_, data.data(), data.size(), 0, sa.get(), sa.len) == static_cast<ssize_t>(data.size());
}

std::optional<std::vector<std::byte>> UdpSocket::receive(std::chrono::milliseconds timeout, std::string* from) const {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
  std::vector<std::byte> buf(65536);
  SockAddr sa;
  sa.len = sizeof sa.ss;
  const ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT, sa.get(), &sa.len);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<std::size_t>(n));
  if (from != nullptr) {
    char text[INET6_ADDRSTRLEN] = {};
    if (sa.ss.ss_family == AF_INET6) {
      const auto& s6 = reinterpret_cast<const sockaddr_in6&>(sa.ss);
      ::inet_ntop(AF_INET6, &s6.sin6_addr, text, sizeof text);
      *from = "[" + std::string(text) + "]:" + std::to_string(ntohs(s6.sin6_port));
    } else {
      const auto& s4 = reinterpret_cast<const sockaddr_in&>(sa.ss);
      ::inet_ntop(AF_INET, &s4.sin_addr, text, sizeof text);
      *from = std::string(text) + ":" + std::to_string(ntohs(s4.sin_port));
    }
  }
  return buf;
}

bool receive_until(dev::Device& dev, std::chrono::milliseconds timeout,
                   const std::function<bool(std::span<const std::byte>)>& on_frame) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool done = false;
  for (;;) {
    dev.receive(16, [&](std::span<const std::byte> f) {
      if (!done && on_frame(f)) done = true;
    });
    if (done) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) return false;
    pollfd p{dev.fd(), POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count())));
  }
}

UdpReceipt receive_udp(dev::Device& dev, std::uint16_t dst_port, std::chrono::milliseconds timeout,
                       const Endpoint* arp_as) {
  UdpReceipt r;
  receive_until(dev, timeout, [&](std::span<const std::byte> f) {
    if (arp_as != nullptr) {
      if (auto req = arp_request_for(f, arp_as->ip)) {
        EXPECT_EQ(dev.transmit(arp_reply(*req, arp_as->mac)), dev::TxStatus::kOk);
        return false;
      }
    }
    auto udp = parse_udp(f);
    if (!udp) {
      if (udp.error() != Errc::kUnsupported) r.broken.push_back(udp.error());
      return false;
    }
    if (udp->dst_port != dst_port) return false;
    r.udp = std::move(*udp);
    return true;
  });
  return r;
}

bool wait_link(const dev::Device& dev, bool usable, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (dev.link().usable() != usable) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);  // no descriptor reports link changes to us
  }
  return true;
}

bool drop_effective_capability(int cap) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &hdr, data) != 0) return false;
  data[cap / 32].effective &= ~(1u << (cap % 32));
  return ::syscall(SYS_capset, &hdr, data) == 0;
}

std::unique_ptr<dev::Device> open_in(const Netns& ns, const std::string& spec) {
  ScopedNetns in(ns);
  auto dev = dev::open_device(spec);
  if (!dev) {
    ADD_FAILURE() << spec << ": " << dev.error().message;
    return nullptr;
  }
  return std::move(*dev);
}

std::optional<Error> open_error_without(int cap, const std::string& spec, const Netns* ns) {
  std::optional<Error> error;
  bool dropped = false;
  bool opened = false;
  std::thread t([&] {
    std::optional<ScopedNetns> in;
    if (ns != nullptr) in.emplace(*ns);  // before dropping: entering needs CAP_SYS_ADMIN
    dropped = drop_effective_capability(cap);
    if (!dropped) return;
    auto dev = dev::open_device(spec);
    opened = dev.has_value();
    if (!dev) error = dev.error();
  });
  t.join();
  if (!dropped) ADD_FAILURE() << "cannot drop capability " << cap;
  if (opened) ADD_FAILURE() << spec << " opened without capability " << cap;
  return error;
}

std::optional<wire::ArpRepr> arp_request_for(std::span<const std::byte> frame, const Ipv4Addr& ip) {
  auto eth = wire::EthernetFrame<const std::byte>::check(frame);
  if (!eth || eth->ethertype() != wire::ethertype::kArp) return std::nullopt;
  auto pkt = wire::ArpPacket<const std::byte>::check(eth->payload());
  if (!pkt) return std::nullopt;
  auto arp = wire::ArpRepr::parse(*pkt);
  if (!arp || arp->op != wire::ArpOp::kRequest || arp->target_ip != ip) return std::nullopt;
  return *arp;
}

std::vector<std::byte> arp_reply(const wire::ArpRepr& request, const MacAddr& our_mac) {
  const wire::ArpRepr reply{wire::ArpOp::kReply, our_mac, request.target_ip, request.source_mac, request.source_ip};
  const wire::EthernetRepr eth{our_mac, request.source_mac, wire::ethertype::kArp};
  std::vector<std::byte> frame(wire::EthernetRepr::header_len() + wire::ArpRepr::kLen, std::byte{0xa5});
  reply.emit(eth.emit(frame));
  return frame;
}

bool interface_exists(const Netns& ns, const std::string& ifname) {
  std::string out;
  return sh("ip -n " + ns.name() + " link show dev " + ifname, &out) == 0;
}

std::map<std::uint64_t, ConsoleRecord> collect_records(const UdpSocket& sock, std::chrono::milliseconds quiet) {
  std::vector<std::string> datagrams;
  while (auto d = sock.receive(quiet)) datagrams.emplace_back(reinterpret_cast<const char*>(d->data()), d->size());
  return parse_records(datagrams);
}

std::map<std::uint64_t, ConsoleRecord> parse_records(const std::vector<std::string>& datagrams) {
  namespace nc = wire::netconsole;
  std::map<std::uint64_t, std::string> bodies;
  std::map<std::uint64_t, ConsoleRecord> out;
  for (const std::string& datagram : datagrams) {
    auto p = nc::parse_extended(datagram);
    EXPECT_TRUE(p) << datagram;
    if (!p) continue;
    auto& body = bodies[p->seq];
    if (!p->fragmented || p->frag_offset == 0) {
      ConsoleRecord& r = out[p->seq];
      r.level = p->level;
      r.facility = p->facility;
      r.continuation = p->continuation;
      r.follows = p->follows;
      r.emergency = p->emergency;
    }
    if (body.size() < p->frag_offset + p->body.size()) body.resize(p->frag_offset + p->body.size());
    body.replace(p->frag_offset, p->body.size(), p->body);
  }
  for (auto& [seq, body] : bodies) {
    std::string raw(body.size(), '\0');
    raw.resize(nc::unescape(body, raw));
    if (!raw.empty() && raw.back() == '\n') raw.pop_back();
    out[seq].text = raw;
  }
  return out;
}

DatagramCollector::DatagramCollector(const UdpSocket& sock) : sock_(sock) {
  reader_ = std::thread([this] {
    while (!stop_.load(std::memory_order_acquire)) {
      if (auto d = sock_.receive(std::chrono::milliseconds(20)))
        got_.emplace_back(reinterpret_cast<const char*>(d->data()), d->size());
    }
  });
}

DatagramCollector::~DatagramCollector() {
  stop_.store(true, std::memory_order_release);
  if (reader_.joinable()) reader_.join();
}

std::vector<std::string> DatagramCollector::finish(std::chrono::milliseconds quiet) {
  stop_.store(true, std::memory_order_release);
  if (reader_.joinable()) reader_.join();
  while (auto d = sock_.receive(quiet)) got_.emplace_back(reinterpret_cast<const char*>(d->data()), d->size());
  return std::move(got_);
}

}  // namespace np::testing
