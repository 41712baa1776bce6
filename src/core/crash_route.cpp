// A crash path's own way out (see crash_route.h).
#include "netpoll/core/crash_route.h"

#include <linux/if_packet.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "frame_layout.h"
#include "netpoll/base/clock.h"
#include "netpoll/base/errno_saver.h"
#include "netpoll/base/fd_identity.h"
#include "netpoll/core/netpoll.h"

namespace np::core {

using detail::kEthLen;

struct CrashRoute::State {
  int fd = -1;
  FdIdentity fd_id;
  int ifindex = 0;
  std::size_t mtu = 0;
  MacAddr src_mac, dst_mac;
  IpAddr src_ip, dst_ip;
  std::uint16_t src_port = 0, dst_port = 0;
  std::size_t payload_offset = 0;  // the family's (frame_layout.h)
  std::uint16_t ident = 0;
  std::size_t frame_size = 0;
  std::byte* frames = nullptr;  // kBatch frames of frame_size
  std::size_t pending = 0;
  sockaddr_ll to{};
  iovec iov[kBatch] = {};
  mmsghdr msgs[kBatch] = {};
  std::uint64_t sent = 0;
  std::uint64_t errors = 0;

  bool open_socket() noexcept {
    ErrnoSaver keep_errno;
    fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    // Straight to the driver: a qdisc's queue could refuse a burst.
    const int on = 1;
    static_cast<void>(::setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &on, sizeof on));
    fd_id = FdIdentity(fd);
    return true;
  }
};

SetupResult<std::unique_ptr<CrashRoute>> CrashRoute::make(Netpoll& np) {
  SharedDevice& d = np.shared();
  // An AF_XDP device's interface takes a raw AF_PACKET socket too: the
  // route never touches the device's rings.
  if ((d.spec().kind != "packet" && d.spec().kind != "xdp") || d.device().ifindex() <= 0)
    return std::unique_ptr<CrashRoute>();
  std::unique_ptr<CrashRoute> r(new CrashRoute());
  const std::size_t frame_size = d.device().mtu() + kEthLen;
  auto region = GuardedRegion::map(sizeof(State) + 64 + kBatch * frame_size, "a crash route");
  if (!region) return std::unexpected(region.error());
  r->region_ = std::move(*region);
  State* s = r->region_.make<State>();
  s->frames = static_cast<std::byte*>(r->region_.take(kBatch * frame_size, 64));
  if (s == nullptr || s->frames == nullptr) return setup_error(Errc::kNoBuffer, "a crash route's frames do not fit");
  r->state_ = s;
  if (!s->open_socket())
    return setup_error(errno == EPERM ? Errc::kPermission : Errc::kIo,
                       std::string("crash route: cannot open a packet socket: ") + std::strerror(errno));
  s->ifindex = d.device().ifindex();
  s->mtu = d.device().mtu();
  s->frame_size = frame_size;
  s->src_mac = d.device().mac();
  s->dst_mac = np.remote_mac();
  s->src_ip = np.local_ip();
  s->dst_ip = np.remote_ip();
  s->src_port = np.local_port();
  s->dst_port = np.remote_port();
  s->payload_offset = detail::udp_payload_offset(np.family());
  s->to.sll_family = AF_PACKET;
  s->to.sll_ifindex = s->ifindex;
  s->to.sll_halen = 6;
  std::memcpy(s->to.sll_addr, s->dst_mac.bytes().data(), 6);
  for (std::size_t i = 0; i < kBatch; ++i) {
    s->iov[i].iov_base = s->frames + i * frame_size;
    s->msgs[i].msg_hdr.msg_iov = &s->iov[i];
    s->msgs[i].msg_hdr.msg_iovlen = 1;
    s->msgs[i].msg_hdr.msg_name = &s->to;
    s->msgs[i].msg_hdr.msg_namelen = sizeof s->to;
  }
  return r;
}

CrashRoute::~CrashRoute() {
  // Only our own socket is ours to close.
  if (state_ != nullptr && state_->fd >= 0 && state_->fd_id.same(state_->fd)) ::close(state_->fd);
}

std::uint64_t CrashRoute::sent() const noexcept { return state_->sent; }
std::uint64_t CrashRoute::errors() const noexcept { return state_->errors; }

bool CrashRoute::revalidate() noexcept {
  ErrnoSaver keep_errno;
  State& s = *state_;
  if (s.fd >= 0 && s.fd_id.same(s.fd)) return true;
  return s.open_socket();
}

Result<void> CrashRoute::send(std::span<const std::byte> payload) noexcept {
  State& s = *state_;
  if (s.payload_offset + payload.size() > s.frame_size) {
    ++s.errors;
    return fail(Errc::kTooBig);
  }
  if (s.pending == kBatch) flush();
  const std::span<std::byte> frame(s.frames + s.pending * s.frame_size, s.payload_offset + payload.size());
  s.iov[s.pending].iov_len = detail::emit_udp_frame(frame, s.src_mac, s.dst_mac, {s.src_ip, s.src_port},
                                                    {s.dst_ip, s.dst_port}, s.ident++, payload);
  ++s.pending;
  return {};
}

std::size_t CrashRoute::flush() noexcept {
  ErrnoSaver keep_errno;
  State& s = *state_;
  std::size_t done = 0;
  std::size_t refused = 0;
  // Bounded: a full device gets a few 50 us pauses, then a frame the
  // kernel keeps refusing is counted and given up; never a blocking call.
  std::size_t pauses = 0;
  for (std::size_t round = 0; round < 4 * kBatch && done < s.pending; ++round) {
    const int n = ::sendmmsg(s.fd, s.msgs + done, static_cast<unsigned>(s.pending - done), MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      s.sent += static_cast<std::uint64_t>(n);
    } else if ((errno == EAGAIN || errno == ENOBUFS) && pauses < 20) {
      ++pauses;
      nap(std::chrono::microseconds(50));
    } else {
      ++done;  // refused (ENETDOWN, EMSGSIZE, ...): counted, not retried forever
      ++refused;
    }
  }
  refused += s.pending - done;
  s.errors += refused;
  s.pending = 0;
  return refused;
}

}  // namespace np::core
