// Remote commands' authentication: every datagram that reaches the
// command port is checked here before anything else looks at it.
//
// The checks, in this order (each failure a drop, counted by reason):
//   1. the datagram's length: shorter than header and MAC (kTruncated),
//      longer than a request may be (kOversized), a body length field
//      that disagrees with it (kTruncated, kMalformed) — lengths only;
//   2. the key id (a field at a fixed offset): not in the ring
//      (kUnknownKey);
//   3. the HMAC-SHA-256 over header and body with that key, compared in
//      constant time (libsodium's crypto_auth_hmacsha256_verify) (kBadMac);
//   4. only now the other fields: magic, version, kind (kMalformed);
//   5. the timestamp within ±window of the receiver's clock (kStale);
//   6. the counter above the highest this key has been accepted with
//      (kReplay); a datagram that passes raises it.
// So a forged datagram costs at most one HMAC over at most
// kHeaderLen + kMaxRequestBody bytes, allocates nothing and changes no
// state but a counter: a flood of them has a fixed price each.
//
// Invariants: verify() is called by one thread at a time (the command
// client's polling thread); the counters may be read from any thread.
// Per key, the highest accepted counter starts at the verifier's start
// time minus the window (netpoll cmd's counters are its clock in
// nanoseconds), so a datagram made before that cannot be replayed to a
// restarted process.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>

#include "netpoll/base/counter.h"
#include "netpoll/command/key.h"
#include "netpoll/core/stats.h"
#include "netpoll/wire/command.h"

namespace np::command {

// Why a datagram to the command port was not executed.
enum class CommandDrop : std::uint8_t {
  kTruncated,   // shorter than header + MAC, or than its body length says
  kOversized,   // longer than a request may be (kMaxRequestBody)
  kMalformed,   // trailing bytes; after a good MAC: another magic, version or kind
  kUnknownKey,  // a key id the ring does not hold
  kBadMac,      // the MAC does not verify
  kStale,       // timestamp outside the window
  kReplay,      // counter not above the highest accepted for its key
  kBusy,        // verified, but the queue of commands waiting to run was full
  kCount
};
// snake_case names: "truncated", "bad_mac", ... Context: any.
const char* to_string(CommandDrop d) noexcept;

struct VerifierConfig {
  std::chrono::seconds window{30};  // accepted timestamps: receiver's clock ± this
};

// A request that passed every check. The body refers into the datagram.
struct Verified {
  std::uint32_t key_id = 0;
  std::uint64_t counter = 0;
  std::uint64_t timestamp_ns = 0;
  std::span<const std::byte> body;
};

class Verifier {
 public:
  // `start_ns`: the receiver's clock now (ns since the Unix epoch).
  // Context: setup.
  Verifier(const KeyRing& keys, VerifierConfig cfg, std::int64_t start_ns) noexcept;

  // Checks one datagram at `now_ns` (ns since the Unix epoch) as the
  // header says. Context: any.
  [[nodiscard]] std::expected<Verified, CommandDrop> verify(std::span<const std::byte> datagram,
                                                            std::int64_t now_ns) noexcept;

  // Counts a drop decided after verification (kBusy). Context: any.
  void count(CommandDrop d) noexcept { drops_.add(d); }

  const core::ReasonCounters<CommandDrop, SharedCounter>& drops() const noexcept { return drops_; }
  std::uint64_t accepted() const noexcept { return accepted_.value(); }
  const KeyRing& keys() const noexcept { return keys_; }

 private:
  KeyRing keys_;
  VerifierConfig cfg_;
  std::array<std::uint64_t, kMaxKeys> highest_{};
  core::ReasonCounters<CommandDrop, SharedCounter> drops_;
  SharedCounter accepted_;
};

// A request for `body` made and sealed with `key` at the start of `out`
// (which holds at least kHeaderLen + body + kMacLen bytes: else empty);
// the datagram. netpoll cmd's way, and the tests'. Context: any.
std::span<std::byte> seal_request(const Key& key, std::uint64_t counter, std::uint64_t timestamp_ns,
                                  std::span<const std::byte> body, std::span<std::byte> out) noexcept;

// Writes the MAC of a datagram Repr::emit() made (its last kMacLen bytes)
// with `key`. Context: any.
void seal(const Key& key, std::span<std::byte> datagram) noexcept;

// Whether a checked datagram's MAC is `key`'s, in constant time.
// Context: any.
[[nodiscard]] bool mac_matches(const Key& key, const wire::CommandDatagram<const std::byte>& d) noexcept;

}  // namespace np::command
