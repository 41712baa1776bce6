// The process's symbol table, loaded once, for the console tests
// (src/console/*_test.cpp). Loading allocates: call it before any
// allocation guard.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "netpoll/console/symbolizer.h"

namespace np::console {

inline const Symbolizer& test_symbolizer() {
  static const std::unique_ptr<Symbolizer> sym = [] {
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
