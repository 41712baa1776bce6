// netpoll: clients sending and receiving UDP over a polled device.
//
// A Netpoll is one client: one local ip:port and one remote ip:port on one
// device (the seed's struct netpoll). Every client on the same device shares
// one SharedDevice (shared_device.h: the device, its pools and queues, the
// send and receive paths), found or opened through a Registry (registry.h).
//
// Where the code lives: setup.cpp (netpoll_setup: device, addresses, the
// remote MAC), client.cpp (send_udp), stats_output.cpp (text and JSON).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "netpoll/base/addr.h"
#include "netpoll/base/guarded.h"
#include "netpoll/base/inplace_function.h"
#include "netpoll/base/result.h"
#include "netpoll/core/frame_template.h"
#include "netpoll/core/options.h"
#include "netpoll/core/registry.h"
#include "netpoll/core/shared_device.h"
#include "netpoll/core/stats.h"

namespace np::core {

using RxHook = InplaceFunction<void(Netpoll&, const RxInfo&, std::span<const std::byte> payload)>;
// Sees the UDP payload of every datagram of this client that could not be
// sent, and why.
using DropHandler = InplaceFunction<void(Netpoll&, std::span<const std::byte> payload, TxDrop reason)>;
// Setup-time messages for a person (carrier waits, chosen addresses).
using SetupLog = std::function<void(const std::string&)>;

struct ClientConfig {
  std::string name = "netpoll";  // prefix of setup messages
  TargetOptions target;
  RxHook rx_hook;            // none: a send-only client
  DropHandler drop_handler;
  DeviceConfig device;
  ResolveConfig resolve;
  bool resolve_remote_mac = true;  // false: a receiving client that never sends
  SetupLog log;              // none: setup messages are dropped
};

// Where a datagram goes when it is not the target's: the source of one
// received (RxInfo's src_mac, src_ip, src_port), to answer it.
struct UdpEndpoint {
  MacAddr mac;  // the next hop on the link: the sender, or the router it came through
  IpAddr ip;    // of the client's family
  std::uint16_t port = 0;
};

struct ClientStats {
  SplitCounter tx_datagrams;  // held: sent under the device's transmit lock
  SplitCounter tx_bytes;
  ReasonCounters<TxDrop, SharedCounter> tx_drops;
  Counter rx_datagrams;
  Counter rx_bytes;
};

class Netpoll : public InGuardedMemory<Netpoll> {
 public:
  // netpoll_setup: resolves the device (interface name, MAC, device string,
  // or the route to the target), refuses bridge/bond slaves, brings a down
  // interface up and waits for carrier, takes the local IP from the
  // interface, joins the local IPv6 address's solicited-node group on the
  // device, resolves the remote MAC (ARP or neighbour discovery), and
  // attaches to the shared device.
  // Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<Netpoll>> setup(ClientConfig cfg, Registry& registry = Registry::process());

  // Detaches; the last client out releases the device. Context: setup.
  ~Netpoll();
  Netpoll(const Netpoll&) = delete;
  Netpoll& operator=(const Netpoll&) = delete;

  // Sends one datagram. Ok means transmitted or queued for the deferred
  // worker; errors (each also counted and shown to the drop handler):
  // kTooBig (payload > max_payload()), kNoBuffer (pool empty), kBusy
  // (deferred queue full), kIo (the device refused it). Over IPv4 or IPv6,
  // the target's family. Safe from a signal handler. Context: any.
  [[nodiscard]] Result<void> send_udp(std::span<const std::byte> payload, Flush flush = Flush::kNow) noexcept;

  // Sends one datagram from the local IP and port to `to` instead of the
  // target: a receiving client answering whoever sent (netpoll listen
  // --ack on a device answers each source). Errors and counting as
  // send_udp(); kInvalidArgument for an unspecified address, an address of
  // the other family or port 0.
  // Context: any.
  [[nodiscard]] Result<void> send_udp_to(const UdpEndpoint& to, std::span<const std::byte> payload,
                                         Flush flush = Flush::kNow) noexcept;

  // Sends `segments` to `to` as that many datagrams, in order, all but the
  // last of one size: over a device that offloads UDP segmentation
  // (dev::Device::segments_udp) in one transmission (the kernel or the NIC
  // cuts them; each gets its own IPv4 identification and checksum, as sent
  // one by one), else one by one as send_udp_to(.., Flush::kLater) would.
  // Datagrams sent with Flush::kLater before go out first. Errors and
  // counting as send_udp_to(), per datagram; the first error is returned
  // (those before it were sent). Context: any.
  [[nodiscard]] Result<void> send_udp_segments_to(const UdpEndpoint& to,
                                                  std::span<const std::span<const std::byte>> segments) noexcept;
  // How many datagrams of `size` payload bytes send_udp_segments_to() sends
  // in one transmission: as many as one IP packet's length holds, at most
  // dev::Device::kMaxUdpSegments; 1 where the device does not offload
  // segmentation. Context: any.
  std::size_t segments_per_transmission(std::size_t size) const noexcept;

  // Kicks out datagrams sent with Flush::kLater. Context: any.
  void flush() noexcept { dev_->flush(); }

  // Polls the shared device (see SharedDevice::poll). Context: any.
  std::size_t poll(std::size_t budget = 0) noexcept { return dev_->poll(budget); }

  // For a client polled by its own thread (no service thread): sleeps
  // until the device may have a frame, or until `until_ns` (monotonic)
  // passes, or `max_ns` at most; EINTR ends it early (the caller looks
  // again). A device without a descriptor to wait on: a short nap.
  // Context: any.
  void wait_for_frames(std::int64_t until_ns, std::int64_t max_ns) noexcept;

  // Resolves the remote MAC again, asking the network even if the device's
  // ARP cache knows an answer (after the peer changed). Setup uses the cache
  // when another client already resolved the same next hop. Context: setup.
  [[nodiscard]] SetupResult<MacAddr> resolve_remote_mac(bool use_cache = false);

  const std::string& name() const { return cfg_.name; }
  const TargetOptions& target() const { return cfg_.target; }  // as resolved
  IpAddr local_ip() const { return cfg_.target.local_ip; }
  std::uint16_t local_port() const { return cfg_.target.local_port; }
  IpAddr remote_ip() const { return cfg_.target.remote_ip; }
  IpFamily family() const noexcept { return cfg_.target.family(); }
  std::uint16_t remote_port() const { return cfg_.target.remote_port; }
  MacAddr remote_mac() const noexcept;
  std::size_t max_payload() const noexcept { return dev_->max_payload(family()); }
  SharedDevice& shared() noexcept { return *dev_; }
  const ClientStats& stats() const noexcept { return stats_; }

  // netpoll_print_options, for the resolved target. Context: setup.
  std::string describe() const { return format_target(cfg_.target, cfg_.name); }
  std::string stats_text() const;
  std::string stats_json() const;

 private:
  friend class SharedDevice;
  explicit Netpoll(ClientConfig cfg);
  void log(const std::string& msg) const;
  void set_remote_mac(const MacAddr& m) noexcept;
  // To `to`, or to the target when it is null.
  Result<void> transmit_udp(const UdpEndpoint* to, std::span<const std::byte> payload, Flush flush) noexcept;
  // A datagram to the target, from the template. Context: the device's
  // transmit lock held.
  std::size_t fill_for_target(std::span<std::byte> frame, std::span<const std::byte> payload) noexcept;

  ClientConfig cfg_;
  std::shared_ptr<SharedDevice> dev_;
  int slot_ = -1;
  dev::Claim claim_;      // what the device steers to this client (dev::Device::claim)
  bool claimed_ = false;
  std::uint16_t generation_ = 0;
  std::atomic<std::uint64_t> remote_mac_{0};
  // The target's headers, for the remote MAC they were made with (none
  // yet: a value no packed MAC has). Guarded by the device's transmit lock.
  FrameTemplate template_;
  std::uint64_t template_mac_ = ~std::uint64_t{0};
  ClientStats stats_;
};

}  // namespace np::core
