#include "netpoll/wire/gdb_rsp.h"

#include "netpoll/base/hex.h"

namespace np::wire {
namespace {

bool must_escape(char c, RspPayload kind) noexcept {
  return c == '#' || c == '$' || c == '}' || c == '*' || (kind == RspPayload::kBinary && (c == '+' || c == '-'));
}

}  // namespace

RspDecoder::Maybe RspDecoder::step(char c) noexcept {
  switch (state_) {
    case State::kIdle:
      if (c == '$') {
        state_ = State::kPayload;
        len_ = 0;
        sum_ = 0;
        overflow_ = false;
        return {};
      }
      if (c == '+') return {true, RspEvent::kAck};
      if (c == '-') return {true, RspEvent::kNak};
      if (c == '\x03') return {true, RspEvent::kInterrupt};
      ++stats_.stray_bytes;
      return {};
    case State::kPayload:
      if (c == '#') {
        state_ = State::kCheck1;
        return {};
      }
      if (c == '$') {
        // A new packet before this one ended: the first was cut short
        // (a lost datagram). Start over with the new one.
        ++stats_.bad_checksums;
        len_ = 0;
        sum_ = 0;
        overflow_ = false;
        return {true, RspEvent::kBadChecksum};
      }
      sum_ = static_cast<std::uint8_t>(sum_ + static_cast<std::uint8_t>(c));
      if (len_ < buf_.size()) {
        buf_[len_++] = c;
      } else {
        overflow_ = true;
      }
      return {};
    case State::kCheck1: {
      const int v = hex_digit(c);
      if (v < 0) {
        state_ = State::kIdle;
        ++stats_.bad_checksums;
        return {true, RspEvent::kBadChecksum};
      }
      want_ = static_cast<std::uint8_t>(v << 4);
      state_ = State::kCheck2;
      return {};
    }
    case State::kCheck2: {
      state_ = State::kIdle;
      const int v = hex_digit(c);
      if (overflow_) {
        ++stats_.overflows;
        len_ = 0;
        return {true, RspEvent::kOverflow};
      }
      if (v < 0 || static_cast<std::uint8_t>(want_ | v) != sum_) {
        ++stats_.bad_checksums;
        len_ = 0;
        return {true, RspEvent::kBadChecksum};
      }
      ++stats_.packets;
      return {true, RspEvent::kPacket};
    }
  }
  return {};
}

std::size_t rsp_encode(std::string_view payload, std::span<char> out, RspPayload kind) noexcept {
  std::size_t at = 0;
  std::uint8_t sum = 0;
  auto put = [&](char c) {
    if (at >= out.size()) return false;
    out[at++] = c;
    return true;
  };
  if (!put('$')) return 0;
  for (const char c : payload) {
    if (must_escape(c, kind)) {
      if (!put('}')) return 0;
      sum = static_cast<std::uint8_t>(sum + '}');
      const char e = static_cast<char>(c ^ 0x20);
      if (!put(e)) return 0;
      sum = static_cast<std::uint8_t>(sum + static_cast<std::uint8_t>(e));
    } else {
      if (!put(c)) return 0;
      sum = static_cast<std::uint8_t>(sum + static_cast<std::uint8_t>(c));
    }
  }
  if (!put('#') || !put(kHexDigits[sum >> 4]) || !put(kHexDigits[sum & 0xf])) return 0;
  return at;
}

std::size_t rsp_unescape(std::span<char> data) noexcept {
  std::size_t out = 0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (data[i] == '}') {
      if (++i == data.size()) break;
      data[out++] = static_cast<char>(data[i] ^ 0x20);
    } else {
      data[out++] = data[i];
    }
  }
  return out;
}

}  // namespace np::wire
