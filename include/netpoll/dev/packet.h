// AF_PACKET backend: one interface, mmap'd rings, no copies on receive.
//
// Receive uses a TPACKET_V3 ring: blocks of frames, handed to us when full
// or a few milliseconds after their first frame, and handed back to the
// kernel block by block, each once every frame in it has been examined.
// Transmit uses a TPACKET_V3 TX ring of fixed-size slots, kicked with
// send(MSG_DONTWAIT). Both rings share one mapping, made and faulted in at
// open. Frames this socket sends are not looped back to its own receive ring
// (PACKET_IGNORE_OUTGOING, and PACKET_OUTGOING frames are skipped), nor are
// frames other senders on this host put out through the interface.
//
// transmit(): kOk once the frame is copied into a slot the kernel will send;
// kBusy when the next slot is still the kernel's (ring full) or the
// interface is down (the frame is then taken back out of the ring: a kBusy
// frame is never sent later behind the caller's back); kError for a frame
// shorter than 14 bytes or longer than mtu() + 14. poll() re-kicks frames a
// failed kick left in the ring (no socket buffer, full qdisc); completed
// slots come back by themselves.
//
// receive(): delivers whole frames of at most mtu() + 14 bytes. Frames whose
// transport checksum the sender left to the hardware (a local sender over
// veth) have it completed first, so their checksums verify. stats().rx_dropped
// counts frames the kernel dropped because the ring was full (read when the
// next block comes back), and frames cut short or longer than mtu() + 14.
//
// link(): running = IFF_UP, carrier = IFF_RUNNING. It also clears the error
// the kernel leaves on the socket when the interface goes down, which would
// otherwise make poll(2) report POLLERR on fd() until then.
//
// Device string: packet:IFNAME[?bypass=0|1&rx=ring|copy&rx_blocks=N&rx_block_size=BYTES&tx_frames=N]
//   bypass=1     PACKET_QDISC_BYPASS: hand frames straight to the driver
//   rx=copy      no receive ring: each frame is copied out of the socket as
//                it comes (recvmmsg into buffers set aside at open), for a
//                client that waits on a few short answers; rx=ring (the
//                default) for traffic in bulk
//   rx_blocks=N  receive ring blocks (default 16)
//   rx_block_size=BYTES  of this size (default 131072; rounded up to whole
//                pages holding a full frame): a block is handed over when
//                full or 1 ms after its first frame, so small blocks bring
//                a few short frames (acks) sooner
//   tx_frames=N  transmit ring slots (default 256; rounded up to fill whole
//                pages: slots are 2 KiB for an MTU up to 1976)
//
// Needs CAP_NET_RAW. All ioctls go through the device's own socket, so a
// device opened inside a network namespace keeps working from any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "netpoll/base/result.h"
#include "netpoll/dev/device.h"

namespace np::dev {

struct PacketOptions {
  bool qdisc_bypass = false;
  bool rx_ring = true;  // false: rx=copy
  std::size_t rx_blocks = 16;
  std::size_t rx_block_size = 1u << 17;
  std::size_t tx_frames = 256;
};

class PacketDevice;

// Opens `ifname` in the calling thread's network namespace; `name` is the
// device string, kept for name() and error messages. rx_block_size is rounded up
// to whole pages that hold a full frame. Errors: "no such
// interface: eth9", "packet:eth0: AF_PACKET needs CAP_NET_RAW (run as
// root)", "packet:lo: lo is not an Ethernet interface (link type 772)",
// ring setup failures with the system's reason. Context: setup.
[[nodiscard]] SetupResult<std::unique_ptr<Device>> open_packet_device(std::string name, std::string_view ifname,
                                                       const PacketOptions& options);

}  // namespace np::dev
