// The scrape endpoint of `netpoll listen --metrics ADDR:PORT` and `netpoll
// dumpd --metrics ADDR:PORT`: a small HTTP/1.x server on a thread of its
// own that answers GET /metrics with the page its owner makes at each
// scrape (base/metrics_text.h), as Prometheus expects it
// ("text/plain; version=0.0.4").
//
// One connection at a time, closed after its answer: a scraper comes every
// few seconds. A client that sends no whole request within a second, or
// more than 8 KiB of it, is closed unanswered; any path but /metrics (and
// /) is 404, any method but GET and HEAD 405. Nothing here touches the
// owner's data path: the page function runs on this thread and reads the
// owner's counters as its statistics reports do.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "netpoll/base/counter.h"
#include "netpoll/base/result.h"

namespace np::metrics {

class HttpServer {
 public:
  using Page = std::function<std::string()>;

  // Listens on ADDRESS, "IPV4:PORT" or "[IPV6]:PORT" (numeric; port 0: one
  // the kernel picks), and serves `page` until destroyed. An error names
  // the address and why. Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<HttpServer>> start(std::string_view address, Page page);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const { return port_; }
  // Requests answered (any status). Context: any.
  std::uint64_t requests() const { return requests_.value(); }

 private:
  HttpServer(int fd, std::uint16_t port, Page page);
  void run();
  void serve(int client);

  int fd_;
  std::uint16_t port_;
  Page page_;
  SharedCounter requests_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace np::metrics
