// Bytes shown to people: the one escape for every line a person reads that
// carries bytes from the network (netpoll listen's text lines, netpoll
// recv's and dump's payloads).
//
// The escape can be undone, so a line shows exactly which bytes came:
//   - printable ASCII (0x20..0x7e) is itself, except '\', which is "\\";
//   - '\n' is the style's line break when it has one (listen: a line of its
//     own indented by four spaces), else "\x0a";
//   - valid UTF-8 (base/utf8.h) is itself when the style keeps UTF-8, except
//     the C1 controls U+0080..U+009F, which some terminals obey;
//   - every other byte is "\xHH" (lower-case hex).
// So the text `\x80` (four characters) prints as "\\x80" and the byte 0x80
// as "\x80": a '\' in the output always starts an escape. Nothing printed
// is a control character but the line break's '\n'.
//
// Plain text is copied in runs (one append per run, skipped a word at a
// time). Allocates only while `out` grows: Context: any once `out` has the
// capacity, setup otherwise.
#pragma once

#include <string>
#include <string_view>

namespace np {

struct PrintableStyle {
  // Valid UTF-8 as it is; false: every byte >= 0x80 as \xHH (pure ASCII out).
  bool keep_utf8 = true;
  // What '\n' becomes; empty: "\x0a" (the output is then one line).
  std::string_view line_break{};
};

void append_printable(std::string& out, std::string_view bytes, PrintableStyle style = {});

}  // namespace np
