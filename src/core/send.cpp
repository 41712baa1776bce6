// The send path of a shared device: frames from the pool, direct transmit
// with a bounded busy retry, the deferred queue that keeps order, and the
// drop accounting every refusal goes through.
#include "frame_layout.h"
#include "netpoll/base/clock.h"
#include "netpoll/core/netpoll.h"

namespace np::core {

using detail::udp_payload_offset;

std::optional<FramePool::Index> SharedDevice::take_frame() noexcept {
  // The seed's find_skb: when the pool is empty, tickle the device (here:
  // drain the deferred queue, which returns frames) up to 10 times.
  for (int attempt = 0; attempt < 10; ++attempt) {
    if (auto f = pool_.take()) return f;
    service_tx();
  }
  return pool_.take();
}

std::optional<FramePool::Index> SharedDevice::take_own_frame() noexcept {
  auto f = take_frame();
  if (!f) stats_.tx_drops.add(TxDrop::kNoBuffer);
  return f;
}

bool SharedDevice::may_transmit_now() noexcept {
  const pid_t me = current_tid();
  // Don't get frames out of order, and no recursion into the device from
  // inside its own poll. In emergency mode the owner drains the queue first
  // and then may transmit from anywhere (even from inside a poll it crashed
  // in); everyone else only queues.
  const pid_t emergency = emergency_owner_.load(std::memory_order_acquire);
  // (Only the queue: a kick per frame would cost the crash path a system
  // call per datagram; kLater frames go out with the owner's flush.)
  if (emergency == me && !txq_.empty()) service_tx();
  return emergency == me ? txq_.empty()
                         : emergency == 0 && txq_.empty() && poll_owner_.load(std::memory_order_relaxed) != me;
}

std::span<std::byte> SharedDevice::scratch_frame() noexcept {
  return pool_.scratch(emergency_owner_.load(std::memory_order_relaxed) == current_tid()
                           ? FramePool::Scratch::kEmergency
                           : FramePool::Scratch::kLocked);
}

dev::TxStatus SharedDevice::offer(std::span<const std::byte> bytes, Flush flush) noexcept {
  const auto once = [&] { return flush == Flush::kLater ? dev_->transmit_more(bytes) : dev_->transmit(bytes); };
  dev::TxStatus st = once();
  if (st == dev::TxStatus::kBusy) {
    // Tickle the device: a kick of frames queued with kLater usually frees
    // their slots at once, so try again before waiting.
    dev_->poll();
    st = once();
  }
  if (st == dev::TxStatus::kOk) {
    // Counted by the lock's holder: plain increments, no locked adds.
    stats_.tx_frames.add();
    stats_.tx_bytes.add(bytes.size());
    stats_.tx_direct.add();
    if (flush == Flush::kNow) {
      unkicked_.store(false, std::memory_order_relaxed);  // this kick took them all
    } else if (!unkicked_.load(std::memory_order_relaxed)) {
      unkicked_.store(true, std::memory_order_relaxed);
      wake_service();  // the first frame of a burst: make sure someone kicks
    }
  } else if (st == dev::TxStatus::kBusy) {
    stats_.tx_retries.add();
  }
  return st;
}

// offer()'s retry and counting, for one transmission of several frames.
// (Not one template with offer(): that measured 2-4 % slower at 64
// datagrams per kick in netpoll bench send, the path this protects.)
dev::TxStatus SharedDevice::offer_segments(std::span<const std::byte> headers,
                                           std::span<const std::span<const std::byte>> segments,
                                           std::size_t segment_size) noexcept {
  dev::TxStatus st = dev_->transmit_udp_segments(headers, segments, segment_size);
  if (st == dev::TxStatus::kBusy) {
    dev_->poll();
    st = dev_->transmit_udp_segments(headers, segments, segment_size);
  }
  if (st == dev::TxStatus::kOk) {
    std::size_t bytes = 0;
    for (const auto& s : segments) bytes += headers.size() + s.size();
    stats_.tx_frames.add(segments.size());
    stats_.tx_bytes.add(bytes);
    stats_.tx_direct.add(segments.size());
    unkicked_.store(false, std::memory_order_relaxed);  // the frames before went out first
  } else if (st == dev::TxStatus::kBusy) {
    stats_.tx_retries.add();
  }
  return st;
}

Result<void> SharedDevice::send_frame(FramePool::Index frame, std::size_t len, int client, Flush flush) noexcept {
  const std::span<const std::byte> bytes = pool_.frame(frame).first(len);
  if (may_transmit_now()) {
    std::int64_t deadline = 0;  // read the clock only once the device is busy
    for (;;) {
      if (acquire_tx()) {
        const dev::TxStatus st = offer(bytes, flush);
        release_tx();
        if (st == dev::TxStatus::kOk) {
          pool_.give_back(frame);
          return {};
        }
        if (st == dev::TxStatus::kError) {
          drop_frame(frame, len, client, client_generation(client), TxDrop::kDeviceError);
          return fail(Errc::kIo);
        }
      }
      const std::int64_t now = monotonic_ns();
      if (deadline == 0) deadline = now + std::chrono::nanoseconds(cfg_.retry_budget).count();
      if (now >= deadline) break;
      nap(cfg_.retry_interval);
    }
  }
  const std::uint16_t gen = client_generation(client);
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

void SharedDevice::flush() noexcept {
  // A kick that failed part way (the kernel stops at a frame it dropped,
  // e.g. a full queue or a filter) leaves the rest requested in the ring:
  // the device still says so, and the next flush kicks again.
  if (!unkicked_.load(std::memory_order_relaxed) && !dev_->tx_pending()) return;
  if (!acquire_tx()) return;  // the holder is transmitting; the service thread kicks later
  unkicked_.store(false, std::memory_order_relaxed);
  dev_->poll();
  release_tx();
}

bool SharedDevice::service_tx() noexcept {
  flush();
  if (txq_.empty()) return false;
  if (!acquire_tx()) return !txq_.empty();  // someone is transmitting: try again later
  struct Release {
    SharedDevice* d;
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

void SharedDevice::drop_frame(FramePool::Index frame, std::size_t len, int client, std::uint16_t generation,
                              TxDrop reason) noexcept {
  stats_.tx_drops.add(reason);
  if (client >= 0) {
    const auto& slot = clients_[static_cast<std::size_t>(client)];
    Netpoll* c = slot.client.load(std::memory_order_acquire);
    if (c != nullptr && slot.generation.load(std::memory_order_relaxed) == generation) {
      c->stats_.tx_drops.add(reason);
      const std::size_t at = udp_payload_offset(c->cfg_.target.family());
      if (c->cfg_.drop_handler && len >= at) c->cfg_.drop_handler(*c, pool_.frame(frame).subspan(at, len - at), reason);
    }
  }
  pool_.give_back(frame);
}

}  // namespace np::core
