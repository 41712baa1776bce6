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

// argv[0] is the program's path. Under the sanitizer build the program's
// ASan leaves the fatal signals to the program and the kernel.
Outcome run_program(const Netns* ns, const std::vector<std::string>& argv);

}  // namespace np::testing
