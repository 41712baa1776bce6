#include "netpoll/base/result.h"

namespace np {

const char* to_string(Errc e) noexcept {
  switch (e) {
    case Errc::kTruncated: return "truncated";
    case Errc::kBadLength: return "bad length";
    case Errc::kBadChecksum: return "bad checksum";
    case Errc::kBadVersion: return "bad version";
    case Errc::kBadHeaderLen: return "bad header length";
    case Errc::kHasOptions: return "has IP options";
    case Errc::kFragment: return "IP fragment";
    case Errc::kUnsupported: return "unsupported";
    case Errc::kMalformed: return "malformed";
    case Errc::kBusy: return "busy";
    case Errc::kLinkDown: return "link down";
    case Errc::kNoSuchDevice: return "no such device";
    case Errc::kPermission: return "permission denied";
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kNoAddress: return "no address";
    case Errc::kTimeout: return "timed out";
    case Errc::kNoBuffer: return "no buffer";
    case Errc::kTooBig: return "too big";
    case Errc::kIo: return "I/O error";
    case Errc::kExists: return "already exists";
    case Errc::kNotFound: return "not found";
    case Errc::kClosed: return "closed";
    case Errc::kExtensionHeader: return "IPv6 extension header";
    case Errc::kNoChecksum: return "checksum missing";
  }
  return "unknown error";
}

}  // namespace np
