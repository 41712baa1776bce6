// Helpers for tests against real devices and the kernel: frames built and
// parsed with wire/, kernel UDP sockets inside a namespace, bounded waits.
#pragma once

#include <chrono>
#include <atomic>
#include <functional>
#include <thread>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "frames.h"
#include "netns.h"
#include "netpoll/base/addr.h"
#include "netpoll/base/result.h"
#include "netpoll/dev/device.h"
#include "netpoll/wire/arp.h"

namespace np::testing {

struct Endpoint {
  MacAddr mac;
  Ipv4Addr ip;
  std::uint16_t port;
};

// A UDP datagram in an Ethernet frame, emitted into a dirty buffer.
std::vector<std::byte> udp_frame(const Endpoint& src, const Endpoint& dst, std::span<const std::byte> payload,
                                 std::uint16_t ident = 1);

struct Udp {
  MacAddr src_mac, dst_mac;
  Ipv4Addr src, dst;
  std::uint16_t src_port = 0, dst_port = 0, checksum = 0;
  std::vector<std::byte> payload;
};

// Ethernet -> IPv4 -> UDP with every check and checksum of wire/. Frames
// that are not IPv4/UDP are kUnsupported; a UDP datagram that fails a check
// gives that check's error.
Result<Udp> parse_udp(std::span<const std::byte> frame);

// An ARP request for `ip`, or nothing.
std::optional<wire::ArpRepr> arp_request_for(std::span<const std::byte> frame, const Ipv4Addr& ip);
// The reply to `request` from `our_mac`, as an Ethernet frame.
std::vector<std::byte> arp_reply(const wire::ArpRepr& request, const MacAddr& our_mac);

class UdpSocket {
 public:
  // A kernel UDP socket bound to ip:port inside `ns`; IPv6 when `ip` has a
  // ':' (then a sender is "[ip]:port").
  UdpSocket(const Netns& ns, const std::string& ip, std::uint16_t port);
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  bool send_to(const std::string& ip, std::uint16_t port, std::span<const std::byte> data) const;
  // The next datagram within `timeout` (poll(2), no blind sleep), with its
  // sender as "ip:port".
  std::optional<std::vector<std::byte>> receive(std::chrono::milliseconds timeout, std::string* from = nullptr) const;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// One netconsole record as a receiver sees it: the fields of its first
// datagram (release, body and other views cleared: they pointed into it)
// and its text, fragments put together, escapes undone, without the
// trailing newline (a dictionary follows it as "\n key=value" lines).
struct ConsoleRecord {
  std::uint8_t level = 0;
  std::uint8_t facility = 0;
  bool continuation = false;  // 'c' or '+': a piece of a line sent in several records
  bool follows = false;       // '+': not the line's first piece
  bool emergency = false;
  std::string text;
};

// Every extended-format record that reaches `sock` until it has been quiet
// for `quiet`, by sequence number. A datagram that does not parse is a test
// failure.
std::map<std::uint64_t, ConsoleRecord> collect_records(const UdpSocket& sock,
                                                       std::chrono::milliseconds quiet = std::chrono::milliseconds(500));
// The same for datagrams already read (by a thread that read them while
// the sender ran, so that a long burst never waits in the socket's buffer).
std::map<std::uint64_t, ConsoleRecord> parse_records(const std::vector<std::string>& datagrams);

// Reads every datagram that reaches `sock` on a thread of its own from
// construction until finish(), which then reads on until `quiet` passes
// without one and returns them all.
class DatagramCollector {
 public:
  explicit DatagramCollector(const UdpSocket& sock);
  ~DatagramCollector();
  DatagramCollector(const DatagramCollector&) = delete;
  DatagramCollector& operator=(const DatagramCollector&) = delete;
  std::vector<std::string> finish(std::chrono::milliseconds quiet = std::chrono::milliseconds(500));

 private:
  const UdpSocket& sock_;
  std::vector<std::string> got_;
  std::atomic<bool> stop_{false};
  std::thread reader_;
};

// Opens the device string `spec` inside `ns`; the device outlives the
// scope. Null, and a test failure naming the error, when it cannot.
std::unique_ptr<dev::Device> open_in(const Netns& ns, const std::string& spec);

// Opens `spec` on a thread of its own that enters `ns` (when given: entering
// needs CAP_SYS_ADMIN) and then drops `cap` from its effective set, and
// returns the error the open failed with. Nothing, and a test failure, when
// the capability could not be dropped or the open succeeded.
std::optional<Error> open_error_without(int cap, const std::string& spec, const Netns* ns = nullptr);

// Hands every received frame to `on_frame` until it returns true or
// `timeout` passes, waiting on the device's descriptor in between.
bool receive_until(dev::Device& dev, std::chrono::milliseconds timeout,
                   const std::function<bool(std::span<const std::byte>)>& on_frame);

// What receive_udp() saw: the datagram it waited for, if it came, and the
// errors of the IPv4/UDP frames before it that failed a check.
struct UdpReceipt {
  std::optional<Udp> udp;
  std::vector<Errc> broken;
};

// Receives (receive_until) until a UDP datagram to `dst_port` arrives.
// Frames that are not IPv4/UDP are passed over; with `arp_as`, ARP
// requests for its IP are answered with its MAC on the way.
UdpReceipt receive_udp(dev::Device& dev, std::uint16_t dst_port, std::chrono::milliseconds timeout,
                       const Endpoint* arp_as = nullptr);

// Waits (bounded) until the device reports the wanted usability.
bool wait_link(const dev::Device& dev, bool usable, std::chrono::milliseconds timeout);

// Drops `cap` from the calling thread's effective set (capabilities are per
// thread in Linux, so the rest of the test binary keeps its privileges).
bool drop_effective_capability(int cap);

bool interface_exists(const Netns& ns, const std::string& ifname);

}  // namespace np::testing
