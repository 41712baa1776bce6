#include "netpoll/debugnet/stream.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "netpoll/base/clock.h"
#include "netpoll/base/owner_lock.h"

namespace np::debugnet {

using wire::DebugnetMessage;
using wire::DebugnetRepr;
namespace dn = wire::debugnet;

// One packet in flight: its number, when it was last sent, how often, and
// its bytes (header and payload) right after the struct.
struct Stream::Slot {
  std::uint32_t seq = 0;
  std::uint32_t len = 0;  // message bytes, header included
  std::int64_t sent_ns = 0;
  int tries = 0;
  std::byte* bytes() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
};

namespace {

constexpr std::size_t kHeader = DebugnetMessage<std::byte>::kHeaderLen;
// Frames handled per poll of the device while waiting for acknowledgements.
constexpr std::size_t kPollBudget = 64;
// The longest a wait for frames sleeps before looking at the clock again.
constexpr std::int64_t kMaxWaitNs = 1'000'000;
// The herald's line that says this client takes range acknowledgements.
constexpr std::string_view kRangeAcksLine = "acks=ranges\n";

}  // namespace

Stream::Stream(StreamConfig cfg) : cfg_(std::move(cfg)) {}

Stream::~Stream() = default;

SetupResult<std::unique_ptr<Stream>> Stream::setup(StreamConfig cfg) {
  if (cfg.window == 0 || cfg.window > dn::kMaxInFlight)
    return setup_error(Errc::kInvalidArgument, "the window is 1 to 64 packets");
  if (cfg.tries < 1 || cfg.herald_tries < 1) return setup_error(Errc::kInvalidArgument, "tries must be at least 1");
  if (cfg.ack_timeout.count() <= 0 || cfg.herald_interval.count() <= 0)
    return setup_error(Errc::kInvalidArgument, "timeouts must be positive");
  if (cfg.spin.count() < 0) return setup_error(Errc::kInvalidArgument, "the spin time must not be negative");
  // Nobody else sends on this device; the transferring thread polls it.
  cfg.client.device.service_thread = false;
  cfg.client.device.pool_frames = std::max<std::size_t>(cfg.client.device.pool_frames, 2 * dn::kMaxInFlight);
  cfg.client.device.deferred_limit = std::max<std::size_t>(cfg.client.device.deferred_limit, dn::kMaxInFlight + 8);
  // Acknowledgements come a few at a time, and the window waits for them:
  // each is handed over as it comes, not when a ring's block is full.
  cfg.client.device.rx_copy = true;
  if (cfg.client.name == "netpoll") cfg.client.name = "netdump";
  std::unique_ptr<Stream> s(new Stream(std::move(cfg)));
  s->window_ = static_cast<std::uint32_t>(s->cfg_.window);
  core::ClientConfig client = std::move(s->cfg_.client);  // the client keeps it
  Stream* self = s.get();
  client.rx_hook = [self](core::Netpoll&, const core::RxInfo& info, std::span<const std::byte> payload) {
    self->on_datagram(info, payload);
  };
  auto np = core::Netpoll::setup(std::move(client), s->registry_);
  if (!np) return std::unexpected(np.error());
  s->np_ = std::move(*np);
  const std::size_t payload = s->np_->max_payload();
  if (payload <= kHeader + 64) return setup_error(Errc::kTooBig, "the device's MTU is too small for netdump");
  s->max_data_ = payload - kHeader;
  s->slot_bytes_ = (sizeof(Slot) + kHeader + s->max_data_ + alignof(Slot) - 1) / alignof(Slot) * alignof(Slot);
  auto region = GuardedRegion::map(s->slot_bytes_ * dn::kMaxInFlight, "netdump's packets in flight");
  if (!region) return std::unexpected(region.error());
  s->slots_region_ = std::move(*region);
  auto* raw = s->slots_region_.make_array<std::byte>(s->slot_bytes_ * dn::kMaxInFlight + alignof(Slot));
  auto addr = reinterpret_cast<std::uintptr_t>(raw);
  addr = (addr + alignof(Slot) - 1) / alignof(Slot) * alignof(Slot);
  s->slots_ = reinterpret_cast<Slot*>(addr);
  for (std::size_t i = 0; i < dn::kMaxInFlight; ++i)
    new (reinterpret_cast<std::byte*>(s->slots_) + i * s->slot_bytes_) Slot();
  return s;
}

std::string Stream::describe() const {
  return np_->remote_ip().with_port(np_->remote_port()) + " via " + np_->shared().spec().text + " from " +
         np_->local_ip().with_port(np_->local_port());
}

Stream::Slot& Stream::slot(std::uint32_t seq) noexcept {
  return *reinterpret_cast<Slot*>(reinterpret_cast<std::byte*>(slots_) + (seq % dn::kMaxInFlight) * slot_bytes_);
}

void Stream::on_datagram(const core::RxInfo& info, std::span<const std::byte> payload) noexcept {
  // The device delivers only datagrams from the server's address to our
  // port; of those, only an acknowledgement means anything: 4 bytes for
  // one packet, or 8 for a run of them (the range our herald asked for).
  std::uint32_t first = 0, last = 0;
  if (const auto seq = wire::parse_debugnet_ack(payload)) {
    first = last = *seq;
  } else if (const auto run = wire::parse_debugnet_ack_range(payload)) {
    first = run->first;
    last = run->last;
  }
  if (first == 0) {
    stats_.stray.add();
    return;
  }
  const std::uint16_t port = session_port_.load(std::memory_order_acquire);
  if (port == 0) {
    // The herald's answer (a 4-byte ack of number 1) names the transfer's port.
    if (payload.size() == dn::kAckLen && first == 1 && info.src_port != 0) {
      std::uint16_t none = 0;
      herald_answer_.compare_exchange_strong(none, info.src_port, std::memory_order_acq_rel);
    } else {
      stats_.stray.add();
    }
    return;
  }
  if (info.src_port != port) {
    stats_.stray.add();
    return;
  }
  // At most a window's numbers (the range's parser holds it to that).
  for (std::uint32_t seq = first;; ++seq) {
    // A late duplicate of an older packet's ack must not hide a newer one
    // that shares its slot.
    auto& a = acked_[seq % dn::kMaxInFlight];
    std::uint32_t cur = a.load(std::memory_order_relaxed);
    while (cur < seq && !a.compare_exchange_weak(cur, seq, std::memory_order_release, std::memory_order_relaxed)) {
    }
    if (seq == last) break;
  }
}

bool Stream::transmit(Slot& s) noexcept {
  const std::uint16_t port = session_port_.load(std::memory_order_relaxed);
  const std::span<const std::byte> msg(s.bytes(), s.len);
  s.sent_ns = monotonic_ns();
  ++s.tries;
  Result<void> r;
  if (port == 0) {
    r = np_->send_udp(msg, core::Flush::kLater);  // the herald, to the herald port
  } else {
    r = np_->send_udp_to(core::UdpEndpoint{np_->remote_mac(), np_->remote_ip(), port}, msg, core::Flush::kLater);
  }
  if (!r) stats_.send_errors.add();
  return r.has_value();
}

void Stream::wait_for_frames(std::int64_t until_ns) noexcept {
  std::int64_t now = monotonic_ns();
  // Polling first: bounded by `spin` and by `until_ns`.
  const std::int64_t spin_end = std::min(until_ns, now + std::chrono::nanoseconds(cfg_.spin).count());
  while (now < spin_end) {
    if (np_->poll(kPollBudget) > 0) return;
    now = monotonic_ns();
  }
  np_->wait_for_frames(until_ns, kMaxWaitNs);
}

Result<void> Stream::fail_transfer(Errc e) noexcept {
  if (!failed_) stats_.failed.add();
  failed_ = true;
  return fail(e);
}

// Handles what arrived, moves the window on, and sends again what is due.
// `wait`: sleep until a frame arrives or a timeout is due if nothing moved.
Result<void> Stream::service(std::int64_t deadline_ns, bool wait) noexcept {
  push_unsent();
  np_->flush();
  np_->poll(kPollBudget);
  const std::uint32_t before = base_;
  // The newest acknowledged packet and when it was sent: what was sent
  // before it and is still unacknowledged was lost, not late (the path
  // keeps order).
  std::uint32_t newest = 0;
  std::int64_t newest_sent = 0;
  for (std::uint32_t seq = base_; seq != next_seq_; ++seq) {
    Slot& s = slot(seq);
    if (acked_[seq % dn::kMaxInFlight].load(std::memory_order_acquire) != seq) continue;
    if (s.seq == seq) {
      stats_.acks.add();
      s.seq = 0;  // counted once
      newest = seq;
      newest_sent = s.sent_ns;
    }
  }
  while (base_ != next_seq_ && slot(base_).seq != base_) ++base_;  // acknowledged (counted above)
  const std::int64_t now = monotonic_ns();
  const std::int64_t timeout = std::chrono::nanoseconds(cfg_.ack_timeout).count();
  std::int64_t next_due = now + timeout;
  bool resent = false;
  for (std::uint32_t seq = base_; seq != next_seq_; ++seq) {
    Slot& s = slot(seq);
    if (s.seq != seq) continue;  // acknowledged
    const bool lost = newest != 0 && seq + 2 < newest && s.sent_ns < newest_sent;
    const bool due = now - s.sent_ns >= timeout;
    if (!lost && !due) {
      next_due = std::min(next_due, s.sent_ns + timeout);
      continue;
    }
    if (s.tries >= cfg_.tries) return fail_transfer(Errc::kTimeout);
    (due ? stats_.retransmits : stats_.fast_resends).add();
    transmit(s);
    resent = true;
  }
  if (resent) np_->flush();
  if (now >= deadline_ns) return fail_transfer(Errc::kTimeout);
  if (wait && base_ == before && !resent) wait_for_frames(std::min(next_due, deadline_ns));
  return {};
}

Result<void> Stream::wait_for_room(std::int64_t deadline_ns, std::uint32_t room) noexcept {
  if (next_seq_ - base_ < window_) return {};
  // Full: wait until `room` packets may go, so that a server acknowledging
  // each packet alone does not make every later burst one packet long.
  // Bounded: every round either moves the window, resends (at most `tries`
  // times per packet), or sleeps until the deadline comes closer.
  while (window_ - (next_seq_ - base_) < room) {
    if (auto r = service(deadline_ns, true); !r) return r;
  }
  return {};
}

Result<void> Stream::queue_packet(std::uint32_t type, std::uint64_t offset, std::span<const std::byte> data,
                                  std::uint32_t aux2, std::int64_t deadline_ns) noexcept {
  if (data.size() > max_data_) return fail(Errc::kTooBig);
  if (auto r = wait_for_room(deadline_ns, 1); !r) return r;
  push_unsent();
  const std::uint32_t seq = next_seq_++;
  unsent_ = next_seq_;
  Slot& s = slot(seq);
  s.seq = seq;
  s.tries = 0;
  const DebugnetRepr m{type, seq, offset, aux2, data};
  s.len = static_cast<std::uint32_t>(m.emit(std::span(s.bytes(), kHeader + max_data_)).size());
  stats_.packets.add();
  if (type == dn::kData) stats_.data_bytes.add(data.size());
  transmit(s);
  return {};
}

void Stream::seal_pending() noexcept {
  if (pending_len_ == 0) return;
  // The packet was filled in place in next_seq_'s slot (room was made for
  // it before the first byte went in).
  const std::uint32_t seq = next_seq_++;
  Slot& s = slot(seq);
  s.seq = seq;
  s.tries = 0;
  auto m = DebugnetMessage<std::byte>::new_unchecked(std::span(s.bytes(), kHeader + max_data_));
  m.set_type(dn::kData);
  m.set_seqno(seq);
  m.set_offset(pending_offset_);
  m.set_len(static_cast<std::uint32_t>(pending_len_));
  m.set_aux2(0);
  s.len = static_cast<std::uint32_t>(kHeader + pending_len_);
  stats_.packets.add();
  stats_.data_bytes.add(pending_len_);
  pending_len_ = 0;
  // Sent when the window is full (wait_for_room() pushes them out and then
  // looks for acknowledgements) or at finish(): a burst of a window's
  // packets costs one kick (or two segmented transmissions) and one look,
  // and measured faster than sending every 16 or 32 packets (netpoll bench
  // dump).
}

void Stream::push_unsent() noexcept {
  const std::uint16_t port = session_port_.load(std::memory_order_relaxed);
  const core::UdpEndpoint to{np_->remote_mac(), np_->remote_ip(), port};
  const std::size_t full = kHeader + max_data_;
  const std::size_t most = cfg_.segment_offload && port != 0 ? np_->segments_per_transmission(full) : 1;
  while (unsent_ != next_seq_) {
    // A run of full packets, and the shorter one that may end it.
    std::span<const std::byte> pieces[dev::Device::kMaxUdpSegments];
    std::uint32_t n = 0;
    while (unsent_ + n != next_seq_ && n < most) {
      Slot& s = slot(unsent_ + n);
      pieces[n++] = {s.bytes(), s.len};
      if (s.len != full) break;
    }
    if (n == 1) {
      transmit(slot(unsent_));
    } else {
      const std::int64_t now = monotonic_ns();
      for (std::uint32_t k = 0; k < n; ++k) {
        Slot& s = slot(unsent_ + k);
        s.sent_ns = now;
        ++s.tries;
      }
      if (np_->send_udp_segments_to(to, std::span(pieces, n))) {
        stats_.segmented.add(n);
      } else {
        stats_.send_errors.add();
      }
    }
    unsent_ += n;
  }
}

Result<void> Stream::open(std::span<const std::byte> description, std::int64_t deadline_ns) noexcept {
  if (description.size() > max_data_) return fail(Errc::kTooBig);
  pid_t none = 0;
  const pid_t me = current_tid();
  if (!owner_.compare_exchange_strong(none, me, std::memory_order_acq_rel)) return fail(Errc::kBusy);
  // The program may have closed or reused the device's descriptors since
  // setup (a crashing one, above all): a lost one is not written to.
  static_cast<void>(np_->shared().revalidate());
  // A new transfer: nothing of the last one counts.
  session_port_.store(0, std::memory_order_release);
  herald_answer_.store(0, std::memory_order_release);
  for (auto& a : acked_) a.store(0, std::memory_order_relaxed);
  for (std::uint32_t i = 0; i < dn::kMaxInFlight; ++i) slot(i).seq = 0;
  failed_ = false;
  pending_len_ = 0;
  // Frames that waited in the device since the last transfer are old news.
  for (int i = 0; i < 64 && np_->poll(kPollBudget) > 0; ++i) {
  }
  next_seq_ = 1;
  base_ = 1;
  unsent_ = 1;
  Slot& h = slot(1);
  h.seq = 1;
  h.tries = 0;
  // The description, and the line that asks the server for range acks
  // (wire/debugnet.h) when the description is lines that one can follow.
  std::byte* text = h.bytes() + kHeader;
  std::memcpy(text, description.data(), description.size());
  std::size_t text_len = description.size();
  if ((description.empty() || description.back() == std::byte{'\n'}) &&
      description.size() + kRangeAcksLine.size() <= max_data_) {
    std::memcpy(text + text_len, kRangeAcksLine.data(), kRangeAcksLine.size());
    text_len += kRangeAcksLine.size();
  }
  const DebugnetRepr m{dn::kHerald, 1, 0, 1, std::span<const std::byte>(text, text_len)};
  h.len = static_cast<std::uint32_t>(m.emit(std::span(h.bytes(), kHeader + max_data_)).size());
  stats_.packets.add();
  const std::int64_t interval = std::chrono::nanoseconds(cfg_.herald_interval).count();
  for (int t = 0; t < cfg_.herald_tries; ++t) {
    transmit(h);
    np_->flush();
    const std::int64_t until = std::min(monotonic_ns() + interval, deadline_ns);
    while (monotonic_ns() < until) {
      np_->poll(kPollBudget);
      if (const std::uint16_t port = herald_answer_.load(std::memory_order_acquire); port != 0) {
        session_port_.store(port, std::memory_order_release);
        next_seq_ = 2;
        base_ = 2;
        unsent_ = 2;
        h.seq = 0;
        stats_.transfers.add();
        return {};
      }
      wait_for_frames(until);
    }
    if (monotonic_ns() >= deadline_ns) break;
    if (t + 1 < cfg_.herald_tries) stats_.retransmits.add();
  }
  stats_.failed.add();
  end_transfer();
  return fail(Errc::kTimeout);
}

Result<void> Stream::write(std::uint64_t offset, std::span<const std::byte> bytes, std::int64_t deadline_ns) noexcept {
  if (owner_.load(std::memory_order_acquire) != current_tid() || session_port_.load() == 0) return fail(Errc::kClosed);
  if (failed_) return fail(Errc::kTimeout);
  while (!bytes.empty()) {
    if (pending_len_ != 0 && (pending_offset_ + pending_len_ != offset || pending_len_ == max_data_)) {
      seal_pending();
    }
    if (pending_len_ == 0) {
      if (auto r = wait_for_room(deadline_ns, std::max<std::uint32_t>(1, window_ / 4)); !r) return r;
      pending_offset_ = offset;
    }
    const std::size_t n = std::min(bytes.size(), max_data_ - pending_len_);
    std::memcpy(slot(next_seq_).bytes() + kHeader + pending_len_, bytes.data(), n);
    pending_len_ += n;
    offset += n;
    bytes = bytes.subspan(n);
  }
  if (pending_len_ == max_data_) seal_pending();
  return {};
}

Result<void> Stream::finish(std::uint64_t size, bool partial, std::int64_t deadline_ns) noexcept {
  if (owner_.load(std::memory_order_acquire) != current_tid() || session_port_.load() == 0) return fail(Errc::kClosed);
  auto done = [&]() -> Result<void> {
    if (failed_) return fail(Errc::kTimeout);
    seal_pending();
    while (base_ != next_seq_) {
      if (auto r = service(deadline_ns, true); !r) return r;
    }
    if (auto r = queue_packet(dn::kFinished, size, {}, partial ? 1 : 0, deadline_ns); !r) return r;
    while (base_ != next_seq_) {
      if (auto r = service(deadline_ns, true); !r) return r;
    }
    return {};
  }();
  if (done) stats_.finished.add();
  end_transfer();
  return done;
}

void Stream::abandon() noexcept {
  if (owner_.load(std::memory_order_acquire) != current_tid()) return;
  np_->flush();
  end_transfer();
}

void Stream::end_transfer() noexcept {
  session_port_.store(0, std::memory_order_release);
  pending_len_ = 0;
  owner_.store(0, std::memory_order_release);
}

}  // namespace np::debugnet
