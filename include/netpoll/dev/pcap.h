// Pcap writer: a decorator that records every frame crossing a device.
//
// Classic libpcap format (magic a1b2c3d4, version 2.4, LINKTYPE_ETHERNET,
// microsecond timestamps), readable by tcpdump -r and wireshark. Transmitted
// frames are recorded when the inner device takes them (kOk), received ones
// when they are delivered. Each record is written with one write(2) from a
// fixed buffer: no allocation, and what was written before a crash is in
// the file.
#pragma once

#include <memory>
#include <string>

#include "netpoll/base/result.h"
#include "netpoll/dev/device.h"

namespace np::dev {

// Creates (truncates) `path` and wraps `inner`. Context: setup.
SetupResult<std::unique_ptr<Device>> wrap_pcap(std::unique_ptr<Device> inner, const std::string& path);

}  // namespace np::dev
