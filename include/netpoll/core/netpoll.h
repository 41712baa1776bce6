// netpoll: clients sending and receiving UDP over a polled device.
//
// A Netpoll is one client: one local ip:port and one remote ip:port on one
// device (the seed's struct netpoll). Every client on the same device shares
// one NetpollDevice (the seed's netpoll_info): the device itself, the frame
// pool, the deferred transmit queue, the list of receiving clients, the ARP
// cache and the protocol dispatcher. The device lives as long as its last
// client (shared ownership); a Registry finds it by its device string.
//
// Send path (send_udp): build UDP, IPv4 and Ethernet in a pool frame;
// transmit directly only when the deferred queue is empty and this thread is
// not inside this device's poll; retry a busy device every 50 µs for 1 ms;
// then queue the frame for the deferred worker, which retries every 100 ms
// and keeps order. Nothing is lost silently: every drop is counted by reason
// and shown to the client's drop handler.
//
// Receive path (poll): NAPI-style, at most `budget` frames per call,
// validated as the seed's __netpoll_rx does, each drop counted by reason;
// valid datagrams go to every client whose local IP, remote IP and local
// port match (zero = any). ARP requests for any client's local IP are
// answered. While trapped, netpoll consumes every frame and ARP requests are
// answered after the poll instead of during it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "netpoll/base/addr.h"
#include "netpoll/base/guarded.h"
#include "netpoll/base/bounded_queue.h"
#include "netpoll/base/inplace_function.h"
#include "netpoll/base/owner_lock.h"
#include "netpoll/base/result.h"
#include "netpoll/core/dispatch.h"
#include "netpoll/core/frame_pool.h"
#include "netpoll/core/options.h"
#include "netpoll/core/stats.h"
#include "netpoll/dev/device.h"
#include "netpoll/dev/spec.h"

namespace np::core {

class Netpoll;
class NetpollDevice;

// kNow: the device is kicked for this datagram. kLater: more datagrams
// follow, so the device may wait (Linux's xmit_more) until a kNow send or
// flush(); with a service thread running, it kicks within about 1 ms.
enum class Flush : std::uint8_t { kNow, kLater };

// What a receive hook learns about a datagram besides its payload.
struct RxInfo {
  MacAddr src_mac;
  Ipv4Addr src_ip;
  std::uint16_t src_port = 0;
  Ipv4Addr dst_ip;
  std::uint16_t dst_port = 0;
};

using RxHook = InplaceFunction<void(Netpoll&, const RxInfo&, std::span<const std::byte> payload)>;
// Sees the UDP payload of every datagram of this client that could not be
// sent, and why.
using DropHandler = InplaceFunction<void(Netpoll&, std::span<const std::byte> payload, TxDrop reason)>;
// Sees every frame netpoll does not consume (when not trapped).
using PassthroughHook = InplaceFunction<void(std::span<const std::byte> frame)>;
// Setup-time messages for a person (carrier waits, chosen addresses).
using SetupLog = std::function<void(const std::string&)>;

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
};

struct ResolveConfig {
  int tries = 3;
  std::chrono::milliseconds interval{1000};
  bool allow_broadcast = true;  // fall back to ff:ff:ff:ff:ff:ff (with a warning)
};

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

struct NetpollDeviceStats {
  Counter rx_frames;        // frames seen by netpoll's receive path
  Counter rx_delivered;     // datagrams delivered to at least one client
  Counter rx_passed;        // frames handed to the passthrough hook
  ReasonCounters<RxDrop> rx_drops;
  Counter arp_replies_sent;
  Counter arp_replies_seen;
  SharedCounter arp_requests_sent;
  Counter tx_frames;        // frames the device took
  Counter tx_bytes;
  SharedCounter tx_direct;  // sent by the caller's thread
  SharedCounter tx_deferred;  // went through the deferred queue
  SharedCounter tx_retries;   // busy answers retried
  ReasonCounters<TxDrop, SharedCounter> tx_drops;
  Watermark deferred_high;  // deepest the deferred queue has been
};

struct ClientStats {
  SharedCounter tx_datagrams;
  SharedCounter tx_bytes;
  ReasonCounters<TxDrop, SharedCounter> tx_drops;
  Counter rx_datagrams;
  Counter rx_bytes;
};

class NetpollDevice : public InGuardedMemory<NetpollDevice> {
 public:
  static constexpr std::size_t kMaxClients = 64;
  static constexpr std::size_t kArpCacheSize = 16;

  ~NetpollDevice();
  NetpollDevice(const NetpollDevice&) = delete;
  NetpollDevice& operator=(const NetpollDevice&) = delete;

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
  // given up, and replaced where it can be). Context: any.
  bool revalidate() noexcept { return dev_->revalidate(); }
  bool in_emergency() const noexcept { return emergency_owner_.load(std::memory_order_acquire) != 0; }

  // Takes the transmit lock and keeps it: lets a test play a thread frozen
  // in the middle of a transmit. Context: any.
  bool acquire_for_test() noexcept { return tx_lock_.try_lock(); }

  // Trap mode: netpoll consumes every frame, ARP is answered after the poll.
  // Nested: each set_trap(true) needs a set_trap(false). Context: any.
  void set_trap(bool on) noexcept;
  bool trapped() const noexcept { return trapped_.load(std::memory_order_relaxed) > 0; }

  // Frames netpoll does not consume go here (e.g. to another stack sharing
  // the device). Context: setup.
  void set_passthrough(PassthroughHook hook);

  // The MAC for `ip` if an ARP reply or request taught it. Context: any.
  std::optional<MacAddr> cached_mac(const Ipv4Addr& ip) const noexcept;

  // Asks `target` for its MAC (ARP request from `local_ip`), `cfg.tries`
  // times `cfg.interval` apart, polling meanwhile. Context: setup.
  Result<MacAddr> arp_resolve(const Ipv4Addr& target, const Ipv4Addr& local_ip, const ResolveConfig& cfg);

  dev::Device& device() noexcept { return *dev_; }
  const dev::DeviceSpec& spec() const noexcept { return spec_; }
  const DeviceConfig& config() const noexcept { return cfg_; }
  const NetpollDeviceStats& stats() const noexcept { return stats_; }
  const FramePool& pool() const noexcept { return pool_; }
  const Dispatcher& dispatcher() const noexcept { return dispatcher_; }
  std::size_t deferred_depth() const noexcept { return txq_.size(); }
  std::size_t clients() const noexcept;
  // Largest UDP payload a frame of this device can carry.
  std::size_t max_payload() const noexcept;

  // Statistics for people and for programs. Context: setup.
  std::string stats_text() const;
  std::string stats_json() const;

 private:
  friend class Netpoll;
  friend class Registry;

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

  struct ArpEntry {
    std::atomic<std::uint32_t> seq{0};  // odd while being written
    std::atomic<std::uint32_t> ip{0};   // network order; 0 = empty
    std::atomic<std::uint64_t> mac{0};
    std::atomic<std::int64_t> updated_ns{0};
  };

  NetpollDevice(dev::DeviceSpec spec, std::unique_ptr<dev::Device> dev, const DeviceConfig& cfg);

  // Context: setup.
  int attach(Netpoll* client);
  void detach(int slot);
  void start_service_thread();

  // Send path. Context: any.
  std::optional<FramePool::Index> take_frame() noexcept;
  Result<void> send_frame(FramePool::Index frame, std::size_t len, int client, Flush flush = Flush::kNow) noexcept;
  void drop_frame(FramePool::Index frame, std::size_t len, int client, std::uint16_t generation,
                  TxDrop reason) noexcept;
  std::uint16_t next_ip_ident() noexcept { return ip_ident_.fetch_add(1, std::memory_order_relaxed); }
  void wake_service() noexcept;
  // The transmit side, taken the normal way (try-lock) or held for good by
  // this thread in emergency mode. Context: any.
  bool acquire_tx() noexcept;
  void release_tx() noexcept;
  bool emergency_elsewhere() const noexcept;

  // Receive path. Context: any (called under rx_lock_).
  void on_frame(std::span<const std::byte> frame) noexcept;
  void handle_ipv4(std::span<const std::byte> frame) noexcept;
  void handle_arp(std::span<const std::byte> frame) noexcept;
  void not_consumed(std::span<const std::byte> frame, RxDrop reason) noexcept;
  void learn_mac(const Ipv4Addr& ip, const MacAddr& mac) noexcept;
  Result<void> send_arp(int op, const Ipv4Addr& sender_ip, const MacAddr& target_mac, const Ipv4Addr& target_ip,
                        const MacAddr& dst_mac) noexcept;

  void service_loop();

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
  std::array<ClientSlot, kMaxClients> clients_;
  std::array<ArpEntry, kArpCacheSize> arp_cache_;
  Dispatcher dispatcher_;
  PassthroughHook passthrough_;
  NetpollDeviceStats stats_;

  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread service_;
};

// Finds or opens the shared state of a device by its device string.
class Registry {
 public:
  // The registry of this process (the CLI and netconsole use it).
  static Registry& process();

  // Context: setup.
  SetupResult<std::shared_ptr<NetpollDevice>> acquire(const dev::DeviceSpec& spec, const DeviceConfig& cfg);

 private:
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<NetpollDevice>> devices_;
};

class Netpoll : public InGuardedMemory<Netpoll> {
 public:
  // netpoll_setup: resolves the device (interface name, MAC, device string,
  // or the route to the target), refuses bridge/bond slaves, brings a down
  // interface up and waits for carrier, takes the local IP from the
  // interface, resolves the remote MAC, and attaches to the shared device.
  // Context: setup.
  static SetupResult<std::unique_ptr<Netpoll>> setup(ClientConfig cfg, Registry& registry = Registry::process());

  // Detaches; the last client out releases the device. Context: setup.
  ~Netpoll();
  Netpoll(const Netpoll&) = delete;
  Netpoll& operator=(const Netpoll&) = delete;

  // Sends one datagram. Ok means transmitted or queued for the deferred
  // worker; errors (each also counted and shown to the drop handler):
  // kTooBig (payload > max_payload()), kNoBuffer (pool empty), kBusy
  // (deferred queue full), kIo (the device refused it). Safe from a signal
  // handler. Context: any.
  Result<void> send_udp(std::span<const std::byte> payload, Flush flush = Flush::kNow) noexcept;

  // Kicks out datagrams sent with Flush::kLater. Context: any.
  void flush() noexcept { dev_->flush(); }

  // Polls the shared device (see NetpollDevice::poll). Context: any.
  std::size_t poll(std::size_t budget = 0) noexcept { return dev_->poll(budget); }

  // Resolves the remote MAC again, asking the network even if the device's
  // ARP cache knows an answer (after the peer changed). Setup uses the cache
  // when another client already resolved the same next hop. Context: setup.
  SetupResult<MacAddr> resolve_remote_mac(bool use_cache = false);

  const std::string& name() const { return cfg_.name; }
  const TargetOptions& target() const { return cfg_.target; }  // as resolved
  Ipv4Addr local_ip() const { return cfg_.target.local_ip; }
  std::uint16_t local_port() const { return cfg_.target.local_port; }
  Ipv4Addr remote_ip() const { return cfg_.target.remote_ip; }
  std::uint16_t remote_port() const { return cfg_.target.remote_port; }
  MacAddr remote_mac() const noexcept;
  std::size_t max_payload() const noexcept { return dev_->max_payload(); }
  NetpollDevice& device() noexcept { return *dev_; }
  const ClientStats& stats() const noexcept { return stats_; }

  // netpoll_print_options, for the resolved target. Context: setup.
  std::string describe() const { return format_target(cfg_.target, cfg_.name); }
  std::string stats_text() const;
  std::string stats_json() const;

 private:
  friend class NetpollDevice;
  explicit Netpoll(ClientConfig cfg);
  void log(const std::string& msg) const;
  void set_remote_mac(const MacAddr& m) noexcept;

  ClientConfig cfg_;
  std::shared_ptr<NetpollDevice> dev_;
  int slot_ = -1;
  std::uint16_t generation_ = 0;
  std::atomic<std::uint64_t> remote_mac_{0};
  ClientStats stats_;
};

}  // namespace np::core
