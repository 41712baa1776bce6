// AF_PACKET backend: one interface, mmap'd rings, no copies on receive.
//
// Receive uses a TPACKET_V3 ring (blocks of frames, handed back to the
// kernel block by block); transmit uses a TPACKET_V3 TX ring of fixed-size
// slots, kicked with send(MSG_DONTWAIT). A full TX ring is kBusy; poll()
// kicks the ring and lets completed slots be reused. Frames this socket
// sends are not looped back to its own receive ring
// (PACKET_IGNORE_OUTGOING, and PACKET_OUTGOING frames are skipped).
//
// Device string: packet:IFNAME[?bypass=0|1&rx_blocks=N&tx_frames=N]
//   bypass=1     PACKET_QDISC_BYPASS: hand frames straight to the driver
//   rx_blocks=N  receive ring blocks of 128 KiB (default 16)
//   tx_frames=N  transmit ring slots (default 256)
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
  std::size_t rx_blocks = 16;
  std::size_t rx_block_size = 1u << 17;
  std::size_t tx_frames = 256;
};

class PacketDevice;

// Errors: "no such interface: eth9", "AF_PACKET needs CAP_NET_RAW (run as
// root)", ... Context: setup.
SetupResult<std::unique_ptr<Device>> open_packet_device(std::string name, std::string_view ifname,
                                                       const PacketOptions& options);

}  // namespace np::dev
