// debugnet::Stream: a reliable transfer of one file over netpoll's UDP path,
// speaking FreeBSD debugnet's protocol (wire/debugnet.h). netdump's sender.
//
// A transfer: open() sends a HERALD to the server's herald port until it is
// acknowledged, and learns from the acknowledgement's source port the port
// the server opened for this transfer; write() sends DATA packets to that
// port, each carrying its file offset; finish() waits until every packet is
// acknowledged, then sends FINISHED with the file's length. Sequence numbers
// start at 1 (the herald). At most `window` (≤ 64) packets are
// unacknowledged at a time; each waits for its acknowledgement for
// `ack_timeout` and is sent again, or sooner when a packet sent after it
// has been acknowledged (it was lost, not late); after `tries` sends the
// transfer fails with kTimeout, counted. Contiguous writes are packed into
// full packets.
//
// The stream has a device of its own: a private registry, so it shares no
// lock, pool or queue with the program's other netpoll clients (a thread
// stopped while holding one cannot stall a dump), and no service thread
// (the transferring thread polls for acknowledgements itself), and a
// packet device receiving without a ring (DeviceConfig::rx_copy: a ring
// hands a block over when it is full or after 1 ms, and a range
// acknowledgement fills none). The herald asks the server for range
// acknowledgements (wire/debugnet.h: one datagram answers a run of
// packets); plain ones are taken as well. Its packet
// buffers are set aside at setup in a guarded mapping: a transfer
// allocates nothing, takes no lock and waits only in bounded steps, so it
// runs from a fatal-signal handler. One transfer at a time: open() fails
// with kBusy while another thread's transfer runs.
//
// Context: as marked.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "netpoll/base/counter.h"
#include "netpoll/base/guarded.h"
#include "netpoll/base/result.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/core/registry.h"
#include "netpoll/wire/debugnet.h"

namespace np::debugnet {

struct StreamConfig {
  // The local side (device, local IP; local port default 20024) and the
  // server (remote IP, herald port default 20023). Its device settings are
  // the stream's own device's (no service thread).
  core::ClientConfig client;
  std::chrono::milliseconds ack_timeout{20};  // before a packet is sent again
  int tries = 50;                             // sends of one packet, then the transfer fails
  std::chrono::milliseconds herald_interval{200};
  int herald_tries = 25;
  std::size_t window = wire::debugnet::kMaxInFlight;
  // How long a wait for acknowledgements polls the device before it
  // sleeps. A sleeping thread wakes some time after its frame arrives (a
  // virtual CPU that went idle: hundreds of microseconds), and a dump
  // waits for acknowledgements all the time; the dumping thread has
  // nothing else to do. 0: sleep at once.
  std::chrono::microseconds spin{200};
  // Full DATA packets in a row go to the device in one transmission where
  // it offloads UDP segmentation (core::Netpoll::send_udp_segments_to):
  // the same datagrams on the wire, a fraction of the system's work per
  // packet. false: one by one.
  bool segment_offload = true;
};

struct StreamStats {
  SharedCounter transfers;     // open() that got an answer
  SharedCounter finished;      // finish() acknowledged
  SharedCounter failed;        // transfers that ended in an error
  SharedCounter packets;       // DATA, HERALD and FINISHED packets, first sends
  SharedCounter data_bytes;    // payload bytes of DATA packets, first sends
  SharedCounter retransmits;   // packets sent again after their timeout
  SharedCounter fast_resends;  // ... or after a later packet was acknowledged
  SharedCounter acks;          // acknowledgements of this transfer's packets
  SharedCounter stray;         // datagrams to our port that were not such an ack
  SharedCounter send_errors;   // sends the device refused (retried like a loss)
  SharedCounter segmented;     // first sends handed over in segmented transmissions (a busy device sends them one by one)
};

class Stream : public InGuardedMemory<Stream> {
 public:
  // Opens the stream's own device and resolves the server's MAC (or the
  // gateway's). Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<Stream>> setup(StreamConfig cfg);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Starts a transfer: the herald carries `description` (wire/debugnet.h:
  // key=value lines). kBusy: another transfer runs; kTimeout: the server
  // never answered (within herald_tries or the deadline); kTooBig: the
  // description does not fit a packet. Context: any.
  [[nodiscard]] Result<void> open(std::span<const std::byte> description, std::int64_t deadline_ns) noexcept;

  // Sends `bytes` to be written at `offset`. Returns once every byte is in
  // a packet that was sent (not yet acknowledged). kTimeout: a packet went
  // unacknowledged for `tries` sends, or the deadline passed; the transfer
  // is over then (finish() only tells the server it is partial). Context: any.
  [[nodiscard]] Result<void> write(std::uint64_t offset, std::span<const std::byte> bytes,
                                   std::int64_t deadline_ns) noexcept;

  // Waits until everything written is acknowledged, then sends FINISHED
  // with the file's length (`partial`: the sender gave up before the end)
  // and waits for its acknowledgement. Ends the transfer either way.
  // Context: any.
  [[nodiscard]] Result<void> finish(std::uint64_t size, bool partial, std::int64_t deadline_ns) noexcept;

  // Ends a transfer without FINISHED (the server keeps what it got as
  // partial once the client has been silent long enough). Context: any.
  void abandon() noexcept;

  // DATA payload bytes per packet. Context: any.
  std::size_t max_data() const noexcept { return max_data_; }
  // The port the server answered the last herald from (0 before). Context: any.
  std::uint16_t session_port() const noexcept { return session_port_.load(std::memory_order_acquire); }
  const StreamStats& stats() const noexcept { return stats_; }
  core::Netpoll& client() noexcept { return *np_; }
  // "10.0.0.2:20023 via packet:eth0 from 10.0.0.1:20024". Context: setup.
  std::string describe() const;

 private:
  struct Slot;
  explicit Stream(StreamConfig cfg);
  void on_datagram(const core::RxInfo& info, std::span<const std::byte> payload) noexcept;
  Slot& slot(std::uint32_t seq) noexcept;
  [[nodiscard]] Result<void> queue_packet(std::uint32_t type, std::uint64_t offset, std::span<const std::byte> data,
                                          std::uint32_t aux2, std::int64_t deadline_ns) noexcept;
  void seal_pending() noexcept;
  // Sends the sealed packets not sent yet, oldest first.
  void push_unsent() noexcept;
  // With the window full, waits until `room` packets may go. Context: any.
  [[nodiscard]] Result<void> wait_for_room(std::int64_t deadline_ns, std::uint32_t room) noexcept;
  [[nodiscard]] Result<void> service(std::int64_t deadline_ns, bool wait) noexcept;
  bool transmit(Slot& s) noexcept;
  void wait_for_frames(std::int64_t until_ns) noexcept;
  Result<void> fail_transfer(Errc e) noexcept;
  void end_transfer() noexcept;

  StreamConfig cfg_;
  core::Registry registry_;  // the stream's own: its device is shared with no other client
  std::unique_ptr<core::Netpoll> np_;
  GuardedRegion slots_region_;
  Slot* slots_ = nullptr;  // kMaxInFlight of them, in slots_region_
  std::size_t slot_bytes_ = 0;
  std::size_t max_data_ = 0;
  std::uint32_t window_ = wire::debugnet::kMaxInFlight;

  std::atomic<pid_t> owner_{0};           // the thread whose transfer runs
  std::atomic<std::uint16_t> session_port_{0};
  std::atomic<std::uint16_t> herald_answer_{0};  // the port the herald's ack came from
  std::atomic<std::uint32_t> acked_[wire::debugnet::kMaxInFlight] = {};  // seq acknowledged, by seq % 64
  std::uint32_t next_seq_ = 1;  // the next packet's number
  std::uint32_t base_ = 1;      // the oldest packet not acknowledged
  std::uint32_t unsent_ = 1;    // the oldest packet sealed but not sent yet (next_seq_: none)
  bool failed_ = false;
  // The DATA packet being filled (its slot is next_seq_'s); 0 bytes: none.
  std::uint64_t pending_offset_ = 0;
  std::size_t pending_len_ = 0;
  StreamStats stats_;
};

}  // namespace np::debugnet
