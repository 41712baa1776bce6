// Scanning text for the bytes an output format must take care of: valid
// UTF-8 sequences (RFC 3629) and a fast skip over plain printable ASCII.
//
// Used by every escaper that writes untrusted bytes into a text format
// (base/json.h, the receiver's human and syslog lines), so that they agree
// on what is valid UTF-8 and all skip plain text a word at a time.
// Allocation-free: Context: any.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace np {

// Length of the valid UTF-8 sequence starting at s[i] (a byte >= 0x80), or
// 0: overlong forms, surrogates and values above U+10FFFF are invalid
// (RFC 3629 §4), and so is a sequence cut short by the end of `s`.
// Context: any.
inline std::size_t utf8_length(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  const std::size_t left = s.size() - i;
  const auto cont = [&](std::size_t k) { return (b(k) & 0xc0) == 0x80; };
  if (c >= 0xc2 && c <= 0xdf) return left >= 2 && cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (left < 3 || !cont(1) || !cont(2)) return 0;
    if (c == 0xe0 && b(1) < 0xa0) return 0;   // overlong
    if (c == 0xed && b(1) >= 0xa0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (left < 4 || !cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xf0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xf4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// From s[i], skips whole 16-byte (SSE2) and 8-byte words of bytes that need
// no care in any output: 0x20..0x7e and none of `Extra`. Returns where the
// first word that may hold another byte begins (the caller looks at it byte
// by byte from there). A 2500-byte record is then some 160 vector tests
// instead of 2500 byte tests. Context: any.
template <char... Extra>
std::size_t skip_plain(std::string_view s, std::size_t i) noexcept {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHighs = 0x8080808080808080ull;
  [[maybe_unused]] const auto has_zero = [](std::uint64_t y) { return (y - kOnes) & ~y & kHighs; };
#if defined(__SSE2__)
  // 16 at a time: a signed compare with 0x20 also catches 0x80..0xff.
  while (i + 16 <= s.size()) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    __m128i maybe = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
    ((maybe = _mm_or_si128(maybe, _mm_cmpeq_epi8(v, _mm_set1_epi8(Extra)))), ...);
    if (_mm_movemask_epi8(maybe) != 0) break;
    i += 16;
  }
#endif
  while (i + 8 <= s.size()) {
    std::uint64_t x;
    std::memcpy(&x, s.data() + i, 8);
    // A byte below 0x20, or one above 0x7e (its high bit, or 0x7f + 1).
    std::uint64_t maybe = ((x - kOnes * 0x20) & ~x & kHighs) | (((x + kOnes) | x) & kHighs);
    ((maybe |= has_zero(x ^ (kOnes * static_cast<unsigned char>(Extra)))), ...);
    if (maybe != 0) break;
    i += 8;
  }
  return i;
}

}  // namespace np
