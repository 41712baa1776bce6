// Pcap writer: a decorator that records every frame crossing a device.
//
// Classic libpcap format, as libpcap itself writes it: a 24-byte global
// header (magic 0xa1b2c3d4, version 2.4, thiszone 0, sigfigs 0, snaplen
// 65535, LINKTYPE_ETHERNET = 1) in host byte order, then per frame a 16-byte
// record header (ts_sec, ts_usec from CLOCK_REALTIME, incl_len, orig_len)
// and the frame. Readable by tcpdump -r and wireshark.
//
// Transmitted frames are recorded when the inner device takes them (kOk),
// whether offered by transmit() or transmit_more() (which stays batched:
// see decorator.h); received ones as they are delivered, before the sink
// sees them. Each record goes out with one writev(2) from the caller's
// frame and a header on the stack: no allocation, and what was written
// before a crash is in the file.
// The file is opened O_APPEND, so the receive and transmit threads may
// record at once without interleaving inside a record.
//
// A failed write is counted (PcapStats), never fatal: the device keeps
// working without its recording. After a short write (disk full, file size
// limit) the file ends in a partial record that readers stop at, so the
// writer stops too and counts every later record as not written.
#pragma once

#include <memory>
#include <string>

#include "netpoll/base/counter.h"
#include "netpoll/base/result.h"
#include "netpoll/dev/decorator.h"

namespace np::dev {

// One writer per side, so one counter set per side.
struct PcapStats {
  Counter tx_records;       // records written for transmitted frames
  Counter rx_records;       // records written for received frames
  Counter tx_write_errors;  // transmitted frames that could not be recorded
  Counter rx_write_errors;  // received frames that could not be recorded
};

class PcapDevice : public Decorator {
 public:
  using Decorator::Decorator;

  // What was recorded and what could not be. (stats() is the inner
  // device's.) Context: any.
  virtual const PcapStats& pcap_stats() const noexcept = 0;
};

// Creates (truncates) `path`, writes the global header and wraps `inner`.
// Errors name the file: "pcap file '/x/y.pcap': No such file or directory".
// Context: setup.
[[nodiscard]] SetupResult<std::unique_ptr<PcapDevice>> wrap_pcap(std::unique_ptr<Device> inner, const std::string& path);

}  // namespace np::dev
