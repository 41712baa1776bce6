// What the first bytes of an ELF core say about it: the file's length by
// its program headers, and the threads by its notes. For a core that
// someone else wrote (the kernel, through a core_pattern pipe: `netpoll
// coredump`), read front to back and never sought in.
//
// A kernel core begins with the ELF header, the program headers, then the
// PT_NOTE segment's data (the notes: one NT_PRSTATUS per thread, then the
// process's other notes); the memory of the PT_LOAD segments follows, each
// at its p_offset. So the facts a herald needs sit in a bounded prefix
// whose length the headers themselves give (CoreHead::needed): parse what
// has been read, read up to `needed` (or a cap of one's own), parse again.
//
// The bytes are the crashing program's and the kernel's, passed through a
// pipe: every field is checked before it is used, no offset or length is
// trusted to stay inside the buffer or to add up without overflow, and a
// part that does not check out is reported as such, never guessed at.
//  - kTruncated: fewer than 64 bytes (not even an ELF header);
//  - kUnsupported: not an ELF core this reads (magic, ELFCLASS64,
//    little-endian, version 1, ET_CORE);
//  - kMalformed: an ELF header that contradicts itself (header size,
//    program header size, a table that starts inside the header or ends
//    past 2^63).
// Program headers and notes past the end of the buffer are not an error:
// `headers_read` and `notes` say how far the parse got. A program header
// whose segment ends past 2^63, or a note that overruns its segment, makes
// the parse stop there (NoteState::kBroken / size_known false).
//
// Nothing here allocates. Context: any.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "netpoll/base/result.h"

namespace np::dump {

// ELF's "more program headers than e_phnum holds" (PN_XNUM): the count is
// then in the first section header, which the kernel writes last in the
// file, at e_shoff.
inline constexpr std::uint16_t kPnXnum = 0xffff;
// The largest file offset a CoreHead believes (off_t's range).
inline constexpr std::uint64_t kMaxCoreOffset = std::uint64_t{1} << 63;

enum class NoteState : std::uint8_t {
  kNone,      // no PT_NOTE among the program headers read
  kComplete,  // every note of the segment read
  kCut,       // the buffer ended inside the notes (read up to `needed`)
  kBroken,    // a note's sizes run past its segment: counted up to it
};

struct CoreHead {
  // Bytes from the start of the file that hold the ELF header, the program
  // headers and the notes: the prefix to read before parsing again.
  std::uint64_t needed = 0;
  // Program headers: as the ELF header announces them (PN_XNUM: unknown,
  // then only the first, the notes, is read) and how many were read.
  std::uint32_t segments = 0;
  std::uint32_t segments_read = 0;
  bool headers_read = false;  // every announced program header was in the buffer
  // The file's length as the headers give it: the end of the furthest
  // segment's data, of the program header table, or (PN_XNUM) of the
  // section header after the data. Meaningful when size_known.
  std::uint64_t file_size = 0;
  bool size_known = false;
  // The PT_NOTE segment (the first one) and what its notes held.
  std::uint64_t notes_offset = 0;
  std::uint64_t notes_size = 0;
  NoteState notes = NoteState::kNone;
  std::uint32_t threads = 0;  // NT_PRSTATUS notes of owner "CORE" read
  std::uint16_t machine = 0;  // e_machine (62: x86-64)
};

// Parses the prefix of a core that has been read. Context: any.
[[nodiscard]] Result<CoreHead> parse_core_head(std::span<const std::byte> prefix) noexcept;

}  // namespace np::dump
