// Helpers shared by the console tests (src/console/*_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

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

}  // namespace np::console
