// What a core dump needs from /proc/self/smaps (or maps) and
// /proc/self/coredump_filter, parsed from text with bounds, and the
// decision which mappings' memory goes into the core.
//
// Every parser takes one line (no newline) and either returns the facts
// or fails; none reads past the line, none allocates. The line comes from
// the kernel, but the crash path trusts nothing it did not check.
//
// Which memory is dumped follows the kernel's rules for a core
// (core(5), "Controlling which mappings are written to the core dump"),
// as far as user space can see them:
//  - the vDSO is always dumped; [vvar] never (the kernel marks it
//    do-not-dump and I/O);
//  - a mapping marked do-not-dump (madvise MADV_DONTDUMP: "dd" in smaps'
//    VmFlags) or I/O ("io") is not;
//  - huge-page (hugetlb, "ht") memory: filter bit 5 when private, bit 6
//    when shared;
//  - shared memory: bit 1 when its file is gone (anonymous shared memory,
//    a deleted file, System V segments), else bit 3;
//  - private memory that has been written to (the kernel: it has
//    anonymous pages): bit 0, also when a file is mapped there; smaps
//    tells whether it was written ("Anonymous:" or "Swap:" above zero);
//    without smaps, a private mapping is taken as written when it is
//    anonymous or writable;
//  - other private file mappings: bit 2, else, with bit 4, the first page
//    of a mapping at file offset 0 when it starts with the ELF magic (gdb
//    reads build-ids from it);
//  - a mapping that cannot be read (no 'r' permission) is never dumped:
//    the kernel might, user space cannot.
// Memory that is not dumped still gets its PT_LOAD, with no bytes in the
// file (p_filesz 0), as the kernel writes it.
#pragma once

#include <cstdint>
#include <string_view>

#include "netpoll/base/result.h"

namespace np::dump {

// coredump_filter bits (core(5)).
inline constexpr std::uint32_t kFilterAnonPrivate = 1u << 0;
inline constexpr std::uint32_t kFilterAnonShared = 1u << 1;
inline constexpr std::uint32_t kFilterFilePrivate = 1u << 2;
inline constexpr std::uint32_t kFilterFileShared = 1u << 3;
inline constexpr std::uint32_t kFilterElfHeaders = 1u << 4;
inline constexpr std::uint32_t kFilterHugePrivate = 1u << 5;
inline constexpr std::uint32_t kFilterHugeShared = 1u << 6;
inline constexpr std::uint32_t kDefaultCoredumpFilter = 0x33;  // the kernel's default

// One mapping's line in /proc/PID/maps (the first line of each entry in
// smaps): "start-end perms offset major:minor inode   path".
struct MapsLine {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  std::uint64_t offset = 0;  // in the file, bytes
  std::uint64_t inode = 0;
  bool read = false, write = false, exec = false, shared = false;
  std::string_view path;  // empty for anonymous memory; into the line
};

// Parses a maps line; kMalformed for anything else (an smaps field line
// among them). Context: any.
[[nodiscard]] Result<MapsLine> parse_maps_line(std::string_view line) noexcept;

// An smaps field "Name:   1234 kB": the value in bytes when the line is
// that field, else nothing (kNotFound), kMalformed when the number is
// broken. Context: any.
[[nodiscard]] Result<std::uint64_t> parse_smaps_kb(std::string_view line, std::string_view name) noexcept;

// smaps' "VmFlags: rd wr mr ..." line: the flags that decide a dump.
struct VmFlags {
  bool dont_dump = false;  // dd
  bool io = false;         // io
  bool hugetlb = false;    // ht
};
// kNotFound when the line is not VmFlags. Context: any.
[[nodiscard]] Result<VmFlags> parse_vm_flags(std::string_view line) noexcept;

// /proc/PID/coredump_filter: hexadecimal, a newline after it.
// Context: any.
[[nodiscard]] Result<std::uint32_t> parse_coredump_filter(std::string_view text) noexcept;

// What kind of memory a mapping is, from its path.
enum class MappingKind : std::uint8_t {
  kAnonymous,    // no path, [heap], [stack], [anon:...] and other bracketed names
  kFile,         // a path (starts with '/')
  kVdso,         // [vdso], [vsyscall]: always dumped
  kNeverDumped,  // [vvar], [vvar_vclock], [uprobes]: not memory gdb can use
};
// Context: any.
[[nodiscard]] MappingKind classify_path(std::string_view path) noexcept;

// Shared memory whose file is gone counts as anonymous shared memory.
// Context: any.
[[nodiscard]] bool is_anonymous_shared(const MapsLine& m) noexcept;

// Everything a dump decision needs to know about one mapping.
struct MappingFacts {
  MapsLine line;
  VmFlags flags;
  bool have_smaps = false;  // the flags and `written` come from smaps
  bool written = false;     // smaps: it has anonymous (copied-on-write) pages, resident or swapped
};

enum class DumpExtent : std::uint8_t {
  kNothing,            // p_filesz 0
  kWhole,              // every page
  kFirstPageIfElf,     // one page when it starts with "\x7fELF" (bit 4)
};
// Context: any.
[[nodiscard]] DumpExtent dump_extent(const MappingFacts& m, std::uint32_t filter) noexcept;

}  // namespace np::dump
