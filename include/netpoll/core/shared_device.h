// SharedDevice: what every netpoll client on one device shares (the seed's
// netpoll_info): the device itself, the frame pool, the deferred transmit
// queue, the list of receiving clients, the neighbour cache and the protocol
// dispatcher. It lives as long as its last client (shared ownership); a
// Registry (registry.h) finds it by its device string.
//
// Send path: a client builds its frame in a pool frame; send_frame()
// transmits directly only when the deferred queue is empty and this thread
// is not inside this device's poll; it retries a busy device every 50 µs
// for 1 ms, then queues the frame for the deferred worker (the service
// thread), which retries every 100 ms and keeps order. Nothing is lost
// silently: every drop is counted by reason and shown to the client's drop
// handler.
//
// Receive path (poll): NAPI-style, at most `budget` frames per call,
// validated as the seed's __netpoll_rx does (IPv4 and IPv6), each drop
// counted by reason; valid datagrams go to every client whose local IP,
// remote IP and local port match (zero = any). ARP requests and neighbour
// solicitations for any client's local IP are answered. While trapped,
// netpoll consumes every frame and both are answered after the poll instead
// of during it.
//
// Where the code lives: shared_device.cpp (life, service thread, clients,
// emergency mode), send.cpp (the send path), receive.cpp (poll, the
// Ethernet demultiplexer, delivery to clients, drop reasons), ipv4.cpp,
// ipv6.cpp, udp.cpp, arp.cpp and ndisc.cpp (one file per protocol),
// neighbour.cpp (the cache and resolution, both families), stats_output.cpp
// (text and JSON).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include "netpoll/base/addr.h"
#include "netpoll/base/bounded_queue.h"
#include "netpoll/base/fd_identity.h"
#include "netpoll/base/guarded.h"
#include "netpoll/base/inplace_function.h"
#include "netpoll/base/owner_lock.h"
#include "netpoll/base/result.h"
#include "netpoll/core/dispatch.h"
#include "netpoll/core/frame_pool.h"
#include "netpoll/core/neighbour_cache.h"
#include "netpoll/core/options.h"
#include "netpoll/core/stats.h"
#include "netpoll/dev/device.h"
#include "netpoll/dev/spec.h"

namespace np::wire {
struct NdiscRepr;
}  // namespace np::wire

namespace np::core {

class Netpoll;
struct SharedDeviceTesting;

// kNow: the device is kicked for this datagram. kLater: more datagrams
// follow, so the device may wait (Linux's xmit_more) until a kNow send or
// flush(); with a service thread running, it kicks within about 1 ms.
enum class Flush : std::uint8_t { kNow, kLater };

// What a receive hook learns about a datagram besides its payload.
struct RxInfo {
  MacAddr src_mac;
  IpAddr src_ip;
  std::uint16_t src_port = 0;
  IpAddr dst_ip;
  std::uint16_t dst_port = 0;
};

// Sees every frame netpoll does not consume (when not trapped).
using PassthroughHook = InplaceFunction<void(std::span<const std::byte> frame)>;

// Settings of the shared device; the first client to open it sets them.
struct DeviceConfig {
  std::size_t pool_frames = 32;        // full-size transmit frames
  std::size_t deferred_limit = 24;     // frames the deferred queue holds (< pool_frames)
  std::chrono::microseconds retry_interval{50};
  std::chrono::microseconds retry_budget{1000};
  std::chrono::milliseconds deferred_retry{100};
  std::size_t poll_budget = 16;
  std::size_t dispatch_queue = 64;     // frames per protocol queue
  std::chrono::milliseconds carrier_timeout{4000};
  bool bring_up = true;                // bring a down interface up (packet devices)
  bool service_thread = true;          // a thread that polls and drains the deferred queue
  // A packet device's receive ring, when this setup opens the device and
  // its device string does not say (rx_block_size=, rx_blocks=): blocks of
  // this many bytes, this many of them (0: the backend's default). The
  // kernel hands a block over when it is full or its timer (1 ms) fires: a
  // client waiting for a few small answers wants blocks they fill.
  std::size_t rx_block_size = 0;
  std::size_t rx_blocks = 0;
  // A packet device opened by this setup receives without a ring (rx=copy,
  // dev/packet.h), unless its device string says otherwise: every frame as
  // it comes, for a client that waits on a few short answers.
  bool rx_copy = false;
};

// How setup resolves a next hop's MAC: ARP requests (IPv4) or neighbour
// solicitations (IPv6).
struct ResolveConfig {
  int tries = 3;
  std::chrono::milliseconds interval{1000};
  bool allow_broadcast = true;  // fall back to ff:ff:ff:ff:ff:ff (with a warning)
};

struct SharedDeviceStats {
  Counter rx_frames;        // frames seen by netpoll's receive path
  Counter rx_delivered;     // datagrams delivered to at least one client
  Counter rx_passed;        // frames handed to the passthrough hook
  ReasonCounters<RxDrop> rx_drops;
  Counter arp_replies_sent;
  Counter arp_replies_seen;
  SharedCounter arp_requests_sent;
  Counter nd_adverts_sent;     // neighbour advertisements: answers to solicitations
  Counter nd_adverts_seen;
  SharedCounter nd_solicits_sent;
  Counter tx_frames;        // frames the device took
  Counter tx_bytes;
  Counter tx_direct;        // sent by the caller's thread (under the transmit lock)
  SharedCounter tx_deferred;  // went through the deferred queue
  SharedCounter tx_retries;   // busy answers retried
  ReasonCounters<TxDrop, SharedCounter> tx_drops;
  Watermark deferred_high;  // deepest the deferred queue has been
};

class SharedDevice : public InGuardedMemory<SharedDevice> {
 public:
  static constexpr std::size_t kMaxClients = 64;

  ~SharedDevice();
  SharedDevice(const SharedDevice&) = delete;
  SharedDevice& operator=(const SharedDevice&) = delete;

  // Receives and handles up to `budget` frames (0: the configured budget),
  // runs the queued dispatch handlers, then drains the deferred queue.
  // Returns the frames received. If another thread is polling, returns 0 at
  // once. Context: any.
  std::size_t poll(std::size_t budget = 0) noexcept;

  // Transmits queued frames in order until the queue is empty or the device
  // is busy. True if frames remain. Context: any.
  bool service_tx() noexcept;

  // Kicks the device for frames sent with Flush::kLater. Context: any.
  void flush() noexcept;

  // Emergency mode, for a fatal-signal handler: the calling thread becomes
  // the only one that touches the device. Other threads' sends go to the
  // deferred queue and their polls return at once. A transmit lock held by
  // another thread gets `wait` to be released, then is taken anyway (that
  // thread must never transmit again: the process is dying); one held by
  // the calling thread (a crash inside transmit) is taken at once. Returns
  // false if another thread is already in emergency mode. Context: any.
  bool enter_emergency(std::chrono::nanoseconds wait) noexcept;
  // The crash path, after enter_emergency(): whether the device's
  // descriptors are still its own (dev::Device::revalidate: a lost one is
  // given up, and replaced where it can be). The service thread's wake-up
  // descriptor, if the program closed or reused it, is given up too (not
  // closed: the number is someone else's): the thread then wakes on its own
  // timeouts only. (An eventfd of the program's own under the same number
  // is not told apart: every eventfd has the same inode.) Context: any.
  bool revalidate() noexcept;
  bool in_emergency() const noexcept { return emergency_owner_.load(std::memory_order_acquire) != 0; }

  // Trap mode: netpoll consumes every frame, ARP and neighbour solicitations
  // are answered after the poll.
  // Nested: each set_trap(true) needs a set_trap(false). Context: any.
  void set_trap(bool on) noexcept;
  bool trapped() const noexcept { return trapped_.load(std::memory_order_relaxed) > 0; }

  // Frames netpoll does not consume go here (e.g. to another stack sharing
  // the device). Context: setup.
  void set_passthrough(PassthroughHook hook);

  // The MAC for `ip` if ARP or neighbour discovery taught it. Context: any.
  std::optional<MacAddr> cached_mac(const IpAddr& ip) const noexcept { return neighbours_.lookup(ip); }

  // Asks `target` for its MAC (an ARP request, or a neighbour solicitation
  // to its solicited-node address, from `local_ip`), `cfg.tries` times
  // `cfg.interval` apart, polling meanwhile. Context: setup.
  [[nodiscard]] Result<MacAddr> resolve_neighbour(const IpAddr& target, const IpAddr& local_ip,
                                                  const ResolveConfig& cfg);

  dev::Device& device() noexcept { return *dev_; }
  const dev::DeviceSpec& spec() const noexcept { return spec_; }
  const DeviceConfig& config() const noexcept { return cfg_; }
  const SharedDeviceStats& stats() const noexcept { return stats_; }
  const FramePool& pool() const noexcept { return pool_; }
  const Dispatcher& dispatcher() const noexcept { return dispatcher_; }
  std::size_t deferred_depth() const noexcept { return txq_.size(); }
  std::size_t clients() const noexcept;
  // Largest UDP payload a frame of this device can carry over the family.
  std::size_t max_payload(IpFamily family = IpFamily::kV4) const noexcept;

  // Statistics for people and for programs. Context: setup.
  std::string stats_text() const;
  std::string stats_json() const;

 private:
  friend class Netpoll;
  friend class Registry;
  friend struct SharedDeviceTesting;  // src/core/testing.h

  struct Deferred {
    FramePool::Index frame;
    std::uint16_t len;
    std::uint16_t client;  // slot, or kNoClient
    std::uint16_t generation;
  };
  static constexpr std::uint16_t kNoClient = 0xffff;

  struct ClientSlot {
    std::atomic<Netpoll*> client{nullptr};
    std::atomic<std::uint16_t> generation{0};
  };

  SharedDevice(dev::DeviceSpec spec, std::unique_ptr<dev::Device> dev, const DeviceConfig& cfg);

  // Clients. Context: setup.
  int attach(Netpoll* client);
  void detach(int slot);
  void start_service_thread();
  void service_loop();

  // Send path (send.cpp). Context: any.
  std::optional<FramePool::Index> take_frame() noexcept;
  // take_frame() for a packet of netpoll's own (ARP, neighbour discovery),
  // an empty pool counted as a transmit drop.
  std::optional<FramePool::Index> take_own_frame() noexcept;
  // Transmits a frame of the pool (given back once the device took it), or
  // queues it: busy answers retried for cfg_.retry_budget first.
  [[nodiscard]] Result<void> send_frame(FramePool::Index frame, std::size_t len, int client, Flush flush = Flush::kNow) noexcept;
  // Whether this thread may hand a frame to the device rather than queue
  // it: nothing queued (the emergency owner drains the queue first), not
  // inside this device's poll, no emergency elsewhere.
  bool may_transmit_now() noexcept;
  // With the transmit side held (acquire_tx): a frame to build a datagram
  // in, valid until release_tx(); and the offer of a built frame to the
  // device (busy once: a poll and one more try), counted when taken.
  std::span<std::byte> scratch_frame() noexcept;
  dev::TxStatus offer(std::span<const std::byte> bytes, Flush flush) noexcept;
  // The same for a datagram in segments (dev::Device::transmit_udp_segments).
  dev::TxStatus offer_segments(std::span<const std::byte> headers, std::span<const std::span<const std::byte>> segments,
                               std::size_t segment_size) noexcept;
  void drop_frame(FramePool::Index frame, std::size_t len, int client, std::uint16_t generation,
                  TxDrop reason) noexcept;
  std::uint16_t client_generation(int client) const noexcept;
  void wake_service() noexcept;
  // The transmit side, taken the normal way (try-lock) or held for good by
  // this thread in emergency mode. Context: any.
  bool acquire_tx() noexcept;
  void release_tx() noexcept;
  bool emergency_elsewhere() const noexcept;

  // Receive path (receive.cpp). Context: the receive lock's holder.
  void on_frame(std::span<const std::byte> frame) noexcept;
  void not_consumed(std::span<const std::byte> frame, RxDrop reason) noexcept;
  // Hands a valid datagram to every client it is for; false if none.
  bool deliver(const RxInfo& info, std::span<const std::byte> payload) noexcept;
  // The client whose local address is `ip`, or nullptr.
  const Netpoll* owner_of(const IpAddr& ip) const noexcept;

  // IPv4 (ipv4.cpp) and IPv6 (ipv6.cpp): the network layer's checks, then
  // UDP's (udp.cpp) for both. Context: any.
  void handle_ipv4(std::span<const std::byte> frame) noexcept;
  void handle_ipv6(std::span<const std::byte> frame) noexcept;
  void receive_udp(std::span<const std::byte> frame, const MacAddr& src_mac, const IpAddr& src, const IpAddr& dst,
                   std::span<const std::byte> udp) noexcept;
  // IPv4 identifications, counting up from one per device. A frame built
  // without the transmit lock takes one with a locked add; the lock's
  // holder takes them from a block of kIdentBlock reserved with one locked
  // add, so they stay unique and a lone sender's still count 1, 2, 3.
  std::uint16_t next_ip_ident() noexcept { return ip_ident_.fetch_add(1, std::memory_order_relaxed); }
  std::uint16_t next_ip_ident_held() noexcept { return take_ip_idents_held(1); }
  // `n` consecutive ones (a datagram sent in segments takes one for each),
  // the first returned; what is left of a block too short is skipped.
  std::uint16_t take_ip_idents_held(std::uint16_t n) noexcept {
    if (held_idents_left_ < n) {
      const std::uint16_t block = std::max(n, kIdentBlock);
      held_ident_ = ip_ident_.fetch_add(block, std::memory_order_relaxed);
      held_idents_left_ = block;
    }
    held_idents_left_ = static_cast<std::uint16_t>(held_idents_left_ - n);
    const std::uint16_t first = held_ident_;
    held_ident_ = static_cast<std::uint16_t>(held_ident_ + n);
    return first;
  }
  static constexpr std::uint16_t kIdentBlock = 64;

  // ARP (arp.cpp) and neighbour discovery (ndisc.cpp). Context: any.
  void handle_arp(std::span<const std::byte> frame) noexcept;
  [[nodiscard]] Result<void> send_arp(int op, const Ipv4Addr& sender_ip, const MacAddr& target_mac, const Ipv4Addr& target_ip,
                        const MacAddr& dst_mac) noexcept;
  void handle_ndisc(std::span<const std::byte> frame) noexcept;
  [[nodiscard]] Result<void> send_ndisc(const wire::NdiscRepr& nd, const Ipv6Addr& src, const Ipv6Addr& dst,
                                        const MacAddr& dst_mac) noexcept;
  // The request that resolution repeats: ARP or neighbour solicitation
  // (neighbour.cpp). Context: any.
  [[nodiscard]] Result<void> solicit(const IpAddr& target, const IpAddr& local_ip) noexcept;

  dev::DeviceSpec spec_;
  std::unique_ptr<dev::Device> dev_;
  DeviceConfig cfg_;
  MacAddr mac_;
  FramePool pool_;
  BoundedQueue<Deferred> txq_;
  OwnerLock tx_lock_;
  OwnerLock rx_lock_;
  std::atomic<pid_t> poll_owner_{0};
  std::atomic<bool> unkicked_{false};  // frames sent with Flush::kLater wait for a kick
  std::atomic<pid_t> emergency_owner_{0};  // the thread in emergency mode, or 0
  std::atomic<int> trapped_{0};
  std::atomic<std::uint16_t> ip_ident_{1};
  std::uint16_t held_ident_ = 0;        // guarded by tx_lock_: the next of the block
  std::uint16_t held_idents_left_ = 0;  // guarded by tx_lock_
  std::array<ClientSlot, kMaxClients> clients_;
  NeighbourCache neighbours_;
  Dispatcher dispatcher_;
  PassthroughHook passthrough_;
  SharedDeviceStats stats_;

  std::atomic<int> wake_fd_{-1};  // -1: none, or given up by revalidate()
  FdIdentity wake_id_;
  std::atomic<bool> stop_{false};
  std::thread service_;
};

}  // namespace np::core
