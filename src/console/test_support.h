// Helpers shared by the console tests (src/console/*_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "netpoll/console/logger.h"
#include "netpoll/console/symbolizer.h"
#include "netpoll/wire/netconsole.h"

namespace np::console {

// A logger, or nullptr with the setup error reported as a test failure.
inline std::unique_ptr<Logger> make(LoggerConfig c) {
  auto lg = Logger::create(std::move(c));
  EXPECT_TRUE(lg) << (lg ? "" : lg.error().message);
  return lg ? std::move(*lg) : nullptr;
}

// An extended datagram parsed, a test failure if it does not parse.
inline wire::netconsole::Parsed parsed(const std::string& d) {
  auto p = wire::netconsole::parse_extended(d);
  EXPECT_TRUE(p) << d;
  return p ? *p : wire::netconsole::Parsed{};
}

// The process's symbol table, loaded once. Loading allocates: call it
// before any allocation guard.
inline const Symbolizer& test_symbolizer() {
  static const SymbolizerPtr sym = [] {
    auto s = Symbolizer::load();
    if (!s) {
      std::fprintf(stderr, "%s\n", s.error().message.c_str());
      std::abort();
    }
    return std::move(*s);
  }();
  return *sym;
}

// A pair wire's name no other test of this process uses.
inline std::string unique_wire(std::string_view prefix) {
  static std::atomic<int> n{0};
  return std::string(prefix) + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

// The address a pointer (to data or code) holds, for comparing with
// return addresses.
template <class T>
std::uintptr_t address_of(T* p) {
  return reinterpret_cast<std::uintptr_t>(p);
}

// Any instant will do for a test's clock; not the steady clock's epoch,
// which timers start at.
inline constexpr std::chrono::steady_clock::time_point kStart{std::chrono::hours(1000)};

}  // namespace np::console
