// Netconsole message formats, byte-exact with Linux.
//
// Basic format: the console text as it is; a message longer than 1000 bytes
// is cut into 1000-byte datagrams.
//
// Extended format (Linux netconsole with '+', printk's /dev/kmsg records):
//
//   [release,]<prio>,<seq>,<timestamp-us>,<-|c|+>[,ncfrag=<off>/<total>];<body>
//
// prio = facility*8 + level; the flag is '-', or for a line sent in several
// records (printk's continuation fragments) 'c' on its first record and '+'
// on each following one: a reader joins a 'c' record and the '+' records
// after it (older kernels' /dev/kmsg wrote both, recent ones write only
// 'c'; netconsd's ncrx reads both: cont_start, cont). The body is the
// record text with bytes < 0x20, >= 0x7f and '\' escaped as \xHH, then '\n',
// then dictionary lines " KEY=VALUE\n" (values escaped the same way), then
// netconsole's userdata " key=value\n" and sysdata lines. A message longer
// than 1000 bytes is split: every fragment repeats the header (release
// included) with ",ncfrag=<offset>/<total>", where offset and total count
// body bytes; a cut may fall inside an escape sequence, as Linux's does.
// No fragment is marked last: offset + length == total ends a message.
//
// Everything here is allocation-free: Context: any.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "netpoll/base/function_ref.h"
#include "netpoll/base/result.h"

namespace np::wire::netconsole {

inline constexpr std::size_t kMaxDatagram = 1000;  // Linux's MAX_PRINT_CHUNK
// The longest body (the ncfrag total) a receiver is sure to take: netconsd's
// ncrx refuses a fragment whose total is NCRX_LINE_MAX (8192) or more, and
// Linux's own extended messages, header included, fit in
// CONSOLE_EXT_LOG_MAX (8192). netpoll listen takes 64 KiB.
inline constexpr std::size_t kMaxBody = 8191;

// One datagram, valid during the call.
using DatagramSink = FunctionRef<void(std::string_view datagram)>;

// --- escaping -------------------------------------------------------------

constexpr bool needs_escape(unsigned char c) noexcept { return c < 0x20 || c >= 0x7f || c == '\\'; }

// Bytes `in` takes once escaped.
std::size_t escaped_length(std::string_view in) noexcept;

// Writes the escaped form of `in` into `out`, as much as fits without
// cutting an escape; returns the bytes written.
std::size_t escape(std::string_view in, std::span<char> out) noexcept;

// Undoes escape(): \xHH becomes the byte; anything else is copied as it is
// (a backslash not followed by xHH is kept). Returns the bytes written;
// `out` needs in.size() bytes at most. `out` may begin where `in` does
// (in place): each byte is written at or before the one being read.
std::size_t unescape(std::string_view in, std::span<char> out) noexcept;

// --- priority names -------------------------------------------------------
//
// A record's priority is facility * 8 + level, syslog(3)'s numbers. Their
// names are glibc's (<syslog.h> facilitynames and prioritynames), the words
// syslog and journalctl print: facilities 0..11 "kern", "user", "mail",
// "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
// "ftp" and 16..23 "local0".."local7" (12..15 have no name); levels 0..7
// "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug".

// The name of a facility or level; an empty view for a number without
// one. A non-empty name is a NUL-terminated literal (data() is a C string).
std::string_view facility_name(std::uint8_t facility) noexcept;
std::string_view level_name(std::uint8_t level) noexcept;

// The number a name above stands for; nullopt for any other string (exact,
// case-sensitive: "warning", not "warn").
std::optional<std::uint8_t> facility_from_name(std::string_view name) noexcept;
std::optional<std::uint8_t> level_from_name(std::string_view name) noexcept;

// --- the extended header --------------------------------------------------

struct Header {
  std::string_view release;  // empty: no release prefix
  std::uint8_t facility = 1;  // LOG_USER
  std::uint8_t level = 6;     // LOG_INFO
  std::uint64_t seq = 0;
  std::uint64_t timestamp_us = 0;
  bool continuation = false;  // 'c': a line sent in several records
  bool emergency = false;  // ",ncemg=1": netconsd's reliable mode, a retransmission cycle
  bool follows = false;    // with continuation: '+', a record after the line's first
};

inline constexpr std::size_t kMaxHeader = 200;  // release (< 65) + numbers + ncfrag

// "[release,]prio,seq,ts,flag[,ncemg=1]" without ';' (and without ncfrag);
// the flag '-', 'c' (continuation) or '+' (continuation and follows).
// Returns the length, or 0 if `out` is too small.
std::size_t format_header(const Header& h, std::span<char> out) noexcept;

// --- building datagrams ---------------------------------------------------

// Sends `header` + ';' + `body` as one datagram if that fits in 1000 bytes,
// else as fragments. `header` is what format_header() wrote. Returns the
// number of datagrams.
std::size_t emit_extended(std::string_view header, std::string_view body, DatagramSink sink) noexcept;

// Basic format: `text` in datagrams of at most 1000 bytes.
std::size_t emit_basic(std::string_view text, DatagramSink sink) noexcept;

// --- parsing (for receivers) ----------------------------------------------

struct Parsed {
  std::string_view release;  // empty when absent
  std::uint8_t facility = 0;
  std::uint8_t level = 0;
  std::uint64_t seq = 0;
  std::uint64_t timestamp_us = 0;
  bool continuation = false;  // 'c' or '+': a piece of a line sent in several records
  bool follows = false;       // '+': not the line's first piece
  bool fragmented = false;
  std::size_t frag_offset = 0;
  std::size_t frag_total = 0;
  bool emergency = false;  // ncemg=1 (netconsd's reliable mode)
  std::string_view body;   // after ';' (this fragment's part when fragmented)
};

// Parses an extended-format datagram. The release prefix is recognised by
// having one more comma-separated field before the ';' than a record
// without it (its first field is then not a plain number). Unknown fields
// after the flag are ignored. Errors: kMalformed (no ';', a number that is
// not one, a priority over 191, a fragment whose offset+length exceeds its
// total).
[[nodiscard]] Result<Parsed> parse_extended(std::string_view datagram) noexcept;

// A whole body split into text and the " KEY=VALUE" lines after it; `text`
// is still escaped. Calls `field` for each line (key, value escaped).
std::string_view split_body(std::string_view body,
                            FunctionRef<void(std::string_view key, std::string_view value)> field) noexcept;

// --- reliable mode (netconsd's ncrx protocol) ------------------------------
//
// A receiver in reliable mode answers a source with one datagram:
//   "ncrx<ack-seq>" then " <missing-seq>" for each record it still misses,
// at most 1000 bytes. ack-seq is the highest sequence number up to which
// every record has been received (or given up on). A source retransmits
// what is missing, and may resend unacknowledged records marked ncemg=1,
// which the receiver accepts even out of order.

// Writes the response; as many missing numbers as fit in 1000 bytes.
// Returns its length (0 if `out` cannot hold even "ncrx<ack-seq>").
std::size_t format_ncrx(std::uint64_t ack_seq, std::span<const std::uint64_t> missing, std::span<char> out) noexcept;

// Parses a response: false if it is not one. Calls `missing` for each
// missing sequence number.
bool parse_ncrx(std::string_view datagram, std::uint64_t& ack_seq,
                FunctionRef<void(std::uint64_t seq)> missing) noexcept;

}  // namespace np::wire::netconsole
