// Strict UTF-8 (RFC 3629 §4's table) for tests and fuzz targets to check
// output with. Written out here, not taken from base/utf8.h: the oracle
// must not share the code it checks. No overlong forms (E0 then 80-9F, F0
// then 80-8F), no surrogates (ED then A0-BF), nothing past U+10FFFF (F4
// then 90-BF).
#pragma once

#include <cstddef>
#include <string_view>

namespace np::testing {

inline bool strict_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80                  ? 1
                          : c >= 0xc2 && c <= 0xdf ? 2
                          : c >= 0xe0 && c <= 0xef ? 3
                          : c >= 0xf0 && c <= 0xf4 ? 4
                                                    : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    if (n > 1) {
      const auto second = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xe0 && second < 0xa0) || (c == 0xed && second > 0x9f) || (c == 0xf0 && second < 0x90) ||
          (c == 0xf4 && second > 0x8f)) {
        return false;
      }
    }
    i += n;
  }
  return true;
}

}  // namespace np::testing
