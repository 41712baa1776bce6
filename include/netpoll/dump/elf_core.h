// The pieces of an ELF64 x86-64 core file, as bytes: the file header, the
// program headers, note headers and the two process-status notes.
//
// A core is what the Linux kernel writes at a fatal signal and what gdb
// opens with the program: an ELF header (type ET_CORE), one PT_NOTE
// segment with the notes (each thread's registers, the process's
// identity, the signal, the auxiliary vector, the mapped files), then one
// PT_LOAD per mapping with the memory that was dumped. Everything here is
// little-endian (x86-64) and written field by field at the offsets of the
// kernel's user-visible structures (elf_prstatus, elf_prpsinfo,
// user_regs_struct); the unit tests check those offsets against the C
// library's <sys/procfs.h> and <sys/user.h>. No casts onto structs: the
// bytes are the format.
//
// Invariant: every emit_* writes exactly the bytes it documents into a
// span the caller sized (the sizes are constants here) and touches
// nothing else. Nothing here allocates, locks or fails.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace np::dump {

// Little-endian stores (the core's byte order). Context: any.
constexpr void store_le16(std::span<std::byte> b, std::size_t off, std::uint16_t v) noexcept {
  b[off] = static_cast<std::byte>(v & 0xff);
  b[off + 1] = static_cast<std::byte>(v >> 8);
}
constexpr void store_le32(std::span<std::byte> b, std::size_t off, std::uint32_t v) noexcept {
  for (std::size_t i = 0; i < 4; ++i) b[off + i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}
constexpr void store_le64(std::span<std::byte> b, std::size_t off, std::uint64_t v) noexcept {
  for (std::size_t i = 0; i < 8; ++i) b[off + i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}
constexpr std::uint32_t load_le32(std::span<const std::byte> b, std::size_t off) noexcept {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v |= std::uint32_t{std::to_integer<std::uint8_t>(b[off + i])} << (8 * i);
  return v;
}
constexpr std::uint64_t load_le64(std::span<const std::byte> b, std::size_t off) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v |= std::uint64_t{std::to_integer<std::uint8_t>(b[off + i])} << (8 * i);
  return v;
}

constexpr std::uint64_t align_up(std::uint64_t v, std::uint64_t a) noexcept { return (v + a - 1) / a * a; }

inline constexpr std::size_t kElfHeaderSize = 64;     // Elf64_Ehdr
inline constexpr std::size_t kProgramHeaderSize = 56;  // Elf64_Phdr
inline constexpr std::size_t kNoteHeaderSize = 12;     // Elf64_Nhdr: namesz, descsz, type

// Note types (the kernel's numbers; <elf.h> has the same).
inline constexpr std::uint32_t kNtPrstatus = 1;
inline constexpr std::uint32_t kNtFpregset = 2;
inline constexpr std::uint32_t kNtPrpsinfo = 3;
inline constexpr std::uint32_t kNtAuxv = 6;
inline constexpr std::uint32_t kNtX86Xstate = 0x202;
// Where each XSAVE component sits in NT_X86_XSTATE: {type, size, offset,
// flags}, 4 bytes each, per component from 2 (AVX) on (Linux 6.x).
inline constexpr std::uint32_t kNtX86XsaveLayout = 0x205;
inline constexpr std::size_t kXsaveLayoutEntrySize = 16;
inline constexpr std::uint32_t kNtSiginfo = 0x53494749;  // "SIGI"
inline constexpr std::uint32_t kNtFile = 0x46494c45;     // "FILE"

// Note owners: "CORE" for the classic notes, "LINUX" for NT_X86_XSTATE.
inline constexpr std::string_view kOwnerCore = "CORE";
inline constexpr std::string_view kOwnerLinux = "LINUX";

// Descriptor sizes of the fixed notes on x86-64.
inline constexpr std::size_t kPrstatusSize = 336;  // struct elf_prstatus
inline constexpr std::size_t kPrpsinfoSize = 136;  // struct elf_prpsinfo
inline constexpr std::size_t kSiginfoSize = 128;   // siginfo_t
inline constexpr std::size_t kFxsaveSize = 512;    // user_fxsr_struct: the FXSAVE image
// Where a core's NT_X86_XSTATE carries XCR0 (the enabled state
// components): in the FXSAVE image's bytes left to software. In a signal
// frame these bytes hold the frame's own header instead (magic, sizes).
inline constexpr std::size_t kXstateXcr0Offset = 464;
inline constexpr std::size_t kXsaveHeaderEnd = 576;  // FXSAVE image + the 64-byte XSAVE header

// Program header types and flags.
inline constexpr std::uint32_t kPtLoad = 1;
inline constexpr std::uint32_t kPtNote = 4;
inline constexpr std::uint32_t kPfX = 1;
inline constexpr std::uint32_t kPfW = 2;
inline constexpr std::uint32_t kPfR = 4;

// The registers of one thread in user_regs_struct order (what
// elf_prstatus.pr_reg holds on x86-64).
enum class Reg : std::size_t {
  kR15, kR14, kR13, kR12, kRbp, kRbx, kR11, kR10, kR9, kR8, kRax, kRcx, kRdx, kRsi, kRdi,
  kOrigRax, kRip, kCs, kEflags, kRsp, kSs, kFsBase, kGsBase, kDs, kEs, kFs, kGs,
  kCount
};
struct UserRegs {
  std::array<std::uint64_t, static_cast<std::size_t>(Reg::kCount)> r{};
  constexpr std::uint64_t& operator[](Reg i) noexcept { return r[static_cast<std::size_t>(i)]; }
  constexpr std::uint64_t operator[](Reg i) const noexcept { return r[static_cast<std::size_t>(i)]; }
};

// Size of a note with an owner name of `owner` (NUL added) and a
// descriptor of `desc` bytes: the header, then name and descriptor each
// padded to 4 bytes (ELF64 cores use 4, as the kernel and gdb do).
constexpr std::size_t note_size(std::string_view owner, std::size_t desc) noexcept {
  return kNoteHeaderSize + align_up(owner.size() + 1, 4) + align_up(desc, 4);
}

// The ELF file header of a core: ELFCLASS64, little-endian, ET_CORE,
// EM_X86_64, program headers right after it, no section headers.
// Context: any.
void emit_elf_header(std::span<std::byte, kElfHeaderSize> out, std::uint16_t phnum) noexcept;

struct ProgramHeader {
  std::uint32_t type = 0;
  std::uint32_t flags = 0;
  std::uint64_t offset = 0;  // in the file
  std::uint64_t vaddr = 0;
  std::uint64_t filesz = 0;  // bytes in the file (0: not dumped)
  std::uint64_t memsz = 0;   // bytes in memory
  std::uint64_t align = 0;
};
// Context: any.
void emit_program_header(std::span<std::byte, kProgramHeaderSize> out, const ProgramHeader& ph) noexcept;

// A note's header and owner name (padded); returns the bytes written,
// note_size(owner, 0). `out` must hold that many. Context: any.
std::size_t emit_note_header(std::span<std::byte> out, std::string_view owner, std::uint32_t type,
                             std::size_t desc_size) noexcept;

// struct elf_prstatus: one per thread.
struct PrStatus {
  int signo = 0;  // pr_info.si_signo (the kernel puts the signal there and in pr_cursig)
  int code = 0;
  int err = 0;
  int cursig = 0;
  std::uint64_t sigpend = 0;
  std::uint64_t sighold = 0;  // the blocked signals
  std::int32_t pid = 0;       // the thread's id
  std::int32_t ppid = 0;
  std::int32_t pgrp = 0;
  std::int32_t sid = 0;
  UserRegs regs;
  bool fpvalid = false;
};
// Context: any.
void emit_prstatus(std::span<std::byte, kPrstatusSize> out, const PrStatus& s) noexcept;

// struct elf_prpsinfo: one per process.
struct PrPsInfo {
  char sname = 'R';
  std::int8_t nice = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int32_t pid = 0;
  std::int32_t ppid = 0;
  std::int32_t pgrp = 0;
  std::int32_t sid = 0;
  std::array<char, 16> fname{};   // the program's name (comm), NUL-padded
  std::array<char, 80> psargs{};  // the command line, arguments joined by spaces
};
// Context: any.
void emit_prpsinfo(std::span<std::byte, kPrpsinfoSize> out, const PrPsInfo& p) noexcept;

// user_regs_struct from a signal frame's general registers (the
// mcontext gregs array of <sys/ucontext.h>, 23 entries) and what the
// frame does not hold. orig_rax is -1 (no system call to restart), as
// for a thread stopped by a signal. `ss` is taken from the frame when
// the kernel put it there (`frame_has_ss`), else the given one.
struct SegmentRegs {
  std::uint64_t fs_base = 0, gs_base = 0;
  std::uint16_t ss = 0, ds = 0, es = 0, fs = 0, gs = 0;
};
// Context: any.
UserRegs user_regs_from_gregs(std::span<const long long, 23> gregs, bool frame_has_ss,
                              const SegmentRegs& seg) noexcept;

// Size of an NT_FILE descriptor for `count` files whose names take
// `name_bytes` bytes, NULs included: count and page size, then a
// {start, end, offset in pages} triple per file, then the names.
constexpr std::size_t file_note_desc_size(std::size_t count, std::size_t name_bytes) noexcept {
  return 16 + 24 * count + name_bytes;
}

}  // namespace np::dump
