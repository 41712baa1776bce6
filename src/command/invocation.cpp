#include "netpoll/command/invocation.h"

namespace np::command {

const std::array<BuiltinInfo, static_cast<std::size_t>(Builtin::kCount)> kBuiltins = {{
    {Builtin::kHelp, 'h', "help", "", "this list"},
    {Builtin::kStacks, 't', "stacks", "", "a backtrace of every thread, one record each"},
    {Builtin::kMemory, 'm', "memory", "", "resident and virtual size, heap statistics"},
    {Builtin::kLevel, 'l', "level", "[N]", "the console level: records below N are sent (0-8, 8: all); without N, show it"},
    {Builtin::kStats, 's', "stats", "", "netpoll's counters: device, clients, console, commands dropped by reason"},
    {Builtin::kDump, 'd', "dump", "", "a core of the live process to the dump server (the process goes on)"},
    {Builtin::kGdb, 'g', "gdb", "", "break into the gdb stub, serving only the address that asked"},
    {Builtin::kCrash, 'c', "crash", "", "crash now (SIGSEGV): the crash path runs as for a real crash"},
    {Builtin::kTerminate, 'k', "terminate", "", "send the process SIGTERM"},
}};

Result<Invocation> parse_invocation(std::span<const std::byte> body) noexcept {
  const std::string_view text(reinterpret_cast<const char*>(body.data()), body.size());
  for (const char c : text) {
    if (c < 0x20 || c > 0x7e) return fail(Errc::kMalformed);
  }
  const auto start = text.find_first_not_of(' ');
  if (start == std::string_view::npos) return fail(Errc::kMalformed);
  const auto end = text.find(' ', start);
  Invocation inv;
  inv.word = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
  if (end != std::string_view::npos) {
    std::string_view rest = text.substr(end);
    const auto a = rest.find_first_not_of(' ');
    if (a != std::string_view::npos) {
      rest.remove_prefix(a);
      rest.remove_suffix(rest.size() - (rest.find_last_not_of(' ') + 1));
      inv.args = rest;
    }
  }
  return inv;
}

std::optional<Builtin> find_builtin(std::string_view word) noexcept {
  for (const BuiltinInfo& b : kBuiltins) {
    if ((word.size() == 1 && word[0] == b.letter) || word == b.name) return b.id;
  }
  return std::nullopt;
}

const BuiltinInfo& builtin_info(Builtin b) noexcept { return kBuiltins[static_cast<std::size_t>(b)]; }

std::optional<std::uint8_t> parse_level_arg(std::string_view args) noexcept {
  if (args.size() != 1 || args[0] < '0' || args[0] > '8') return std::nullopt;
  return static_cast<std::uint8_t>(args[0] - '0');
}

}  // namespace np::command
