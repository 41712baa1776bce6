#include "netpoll/base/metrics_text.h"

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

}  // namespace

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
