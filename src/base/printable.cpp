#include "netpoll/base/printable.h"

#include "netpoll/base/hex.h"
#include "netpoll/base/utf8.h"

namespace np {

void append_printable(std::string& out, std::string_view s, PrintableStyle style) {
  std::size_t run = 0;  // start of the bytes not yet appended
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((i = skip_plain<'\\'>(s, i)) == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') continue;
    if (c >= 0x80 && style.keep_utf8) {
      const std::size_t n = utf8_length(s, i);
      // U+0080..U+009F is c2 80..c2 9f: escaped, the c2 here and the
      // continuation byte (never valid on its own) next.
      if (n != 0 && !(c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0)) {
        i += n - 1;  // valid UTF-8 stays in the run
        continue;
      }
    }
    out.append(s.data() + run, i - run);
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n' && !style.line_break.empty()) {
      out.append(style.line_break);
    } else {
      const char e[4] = {'\\', 'x', kHexDigits[c >> 4], kHexDigits[c & 0xf]};
      out.append(e, 4);
    }
    run = i + 1;
  }
  out.append(s.data() + run, s.size() - run);
}

}  // namespace np
