// netpoll listen --device: receiving netconsole through netpoll's own path.
//
// A machine whose receiving interface has no kernel IP configuration (a
// qemu socket tunnel, a dedicated capture NIC, a kernel-bypass host) has no
// kernel socket to receive on. A DeviceReceiver is one core client
// (core/netpoll.h) bound to IP:port on the device, accepting any sender:
// netpoll validates each frame (every drop counted by reason), answers ARP
// for IP, and hands each datagram, with its sender's address, port and
// Ethernet source, to the same engine the kernel socket workers feed
// (receiver/engine.h: reassembly, order, gaps, outputs, syslog, --count).
// In reliable mode the engine's answers go back through netpoll's send
// path, from IP:port to the source's address and port, at the Ethernet
// address its latest frame came from.
//
// One thread: a device has one receive ring here, so run() polls it (no
// service thread) and is the engine's only thread. IPv4 only, as netpoll's
// path is. After a source's first datagrams nothing it does allocates.
#pragma once

#include <memory>
#include <string>

#include "netpoll/base/addr.h"
#include "netpoll/base/result.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/receiver/engine.h"

namespace np::devlisten {

struct DeviceOptions {
  // The device, as a target's: an interface name, an interface's MAC or a
  // device string (packet:eth0, tap:tap0, udp:A:P@B:Q, pair:name).
  std::string device;
  Ipv4Addr ip;  // received on and answered ARP for: unicast, not loopback
  core::DeviceConfig config;  // service_thread is ignored: run() polls
  core::SetupLog log;         // setup messages (bringing the interface up)
};

class DeviceReceiver : private receiver::Responder {
 public:
  // Sets up the client on the device, receiving on device.ip port
  // options.port (which must not be 0). Errors say why, as core's setup
  // does. Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<DeviceReceiver>> open(
      const receiver::Options& options, const DeviceOptions& device, receiver::Shared& shared,
      core::Registry& registry = core::Registry::process());
  ~DeviceReceiver() override;
  DeviceReceiver(const DeviceReceiver&) = delete;
  DeviceReceiver& operator=(const DeviceReceiver&) = delete;

  // Polls the device until shared.stop, then delivers what its sources
  // hold. Context: its own thread.
  void run();

  const receiver::Engine& engine() const { return engine_; }
  const core::Netpoll& client() const { return *client_; }
  // "10.0.0.2 port 6666 on eth1 (02:00:00:00:00:02)". Context: setup.
  std::string where() const;
  // The engine's report (receiver/stats.h) and a "netpoll" section: the
  // client's counters and its device's (frames received, every drop by
  // reason, ARP replies, transmit), in the Prometheus form too. Context:
  // setup.
  std::string stats_report(receiver::ReportFormat format) const;

 private:
  DeviceReceiver(const receiver::Options& options, receiver::Shared& shared);
  void on_datagram(const core::RxInfo& info, std::span<const std::byte> payload) noexcept;
  bool respond(const receiver::SourceEntry& e, std::string_view datagram) noexcept override;

  const receiver::Options options_;
  receiver::Shared& shared_;
  receiver::Engine engine_;
  receiver::ReceiveTime at_;  // of the frames of the poll under way
  std::unique_ptr<core::Netpoll> client_;  // last: detached before the engine goes
};

}  // namespace np::devlisten
