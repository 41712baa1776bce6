// FixedText: a bounded, NUL-terminated string builder that never allocates;
// put()/put_uint(): the same into a caller's span at a cursor.
//
// Used wherever text is produced in a context that must not allocate (the
// crash path, assertion messages, address formatting). Appends past the
// capacity are cut and remembered in truncated().
#pragma once

#include <cstddef>
#include <cstdint>
#include <charconv>
#include <cstring>
#include <span>
#include <string_view>

namespace np {

template <std::size_t N>
class FixedText {
 public:
  static_assert(N > 1);

  constexpr FixedText() noexcept { buf_[0] = '\0'; }

  // Context: any.
  constexpr FixedText& append(std::string_view s) noexcept {
    for (const char c : s) push(c);
    return *this;
  }
  constexpr FixedText& append(char c) noexcept {
    push(c);
    return *this;
  }
  constexpr FixedText& append_uint(std::uint64_t v) noexcept {
    char tmp[20];
    std::size_t n = 0;
    do {
      tmp[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0) push(tmp[--n]);
    return *this;
  }
  constexpr FixedText& append_int(std::int64_t v) noexcept {
    if (v < 0) {
      push('-');
      return append_uint(static_cast<std::uint64_t>(-(v + 1)) + 1);
    }
    return append_uint(static_cast<std::uint64_t>(v));
  }
  // Lower-case hex, zero-padded to `width` digits (at least the digits needed).
  constexpr FixedText& append_hex(std::uint64_t v, int width = 1) noexcept {
    char tmp[16];
    int n = 0;
    do {
      tmp[n++] = "0123456789abcdef"[v & 0xf];
      v >>= 4;
    } while (v != 0);
    while (n < width && n < 16) tmp[n++] = '0';
    while (n > 0) push(tmp[--n]);
    return *this;
  }

  constexpr void clear() noexcept {
    len_ = 0;
    truncated_ = false;
    buf_[0] = '\0';
  }
  constexpr const char* c_str() const noexcept { return buf_; }
  constexpr std::string_view view() const noexcept { return {buf_, len_}; }
  constexpr std::size_t size() const noexcept { return len_; }
  constexpr bool truncated() const noexcept { return truncated_; }

 private:
  constexpr void push(char c) noexcept {
    if (len_ + 1 >= N) {
      truncated_ = true;
      return;
    }
    buf_[len_++] = c;
    buf_[len_] = '\0';
  }

  char buf_[N];
  std::size_t len_ = 0;
  bool truncated_ = false;
};

// Writing into a caller's buffer at a cursor, for formats built in place
// (datagrams, records): `at` moves past what was written. Nothing is
// written, and false returned, if it does not fit. Context: any.
inline bool put(std::span<char> out, std::size_t& at, std::string_view s) noexcept {
  if (at + s.size() > out.size()) return false;
  if (s.empty()) return true;  // an empty view may have no data() at all
  std::memcpy(out.data() + at, s.data(), s.size());
  at += s.size();
  return true;
}

inline bool put_uint(std::span<char> out, std::size_t& at, std::uint64_t v) noexcept {
  char tmp[24];
  const auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
  return put(out, at, std::string_view(tmp, static_cast<std::size_t>(r.ptr - tmp)));
}

}  // namespace np
