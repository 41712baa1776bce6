// AF_XDP backend: one queue of one interface, beside the kernel's stack.
//
// An XDP program (src/dev/xdp_steer.bpf.c, compiled at build time with
// clang, loaded through libxdp) runs on every frame the interface receives
// and redirects to this device's socket only what netpoll's clients own
// (claim(): UDP to a receiving client's address and port, ARP and
// neighbour discovery for a client's address, the answers to netpoll's own
// ARP requests and solicitations); everything else goes on to the kernel
// (XDP_PASS), so the host keeps its networking on the interface. An address
// the kernel does not have is netpoll's alone: every frame to it comes
// here, malformed ones too, and are counted by reason as on AF_PACKET.
//
// The socket's memory (the UMEM) is mapped and faulted in at open and split
// in two: min(frames/2, 2048) frames carry transmitted frames, the rest wait
// in the fill ring for the kernel to receive into (with the defaults, 6144
// of 2 KiB, in 16 MiB: a receive depth of 20 ms at 300,000 frames a
// second; a bigger UMEM rides out longer delays of the polling thread, but
// the kernel then writes each frame into colder memory, which on veth
// slows the sender: measured with netpoll bench recv --xdp-options). receive() takes frames from the RX
// ring and hands each back to the fill ring after the sink has seen it;
// transmit() copies a frame into a free transmit frame, puts it on the TX
// ring and kicks the kernel (sendto) when it says it needs one
// (XDP_USE_NEED_WAKEUP); poll() takes finished frames back from the
// completion ring. Zero-copy where the driver offers it (zc=auto), copy
// mode otherwise (veth, and any driver without AF_XDP support of its own).
//
// transmit(): kOk once the frame is on the TX ring; kBusy when no transmit
// frame or ring slot is free (poll() frees them) or the interface is down
// (the frame is then not sent later behind the caller's back: the kernel
// dropped it, or it was taken back); kError for a frame shorter than 14
// bytes or longer than mtu() + 14.
//
// receive(): frames of at most mtu() + 14 bytes. A UDP datagram whose
// checksum a local sender left to hardware (veth: the field holds the
// pseudo-header's sum) has it finished first, taken for one when its
// checksum fails and its field is exactly that sum: AF_XDP carries no
// word of it (see xdp.cpp for the price). stats().rx_dropped counts
// what the kernel dropped for this socket (RX ring full, no fill frame:
// XDP_STATISTICS, read at most once a millisecond while frames arrive).
//
// Device string: xdp:IFNAME[?queue=N&zc=auto|0|1&frames=N&frame_size=N&mode=native|skb&redirect=owned|all]
//   queue=N       the receive queue to bind (default 0). One AF_XDP socket
//                 per queue: a frame arriving on another queue is not seen
//                 (it goes to the kernel). Steer netpoll's traffic to the
//                 queue (ethtool -N), or give the interface one queue.
//   zc=auto|0|1   zero-copy: where offered (default), never, or required
//   frames=N      UMEM frames, a power of two from 64 (default 8192):
//                 min(N/2, 2048) transmit, the rest receive
//   frame_size=N  2048 or 4096 (default 2048); a frame holds at most
//                 frame_size - 256 bytes (the kernel's XDP headroom)
//   mode=native   the driver runs the program (default); mode=skb: the
//                 kernel's generic XDP, for drivers without native XDP
//                 (slower than packet:)
//   redirect=all  every frame of the queue comes to netpoll and none to the
//                 kernel (netpoll dump, receive benchmarks); redirect=owned
//                 (the default) only what claim() names
//
// Needs CAP_NET_RAW (the socket), CAP_BPF and CAP_NET_ADMIN (the program):
// run as root. One netpoll process per interface: the program is attached
// alone unless libxdp's dispatcher can run (bpffs mounted at /sys/fs/bpf,
// and a kernel that lets it load), and a second process, or someone else's
// XDP program already on the interface, is refused with a message naming
// the holder and the packet: fallback. A program left behind by a netpoll
// process that died is replaced.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "netpoll/base/result.h"
#include "netpoll/dev/device.h"

namespace np::dev {

enum class ZeroCopy : std::uint8_t { kAuto, kNever, kRequired };

struct XdpOptions {
  unsigned queue = 0;
  ZeroCopy zero_copy = ZeroCopy::kAuto;
  std::size_t frames = 8192;
  std::size_t frame_size = 2048;
  bool generic_xdp = false;   // mode=skb
  bool redirect_all = false;  // redirect=all
};

// Opens `ifname` in the calling thread's network namespace; `name` is the
// device string, kept for name() and error messages. Errors name what to
// do, and the packet: fallback: "no such interface: eth9"; "xdp:eth0:
// AF_XDP needs CAP_NET_RAW, CAP_BPF and CAP_NET_ADMIN (run as root), or use
// packet:eth0 (CAP_NET_RAW only)"; "xdp:br0: br0's driver has no native
// XDP ..."; "xdp:eth0: queue 4 is out of range: eth0 has 4 receive
// queues: use queue=0 to 3, or packet:eth0, ..."; "xdp:eth0: an XDP program (id 42, "filter") is
// already attached to eth0 ...". Context: setup.
[[nodiscard]] SetupResult<std::unique_ptr<Device>> open_xdp_device(std::string name, std::string_view ifname,
                                                                   const XdpOptions& options);

}  // namespace np::dev
