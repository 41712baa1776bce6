// Hexadecimal digits, both ways: the one table and the one parser every
// text format of the project (MAC addresses, netconsole's escapes, JSON,
// gdb's protocol, /proc files) uses.
//
// Context: any.
#pragma once

namespace np {

// Lower-case digits by value: kHexDigits[v & 0xf].
inline constexpr char kHexDigits[] = "0123456789abcdef";

// The value of one hexadecimal digit (either case), -1 for anything else.
constexpr int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace np
