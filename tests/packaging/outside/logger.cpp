// A program outside the project, built against the installed netpoll
// (find_package or pkg-config): logs one record, as README's "Using the
// library" does, and waits until it is on the wire.
//   outside_logger TARGET TEXT
#include <chrono>
#include <cstdio>

#include "netpoll/console/logger.h"
#include "netpoll/core/options.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: outside_logger TARGET TEXT\n");
    return 2;
  }
  auto targets = np::core::parse_targets(argv[1]);
  if (!targets) {
    std::fprintf(stderr, "bad target %s\n", argv[1]);
    return 2;
  }
  np::console::LoggerConfig cfg;
  np::console::TargetConfig target;
  target.target = targets->targets[0];
  cfg.targets.push_back(target);
  auto logger = np::console::Logger::create(std::move(cfg));
  if (!logger) {
    std::fprintf(stderr, "%s\n", logger.error().message.c_str());
    return 1;
  }
  (*logger)->log(np::console::Level::kWarning, "{} from {}", argv[2], "the installed library");
  return (*logger)->flush(std::chrono::seconds(5)) ? 0 : 1;
}
