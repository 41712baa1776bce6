#include "netpoll/dump/elf_core.h"

#include <sys/ucontext.h>

#include <algorithm>

namespace np::dump {
namespace {

void zero(std::span<std::byte> b) noexcept { std::fill(b.begin(), b.end(), std::byte{0}); }

}  // namespace

void emit_elf_header(std::span<std::byte, kElfHeaderSize> out, std::uint16_t phnum) noexcept {
  zero(out);
  out[0] = std::byte{0x7f};
  out[1] = std::byte{'E'};
  out[2] = std::byte{'L'};
  out[3] = std::byte{'F'};
  out[4] = std::byte{2};  // ELFCLASS64
  out[5] = std::byte{1};  // ELFDATA2LSB
  out[6] = std::byte{1};  // EV_CURRENT
  // 7: ELFOSABI_NONE, as the kernel writes it; 8..15: padding.
  store_le16(out, 16, 4);   // ET_CORE
  store_le16(out, 18, 62);  // EM_X86_64
  store_le32(out, 20, 1);   // EV_CURRENT
  // e_entry (24) 0; e_phoff right after this header.
  store_le64(out, 32, kElfHeaderSize);
  // e_shoff (40) 0, e_flags (48) 0.
  store_le16(out, 52, kElfHeaderSize);
  store_le16(out, 54, kProgramHeaderSize);
  store_le16(out, 56, phnum);
  // e_shentsize, e_shnum, e_shstrndx (58..63): no section headers.
}

void emit_program_header(std::span<std::byte, kProgramHeaderSize> out, const ProgramHeader& ph) noexcept {
  store_le32(out, 0, ph.type);
  store_le32(out, 4, ph.flags);
  store_le64(out, 8, ph.offset);
  store_le64(out, 16, ph.vaddr);
  store_le64(out, 24, 0);  // p_paddr
  store_le64(out, 32, ph.filesz);
  store_le64(out, 40, ph.memsz);
  store_le64(out, 48, ph.align);
}

std::size_t emit_note_header(std::span<std::byte> out, std::string_view owner, std::uint32_t type,
                             std::size_t desc_size) noexcept {
  const std::size_t n = note_size(owner, 0);
  zero(out.first(n));
  store_le32(out, 0, static_cast<std::uint32_t>(owner.size() + 1));
  store_le32(out, 4, static_cast<std::uint32_t>(desc_size));
  store_le32(out, 8, type);
  for (std::size_t i = 0; i < owner.size(); ++i) out[kNoteHeaderSize + i] = static_cast<std::byte>(owner[i]);
  return n;
}

void emit_prstatus(std::span<std::byte, kPrstatusSize> out, const PrStatus& s) noexcept {
  zero(out);
  // pr_info: the short siginfo of <sys/procfs.h> (signo, code, errno).
  store_le32(out, 0, static_cast<std::uint32_t>(s.signo));
  store_le32(out, 4, static_cast<std::uint32_t>(s.code));
  store_le32(out, 8, static_cast<std::uint32_t>(s.err));
  store_le16(out, 12, static_cast<std::uint16_t>(s.cursig));
  store_le64(out, 16, s.sigpend);
  store_le64(out, 24, s.sighold);
  store_le32(out, 32, static_cast<std::uint32_t>(s.pid));
  store_le32(out, 36, static_cast<std::uint32_t>(s.ppid));
  store_le32(out, 40, static_cast<std::uint32_t>(s.pgrp));
  store_le32(out, 44, static_cast<std::uint32_t>(s.sid));
  // pr_utime, pr_stime, pr_cutime, pr_cstime (48..111): left zero; gdb
  // shows none of them.
  for (std::size_t i = 0; i < s.regs.r.size(); ++i) store_le64(out, 112 + 8 * i, s.regs.r[i]);
  store_le32(out, 328, s.fpvalid ? 1 : 0);
}

void emit_prpsinfo(std::span<std::byte, kPrpsinfoSize> out, const PrPsInfo& p) noexcept {
  zero(out);
  // pr_state (0) 0 = running, as the kernel writes for the dumping task.
  out[1] = static_cast<std::byte>(p.sname);
  // pr_zomb (2) 0.
  out[3] = static_cast<std::byte>(p.nice);
  // pr_flag (8): the kernel's task flags; nothing of ours to say.
  store_le32(out, 16, p.uid);
  store_le32(out, 20, p.gid);
  store_le32(out, 24, static_cast<std::uint32_t>(p.pid));
  store_le32(out, 28, static_cast<std::uint32_t>(p.ppid));
  store_le32(out, 32, static_cast<std::uint32_t>(p.pgrp));
  store_le32(out, 36, static_cast<std::uint32_t>(p.sid));
  for (std::size_t i = 0; i < p.fname.size(); ++i) out[40 + i] = static_cast<std::byte>(p.fname[i]);
  for (std::size_t i = 0; i < p.psargs.size(); ++i) out[56 + i] = static_cast<std::byte>(p.psargs[i]);
}

UserRegs user_regs_from_gregs(std::span<const long long, 23> g, bool frame_has_ss, const SegmentRegs& seg) noexcept {
  const auto at = [&](int i) { return static_cast<std::uint64_t>(g[static_cast<std::size_t>(i)]); };
  UserRegs r;
  r[Reg::kR15] = at(REG_R15);
  r[Reg::kR14] = at(REG_R14);
  r[Reg::kR13] = at(REG_R13);
  r[Reg::kR12] = at(REG_R12);
  r[Reg::kRbp] = at(REG_RBP);
  r[Reg::kRbx] = at(REG_RBX);
  r[Reg::kR11] = at(REG_R11);
  r[Reg::kR10] = at(REG_R10);
  r[Reg::kR9] = at(REG_R9);
  r[Reg::kR8] = at(REG_R8);
  r[Reg::kRax] = at(REG_RAX);
  r[Reg::kRcx] = at(REG_RCX);
  r[Reg::kRdx] = at(REG_RDX);
  r[Reg::kRsi] = at(REG_RSI);
  r[Reg::kRdi] = at(REG_RDI);
  r[Reg::kOrigRax] = ~std::uint64_t{0};
  r[Reg::kRip] = at(REG_RIP);
  r[Reg::kEflags] = at(REG_EFL);
  r[Reg::kRsp] = at(REG_RSP);
  // The frame packs cs, gs, fs and (since Linux 4.6, when it says so in
  // uc_flags) ss into one word, 16 bits each.
  const std::uint64_t csgsfs = at(REG_CSGSFS);
  r[Reg::kCs] = csgsfs & 0xffff;
  r[Reg::kSs] = frame_has_ss ? (csgsfs >> 48) & 0xffff : seg.ss;
  r[Reg::kFsBase] = seg.fs_base;
  r[Reg::kGsBase] = seg.gs_base;
  r[Reg::kDs] = seg.ds;
  r[Reg::kEs] = seg.es;
  r[Reg::kFs] = seg.fs;
  r[Reg::kGs] = seg.gs;
  return r;
}

}  // namespace np::dump
