#include "netpoll/core/netpoll.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "netpoll/base/bytes.h"
#include "netpoll/core/netlink.h"
#include "netpoll/dev/open.h"
#include "netpoll/wire/arp.h"
#include "netpoll/wire/checksum.h"
#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/udp.h"

namespace np::core {
namespace {

using namespace np::wire;

constexpr std::size_t kEthLen = EthernetFrame<std::byte>::kHeaderLen;
constexpr std::size_t kUdpOffset = kEthLen + Ipv4Repr::kHeaderLen;
constexpr std::size_t kPayloadOffset = kUdpOffset + UdpPacket<std::byte>::kHeaderLen;

// CLOCK_MONOTONIC through the vDSO: no system call, async-signal-safe.
std::int64_t now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// nanosleep(2) is async-signal-safe; EINTR just ends the nap early.
void nap(std::chrono::microseconds d) noexcept {
  timespec ts{static_cast<time_t>(d.count() / 1'000'000), static_cast<long>(d.count() % 1'000'000) * 1000};
  ::nanosleep(&ts, nullptr);
}

std::uint64_t pack_mac(const MacAddr& m) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < MacAddr::kLen; ++i) v = (v << 8) | m[i];
  return v;
}

MacAddr unpack_mac(std::uint64_t v) noexcept {
  std::array<std::byte, MacAddr::kLen> b;
  for (std::size_t i = MacAddr::kLen; i-- > 0;) {
    b[i] = static_cast<std::byte>(v & 0xff);
    v >>= 8;
  }
  return MacAddr(b);
}

// "drops":{"reason":count,...}, every reason, zeros included.
template <class Reason, class C>
void drops_json(JsonWriter& j, const ReasonCounters<Reason, C>& drops) {
  j.begin_object("drops");
  drops.for_each([&](Reason r, std::uint64_t n) { j.field(to_string(r), n); });
  j.end_object();
}

}  // namespace

// ---------------------------------------------------------------------------
// NetpollDevice: construction and teardown

NetpollDevice::NetpollDevice(dev::DeviceSpec spec, std::unique_ptr<dev::Device> dev, const DeviceConfig& cfg)
    : spec_(std::move(spec)),
      dev_(std::move(dev)),
      cfg_(cfg),
      mac_(dev_->mac()),
      pool_(cfg.pool_frames, dev_->mtu() + kEthLen),
      txq_(cfg.deferred_limit),
      dispatcher_(cfg.dispatch_queue, dev_->mtu() + kEthLen) {
  dispatcher_.register_handler(
      Proto::kArp, [this](std::span<const std::byte> f) { handle_arp(f); }, Policy::kDirect);
  dispatcher_.register_handler(
      Proto::kIpv4, [this](std::span<const std::byte> f) { handle_ipv4(f); }, Policy::kDirect);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

NetpollDevice::~NetpollDevice() {
  stop_.store(true);
  wake_service();
  if (service_.joinable()) service_.join();
  // Give frames still queued a last chance (bounded), then count the rest.
  for (int i = 0; i < 20 && service_tx(); ++i) nap(std::chrono::milliseconds(10));
  while (auto e = txq_.try_pop()) {
    stats_.tx_drops.add(TxDrop::kShutdown);
    pool_.give_back(e->frame);
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void NetpollDevice::start_service_thread() {
  service_ = std::thread([this] { service_loop(); });
}

void NetpollDevice::wake_service() noexcept {
  if (wake_fd_ < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

// The seed's tx_work plus NAPI scheduling: sleep on the device's descriptor
// and the wake-up eventfd, poll what arrived, drain the deferred queue, and
// retry a busy device every deferred_retry.
void NetpollDevice::service_loop() {
  bool pending = false;
  while (!stop_.load(std::memory_order_relaxed)) {
    pollfd fds[2];
    nfds_t n = 0;
    if (dev_->fd() >= 0) fds[n++] = {dev_->fd(), POLLIN, 0};
    fds[n++] = {wake_fd_, POLLIN, 0};
    // Frames waiting for a kick are kicked within a millisecond.
    const int timeout_ms = unkicked_.load(std::memory_order_relaxed) ? 1
                           : pending                                ? static_cast<int>(cfg_.deferred_retry.count())
                                                                    : 100;
    const int ready = ::poll(fds, n, timeout_ms);
    if (ready > 0 && (fds[n - 1].revents & POLLIN)) {
      std::uint64_t v;
      [[maybe_unused]] const ssize_t r = ::read(wake_fd_, &v, sizeof v);
    }
    if (ready > 0 && n == 2 && (fds[0].revents & (POLLERR | POLLNVAL))) {
      nap(std::chrono::milliseconds(10));  // a device in error: do not spin
    }
    if (stop_.load(std::memory_order_relaxed)) break;
    // Poll until the device runs dry (bounded: other work gets its turn).
    for (int i = 0; i < 64 && poll(cfg_.poll_budget) == cfg_.poll_budget; ++i) {
    }
    pending = service_tx();
  }
}

// ---------------------------------------------------------------------------
// Clients

int NetpollDevice::attach(Netpoll* client) {
  // Registration takes the receive lock so that no poll walks the list while
  // it changes (setup context: waiting here is allowed).
  while (!rx_lock_.try_lock()) nap(std::chrono::microseconds(100));
  int slot = -1;
  for (std::size_t i = 0; i < kMaxClients; ++i) {
    if (clients_[i].client.load(std::memory_order_relaxed) == nullptr) {
      clients_[i].generation.fetch_add(1, std::memory_order_relaxed);
      clients_[i].client.store(client, std::memory_order_release);
      slot = static_cast<int>(i);
      break;
    }
  }
  rx_lock_.unlock();
  return slot;
}

void NetpollDevice::detach(int slot) {
  if (slot < 0) return;
  const bool mine = rx_lock_.held_by_me();  // detaching from inside a receive hook
  if (!mine) {
    while (!rx_lock_.try_lock()) nap(std::chrono::microseconds(100));
  }
  clients_[static_cast<std::size_t>(slot)].client.store(nullptr, std::memory_order_release);
  clients_[static_cast<std::size_t>(slot)].generation.fetch_add(1, std::memory_order_relaxed);
  if (!mine) rx_lock_.unlock();
}

std::size_t NetpollDevice::clients() const noexcept {
  std::size_t n = 0;
  for (const auto& c : clients_) n += c.client.load(std::memory_order_relaxed) != nullptr;
  return n;
}

std::size_t NetpollDevice::max_payload() const noexcept {
  return dev_->mtu() - Ipv4Repr::kHeaderLen - UdpPacket<std::byte>::kHeaderLen;
}

void NetpollDevice::set_trap(bool on) noexcept {
  const int now = on ? trapped_.fetch_add(1) + 1 : trapped_.fetch_sub(1) - 1;
  // Trapped: ARP requests wait in their queue and are answered after the
  // poll, as the seed's arp_tx queue is serviced after poll_napi.
  dispatcher_.set_policy(Proto::kArp, now > 0 ? Policy::kQueued : Policy::kDirect);
}

void NetpollDevice::set_passthrough(PassthroughHook hook) {
  while (!rx_lock_.try_lock()) nap(std::chrono::microseconds(100));
  passthrough_ = std::move(hook);
  rx_lock_.unlock();
}

// ---------------------------------------------------------------------------
// Send path

std::optional<FramePool::Index> NetpollDevice::take_frame() noexcept {
  // The seed's find_skb: when the pool is empty, tickle the device (here:
  // drain the deferred queue, which returns frames) up to 10 times.
  for (int attempt = 0; attempt < 10; ++attempt) {
    if (auto f = pool_.take()) return f;
    service_tx();
  }
  return pool_.take();
}

Result<void> NetpollDevice::send_frame(FramePool::Index frame, std::size_t len, int client, Flush flush) noexcept {
  const std::span<const std::byte> bytes = pool_.frame(frame).first(len);
  const pid_t me = current_tid();
  // Don't get frames out of order, and no recursion into the device from
  // inside its own poll. In emergency mode the owner drains the queue first
  // and then may transmit from anywhere (even from inside a poll it crashed
  // in); everyone else only queues.
  const pid_t emergency = emergency_owner_.load(std::memory_order_acquire);
  // (Only the queue: a kick per frame would cost the crash path a system
  // call per datagram; kLater frames go out with the owner's flush.)
  if (emergency == me && !txq_.empty()) service_tx();
  if (emergency == me ? txq_.empty()
                      : emergency == 0 && txq_.empty() && poll_owner_.load(std::memory_order_relaxed) != me) {
    std::int64_t deadline = 0;  // read the clock only once the device is busy
    for (;;) {
      if (acquire_tx()) {
        const auto offer = [&] { return flush == Flush::kLater ? dev_->transmit_more(bytes) : dev_->transmit(bytes); };
        dev::TxStatus st = offer();
        if (st == dev::TxStatus::kBusy) {
          // Tickle the device: a kick of frames queued with kLater usually
          // frees their slots at once, so try again before waiting.
          dev_->poll();
          st = offer();
        }
        if (st == dev::TxStatus::kOk) {
          stats_.tx_frames.add();
          stats_.tx_bytes.add(len);
          if (flush == Flush::kNow) {
            unkicked_.store(false, std::memory_order_relaxed);  // this kick took them all
          } else if (!unkicked_.exchange(true, std::memory_order_relaxed)) {
            wake_service();  // the first frame of a burst: make sure someone kicks
          }
        }
        release_tx();
        if (st == dev::TxStatus::kOk) {
          stats_.tx_direct.add();
          pool_.give_back(frame);
          return {};
        }
        if (st == dev::TxStatus::kError) {
          const auto gen = client >= 0 ? clients_[static_cast<std::size_t>(client)].generation.load() : 0;
          drop_frame(frame, len, client, gen, TxDrop::kDeviceError);
          return fail(Errc::kIo);
        }
        stats_.tx_retries.add();
      }
      const std::int64_t now = now_ns();
      if (deadline == 0) deadline = now + std::chrono::nanoseconds(cfg_.retry_budget).count();
      if (now >= deadline) break;
      nap(cfg_.retry_interval);
    }
  }
  const std::uint16_t gen =
      client >= 0 ? clients_[static_cast<std::size_t>(client)].generation.load(std::memory_order_relaxed) : 0;
  const Deferred entry{frame, static_cast<std::uint16_t>(len),
                       client >= 0 ? static_cast<std::uint16_t>(client) : kNoClient, gen};
  if (txq_.size() >= cfg_.deferred_limit || !txq_.try_push(entry)) {
    drop_frame(frame, len, client, gen, TxDrop::kQueueFull);
    return fail(Errc::kBusy);
  }
  stats_.tx_deferred.add();
  stats_.deferred_high.note_high(txq_.size());
  wake_service();
  return {};
}

bool NetpollDevice::emergency_elsewhere() const noexcept {
  const pid_t owner = emergency_owner_.load(std::memory_order_acquire);
  return owner != 0 && owner != current_tid();
}

bool NetpollDevice::acquire_tx() noexcept {
  const pid_t owner = emergency_owner_.load(std::memory_order_acquire);
  if (owner != 0) return owner == current_tid();  // held for good by the emergency owner
  return tx_lock_.try_lock();
}

void NetpollDevice::release_tx() noexcept {
  // A thread that took the lock just before emergency mode began gives it
  // back (the emergency owner is waiting for it); the owner keeps it.
  if (emergency_owner_.load(std::memory_order_acquire) != current_tid()) tx_lock_.unlock();
}

bool NetpollDevice::enter_emergency(std::chrono::nanoseconds wait) noexcept {
  const pid_t me = current_tid();
  pid_t expected = 0;
  if (!emergency_owner_.compare_exchange_strong(expected, me, std::memory_order_acq_rel)) return expected == me;
  // From here on no other thread takes the transmit lock. One that holds it
  // now is inside transmit() or poll() for a few microseconds: let it leave.
  const std::int64_t deadline = now_ns() + wait.count();
  while (!tx_lock_.held_by_me() && !tx_lock_.try_lock()) {
    if (now_ns() >= deadline) {
      tx_lock_.steal();  // it never came back: the process is dying anyway
      break;
    }
    nap(std::chrono::microseconds(100));
  }
  return true;
}

void NetpollDevice::flush() noexcept {
  if (!unkicked_.load(std::memory_order_relaxed)) return;
  if (!acquire_tx()) return;  // the holder is transmitting; the service thread kicks later
  unkicked_.store(false, std::memory_order_relaxed);
  dev_->poll();
  release_tx();
}

bool NetpollDevice::service_tx() noexcept {
  flush();
  if (txq_.empty()) return false;
  if (!acquire_tx()) return !txq_.empty();  // someone is transmitting: try again later
  struct Release {
    NetpollDevice* d;
    ~Release() { d->release_tx(); }
  } release{this};
  while (auto e = txq_.front()) {
    const auto bytes = pool_.frame(e->frame).first(e->len);
    dev::TxStatus st = dev_->transmit(bytes);
    if (st == dev::TxStatus::kBusy) {
      dev_->poll();
      st = dev_->transmit(bytes);
    }
    if (st == dev::TxStatus::kBusy) {
      stats_.tx_retries.add();
      return true;  // keep it at the head: order is kept
    }
    txq_.pop_front();
    if (st == dev::TxStatus::kOk) {
      stats_.tx_frames.add();
      stats_.tx_bytes.add(e->len);
      pool_.give_back(e->frame);
    } else {
      drop_frame(e->frame, e->len, e->client == kNoClient ? -1 : e->client, e->generation, TxDrop::kDeviceError);
    }
  }
  return false;
}

void NetpollDevice::drop_frame(FramePool::Index frame, std::size_t len, int client, std::uint16_t generation,
                               TxDrop reason) noexcept {
  stats_.tx_drops.add(reason);
  if (client >= 0) {
    const auto& slot = clients_[static_cast<std::size_t>(client)];
    Netpoll* c = slot.client.load(std::memory_order_acquire);
    if (c != nullptr && slot.generation.load(std::memory_order_relaxed) == generation) {
      c->stats_.tx_drops.add(reason);
      if (c->cfg_.drop_handler && len >= kPayloadOffset) {
        c->cfg_.drop_handler(*c, pool_.frame(frame).subspan(kPayloadOffset, len - kPayloadOffset), reason);
      }
    }
  }
  pool_.give_back(frame);
}

Result<void> NetpollDevice::send_arp(int op, const Ipv4Addr& sender_ip, const MacAddr& target_mac,
                                     const Ipv4Addr& target_ip, const MacAddr& dst_mac) noexcept {
  auto idx = take_frame();
  if (!idx) {
    stats_.tx_drops.add(TxDrop::kNoBuffer);
    return fail(Errc::kNoBuffer);
  }
  auto frame = pool_.frame(*idx);
  auto arp_area = EthernetRepr{mac_, dst_mac, ethertype::kArp}.emit(frame);
  ArpRepr{static_cast<ArpOp>(op), mac_, sender_ip, target_mac, target_ip}.emit(arp_area);
  return send_frame(*idx, kEthLen + ArpRepr::kLen, -1);
}

// ---------------------------------------------------------------------------
// Receive path

std::size_t NetpollDevice::poll(std::size_t budget) noexcept {
  if (budget == 0) budget = cfg_.poll_budget;
  std::size_t n = 0;
  if (emergency_elsewhere()) return 0;  // hands off the device: a fatal-signal handler owns it
  if (rx_lock_.try_lock()) {
    poll_owner_.store(current_tid(), std::memory_order_relaxed);
    n = dev_->receive(budget, [this](std::span<const std::byte> f) { on_frame(f); });
    poll_owner_.store(0, std::memory_order_relaxed);
    // Queued protocol work (ARP while trapped) runs after the poll, where a
    // reply may be transmitted directly.
    dispatcher_.drain(SIZE_MAX);
    rx_lock_.unlock();
  }
  service_tx();
  return n;
}

void NetpollDevice::not_consumed(std::span<const std::byte> frame, RxDrop reason) noexcept {
  if (passthrough_ && !trapped()) {
    stats_.rx_passed.add();
    passthrough_(frame);
    return;
  }
  stats_.rx_drops.add(reason);
}

void NetpollDevice::on_frame(std::span<const std::byte> frame) noexcept {
  stats_.rx_frames.add();
  auto eth = EthernetFrame<const std::byte>::check(frame);
  if (!eth) return not_consumed(frame, RxDrop::kRunt);
  const MacAddr dst = eth->dst();
  if (!dst.is_multicast() && dst != mac_) return not_consumed(frame, RxDrop::kOtherHost);
  Proto proto;
  switch (eth->ethertype()) {
    case ethertype::kArp: proto = Proto::kArp; break;
    case ethertype::kIpv4: proto = Proto::kIpv4; break;
    default: return not_consumed(frame, RxDrop::kNotIpv4);
  }
  if (!dispatcher_.dispatch(proto, frame)) stats_.rx_drops.add(RxDrop::kQueueFull);
}

// The checks of the seed's __netpoll_rx, in its order, each with its own
// reason; then the refusals it lacked (fragments, options).
void NetpollDevice::handle_ipv4(std::span<const std::byte> frame) noexcept {
  const auto eth = *EthernetFrame<const std::byte>::check(frame);
  const auto ip = eth.payload();
  if (ip.size() < Ipv4Packet<const std::byte>::kMinHeaderLen) return not_consumed(frame, RxDrop::kIpTruncated);
  const std::uint8_t version_ihl = load_u8(ip, 0);
  const std::size_t ihl = std::size_t{version_ihl & 0x0fu} * 4;
  if ((version_ihl >> 4) != 4 || ihl < Ipv4Packet<const std::byte>::kMinHeaderLen)
    return not_consumed(frame, RxDrop::kIpHeader);
  if (ip.size() < ihl) return not_consumed(frame, RxDrop::kIpTruncated);
  if (Checksum().add(ip.first(ihl)).sum() != 0xffff) return not_consumed(frame, RxDrop::kIpChecksum);
  // Total length against the frame; padding beyond it is trimmed.
  auto pkt = Ipv4Packet<const std::byte>::check(ip);
  if (!pkt) return not_consumed(frame, RxDrop::kIpLength);
  auto repr = Ipv4Repr::parse(*pkt);
  if (!repr) {
    return not_consumed(frame, repr.error() == Errc::kFragment    ? RxDrop::kIpFragment
                               : repr.error() == Errc::kHasOptions ? RxDrop::kIpOptions
                                                                    : RxDrop::kIpHeader);
  }
  if (repr->protocol != ip_proto::kUdp) return not_consumed(frame, RxDrop::kNotUdp);
  const auto udp_bytes = pkt->payload();
  if (udp_bytes.size() < UdpPacket<const std::byte>::kHeaderLen) return not_consumed(frame, RxDrop::kUdpTruncated);
  if (load_be16(udp_bytes, 4) != udp_bytes.size()) return not_consumed(frame, RxDrop::kUdpLength);
  auto udp = UdpRepr::parse(*UdpPacket<const std::byte>::check(udp_bytes), repr->src, repr->dst);
  if (!udp) return not_consumed(frame, RxDrop::kUdpChecksum);

  const RxInfo info{eth.src(), repr->src, udp->src_port, repr->dst, udp->dst_port};
  int hits = 0;
  for (auto& slot : clients_) {
    Netpoll* c = slot.client.load(std::memory_order_acquire);
    if (c == nullptr || !c->cfg_.rx_hook) continue;
    const TargetOptions& t = c->cfg_.target;
    if (!t.local_ip.is_unspecified() && t.local_ip != info.dst_ip) continue;
    if (!t.remote_ip.is_unspecified() && t.remote_ip != info.src_ip) continue;
    if (t.local_port != 0 && t.local_port != info.dst_port) continue;
    c->stats_.rx_datagrams.add();
    c->stats_.rx_bytes.add(udp->payload.size());
    c->cfg_.rx_hook(*c, info, udp->payload);
    ++hits;
  }
  if (hits == 0) return not_consumed(frame, RxDrop::kNoClient);
  stats_.rx_delivered.add();
}

void NetpollDevice::handle_arp(std::span<const std::byte> frame) noexcept {
  const auto eth = *EthernetFrame<const std::byte>::check(frame);
  auto pkt = ArpPacket<const std::byte>::check(eth.payload());
  if (!pkt) return not_consumed(frame, RxDrop::kArpMalformed);
  auto arp = ArpRepr::parse(*pkt);
  if (!arp) return not_consumed(frame, RxDrop::kArpMalformed);

  // Which client, if any, owns the address this ARP is about?
  const auto owned = [this](const Ipv4Addr& ip) {
    for (auto& slot : clients_) {
      const Netpoll* c = slot.client.load(std::memory_order_acquire);
      if (c != nullptr && c->cfg_.target.local_ip == ip) return c;
    }
    return static_cast<const Netpoll*>(nullptr);
  };

  if (arp->op == ArpOp::kReply) {
    stats_.arp_replies_seen.add();
    learn_mac(arp->source_ip, arp->source_mac);  // our resolver waits for these
    if (owned(arp->target_ip) == nullptr && eth.dst() != mac_) return not_consumed(frame, RxDrop::kArpIgnored);
    return;
  }
  // A request. Never answer for loopback or multicast addresses.
  if (arp->target_ip.is_loopback() || arp->target_ip.is_multicast()) return not_consumed(frame, RxDrop::kArpIgnored);
  const Netpoll* c = owned(arp->target_ip);
  if (c == nullptr) return not_consumed(frame, RxDrop::kArpIgnored);
  // RFC 826: the requester tells us its mapping; keep it.
  learn_mac(arp->source_ip, arp->source_mac);
  // One reply is enough even if several clients share the address.
  if (send_arp(static_cast<int>(ArpOp::kReply), arp->target_ip, arp->source_mac, arp->source_ip, arp->source_mac))
    stats_.arp_replies_sent.add();
}

// Writer: the polling thread only. Readers: any thread (seqlock).
void NetpollDevice::learn_mac(const Ipv4Addr& ip, const MacAddr& mac) noexcept {
  if (ip.is_unspecified() || !mac.is_unicast()) return;
  const std::uint32_t key = ip.to_network_u32();
  ArpEntry* target = nullptr;
  ArpEntry* oldest = &arp_cache_[0];
  for (auto& e : arp_cache_) {
    const std::uint32_t k = e.ip.load(std::memory_order_relaxed);
    if (k == key) {
      target = &e;
      break;
    }
    if (k == 0 && target == nullptr) target = &e;
    if (e.updated_ns.load(std::memory_order_relaxed) < oldest->updated_ns.load(std::memory_order_relaxed)) oldest = &e;
  }
  if (target == nullptr) target = oldest;
  target->seq.fetch_add(1, std::memory_order_acq_rel);
  target->ip.store(key, std::memory_order_relaxed);
  target->mac.store(pack_mac(mac), std::memory_order_relaxed);
  target->updated_ns.store(now_ns(), std::memory_order_relaxed);
  target->seq.fetch_add(1, std::memory_order_release);
}

std::optional<MacAddr> NetpollDevice::cached_mac(const Ipv4Addr& ip) const noexcept {
  const std::uint32_t key = ip.to_network_u32();
  for (const auto& e : arp_cache_) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      const std::uint32_t s1 = e.seq.load(std::memory_order_acquire);
      if (s1 & 1u) continue;
      const std::uint32_t k = e.ip.load(std::memory_order_relaxed);
      const std::uint64_t m = e.mac.load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (e.seq.load(std::memory_order_relaxed) != s1) continue;
      if (k == key) return unpack_mac(m);
      break;
    }
  }
  return std::nullopt;
}

Result<MacAddr> NetpollDevice::arp_resolve(const Ipv4Addr& target, const Ipv4Addr& local_ip, const ResolveConfig& cfg) {
  for (int attempt = 0; attempt < cfg.tries; ++attempt) {
    const std::int64_t sent_at = now_ns();
    if (send_arp(static_cast<int>(ArpOp::kRequest), local_ip, MacAddr(), target, MacAddr::broadcast()))
      stats_.arp_requests_sent.add();
    const std::int64_t deadline = sent_at + std::chrono::nanoseconds(cfg.interval).count();
    while (now_ns() < deadline) {
      poll();
      for (const auto& e : arp_cache_) {
        if (e.ip.load(std::memory_order_relaxed) == target.to_network_u32() &&
            e.updated_ns.load(std::memory_order_relaxed) >= sent_at) {
          if (auto mac = cached_mac(target)) return *mac;
        }
      }
      nap(std::chrono::milliseconds(1));
    }
  }
  return fail(Errc::kTimeout);
}

// ---------------------------------------------------------------------------
// Statistics output

std::string NetpollDevice::stats_text() const {
  std::string s;
  const auto line = [&](const std::string& k, std::uint64_t v) {
    s += "  " + k + std::string(k.size() < 24 ? 24 - k.size() : 1, ' ') + std::to_string(v) + "\n";
  };
  s += "device " + spec_.text + " (" + dev_->mac().to_string() + ", mtu " + std::to_string(dev_->mtu()) + ")\n";
  line("clients", clients());
  line("rx frames", stats_.rx_frames.value());
  line("rx delivered", stats_.rx_delivered.value());
  line("rx passed through", stats_.rx_passed.value());
  stats_.rx_drops.for_each([&](RxDrop r, std::uint64_t n) {
    if (n != 0) line(std::string("rx drop ") + to_string(r), n);
  });
  line("arp replies sent", stats_.arp_replies_sent.value());
  line("arp replies seen", stats_.arp_replies_seen.value());
  line("arp requests sent", stats_.arp_requests_sent.value());
  line("tx frames", stats_.tx_frames.value());
  line("tx bytes", stats_.tx_bytes.value());
  line("tx direct", stats_.tx_direct.value());
  line("tx deferred", stats_.tx_deferred.value());
  line("tx busy retries", stats_.tx_retries.value());
  stats_.tx_drops.for_each([&](TxDrop r, std::uint64_t n) {
    if (n != 0) line(std::string("tx drop ") + to_string(r), n);
  });
  line("deferred queue depth", deferred_depth());
  line("deferred queue high", stats_.deferred_high.value());
  line("pool frames", pool_.frames());
  line("pool low-water", pool_.low_water());
  for (std::size_t i = 0; i < Dispatcher::kProtos; ++i) {
    const auto p = static_cast<Proto>(i);
    const auto& c = dispatcher_.counters(p);
    s += "  dispatch " + std::string(to_string(p)) + ": dispatched " + std::to_string(c.dispatched.value()) +
         ", direct " + std::to_string(c.direct.value()) + ", queued " + std::to_string(c.queued.value()) +
         ", deferred " + std::to_string(c.deferred.value()) + ", dropped " + std::to_string(c.dropped.value()) + "\n";
  }
  return s;
}

std::string NetpollDevice::stats_json() const {
  JsonWriter j;
  j.begin_object();
  j.field("device", spec_.text).field("mac", dev_->mac().to_string()).field("mtu", dev_->mtu());
  j.field("clients", clients()).field_bool("trapped", trapped());
  j.begin_object("rx");
  j.field("frames", stats_.rx_frames.value()).field("delivered", stats_.rx_delivered.value());
  j.field("passed", stats_.rx_passed.value());
  drops_json(j, stats_.rx_drops);
  j.end_object();
  j.begin_object("arp");
  j.field("replies_sent", stats_.arp_replies_sent.value()).field("replies_seen", stats_.arp_replies_seen.value());
  j.field("requests_sent", stats_.arp_requests_sent.value());
  j.end_object();
  j.begin_object("tx");
  j.field("frames", stats_.tx_frames.value()).field("bytes", stats_.tx_bytes.value());
  j.field("direct", stats_.tx_direct.value()).field("deferred", stats_.tx_deferred.value());
  j.field("busy_retries", stats_.tx_retries.value());
  drops_json(j, stats_.tx_drops);
  j.end_object();
  j.begin_object("deferred_queue");
  j.field("depth", deferred_depth()).field("high", stats_.deferred_high.value()).field("limit", cfg_.deferred_limit);
  j.end_object();
  j.begin_object("pool");
  j.field("frames", pool_.frames()).field("available", pool_.available()).field("low_water", pool_.low_water());
  j.end_object();
  j.begin_object("dispatch");
  for (std::size_t i = 0; i < Dispatcher::kProtos; ++i) {
    const auto p = static_cast<Proto>(i);
    const auto& c = dispatcher_.counters(p);
    j.begin_object(to_string(p));
    j.field("policy", std::string(dispatcher_.policy(p) == Policy::kDirect ? "direct" : "queued"));
    j.field("dispatched", c.dispatched.value()).field("direct", c.direct.value()).field("queued", c.queued.value());
    j.field("deferred", c.deferred.value()).field("dropped", c.dropped.value());
    j.field("queue_depth", dispatcher_.queued(p));
    j.end_object();
  }
  j.end_object();
  const auto& d = dev_->stats();
  j.begin_object("backend");
  j.field("rx_frames", d.rx_frames.value()).field("rx_bytes", d.rx_bytes.value());
  j.field("rx_dropped", d.rx_dropped.value()).field("tx_frames", d.tx_frames.value());
  j.field("tx_bytes", d.tx_bytes.value()).field("tx_busy", d.tx_busy.value()).field("tx_errors", d.tx_errors.value());
  j.end_object();
  j.end_object();
  return j.str();
}

// ---------------------------------------------------------------------------
// Registry

Registry& Registry::process() {
  static Registry r;
  return r;
}

SetupResult<std::shared_ptr<NetpollDevice>> Registry::acquire(const dev::DeviceSpec& spec, const DeviceConfig& cfg) {
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
  std::shared_ptr<NetpollDevice> d(new NetpollDevice(spec, std::move(*dev), cfg));
  if (cfg.service_thread) d->start_service_thread();
  devices_[spec.text] = d;
  return d;
}

// ---------------------------------------------------------------------------
// Netpoll (client)

Netpoll::Netpoll(ClientConfig cfg) : cfg_(std::move(cfg)) {}

Netpoll::~Netpoll() {
  if (dev_) dev_->detach(slot_);
}

void Netpoll::log(const std::string& msg) const {
  if (cfg_.log) cfg_.log(cfg_.name + ": " + msg);
}

MacAddr Netpoll::remote_mac() const noexcept { return unpack_mac(remote_mac_.load(std::memory_order_relaxed)); }

void Netpoll::set_remote_mac(const MacAddr& m) noexcept {
  remote_mac_.store(pack_mac(m), std::memory_order_relaxed);
  cfg_.target.remote_mac = m;
}

SetupResult<std::unique_ptr<Netpoll>> Netpoll::setup(ClientConfig cfg, Registry& registry) {
  std::unique_ptr<Netpoll> np(new Netpoll(std::move(cfg)));
  TargetOptions& t = np->cfg_.target;
  const std::string& name = np->cfg_.name;
  const auto fail_with = [&](Errc code, const std::string& msg) { return setup_error(code, name + ": " + msg); };

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
  const bool kernel_if = spec->kind == "packet";
  t.device = kernel_if ? spec->target : spec->text;

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
    if (t.local_ip.is_unspecified()) {
      auto ip = netlink::first_ipv4(ifindex);
      if (!ip) return fail_with(Errc::kNoAddress, "no IP address for " + spec->target + ", aborting");
      t.local_ip = *ip;
      np->log("local IP " + ip->to_string());
    }
  } else if (t.local_ip.is_unspecified()) {
    return fail_with(Errc::kNoAddress, spec->text +
                                           " has no kernel interface to take an address from: give the local "
                                           "IP in the target, e.g. 6665@10.0.0.1/" + spec->text + ",6666@10.0.0.2/");
  }

  auto dev = registry.acquire(*spec, np->cfg_.device);
  if (!dev) return fail_with(dev.error().code, dev.error().message);
  np->dev_ = std::move(*dev);

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
                                          std::to_string(NetpollDevice::kMaxClients) + ")");
  }
  return np;
}

SetupResult<MacAddr> Netpoll::resolve_remote_mac(bool use_cache) {
  const TargetOptions& t = cfg_.target;
  Ipv4Addr next_hop = t.remote_ip;
  if (dev_->spec().kind == "packet") {
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
  auto mac = dev_->arp_resolve(next_hop, t.local_ip, cfg_.resolve);
  if (mac) {
    log("remote ethernet address " + mac->to_string() + " (ARP reply from " + next_hop.to_string() + ")");
    set_remote_mac(*mac);
    return *mac;
  }
  if (!cfg_.resolve.allow_broadcast) {
    return setup_error(Errc::kTimeout, cfg_.name + ": no ARP reply from " + next_hop.to_string() + " after " +
                                           std::to_string(cfg_.resolve.tries) + " tries");
  }
  log("warning: no ARP reply from " + next_hop.to_string() + " after " + std::to_string(cfg_.resolve.tries) +
      " tries: sending to the broadcast address ff:ff:ff:ff:ff:ff");
  set_remote_mac(MacAddr::broadcast());
  return MacAddr::broadcast();
}

Result<void> Netpoll::send_udp(std::span<const std::byte> payload, Flush flush) noexcept {
  NetpollDevice& d = *dev_;
  const auto refuse = [&](TxDrop reason, Errc code) -> Result<void> {
    stats_.tx_drops.add(reason);
    d.stats_.tx_drops.add(reason);
    if (cfg_.drop_handler) cfg_.drop_handler(*this, payload, reason);
    return fail(code);
  };
  if (cfg_.target.remote_ip.is_unspecified()) return fail(Errc::kInvalidArgument);  // a receive-only client
  if (payload.size() > d.max_payload()) return refuse(TxDrop::kTooBig, Errc::kTooBig);
  auto idx = d.take_frame();
  if (!idx) return refuse(TxDrop::kNoBuffer, Errc::kNoBuffer);

  // One function per layer, innermost data first (in place, no copies after
  // this one).
  auto frame = d.pool_.frame(*idx);
  std::memcpy(frame.data() + kPayloadOffset, payload.data(), payload.size());
  const TargetOptions& t = cfg_.target;
  const UdpRepr udp{t.local_port, t.remote_port, frame.subspan(kPayloadOffset, payload.size())};
  auto ip_area = EthernetRepr{d.mac_, remote_mac(), ethertype::kIpv4}.emit(frame);
  auto udp_area = Ipv4Repr{t.local_ip, t.remote_ip, ip_proto::kUdp, static_cast<std::uint16_t>(udp.buffer_len()),
                           Ipv4Repr::kDefaultTtl, d.next_ip_ident(), false, 0}
                      .emit(ip_area);
  udp.emit(udp_area, t.local_ip, t.remote_ip);

  auto r = d.send_frame(*idx, kPayloadOffset + payload.size(), slot_, flush);
  if (r) {
    stats_.tx_datagrams.add();
    stats_.tx_bytes.add(payload.size());
  }
  return r;
}

std::string Netpoll::stats_text() const {
  const TargetOptions& t = cfg_.target;
  std::string s = "client " + cfg_.name + " " + t.local_ip.to_string() + ":" + std::to_string(t.local_port) + " -> " +
                  t.remote_ip.to_string() + ":" + std::to_string(t.remote_port) + " (" + remote_mac().to_string() +
                  ") on " + t.device + "\n";
  s += "  tx datagrams " + std::to_string(stats_.tx_datagrams.value()) + ", bytes " +
       std::to_string(stats_.tx_bytes.value()) + "\n";
  stats_.tx_drops.for_each([&s](TxDrop r, std::uint64_t v) {
    if (v != 0) s += std::string("  tx drop ") + to_string(r) + " " + std::to_string(v) + "\n";
  });
  s += "  rx datagrams " + std::to_string(stats_.rx_datagrams.value()) + ", bytes " +
       std::to_string(stats_.rx_bytes.value()) + "\n";
  return s;
}

std::string Netpoll::stats_json() const {
  const TargetOptions& t = cfg_.target;
  JsonWriter j;
  j.begin_object();
  j.field("name", cfg_.name).field("device", t.device);
  j.field("local", t.local_ip.to_string() + ":" + std::to_string(t.local_port));
  j.field("remote", t.remote_ip.to_string() + ":" + std::to_string(t.remote_port));
  j.field("remote_mac", remote_mac().to_string());
  j.begin_object("tx");
  j.field("datagrams", stats_.tx_datagrams.value()).field("bytes", stats_.tx_bytes.value());
  drops_json(j, stats_.tx_drops);
  j.end_object();
  j.begin_object("rx");
  j.field("datagrams", stats_.rx_datagrams.value()).field("bytes", stats_.rx_bytes.value());
  j.end_object();
  j.end_object();
  return j.str();
}

}  // namespace np::core
