// Error vocabulary shared by every layer.
//
// Two kinds of failure exist in netpoll:
//  - data-path failures (`Errc`), a one-byte code that can be returned from a
//    fatal-signal handler: no allocation, no text, no exceptions;
//  - setup-time failures (`Error`), which carry a sentence for the person who
//    typed the device name or option string ("no such interface: eth9").
//
// Bad packets are not errors: the receive path counts them as drop reasons.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <utility>

namespace np {

enum class Errc : std::uint8_t {
  kTruncated = 1,     // buffer shorter than the header or length field says
  kBadLength,         // a length field disagrees with itself or with the buffer
  kBadChecksum,       // a checksum does not verify
  kBadVersion,        // IP version is not the one expected (4, or 6 in an IPv6 frame)
  kBadHeaderLen,      // IPv4 IHL below 5
  kHasOptions,        // IPv4 header carries options (recognised, refused)
  kFragment,          // IPv4 datagram is a fragment (recognised, refused)
  kUnsupported,       // well-formed but not a variant we handle
  kMalformed,         // text or value that does not parse
  kBusy,              // device ring full or queue stopped: retry later
  kLinkDown,          // device not running or without carrier
  kNoSuchDevice,      // named device does not exist
  kPermission,        // the OS refused for lack of privilege
  kInvalidArgument,   // a caller passed something unusable
  kNoAddress,         // interface has no address of the family wanted
  kTimeout,           // a bounded wait ran out
  kNoBuffer,          // a fixed pool or queue is exhausted
  kTooBig,            // payload does not fit the MTU or a frame slot
  kIo,                // the OS reported an I/O error
  kExists,            // name already in use
  kNotFound,          // lookup found nothing
  kClosed,            // peer or device has gone away
  kExtensionHeader,   // IPv6 header followed by an extension header (recognised, refused)
  kNoChecksum,        // a checksum that must be present is zero (UDP over IPv6)
};

// Static string for a code; never allocates. Context: any.
[[nodiscard]] const char* to_string(Errc e) noexcept;

template <class T>
using Result = std::expected<T, Errc>;

// `return fail(Errc::kTruncated);` inside a function returning Result<T>.
[[nodiscard]] constexpr std::unexpected<Errc> fail(Errc e) noexcept {
  return std::unexpected<Errc>(e);
}

// A setup-time failure: the code plus a message meant for a person.
struct Error {
  Errc code;
  std::string message;
};

template <class T>
using SetupResult = std::expected<T, Error>;

// `return setup_error(Errc::kNoSuchDevice, "no such interface: " + name);`
// Context: setup.
[[nodiscard]] inline std::unexpected<Error> setup_error(Errc code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

}  // namespace np
