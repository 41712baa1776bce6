// A receive hook's datagrams, for the integration tests (header-only: it
// needs core, which the test support library does not link).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "net_helpers.h"
#include "netpoll/core/netpoll.h"

namespace np::testing {

// Datagrams a receive hook got, safe to read from the test thread.
struct Inbox {
  std::mutex mu;
  std::vector<std::string> payloads;
  std::vector<core::RxInfo> infos;
  std::atomic<std::size_t> count{0};

  core::RxHook hook() {
    return [this](core::Netpoll&, const core::RxInfo& info, std::span<const std::byte> p) {
      std::lock_guard lock(mu);
      payloads.emplace_back(as_text(p));
      infos.push_back(info);
      count.fetch_add(1);
    };
  }
  bool wait_for(std::size_t n, std::chrono::milliseconds limit = std::chrono::milliseconds(3000)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (count.load() < n && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return count.load() >= n;
  }
  std::vector<std::string> snapshot() {
    std::lock_guard lock(mu);
    return payloads;
  }
};

}  // namespace np::testing
