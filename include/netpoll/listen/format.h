// Output formats for what a Source delivers: a human line, a JSON line and
// an RFC 5424 syslog message (with RFC 6587 octet-counting framing).
//
// Every function appends to a caller's std::string and reuses its capacity:
// a caller that keeps one string per output allocates only while the
// string grows to the longest line it has had to hold, then never again
// (Context: any once `out` has the capacity, setup otherwise).
//
// The receive time is the receiver's wall clock, printed in UTC with
// microseconds: 2026-11-22T05:12:01.123456Z. `source` is the sender as the
// caller names it, "ip:port" ("[v6]:port" for IPv6).
//
// Bytes a record may carry (anything: its escapes are undone) are never
// printed raw where they could forge structure:
//   - human (base/printable.h's escape, the one every command uses for
//     people): '\' becomes \\; bytes < 0x20 (but the text's '\n'), 0x7f,
//     bytes that are not part of valid UTF-8, and the C1 controls
//     U+0080..U+009F (which some terminals obey) become \xHH; a multi-line
//     text prints each later line on a line of its own indented by four
//     spaces. So a '\' always starts an escape and the text `\x80` (four
//     characters) and the byte 0x80 print differently;
//   - JSON (base/json.h's escaper): '"', '\' and controls are escaped (\n
//     \t \r \b \f, else \u00XX, 0x7f too); each byte that is not part of
//     valid UTF-8 becomes U+FFFD, so the output is always valid UTF-8. The
//     output is still exact: a string that lost a byte so is followed by
//     its bytes in base64 (see append_json);
//   - syslog: SD-PARAM values escape '"', '\' and ']' (RFC 5424 §6.3.3),
//     control bytes become the text \xHH (a '\' before 'x' is an ordinary
//     character there) and invalid UTF-8 becomes U+FFFD (PARAM-VALUE is
//     UTF-8, §6.3.3); MSG is the text as it is, newlines kept (MSG-ANY,
//     §6.4): frame it with octet counting.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "netpoll/listen/source.h"

namespace np::listen {

struct Origin {
  std::chrono::system_clock::time_point received;
  std::string_view source;  // "ip:port"
};

// 2026-11-22T05:12:01.123456Z. Context: any with capacity.
void append_utc(std::string& out, std::chrono::system_clock::time_point t);

// Facilities and levels are named as syslog names them (wire/netconsole.h:
// "daemon", "err"); a number without a name is printed as its decimal value.

// <time> <source> <facility>.<level> <seq> <text>\n, seq "-" for basic
// records; the text's trailing newlines are left out. Context: any with
// capacity.
void append_human(std::string& out, const Record& r, const Origin& o);
// <time> <source> gap <first>..<last> (<count> lost|missing)\n: "lost" when
// msgid or a partly received record proves it, "missing" (lost or
// filtered by level) otherwise.
void append_human_gap(std::string& out, const Gap& g, const Origin& o);
// <time> <source> reset <from> -> <to>\n
void append_human_reset(std::string& out, std::uint64_t from_seq, std::uint64_t to_seq, const Origin& o);

// One JSON object and '\n'. Keys, in order: received, source, format
// ("extended"|"basic"), seq (null for basic), facility, level (names),
// timestamp_us (null for basic), continuation, emergency, late, release
// (null when none), text, fragments, msgid (null when none), dictionary,
// userdata, sysdata (objects; a key repeated in a record is repeated).
//
// Lossless: release and text are UTF-8 strings in which a byte that is not
// UTF-8 reads U+FFFD; when a value has such a byte, release_base64 or
// text_base64 follows it with the value's exact bytes in base64 (RFC 4648
// §4). Likewise a dictionary, userdata or sysdata object with such a byte in
// a key or value is followed by dictionary_base64 (userdata_base64,
// sysdata_base64): [["<key>","<value>"],...], every field of the object in
// base64, in order. Valid UTF-8 records (nearly all) carry none of these.
void append_json(std::string& out, const Record& r, const Origin& o);
// {"event":"gap","received":...,"source":...,"first":N,"count":M,"lost":bool}\n
void append_json_gap(std::string& out, const Gap& g, const Origin& o);
// {"event":"reset","received":...,"source":...,"from":N,"to":M}\n
void append_json_reset(std::string& out, std::uint64_t from_seq, std::uint64_t to_seq, const Origin& o);

// RFC 5424, no trailing newline:
//   <PRI>1 TIME HOST netconsole - - [netconsole@32473 seq="N" ts="US" ...] TEXT
// PRI = facility * 8 + level; HOST is the source without its port. The
// element's parameters: seq and ts (extended records), format="basic" (basic
// records), cont="1", emergency="1", late="1", fragments="N" when more than
// one, release="..." when present, then every dictionary, userdata and
// sysdata field whose key is a valid SD-NAME (1..32 printable US-ASCII, no
// '=', ' ', ']', '"'; the others are left out). 32473 is the IANA example
// enterprise number (RFC 5612).
void append_syslog(std::string& out, const Record& r, const Origin& o);

// RFC 6587 §3.4.1 octet counting for syslog over TCP: "LEN SP MSG".
void append_octet_counted(std::string& out, std::string_view msg);

}  // namespace np::listen
