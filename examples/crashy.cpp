// crashy: a small program that does some work, says so, and crashes.
// The demo runs it under `netpoll run` (it knows nothing of netpoll).
#include <cstdio>
#include <cstring>

namespace {

struct Job {
  const char* name;
  int* result;
};

[[gnu::noinline]] void store_result(Job& job, int value) {
  *job.result = value;  // job.result is null for the last job
}

[[gnu::noinline]] void run_job(Job& job, int n) {
  std::printf("job %d (%s) running\n", n, job.name);
  store_result(job, n * 42);
}

}  // namespace

int main() {
  int slot = 0;
  Job jobs[] = {{"warm-up", &slot}, {"index", &slot}, {"publish", nullptr}};
  std::printf("crashy starting: %zu jobs\n", sizeof jobs / sizeof jobs[0]);
  for (int i = 0; i < 3; ++i) run_job(jobs[i], i + 1);
  std::printf("all jobs done\n");  // never printed
  return 0;
}
