#include "netpoll/core/netlink.h"

#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <vector>

namespace np::core::netlink {
namespace {

class Socket {
 public:
  Socket() : fd_(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// A request under construction: header, family message, attributes.
class Request {
 public:
  Request(std::uint16_t type, std::uint16_t flags, const void* body, std::size_t body_len) {
    buf_.resize(NLMSG_LENGTH(body_len));
    auto* h = reinterpret_cast<nlmsghdr*>(buf_.data());
    h->nlmsg_len = static_cast<std::uint32_t>(buf_.size());
    h->nlmsg_type = type;
    h->nlmsg_flags = static_cast<std::uint16_t>(flags | NLM_F_REQUEST);
    h->nlmsg_seq = 1;
    std::memcpy(NLMSG_DATA(h), body, body_len);
  }
  void attr(std::uint16_t type, const void* data, std::size_t len) {
    const std::size_t at = NLMSG_ALIGN(buf_.size());
    buf_.resize(at + RTA_SPACE(len));
    auto* a = reinterpret_cast<rtattr*>(buf_.data() + at);
    a->rta_type = type;
    a->rta_len = static_cast<std::uint16_t>(RTA_LENGTH(len));
    std::memcpy(RTA_DATA(a), data, len);
    reinterpret_cast<nlmsghdr*>(buf_.data())->nlmsg_len = static_cast<std::uint32_t>(buf_.size());
  }
  const std::vector<char>& bytes() const { return buf_; }

 private:
  std::vector<char> buf_;
};

// Sends `req` and calls `on_msg` for each reply message until the answer is
// complete. Returns 0 or a positive errno.
int transact(const Request& req, const std::function<void(const nlmsghdr*)>& on_msg) {
  Socket s;
  if (s.fd() < 0) return errno;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(s.fd(), req.bytes().data(), req.bytes().size(), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) < 0)
    return errno;
  const bool dump = (reinterpret_cast<const nlmsghdr*>(req.bytes().data())->nlmsg_flags & NLM_F_DUMP) != 0;
  std::vector<char> buf(32768);
  for (;;) {
    const ssize_t n = ::recv(s.fd(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    auto len = static_cast<unsigned>(n);
    for (auto* h = reinterpret_cast<const nlmsghdr*>(buf.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        return e->error == 0 ? 0 : -e->error;  // 0 is the ACK of a request
      }
      on_msg(h);
      if (!dump) return 0;
    }
  }
}

LinkInfo parse_link(const nlmsghdr* h) {
  LinkInfo info;
  const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
  info.ifindex = ifi->ifi_index;
  info.flags = ifi->ifi_flags;
  int len = static_cast<int>(IFLA_PAYLOAD(h));
  for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    switch (a->rta_type) {
      case IFLA_IFNAME: info.name = static_cast<const char*>(RTA_DATA(a)); break;
      case IFLA_MTU: std::memcpy(&info.mtu, RTA_DATA(a), sizeof info.mtu); break;
      case IFLA_MASTER: std::memcpy(&info.master, RTA_DATA(a), sizeof info.master); break;
      case IFLA_ADDRESS:
        if (RTA_PAYLOAD(a) == MacAddr::kLen)
          info.mac = MacAddr::from_bytes(std::span(static_cast<const std::byte*>(RTA_DATA(a)), MacAddr::kLen));
        break;
      default: break;
    }
  }
  return info;
}

SetupResult<std::vector<LinkInfo>> all_links() {
  ifinfomsg body{};
  body.ifi_family = AF_UNSPEC;
  Request req(RTM_GETLINK, NLM_F_DUMP, &body, sizeof body);
  std::vector<LinkInfo> out;
  const int err = transact(req, [&](const nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK) out.push_back(parse_link(h));
  });
  if (err != 0) return setup_error(Errc::kIo, std::string("cannot list interfaces: ") + std::strerror(err));
  return out;
}

}  // namespace

bool LinkInfo::up() const { return (flags & IFF_UP) != 0; }
bool LinkInfo::carrier() const { return (flags & IFF_LOWER_UP) != 0; }

SetupResult<LinkInfo> link_by_index(int ifindex) {
  ifinfomsg body{};
  body.ifi_family = AF_UNSPEC;
  body.ifi_index = ifindex;
  Request req(RTM_GETLINK, 0, &body, sizeof body);
  std::optional<LinkInfo> out;
  const int err = transact(req, [&](const nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK) out = parse_link(h);
  });
  if (err == ENODEV || (err == 0 && !out)) {
    return setup_error(Errc::kNoSuchDevice, "no interface with index " + std::to_string(ifindex));
  }
  if (err != 0) return setup_error(Errc::kIo, std::string("cannot query interface: ") + std::strerror(err));
  return *out;
}

SetupResult<LinkInfo> link_by_name(const std::string& name) {
  auto links = all_links();
  if (!links) return std::unexpected(links.error());
  for (auto& l : *links) {
    if (l.name == name) return l;
  }
  return setup_error(Errc::kNoSuchDevice, "no such interface: " + name);
}

SetupResult<LinkInfo> link_by_mac(const MacAddr& mac) {
  auto links = all_links();
  if (!links) return std::unexpected(links.error());
  for (auto& l : *links) {
    if (l.mac == mac) return l;
  }
  return setup_error(Errc::kNoSuchDevice, "no interface has MAC address " + mac.to_string());
}

SetupResult<void> set_link_up(int ifindex) {
  ifinfomsg body{};
  body.ifi_family = AF_UNSPEC;
  body.ifi_index = ifindex;
  body.ifi_flags = IFF_UP;
  body.ifi_change = IFF_UP;
  Request req(RTM_NEWLINK, NLM_F_ACK, &body, sizeof body);
  const int err = transact(req, [](const nlmsghdr*) {});
  if (err == EPERM) return setup_error(Errc::kPermission, "bringing an interface up needs CAP_NET_ADMIN");
  if (err != 0) return setup_error(Errc::kIo, std::string("cannot bring the interface up: ") + std::strerror(err));
  return {};
}

namespace {

// Calls `on_addr(ifa, local)` for each address of `family` on `ifindex`, in
// the kernel's order, until it returns true. `local` is the interface's own
// address (IFA_LOCAL; IFA_ADDRESS is the peer's on point-to-point links,
// and the only one IPv6 gives).
template <class F>
void each_address(int ifindex, unsigned char family, F&& on_addr) {
  ifaddrmsg body{};
  body.ifa_family = family;
  Request req(RTM_GETADDR, NLM_F_DUMP, &body, sizeof body);
  bool done = false;
  const std::size_t len = family == AF_INET ? Ipv4Addr::kLen : Ipv6Addr::kLen;
  transact(req, [&](const nlmsghdr* h) {
    if (done || h->nlmsg_type != RTM_NEWADDR) return;
    const auto* ifa = static_cast<const ifaddrmsg*>(NLMSG_DATA(h));
    if (static_cast<int>(ifa->ifa_index) != ifindex || ifa->ifa_family != family) return;
    int alen = static_cast<int>(IFA_PAYLOAD(h));
    const std::byte* local = nullptr;
    const std::byte* address = nullptr;
    for (auto* a = IFA_RTA(ifa); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
      if (RTA_PAYLOAD(a) != len) continue;
      if (a->rta_type == IFA_LOCAL) local = static_cast<const std::byte*>(RTA_DATA(a));
      if (a->rta_type == IFA_ADDRESS) address = static_cast<const std::byte*>(RTA_DATA(a));
    }
    const std::byte* own = local != nullptr ? local : address;
    if (own != nullptr) done = on_addr(std::span(own, len));
  });
}

}  // namespace

std::optional<Ipv4Addr> first_ipv4(int ifindex) {
  std::optional<Ipv4Addr> out;
  each_address(ifindex, AF_INET, [&](std::span<const std::byte> b) {
    out = Ipv4Addr::from_bytes(b);
    return true;
  });
  return out;
}

std::optional<Ipv6Addr> first_ipv6(int ifindex, bool link_local) {
  std::optional<Ipv6Addr> out;
  each_address(ifindex, AF_INET6, [&](std::span<const std::byte> b) {
    const auto a = Ipv6Addr::from_bytes(b);
    if (a.is_link_local() != link_local) return false;
    out = a;
    return true;
  });
  return out;
}

SetupResult<Route> route_to(const IpAddr& dst, int oif) {
  const std::size_t addr_len = dst.bytes().size();
  rtmsg body{};
  body.rtm_family = dst.is_v4() ? AF_INET : AF_INET6;
  body.rtm_dst_len = static_cast<unsigned char>(8 * addr_len);
  Request req(RTM_GETROUTE, 0, &body, sizeof body);
  req.attr(RTA_DST, dst.bytes().data(), addr_len);
  if (oif != 0) req.attr(RTA_OIF, &oif, sizeof oif);
  const auto address = [&](std::span<const std::byte> b) -> IpAddr {
    if (dst.is_v4()) return Ipv4Addr::from_bytes(b);
    return Ipv6Addr::from_bytes(b);
  };
  std::optional<Route> out;
  const int err = transact(req, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWROUTE) return;
    Route r;
    const auto* rt = static_cast<const rtmsg*>(NLMSG_DATA(h));
    int len = static_cast<int>(RTM_PAYLOAD(h));
    for (auto* a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      const auto* data = static_cast<const std::byte*>(RTA_DATA(a));
      switch (a->rta_type) {
        case RTA_OIF: std::memcpy(&r.oif, data, sizeof r.oif); break;
        case RTA_GATEWAY:
          if (RTA_PAYLOAD(a) == addr_len) r.gateway = address(std::span(data, addr_len));
          break;
        case RTA_PREFSRC:
          if (RTA_PAYLOAD(a) == addr_len) r.prefsrc = address(std::span(data, addr_len));
          break;
        default: break;
      }
    }
    out = r;
  });
  if (err == ENETUNREACH || err == EHOSTUNREACH || (err == 0 && !out)) {
    return setup_error(Errc::kNotFound, "no route to " + dst.to_string());
  }
  if (err != 0) return setup_error(Errc::kIo, "cannot look up the route to " + dst.to_string() + ": " + std::strerror(err));
  return *out;
}

}  // namespace np::core::netlink
