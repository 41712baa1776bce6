// torture_static SCENARIO [--lines N]: a statically linked program that
// crashes, for the torture suite. No netpoll library and no dynamic loader:
// `netpoll run` cannot preload its crash path into it, so what the suite
// checks is how the runner copes (the program's lines are forwarded, its
// death reported by the runner alone).
//
//   scenario   signal    whole program   faults in
//   segv       SIGSEGV   killed, 139     crash_null_write
//   abort      SIGABRT   killed, 134     abort (abort_now)
//   exit-zero  none      exit 0          -
//
// Each prints "line 1" ... "line N" (N = 3 by default) on a line-buffered
// stdout first; "line N" is the last thing it prints.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

volatile std::uintptr_t g_bad_address = 0x10;  // in the null page

[[gnu::noinline, gnu::noclone]] void crash_null_write() { *reinterpret_cast<volatile int*>(g_bad_address) = 1; }

[[gnu::noinline, gnu::noclone]] void abort_now() { std::abort(); }

int usage() {
  std::fprintf(stderr, "usage: torture_static segv|abort|exit-zero [--lines N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc != 2 && argc != 4) return usage();
  long lines = 3;
  if (argc == 4) {
    char* end = nullptr;
    if (std::strcmp(argv[2], "--lines") != 0) return usage();
    lines = std::strtol(argv[3], &end, 10);
    if (*end != '\0' || lines < 0 || lines > 1'000'000) return usage();
  }
  const bool segv = std::strcmp(argv[1], "segv") == 0;
  const bool abort = std::strcmp(argv[1], "abort") == 0;
  if (!segv && !abort && std::strcmp(argv[1], "exit-zero") != 0) return usage();
  for (long k = 1; k <= lines; ++k) std::printf("line %ld\n", k);
  if (segv) crash_null_write();
  if (abort) abort_now();
  return 0;
}
