#include "netpoll/dump/core_head.h"

#include <algorithm>

#include "netpoll/dump/elf_core.h"

namespace np::dump {
namespace {

constexpr std::uint16_t load_le16(std::span<const std::byte> b, std::size_t off) noexcept {
  return static_cast<std::uint16_t>(std::to_integer<std::uint16_t>(b[off]) |
                                    (std::to_integer<std::uint16_t>(b[off + 1]) << 8));
}

constexpr std::uint16_t kEtCore = 4;
constexpr std::size_t kSectionHeaderSize = 64;  // Elf64_Shdr

// Walks the notes segment [h.notes_offset, + h.notes_size) as far as
// `prefix` holds it, counting the threads.
void read_notes(std::span<const std::byte> prefix, CoreHead& h) noexcept {
  const std::uint64_t start = h.notes_offset, size = h.notes_size;
  // The bytes of the segment that are in the buffer.
  const std::uint64_t held = start < prefix.size() ? std::min<std::uint64_t>(size, prefix.size() - start) : 0;
  std::uint64_t at = 0;
  while (at < size) {
    if (size - at < kNoteHeaderSize) {
      h.notes = NoteState::kBroken;  // bytes after the last note that are no note
      return;
    }
    if (held - std::min(held, at) < kNoteHeaderSize) {
      h.notes = NoteState::kCut;
      return;
    }
    const auto note = prefix.subspan(static_cast<std::size_t>(start + at));
    const std::uint32_t namesz = load_le32(note, 0), descsz = load_le32(note, 4), type = load_le32(note, 8);
    // ELF64 cores pad name and descriptor to 4 bytes (the kernel, gdb).
    const std::uint64_t name_len = align_up(namesz, 4);
    const std::uint64_t total = kNoteHeaderSize + name_len + align_up(descsz, 4);  // < 2^34: no overflow
    if (total > size - at) {
      h.notes = NoteState::kBroken;
      return;
    }
    if (held - at < total) {
      h.notes = NoteState::kCut;  // not all of it here yet
      return;
    }
    if (type == kNtPrstatus && namesz == kOwnerCore.size() + 1) {
      const auto name = note.subspan(kNoteHeaderSize, namesz);
      bool core = std::to_integer<char>(name[namesz - 1]) == '\0';
      for (std::size_t i = 0; core && i < kOwnerCore.size(); ++i) core = std::to_integer<char>(name[i]) == kOwnerCore[i];
      if (core) ++h.threads;
    }
    at += total;
  }
  h.notes = NoteState::kComplete;
}

}  // namespace

Result<CoreHead> parse_core_head(std::span<const std::byte> prefix) noexcept {
  if (prefix.size() < kElfHeaderSize) return fail(Errc::kTruncated);
  const auto b = [&](std::size_t i) { return std::to_integer<std::uint8_t>(prefix[i]); };
  if (b(0) != 0x7f || b(1) != 'E' || b(2) != 'L' || b(3) != 'F') return fail(Errc::kUnsupported);
  // ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ET_CORE.
  if (b(4) != 2 || b(5) != 1 || b(6) != 1 || load_le16(prefix, 16) != kEtCore) return fail(Errc::kUnsupported);
  CoreHead h;
  h.machine = load_le16(prefix, 18);
  const std::uint64_t phoff = load_le64(prefix, 32), shoff = load_le64(prefix, 40);
  const std::uint16_t ehsize = load_le16(prefix, 52), phentsize = load_le16(prefix, 54), phnum = load_le16(prefix, 56);
  const std::uint16_t shentsize = load_le16(prefix, 58);
  if (ehsize != kElfHeaderSize) return fail(Errc::kMalformed);
  if (phnum == 0) {
    // No segments at all: the header is the whole core.
    h.needed = h.file_size = kElfHeaderSize;
    h.headers_read = h.size_known = true;
    return h;
  }
  if (phentsize != kProgramHeaderSize || phoff < kElfHeaderSize) return fail(Errc::kMalformed);
  const bool extended = phnum == kPnXnum;
  // With PN_XNUM only the first program header is known to exist.
  const std::uint32_t count = extended ? 1 : phnum;
  const std::uint64_t table_len = std::uint64_t{count} * kProgramHeaderSize;
  if (phoff > kMaxCoreOffset - table_len) return fail(Errc::kMalformed);
  const std::uint64_t table_end = phoff + table_len;
  h.segments = extended ? 0 : phnum;
  h.needed = table_end;

  std::uint64_t furthest = table_end;
  bool bad_segment = false, have_notes = false;
  std::uint32_t i = 0;
  for (; i < count; ++i) {
    const std::uint64_t off = phoff + std::uint64_t{i} * kProgramHeaderSize;
    if (off > prefix.size() || prefix.size() - off < kProgramHeaderSize) break;
    const auto ph = prefix.subspan(static_cast<std::size_t>(off), kProgramHeaderSize);
    const std::uint32_t type = load_le32(ph, 0);
    const std::uint64_t offset = load_le64(ph, 8), filesz = load_le64(ph, 32);
    if (offset > kMaxCoreOffset || filesz > kMaxCoreOffset - offset) {
      bad_segment = true;
      break;
    }
    furthest = std::max(furthest, offset + filesz);
    if (type == kPtNote && !have_notes) {
      have_notes = true;
      h.notes_offset = offset;
      h.notes_size = filesz;
    }
  }
  h.segments_read = i;
  h.headers_read = i == count && !bad_segment;
  if (extended) {
    // The extra section header comes after all the data (the kernel's
    // layout), and nothing after it.
    if (shentsize == kSectionHeaderSize && shoff >= table_end && shoff <= kMaxCoreOffset - kSectionHeaderSize) {
      h.file_size = shoff + kSectionHeaderSize;
      h.size_known = h.headers_read;
    }
  } else if (h.headers_read) {
    h.file_size = furthest;
    h.size_known = true;
  }
  if (have_notes) {
    h.needed = std::max(h.needed, h.notes_offset + h.notes_size);
    read_notes(prefix, h);
  }
  return h;
}

}  // namespace np::dump
