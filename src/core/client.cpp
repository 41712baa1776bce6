// Netpoll, the client: its life on the shared device and send_udp.
#include <poll.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "frame_layout.h"
#include "netpoll/base/clock.h"
#include "netpoll/core/netpoll.h"

namespace np::core {

// Until resolved, the remote MAC is the broadcast address, as Linux's
// netpoll starts (and as describe() prints it): one answer everywhere.
Netpoll::Netpoll(ClientConfig cfg)
    : cfg_(std::move(cfg)), remote_mac_(detail::pack_mac(cfg_.target.remote_mac.value_or(MacAddr::broadcast()))) {}

Netpoll::~Netpoll() {
  if (dev_) dev_->detach(slot_);
  if (claimed_) dev_->device().unclaim(claim_);
}

void Netpoll::log(const std::string& msg) const {
  if (cfg_.log) cfg_.log(cfg_.name + ": " + msg);
}

MacAddr Netpoll::remote_mac() const noexcept {
  return detail::unpack_mac(remote_mac_.load(std::memory_order_relaxed));
}

void Netpoll::set_remote_mac(const MacAddr& m) noexcept {
  remote_mac_.store(detail::pack_mac(m), std::memory_order_relaxed);
  cfg_.target.remote_mac = m;
}

void Netpoll::wait_for_frames(std::int64_t until_ns, std::int64_t max_ns) noexcept {
  const std::int64_t ns = std::min(until_ns - monotonic_ns(), max_ns);
  if (ns <= 0) return;
  const int fd = dev_->device().fd();
  if (fd < 0) {
    nap(std::chrono::nanoseconds(std::min<std::int64_t>(ns, 100'000)));
    return;
  }
  pollfd p{fd, POLLIN, 0};
  const timespec ts{ns / 1'000'000'000, ns % 1'000'000'000};
  ::ppoll(&p, 1, &ts, nullptr);
}

Result<void> Netpoll::send_udp(std::span<const std::byte> payload, Flush flush) noexcept {
  if (cfg_.target.remote_ip.is_unspecified()) return fail(Errc::kInvalidArgument);  // a receive-only client
  return transmit_udp(nullptr, payload, flush);
}

Result<void> Netpoll::send_udp_to(const UdpEndpoint& to, std::span<const std::byte> payload, Flush flush) noexcept {
  if (to.ip.is_unspecified() || to.ip.family() != family() || to.port == 0) return fail(Errc::kInvalidArgument);
  return transmit_udp(&to, payload, flush);
}

std::size_t Netpoll::fill_for_target(std::span<std::byte> frame, std::span<const std::byte> payload) noexcept {
  const std::uint64_t mac = remote_mac_.load(std::memory_order_relaxed);
  if (mac != template_mac_) {
    template_.prepare(dev_->mac_, detail::unpack_mac(mac), cfg_.target.local_ip, cfg_.target.local_port,
                      cfg_.target.remote_ip, cfg_.target.remote_port);
    template_mac_ = mac;
  }
  return template_.fill(frame, family() == IpFamily::kV4 ? dev_->next_ip_ident_held() : 0, payload);
}

Result<void> Netpoll::send_udp_segments_to(const UdpEndpoint& to,
                                           std::span<const std::span<const std::byte>> segments) noexcept {
  SharedDevice& d = *dev_;
  const auto one_by_one = [&]() -> Result<void> {
    std::optional<Errc> first;
    for (const auto& s : segments) {
      if (auto r = send_udp_to(to, s, Flush::kLater); !r && !first) first = r.error();
    }
    if (first) return fail(*first);
    return {};
  };
  if (segments.empty()) return {};
  const std::size_t size = segments.front().size();
  if (segments.size() < 2 || segments.size() > segments_per_transmission(size)) return one_by_one();
  std::size_t total = 0;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const std::size_t n = segments[i].size();
    if (n == 0 || n > size || (n != size && i + 1 != segments.size())) return one_by_one();
    total += n;
  }
  if (to.ip.is_unspecified() || to.ip.family() != family() || to.port == 0) return fail(Errc::kInvalidArgument);
  if (!d.may_transmit_now() || !d.acquire_tx()) return one_by_one();
  const auto frame = d.scratch_frame();
  const auto n = static_cast<std::uint16_t>(segments.size());
  const std::uint16_t ident = family() == IpFamily::kV4 ? d.take_ip_idents_held(n) : 0;
  const std::size_t len = detail::emit_udp_headers_for_segments(
      frame, d.mac_, to.mac, {cfg_.target.local_ip, cfg_.target.local_port}, {to.ip, to.port}, ident, total);
  const dev::TxStatus st = d.offer_segments(frame.first(len), segments, size);
  if (st == dev::TxStatus::kOk) {
    stats_.tx_datagrams.add_held(n);
    stats_.tx_bytes.add_held(total);
  }
  d.release_tx();
  // Not taken (busy, or the device cannot after all): one by one, which
  // queues or counts each.
  return st == dev::TxStatus::kOk ? Result<void>{} : one_by_one();
}

std::size_t Netpoll::segments_per_transmission(std::size_t size) const noexcept {
  if (size == 0 || size > max_payload() || !dev_->dev_->segments_udp()) return 1;
  // Each piece a frame; the whole within one IP packet's length field.
  const std::size_t ip_header = family() == IpFamily::kV4 ? wire::Ipv4Repr::kHeaderLen : 0;
  const std::size_t fit = (0xffff - ip_header - detail::kUdpLen) / size;
  return std::max<std::size_t>(1, std::min(fit, dev::Device::kMaxUdpSegments));
}

Result<void> Netpoll::transmit_udp(const UdpEndpoint* to, std::span<const std::byte> payload, Flush flush) noexcept {
  SharedDevice& d = *dev_;
  const auto refuse = [&](TxDrop reason, Errc code) -> Result<void> {
    stats_.tx_drops.add(reason);
    d.stats_.tx_drops.add(reason);
    if (cfg_.drop_handler) cfg_.drop_handler(*this, payload, reason);
    return fail(code);
  };
  if (payload.size() > max_payload()) return refuse(TxDrop::kTooBig, Errc::kTooBig);
  // The one copy: the payload into the frame, with the headers.
  const auto build = [&](std::span<std::byte> frame, bool held) {
    const UdpEndpoint dst = to != nullptr ? *to : UdpEndpoint{remote_mac(), cfg_.target.remote_ip, cfg_.target.remote_port};
    const std::uint16_t ident = family() != IpFamily::kV4 ? 0 : held ? d.next_ip_ident_held() : d.next_ip_ident();
    return detail::emit_udp_frame(frame, d.mac_, dst.mac, {cfg_.target.local_ip, cfg_.target.local_port},
                                  {dst.ip, dst.port}, ident, payload);
  };

  // The device is free: the datagram is built in the scratch frame (to the
  // target: from the template, which the transmit lock also guards) and
  // handed over from there, under the transmit lock, counted without a
  // locked instruction. No pool frame is taken.
  if (d.may_transmit_now() && d.acquire_tx()) {
    const auto frame = d.scratch_frame();
    const std::size_t len = to == nullptr ? fill_for_target(frame, payload) : build(frame, true);
    const dev::TxStatus st = d.offer(frame.first(len), flush);
    if (st == dev::TxStatus::kOk) {
      stats_.tx_datagrams.add_held();
      stats_.tx_bytes.add_held(payload.size());
      d.release_tx();
      return {};
    }
    d.release_tx();
    if (st == dev::TxStatus::kError) return refuse(TxDrop::kDeviceError, Errc::kIo);
    // Busy: the datagram goes the way of one sent while the device is
    // taken, in a frame of the pool: retried, then queued.
  }
  auto idx = d.take_frame();
  if (!idx) return refuse(TxDrop::kNoBuffer, Errc::kNoBuffer);
  auto r = d.send_frame(*idx, build(d.pool_.frame(*idx), false), slot_, flush);
  if (r) {
    stats_.tx_datagrams.add();
    stats_.tx_bytes.add(payload.size());
  }
  return r;
}

}  // namespace np::core
