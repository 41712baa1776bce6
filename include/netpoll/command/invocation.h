// Remote commands' text: what a verified request's body asks for.
//
// A body is a command word and its arguments, printable ASCII separated by
// spaces ("t", "stacks", "level 4", "l 4"); the word is a built-in's letter
// or name (as sysrq has letters) or the name of a command the program
// registered. parse_invocation() splits it without copying; anything that
// is not printable ASCII, or an empty body, is refused.
//
// Context: any.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "netpoll/base/result.h"

namespace np::command {

struct Invocation {
  std::string_view word;  // as sent: "t", "stacks", "my-command"
  std::string_view args;  // the rest, without leading and trailing spaces; may be empty
};

// Splits a request body. kMalformed: empty, or a byte outside 0x20..0x7e.
[[nodiscard]] Result<Invocation> parse_invocation(std::span<const std::byte> body) noexcept;

enum class Builtin : std::uint8_t {
  kHelp, kStacks, kMemory, kLevel, kStats, kDump, kGdb, kCrash, kTerminate, kCount
};

struct BuiltinInfo {
  Builtin id;
  char letter;
  std::string_view name;
  std::string_view usage;  // arguments, "" for none
  std::string_view help;
};

// Every built-in, in the order help lists them.
extern const std::array<BuiltinInfo, static_cast<std::size_t>(Builtin::kCount)> kBuiltins;

// The built-in a word names (its letter or its name), or nullopt.
[[nodiscard]] std::optional<Builtin> find_builtin(std::string_view word) noexcept;
const BuiltinInfo& builtin_info(Builtin b) noexcept;

// `level`'s argument: one digit 0..8 (8: every level). nullopt otherwise.
[[nodiscard]] std::optional<std::uint8_t> parse_level_arg(std::string_view args) noexcept;

}  // namespace np::command
