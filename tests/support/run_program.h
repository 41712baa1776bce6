// Runs a program the way the crash tests need it: in a fresh directory
// (its core file, if any, lands there), core dumps allowed, inside a
// network namespace if one is given, its output captured; bounded (killed,
// and a test failure, after 20 s).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "netns.h"

namespace np::testing {

struct Outcome {
  int status = -1;         // as waitpid(2) gives it
  bool core_file = false;  // a file named core* was written
  std::string output;      // stdout and stderr
  std::chrono::milliseconds took{};
};

// What the sanitizer build's programs (they carry ASan) get in ASAN_OPTIONS:
// their fatal signals go to their own handlers, the kernel and netpoll's
// witness, as without ASan; an error ASan finds aborts.
inline constexpr const char* kSanitizedChildOptions =
    "handle_segv=0:handle_abort=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:abort_on_error=1:detect_leaks=0";

// argv[0] is the program's path. Under the sanitizer build the program's
// ASan leaves the fatal signals to the program and the kernel.
Outcome run_program(const Netns* ns, const std::vector<std::string>& argv);

}  // namespace np::testing
