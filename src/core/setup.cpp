// netpoll_setup: from a target to a client attached to its shared device
// (the device named, chosen by MAC or by the route to the target; the
// interface brought up; the local address; the remote MAC), and the
// Registry that shares devices among a process's clients.
#include <chrono>
#include <thread>

#include "netpoll/core/netlink.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/dev/open.h"
#include "netpoll/wire/ipv6.h"

namespace np::core {

// ---------------------------------------------------------------------------
// Registry

Registry& Registry::process() {
  static Registry r;
  return r;
}

SetupResult<std::shared_ptr<SharedDevice>> Registry::acquire(const dev::DeviceSpec& spec, const DeviceConfig& cfg) {
  std::lock_guard lock(mu_);
  if (auto it = devices_.find(spec.text); it != devices_.end()) {
    if (auto d = it->second.lock()) return d;
    devices_.erase(it);
  }
  if (cfg.pool_frames == 0 || cfg.pool_frames > 4096)
    return setup_error(Errc::kInvalidArgument, "pool_frames must be 1..4096");
  if (cfg.deferred_limit == 0 || cfg.deferred_limit > cfg.pool_frames)
    return setup_error(Errc::kInvalidArgument, "deferred_limit must be 1..pool_frames");
  auto dev = dev::open_device(spec);
  if (!dev) return std::unexpected(dev.error());
  std::shared_ptr<SharedDevice> d(new SharedDevice(spec, std::move(*dev), cfg));
  if (cfg.service_thread) d->start_service_thread();
  devices_[spec.text] = d;
  return d;
}

// ---------------------------------------------------------------------------
// Netpoll::setup

SetupResult<std::unique_ptr<Netpoll>> Netpoll::setup(ClientConfig cfg, Registry& registry) {
  std::unique_ptr<Netpoll> np(new Netpoll(std::move(cfg)));
  TargetOptions& t = np->cfg_.target;
  const std::string& name = np->cfg_.name;
  const auto fail_with = [&](Errc code, const std::string& msg) { return setup_error(code, name + ": " + msg); };
  if (!settle_family(t))
    return fail_with(Errc::kInvalidArgument, "the local IP " + t.local_ip.to_string() + " and the remote IP " +
                                                 t.remote_ip.to_string() + " are of different families");

  // Which device: as given, an interface chosen by its MAC, or the one the
  // kernel routes the target through.
  std::string devtext = t.device;
  if (devtext.empty()) {
    if (t.remote_ip.is_unspecified()) return fail_with(Errc::kInvalidArgument, "no device given and no target IP to route to");
    auto route = netlink::route_to(t.remote_ip);
    if (!route) return fail_with(route.error().code, route.error().message + " (and no device given)");
    auto link = netlink::link_by_index(route->oif);
    if (!link) return fail_with(link.error().code, link.error().message);
    devtext = link->name;
    np->log("no device given: using " + devtext + ", the route to " + t.remote_ip.to_string());
  } else if (auto mac = MacAddr::parse(devtext)) {
    auto link = netlink::link_by_mac(*mac);
    if (!link) return fail_with(link.error().code, link.error().message);
    devtext = link->name;
  }
  auto spec = dev::parse_device_spec(devtext);
  if (!spec) return fail_with(spec.error().code, spec.error().message);
  if (spec->kind == "xdp" && np->cfg_.device.rx_copy) {
    // A client that waits on a few short answers (netdump's stream, the
    // gdb stub, remote commands) has a device of its own, beside the one
    // the process's other clients share; an interface queue takes one
    // AF_XDP socket, so it takes the kernel's side of the XDP program
    // instead: AF_PACKET sees whatever the program passes on, and its port
    // is not one the program steers away.
    np->log(spec->text + ": this client receives on packet:" + spec->target + "?rx=copy (one AF_XDP socket per queue)");
    auto packet = dev::parse_device_spec("packet:" + spec->target);
    if (!packet) return fail_with(packet.error().code, packet.error().message);
    spec = std::move(packet);
  }
  const bool kernel_if = spec->kind == "packet" || spec->kind == "xdp";
  t.device = spec->kind == "packet" ? spec->target : spec->text;

  int ifindex = 0;
  if (kernel_if) {
    auto link = netlink::link_by_name(spec->target);
    if (!link) return fail_with(Errc::kNoSuchDevice, spec->target + " doesn't exist, aborting");
    ifindex = link->ifindex;
    if (link->master != 0) return fail_with(Errc::kExists, spec->target + " is a slave device, aborting");
    if (!link->up()) {
      if (!np->cfg_.device.bring_up) return fail_with(Errc::kLinkDown, spec->target + " is down");
      np->log("device " + spec->target + " not up yet, forcing it");
      if (auto up = netlink::set_link_up(ifindex); !up)
        return fail_with(up.error().code, "failed to open " + spec->target + ": " + up.error().message);
      const auto deadline = std::chrono::steady_clock::now() + np->cfg_.device.carrier_timeout;
      for (;;) {
        auto l = netlink::link_by_index(ifindex);
        if (l && l->carrier()) break;
        if (std::chrono::steady_clock::now() >= deadline) {
          np->log("timeout waiting for carrier");
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    if (t.local_ip.is_unspecified() && t.local_ip.is_v4()) {
      auto ip = netlink::first_ipv4(ifindex);
      if (!ip) return fail_with(Errc::kNoAddress, "no IP address for " + spec->target + ", aborting");
      t.local_ip = *ip;
      np->log("local IP " + ip->to_string());
    } else if (t.local_ip.is_unspecified()) {
      // Linux's choice: an address of the remote's scope (link-local for a
      // link-local peer; else the first that is not, a global one).
      auto ip = netlink::first_ipv6(ifindex, t.remote_ip.v6().is_link_local());
      if (!ip) return fail_with(Errc::kNoAddress, "no IPv6 address for " + spec->target + ", aborting");
      t.local_ip = *ip;
      np->log("local IPv6 " + ip->to_string());
    }
  } else if (t.local_ip.is_unspecified()) {
    const bool v6 = t.local_ip.is_v6();
    return fail_with(Errc::kNoAddress, spec->text +
                                           " has no kernel interface to take an address from: give the local "
                                           "IP in the target, e.g. 6665@" + (v6 ? "fd00::1" : "10.0.0.1") + "/" +
                                           spec->text + ",6666@" + (v6 ? "fd00::2" : "10.0.0.2") + "/");
  }

  if (spec->kind == "packet") {
    // The client's ring geometry, unless the device string names its own.
    const auto suggest = [&](const char* key, std::size_t value) {
      if (value != 0 && spec->option(key) == nullptr) spec->options.emplace_back(key, std::to_string(value));
    };
    suggest("rx_block_size", np->cfg_.device.rx_block_size);
    suggest("rx_blocks", np->cfg_.device.rx_blocks);
    if (np->cfg_.device.rx_copy && spec->option("rx") == nullptr) spec->options.emplace_back("rx", "copy");
  }
  auto dev = registry.acquire(*spec, np->cfg_.device);
  if (!dev) return fail_with(dev.error().code, dev.error().message);
  np->dev_ = std::move(*dev);

  // Neighbour solicitations for our address go to its solicited-node group
  // (RFC 4861 section 7.2.1): a NIC that filters multicast must pass it.
  if (t.local_ip.is_v6() && !t.local_ip.is_unspecified()) {
    const MacAddr group = wire::ipv6_multicast_mac(t.local_ip.v6().solicited_node());
    if (auto joined = np->dev_->device().join_multicast(group); !joined)
      return fail_with(joined.error(), "cannot receive " + group.to_string() + " (the solicited-node group of " +
                                           t.local_ip.to_string() + ") on " + spec->text + ": " +
                                           to_string(joined.error()));
  }
  // What this client takes from the wire, before it asks for its peer's MAC
  // (a device that sees only what is steered to it must see the answer).
  const bool receives = static_cast<bool>(np->cfg_.rx_hook);
  np->claim_ = t.local_ip.is_v6() ? dev::Claim::ipv6(t.local_ip.v6().bytes(), t.local_port, receives)
                                  : dev::Claim::ipv4(t.local_ip.v4(), t.local_port, receives);
  if (auto c = np->dev_->device().claim(np->claim_); !c) return fail_with(c.error().code, c.error().message);
  np->claimed_ = true;

  if (!t.remote_ip.is_unspecified() && np->cfg_.resolve_remote_mac) {
    if (t.remote_mac) {
      np->set_remote_mac(*t.remote_mac);
    } else {
      auto mac = np->resolve_remote_mac(/*use_cache=*/true);
      if (!mac) return std::unexpected(mac.error());
    }
  }

  np->slot_ = np->dev_->attach(np.get());
  if (np->slot_ < 0) {
    return fail_with(Errc::kNoBuffer, "too many clients on " + spec->text + " (at most " +
                                          std::to_string(SharedDevice::kMaxClients) + ")");
  }
  return np;
}

SetupResult<MacAddr> Netpoll::resolve_remote_mac(bool use_cache) {
  const TargetOptions& t = cfg_.target;
  if (t.remote_ip.is_v6() && t.remote_ip.v6().is_multicast()) {
    // A group has no neighbour to ask: its Ethernet address is a mapping.
    const MacAddr mac = wire::ipv6_multicast_mac(t.remote_ip.v6());
    set_remote_mac(mac);
    return mac;
  }
  const std::string answer = t.remote_ip.is_v4() ? "ARP reply" : "neighbour advertisement";
  IpAddr next_hop = t.remote_ip;
  if (dev_->spec().kind == "packet" || dev_->spec().kind == "xdp") {
    // Off-link targets are reached through the gateway of the route.
    const int ifindex = dev_->device().ifindex();
    if (auto route = netlink::route_to(t.remote_ip, ifindex); route && route->gateway) {
      next_hop = *route->gateway;
      log("remote IP " + t.remote_ip.to_string() + " is off-link: resolving gateway " + next_hop.to_string());
    }
  }
  if (use_cache) {
    if (auto cached = dev_->cached_mac(next_hop)) {
      log("remote ethernet address " + cached->to_string() + " (cached for " + next_hop.to_string() + ")");
      set_remote_mac(*cached);
      return *cached;
    }
  }
  auto mac = dev_->resolve_neighbour(next_hop, t.local_ip, cfg_.resolve);
  if (mac) {
    log("remote ethernet address " + mac->to_string() + " (" + answer + " from " + next_hop.to_string() + ")");
    set_remote_mac(*mac);
    return *mac;
  }
  if (!cfg_.resolve.allow_broadcast) {
    return setup_error(Errc::kTimeout, cfg_.name + ": no " + answer + " from " + next_hop.to_string() + " after " +
                                           std::to_string(cfg_.resolve.tries) + " tries");
  }
  log("warning: no " + answer + " from " + next_hop.to_string() + " after " + std::to_string(cfg_.resolve.tries) +
      " tries: sending to the broadcast address ff:ff:ff:ff:ff:ff");
  set_remote_mac(MacAddr::broadcast());
  return MacAddr::broadcast();
}

}  // namespace np::core
