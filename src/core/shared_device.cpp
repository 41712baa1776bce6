// SharedDevice: life and teardown, the service thread, the client table,
// trap and passthrough, emergency mode.
#include "netpoll/core/shared_device.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "frame_layout.h"
#include "netpoll/base/clock.h"

namespace np::core {

using detail::kEthLen;

SharedDevice::SharedDevice(dev::DeviceSpec spec, std::unique_ptr<dev::Device> dev, const DeviceConfig& cfg)
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
  dispatcher_.register_handler(
      Proto::kIpv6, [this](std::span<const std::byte> f) { handle_ipv6(f); }, Policy::kDirect);
  dispatcher_.register_handler(
      Proto::kNdisc, [this](std::span<const std::byte> f) { handle_ndisc(f); }, Policy::kDirect);
}

SharedDevice::~SharedDevice() {
  stop_.store(true);
  wake_service();
  if (service_.joinable()) service_.join();
  // Give frames still queued a last chance (bounded), then count the rest.
  for (int i = 0; i < 20 && service_tx(); ++i) nap(std::chrono::milliseconds(10));
  while (auto e = txq_.try_pop()) {
    stats_.tx_drops.add(TxDrop::kShutdown);
    pool_.give_back(e->frame);
  }
  if (const int w = wake_fd_.load(); w >= 0) ::close(w);
}

void SharedDevice::start_service_thread() {
  // Only a service thread reads the wake-ups: without one, a burst's first
  // frame costs no write(2).
  const int w = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  wake_id_ = FdIdentity(w);
  wake_fd_.store(w);
  service_ = std::thread([this] { service_loop(); });
}

void SharedDevice::wake_service() noexcept {
  const int w = wake_fd_.load(std::memory_order_relaxed);
  if (w < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(w, &one, sizeof one);
}

bool SharedDevice::revalidate() noexcept {
  const int w = wake_fd_.load(std::memory_order_relaxed);
  if (w >= 0 && !wake_id_.same(w)) wake_fd_.store(-1, std::memory_order_relaxed);
  return dev_->revalidate();
}

// The seed's tx_work plus NAPI scheduling: sleep on the device's descriptor
// and the wake-up eventfd, poll what arrived, drain the deferred queue, and
// retry a busy device every deferred_retry.
void SharedDevice::service_loop() {
  bool pending = false;
  while (!stop_.load(std::memory_order_relaxed)) {
    pollfd fds[2];
    nfds_t n = 0;
    const bool has_device = dev_->fd() >= 0;
    if (has_device) fds[n++] = {dev_->fd(), POLLIN, 0};
    const int wake = wake_fd_.load(std::memory_order_relaxed);
    if (wake >= 0) fds[n++] = {wake, POLLIN, 0};
    // Frames waiting for a kick are kicked within a millisecond.
    const int timeout_ms = unkicked_.load(std::memory_order_relaxed) ? 1
                           : pending                                ? static_cast<int>(cfg_.deferred_retry.count())
                                                                    : 100;
    const int ready = ::poll(fds, n, timeout_ms);
    if (ready > 0 && wake >= 0 && (fds[n - 1].revents & POLLIN)) {
      std::uint64_t v;
      [[maybe_unused]] const ssize_t r = ::read(wake, &v, sizeof v);
    }
    if (ready > 0 && has_device && (fds[0].revents & (POLLERR | POLLNVAL))) {
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

int SharedDevice::attach(Netpoll* client) {
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

void SharedDevice::detach(int slot) {
  if (slot < 0) return;
  const bool mine = rx_lock_.held_by_me();  // detaching from inside a receive hook
  if (!mine) {
    while (!rx_lock_.try_lock()) nap(std::chrono::microseconds(100));
  }
  clients_[static_cast<std::size_t>(slot)].client.store(nullptr, std::memory_order_release);
  clients_[static_cast<std::size_t>(slot)].generation.fetch_add(1, std::memory_order_relaxed);
  if (!mine) rx_lock_.unlock();
}

std::size_t SharedDevice::clients() const noexcept {
  std::size_t n = 0;
  for (const auto& c : clients_) n += c.client.load(std::memory_order_relaxed) != nullptr;
  return n;
}

std::uint16_t SharedDevice::client_generation(int client) const noexcept {
  return client >= 0 ? clients_[static_cast<std::size_t>(client)].generation.load(std::memory_order_relaxed) : 0;
}

std::size_t SharedDevice::max_payload(IpFamily family) const noexcept {
  // The pool's frames hold the device's MTU and an Ethernet header (a
  // device's MTU is fixed when it opens): no call into the device.
  return pool_.frame_size() - detail::udp_payload_offset(family);
}

void SharedDevice::set_trap(bool on) noexcept {
  const int now = on ? trapped_.fetch_add(1) + 1 : trapped_.fetch_sub(1) - 1;
  // Trapped: ARP requests and neighbour solicitations wait in their queues
  // and are answered after the poll, as the seed's arp_tx queue is serviced
  // after poll_napi.
  dispatcher_.set_policy(Proto::kArp, now > 0 ? Policy::kQueued : Policy::kDirect);
  dispatcher_.set_policy(Proto::kNdisc, now > 0 ? Policy::kQueued : Policy::kDirect);
}

void SharedDevice::set_passthrough(PassthroughHook hook) {
  while (!rx_lock_.try_lock()) nap(std::chrono::microseconds(100));
  passthrough_ = std::move(hook);
  rx_lock_.unlock();
}

// ---------------------------------------------------------------------------
// Emergency mode and the transmit side

bool SharedDevice::emergency_elsewhere() const noexcept {
  const pid_t owner = emergency_owner_.load(std::memory_order_acquire);
  return owner != 0 && owner != current_tid();
}

bool SharedDevice::acquire_tx() noexcept {
  const pid_t owner = emergency_owner_.load(std::memory_order_acquire);
  if (owner != 0) return owner == current_tid();  // held for good by the emergency owner
  return tx_lock_.try_lock();
}

void SharedDevice::release_tx() noexcept {
  // A thread that took the lock just before emergency mode began gives it
  // back (the emergency owner is waiting for it); the owner keeps it.
  if (emergency_owner_.load(std::memory_order_acquire) != current_tid()) tx_lock_.unlock();
}

bool SharedDevice::enter_emergency(std::chrono::nanoseconds wait) noexcept {
  const pid_t me = current_tid();
  pid_t expected = 0;
  if (!emergency_owner_.compare_exchange_strong(expected, me, std::memory_order_acq_rel)) return expected == me;
  // From here on no other thread takes the transmit lock. One that holds it
  // now is inside transmit() or poll() for a few microseconds: let it leave.
  const std::int64_t deadline = monotonic_ns() + wait.count();
  while (!tx_lock_.held_by_me() && !tx_lock_.try_lock()) {
    if (monotonic_ns() >= deadline) {
      tx_lock_.steal();  // it never came back: the process is dying anyway
      break;
    }
    nap(std::chrono::microseconds(100));
  }
  return true;
}

}  // namespace np::core
