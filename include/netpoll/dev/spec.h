// Device strings: the one way a device is named everywhere (CLI, option
// strings, tests).
//
//   KIND:TARGET[?KEY=VALUE[&KEY=VALUE...]]
//
//   packet:eth0                          AF_PACKET on interface eth0
//   xdp:eth0                             AF_XDP on queue 0 of eth0, beside the kernel
//   tap:tap0                             TAP device tap0 (created or attached)
//   udp:127.0.0.1:7001@127.0.0.1:7000    frames over UDP: bind LOCAL, send to REMOTE
//   pair:name                            one end of an in-memory wire
//   eth0                                 a bare interface name: packet:eth0
//
// Options valid for every kind (decorators, applied outermost last):
//   pcap=PATH       write every frame crossing the device to a pcap file
//   drop=P dup=P reorder=P corrupt=P     fault probabilities in [0,1]
//   delay=MS        hold each frame MS milliseconds (fault injector)
//   seed=N          seed for the fault injector (default 1)
// Options per kind are listed in each backend's header.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "netpoll/base/result.h"

namespace np::dev {

struct DeviceSpec {
  std::string text;    // the whole string as given
  std::string kind;    // "packet", "xdp", "tap", "udp", "pair"
  std::string target;  // what follows "KIND:" up to '?'
  std::vector<std::pair<std::string, std::string>> options;  // in order given

  // The value of option `key`, or nullptr. Context: setup.
  const std::string* option(std::string_view key) const;
};

// Splits a device string. Errors name the part that failed, e.g.
// "device string 'eth0': expected KIND:TARGET (packet:, xdp:, tap:, udp:, pair:)".
// Context: setup.
[[nodiscard]] SetupResult<DeviceSpec> parse_device_spec(std::string_view text);

}  // namespace np::dev
