#include "netpoll/dev/device.h"

namespace np::dev {

const char* to_string(TxStatus s) noexcept {
  switch (s) {
    case TxStatus::kOk: return "ok";
    case TxStatus::kBusy: return "busy";
    case TxStatus::kError: return "error";
  }
  return "unknown";
}

}  // namespace np::dev
