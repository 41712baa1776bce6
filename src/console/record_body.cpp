#include "netpoll/console/record_body.h"

#include <string>

#include "netpoll/base/text.h"

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

nc::Header record_header(const RecordFormat& f, const RecordMeta& meta, std::uint64_t seq, bool emergency) noexcept {
  nc::Header h{f.release_prefix ? f.release : std::string_view{}, meta.facility, meta.level, seq, meta.timestamp_us,
               meta.continuation};
  h.emergency = emergency;
  return h;
}

std::size_t record_body(const RecordFormat& f, const RecordMeta& meta, std::string_view text, std::uint32_t msgid,
                        std::span<char> out) noexcept {
  std::size_t at = 0;
  if (!f.extended) {
    put(out, at, text);
    put(out, at, "\n");
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
