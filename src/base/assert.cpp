#include "netpoll/base/assert.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "netpoll/base/text.h"

namespace np::detail {

void assert_fail(const char* file, int line, const char* expr) noexcept {
  FixedText<512> msg;
  msg.append("netpoll: assertion failed at ").append(file).append(":");
  msg.append_uint(static_cast<unsigned>(line)).append(": ").append(expr).append("\n");
  const auto* p = msg.c_str();
  std::size_t left = msg.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  std::abort();
}

}  // namespace np::detail
