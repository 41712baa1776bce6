// cmd_child MODE ...: a program for the remote commands' tests
// (tests/integration/commands_test.cpp), which send it commands with
// `netpoll cmd` from another namespace.
//
//   ticks                three named threads park (parked_threads.h:
//                        "alpha-reader", "beta-sleeper", "gamma-waiter"),
//                        "ready" is printed, then every 50 ms "out tick N"
//                        on standard output and "err tick N" on standard
//                        error, for ever (netpoll run --commands preloads
//                        the command server into it);
//   stuck                the main thread holds mutex A and waits for ever
//                        in stuck_in_zeta_lock() for mutex B, which the
//                        thread "zeta-holder" holds while it waits for A:
//                        nothing of the program runs again;
//   library DEV IP LISTENER KEYFILE
//                        the library setting: a Logger (+6665@IP/DEV to
//                        LISTENER:6666) and a command server with a
//                        command of the program's own, "greet" (answers
//                        "hello, ARGS"); prints "ready", then waits.
#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "netpoll/base/clock.h"
#include "netpoll/remote/server.h"
#include "parked_threads.h"

namespace {

pthread_mutex_t g_lock_a = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_lock_b = PTHREAD_MUTEX_INITIALIZER;
std::atomic<bool> g_holder_has_b{false};

[[gnu::noinline]] void stuck_in_zeta_lock() {
  pthread_mutex_lock(&g_lock_b);  // held by zeta-holder, which waits for A: never
  std::puts("never");
  pthread_mutex_unlock(&g_lock_b);
}

int ticks() {
  start_threads();
  std::printf("ready pid %d\n", static_cast<int>(::getpid()));
  std::fflush(stdout);
  for (unsigned long n = 1;; ++n) {
    std::printf("out tick %lu\n", n);
    std::fflush(stdout);
    std::fprintf(stderr, "err tick %lu\n", n);
    np::nap(std::chrono::milliseconds(50));
  }
}

int stuck() {
  pthread_mutex_lock(&g_lock_a);
  pthread_t holder;
  pthread_create(
      &holder, nullptr,
      [](void*) -> void* {
        pthread_mutex_lock(&g_lock_b);
        g_holder_has_b = true;
        pthread_mutex_lock(&g_lock_a);  // held by main: never
        return nullptr;
      },
      nullptr);
  pthread_setname_np(holder, "zeta-holder");
  for (int i = 0; i < 5000 && !g_holder_has_b; ++i) np::nap(std::chrono::milliseconds(1));
  std::puts("stuck");
  std::fflush(stdout);
  stuck_in_zeta_lock();
  return 1;
}

int library(const char* dev, const char* ip, const char* listener, const char* keyfile) {
  np::console::LoggerConfig cfg;
  cfg.name = "cmd_child";
  np::console::TargetConfig t;
  auto parsed = np::core::parse_targets(std::string("+6665@") + ip + "/" + dev + ",6666@" + listener + "/");
  if (!parsed) return 2;
  t.target = parsed->targets.at(0);
  cfg.targets.push_back(t);
  auto lg = np::console::Logger::create(std::move(cfg));
  if (!lg) {
    std::fprintf(stderr, "logger: %s\n", lg.error().message.c_str());
    return 1;
  }
  auto keys = np::command::load_key_file(keyfile);
  if (!keys) {
    std::fprintf(stderr, "%s\n", keys.error().message.c_str());
    return 1;
  }
  np::remote::ServerConfig sc;
  sc.client.target = parsed->targets.at(0);
  sc.keys = *keys;
  sc.logger = lg->get();
  auto server = np::remote::Server::setup(std::move(sc));
  if (!server) {
    std::fprintf(stderr, "server: %s\n", server.error().message.c_str());
    return 1;
  }
  auto added = (*server)->add_command("greet", "says hello to its arguments",
                                      [](std::string_view args, np::remote::Reply& r) {
                                        r.text("hello, ").text(args).end_record();
                                      });
  if (!added) return 1;
  std::puts("ready");
  std::fflush(stdout);
  for (;;) ::pause();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "ticks") return ticks();
  if (mode == "stuck") return stuck();
  if (mode == "library" && argc == 6) return library(argv[2], argv[3], argv[4], argv[5]);
  std::fprintf(stderr, "usage: cmd_child ticks | stuck | library DEV IP LISTENER KEYFILE\n");
  return 2;
}
