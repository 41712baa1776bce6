// netpoll bench in a build configured without it (-DNP_BENCH_COMMAND=OFF,
// as the sanitizer build is): says so instead of running nothing.
#include <cstdio>

#include "commands.h"

namespace np::tools {

int cmd_bench(int, char**) {
  std::fputs("netpoll bench: not in this build (configured with -DNP_BENCH_COMMAND=OFF)\n", stderr);
  return 2;
}

}  // namespace np::tools
