// A client's reserved way out for a crash path.
//
// When a process dies, the normal send path is the wrong road: its frame
// pool and deferred queue may have been overwritten, another thread may
// hold the device's transmit lock (and be descheduled, or never run
// again), and a transmit waits its turn behind theirs. A CrashRoute is
// made at setup for one client on a packet or xdp device and shares nothing with
// that path: its own raw AF_PACKET socket on the interface (protocol 0: it
// receives nothing), its own frames and message headers in a guarded
// mapping, the client's addresses copied at setup, and its own IPv4
// identification counter. send() builds a frame in place (the send path's
// own function, Ethernet, IPv4 or IPv6, and UDP) and batches it;
// flush() hands the batch to the kernel with one sendmmsg(2). No lock,
// no pool, no queue, no allocation.
//
// Before the first send, revalidate() checks that the socket is still the
// one it opened (the program may have closed or reused the descriptor)
// and opens a fresh one if not: it never writes into a descriptor that is
// no longer its own.
//
// Only packet and xdp devices have one (a TAP device's far end is this process,
// and the other backends have no interface to send on): make() returns
// nullptr for the others, whose crash path stays the send path in
// emergency mode. Context: as marked.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "netpoll/base/addr.h"
#include "netpoll/base/guarded.h"
#include "netpoll/base/result.h"

namespace np::core {

class Netpoll;

class CrashRoute : public InGuardedMemory<CrashRoute> {
 public:
  static constexpr std::size_t kBatch = 64;

  // For `np`'s current addresses (its remote MAC as resolved now).
  // nullptr when the device is neither a packet nor an xdp device. Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<CrashRoute>> make(Netpoll& np);
  ~CrashRoute();
  CrashRoute(const CrashRoute&) = delete;
  CrashRoute& operator=(const CrashRoute&) = delete;

  // The socket is still ours; else a fresh one. False when none can be
  // had. Context: any.
  bool revalidate() noexcept;
  // Builds one datagram's frame into the batch (flushing a full batch
  // first). kTooBig beyond the device's MTU. Context: any.
  [[nodiscard]] Result<void> send(std::span<const std::byte> payload) noexcept;
  // Sends the batch. Returns the frames the kernel refused (counted in
  // errors()). Context: any.
  std::size_t flush() noexcept;

  std::uint64_t sent() const noexcept;
  std::uint64_t errors() const noexcept;

 private:
  struct State;
  CrashRoute() = default;
  GuardedRegion region_;
  State* state_ = nullptr;  // in region_
};

}  // namespace np::core
