// NP_ASSERT: abort on a broken precondition, safely from any context.
//
// The message goes out with write(2) only (no stdio, no allocation), so an
// assertion that fires inside a signal handler still says where it was.
#pragma once

namespace np::detail {
[[noreturn]] void assert_fail(const char* file, int line, const char* expr) noexcept;
}  // namespace np::detail

#define NP_ASSERT(cond)                                          \
  do {                                                           \
    if (!(cond)) [[unlikely]]                                    \
      ::np::detail::assert_fail(__FILE__, __LINE__, #cond);      \
  } while (false)
