#include "cli.h"

#include <signal.h>

#include <charconv>
#include <cstdio>

#include "netpoll/base/printable.h"

namespace np::tools {
namespace {

// Set by the handler, hence a volatile sig_atomic_t at namespace scope.
volatile sig_atomic_t g_stop = 0;
void on_stop_signal(int) { g_stop = 1; }

}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() noexcept { return g_stop != 0; }

int count_exit_status(std::string_view sub, std::string_view unit, double timeout, std::uint64_t got,
                      std::uint64_t count) {
  if (count == 0 || got >= count || stop_requested()) return 0;
  std::fprintf(stderr, "netpoll %.*s: timed out after %g s with %llu of %llu %.*s\n", static_cast<int>(sub.size()),
               sub.data(), timeout, static_cast<unsigned long long>(got), static_cast<unsigned long long>(count),
               static_cast<int>(unit.size()), unit.data());
  return 1;
}

ArgParser& ArgParser::option(std::string name) {
  declared_[std::move(name)] = true;
  return *this;
}

ArgParser& ArgParser::flag(std::string name) {
  declared_[std::move(name)] = false;
  return *this;
}

ArgParser& ArgParser::flag_with_value(std::string name) {
  declared_[name] = false;
  optional_value_[std::move(name)] = true;
  return *this;
}

void ArgParser::parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      for (int j = i + 1; j < argc; ++j) after_dashes_.emplace_back(argv[j]);
      return;
    }
    if (a.size() <= 2 || a.rfind("--", 0) != 0) {
      positional_.push_back(a);
      continue;
    }
    const auto eq = a.find('=');
    const std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const auto it = declared_.find(name);
    if (it == declared_.end()) throw UsageError("unknown option --" + name);
    const bool takes_value = it->second;
    if (!takes_value && optional_value_.contains(name)) {
      values_[name].push_back(eq == std::string::npos ? std::string() : a.substr(eq + 1));
      continue;
    }
    if (!takes_value) {
      if (eq != std::string::npos) throw UsageError("option --" + name + " takes no value");
      values_[name].emplace_back();
      continue;
    }
    if (eq != std::string::npos) {
      values_[name].push_back(a.substr(eq + 1));
    } else if (i + 1 < argc) {
      values_[name].emplace_back(argv[++i]);
    } else {
      throw UsageError("option --" + name + " needs a value");
    }
  }
}

bool ArgParser::has(std::string_view name) const { return values_.find(name) != values_.end(); }

std::optional<std::string> ArgParser::get(std::string_view name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> ArgParser::all(std::string_view name) const {
  const auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::uint64_t ArgParser::get_uint(std::string_view name, std::uint64_t fallback, std::uint64_t min,
                                  std::uint64_t max) const {
  const auto v = get(name);
  if (!v) return fallback;
  std::uint64_t out = 0;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (v->empty() || ec != std::errc() || end != v->data() + v->size() || out < min || out > max) {
    throw UsageError("--" + std::string(name) + " '" + *v + "': expected a whole number from " +
                     std::to_string(min) + " to " + std::to_string(max));
  }
  return out;
}

double ArgParser::get_seconds(std::string_view name, double fallback) const {
  const auto v = get(name);
  if (!v) return fallback;
  double out = 0;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (v->empty() || ec != std::errc() || end != v->data() + v->size() || !(out >= 0) || out > 1e6) {
    throw UsageError("--" + std::string(name) + " '" + *v + "': expected seconds, e.g. 2 or 0.5");
  }
  return out;
}

void print_error(std::string_view sub, std::string_view message) {
  std::fprintf(stderr, "netpoll %.*s: %.*s\n", static_cast<int>(sub.size()), sub.data(),
               static_cast<int>(message.size()), message.data());
}

std::string printable(std::string_view bytes, std::size_t max) {
  std::string out;
  append_printable(out, bytes.substr(0, max), PrintableStyle{.keep_utf8 = false});
  if (max < bytes.size()) out += "...";
  return out;
}

}  // namespace np::tools
