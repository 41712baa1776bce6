// Fuzzes the CFI unwinder's byte readers (src/console/cfi_program.h): the
// CIE/FDE parser, the CFA-instruction interpreter and the expression
// evaluator, over a buffer that stands for the unwind tables.
//
// Input: byte 0 chooses what to run (mod 3: an FDE at offset 1 + byte 1,
// with whatever CIE its pointer reaches; the rest as CFA instructions, then
// the row applied; the rest as an expression); byte 1 also seeds the pc and
// the registers. The "stack" answers every address with a word made of it.
//
// Invariants checked (any violation aborts):
//   - instructions and expressions are never read outside the input (the
//     buffer's Memory aborts on such a read); an FDE's CIE pointer may point
//     anywhere, so in FDE mode such reads are refused, as safe_read would;
//   - a parsed FDE has ordered ranges;
//   - everything ends: the op counts bound the loops (libFuzzer's -timeout).
//
// Seeds (fuzz/corpus/cfi_fuzz/), written with a few lines of Python from the
// bytes in src/console/cfi_unwind_test.cpp: gcc_fde (mode 0, offset 24: the
// test's GCC-style CIE and FDE), gcc_program (mode 1: its CFA program plus
// an expression and a val_expression rule), restore_rt_program (mode 1:
// glibc's __restore_rt shape, def_cfa_expression breg7 160; deref, and
// register rules by expression), plt_expression (mode 2: GNU ld's PLT CFA).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "cfi_program.h"

using namespace np::console::cfi;

namespace {

struct Input {
  const std::uint8_t* data;
  std::size_t size;
  bool outside_is_a_bug;
};

bool read_input(const void* ctx, std::uintptr_t addr, void* dst, std::size_t len) noexcept {
  const auto& in = *static_cast<const Input*>(ctx);
  const auto base = reinterpret_cast<std::uintptr_t>(in.data);
  if (addr < base || addr > base + in.size || len > base + in.size - addr) {
    if (in.outside_is_a_bug) std::abort();
    return false;
  }
  std::memcpy(dst, in.data + (addr - base), len);
  return true;
}

bool read_stack(const void*, std::uintptr_t addr, void* dst, std::size_t len) noexcept {
  if (addr % 16 == 5) return false;
  const std::uint64_t v = addr * 0x9e3779b97f4a7c15;
  std::memcpy(dst, &v, len < sizeof v ? len : sizeof v);
  return true;
}

Registers registers(std::uint8_t seed) {
  Registers r;
  for (unsigned i = 0; i < kColumns; ++i) r.set(i, 0x7ff000000000 + seed * 64 + i * 8);
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t mode = data[0] % 3, seed = data[1];
  Input in{data + 2, size - 2, mode != 0};
  const Memory code{&read_input, &in};
  const Memory stack{&read_stack, nullptr};
  const auto base = reinterpret_cast<std::uintptr_t>(in.data);
  const Registers regs = registers(seed);
  Registers caller;
  std::uintptr_t cfa = 0;

  if (mode == 0) {
    Fde fde;
    if (!parse_fde(code, base + seed % (in.size + 1), base, fde)) return 0;
    if (fde.insns > fde.insns_end || fde.cie.insns > fde.cie.insns_end || fde.pc_begin > fde.pc_end) std::abort();
    Row initial;
    if (!run_cfa_program(code, fde.cie.insns, fde.cie.insns_end, fde.cie, base, fde.pc_begin, UINTPTR_MAX, nullptr,
                         initial)) {
      return 0;
    }
    Row row = initial;
    if (run_cfa_program(code, fde.insns, fde.insns_end, fde.cie, base, fde.pc_begin, fde.pc_begin + seed, &initial,
                        row)) {
      (void)apply_row(row, code, stack, regs, caller, cfa);
    }
  } else if (mode == 1) {
    Cie cie;
    cie.code_align = 1 + seed % 4;
    cie.data_align = -8;
    cie.fde_encoding = seed % 2 == 0 ? 0x1b : 0x03;
    Row row;
    if (run_cfa_program(code, base, base + in.size, cie, base, 0, seed, nullptr, row)) {
      (void)apply_row(row, code, stack, regs, caller, cfa);
    }
  } else {
    std::uintptr_t result = 0;
    const std::uintptr_t pushed = seed;
    (void)evaluate(code, base, in.size, stack, regs, seed % 2 == 0 ? &pushed : nullptr, result);
  }
  return 0;
}
