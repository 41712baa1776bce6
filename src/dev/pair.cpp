// In-memory wire pair (see pair.h).
//
// Layout: a Wire (one per name, shared by its ends) holds, per end, a
// pointer to that end's receive port and a count of peers currently writing
// into it. A port is a single-producer/single-consumer ring plus an eventfd,
// owned by the end that receives from it.
//
// Ring memory order: `tail_` is written only by the producer, `head_` only
// by the consumer; both count frames since open and never wrap in practice
// (2^64), the slot is index % slots. The producer fills a slot, then
// publishes it with a release store of tail; the consumer's acquire load of
// tail therefore sees the slot's bytes and length. The consumer releases a
// slot with a release store of head after its sink returned; the producer's
// acquire load of head therefore never overwrites bytes still being read.
// Each side caches the other's index and reloads it only when the ring looks
// full (producer) or empty (consumer), so the shared cache lines are touched
// once per burst, not once per frame.
//
// Closing an end while its peer transmits: the peer announces itself in
// `writers` before it loads the port pointer; the closing end clears the
// pointer and then waits until `writers` is zero before freeing the port.
// Both sides use seq_cst, so either the peer sees the null pointer or the
// closer sees the peer's count (the store-load order plain acquire/release
// does not give). The wait is in the closer's setup context and lasts at
// most one frame copy; the data path never waits.
#include "netpoll/dev/pair.h"

#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include "posix.h"

namespace np::dev {
namespace {

constexpr std::size_t kCacheLine = 64;
constexpr std::size_t kMaxSlots = std::size_t{1} << 20;
constexpr std::size_t kMaxMtu = 65535 - Device::kEthHeaderLen;

// Makes an eventfd readable. The counter saturates only after 2^64 - 2
// writes (EAGAIN then, and it is readable anyway), so the result does not
// matter. Context: any.
void notify(int efd) noexcept {
  const std::uint64_t one = 1;
  if (::write(efd, &one, sizeof one) < 0) {
  }
}

class RxPort {
 public:
  RxPort(std::size_t slots, std::size_t slot_size, int efd)
      : slots_(slots),
        slot_size_(slot_size),
        efd_(efd),
        data_(new std::byte[slots * slot_size]),
        len_(new std::uint32_t[slots]) {
    // Touch every page now, at setup, so the first frames do not take page
    // faults on the data path.
    std::memset(data_.get(), 0, slots * slot_size);
  }
  ~RxPort() { ::close(efd_); }
  RxPort(const RxPort&) = delete;
  RxPort& operator=(const RxPort&) = delete;

  int efd() const noexcept { return efd_; }

  // Producer side. False when the ring is full. Context: any.
  bool push(std::span<const std::byte> frame) noexcept {
    const std::uint64_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_cache_ == slots_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (t - head_cache_ == slots_) return false;
    }
    const std::size_t i = static_cast<std::size_t>(t % slots_);
    std::memcpy(data_.get() + i * slot_size_, frame.data(), frame.size());
    len_[i] = static_cast<std::uint32_t>(frame.size());
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // Consumer side: hands up to `budget` frames to `f`, oldest first; a slot
  // is given back only after `f` returned. Context: any.
  template <class F>
  std::size_t pop(std::size_t budget, F&& f) noexcept {
    std::uint64_t h = head_.load(std::memory_order_relaxed);
    std::size_t n = 0;
    while (n < budget) {
      if (h == tail_cache_) {
        tail_cache_ = tail_.load(std::memory_order_acquire);
        if (h == tail_cache_) break;
      }
      const std::size_t i = static_cast<std::size_t>(h % slots_);
      f(std::span<const std::byte>(data_.get() + i * slot_size_, len_[i]));
      ++h;
      head_.store(h, std::memory_order_release);
      ++n;
    }
    return n;
  }

  // Consumer side. Context: any.
  bool empty() noexcept {
    const std::uint64_t h = head_.load(std::memory_order_relaxed);
    if (h != tail_cache_) return false;
    tail_cache_ = tail_.load(std::memory_order_acquire);
    return h == tail_cache_;
  }

 private:
  // Consumer's line: its index and its view of the producer's.
  alignas(kCacheLine) std::atomic<std::uint64_t> head_{0};
  std::uint64_t tail_cache_ = 0;
  // Producer's line.
  alignas(kCacheLine) std::atomic<std::uint64_t> tail_{0};
  std::uint64_t head_cache_ = 0;
  // Read-only after construction.
  alignas(kCacheLine) const std::size_t slots_;
  const std::size_t slot_size_;
  const int efd_;
  std::unique_ptr<std::byte[]> data_;
  std::unique_ptr<std::uint32_t[]> len_;
};

struct Wire {
  explicit Wire(std::size_t m) : mtu(m) {}
  const std::size_t mtu;
  // Under the registry mutex (setup only).
  bool open[2] = {false, false};
  // Data path.
  std::atomic<RxPort*> port[2] = {nullptr, nullptr};
  std::atomic<int> writers[2] = {0, 0};
  std::atomic<bool> up[2] = {true, true};
};

// The process-wide table of wires by name. pair:NAME is a rendezvous by
// name between two opens that know nothing of each other (two stacks in one
// test), so a global table is the point, not a shortcut. Never destroyed:
// an end closed during static destruction must still find it.
struct Registry {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Wire>, std::less<>> wires;
};

Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

class PairEnd final : public PairDevice {
 public:
  PairEnd(std::string name, std::string wire_name, std::shared_ptr<Wire> wire, int end,
          std::unique_ptr<RxPort> port, const MacAddr& mac)
      : name_(std::move(name)),
        wire_name_(std::move(wire_name)),
        wire_(std::move(wire)),
        end_(end),
        peer_(1 - end),
        port_(std::move(port)),
        mac_(mac),
        frame_max_(wire_->mtu + kEthHeaderLen) {}

  ~PairEnd() override {
    Registry& reg = registry();
    const std::lock_guard lock(reg.mu);
    wire_->port[end_].store(nullptr, std::memory_order_seq_cst);
    while (wire_->writers[end_].load(std::memory_order_seq_cst) != 0) ::sched_yield();
    // A pulled cable belonged to this end; the next end starts plugged in.
    wire_->up[end_].store(true, std::memory_order_relaxed);
    wire_->open[end_] = false;
    if (!wire_->open[peer_]) reg.wires.erase(wire_name_);
  }

  std::size_t receive(std::size_t budget, FrameSink sink) noexcept override {
    ErrnoSaver keep_errno;  // may run inside a signal handler
    if (budget == 0) return 0;
    // Drain the eventfd before looking at the ring: a frame pushed after
    // this read writes the eventfd again, so no wakeup is lost.
    std::uint64_t count;
    if (::read(port_->efd(), &count, sizeof count) < 0) {
      // EAGAIN: nothing was signalled; the ring may still hold frames
      // left behind by an earlier call.
    }
    const std::size_t n = port_->pop(budget, [&](std::span<const std::byte> frame) {
      stats_.rx_frames.add();
      stats_.rx_bytes.add(frame.size());
      sink(frame);
    });
    // Out of budget with frames left: keep the fd readable for them.
    if (n == budget && !port_->empty()) notify(port_->efd());
    return n;
  }

  TxStatus transmit(std::span<const std::byte> frame) noexcept override {
    ErrnoSaver keep_errno;  // may run inside a signal handler
    if (frame.size() > frame_max_ || frame.size() < kEthHeaderLen) {
      stats_.tx_errors.add();
      return TxStatus::kError;
    }
    if (!wire_->up[end_].load(std::memory_order_relaxed) || !wire_->up[peer_].load(std::memory_order_relaxed)) {
      stats_.tx_busy.add();
      return TxStatus::kBusy;
    }
    wire_->writers[peer_].fetch_add(1, std::memory_order_seq_cst);
    RxPort* peer = wire_->port[peer_].load(std::memory_order_seq_cst);
    bool pushed = false;
    if (peer != nullptr) {
      pushed = peer->push(frame);
      if (pushed) notify(peer->efd());
    }
    wire_->writers[peer_].fetch_sub(1, std::memory_order_seq_cst);
    if (peer != nullptr && !pushed) {
      stats_.tx_busy.add();
      return TxStatus::kBusy;
    }
    if (peer == nullptr) pair_stats_.tx_no_peer.add();
    stats_.tx_frames.add();
    stats_.tx_bytes.add(frame.size());
    return TxStatus::kOk;
  }

  void set_carrier(bool up) noexcept override { wire_->up[end_].store(up, std::memory_order_relaxed); }

  LinkState link() const noexcept override {
    const bool carrier = wire_->port[peer_].load(std::memory_order_acquire) != nullptr &&
                         wire_->up[end_].load(std::memory_order_relaxed) &&
                         wire_->up[peer_].load(std::memory_order_relaxed);
    return LinkState{.running = true, .carrier = carrier};
  }
  MacAddr mac() const noexcept override { return mac_; }
  std::size_t mtu() const noexcept override { return wire_->mtu; }
  int fd() const noexcept override { return port_->efd(); }
  std::string_view name() const noexcept override { return name_; }
  const DeviceStats& stats() const noexcept override { return stats_; }
  const PairStats& pair_stats() const noexcept override { return pair_stats_; }

 private:
  const std::string name_;
  const std::string wire_name_;
  const std::shared_ptr<Wire> wire_;
  const int end_;
  const int peer_;
  const std::unique_ptr<RxPort> port_;
  const MacAddr mac_;
  const std::size_t frame_max_;
  DeviceStats stats_;
  PairStats pair_stats_;
};

}  // namespace

SetupResult<std::unique_ptr<PairDevice>> open_pair_device(std::string name, std::string_view wire,
                                                         const PairOptions& options) {
  const std::string quoted = "device string '" + name + "'";
  if (wire.empty()) return setup_error(Errc::kInvalidArgument, quoted + ": the wire needs a name (pair:NAME)");
  if (options.mtu < 68 || options.mtu > kMaxMtu) {
    return setup_error(Errc::kInvalidArgument, quoted + ": mtu " + std::to_string(options.mtu) + " is outside 68.." +
                                                   std::to_string(kMaxMtu));
  }
  if (options.slots < 1 || options.slots > kMaxSlots) {
    return setup_error(Errc::kInvalidArgument, quoted + ": slots " + std::to_string(options.slots) +
                                                   " is outside 1.." + std::to_string(kMaxSlots));
  }
  const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return setup_error(Errc::kIo, quoted + ": eventfd: " + errno_text(errno));
  auto port = std::make_unique<RxPort>(options.slots, options.mtu + Device::kEthHeaderLen, efd);

  Registry& reg = registry();
  const std::lock_guard lock(reg.mu);
  auto it = reg.wires.find(wire);
  if (it == reg.wires.end()) it = reg.wires.emplace(std::string(wire), std::make_shared<Wire>(options.mtu)).first;
  const std::shared_ptr<Wire> w = it->second;
  if (w->open[0] && w->open[1]) {
    return setup_error(Errc::kExists, quoted + ": both ends of wire '" + std::string(wire) +
                                          "' are already open (a wire has two ends)");
  }
  // An existing wire has an open end (it is erased when both close).
  if (w->mtu != options.mtu) {
    return setup_error(Errc::kInvalidArgument, quoted + ": mtu " + std::to_string(options.mtu) +
                                                   " differs from the other end's " + std::to_string(w->mtu) +
                                                   " (both ends of a wire have one MTU)");
  }
  const int end = w->open[0] ? 1 : 0;
  const MacAddr mac = options.mac.value_or(MacAddr(0x02, 0, 0, 0, 0, static_cast<std::uint8_t>(end + 1)));
  w->up[end].store(true, std::memory_order_relaxed);
  w->port[end].store(port.get(), std::memory_order_seq_cst);
  w->open[end] = true;
  return std::unique_ptr<PairDevice>(
      new PairEnd(std::move(name), std::string(wire), w, end, std::move(port), mac));
}

}  // namespace np::dev
