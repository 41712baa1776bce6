#include "netpoll/base/metrics_text.h"

#include <cctype>

namespace np {
namespace {

// The format's escapes: in HELP, '\' and newline; in a label's value, '"'
// as well.
void append_escaped(std::string& out, std::string_view text, bool quote) {
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// A walk over a JSON object's members, handing each number (and boolean)
// to `out` with its path of keys.
class JsonLeaves {
 public:
  JsonLeaves(std::string_view json, MetricsText& out) : json_(json), out_(out) {}

  void object(std::string name, std::string help) {
    if (!take('{')) return;
    if (take('}')) return;
    do {
      std::string key;
      if (!string(key) || !take(':')) return;
      std::string member = name + "_";
      for (const char c : key) member += std::isalnum(static_cast<unsigned char>(c)) || c == '_' ? c : '_';
      if (!value(member, help.empty() ? key : help + " " + key)) return;
    } while (take(','));
    take('}');
  }

 private:
  bool value(const std::string& name, const std::string& help) {
    space();
    if (at_ >= json_.size()) return false;
    const char c = json_[at_];
    if (c == '{') {
      object(name, help);
      return ok_;
    }
    if (c == '"') {
      std::string ignored;
      return string(ignored);
    }
    if (json_.substr(at_, 4) == "true" || json_.substr(at_, 5) == "false") {
      const bool v = c == 't';
      at_ += v ? 4 : 5;
      out_.single(name, "untyped", help, v ? 1 : 0);
      return true;
    }
    std::uint64_t v = 0;
    const std::size_t start = at_;
    while (at_ < json_.size() && json_[at_] >= '0' && json_[at_] <= '9') v = v * 10 + (json_[at_++] - '0');
    if (at_ == start) return ok_ = false;
    out_.single(name, "untyped", help, v);
    return true;
  }
  bool string(std::string& s) {
    if (!take('"')) return false;
    while (at_ < json_.size() && json_[at_] != '"') {
      if (json_[at_] == '\\') ++at_;  // an escape: the next character, whatever it means
      if (at_ < json_.size()) s += json_[at_++];
    }
    return take('"');
  }
  bool take(char c) {
    space();
    if (ok_ && at_ < json_.size() && json_[at_] == c) {
      ++at_;
      return true;
    }
    if (c != ',' && c != '}') ok_ = false;
    return false;
  }
  void space() {
    while (at_ < json_.size() && (json_[at_] == ' ' || json_[at_] == '\n')) ++at_;
  }

  std::string_view json_;
  MetricsText& out_;
  std::size_t at_ = 0;
  bool ok_ = true;
};

}  // namespace

MetricsText& MetricsText::json_numbers(std::string_view prefix, std::string_view json, std::string_view help_head) {
  JsonLeaves(json, *this).object(std::string(prefix), std::string(help_head));
  return *this;
}

MetricsText& MetricsText::family(std::string_view name, std::string_view type, std::string_view help) {
  out_.append("# HELP ").append(name).append(" ");
  append_escaped(out_, help, false);
  out_.append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
  return *this;
}

MetricsText& MetricsText::sample(std::string_view name, std::uint64_t value) {
  out_.append(name).append(" ").append(std::to_string(value)).append("\n");
  return *this;
}

MetricsText& MetricsText::sample(std::string_view name, std::string_view label, std::string_view label_value,
                                 std::uint64_t value) {
  out_.append(name).append("{").append(label).append("=\"");
  append_escaped(out_, label_value, true);
  out_.append("\"} ").append(std::to_string(value)).append("\n");
  return *this;
}

}  // namespace np
