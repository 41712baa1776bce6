#include "metrics_option.h"

#include <cstdio>

namespace np::tools {

const char* const kMetricsOptionHelp =
    "  --metrics ADDR:PORT  serve the statistics for Prometheus at\n"
    "                       http://ADDR:PORT/metrics (text exposition format,\n"
    "                       every counter printed, with HELP and TYPE lines),\n"
    "                       e.g. 127.0.0.1:9466 or [::1]:9466\n";

void declare_metrics_options(ArgParser& args) { args.option("metrics"); }

SetupResult<std::unique_ptr<metrics::HttpServer>> start_metrics(const ArgParser& args, const char* command,
                                                                metrics::HttpServer::Page page) {
  const auto address = args.get("metrics");
  if (!address) return std::unique_ptr<metrics::HttpServer>();
  auto server = metrics::HttpServer::start(*address, std::move(page));
  if (!server) return server;
  const std::string host = address->substr(0, address->rfind(':'));
  std::fprintf(stderr, "netpoll %s: metrics at http://%s:%u/metrics\n", command, host.c_str(), (*server)->port());
  return server;
}

}  // namespace np::tools
