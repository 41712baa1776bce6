// --metrics ADDR:PORT and --metrics-max-sources N, as netpoll listen and
// netpoll dumpd take them: the statistics they print, served for Prometheus
// (metrics/http_server.h).
#pragma once

#include <memory>

#include "cli.h"
#include "netpoll/metrics/http_server.h"

namespace np::tools {

// The options' help lines.
extern const char* const kMetricsOptionHelp;

void declare_metrics_options(ArgParser& args);

// The server, when --metrics was given (nullptr when not); its address
// said on standard error ("netpoll COMMAND: metrics at http://.../metrics").
// A failure is printed and gives an error. Context: setup.
[[nodiscard]] SetupResult<std::unique_ptr<metrics::HttpServer>> start_metrics(const ArgParser& args,
                                                                               const char* command,
                                                                               metrics::HttpServer::Page page);

}  // namespace np::tools
