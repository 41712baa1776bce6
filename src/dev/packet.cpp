// AF_PACKET backend: TPACKET_V3 receive and transmit rings on one socket.
//
// One mapping holds both rings, receive first (the order packet_mmap uses):
//
//   [ RX block 0 | ... | RX block n-1 ][ TX slot 0 | ... | TX slot m-1 ]
//
// Receive. The kernel fills one block at a time with frames, each a
// tpacket3_hdr, a sockaddr_ll, a virtio_net_hdr and the frame, chained by
// tp_next_offset. It hands a block to us (block_status has TP_STATUS_USER)
// when the block is full or its retire timer fires, and it hands them over
// strictly in ring order; we give a block back by storing TP_STATUS_KERNEL.
// So our whole receive state is the index of the block we are reading plus
// our place inside it (offset and frames left): a small budget stops in the
// middle of a block and the next call resumes there. A block goes back to
// the kernel only when every frame in it has been examined.
//
// Drops. When every block is ours the kernel drops frames and counts them in
// its tp_drops; the next block it closes carries TP_STATUS_LOSING until that
// counter is read. We read it (PACKET_STATISTICS, which also clears it) only
// when we retire a block with that flag, so the common path makes no system
// call.
//
// Receive without the ring (rx=copy). recvmmsg() copies each frame out of
// the socket's queue into a batch of fixed buffers set aside at open, each
// as it comes: no block to fill and no timer to wait for, at a system call
// per batch. For clients that wait on a few small answers (acknowledgements,
// a debugger's packets), which a ring hands over only when a block is full
// or its timer fires. Frames the socket's queue had no room for are counted
// from the kernel's SO_RXQ_OVFL total.
//
// Transmit. Fixed slots, each a tpacket3_hdr with the data at a fixed offset.
// A slot is ours when its tp_status is TP_STATUS_AVAILABLE. On send() the
// kernel walks the slots from its own head, in ring order, taking every slot
// marked TP_STATUS_SEND_REQUEST and stopping at the first that is not. So we
// fill slots in the same order and never leave a gap; our tx_head_ is always
// the kernel's head plus the frames it has not yet taken.
//
// Checksums. Over veth (a container's link) frames sent by the peer's own
// stack arrive with the transport checksum not yet computed (the kernel
// defers it to a NIC that never exists). PACKET_VNET_HDR makes the kernel
// tell us so, with the exact place of the checksum; we complete it in the
// ring before the frame is handed on, so every frame we deliver is as it
// would be on a wire. The price is a zeroed 10-byte header in front of every
// transmitted frame.
#include "netpoll/dev/packet.h"

#include <arpa/inet.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "netpoll/base/guarded.h"
#include "posix.h"

namespace np::dev {
namespace {

// Frame data in a TX slot starts right after the aligned tpacket3_hdr: the
// kernel takes it from tp_hdrlen - sizeof(sockaddr_ll) (tpacket_parse_header).
constexpr std::size_t kTxDataOffset = TPACKET_ALIGN(sizeof(tpacket3_hdr));
static_assert(kTxDataOffset == 48);
// struct virtio_net_hdr from <linux/virtio_net.h>, which C++ cannot include
// (a member there is named `class`). Fields are in host byte order for
// packet sockets (legacy virtio on a little-endian host, native otherwise).
struct VnetHdr {
  std::uint8_t flags;
  std::uint8_t gso_type;
  std::uint16_t hdr_len;
  std::uint16_t gso_size;
  std::uint16_t csum_start;
  std::uint16_t csum_offset;
};
static_assert(sizeof(VnetHdr) == 10);
constexpr std::uint8_t kVnetNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr std::uint8_t kVnetGsoNone = 0;    // VIRTIO_NET_HDR_GSO_NONE
constexpr std::uint8_t kVnetGsoUdpL4 = 5;   // VIRTIO_NET_HDR_GSO_UDP_L4 (Linux 6.2+)
constexpr std::size_t kUdpCsumOffset = 6;   // offsetof(struct udphdr, check)
constexpr std::size_t kVnetHdrLen = sizeof(VnetHdr);
constexpr std::size_t kMinSlotSize = 2048;
// Short enough that a lone frame reaches us quickly (the kernel rounds up to
// one jiffy, 4 ms at HZ=250), long enough not to close blocks needlessly.
constexpr unsigned kRxBlockTimeoutMs = 1;
// rx=copy: frames taken by one recvmmsg() at most.
constexpr unsigned kRxCopyBatch = 16;

// Ring status words are shared with the kernel: acquire on reading the
// status before the data it guards, release on handing data over.
std::uint32_t load_status(std::uint32_t& word) noexcept {
  return std::atomic_ref<std::uint32_t>(word).load(std::memory_order_acquire);
}
void store_status(std::uint32_t& word, std::uint32_t v) noexcept {
  std::atomic_ref<std::uint32_t>(word).store(v, std::memory_order_release);
}

struct Geometry {
  std::size_t rx_block_size = 0;
  std::size_t rx_blocks = 0;
  std::size_t slot_size = 0;  // TX slot, and the nominal RX frame size
  std::size_t tx_block_size = 0;
  std::size_t tx_slots = 0;

  std::size_t rx_copy_bytes = 0;  // rx=copy: kRxCopyBatch buffers of slot_size (0: the ring)

  std::size_t rx_bytes() const noexcept { return rx_block_size * rx_blocks; }
  std::size_t tx_bytes() const noexcept { return slot_size * tx_slots; }
};

// Completes a checksum the sender left to "hardware" (virtio semantics: the
// field holds the pseudo-header sum; the one's complement sum from `start`
// to the end, field included, goes into the field). A result of 0 is sent as
// 0xffff, as the kernel does (a UDP checksum of 0 would mean "none").
void complete_checksum(std::byte* frame, std::size_t len, std::size_t start, std::size_t field) noexcept {
  std::uint64_t sum = 0;
  std::size_t i = start;
  for (; i + 1 < len; i += 2) {
    sum += (std::to_integer<std::uint32_t>(frame[i]) << 8) | std::to_integer<std::uint32_t>(frame[i + 1]);
  }
  if (i < len) sum += std::to_integer<std::uint32_t>(frame[i]) << 8;
  while ((sum >> 16) != 0) sum = (sum & 0xffff) + (sum >> 16);
  std::uint16_t c = static_cast<std::uint16_t>(~sum & 0xffff);
  if (c == 0) c = 0xffff;
  frame[field] = static_cast<std::byte>(c >> 8);
  frame[field + 1] = static_cast<std::byte>(c & 0xff);
}

}  // namespace

class PacketDevice final : public Device, public InGuardedMemory<PacketDevice> {
 public:
  PacketDevice(std::string name, int fd, std::byte* map, std::byte* rx_copy, const Geometry& g, int ifindex,
               MacAddr mac, std::size_t mtu, int gso_fd) noexcept
      : name_(std::move(name)),
        fd_(fd),
        fd_id_(fd),
        map_(map),
        geo_(g),
        tx_base_(map + g.rx_bytes()),
        rx_copy_(rx_copy),
        ifindex_(ifindex),
        mac_(mac),
        mtu_(mtu),
        gso_fd_(gso_fd),
        gso_id_(gso_fd) {}

  ~PacketDevice() override {
    ::munmap(map_, geo_.rx_bytes() + geo_.tx_bytes());
    if (rx_copy_ != nullptr) ::munmap(rx_copy_, geo_.rx_copy_bytes);
    if (!lost_) ::close(fd_);  // a lost descriptor is someone else's now
    if (spare_fd_ >= 0) ::close(spare_fd_);
    if (gso_fd_ >= 0) ::close(gso_fd_);  // one given up by revalidate() is not ours
  }

  bool revalidate() noexcept override;
  bool tx_pending() const noexcept override { return kick_pending_; }
  // PACKET_ADD_MEMBERSHIP: the interface's multicast filter passes `group`
  // while this socket is open.
  Result<void> join_multicast(const MacAddr& group) noexcept override {
    packet_mreq mr{};
    mr.mr_ifindex = ifindex_;
    mr.mr_type = PACKET_MR_MULTICAST;
    mr.mr_alen = MacAddr::kLen;
    std::memcpy(mr.mr_address, group.bytes().data(), MacAddr::kLen);
    if (::setsockopt(fd_, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) == 0) return {};
    return fail(errno == EPERM ? Errc::kPermission : Errc::kIo);
  }

  std::size_t receive(std::size_t budget, FrameSink sink) noexcept override;
  TxStatus transmit(std::span<const std::byte> frame) noexcept override;
  TxStatus transmit_more(std::span<const std::byte> frame) noexcept override;
  TxStatus transmit_udp_segments(std::span<const std::byte> headers, std::span<const std::span<const std::byte>> segments,
                                 std::size_t segment_size) noexcept override;
  bool segments_udp() const noexcept override { return gso_fd_ >= 0 && !gso_refused_ && !lost_; }
  void poll() noexcept override;
  LinkState link() const noexcept override;

  MacAddr mac() const noexcept override { return mac_; }
  std::size_t mtu() const noexcept override { return mtu_; }
  int ifindex() const noexcept override { return ifindex_; }
  int fd() const noexcept override { return lost_ ? spare_fd_ : fd_; }
  std::string_view name() const noexcept override { return name_; }
  const DeviceStats& stats() const noexcept override { return stats_; }

 private:
  // Lost descriptor: one frame per sendto() on the spare socket.
  TxStatus transmit_spare(std::span<const std::byte> frame) noexcept;

  std::byte* rx_block(std::size_t i) const noexcept { return map_ + i * geo_.rx_block_size; }
  tpacket3_hdr* tx_slot(std::size_t i) const noexcept {
    return reinterpret_cast<tpacket3_hdr*>(tx_base_ + i * geo_.slot_size);
  }
  // Hands one examined frame of the ring on, or counts why it could not be.
  void deliver(std::byte* block, std::size_t offset, FrameSink& sink, std::size_t& delivered) noexcept;
  // The same for a whole frame of `len` bytes with its virtio header right
  // before it, from either receive path.
  void deliver_frame(std::byte* frame, std::size_t len, FrameSink& sink, std::size_t& delivered) noexcept;
  // rx=copy's receive().
  std::size_t receive_copy(std::size_t budget, FrameSink& sink) noexcept;
  void retire_block() noexcept;
  // send(MSG_DONTWAIT): asks the kernel to take every requested TX slot.
  // Returns 0 or the errno of the failure.
  int kick() noexcept;
  TxStatus fill_slot(std::span<const std::byte> frame) noexcept;

  std::string name_;
  int fd_;
  FdIdentity fd_id_;
  // The program closed or replaced fd_: it is never used again. Frames go
  // out through spare_fd_, a raw socket opened when that was found (the
  // rings stay mapped, but kicking them needs the descriptor).
  bool lost_ = false;
  int spare_fd_ = -1;
  std::byte* map_;
  Geometry geo_;
  std::byte* tx_base_;
  std::byte* rx_copy_;  // rx=copy's buffers (a mapping of their own), or null
  int ifindex_;
  MacAddr mac_;
  std::size_t mtu_;
  DeviceStats stats_;

  // Receive side.
  std::size_t rx_index_ = 0;     // block we are reading or waiting for
  bool rx_open_ = false;         // true while that block is ours
  std::uint32_t rx_left_ = 0;    // frames in it not yet examined
  std::size_t rx_offset_ = 0;    // offset of the next of them in the block
  bool rx_losing_ = false;       // the block says the kernel dropped frames
  std::uint32_t rx_overflows_ = 0;  // rx=copy: the kernel's SO_RXQ_OVFL total, as last seen

  // Transmit side.
  std::size_t tx_head_ = 0;      // next slot to fill
  bool kick_pending_ = false;    // a kick failed: requested slots may wait
  // Segmentation offload: a socket without rings (a socket with a transmit
  // ring sends only from the ring), or -1; refused: the kernel refused a
  // segmented frame.
  int gso_fd_ = -1;
  FdIdentity gso_id_;
  bool gso_refused_ = false;
};

void PacketDevice::retire_block() noexcept {
  auto* desc = reinterpret_cast<tpacket_block_desc*>(rx_block(rx_index_));
  if (rx_losing_) {
    // Reading the statistics clears them: each drop is counted once.
    tpacket_stats_v3 st{};
    socklen_t len = sizeof st;
    if (!lost_ && ::getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) stats_.rx_dropped.add(st.tp_drops);
  }
  store_status(desc->hdr.bh1.block_status, TP_STATUS_KERNEL);
  rx_open_ = false;
  rx_losing_ = false;
  rx_index_ = rx_index_ + 1 == geo_.rx_blocks ? 0 : rx_index_ + 1;
}

void PacketDevice::deliver(std::byte* block, std::size_t offset, FrameSink& sink, std::size_t& delivered) noexcept {
  const auto* hdr = reinterpret_cast<const tpacket3_hdr*>(block + offset);
  const auto* sll = reinterpret_cast<const sockaddr_ll*>(block + offset + TPACKET_ALIGN(sizeof(tpacket3_hdr)));
  // PACKET_IGNORE_OUTGOING should keep these out; kernels without it do not.
  if (sll->sll_pkttype == PACKET_OUTGOING) return;

  const std::size_t mac_off = offset + hdr->tp_mac;
  const std::size_t len = hdr->tp_snaplen;
  // A frame cut short (longer than a block) is of no use to a receiver
  // that expects whole Ethernet frames.
  if (hdr->tp_snaplen != hdr->tp_len || hdr->tp_mac < kVnetHdrLen || mac_off + len > geo_.rx_block_size) {
    stats_.rx_dropped.add();
    return;
  }
  deliver_frame(block + mac_off, len, sink, delivered);
}

void PacketDevice::deliver_frame(std::byte* frame, std::size_t len, FrameSink& sink, std::size_t& delivered) noexcept {
  if (len < kEthHeaderLen || len > mtu_ + kEthHeaderLen) {  // longer than the device may carry
    stats_.rx_dropped.add();
    return;
  }
  VnetHdr vh;
  std::memcpy(&vh, frame - kVnetHdrLen, sizeof vh);
  if (vh.gso_type != kVnetGsoNone) {  // a merged super-frame (GRO)
    stats_.rx_dropped.add();
    return;
  }
  if ((vh.flags & kVnetNeedsCsum) != 0) {
    const std::size_t start = vh.csum_start;
    const std::size_t field = start + vh.csum_offset;
    if (field + 2 > len) {
      stats_.rx_dropped.add();
      return;
    }
    complete_checksum(frame, len, start, field);
  }
  stats_.rx_frames.add();
  stats_.rx_bytes.add(len);
  ++delivered;
  sink(std::span<const std::byte>(frame, len));
}

std::size_t PacketDevice::receive_copy(std::size_t budget, FrameSink& sink) noexcept {
  if (lost_) return 0;  // the program took the descriptor: nothing to read from
  std::size_t examined = 0;
  std::size_t delivered = 0;
  mmsghdr msgs[kRxCopyBatch];
  iovec iov[kRxCopyBatch];
  sockaddr_ll from[kRxCopyBatch];
  alignas(cmsghdr) char control[kRxCopyBatch][CMSG_SPACE(sizeof(std::uint32_t))];
  while (examined < budget) {
    const auto want = static_cast<unsigned>(std::min<std::size_t>(budget - examined, kRxCopyBatch));
    for (unsigned i = 0; i < want; ++i) {
      iov[i] = {rx_copy_ + i * geo_.slot_size, geo_.slot_size};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      msgs[i].msg_hdr.msg_control = control[i];
      msgs[i].msg_hdr.msg_controllen = sizeof control[i];
    }
    const int n = ::recvmmsg(fd_, msgs, want, MSG_DONTWAIT, nullptr);
    if (n <= 0) break;
    for (int i = 0; i < n; ++i) {
      ++examined;
      const msghdr& h = msgs[i].msg_hdr;
      for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL) continue;
        std::uint32_t total = 0;
        std::memcpy(&total, CMSG_DATA(c), sizeof total);
        stats_.rx_dropped.add(total - rx_overflows_);  // modulo 2^32, as the kernel counts
        rx_overflows_ = total;
      }
      // PACKET_IGNORE_OUTGOING should keep these out; kernels without it do not.
      if (from[i].sll_pkttype == PACKET_OUTGOING) continue;
      const std::size_t got = msgs[i].msg_len;
      if ((h.msg_flags & MSG_TRUNC) != 0 || got < kVnetHdrLen) {
        stats_.rx_dropped.add();
        continue;
      }
      deliver_frame(static_cast<std::byte*>(iov[i].iov_base) + kVnetHdrLen, got - kVnetHdrLen, sink, delivered);
    }
    if (static_cast<unsigned>(n) < want) break;
  }
  return delivered;
}

std::size_t PacketDevice::receive(std::size_t budget, FrameSink sink) noexcept {
  ErrnoSaver keep_errno;
  if (rx_copy_ != nullptr) return receive_copy(budget, sink);
  std::size_t examined = 0;
  std::size_t delivered = 0;
  while (examined < budget) {
    std::byte* block = rx_block(rx_index_);
    auto* desc = reinterpret_cast<tpacket_block_desc*>(block);
    if (!rx_open_) {
      const std::uint32_t status = load_status(desc->hdr.bh1.block_status);
      if ((status & TP_STATUS_USER) == 0) break;  // the kernel is still filling it
      rx_open_ = true;
      rx_losing_ = (status & TP_STATUS_LOSING) != 0;
      rx_left_ = desc->hdr.bh1.num_pkts;
      rx_offset_ = desc->hdr.bh1.offset_to_first_pkt;
    }
    if (rx_left_ == 0) {
      retire_block();
      continue;
    }
    // The ring is shared memory: never follow an offset out of the block.
    if (rx_offset_ + TPACKET3_HDRLEN > geo_.rx_block_size) {
      stats_.rx_dropped.add(rx_left_);
      retire_block();
      continue;
    }
    const std::size_t offset = rx_offset_;
    rx_offset_ += reinterpret_cast<const tpacket3_hdr*>(block + offset)->tp_next_offset;
    --rx_left_;
    ++examined;
    deliver(block, offset, sink, delivered);
    // Give the block back as soon as its last frame has been handed on.
    if (rx_left_ == 0) retire_block();
  }
  return delivered;
}

int PacketDevice::kick() noexcept {
  if (lost_) return 0;
  if (::send(fd_, nullptr, 0, MSG_DONTWAIT) >= 0) {
    kick_pending_ = false;
    return 0;
  }
  kick_pending_ = true;
  return errno;
}

// Copies a frame into the next transmit slot and requests it. kOk when
// the slot was ours; the caller decides when to kick.
TxStatus PacketDevice::fill_slot(std::span<const std::byte> frame) noexcept {
  if (frame.size() < kEthHeaderLen || frame.size() > mtu_ + kEthHeaderLen) {
    stats_.tx_errors.add();
    return TxStatus::kError;
  }
  tpacket3_hdr* slot = tx_slot(tx_head_);
  // Not a comparison with TP_STATUS_AVAILABLE: the kernel may hand a slot
  // back with timestamp bits (TP_STATUS_TS_*) set beside it.
  if ((load_status(slot->tp_status) & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING | TP_STATUS_WRONG_FORMAT)) != 0) {
    stats_.tx_busy.add();
    return TxStatus::kBusy;
  }
  auto* data = reinterpret_cast<std::byte*>(slot) + kTxDataOffset;
  // No offloads asked for. hdr_len is how much of the frame the kernel
  // copies into the socket buffer it builds (tpacket_snd): all of it. Left
  // at 0, the kernel copies the Ethernet header and lends it the rest as a
  // page of the ring, which a veth (every container's link) must then copy
  // again into a page of its own before the peer namespace may see it.
  VnetHdr vh{};
  vh.gso_type = kVnetGsoNone;
  vh.hdr_len = static_cast<std::uint16_t>(frame.size());
  std::memcpy(data, &vh, kVnetHdrLen);
  std::memcpy(data + kVnetHdrLen, frame.data(), frame.size());
  slot->tp_next_offset = 0;
  slot->tp_len = static_cast<std::uint32_t>(kVnetHdrLen + frame.size());
  slot->tp_snaplen = slot->tp_len;
  store_status(slot->tp_status, TP_STATUS_SEND_REQUEST);
  tx_head_ = tx_head_ + 1 == geo_.tx_slots ? 0 : tx_head_ + 1;
  return TxStatus::kOk;
}

bool PacketDevice::revalidate() noexcept {
  ErrnoSaver keep_errno;
  // The segmentation socket closed or replaced by the program is someone
  // else's now: given up, not closed; datagrams go one by one.
  if (gso_fd_ >= 0 && !gso_id_.same(gso_fd_)) gso_fd_ = -1;
  if (!lost_ && fd_id_.same(fd_)) return true;
  lost_ = true;
  if (spare_fd_ >= 0) return true;
  // Protocol 0: the spare socket receives nothing, it only sends.
  spare_fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (spare_fd_ < 0) return false;
  // Frames taken into the ring whose kick found the descriptor gone are
  // still there, requested: they go out through the spare socket, oldest
  // first (the slot after the newest is the oldest).
  for (std::size_t k = 0; k < geo_.tx_slots; ++k) {
    const std::size_t i = (tx_head_ + k) % geo_.tx_slots;
    tpacket3_hdr* slot = tx_slot(i);
    if (load_status(slot->tp_status) != TP_STATUS_SEND_REQUEST) continue;
    const std::size_t len = slot->tp_len;
    if (len > kVnetHdrLen && len - kVnetHdrLen <= mtu_ + kEthHeaderLen) {
      const auto* data = reinterpret_cast<const std::byte*>(slot) + kTxDataOffset + kVnetHdrLen;
      static_cast<void>(transmit_spare({data, len - kVnetHdrLen}));
    }
    store_status(slot->tp_status, TP_STATUS_AVAILABLE);
  }
  return true;
}

TxStatus PacketDevice::transmit_spare(std::span<const std::byte> frame) noexcept {
  if (spare_fd_ < 0 || frame.size() < kEthHeaderLen || frame.size() > mtu_ + kEthHeaderLen) {
    stats_.tx_errors.add();
    return TxStatus::kError;
  }
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex_;
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, frame.data(), 6);
  const ssize_t n = ::sendto(spare_fd_, frame.data(), frame.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&to),
                             sizeof to);
  if (n == static_cast<ssize_t>(frame.size())) {
    stats_.tx_frames.add();
    stats_.tx_bytes.add(frame.size());
    return TxStatus::kOk;
  }
  if (n < 0 && (errno == EAGAIN || errno == ENOBUFS || errno == ENETDOWN)) {
    stats_.tx_busy.add();
    return TxStatus::kBusy;
  }
  stats_.tx_errors.add();
  return TxStatus::kError;
}

TxStatus PacketDevice::transmit(std::span<const std::byte> frame) noexcept {
  ErrnoSaver keep_errno;
  if (lost_) return transmit_spare(frame);
  const std::size_t slot_index = tx_head_;
  if (const TxStatus st = fill_slot(frame); st != TxStatus::kOk) return st;
  tpacket3_hdr* slot = tx_slot(slot_index);

  const int err = kick();
  if ((err == ENETDOWN || err == ENXIO) && load_status(slot->tp_status) == TP_STATUS_SEND_REQUEST) {
    // The kernel refused before looking at any slot (interface down or
    // gone): take the frame back, so that kBusy means "not taken" and the
    // caller's retry cannot send it twice. Its head has not moved either.
    // (Frames queued before it by transmit_more() stay requested: they were
    // taken, and go out with the first kick that succeeds.)
    store_status(slot->tp_status, TP_STATUS_AVAILABLE);
    tx_head_ = slot_index;
    kick_pending_ = true;
    stats_.tx_busy.add();
    return TxStatus::kBusy;
  }
  // Any other failure (no socket buffer, qdisc full) leaves the frame
  // requested in the ring: it is ours to send, and poll() kicks again.
  stats_.tx_frames.add();
  stats_.tx_bytes.add(frame.size());
  return TxStatus::kOk;
}

// xmit_more: the frame waits in the ring for the next kick, so a burst
// costs one system call instead of one per frame.
TxStatus PacketDevice::transmit_more(std::span<const std::byte> frame) noexcept {
  if (lost_) {
    ErrnoSaver keep_errno;
    return transmit_spare(frame);
  }
  const TxStatus st = fill_slot(frame);
  if (st == TxStatus::kOk) {
    kick_pending_ = true;
    stats_.tx_frames.add();
    stats_.tx_bytes.add(frame.size());
  }
  return st;
}

// One sendmsg() of the virtio header, the headers and the segments: the
// kernel copies them into one socket buffer marked for UDP segmentation,
// which the interface's driver, or the kernel before it, cuts into
// datagrams; over a veth the peer takes it whole, and cuts it only for a
// socket that does not ask for it whole (UDP_GRO).
TxStatus PacketDevice::transmit_udp_segments(std::span<const std::byte> headers,
                                             std::span<const std::span<const std::byte>> segments,
                                             std::size_t segment_size) noexcept {
  ErrnoSaver keep_errno;
  if (!segments_udp() || segments.size() < 2 || segments.size() > kMaxUdpSegments ||
      headers.size() < kEthHeaderLen + kUdpCsumOffset + 2 || segment_size == 0 || segment_size > 0xffff) {
    return TxStatus::kError;
  }
  // Frames waiting in the ring were sent first.
  if (kick_pending_ && kick() != 0) return TxStatus::kBusy;
  VnetHdr vh{};
  vh.flags = kVnetNeedsCsum;
  vh.gso_type = kVnetGsoUdpL4;
  vh.hdr_len = static_cast<std::uint16_t>(headers.size());
  vh.gso_size = static_cast<std::uint16_t>(segment_size);
  vh.csum_start = static_cast<std::uint16_t>(headers.size() - 8);
  vh.csum_offset = kUdpCsumOffset;
  iovec iov[2 + kMaxUdpSegments];
  iov[0] = {&vh, sizeof vh};
  iov[1] = {const_cast<std::byte*>(headers.data()), headers.size()};
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    iov[2 + i] = {const_cast<std::byte*>(segments[i].data()), segments[i].size()};
    bytes += headers.size() + segments[i].size();
  }
  msghdr m{};
  m.msg_iov = iov;
  m.msg_iovlen = 2 + segments.size();
  if (::sendmsg(gso_fd_, &m, MSG_DONTWAIT) >= 0) {
    stats_.tx_frames.add(segments.size());
    stats_.tx_bytes.add(bytes);
    return TxStatus::kOk;
  }
  if (errno == EAGAIN || errno == ENOBUFS || errno == ENETDOWN) {
    stats_.tx_busy.add();
    return TxStatus::kBusy;
  }
  // EINVAL: a kernel before 6.2 knows no UDP segmentation in the virtio
  // header; whatever it was, the caller sends the datagrams one by one
  // from now on.
  gso_refused_ = true;
  return TxStatus::kError;
}

void PacketDevice::poll() noexcept {
  ErrnoSaver keep_errno;
  // Completed slots come back by themselves (the kernel's skb destructor
  // marks them available); only frames left behind by a failed kick need us.
  if (kick_pending_) static_cast<void>(kick());
}

LinkState PacketDevice::link() const noexcept {
  ErrnoSaver keep_errno;
  ifreq ifr{};
  // By index, so that a renamed interface is still the one we are bound to.
  ifr.ifr_ifindex = ifindex_;
  const int fd = lost_ ? spare_fd_ : fd_;
  if (::ioctl(fd, SIOCGIFNAME, &ifr) != 0) return {};
  if (::ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) return {};
  // The kernel marks the socket with ENETDOWN when the interface goes down;
  // left there it makes poll(2) report POLLERR on fd() forever. Reading it
  // clears it.
  int so_error = 0;
  socklen_t len = sizeof so_error;
  static_cast<void>(::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len));
  LinkState s;
  s.running = (ifr.ifr_flags & IFF_UP) != 0;
  // ifr_flags is 16 bits wide, so IFF_LOWER_UP never arrives here;
  // IFF_RUNNING (operationally up) is the carrier as the stack sees it.
  s.carrier = s.running && (ifr.ifr_flags & IFF_RUNNING) != 0;
  return s;
}

namespace {

// Sizes both rings for an interface of this MTU. TX slots (and the nominal
// RX frame size the kernel insists on) are a power of two of at least
// 2048 bytes that holds the slot header, the virtio header and a full frame.
// Context: setup.
SetupResult<Geometry> plan_rings(const std::string& name, const PacketOptions& o, std::size_t mtu) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  Geometry g;
  g.slot_size = std::bit_ceil(std::max(kMinSlotSize, kTxDataOffset + kVnetHdrLen + Device::kEthHeaderLen + mtu));
  if (o.rx_ring && (o.rx_blocks == 0 || o.rx_block_size == 0)) {
    return setup_error(Errc::kInvalidArgument, name + ": the receive ring needs at least one block of some bytes");
  }
  if (o.tx_frames == 0) {
    return setup_error(Errc::kInvalidArgument, name + ": the transmit ring needs at least one slot");
  }
  // Whole pages, holding a full frame at least (a block is one buffer
  // of the kernel's).
  if (o.rx_ring) {
    g.rx_block_size = (std::max(o.rx_block_size, g.slot_size) + page - 1) / page * page;
    g.rx_blocks = o.rx_blocks;
  } else {
    g.rx_copy_bytes = (kRxCopyBatch * g.slot_size + page - 1) / page * page;
  }
  // TX blocks must be whole pages; both sizes are powers of two, so a block
  // holds a whole number of slots, and the slot count is rounded up to fill
  // the last block.
  g.tx_block_size = std::max(g.slot_size, page);
  const std::size_t per_block = g.tx_block_size / g.slot_size;
  g.tx_slots = (o.tx_frames + per_block - 1) / per_block * per_block;
  return g;
}

// The socket segmented datagrams go out on (PacketDevice::gso_fd_), or -1
// where the interface cannot take them. Opened with the device, in its
// network namespace.
int open_gso_socket(int ifindex, bool qdisc_bypass) noexcept {
  // Protocol 0 and bound so: it sends on the interface and receives nothing.
  const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  // The kernel cuts a segmented frame only for an interface that completes
  // checksums itself (every NIC of this century; a veth does): otherwise it
  // drops it (ENOBUFS), so such an interface gets its datagrams one by one.
  ethtool_value csum{};
  csum.cmd = ETHTOOL_GTXCSUM;
  ifreq ifr{};
  ifr.ifr_ifindex = ifindex;
  if (::ioctl(fd, SIOCGIFNAME, &ifr) != 0) {
    ::close(fd);
    return -1;
  }
  ifr.ifr_data = reinterpret_cast<char*>(&csum);
  if (::ioctl(fd, SIOCETHTOOL, &ifr) != 0 || csum.data == 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_ifindex = ifindex;
  if (::setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) != 0 ||
      (qdisc_bypass && ::setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) != 0) ||
      ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

SetupResult<std::unique_ptr<Device>> open_packet_device(std::string name, std::string_view ifname,
                                                       const PacketOptions& options) {
  const std::string ifname_s(ifname);
  // Protocol 0: the socket sees nothing until bind() below names both the
  // interface and ETH_P_ALL, so no frame of another interface lands in the
  // ring in between.
  UniqueFd sock(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) {
    const int e = errno;
    if (e == EPERM || e == EACCES) {
      return setup_error(Errc::kPermission, name + ": AF_PACKET needs CAP_NET_RAW (run as root)");
    }
    return os_error(Errc::kIo, name, "cannot create an AF_PACKET socket", e);
  }

  // Every lookup goes through this socket, so it answers for the namespace
  // the device was opened in, whichever thread asks later.
  auto iface = look_up_interface(sock.get(), name, ifname_s);
  if (!iface) return std::unexpected(iface.error());
  const int ifindex = iface->ifindex;
  const std::size_t mtu = iface->mtu;

  auto geo = plan_rings(name, options, mtu);
  if (!geo) return std::unexpected(geo.error());

  const auto set_int = [&](int opt, int value) {
    return ::setsockopt(sock.get(), SOL_PACKET, opt, &value, sizeof value) == 0 ? 0 : errno;
  };
  // Version, virtio header and loss mode must be chosen before the rings exist.
  if (int e = set_int(PACKET_VERSION, TPACKET_V3)) return os_error(Errc::kUnsupported, name, "TPACKET_V3", e);
  if (int e = set_int(PACKET_VNET_HDR, 1)) return os_error(Errc::kUnsupported, name, "PACKET_VNET_HDR", e);
  // A slot the kernel finds malformed (possible only if the MTU shrank after
  // open) is then skipped and released instead of blocking the ring forever.
  if (int e = set_int(PACKET_LOSS, 1)) return os_error(Errc::kUnsupported, name, "PACKET_LOSS", e);
  // Our own frames must not come back to us. Older kernels lack the option;
  // receive() also skips PACKET_OUTGOING frames, so that is not fatal.
  static_cast<void>(set_int(PACKET_IGNORE_OUTGOING, 1));
  if (options.qdisc_bypass) {
    if (int e = set_int(PACKET_QDISC_BYPASS, 1)) return os_error(Errc::kUnsupported, name, "PACKET_QDISC_BYPASS", e);
  }

  if (options.rx_ring) {
    tpacket_req3 rx{};
    rx.tp_block_size = static_cast<unsigned>(geo->rx_block_size);
    rx.tp_block_nr = static_cast<unsigned>(geo->rx_blocks);
    rx.tp_frame_size = static_cast<unsigned>(geo->slot_size);
    rx.tp_frame_nr = static_cast<unsigned>(geo->rx_block_size / geo->slot_size * geo->rx_blocks);
    rx.tp_retire_blk_tov = kRxBlockTimeoutMs;
    if (::setsockopt(sock.get(), SOL_PACKET, PACKET_RX_RING, &rx, sizeof rx) != 0) {
      return os_error(Errc::kIo, name,
                      "cannot set up the receive ring (" + std::to_string(geo->rx_blocks) + " blocks of " +
                          std::to_string(geo->rx_block_size) + " bytes)",
                      errno);
    }
  } else {
    // rx=copy: the kernel's drop count comes with each frame.
    const int one = 1;
    if (::setsockopt(sock.get(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) != 0)
      return os_error(Errc::kUnsupported, name, "SO_RXQ_OVFL", errno);
  }
  tpacket_req3 tx{};  // the kernel refuses a TX ring with a timeout or private area
  tx.tp_block_size = static_cast<unsigned>(geo->tx_block_size);
  tx.tp_block_nr = static_cast<unsigned>(geo->tx_bytes() / geo->tx_block_size);
  tx.tp_frame_size = static_cast<unsigned>(geo->slot_size);
  tx.tp_frame_nr = static_cast<unsigned>(geo->tx_slots);
  if (::setsockopt(sock.get(), SOL_PACKET, PACKET_TX_RING, &tx, sizeof tx) != 0) {
    return os_error(Errc::kIo, name,
                    "cannot set up the transmit ring (" + std::to_string(geo->tx_slots) + " slots of " +
                        std::to_string(geo->slot_size) + " bytes)",
                    errno);
  }
  // MAP_POPULATE: fault every page in now, not on the crash path.
  const std::size_t map_len = geo->rx_bytes() + geo->tx_bytes();
  void* map = ::mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, sock.get(), 0);
  if (map == MAP_FAILED) {
    return os_error(Errc::kIo, name, "cannot map the rings (" + std::to_string(map_len) + " bytes)", errno);
  }

  // rx=copy's buffers, faulted in now as the rings are.
  void* rx_copy = nullptr;
  if (geo->rx_copy_bytes != 0) {
    rx_copy = ::mmap(nullptr, geo->rx_copy_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                     -1, 0);
    if (rx_copy == MAP_FAILED) {
      const int e = errno;
      ::munmap(map, map_len);
      return os_error(Errc::kIo, name, "cannot map the receive buffers", e);
    }
  }
  const auto unmap_all = [&] {
    ::munmap(map, map_len);
    if (rx_copy != nullptr) ::munmap(rx_copy, geo->rx_copy_bytes);
  };

  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = ifindex;
  if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    unmap_all();
    return os_error(Errc::kIo, name, "cannot bind to " + ifname_s, e);
  }
  // Binding to an interface that is down succeeds but leaves ENETDOWN
  // pending on the socket (POLLERR on fd()); clear it.
  int so_error = 0;
  socklen_t so_len = sizeof so_error;
  static_cast<void>(::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &so_error, &so_len));

  return std::unique_ptr<Device>(new PacketDevice(std::move(name), sock.release(), static_cast<std::byte*>(map),
                                                  static_cast<std::byte*>(rx_copy), *geo, ifindex,
                                                  iface->mac, mtu, open_gso_socket(ifindex, options.qdisc_bypass)));
}

}  // namespace np::dev
