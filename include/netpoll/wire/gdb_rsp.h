// gdb's remote serial protocol (RSP), the framing: what the stub reads from
// and writes to gdb's byte stream (gdb over UDP treats the datagrams as
// one stream, as it would a serial line).
//
// On the stream (gdb's manual, "Overview" of the remote protocol):
//   $<payload>#<cc>  a packet; cc: two hex digits, the sum of the payload's
//                    bytes as sent, modulo 256;
//   +  -             the acknowledgement of a packet received whole, or a
//                    request to send the last packet again;
//   0x03             an interrupt (gdb's Ctrl-C), outside any packet.
// Inside a payload '}' escapes the next byte (sent XORed with 0x20): '#',
// '$', '}' and '*' travel escaped in binary data. A stub may compress its
// replies with run-length encoding ('*'); gdb never sends it, and this
// encoder never uses it.
//
// RspDecoder reads the stream a byte at a time into a buffer the caller
// owns (no allocation) and reports each event; bytes outside any packet
// that mean nothing, packets longer than the buffer and bad checksums are
// counted, never fatal. Context: any.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace np::wire {

enum class RspEvent : std::uint8_t {
  kAck,          // '+'
  kNak,          // '-': send the last packet again
  kInterrupt,    // 0x03 outside a packet
  kPacket,       // a packet whose checksum verified: payload() holds it
  kBadChecksum,  // a whole packet whose checksum did not: answer '-'
  kOverflow,     // a packet longer than the buffer, dropped whole: answer '-'
};

struct RspStats {
  std::uint64_t packets = 0;
  std::uint64_t bad_checksums = 0;
  std::uint64_t overflows = 0;
  std::uint64_t stray_bytes = 0;  // outside a packet and not + - or 0x03
};

class RspDecoder {
 public:
  // Packets up to buf.size() bytes of payload (as sent, escapes included).
  explicit RspDecoder(std::span<char> buf) noexcept : buf_(buf) {}

  // Feeds `in`; calls on(RspEvent) for each event, in order. During a
  // kPacket call, payload() is the packet's payload (still escaped: see
  // rsp_unescape). Context: any.
  template <class F>
  void feed(std::span<const std::byte> in, F&& on) noexcept {
    for (const std::byte b : in) {
      if (const auto e = step(static_cast<char>(b))) on(*e);
    }
  }

  std::string_view payload() const noexcept { return {buf_.data(), len_}; }
  const RspStats& stats() const noexcept { return stats_; }
  // Forgets a packet half read (a new peer, a new session). Context: any.
  void reset() noexcept {
    state_ = State::kIdle;
    len_ = 0;
  }

 private:
  enum class State : std::uint8_t { kIdle, kPayload, kCheck1, kCheck2 };
  struct Maybe {  // std::optional without <optional> in a hot loop
    bool has = false;
    RspEvent e{};
    explicit operator bool() const noexcept { return has; }
    RspEvent operator*() const noexcept { return e; }
  };
  Maybe step(char c) noexcept;

  std::span<char> buf_;
  std::size_t len_ = 0;
  State state_ = State::kIdle;
  bool overflow_ = false;
  std::uint8_t sum_ = 0;
  std::uint8_t want_ = 0;
  RspStats stats_;
};

// How a reply's payload is escaped. Binary data (a qXfer reply's, which
// gdb unescapes byte by byte) also escapes '+' and '-': over a datagram
// link a reply longer than a datagram travels in pieces, and a piece that
// arrives without the one that opened its frame is read by gdb, waiting
// for an acknowledgement, as loose characters: a '+' there (libstdc++ in a
// library list) would acknowledge gdb's next packet and pair it with a
// stale reply. Text replies (qSupported's) are sent as they are.
enum class RspPayload : std::uint8_t { kText, kBinary };

// Frames `payload` as $payload#cc into `out`, escaping '#', '$', '}' and
// '*' (and for binary data '+' and '-'). Returns the bytes written, or 0
// when `out` is too small. Context: any.
[[nodiscard]] std::size_t rsp_encode(std::string_view payload, std::span<char> out,
                                     RspPayload kind = RspPayload::kText) noexcept;

// Undoes '}' escapes in place; returns the new length. A '}' at the very
// end (nothing to escape) is dropped. Context: any.
[[nodiscard]] std::size_t rsp_unescape(std::span<char> data) noexcept;

}  // namespace np::wire
