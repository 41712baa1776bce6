// Command-line plumbing shared by the netpoll subcommands.
//
// Tools may throw for argument errors (STYLE.md: exceptions in main() for
// argument parsing only); main() turns a UsageError into
//   netpoll SUB: MESSAGE
//   Try 'netpoll SUB --help'.
// and exit status 2.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace np::tools {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Declare options first, then parse:
//   ArgParser p;
//   p.option("count").flag("stats");
//   p.parse(argc, argv, 2);
// Options are "--name VALUE", "--name=VALUE" or a bare "--flag"; a flag
// declared with a value (flag_with_value) is "--name" or "--name=VALUE"
// (get() then gives "" or VALUE). "--" ends options (what follows is
// after_dashes()). Everything else is positional.
class ArgParser {
 public:
  ArgParser& option(std::string name);  // takes a value; may repeat
  ArgParser& flag(std::string name);
  ArgParser& flag_with_value(std::string name);  // --name or --name=VALUE, never the next argument

  void parse(int argc, char** argv, int first);

  bool has(std::string_view name) const;
  std::optional<std::string> get(std::string_view name) const;  // the last value given
  std::vector<std::string> all(std::string_view name) const;    // every value, in order
  std::uint64_t get_uint(std::string_view name, std::uint64_t fallback, std::uint64_t min, std::uint64_t max) const;
  double get_seconds(std::string_view name, double fallback) const;

  const std::vector<std::string>& positional() const { return positional_; }
  const std::vector<std::string>& after_dashes() const { return after_dashes_; }

 private:
  std::map<std::string, bool, std::less<>> declared_;  // name -> takes a value
  std::map<std::string, bool, std::less<>> optional_value_;  // flags that may carry =VALUE
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
  std::vector<std::string> positional_;
  std::vector<std::string> after_dashes_;
};

// Makes SIGINT and SIGTERM set a flag instead of ending the process, so that
// a command's loop can stop and still print its summary. Call it once the
// command is set up.
void install_stop_signals();
// True once SIGINT or SIGTERM arrived after install_stop_signals().
bool stop_requested() noexcept;

// The exit status of a command that waited for `count` items (0: no
// --count) and got `got`: 1 if it fell short by timing out, after saying
//   netpoll SUB: timed out after S s with GOT of COUNT UNIT
// on stderr; 0 if it got them all, had no count, or was stopped by a signal.
int count_exit_status(std::string_view sub, std::string_view unit, double timeout, std::uint64_t got,
                      std::uint64_t count);

// Prints "netpoll SUB: MESSAGE" to stderr.
void print_error(std::string_view sub, std::string_view message);

// Escapes bytes for one-line display with base/printable.h's escape, ASCII
// only: printable ASCII as is, '\' as "\\", every other byte (a newline
// and non-ASCII too) as \xHH. Cut after `max` input bytes with "..."
// appended.
std::string printable(std::string_view bytes, std::size_t max = SIZE_MAX);

}  // namespace np::tools
