// AF_XDP backend: an XSK socket on one queue, its UMEM, and netpoll's XDP
// program, loaded through libxdp (see xdp.h for the contract).
//
// The UMEM. `frames` chunks of `frame_size` bytes in one anonymous mapping,
// faulted in at open. The last min(frames/2, 2048) transmit, the others
// receive. A receive chunk is at all times in exactly one place, the fill
// ring, the kernel, the RX ring or our hands during receive(), and the
// fill ring has a slot for every one of them, so giving a chunk back never
// fails. A transmit chunk is on a free stack of ours (a mapping of its
// own), on the TX ring, in the kernel, or on the completion ring, which
// poll() and transmit() drain back onto the stack.
//
// The rings are the kernel's (mapped by libxdp's xsk_umem__create and
// xsk_socket__create at open) and are driven with libxdp's inline ring
// helpers: producer and consumer indices with acquire/release ordering, no
// system call, no allocation. The receive side (RX and fill rings) and the
// transmit side (TX and completion rings, the free stack) share nothing, so
// one thread may receive while another transmits, as Device allows.
//
// Kicks. With XDP_USE_NEED_WAKEUP the kernel says, in a flag on each ring,
// when it needs a system call to go on: sendto() for TX (always, in copy
// mode: frames are sent inside that call), recvfrom() for the fill ring
// (a zero-copy driver that ran out of fill frames). Without the flag set no
// call is made.
//
// A down interface. In copy mode the kernel takes the first frame of the TX
// ring, finds the interface not running and drops it, answering EBUSY (or
// ENETDOWN before taking any). So transmit() answers kBusy for its own frame
// when the kick that carried it failed so: the frame is not sent later.
//
// The crash path: the device keeps its rings, the UMEM and the free stack in
// mappings of its own (never the malloc heap) and the object itself in
// guarded memory. revalidate() checks the socket is still the one it opened;
// a socket the program closed cannot be remade without allocating (libxdp
// builds its rings with malloc), so frames then go out through a fresh raw
// AF_PACKET socket on the interface, as the packet device's do.
#include "netpoll/dev/xdp.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ifaddrs.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "netpoll/base/guarded.h"
#include "posix.h"
#include "xdp_program_object.h"
#include "xdp_steer_maps.h"

namespace np::dev {
namespace {

constexpr const char* kProgramName = "netpoll_steer";
// Bytes the kernel keeps in front of a received frame in its chunk.
constexpr std::size_t kRxHeadroom = XDP_PACKET_HEADROOM;
// How long the answer to one of netpoll's ARP requests or solicitations is
// netpoll's (a resolution asks a few times, a second apart).
constexpr std::int64_t kAwaitNs = 5'000'000'000;
// Transmit frames at most (the rest of the UMEM receives).
constexpr std::size_t kMaxTxFrames = 2048;
// XDP_STATISTICS is read at most this often while frames arrive.
constexpr std::int64_t kStatsEveryNs = 1'000'000;

std::int64_t now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);  // bpf_ktime_get_ns()'s clock
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::uint16_t load_be16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) | std::to_integer<unsigned>(p[1]));
}

// One's complement sum of 16-bit big-endian words (an odd last byte padded
// with zero), not folded.
std::uint64_t sum16(const std::byte* p, std::size_t len) noexcept {
  std::uint64_t sum = 0;
  std::size_t i = 0;
  for (; i + 1 < len; i += 2) sum += load_be16(p + i);
  if (i < len) sum += std::to_integer<std::uint32_t>(p[i]) << 8;
  return sum;
}
std::uint16_t fold(std::uint64_t sum) noexcept {
  while ((sum >> 16) != 0) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

// Checksums left to a NIC that never existed. A local kernel sending over
// veth leaves a UDP checksum for "hardware" to finish (CHECKSUM_PARTIAL: the
// field holds the pseudo-header's sum, not complemented), and an XDP frame
// carries no word of it (the packet device learns it from a virtio header;
// AF_XDP has none). So a UDP datagram whose checksum does not verify, and
// whose field holds exactly its pseudo-header's sum, is taken for such a
// frame and its checksum finished here, as the hardware would have. The
// price: a datagram corrupted on a real wire passes as well when its field
// happens to equal that sum (one chance in 65536, on top of the same chance
// that a 16-bit checksum always leaves). Anything not a plain IPv4 or IPv6
// UDP datagram is left alone for the receive path to judge.
void finish_partial_udp_checksum(std::byte* f, std::size_t len) noexcept {
  constexpr std::size_t kL3 = Device::kEthHeaderLen;
  if (len < kL3 + 20 + 8) return;
  const std::uint16_t type = load_be16(f + 12);
  std::size_t udp = 0;
  std::size_t udp_len = 0;
  std::uint64_t pseudo = 0;
  if (type == ETH_P_IP) {
    const unsigned vihl = std::to_integer<unsigned>(f[kL3]);
    const std::size_t ihl = (vihl & 0x0f) * 4;
    if ((vihl >> 4) != 4 || ihl < 20 || std::to_integer<unsigned>(f[kL3 + 9]) != IPPROTO_UDP) return;
    if ((load_be16(f + kL3 + 6) & 0x3fff) != 0) return;  // a fragment
    const std::size_t total = load_be16(f + kL3 + 2);
    if (total < ihl + 8 || kL3 + total > len) return;
    udp = kL3 + ihl;
    udp_len = load_be16(f + udp + 4);
    if (udp_len < 8 || udp_len > total - ihl) return;
    pseudo = sum16(f + kL3 + 12, 8) + IPPROTO_UDP + udp_len;
  } else if (type == ETH_P_IPV6) {
    if (len < kL3 + 40 + 8) return;
    if ((std::to_integer<unsigned>(f[kL3]) >> 4) != 6 || std::to_integer<unsigned>(f[kL3 + 6]) != IPPROTO_UDP) return;
    const std::size_t payload = load_be16(f + kL3 + 4);
    if (payload < 8 || kL3 + 40 + payload > len) return;
    udp = kL3 + 40;
    udp_len = load_be16(f + udp + 4);
    if (udp_len < 8 || udp_len > payload) return;
    pseudo = sum16(f + kL3 + 8, 32) + IPPROTO_UDP + udp_len;
  } else {
    return;
  }
  const std::uint16_t field = load_be16(f + udp + 6);
  if (field == 0 || field != fold(pseudo)) return;  // 0: no checksum (IPv4)
  const std::uint64_t rest = sum16(f + udp, udp_len);  // the field included: it holds the pseudo-header's sum
  if (fold(pseudo + rest) == 0xffff) return;           // it verifies as it is
  std::uint16_t c = static_cast<std::uint16_t>(~fold(rest));
  if (c == 0) c = 0xffff;  // RFC 768: a computed 0 is sent as all ones
  f[udp + 6] = static_cast<std::byte>(c >> 8);
  f[udp + 7] = static_cast<std::byte>(c & 0xff);
}

// libbpf and libxdp print to stderr by default; their messages are kept
// here instead (the last few lines), and an error names what they said
// only when it helps. Setup only: both libraries print from setup calls.
struct LibraryLog {
  std::mutex mu;
  std::string text;
  void add(const char* fmt, va_list ap) {
    char line[512];
    std::vsnprintf(line, sizeof line, fmt, ap);
    std::lock_guard lock(mu);
    text += line;
    if (text.size() > 4096) text.erase(0, text.size() - 4096);
  }
  std::string take() {
    std::lock_guard lock(mu);
    return std::exchange(text, {});
  }
};
LibraryLog& library_log() {
  static LibraryLog log;
  return log;
}
int from_libbpf(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level != LIBBPF_DEBUG) library_log().add(fmt, ap);
  return 0;
}
int from_libxdp(enum libxdp_print_level level, const char* fmt, va_list ap) {
  if (level != LIBXDP_DEBUG) library_log().add(fmt, ap);
  return 0;
}
void quiet_libraries() {
  static std::once_flag once;
  std::call_once(once, [] {
    libbpf_set_print(from_libbpf);
    libxdp_set_print(from_libxdp);
  });
}

// Whether the kernel has `c`'s address on any interface of this namespace
// (it then answers ARP and solicitations for it itself). Context: setup.
bool kernel_holds(const Claim& c) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return false;
  bool found = false;
  for (ifaddrs* a = list; a != nullptr && !found; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    if (c.family == Claim::Family::kIpv4 && a->ifa_addr->sa_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
      found = std::memcmp(&in->sin_addr, c.addr.data(), 4) == 0;
    } else if (c.family == Claim::Family::kIpv6 && a->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
      found = std::memcmp(&in6->sin6_addr, c.addr.data(), 16) == 0;
    }
  }
  ::freeifaddrs(list);
  return found;
}

// The maps of netpoll's program, by name. Context: setup.
struct MapFds {
  int xsks = -1, owned4 = -1, owned6 = -1, udp4 = -1, udp6 = -1, wait4 = -1, wait6 = -1, settings = -1;
};

// The pid recorded in the settings map of an attached netpoll program (its
// loader), or 0. Context: setup.
pid_t owner_of_program(int prog_fd) {
  bpf_prog_info info{};
  std::array<__u32, 16> ids{};
  info.nr_map_ids = static_cast<__u32>(ids.size());
  info.map_ids = reinterpret_cast<std::uintptr_t>(ids.data());
  __u32 len = sizeof info;
  if (::bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return 0;
  pid_t owner = 0;
  for (__u32 i = 0; i < std::min<__u32>(info.nr_map_ids, ids.size()); ++i) {
    const int fd = ::bpf_map_get_fd_by_id(ids[i]);
    if (fd < 0) continue;
    bpf_map_info minfo{};
    __u32 mlen = sizeof minfo;
    if (::bpf_obj_get_info_by_fd(fd, &minfo, &mlen) == 0 && std::strcmp(minfo.name, "settings") == 0) {
      const __u32 key = NP_XDP_SETTING_OWNER;
      __u32 value = 0;
      if (::bpf_map_lookup_elem(fd, &key, &value) == 0) owner = static_cast<pid_t>(value);
    }
    ::close(fd);
  }
  return owner;
}

// A process that exists and is not a zombie (whose parent has not yet
// reaped it: it holds nothing any more). Context: setup.
bool process_alive(pid_t pid) {
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) return false;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  std::FILE* f = std::fopen(path, "re");
  if (f == nullptr) return true;  // another pid namespace's /proc: take it as alive
  char buf[512];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* paren = std::strrchr(buf, ')');  // the state follows the name, which may hold anything
  return paren == nullptr || paren[1] != ' ' || (paren[2] != 'Z' && paren[2] != 'X');
}

}  // namespace

class XdpDevice final : public Device, public InGuardedMemory<XdpDevice> {
 public:
  XdpDevice(std::string name, std::string ifname, int ifindex, MacAddr mac, std::size_t mtu, const XdpOptions& o)
      : name_(std::move(name)), ifname_(std::move(ifname)), ifindex_(ifindex), mac_(mac), mtu_(mtu), opt_(o) {}
  ~XdpDevice() override;

  // Everything after the constructor. Context: setup.
  SetupResult<void> open();

  std::size_t receive(std::size_t budget, FrameSink sink) noexcept override;
  TxStatus transmit(std::span<const std::byte> frame) noexcept override;
  TxStatus transmit_more(std::span<const std::byte> frame) noexcept override;
  void poll() noexcept override;
  bool tx_pending() const noexcept override { return kick_pending_; }
  LinkState link() const noexcept override;
  MacAddr mac() const noexcept override { return mac_; }
  std::size_t mtu() const noexcept override { return mtu_; }
  int ifindex() const noexcept override { return ifindex_; }
  int fd() const noexcept override { return lost_ ? -1 : fd_; }
  std::string_view name() const noexcept override { return name_; }
  const DeviceStats& stats() const noexcept override { return stats_; }
  bool revalidate() noexcept override;
  SetupResult<void> claim(const Claim& what) override;
  void unclaim(const Claim& what) noexcept override;

 private:
  struct ClaimCount {
    Claim claim;
    int count;
  };

  SetupResult<void> attach_program();
  SetupResult<void> create_socket();

  // Transmit side.
  void reclaim() noexcept;
  TxStatus put(std::span<const std::byte> frame) noexcept;
  int kick() noexcept;
  TxStatus transmit_spare(std::span<const std::byte> frame) noexcept;
  void note_question(std::span<const std::byte> frame) noexcept;
  // Receive side.
  void read_kernel_drops() noexcept;

  std::byte* chunk(std::uint64_t addr) const noexcept { return umem_ + addr; }

  std::string name_;
  std::string ifname_;
  int ifindex_;
  MacAddr mac_;
  std::size_t mtu_;
  XdpOptions opt_;
  DeviceStats stats_;

  // Set up by open().
  std::byte* umem_ = nullptr;
  std::size_t umem_bytes_ = 0;
  std::size_t rx_frames_ = 0;
  std::size_t tx_frames_ = 0;
  std::uint64_t* tx_free_ = nullptr;  // a mapping of tx_frames_ addresses
  std::size_t tx_free_bytes_ = 0;
  xsk_ring_prod fill_{};
  xsk_ring_cons comp_{};
  xsk_ring_cons rx_{};
  xsk_ring_prod tx_{};
  xsk_umem* umem_handle_ = nullptr;
  xsk_socket* xsk_ = nullptr;
  bpf_object* obj_ = nullptr;
  xdp_program* prog_ = nullptr;
  bool attached_ = false;
  xdp_attach_mode mode_ = XDP_MODE_NATIVE;
  MapFds maps_;
  int fd_ = -1;
  FdIdentity fd_id_;
  int ctl_fd_ = -1;  // AF_INET datagram socket for interface ioctls (AF_XDP sockets take none)
  int netns_fd_ = -1;  // the namespace the program was attached in
  bool zero_copy_ = false;

  std::mutex claims_mu_;
  std::vector<ClaimCount> claims_;

  // Receive side.
  std::int64_t stats_read_ns_ = 0;
  std::uint64_t kernel_drops_ = 0;  // the kernel's count, as last read

  // Transmit side.
  std::size_t tx_free_count_ = 0;
  bool kick_pending_ = false;
  bool lost_ = false;
  int spare_fd_ = -1;
};

XdpDevice::~XdpDevice() {
  if (xsk_ != nullptr && !lost_) xsk_socket__delete(xsk_);  // a lost descriptor is someone else's now
  if (umem_handle_ != nullptr && !lost_) static_cast<void>(xsk_umem__delete(umem_handle_));
  if (attached_) {
    // libxdp detaches over netlink, in the calling thread's namespace: the
    // device's may be another (opened in one, closed from anywhere).
    const int here = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    const bool move = netns_fd_ >= 0 && here >= 0 && !FdIdentity(netns_fd_).same(here);
    const bool moved = move && ::setns(netns_fd_, CLONE_NEWNET) == 0;
    if (!move || moved) static_cast<void>(xdp_program__detach(prog_, ifindex_, mode_, 0));
    if (moved) static_cast<void>(::setns(here, CLONE_NEWNET));
    if (here >= 0) ::close(here);
  }
  if (netns_fd_ >= 0) ::close(netns_fd_);
  if (prog_ != nullptr) xdp_program__close(prog_);
  if (obj_ != nullptr) bpf_object__close(obj_);
  if (umem_ != nullptr) ::munmap(umem_, umem_bytes_);
  if (tx_free_ != nullptr) ::munmap(tx_free_, tx_free_bytes_);
  if (ctl_fd_ >= 0) ::close(ctl_fd_);
  if (spare_fd_ >= 0) ::close(spare_fd_);
}

// ---------------------------------------------------------------------------
// Setup

SetupResult<void> XdpDevice::open() {
  quiet_libraries();
  static_cast<void>(library_log().take());
  const std::string fallback = "packet:" + ifname_;

  ctl_fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ctl_fd_ < 0) return os_error(Errc::kIo, name_, "cannot open a control socket", errno);
  netns_fd_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (netns_fd_ < 0) return os_error(Errc::kIo, name_, "cannot open this thread's network namespace", errno);

  // The queue must exist (the kernel would only say EINVAL at bind).
  ethtool_channels ch{};
  ch.cmd = ETHTOOL_GCHANNELS;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname_.data(), ifname_.size());
  ifr.ifr_data = reinterpret_cast<char*>(&ch);
  if (::ioctl(ctl_fd_, SIOCETHTOOL, &ifr) == 0) {
    const unsigned queues = std::max(ch.rx_count, ch.combined_count);
    if (queues != 0 && opt_.queue >= queues) {
      const std::string have = queues == 1 ? "1 receive queue: use queue=0"
                                           : std::to_string(queues) + " receive queues: use queue=0 to " +
                                                 std::to_string(queues - 1);
      return setup_error(Errc::kInvalidArgument, name_ + ": queue " + std::to_string(opt_.queue) +
                                                     " is out of range: " + ifname_ + " has " + have + ", or " +
                                                     fallback + ", which sees every queue");
    }
  }

  // The UMEM and the free stack, faulted in now, not on the data path.
  const std::size_t frames = opt_.frames;
  umem_bytes_ = frames * opt_.frame_size;
  void* m = ::mmap(nullptr, umem_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (m == MAP_FAILED) {
    umem_ = nullptr;
    return os_error(Errc::kNoBuffer, name_, "cannot map the UMEM (" + std::to_string(umem_bytes_) + " bytes)", errno);
  }
  umem_ = static_cast<std::byte*>(m);
  // Transmit needs a few bursts' worth; receive takes the rest, the depth
  // that rides out a receiving thread's scheduling delay.
  tx_frames_ = std::min<std::size_t>(frames / 2, kMaxTxFrames);
  rx_frames_ = frames - tx_frames_;
  tx_free_bytes_ = tx_frames_ * sizeof(std::uint64_t);
  m = ::mmap(nullptr, tx_free_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (m == MAP_FAILED) {
    tx_free_ = nullptr;
    return os_error(Errc::kNoBuffer, name_, "cannot map the transmit frames' stack", errno);
  }
  tx_free_ = static_cast<std::uint64_t*>(m);
  for (std::size_t i = 0; i < tx_frames_; ++i) tx_free_[i] = (rx_frames_ + i) * opt_.frame_size;
  tx_free_count_ = tx_frames_;

  if (auto r = attach_program(); !r) return r;
  if (auto r = create_socket(); !r) return r;
  return {};
}

SetupResult<void> XdpDevice::attach_program() {
  const std::string fallback = "packet:" + ifname_;
  mode_ = opt_.generic_xdp ? XDP_MODE_SKB : XDP_MODE_NATIVE;

  // Someone's program already there? A dispatcher of libxdp's takes ours
  // beside it; a program attached alone does not.
  xdp_multiprog* mp = xdp_multiprog__get_from_ifindex(ifindex_);
  if (mp != nullptr && libxdp_get_error(mp) == 0) {
    std::string refusal;
    bool stale = false;
    if (xdp_multiprog__is_legacy(mp)) {
      xdp_program* p = xdp_multiprog__main_prog(mp);
      if (p != nullptr) {
        const std::string pname = xdp_program__name(p);
        const std::string id = std::to_string(xdp_program__id(p));
        if (pname == kProgramName) {
          const pid_t owner = owner_of_program(xdp_program__fd(p));
          if (process_alive(owner)) {
            refusal = name_ + ": netpoll's XDP program (id " + id + ") is already on " + ifname_ + ", loaded by " +
                      (owner == ::getpid() ? std::string("another xdp: device of this process")
                                           : "netpoll process " + std::to_string(owner)) +
                      ": one netpoll process per interface (libxdp's dispatcher, which lets programs share an "
                      "interface, needs bpffs at /sys/fs/bpf); use " + fallback + " here";
          } else {
            stale = true;  // its process died without detaching it
          }
        } else {
          refusal = name_ + ": an XDP program (id " + id + ", \"" + pname + "\") is already attached to " + ifname_ +
                    ", not through libxdp's dispatcher, so netpoll's cannot run beside it: detach it (ip link set "
                    "dev " + ifname_ + " xdp off) if it is not needed, or use " + fallback;
        }
      }
    }
    if (stale) static_cast<void>(xdp_multiprog__detach(mp));
    xdp_multiprog__close(mp);
    if (!refusal.empty()) return setup_error(Errc::kExists, refusal);
  }

  obj_ = bpf_object__open_mem(detail::kXdpSteerObject, detail::kXdpSteerObjectSize, nullptr);
  if (obj_ == nullptr) {
    return os_error(Errc::kIo, name_, "cannot open netpoll's XDP program (" + library_log().take() + ")", errno);
  }
  prog_ = xdp_program__from_bpf_obj(obj_, "xdp");
  if (const long e = libxdp_get_error(prog_); e != 0) {
    prog_ = nullptr;
    return os_error(Errc::kIo, name_, "cannot read netpoll's XDP program", static_cast<int>(-e));
  }
  const int err = xdp_program__attach(prog_, ifindex_, mode_, 0);
  if (err != 0) {
    const int e = -err;
    const std::string said = library_log().take();
    if (e == EPERM || e == EACCES) {
      return setup_error(Errc::kPermission, name_ + ": loading an XDP program needs CAP_BPF and CAP_NET_ADMIN (run as "
                                                    "root), or use " + fallback + " (CAP_NET_RAW only)");
    }
    if (e == EOPNOTSUPP) {
      return setup_error(Errc::kUnsupported,
                         name_ + ": " + ifname_ + (opt_.generic_xdp ? " takes no XDP program, not even generic XDP"
                                                                    : "'s driver has no native XDP support") +
                             ": use " + (opt_.generic_xdp ? "" : "xdp:" + ifname_ + "?mode=skb (the kernel's generic "
                                                                 "XDP, slower than AF_PACKET) or ") + fallback);
    }
    if (e == EEXIST || e == EBUSY) {
      return setup_error(Errc::kExists, name_ + ": another XDP program took " + ifname_ +
                                            " meanwhile (it was free a moment ago): use " + fallback);
    }
    return setup_error(Errc::kIo, name_ + ": cannot attach netpoll's XDP program to " + ifname_ + ": " +
                                      errno_text(e) + (said.empty() ? "" : " (" + said + ")") + "; or use " + fallback);
  }
  attached_ = true;

  const auto map_fd = [&](const char* map) {
    bpf_map* found = bpf_object__find_map_by_name(obj_, map);
    return found != nullptr ? bpf_map__fd(found) : -1;
  };
  maps_ = {map_fd("xsks"), map_fd("owned4"), map_fd("owned6"), map_fd("udp4"),
           map_fd("udp6"), map_fd("wait4"),  map_fd("wait6"),  map_fd("settings")};
  for (const int fd : {maps_.xsks, maps_.owned4, maps_.owned6, maps_.udp4, maps_.udp6, maps_.wait4, maps_.wait6,
                       maps_.settings}) {
    if (fd < 0) return setup_error(Errc::kIo, name_ + ": netpoll's XDP program lacks one of its maps");
  }
  const __u32 all_key = NP_XDP_SETTING_ALL, owner_key = NP_XDP_SETTING_OWNER;
  const __u32 all = opt_.redirect_all ? 1 : 0, owner = static_cast<__u32>(::getpid());
  if (::bpf_map_update_elem(maps_.settings, &all_key, &all, BPF_ANY) != 0 ||
      ::bpf_map_update_elem(maps_.settings, &owner_key, &owner, BPF_ANY) != 0) {
    return os_error(Errc::kIo, name_, "cannot write netpoll's XDP settings", errno);
  }
  return {};
}

SetupResult<void> XdpDevice::create_socket() {
  const std::string fallback = "packet:" + ifname_;
  xsk_umem_config ucfg{};
  // Ring sizes are powers of two; the fill ring has a slot for every
  // receive frame (see the top of the file).
  ucfg.fill_size = static_cast<__u32>(std::bit_ceil(rx_frames_));
  ucfg.comp_size = static_cast<__u32>(tx_frames_);
  ucfg.frame_size = static_cast<__u32>(opt_.frame_size);
  ucfg.frame_headroom = 0;
  ucfg.flags = 0;
  xsk_socket_config scfg{};
  scfg.rx_size = static_cast<__u32>(std::bit_ceil(rx_frames_));
  scfg.tx_size = static_cast<__u32>(tx_frames_);
  scfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;  // ours is loaded, not libxdp's default
  scfg.xdp_flags = 0;

  // Zero-copy first when it may be had; a driver without it refuses the
  // bind, and copy mode is tried on a fresh UMEM registration.
  std::vector<bool> tries;
  if (opt_.zero_copy != ZeroCopy::kNever) tries.push_back(true);
  if (opt_.zero_copy != ZeroCopy::kRequired) tries.push_back(false);
  int err = 0;
  for (const bool zc : tries) {
    int r = xsk_umem__create(&umem_handle_, umem_, umem_bytes_, &fill_, &comp_, &ucfg);
    if (r != 0) {
      umem_handle_ = nullptr;
      if (-r == EPERM) {
        return setup_error(Errc::kPermission, name_ + ": AF_XDP needs CAP_NET_RAW, CAP_BPF and CAP_NET_ADMIN (run "
                                                      "as root), or use " + fallback + " (CAP_NET_RAW only)");
      }
      return os_error(Errc::kIo, name_, "cannot register the UMEM", -r);
    }
    scfg.bind_flags = static_cast<__u16>(XDP_USE_NEED_WAKEUP | (zc ? XDP_ZEROCOPY : XDP_COPY));
    r = xsk_socket__create(&xsk_, ifname_.c_str(), opt_.queue, umem_handle_, &rx_, &tx_, &scfg);
    if (r == 0) {
      zero_copy_ = zc;
      err = 0;
      break;
    }
    xsk_ = nullptr;
    static_cast<void>(xsk_umem__delete(umem_handle_));
    umem_handle_ = nullptr;
    err = -r;
    if (err == EBUSY) break;  // the queue has a socket: no mode changes that
  }
  static_cast<void>(library_log().take());
  if (err != 0) {
    if (err == EBUSY) {
      return setup_error(Errc::kExists, name_ + ": queue " + std::to_string(opt_.queue) + " of " + ifname_ +
                                            " already has an AF_XDP socket (one socket per queue): use another "
                                            "queue= or " + fallback);
    }
    if (opt_.zero_copy == ZeroCopy::kRequired && (err == EOPNOTSUPP || err == EINVAL || err == EPROTONOSUPPORT)) {
      return setup_error(Errc::kUnsupported, name_ + ": " + ifname_ +
                                                 "'s driver offers no zero-copy AF_XDP: use zc=auto (copy mode "
                                                 "where zero-copy is not offered) or " + fallback);
    }
    if (err == EINVAL) {
      return setup_error(Errc::kInvalidArgument, name_ + ": the kernel refused queue " + std::to_string(opt_.queue) +
                                                     " of " + ifname_ + " (out of range?): use another queue= or " +
                                                     fallback);
    }
    return os_error(Errc::kIo, name_, "cannot bind an AF_XDP socket to queue " + std::to_string(opt_.queue), err);
  }
  fd_ = xsk_socket__fd(xsk_);
  fd_id_ = FdIdentity(fd_);
  if (int r = xsk_socket__update_xskmap(xsk_, maps_.xsks); r != 0) {
    return os_error(Errc::kIo, name_, "cannot enter the socket into netpoll's XDP program", -r);
  }
  // Every receive chunk into the fill ring.
  __u32 idx = 0;
  if (xsk_ring_prod__reserve(&fill_, static_cast<__u32>(rx_frames_), &idx) != rx_frames_) {
    return setup_error(Errc::kIo, name_ + ": the fill ring is smaller than the receive frames");
  }
  for (std::size_t i = 0; i < rx_frames_; ++i) *xsk_ring_prod__fill_addr(&fill_, idx + static_cast<__u32>(i)) = i * opt_.frame_size;
  xsk_ring_prod__submit(&fill_, static_cast<__u32>(rx_frames_));
  return {};
}

// ---------------------------------------------------------------------------
// Claims

SetupResult<void> XdpDevice::claim(const Claim& what) {
  std::lock_guard lock(claims_mu_);
  const bool v4 = what.family == Claim::Family::kIpv4;
  const std::size_t alen = v4 ? 4 : 16;
  bool zero = true;
  for (std::size_t i = 0; i < alen; ++i) zero = zero && what.addr[i] == std::byte{0};
  if (zero) {
    claims_.push_back({what, 1});  // no address to steer by: counted, so unclaim() matches
    return {};
  }
  bool address_known = false, port_known = false;
  for (auto& c : claims_) {
    if (c.claim.family != what.family || c.claim.addr != what.addr) continue;
    address_known = true;
    if (what.receives && c.claim.receives && c.claim.udp_port == what.udp_port) port_known = true;
  }
  if (!address_known) {
    const __u32 flags = kernel_holds(what) ? NP_XDP_KERNEL_HOLDS : 0;
    if (::bpf_map_update_elem(v4 ? maps_.owned4 : maps_.owned6, what.addr.data(), &flags, BPF_ANY) != 0) {
      return os_error(Errc::kNoBuffer, name_, "netpoll's XDP program takes no more addresses", errno);
    }
  }
  if (what.receives && !port_known) {
    const __u32 one = 1;
    int r;
    if (v4) {
      np_udp4_key key{};
      std::memcpy(&key.addr, what.addr.data(), 4);
      key.port = htons(what.udp_port);
      r = ::bpf_map_update_elem(maps_.udp4, &key, &one, BPF_ANY);
    } else {
      np_udp6_key key{};
      std::memcpy(key.addr, what.addr.data(), 16);
      key.port = htons(what.udp_port);
      r = ::bpf_map_update_elem(maps_.udp6, &key, &one, BPF_ANY);
    }
    if (r != 0) {
      const int e = errno;
      if (!address_known) static_cast<void>(::bpf_map_delete_elem(v4 ? maps_.owned4 : maps_.owned6, what.addr.data()));
      return os_error(Errc::kNoBuffer, name_, "netpoll's XDP program takes no more ports", e);
    }
  }
  for (auto& c : claims_) {
    if (c.claim == what) {
      ++c.count;
      return {};
    }
  }
  claims_.push_back({what, 1});
  return {};
}

void XdpDevice::unclaim(const Claim& what) noexcept {
  std::lock_guard lock(claims_mu_);
  auto it = std::find_if(claims_.begin(), claims_.end(), [&](const ClaimCount& c) { return c.claim == what; });
  if (it == claims_.end()) return;
  if (--it->count > 0) return;
  claims_.erase(it);
  const bool v4 = what.family == Claim::Family::kIpv4;
  bool address_left = false, port_left = false;
  for (const auto& c : claims_) {
    if (c.claim.family != what.family || c.claim.addr != what.addr) continue;
    address_left = true;
    if (what.receives && c.claim.receives && c.claim.udp_port == what.udp_port) port_left = true;
  }
  if (what.receives && !port_left) {
    if (v4) {
      np_udp4_key key{};
      std::memcpy(&key.addr, what.addr.data(), 4);
      key.port = htons(what.udp_port);
      static_cast<void>(::bpf_map_delete_elem(maps_.udp4, &key));
    } else {
      np_udp6_key key{};
      std::memcpy(key.addr, what.addr.data(), 16);
      key.port = htons(what.udp_port);
      static_cast<void>(::bpf_map_delete_elem(maps_.udp6, &key));
    }
  }
  if (!address_left) static_cast<void>(::bpf_map_delete_elem(v4 ? maps_.owned4 : maps_.owned6, what.addr.data()));
}

// ---------------------------------------------------------------------------
// Receive

void XdpDevice::read_kernel_drops() noexcept {
  xdp_statistics st{};
  socklen_t len = sizeof st;
  if (::getsockopt(fd_, SOL_XDP, XDP_STATISTICS, &st, &len) != 0) return;
  const std::uint64_t total = st.rx_dropped + st.rx_ring_full;
  if (total > kernel_drops_) stats_.rx_dropped.add(total - kernel_drops_);
  kernel_drops_ = total;
}

std::size_t XdpDevice::receive(std::size_t budget, FrameSink sink) noexcept {
  if (lost_) return 0;  // the program took the descriptor: nothing to read from
  ErrnoSaver keep_errno;
  __u32 idx = 0;
  const __u32 n = xsk_ring_cons__peek(&rx_, static_cast<__u32>(std::min<std::size_t>(budget, rx_frames_)), &idx);
  if (n == 0) {
    // A zero-copy driver that ran out of fill frames waits for a wakeup.
    if (xsk_ring_prod__needs_wakeup(&fill_)) static_cast<void>(::recvfrom(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr));
    return 0;
  }
  // Every chunk has a fill slot (see the top of the file): this never
  // comes short. Should it, the frames wait in the RX ring.
  __u32 fidx = 0;
  if (xsk_ring_prod__reserve(&fill_, n, &fidx) != n) {
    xsk_ring_cons__cancel(&rx_, n);
    return 0;
  }
  std::size_t delivered = 0;
  const std::uint64_t chunk_mask = ~static_cast<std::uint64_t>(opt_.frame_size - 1);
  // Each frame sits in a chunk of its own that the kernel just wrote from
  // another CPU: its first touch is a cache miss. Ask for the headers of
  // the whole batch now, so that the misses overlap each other and the work
  // on the frames before them (a prefetch never faults: an address out of
  // range costs nothing but the hint).
  for (__u32 i = 0; i < n; ++i) {
    const std::uint64_t addr = xsk_ring_cons__rx_desc(&rx_, idx + i)->addr;
    if (addr < umem_bytes_) __builtin_prefetch(chunk(addr));
  }
  for (__u32 i = 0; i < n; ++i) {
    const xdp_desc* d = xsk_ring_cons__rx_desc(&rx_, idx + i);
    const std::uint64_t addr = d->addr;
    const std::size_t len = d->len;
    const std::uint64_t base = addr & chunk_mask;
    // Shared memory: never follow a descriptor out of our receive half.
    if (base >= rx_frames_ * opt_.frame_size || addr + len > base + opt_.frame_size) {
      stats_.rx_dropped.add();
      *xsk_ring_prod__fill_addr(&fill_, fidx + i) = base < rx_frames_ * opt_.frame_size ? base : 0;
      continue;
    }
    if (len < kEthHeaderLen || len > mtu_ + kEthHeaderLen) {
      stats_.rx_dropped.add();
    } else {
      finish_partial_udp_checksum(chunk(addr), len);
      stats_.rx_frames.add();
      stats_.rx_bytes.add(len);
      ++delivered;
      sink(std::span<const std::byte>(chunk(addr), len));
    }
    *xsk_ring_prod__fill_addr(&fill_, fidx + i) = base;
  }
  xsk_ring_cons__release(&rx_, n);
  xsk_ring_prod__submit(&fill_, n);
  if (const std::int64_t now = now_ns(); now - stats_read_ns_ >= kStatsEveryNs) {
    stats_read_ns_ = now;
    read_kernel_drops();
  }
  return delivered;
}

// ---------------------------------------------------------------------------
// Transmit

void XdpDevice::reclaim() noexcept {
  __u32 idx = 0;
  const __u32 n = xsk_ring_cons__peek(&comp_, static_cast<__u32>(tx_frames_), &idx);
  if (n == 0) return;
  const std::uint64_t low = rx_frames_ * opt_.frame_size;
  const std::uint64_t high = (rx_frames_ + tx_frames_) * opt_.frame_size;
  for (__u32 i = 0; i < n; ++i) {
    const std::uint64_t addr = *xsk_ring_cons__comp_addr(&comp_, idx + i);
    // Shared memory: only our own transmit chunks go back on the stack.
    if (addr >= low && addr < high && tx_free_count_ < tx_frames_) tx_free_[tx_free_count_++] = addr;
  }
  xsk_ring_cons__release(&comp_, n);
}

int XdpDevice::kick() noexcept {
  if (!xsk_ring_prod__needs_wakeup(&tx_)) {
    kick_pending_ = false;
    return 0;
  }
  // In copy mode one call sends at most a batch of the kernel's (32 frames)
  // and answers EAGAIN if more wait: kick again while each call takes some.
  // EAGAIN with nothing taken: the driver's queue is full, the frames wait
  // on the ring for the next kick. EBUSY: the kernel dropped the frame it
  // was at (the interface is down); ENETDOWN, ENXIO: it took none.
  const std::size_t bound = tx_frames_ / 32 + 2;
  for (std::size_t round = 0; round < bound; ++round) {
    const std::uint32_t before = std::atomic_ref<std::uint32_t>(*tx_.consumer).load(std::memory_order_acquire);
    if (::sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) {
      kick_pending_ = false;
      // In copy mode the frames are complete now: their chunks back on the
      // stack, so that the next burst reuses the ones still in the cache.
      reclaim();
      return 0;
    }
    const int e = errno;
    const std::uint32_t after = std::atomic_ref<std::uint32_t>(*tx_.consumer).load(std::memory_order_acquire);
    if (e != EAGAIN || after == before || after == tx_.cached_prod) {
      kick_pending_ = e != EAGAIN || after != tx_.cached_prod;
      return e == EAGAIN && after == tx_.cached_prod ? 0 : e;
    }
  }
  kick_pending_ = true;
  return EAGAIN;
}

// ARP requests and neighbour solicitations netpoll sends: their answers are
// netpoll's for a while, even for an address the kernel holds too.
void XdpDevice::note_question(std::span<const std::byte> frame) noexcept {
  if (frame.size() < kEthHeaderLen) return;
  const std::uint16_t type = load_be16(frame.data() + 12);
  if (type == ETH_P_ARP && frame.size() >= kEthHeaderLen + 28 && load_be16(frame.data() + kEthHeaderLen + 6) == 1) {
    const __u64 until = static_cast<__u64>(now_ns() + kAwaitNs);
    static_cast<void>(::bpf_map_update_elem(maps_.wait4, frame.data() + kEthHeaderLen + 24, &until, BPF_ANY));
  } else if (type == ETH_P_IPV6 && frame.size() >= kEthHeaderLen + 40 + 24 &&
             std::to_integer<unsigned>(frame[kEthHeaderLen + 6]) == IPPROTO_ICMPV6 &&
             std::to_integer<unsigned>(frame[kEthHeaderLen + 40]) == 135) {
    const __u64 until = static_cast<__u64>(now_ns() + kAwaitNs);
    static_cast<void>(::bpf_map_update_elem(maps_.wait6, frame.data() + kEthHeaderLen + 40 + 8, &until, BPF_ANY));
  }
}

// Copies a frame into a free transmit chunk and puts it on the TX ring;
// the caller decides when to kick.
TxStatus XdpDevice::put(std::span<const std::byte> frame) noexcept {
  if (frame.size() < kEthHeaderLen || frame.size() > mtu_ + kEthHeaderLen) {
    stats_.tx_errors.add();
    return TxStatus::kError;
  }
  if (tx_free_count_ == 0) reclaim();
  __u32 idx = 0;
  if (tx_free_count_ == 0 || xsk_ring_prod__reserve(&tx_, 1, &idx) != 1) {
    if (kick_pending_) static_cast<void>(kick());  // what waits may free the next ones
    stats_.tx_busy.add();
    return TxStatus::kBusy;
  }
  const std::uint64_t addr = tx_free_[--tx_free_count_];
  std::memcpy(chunk(addr), frame.data(), frame.size());
  xdp_desc* d = xsk_ring_prod__tx_desc(&tx_, idx);
  d->addr = addr;
  d->len = static_cast<__u32>(frame.size());
  d->options = 0;
  xsk_ring_prod__submit(&tx_, 1);
  note_question(frame);
  return TxStatus::kOk;
}

TxStatus XdpDevice::transmit(std::span<const std::byte> frame) noexcept {
  ErrnoSaver keep_errno;
  if (lost_) return transmit_spare(frame);
  if (const TxStatus st = put(frame); st != TxStatus::kOk) return st;
  const std::uint32_t ours = tx_.cached_prod - 1;  // our frame's place on the ring
  const int err = kick();
  if (err == EBUSY || err == ENETDOWN || err == ENXIO) {
    // The interface is down. ENETDOWN, ENXIO: nothing was taken. EBUSY: the
    // kernel dropped the last frame it took. If that frame, or none, was
    // ours, ours is not sent: say kBusy. (A frame of transmit_more() it took
    // first went out or was dropped by the link, as on a wire.)
    const std::uint32_t consumed = std::atomic_ref<std::uint32_t>(*tx_.consumer).load(std::memory_order_acquire);
    const bool ours_dropped = err == EBUSY && consumed == ours + 1;
    const bool ours_untaken = consumed == ours && tx_.cached_prod == ours + 1;
    if (ours_untaken && err != EBUSY) {
      // Nothing took it: off the ring again (we are the only producer, and
      // the kernel reads the ring only inside our kick).
      tx_.cached_prod = ours;
      std::atomic_ref<std::uint32_t>(*tx_.producer).store(ours, std::memory_order_release);
      tx_free_[tx_free_count_++] = xsk_ring_prod__tx_desc(&tx_, ours)->addr;
    }
    if (ours_dropped || (ours_untaken && err != EBUSY)) {
      stats_.tx_busy.add();
      return TxStatus::kBusy;
    }
  }
  stats_.tx_frames.add();
  stats_.tx_bytes.add(frame.size());
  return TxStatus::kOk;
}

// xmit_more: the frame waits on the ring for the next kick.
TxStatus XdpDevice::transmit_more(std::span<const std::byte> frame) noexcept {
  ErrnoSaver keep_errno;
  if (lost_) return transmit_spare(frame);
  const TxStatus st = put(frame);
  if (st == TxStatus::kOk) {
    kick_pending_ = true;
    stats_.tx_frames.add();
    stats_.tx_bytes.add(frame.size());
  }
  return st;
}

void XdpDevice::poll() noexcept {
  if (lost_) return;
  ErrnoSaver keep_errno;
  reclaim();
  if (kick_pending_) static_cast<void>(kick());
}

TxStatus XdpDevice::transmit_spare(std::span<const std::byte> frame) noexcept {
  if (spare_fd_ < 0 || frame.size() < kEthHeaderLen || frame.size() > mtu_ + kEthHeaderLen) {
    stats_.tx_errors.add();
    return TxStatus::kError;
  }
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex_;
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, frame.data(), 6);
  const ssize_t n =
      ::sendto(spare_fd_, frame.data(), frame.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&to), sizeof to);
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

bool XdpDevice::revalidate() noexcept {
  ErrnoSaver keep_errno;
  if (!lost_ && fd_id_.same(fd_)) return true;
  lost_ = true;
  if (spare_fd_ >= 0) return true;
  // Protocol 0: the spare socket receives nothing, it only sends. Frames on
  // the TX ring whose kick never came stay there: the descriptor that would
  // kick them is gone.
  spare_fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  return spare_fd_ >= 0;
}

LinkState XdpDevice::link() const noexcept {
  ErrnoSaver keep_errno;
  ifreq ifr{};
  ifr.ifr_ifindex = ifindex_;
  if (::ioctl(ctl_fd_, SIOCGIFNAME, &ifr) != 0) return {};
  if (::ioctl(ctl_fd_, SIOCGIFFLAGS, &ifr) != 0) return {};
  LinkState s;
  s.running = (ifr.ifr_flags & IFF_UP) != 0;
  s.carrier = s.running && (ifr.ifr_flags & IFF_RUNNING) != 0;
  return s;
}

// ---------------------------------------------------------------------------
// open_xdp_device

SetupResult<std::unique_ptr<Device>> open_xdp_device(std::string name, std::string_view ifname,
                                                     const XdpOptions& options) {
  const std::string ifname_s(ifname);
  const std::string fallback = "packet:" + ifname_s;
  if (ifname_s.empty() || ifname_s.size() >= IFNAMSIZ) return setup_error(Errc::kNoSuchDevice, "no such interface: " + ifname_s);
  if (options.frames < 64 || options.frames > (1u << 20) || (options.frames & (options.frames - 1)) != 0) {
    return setup_error(Errc::kInvalidArgument, name + ": frames must be a power of two from 64 to 1048576");
  }
  if (options.frame_size != 2048 && options.frame_size != 4096) {
    return setup_error(Errc::kInvalidArgument, name + ": frame_size must be 2048 or 4096");
  }
  if (options.queue >= NP_XDP_MAX_QUEUES) {
    return setup_error(Errc::kInvalidArgument, name + ": queue " + std::to_string(options.queue) +
                                                   " is out of range: netpoll's XDP program serves queues 0 to " +
                                                   std::to_string(NP_XDP_MAX_QUEUES - 1) + "; or use " + fallback);
  }
  // Privilege first: it is what most often stands in the way, and the
  // other checks would only fail on it in less helpful words.
  {
    UniqueFd probe(::socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0));
    if (probe.get() < 0) {
      const int e = errno;
      if (e == EPERM || e == EACCES) {
        return setup_error(Errc::kPermission, name + ": AF_XDP needs CAP_NET_RAW, CAP_BPF and CAP_NET_ADMIN (run as "
                                                     "root), or use " + fallback + " (CAP_NET_RAW only)");
      }
      if (e == EAFNOSUPPORT) {
        return setup_error(Errc::kUnsupported, name + ": this kernel has no AF_XDP (CONFIG_XDP_SOCKETS): use " + fallback);
      }
      return os_error(Errc::kIo, name, "cannot create an AF_XDP socket", e);
    }
  }
  UniqueFd ctl(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (ctl.get() < 0) return os_error(Errc::kIo, name, "cannot open a control socket", errno);
  auto iface = look_up_interface(ctl.get(), name, ifname_s);
  if (!iface) return std::unexpected(iface.error());
  const int ifindex = iface->ifindex;
  const std::size_t mtu = iface->mtu;
  if (mtu + Device::kEthHeaderLen > options.frame_size - kRxHeadroom) {
    return setup_error(Errc::kTooBig, name + ": " + ifname_s + "'s MTU " + std::to_string(mtu) +
                                          " does not fit a frame of " + std::to_string(options.frame_size) +
                                          " bytes (at most " +
                                          std::to_string(options.frame_size - kRxHeadroom - Device::kEthHeaderLen) +
                                          (options.frame_size < 4096 ? "; frame_size=4096 holds up to " +
                                                                           std::to_string(4096 - kRxHeadroom -
                                                                                          Device::kEthHeaderLen)
                                                                     : std::string()) +
                                          "): use " + fallback + " for larger frames");
  }
  std::unique_ptr<XdpDevice> dev(new XdpDevice(std::move(name), ifname_s, ifindex, iface->mac, mtu, options));
  if (auto r = dev->open(); !r) return std::unexpected(r.error());
  return std::unique_ptr<Device>(std::move(dev));
}

}  // namespace np::dev
