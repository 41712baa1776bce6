// CFI unwinder (see cfi_unwind.h): the index built at setup, and the walk.
#include "netpoll/console/cfi_unwind.h"

#include <elf.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "cfi_program.h"
#include "netpoll/base/errno_saver.h"
#include "safe_read.h"

namespace np::console {
namespace {

using cfi::Memory;
using cfi::Registers;

// Memory for the walk: our own, through process_vm_readv.
bool read_self(const void* ctx, std::uintptr_t addr, void* dst, std::size_t len) noexcept {
  return safe_read(*static_cast<const pid_t*>(ctx), addr, dst, len);
}

// FNV-1a (64 bit) over the fields build_cfi_index() seals. Not a defence
// against an attacker; it catches a stray write or memset over the index.
std::uint64_t checksum_of(const CfiIndex& ix, std::uint64_t count) noexcept {
  std::uint64_t h = 0xcbf29ce484222325;
  const auto mix = [&h](const void* p, std::size_t len) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < len; ++i) h = (h ^ b[i]) * 0x100000001b3;
  };
  mix(&ix.count, sizeof ix.count);
  mix(&ix.dropped, sizeof ix.dropped);
  mix(ix.objects.data(), count * sizeof(CfiObject));
  return h;
}

// ---- The index -------------------------------------------------------------

// Reads the .eh_frame_hdr at `hdr` (`len` bytes, its PT_GNU_EH_FRAME) into
// `o`: version 1, eh_frame_ptr, then a sorted table of {initial_loc, fde}
// pairs, both datarel|sdata4 from the header's start (LSB 5.0, ".eh_frame_hdr").
// Any other table encoding leaves fde_count 0: the object's frames then take
// frame-pointer steps.
void read_eh_frame_hdr(Memory mem, std::uintptr_t hdr, std::uintptr_t len, CfiObject& o) noexcept {
  o.eh_frame_hdr = hdr;
  cfi::Cursor c(mem, hdr, hdr + len);
  const std::uint8_t version = c.u8();
  const std::uint8_t eh_frame_ptr_enc = c.u8();
  const std::uint8_t fde_count_enc = c.u8();
  const std::uint8_t table_enc = c.u8();
  std::uintptr_t eh_frame = 0, count = 0;
  if (!c.ok() || version != 1 || !cfi::read_encoded(c, eh_frame_ptr_enc, hdr, eh_frame)) return;
  o.eh_frame = eh_frame;
  if (table_enc != (cfi::kPeDatarel | cfi::kPeSdata4) || !cfi::read_encoded(c, fde_count_enc, hdr, count)) return;
  // The table must lie inside the segment: 8 bytes a pair.
  if (count > c.left() / 8) return;
  o.table = c.pos();
  o.fde_count = count;
}

struct Collect {
  CfiIndex* out;
  pid_t self;
};

int collect(dl_phdr_info* info, std::size_t, void* arg) {
  auto& col = *static_cast<Collect*>(arg);
  CfiIndex& ix = *col.out;
  CfiObject o;
  o.bias = info->dlpi_addr;
  o.text_start = UINTPTR_MAX;
  const ElfW(Phdr)* eh = nullptr;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X) != 0) {
      o.text_start = std::min<std::uintptr_t>(o.text_start, o.bias + ph.p_vaddr);
      o.text_end = std::max<std::uintptr_t>(o.text_end, o.bias + ph.p_vaddr + ph.p_memsz);
    } else if (ph.p_type == PT_GNU_EH_FRAME) {
      eh = &ph;
    }
  }
  if (o.text_start >= o.text_end) return 0;  // no code: no frame can be in it
  if (ix.count == CfiIndex::kCapacity) {
    ++ix.dropped;
    return 0;
  }
  if (eh != nullptr) read_eh_frame_hdr(Memory{&read_self, &col.self}, o.bias + eh->p_vaddr, eh->p_memsz, o);
  ix.objects[ix.count++] = o;
  return 0;
}

// The indexed object whose code holds `pc`, or nullptr.
const CfiObject* find_object(std::span<const CfiObject> objects, std::uintptr_t pc) noexcept {
  const auto it = std::upper_bound(objects.begin(), objects.end(), pc,
                                   [](std::uintptr_t v, const CfiObject& o) { return v < o.text_start; });
  if (it == objects.begin()) return nullptr;
  const CfiObject& o = *(it - 1);
  return pc < o.text_end ? &o : nullptr;
}

// ---- The walk --------------------------------------------------------------

enum class Lookup { kFound, kNone, kBroken };

// The FDE covering `pc` in `o`: a binary search for the last table entry
// starting at or below pc, then the FDE's own range decides.
Lookup find_fde(Memory mem, const CfiObject& o, std::uintptr_t pc, cfi::Fde& fde) noexcept {
  if (o.fde_count == 0) return Lookup::kNone;
  const auto entry = [&](std::uint64_t i, std::int32_t (&pair)[2]) {
    return mem(o.table + i * sizeof pair, pair, sizeof pair);
  };
  std::int32_t pair[2];
  std::uint64_t lo = 0, hi = o.fde_count;  // at most 64 rounds
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    if (!entry(mid, pair)) return Lookup::kBroken;
    if (o.eh_frame_hdr + static_cast<std::uintptr_t>(std::intptr_t{pair[0]}) <= pc) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return Lookup::kNone;
  if (!entry(lo - 1, pair)) return Lookup::kBroken;
  const std::uintptr_t at = o.eh_frame_hdr + static_cast<std::uintptr_t>(std::intptr_t{pair[1]});
  if (!cfi::parse_fde(mem, at, o.eh_frame_hdr, fde)) return Lookup::kBroken;
  return pc >= fde.pc_begin && pc < fde.pc_end ? Lookup::kFound : Lookup::kNone;
}

// One frame-pointer step, as backtrace.cpp walks: [rbp] is the caller's
// rbp, [rbp + 8] the return address, rbp + 16 the caller's rsp.
bool frame_pointer_step(Memory mem, const Registers& regs, Registers& caller, std::uintptr_t& cfa) noexcept {
  if (!regs.has(cfi::kRbp)) return false;
  const std::uintptr_t fp = regs.value[cfi::kRbp];
  // A frame lies above the stack pointer; an rbp below it is a general
  // register here, not a frame.
  if (fp == 0 || fp % 8 != 0 || fp > UINTPTR_MAX - 16) return false;
  if (regs.has(cfi::kRsp) && fp < regs.value[cfi::kRsp]) return false;
  std::uintptr_t frame[2];
  if (!mem(fp, frame, sizeof frame)) return false;
  caller = regs;
  caller.set(cfi::kRbp, frame[0]);
  caller.set(cfi::kRip, frame[1]);
  cfa = fp + 16;
  caller.set(cfi::kRsp, cfa);
  return true;
}

// The caller of the frame described by `regs`. `exact` says regs' pc is the
// instruction that was interrupted (frame 0, or after a signal frame) rather
// than a return address, which may follow a call to a noreturn function
// and so lie past the end of the caller's code: those are looked up at pc - 1.
bool step(std::span<const CfiObject> objects, Memory mem, const Registers& regs, bool exact, Registers& caller,
          std::uintptr_t& cfa, bool& caller_exact) noexcept {
  const std::uintptr_t pc = regs.value[cfi::kRip];
  const std::uintptr_t at = exact ? pc : pc - 1;
  caller_exact = false;
  const CfiObject* o = find_object(objects, at);
  if (o == nullptr) {
    // A call through a bad pointer: the "function" at pc never ran, and
    // the call's return address is at rsp, as at any function's entry.
    if (!exact || !regs.has(cfi::kRsp)) return false;
    const std::uintptr_t sp = regs.value[cfi::kRsp];
    std::uintptr_t ret = 0;
    if (sp > UINTPTR_MAX - 8 || !mem(sp, &ret, sizeof ret)) return false;
    caller = regs;
    caller.set(cfi::kRip, ret);
    cfa = sp + 8;
    caller.set(cfi::kRsp, cfa);
    return true;
  }
  cfi::Fde fde;
  switch (find_fde(mem, *o, at, fde)) {
    case Lookup::kBroken: return false;
    case Lookup::kNone: return frame_pointer_step(mem, regs, caller, cfa);
    case Lookup::kFound: break;
  }
  cfi::Row initial;
  if (!cfi::run_cfa_program(mem, fde.cie.insns, fde.cie.insns_end, fde.cie, fde.datarel_base, fde.pc_begin,
                            UINTPTR_MAX, nullptr, initial)) {
    return false;
  }
  cfi::Row row = initial;
  if (!cfi::run_cfa_program(mem, fde.insns, fde.insns_end, fde.cie, fde.datarel_base, fde.pc_begin, at, &initial,
                            row)) {
    return false;
  }
  if (!cfi::apply_row(row, mem, mem, regs, caller, cfa)) return false;
  caller_exact = fde.cie.signal_frame;
  return true;
}

// DWARF register r's slot in ucontext_t's gregs (DWARF order, cfi_program.h).
constexpr int kGregOf[cfi::kColumns] = {REG_RAX, REG_RDX, REG_RCX, REG_RBX, REG_RSI, REG_RDI,
                                        REG_RBP, REG_RSP, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                        REG_R12, REG_R13, REG_R14, REG_R15, REG_RIP};

}  // namespace

Result<void> build_cfi_index(CfiIndex& out) noexcept {
  out.magic = 0;  // not intact while it is being filled
  out.count = 0;
  out.dropped = 0;
  out.objects = {};
  Collect col{&out, ::getpid()};
  ::dl_iterate_phdr(collect, &col);
  std::sort(out.objects.begin(), out.objects.begin() + static_cast<std::ptrdiff_t>(out.count),
            [](const CfiObject& a, const CfiObject& b) { return a.text_start < b.text_start; });
  out.checksum = checksum_of(out, out.count);
  out.magic = CfiIndex::kMagic;
  if (out.dropped != 0) return fail(Errc::kNoBuffer);
  return {};
}

bool cfi_index_intact(const CfiIndex& index) noexcept {
  return index.magic == CfiIndex::kMagic && index.count <= CfiIndex::kCapacity &&
         index.checksum == checksum_of(index, index.count);
}

std::size_t cfi_backtrace(const CfiIndex& index, const ucontext_t& uc, std::span<std::uintptr_t> out) noexcept {
  if (out.empty()) return 0;
  ErrnoSaver keep_errno;
  const pid_t self = ::getpid();  // not cached: a forked child must read its own memory
  const Memory mem{&read_self, &self};
  const std::span<const CfiObject> objects =
      cfi_index_intact(index) ? std::span<const CfiObject>(index.objects.data(), index.count)
                              : std::span<const CfiObject>();

  Registers regs;
  for (unsigned r = 0; r < cfi::kColumns; ++r) {
    regs.set(r, static_cast<std::uintptr_t>(uc.uc_mcontext.gregs[kGregOf[r]]));
  }
  std::size_t n = 0;
  out[n++] = regs.value[cfi::kRip];
  bool exact = true;
  std::uintptr_t last_cfa = regs.value[cfi::kRsp];
  int not_above = 0;
  while (n < out.size()) {
    Registers caller;
    std::uintptr_t cfa = 0;
    bool caller_exact = false;
    if (!step(objects, mem, regs, exact, caller, cfa, caller_exact)) break;
    const std::uintptr_t pc = caller.value[cfi::kRip];
    if (pc == 0) break;
    // A return address points into code we know; an interrupted pc is shown
    // whatever it is (a jump to 0 is worth seeing), and the next step decides.
    if (!caller_exact && find_object(objects, pc - 1) == nullptr) break;
    // Each caller's frame lies above its callee's. One exception is allowed
    // in a row: a signal handler on an alternate stack unwinding into the
    // interrupted code may jump anywhere.
    if (cfa <= last_cfa) {
      if (++not_above == 2) break;
    } else {
      not_above = 0;
    }
    last_cfa = cfa;
    out[n++] = pc;
    regs = caller;
    exact = caller_exact;
  }
  return n;
}

}  // namespace np::console
