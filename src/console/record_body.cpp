#include "netpoll/console/record_body.h"

#include <algorithm>
#include <string>

#include "netpoll/base/text.h"
#include "netpoll/base/utf8.h"

namespace np::console {
namespace nc = np::wire::netconsole;

SetupResult<Sysdata> parse_sysdata(std::string_view list) {
  Sysdata s;
  while (!list.empty()) {
    const auto comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    if (item == "cpu") {
      s.cpu = true;
    } else if (item == "taskname") {
      s.taskname = true;
    } else if (item == "release") {
      s.release = true;
    } else if (item == "msgid") {
      s.msgid = true;
    } else {
      return setup_error(Errc::kInvalidArgument,
                         "unknown sysdata '" + std::string(item) + "' (known: cpu, taskname, release, msgid)");
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return s;
}

namespace {

// The length of the UTF-8 sequence a byte begins (RFC 3629 §4: C2..DF two,
// E0..EF three, F0..F4 four); 0 for any other byte.
std::size_t lead_length(unsigned char c) noexcept {
  if (c >= 0xc2 && c <= 0xdf) return 2;
  if (c >= 0xe0 && c <= 0xef) return 3;
  if (c >= 0xf0 && c <= 0xf4) return 4;
  return 0;
}

}  // namespace

std::size_t piece_length(std::string_view text, std::size_t budget) noexcept {
  if (text.size() <= budget / 4) return text.size();  // fits however much of it is escaped
  std::size_t cut = 0;
  for (std::size_t cost = 0; cut < text.size(); ++cut) {
    cost += nc::needs_escape(static_cast<unsigned char>(text[cut])) ? 4 : 1;
    if (cost > budget) break;
  }
  if (cut == text.size()) return cut;
  // A cut inside a character moves back to its lead byte, at most three
  // bytes back: past continuation bytes (10xxxxxx) to the first other byte.
  for (std::size_t back = 1; back <= 3 && back <= cut; ++back) {
    const auto c = static_cast<unsigned char>(text[cut - back]);
    if ((c & 0xc0) == 0x80) continue;
    const std::size_t len = lead_length(c);
    if (len <= back) break;  // not a lead byte, or its character ends at or before the cut
    const std::size_t start = cut - back;
    if (start > 0 && utf8_length(text, start) == len) return start;
    break;
  }
  return std::max<std::size_t>(cut, 1);  // a text that is not empty: at least a byte
}

nc::Header record_header(const RecordFormat& f, const RecordMeta& meta, std::uint64_t seq, bool emergency) noexcept {
  nc::Header h{f.release_prefix ? f.release : std::string_view{}, meta.facility, meta.level, seq, meta.timestamp_us,
               meta.continuation};
  h.emergency = emergency;
  h.follows = meta.continuation && meta.follows;
  return h;
}

std::size_t record_body(const RecordFormat& f, const RecordMeta& meta, std::string_view text, std::uint32_t msgid,
                        std::span<char> out) noexcept {
  std::size_t at = 0;
  if (!f.extended) {
    put(out, at, text);
    if (!meta.more) put(out, at, "\n");
    return at;
  }
  at = nc::escape(text, out);
  put(out, at, "\n");
  put(out, at, f.userdata);
  // Linux's order: cpu, taskname, release, msgid.
  const Sysdata& sd = f.sysdata;
  if (sd.cpu && meta.cpu >= 0) {
    put(out, at, " cpu=");
    put_uint(out, at, static_cast<std::uint64_t>(meta.cpu));
    put(out, at, "\n");
  }
  if (sd.taskname) {
    put(out, at, " taskname=");
    for (std::size_t i = 0; i < sizeof meta.taskname && meta.taskname[i] != '\0'; ++i) {
      const char ch = meta.taskname[i];
      put(out, at, std::string_view(nc::needs_escape(static_cast<unsigned char>(ch)) ? "?" : &ch, 1));
    }
    put(out, at, "\n");
  }
  if (sd.release) {
    put(out, at, " release=");
    put(out, at, f.release);
    put(out, at, "\n");
  }
  if (sd.msgid) {
    put(out, at, " msgid=");
    put_uint(out, at, msgid);
    put(out, at, "\n");
  }
  return at;
}

}  // namespace np::console
