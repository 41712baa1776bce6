// CFI unwinder: backtraces from DWARF call-frame information, taken inside a
// fatal-signal handler.
//
// The frame-pointer walk (backtrace.h) ends at the first function built
// without frame pointers — on Debian that is all of glibc and libstdc++, so
// an abort() shows a libc frame or two and nothing of the program. Every
// object the toolchain builds for x86-64 carries .eh_frame (the ABI asks
// for it) and the linker's sorted search table over it, .eh_frame_hdr
// (PT_GNU_EH_FRAME). This unwinder reads them, as libgcc's would, but in a
// way that survives a process that has corrupted its heap and globals:
//
//  - build_cfi_index() (setup) visits every loaded object with
//    dl_iterate_phdr — the executable, each shared library, the vDSO — and
//    keeps in a CfiIndex only addresses: its executable range, load bias,
//    .eh_frame_hdr and search table. CfiIndex is a plain fixed-size value
//    with no pointer to the heap, so the caller can place it in a mapping
//    of its own and mprotect() it read-only:
//
//        void* p = mmap(nullptr, sizeof(CfiIndex), PROT_READ | PROT_WRITE,
//                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
//        auto* index = static_cast<CfiIndex*>(p);
//        (void)build_cfi_index(*index);
//        mprotect(p, sizeof(CfiIndex), PROT_READ);
//
//  - cfi_backtrace() (any context) checks the index's magic word and
//    checksum, then unwinds from a signal handler's ucontext: for each
//    frame a binary search for the object, one for the FDE in the object's
//    table, the CIE and FDE instructions run up to the pc, and the caller's
//    registers computed from the resulting rules. Every byte of CFI and of
//    the stack is read with process_vm_readv(2) (safe_read.h): a stale or
//    garbage address fails a read and ends the walk, never faults.
//
// What is understood: .eh_frame_hdr version 1 whose search table is
// datarel|sdata4 (the one encoding GNU ld and lld emit; any other leaves the
// object to frame-pointer steps); CIE versions 1 and 3 with augmentations
// z, R, P, L and S (others are skipped by the z length); pointer encodings
// absptr, udata2/4/8, sdata2/4/8, uleb128 and sleb128, absolute, pcrel or
// datarel (from .eh_frame_hdr), DW_EH_PE_indirect ignored (no pointer is
// followed); every DW_CFA_* instruction of DWARF 5 (0x00-0x16 and the three
// high-bit ones) plus GNU_args_size and GNU_negative_offset_extended;
// DWARF expressions over values: DW_OP_breg0-31, bregx, deref, deref_size,
// addr, the lit and const ops, dup, drop, over, pick, swap, rot, the
// arithmetic, logic and shift ops, comparisons, skip, bra and nop. That
// covers GCC's and clang's output, GNU ld's PLT entries and glibc's
// hand-written __restore_rt signal trampoline (every register read back
// from the ucontext by expression), so an unwind passes through a nested
// signal frame into the code that was interrupted.
//
// Invariants (every loop is bounded):
//  - at most out.size() frames; per frame at most 16384 CFA instructions,
//    a remember_state stack 8 deep, CIE and FDE records of at most 1 MiB;
//    per expression at most 256 operations on a stack 32 deep (the limits
//    are in src/console/cfi_program.h);
//  - no allocation and about 5 KiB of the caller's stack (the signal
//    handler's alternate stack must have room for it);
//  - the walk stops at a zero pc, at a return address in no indexed object,
//    at a return-address rule DW_CFA_undefined (how _start and clone mark
//    the outermost frame), at any failed read or unsupported encoding, and
//    when the CFA is not above the previous one for two frames in a row.
//
// Where CFI is missing: a pc inside an indexed object that no FDE covers
// (hand-written assembly without CFI, an object without .eh_frame_hdr) takes
// one frame-pointer step ([rbp] the caller's rbp, [rbp + 8] the return
// address), and CFI resumes from the frame it reaches. An interrupted pc in
// no object at all (a call through a bad function pointer: RIP 0 or junk) is
// taken to be a function's first instruction, whose return address is at
// RSP, if that word returns into an indexed object.
//
// Limits, honestly:
//  - a snapshot: objects dlopen()ed after build_cfi_index() are unknown
//    (the walk stops at their frames) and a dlclose()d object's addresses
//    read stale or fail; rebuild after loading (the mapping made writable
//    again first);
//  - more than kCapacity loaded objects: those past it in load order are not
//    indexed (the executable and its direct dependencies come first);
//  - registers with no rule are assumed unchanged, as libgcc does; for the
//    caller-saved ones (rax, rcx, ...) that is a guess, which matters only to
//    an expression that reads them (none that GCC emits for a call site);
//  - the frame after a signal frame is the interrupted instruction's exact
//    pc, not a return address (the walk looks it up without the pc - 1); a
//    symbolizer given pc - 1 names the same function except when the fault
//    was on its first byte;
//  - DW_OP_call*, DW_OP_reg*/regx locations, DW_OP_piece, TLS ops and
//    the DWARF 5 typed, entry-value and implicit ops are not supported, nor
//    are the textrel, funcrel and aligned pointer applications: an FDE or
//    expression that uses them ends the walk at that frame (none of GCC's,
//    clang's or glibc's x86-64 CFI does);
//  - vector registers (DWARF columns 17 and up) are not tracked: their
//    rules are parsed and dropped, and an expression that reads one fails;
//  - process_vm_readv may be refused by a seccomp filter: the trace is then
//    the context's pc alone.
// Keeps errno. x86-64 Linux only.
#pragma once

#include <ucontext.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "netpoll/base/result.h"

namespace np::console {

// One loaded object, as cfi_backtrace() needs it. Addresses, no pointers.
struct CfiObject {
  std::uintptr_t text_start = 0;    // lowest byte of its executable PT_LOAD segments
  std::uintptr_t text_end = 0;      // one past the highest
  std::uintptr_t bias = 0;          // load bias (dlpi_addr)
  std::uintptr_t eh_frame_hdr = 0;  // .eh_frame_hdr (PT_GNU_EH_FRAME); 0: none
  std::uintptr_t eh_frame = 0;      // .eh_frame, from the header's eh_frame_ptr
  std::uintptr_t table = 0;         // first {initial_loc, fde} pair of the search table
  std::uint64_t fde_count = 0;      // pairs in it; 0: no usable table (frame-pointer steps only)
};

// Every loaded object's unwind tables, by executable range. Trivially
// copyable and fixed in size (about 28 KiB): see the mapping recipe above.
struct CfiIndex {
  static constexpr std::size_t kCapacity = 512;
  static constexpr std::uint64_t kMagic = 0x4e50'4346'4931'0001;  // "NPCFI1", version 1

  std::uint64_t magic = 0;     // kMagic once built
  std::uint64_t count = 0;     // objects[0, count) are in use, sorted by text_start
  std::uint64_t dropped = 0;   // loaded objects that found no room
  std::uint64_t checksum = 0;  // over count, dropped and objects[0, count)
  std::array<CfiObject, kCapacity> objects{};
};
static_assert(std::is_trivially_copyable_v<CfiIndex>);
static_assert(std::has_unique_object_representations_v<CfiObject>, "the checksum hashes its bytes: no padding");

// Fills `out` with every object loaded now and seals it (magic, checksum).
// Objects without an executable segment are left out; one without a usable
// .eh_frame_hdr is kept (its frames take frame-pointer steps). Fails with
// Errc::kNoBuffer when more than kCapacity objects are loaded: the first
// kCapacity in load order are indexed and `out` is valid all the same.
// Context: setup (dl_iterate_phdr takes the loader's lock).
[[nodiscard]] Result<void> build_cfi_index(CfiIndex& out) noexcept;

// True when `index` is as build_cfi_index() sealed it: magic, a count within
// capacity and a matching checksum. cfi_backtrace() treats any other index
// as empty. Context: any.
[[nodiscard]] bool cfi_index_intact(const CfiIndex& index) noexcept;

// The frames of the code a signal interrupted, from the register state in
// `uc` (the 16 general registers and RIP): out[0] is RIP; out[1...] are
// return addresses (symbolize pc - 1), except that the frame a signal
// interrupted is its exact pc. Returns how many entries were written: at
// most out.size(); 1 when the index is not intact. Context: any (no
// allocation, lock, dl* call or stdio; errno kept).
std::size_t cfi_backtrace(const CfiIndex& index, const ucontext_t& uc, std::span<std::uintptr_t> out) noexcept;

}  // namespace np::console
