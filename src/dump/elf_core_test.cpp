// The core's fixed structures, checked against the C library's own
// definitions of them (<elf.h>, <sys/procfs.h>, <sys/user.h>): the bytes
// we emit are copied into those structs and read back field by field.
#include "netpoll/dump/elf_core.h"

#include <elf.h>
#include <sys/procfs.h>
#include <sys/ucontext.h>
#include <sys/user.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <vector>

namespace np::dump {
namespace {

template <class T>
T as(const std::vector<std::byte>& b) {
  T t;
  std::memcpy(&t, b.data(), sizeof t);
  return t;
}

TEST(ElfCore, StructSizesAreTheKernels) {
  EXPECT_EQ(sizeof(Elf64_Ehdr), kElfHeaderSize);
  EXPECT_EQ(sizeof(Elf64_Phdr), kProgramHeaderSize);
  EXPECT_EQ(sizeof(Elf64_Nhdr), kNoteHeaderSize);
  EXPECT_EQ(sizeof(struct elf_prstatus), kPrstatusSize);
  EXPECT_EQ(sizeof(struct elf_prpsinfo), kPrpsinfoSize);
  EXPECT_EQ(sizeof(siginfo_t), kSiginfoSize);
  EXPECT_EQ(sizeof(struct user_fpregs_struct), kFxsaveSize);
  EXPECT_EQ(sizeof(struct user_regs_struct), 8 * static_cast<std::size_t>(Reg::kCount));
  EXPECT_EQ(kNtFile, static_cast<std::uint32_t>(NT_FILE));
  EXPECT_EQ(kNtSiginfo, static_cast<std::uint32_t>(NT_SIGINFO));
  EXPECT_EQ(kNtX86Xstate, static_cast<std::uint32_t>(NT_X86_XSTATE));
}

TEST(ElfCore, RegisterOrderIsUserRegsStruct) {
  EXPECT_EQ(offsetof(user_regs_struct, r15) / 8, static_cast<std::size_t>(Reg::kR15));
  EXPECT_EQ(offsetof(user_regs_struct, rbx) / 8, static_cast<std::size_t>(Reg::kRbx));
  EXPECT_EQ(offsetof(user_regs_struct, rax) / 8, static_cast<std::size_t>(Reg::kRax));
  EXPECT_EQ(offsetof(user_regs_struct, rdi) / 8, static_cast<std::size_t>(Reg::kRdi));
  EXPECT_EQ(offsetof(user_regs_struct, orig_rax) / 8, static_cast<std::size_t>(Reg::kOrigRax));
  EXPECT_EQ(offsetof(user_regs_struct, rip) / 8, static_cast<std::size_t>(Reg::kRip));
  EXPECT_EQ(offsetof(user_regs_struct, eflags) / 8, static_cast<std::size_t>(Reg::kEflags));
  EXPECT_EQ(offsetof(user_regs_struct, rsp) / 8, static_cast<std::size_t>(Reg::kRsp));
  EXPECT_EQ(offsetof(user_regs_struct, fs_base) / 8, static_cast<std::size_t>(Reg::kFsBase));
  EXPECT_EQ(offsetof(user_regs_struct, gs_base) / 8, static_cast<std::size_t>(Reg::kGsBase));
  EXPECT_EQ(offsetof(user_regs_struct, gs) / 8, static_cast<std::size_t>(Reg::kGs));
}

TEST(ElfCore, HeaderIsAnX8664CoreWithProgramHeadersAfterIt) {
  std::vector<std::byte> b(kElfHeaderSize, std::byte{0xa5});
  emit_elf_header(std::span<std::byte, kElfHeaderSize>(b.data(), kElfHeaderSize), 7);
  const auto h = as<Elf64_Ehdr>(b);
  EXPECT_EQ(std::memcmp(h.e_ident, ELFMAG, SELFMAG), 0);
  EXPECT_EQ(h.e_ident[EI_CLASS], ELFCLASS64);
  EXPECT_EQ(h.e_ident[EI_DATA], ELFDATA2LSB);
  EXPECT_EQ(h.e_ident[EI_VERSION], EV_CURRENT);
  EXPECT_EQ(h.e_ident[EI_OSABI], ELFOSABI_NONE);
  for (int i = EI_PAD; i < EI_NIDENT; ++i) EXPECT_EQ(h.e_ident[i], 0) << i;
  EXPECT_EQ(h.e_type, ET_CORE);
  EXPECT_EQ(h.e_machine, EM_X86_64);
  EXPECT_EQ(h.e_version, EV_CURRENT);
  EXPECT_EQ(h.e_entry, 0u);
  EXPECT_EQ(h.e_phoff, sizeof(Elf64_Ehdr));
  EXPECT_EQ(h.e_shoff, 0u);
  EXPECT_EQ(h.e_flags, 0u);
  EXPECT_EQ(h.e_ehsize, sizeof(Elf64_Ehdr));
  EXPECT_EQ(h.e_phentsize, sizeof(Elf64_Phdr));
  EXPECT_EQ(h.e_phnum, 7);
  EXPECT_EQ(h.e_shnum, 0);
  EXPECT_EQ(h.e_shstrndx, 0);
}

TEST(ElfCore, ProgramHeaderFieldsLandWhereElfPutsThem) {
  std::vector<std::byte> b(kProgramHeaderSize, std::byte{0xa5});
  emit_program_header(std::span<std::byte, kProgramHeaderSize>(b.data(), kProgramHeaderSize),
                      ProgramHeader{.type = kPtLoad, .flags = kPfR | kPfW, .offset = 0x3000,
                                    .vaddr = 0x7fff12345000, .filesz = 0x2000, .memsz = 0x5000, .align = 0x1000});
  const auto p = as<Elf64_Phdr>(b);
  EXPECT_EQ(p.p_type, PT_LOAD);
  EXPECT_EQ(p.p_flags, static_cast<Elf64_Word>(PF_R | PF_W));
  EXPECT_EQ(p.p_offset, 0x3000u);
  EXPECT_EQ(p.p_vaddr, 0x7fff12345000u);
  EXPECT_EQ(p.p_paddr, 0u);
  EXPECT_EQ(p.p_filesz, 0x2000u);
  EXPECT_EQ(p.p_memsz, 0x5000u);
  EXPECT_EQ(p.p_align, 0x1000u);
}

TEST(ElfCore, NoteSizesPadNameAndDescriptorToFour) {
  EXPECT_EQ(note_size("CORE", kPrstatusSize), 12u + 8u + 336u);
  EXPECT_EQ(note_size("CORE", kPrpsinfoSize), 12u + 8u + 136u);
  EXPECT_EQ(note_size("LINUX", 2696), 12u + 8u + 2696u);  // "LINUX\0" padded to 8
  EXPECT_EQ(note_size("CORE", 5), 12u + 8u + 8u);
  EXPECT_EQ(note_size("CORE", 0), 20u);
  EXPECT_EQ(file_note_desc_size(2, 10), 16u + 48u + 10u);
}

TEST(ElfCore, NoteHeaderCarriesSizesTypeAndPaddedOwner) {
  std::vector<std::byte> b(32, std::byte{0xa5});
  EXPECT_EQ(emit_note_header(b, "LINUX", kNtX86Xstate, 2696), 20u);
  const auto n = as<Elf64_Nhdr>(b);
  EXPECT_EQ(n.n_namesz, 6u);
  EXPECT_EQ(n.n_descsz, 2696u);
  EXPECT_EQ(n.n_type, static_cast<Elf64_Word>(NT_X86_XSTATE));
  EXPECT_EQ(std::memcmp(b.data() + 12, "LINUX\0\0\0", 8), 0);
  EXPECT_EQ(b[20], std::byte{0xa5});  // nothing written past the padded name
}

TEST(ElfCore, PrstatusMatchesTheCLibrarysStruct) {
  PrStatus s;
  s.signo = SIGSEGV;
  s.cursig = SIGSEGV;
  s.sigpend = 0x1122;
  s.sighold = 0x8000000000000001;
  s.pid = 4242;
  s.ppid = 41;
  s.pgrp = 40;
  s.sid = 39;
  for (std::size_t i = 0; i < s.regs.r.size(); ++i) s.regs.r[i] = 0x1000 + i;
  s.fpvalid = true;
  std::vector<std::byte> b(kPrstatusSize, std::byte{0xa5});
  emit_prstatus(std::span<std::byte, kPrstatusSize>(b.data(), kPrstatusSize), s);
  const auto p = as<struct elf_prstatus>(b);
  EXPECT_EQ(p.pr_info.si_signo, SIGSEGV);
  EXPECT_EQ(p.pr_info.si_code, 0);
  EXPECT_EQ(p.pr_cursig, SIGSEGV);
  EXPECT_EQ(p.pr_sigpend, 0x1122u);
  EXPECT_EQ(p.pr_sighold, 0x8000000000000001u);
  EXPECT_EQ(p.pr_pid, 4242);
  EXPECT_EQ(p.pr_ppid, 41);
  EXPECT_EQ(p.pr_pgrp, 40);
  EXPECT_EQ(p.pr_sid, 39);
  EXPECT_EQ(p.pr_utime.tv_sec, 0);
  user_regs_struct regs;
  std::memcpy(&regs, &p.pr_reg, sizeof regs);
  EXPECT_EQ(regs.r15, 0x1000u);
  EXPECT_EQ(regs.rip, 0x1000u + static_cast<std::size_t>(Reg::kRip));
  EXPECT_EQ(regs.gs, 0x1000u + static_cast<std::size_t>(Reg::kGs));
  EXPECT_EQ(p.pr_fpvalid, 1);
}

TEST(ElfCore, PrpsinfoMatchesTheCLibrarysStruct) {
  PrPsInfo in;
  in.sname = 'R';
  in.nice = -5;
  in.uid = 1000;
  in.gid = 100;
  in.pid = 77;
  in.ppid = 1;
  in.pgrp = 77;
  in.sid = 70;
  std::memcpy(in.fname.data(), "core_child", 10);
  std::memcpy(in.psargs.data(), "core_child live /tmp/x", 22);
  std::vector<std::byte> b(kPrpsinfoSize, std::byte{0xa5});
  emit_prpsinfo(std::span<std::byte, kPrpsinfoSize>(b.data(), kPrpsinfoSize), in);
  const auto p = as<struct elf_prpsinfo>(b);
  EXPECT_EQ(p.pr_state, 0);
  EXPECT_EQ(p.pr_sname, 'R');
  EXPECT_EQ(p.pr_zomb, 0);
  EXPECT_EQ(p.pr_nice, -5);
  EXPECT_EQ(p.pr_flag, 0u);
  EXPECT_EQ(p.pr_uid, 1000u);
  EXPECT_EQ(p.pr_gid, 100u);
  EXPECT_EQ(p.pr_pid, 77);
  EXPECT_EQ(p.pr_ppid, 1);
  EXPECT_EQ(p.pr_pgrp, 77);
  EXPECT_EQ(p.pr_sid, 70);
  EXPECT_STREQ(p.pr_fname, "core_child");
  EXPECT_STREQ(p.pr_psargs, "core_child live /tmp/x");
}

TEST(ElfCore, SignalFrameRegistersGoToTheirUserRegsPlaces) {
  std::array<long long, 23> g{};
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = static_cast<long long>(0x100 + i);
  g[REG_CSGSFS] = static_cast<long long>(0x002b000000000033);  // ss 0x2b, fs 0, gs 0, cs 0x33
  SegmentRegs seg{.fs_base = 0x7f0000001000, .gs_base = 0, .ss = 0x99, .ds = 1, .es = 2, .fs = 3, .gs = 4};
  UserRegs r = user_regs_from_gregs(g, true, seg);
  EXPECT_EQ(r[Reg::kR8], 0x100u + REG_R8);
  EXPECT_EQ(r[Reg::kR15], 0x100u + REG_R15);
  EXPECT_EQ(r[Reg::kRdi], 0x100u + REG_RDI);
  EXPECT_EQ(r[Reg::kRbp], 0x100u + REG_RBP);
  EXPECT_EQ(r[Reg::kRax], 0x100u + REG_RAX);
  EXPECT_EQ(r[Reg::kRsp], 0x100u + REG_RSP);
  EXPECT_EQ(r[Reg::kRip], 0x100u + REG_RIP);
  EXPECT_EQ(r[Reg::kEflags], 0x100u + REG_EFL);
  EXPECT_EQ(r[Reg::kOrigRax], ~std::uint64_t{0});
  EXPECT_EQ(r[Reg::kCs], 0x33u);
  EXPECT_EQ(r[Reg::kSs], 0x2bu);
  EXPECT_EQ(r[Reg::kFsBase], 0x7f0000001000u);
  EXPECT_EQ(r[Reg::kDs], 1u);
  EXPECT_EQ(r[Reg::kGs], 4u);
  // A frame without ss (kernels before 4.6): the caller's.
  r = user_regs_from_gregs(g, false, seg);
  EXPECT_EQ(r[Reg::kSs], 0x99u);
}

}  // namespace
}  // namespace np::dump
