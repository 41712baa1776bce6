// Whole writes for the receiver's outputs (internal to the receiver layer).
#pragma once

#include "netpoll/base/write_all.h"

namespace np::receiver {

using np::send_all;
using np::write_all;

}  // namespace np::receiver
