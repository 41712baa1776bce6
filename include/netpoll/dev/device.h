// Device: the one interface between netpoll and a network device.
//
// Modelled on the driver hooks netpoll needs from a NIC and nothing more
// (the seed's ndo_start_xmit, ndo_poll_controller, NAPI poll(budget) and
// netif_queue_stopped; FreeBSD debugnet's four methods):
//
//   receive(budget, sink)  burst receive, at most `budget` frames
//   transmit(frame)        ok / busy (ring full, queue stopped) / error
//   transmit_more(frame)   the same, but the kick may wait for the next call
//   poll()                 reclaim finished transmit slots, push pending work
//   link(), mac(), mtu(), ifindex(), fd(), name()
//   claim(what)            what a client takes from the wire, for a device
//                          that sees only what is steered to it (AF_XDP)
//
// Frames are complete Ethernet II frames without FCS. Decorators (pcap
// writer, fault injector) are Devices wrapping Devices (see decorator.h).
//
// Threads: a device has a receive side (receive) and a transmit side
// (transmit, poll). Each side is used by one thread at a time; the two sides
// may run concurrently. Nothing here blocks, allocates or throws after open.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "netpoll/base/addr.h"
#include "netpoll/base/counter.h"
#include "netpoll/base/function_ref.h"
#include "netpoll/base/result.h"

namespace np::dev {

enum class TxStatus : std::uint8_t {
  kOk,     // the device took the frame (it holds its own copy)
  kBusy,   // ring full or queue stopped: nothing was taken, retry after poll()
  kError,  // the frame cannot be sent by this device (too big, device gone)
};

const char* to_string(TxStatus s) noexcept;

struct LinkState {
  bool running = false;  // administratively up (IFF_UP, or the backend's equivalent)
  bool carrier = false;  // the link has carrier (IFF_LOWER_UP, peer attached)
  constexpr bool usable() const noexcept { return running && carrier; }
};

// Statistics every backend keeps. Receive-side counters are written by the
// receiving thread, transmit-side ones by the transmitting thread.
struct DeviceStats {
  Counter rx_frames;
  Counter rx_bytes;
  Counter rx_dropped;  // frames the backend saw but could not deliver (too long, kernel ring drops)
  Counter tx_frames;
  Counter tx_bytes;
  Counter tx_busy;     // transmit() calls answered kBusy
  Counter tx_errors;   // transmit() calls answered kError
};

// What one client takes from the wire: address resolution (ARP, neighbour
// discovery) for its address, and, when it receives, the UDP datagrams to
// its port (0: every port of the address). A device that sees every frame of
// its interface (AF_PACKET, TAP, the others) has nothing to do; one that
// sees only what is steered to it (AF_XDP: an XDP program decides, frame by
// frame, between netpoll and the kernel) steers these to itself.
struct Claim {
  enum class Family : std::uint8_t { kIpv4, kIpv6 };
  Family family = Family::kIpv4;
  std::array<std::byte, 16> addr{};  // IPv4: the first 4 bytes
  std::uint16_t udp_port = 0;
  bool receives = false;  // false: address resolution only (a client that only sends)

  static Claim ipv4(const Ipv4Addr& ip, std::uint16_t port, bool receives) noexcept {
    Claim c;
    for (std::size_t i = 0; i < Ipv4Addr::kLen; ++i) c.addr[i] = ip.bytes()[i];
    c.udp_port = port;
    c.receives = receives;
    return c;
  }
  static Claim ipv6(std::span<const std::byte, 16> ip, std::uint16_t port, bool receives) noexcept {
    Claim c;
    c.family = Family::kIpv6;
    for (std::size_t i = 0; i < 16; ++i) c.addr[i] = ip[i];
    c.udp_port = port;
    c.receives = receives;
    return c;
  }
  friend bool operator==(const Claim&, const Claim&) = default;
};

// Called once per received frame; the span is valid only during the call.
using FrameSink = FunctionRef<void(std::span<const std::byte> frame)>;

class Device {
 public:
  static constexpr std::size_t kEthHeaderLen = 14;

  virtual ~Device() = default;
  Device() = default;
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // Hands up to `budget` received frames to `sink`, oldest first, and
  // returns how many it handed over. Returns 0 at once when nothing is
  // waiting; never blocks. Context: any.
  virtual std::size_t receive(std::size_t budget, FrameSink sink) noexcept = 0;

  // Offers one frame for transmission. Never blocks. Context: any.
  virtual TxStatus transmit(std::span<const std::byte> frame) noexcept = 0;

  // Like transmit(), but the device may hold the frame until the next
  // transmit() or poll(), so that a burst costs one kick of the hardware
  // (Linux's xmit_more). A kOk frame is taken: it will go out. Devices
  // without batching send it at once. Context: any.
  virtual TxStatus transmit_more(std::span<const std::byte> frame) noexcept { return transmit(frame); }

  // UDP segmentation offload (Linux's UDP GSO): sends consecutive UDP
  // datagrams of one flow in one go, the kernel or the NIC cutting them.
  // `headers` are the Ethernet, IP and UDP headers of one datagram carrying
  // every segment: the lengths of the whole, the IPv4 identification of the
  // first piece (each next one counts up), and in the UDP checksum field
  // the folded sum of the pseudo-header over the whole length (each piece's
  // checksum is completed from it). `segments` are the pieces' payloads,
  // each `segment_size` bytes but the last (1 to segment_size); at least 2,
  // at most kMaxUdpSegments. Frames taken with transmit_more() before it go
  // out first. kError: not taken, counted nothing (the device cannot:
  // segments_udp() is false then; or the call broke these rules); the
  // caller sends them one by one. Never blocks.
  // Context: any.
  static constexpr std::size_t kMaxUdpSegments = 64;
  virtual TxStatus transmit_udp_segments(std::span<const std::byte> headers,
                                         std::span<const std::span<const std::byte>> segments,
                                         std::size_t segment_size) noexcept {
    static_cast<void>(headers);
    static_cast<void>(segments);
    static_cast<void>(segment_size);
    return TxStatus::kError;
  }
  // Whether transmit_udp_segments() may work: false once the kernel refused
  // it. Context: any.
  virtual bool segments_udp() const noexcept { return false; }

  // Reclaims completed transmit slots and pushes out anything the backend
  // holds back (the seed's poll_controller). Never blocks. Context: any.
  virtual void poll() noexcept {}
  // True while frames taken with transmit_more() wait for a kick, or a
  // kick failed part way (a frame the kernel dropped stops its walk of the
  // ring): poll() must run again for them to go out. Context: any.
  virtual bool tx_pending() const noexcept { return false; }

  // Current link state; may make one system call. Context: any.
  virtual LinkState link() const noexcept = 0;

  virtual MacAddr mac() const noexcept = 0;
  // Largest network-layer payload: frames may be up to mtu() + 14 bytes.
  virtual std::size_t mtu() const noexcept = 0;
  // Kernel interface index, or 0 for devices that have none (tunnel, pair).
  virtual int ifindex() const noexcept { return 0; }
  // A descriptor that becomes readable (poll(2) POLLIN) when receive() may
  // have frames; -1 if the device offers none.
  virtual int fd() const noexcept = 0;
  // The device string this device was opened from, e.g. "packet:eth0".
  virtual std::string_view name() const noexcept = 0;

  virtual const DeviceStats& stats() const noexcept = 0;

  // The crash path asks this before it transmits: are the descriptors this
  // device uses still its own? A dying program may have closed them, or
  // closed them and opened files or sockets of its own under the same
  // numbers. A device never writes into a descriptor that is no longer its
  // own: one it finds closed or replaced (a different file than the one it
  // opened) it stops using for good, and where plain system calls can
  // replace it (AF_PACKET: a fresh raw socket on the same interface) it
  // sends through the replacement from then on. False when it can no
  // longer transmit. Devices without descriptors answer true.
  // Context: any.
  virtual bool revalidate() noexcept { return true; }

  // Takes what `what` names from the wire for this device's clients (see
  // Claim); every claim() is matched by one unclaim() of the same Claim,
  // and claims of the same thing are counted. An error says why it cannot
  // be had (the steering table is full). Devices that see every frame
  // answer ok and do nothing. Context: setup.
  [[nodiscard]] virtual SetupResult<void> claim(const Claim& /*what*/) { return {}; }
  virtual void unclaim(const Claim& /*what*/) noexcept {}
  // Receive frames sent to the link-layer multicast `group` too (a NIC
  // filters the multicast it was not asked for; IPv6 neighbour discovery
  // needs each address's solicited-node group). Devices that see every
  // frame anyway answer ok. Context: setup.
  [[nodiscard]] virtual Result<void> join_multicast(const MacAddr& group) noexcept {
    static_cast<void>(group);
    return {};
  }
};

}  // namespace np::dev
