// What one record says on the wire, as Linux's netconsole writes it: the
// extended header ("[release,]level,seq,ts,flags", console/record_ring.h's
// meta and the number the sender gave) and body (the text escaped, then the
// target's userdata lines, then its sysdata lines), or, in the basic
// format, the text and a newline. wire/netconsole.h cuts the result into
// datagrams (fragments); nothing here sends.
//
// Pure functions of their arguments: the bytes depend only on the record,
// its number and msgid and the target's format, so a record built again
// (a retransmission) is byte-identical. Context: any (no allocation, no
// system call), except parse_sysdata (setup).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "netpoll/base/result.h"
#include "netpoll/console/record_ring.h"
#include "netpoll/wire/netconsole.h"

namespace np::console {

// Linux netconsole's sysdata, appended in this order when enabled.
struct Sysdata {
  bool cpu = false;
  bool taskname = false;
  bool release = false;
  bool msgid = false;  // per-target counter, wraps at 2^32
  bool any() const { return cpu || taskname || release || msgid; }
};
// "cpu,taskname,release,msgid" (any subset). Context: setup.
[[nodiscard]] SetupResult<Sysdata> parse_sysdata(std::string_view list);

// A target's choices that shape its records' bytes. The views must outlive
// the calls (the Logger's point into its guarded memory).
struct RecordFormat {
  bool extended = false;        // '+': header, escaped text, userdata, sysdata
  bool release_prefix = false;  // 'r': the release before the header's fields
  std::string_view release;     // for the prefix and the release sysdata line
  std::string_view userdata;    // pre-rendered " key=value\n" lines
  Sysdata sysdata;
};

// The bytes of a record's body besides its escaped text, at their most:
// the newline and, in the extended format, the userdata lines and the
// sysdata lines `f` enables (cpu and msgid with 10 digits, a 16-byte
// taskname, the release). Context: any.
constexpr std::size_t record_overhead(const RecordFormat& f) noexcept {
  if (!f.extended) return 1;
  std::size_t n = 1 + f.userdata.size();
  if (f.sysdata.cpu) n += 5 + 10 + 1;                      // " cpu=" N "\n"
  if (f.sysdata.taskname) n += 10 + 16 + 1;                // " taskname=" NAME "\n"
  if (f.sysdata.release) n += 9 + f.release.size() + 1;   // " release=" RELEASE "\n"
  if (f.sysdata.msgid) n += 7 + 10 + 1;                    // " msgid=" N "\n"
  return n;
}

// Where the first record of a text ends when a record's text may take at
// most `budget` bytes once escaped (wire::netconsole::escape: a byte below
// 0x20, 0x7f and above, and '\' take four, \xHH). All of `text` when it
// fits; else the longest prefix that fits, moved back to the first byte of
// a UTF-8 character it would cut: a valid sequence (RFC 3629, base/utf8.h)
// is never split; an invalid one (a sequence cut short by the end of
// `text` included) may be cut anywhere. Never 0 for a text that is not
// empty: a budget too small for the first character (under 4 for an
// escaped byte, under 16 for a 4-byte sequence) cuts it after the bytes
// that fit, or after its first byte. Context: any.
std::size_t piece_length(std::string_view text, std::size_t budget) noexcept;

// The bytes record_body() needs at most for `text_len` bytes of text:
// every byte escaped (4x), the newline, userdata and sysdata (a release of
// `release_len` bytes). Context: any.
constexpr std::size_t max_record_body(std::size_t text_len, std::size_t userdata_len, std::size_t release_len) {
  // cpu, taskname (16), release, msgid: their lines at their longest.
  const std::size_t sysdata_max = 16 + 32 + 12 + release_len + 18;
  return text_len * 4 + 1 + userdata_len + sysdata_max;
}

// The extended header's fields for record `seq` (emergency: ",ncemg=1",
// a reliable-mode resend). wire::netconsole::format_header() writes it.
// Context: any.
wire::netconsole::Header record_header(const RecordFormat& f, const RecordMeta& meta, std::uint64_t seq,
                                       bool emergency) noexcept;

// Writes the record's body into `out` and returns its length. Extended:
// the text escaped (wire::netconsole::escape), '\n', the userdata lines,
// then " cpu=", " taskname=" (bytes that would need escaping become '?'),
// " release=", " msgid=" lines as f.sysdata enables them (cpu only when
// known, meta.cpu >= 0). Basic: the text as it is and '\n'. A part that
// does not fit where it falls is left out; out.size() >=
// max_record_body(...) fits everything. A record with `meta.more` (a piece
// of a line that goes on in the next record) has no newline in the basic
// format: the next record's text continues the line, as a console's
// continued line does. Context: any.
std::size_t record_body(const RecordFormat& f, const RecordMeta& meta, std::string_view text, std::uint32_t msgid,
                        std::span<char> out) noexcept;

}  // namespace np::console
