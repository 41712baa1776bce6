// The parts of the CFI unwinder (cfi_unwind.h) that read DWARF bytes: a
// bounded cursor, the CIE/FDE parser, the CFA-instruction interpreter and
// the expression evaluator. Internal to the console layer; declared here so
// that their tests can feed them bytes of their own.
//
// None of them touches memory directly: every byte comes through a Memory,
// which in the unwinder is safe_read() on our own pid and in tests a
// buffer that records any read outside it. A Cursor is the only way to
// consume bytes and never asks its Memory for anything outside the
// [begin, end) it was made with (smoltcp's "check at construction", applied
// to a range of addresses instead of a span). Every loop is bounded by a
// count below, not only by the input's length.
//
// Register numbers are DWARF's for x86-64 (psABI figure 3.36): 0 rax,
// 1 rdx, 2 rcx, 3 rbx, 4 rsi, 5 rdi, 6 rbp, 7 rsp, 8-15 r8-r15, 16 the
// return address (RIP). Rules for higher columns (vector registers) are
// parsed and dropped.
//
// Context: any, for every function here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

// Private to this layer: hidden, so that libnetpoll.so, which exports
// namespace np:: (src/library/exports.map), does not export it.
#pragma GCC visibility push(hidden)
namespace np::console::cfi {

inline constexpr unsigned kColumns = 17;
inline constexpr unsigned kRbp = 6;
inline constexpr unsigned kRsp = 7;
inline constexpr unsigned kRip = 16;  // the return-address column of every x86-64 CIE

inline constexpr std::size_t kMaxCfaOps = 16384;          // CFA instructions per program
inline constexpr std::size_t kRememberDepth = 8;          // DW_CFA_remember_state nesting
inline constexpr std::size_t kMaxExprOps = 256;           // operations per DWARF expression
inline constexpr std::size_t kExprStack = 32;             // its stack depth
inline constexpr std::uint64_t kMaxEntryBytes = 1 << 20;  // a longer CIE or FDE is taken as garbage

// Where bytes come from. `read` copies [addr, addr + len) into dst, or
// returns false; it must not fault.
struct Memory {
  bool (*read)(const void* ctx, std::uintptr_t addr, void* dst, std::size_t len) noexcept = nullptr;
  const void* ctx = nullptr;
  bool operator()(std::uintptr_t addr, void* dst, std::size_t len) const noexcept { return read(ctx, addr, dst, len); }
};

// A forward reader over [begin, end) of a Memory, buffered so that a run
// of one-byte reads costs one Memory read per 64 bytes. A read past the end
// or one the Memory refuses clears ok() and returns 0; later reads return 0
// too, so a parser may read a whole record and check ok() once.
class Cursor {
 public:
  Cursor(Memory mem, std::uintptr_t begin, std::uintptr_t end) noexcept
      : mem_(mem), begin_(begin), at_(begin), end_(end), ok_(end >= begin) {}

  bool ok() const noexcept { return ok_; }
  bool at_end() const noexcept { return !ok_ || at_ >= end_; }
  std::uintptr_t pos() const noexcept { return at_; }
  std::uintptr_t end() const noexcept { return end_; }
  std::uint64_t left() const noexcept { return ok_ ? end_ - at_ : 0; }

  // Moves to `to`, which must lie in [begin, end]: an expression's branch
  // may go back, never out.
  bool seek(std::uintptr_t to) noexcept {
    if (to < begin_ || to > end_) ok_ = false;
    if (ok_) at_ = to;
    return ok_;
  }
  bool skip(std::uint64_t n) noexcept { return n <= left() ? seek(at_ + n) : (ok_ = false); }

  std::uint8_t u8() noexcept;
  std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(le(2)); }
  std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(le(4)); }
  std::uint64_t u64() noexcept { return le(8); }
  std::uint64_t uleb() noexcept;  // at most 10 bytes: a longer one is malformed
  std::int64_t sleb() noexcept;

 private:
  std::uint64_t le(unsigned bytes) noexcept;  // little-endian, `bytes` long

  Memory mem_;
  std::uintptr_t begin_;
  std::uintptr_t at_;
  std::uintptr_t end_;
  bool ok_;
  std::array<unsigned char, 64> buf_{};
  std::uintptr_t buf_at_ = 0;
  std::size_t buf_len_ = 0;
};

// DW_EH_PE_* (LSB 5.0, "DWARF Exception Header Encoding").
inline constexpr std::uint8_t kPeOmit = 0xff;
inline constexpr std::uint8_t kPeAbsptr = 0x00;
inline constexpr std::uint8_t kPeUdata4 = 0x03;
inline constexpr std::uint8_t kPeSdata4 = 0x0b;
inline constexpr std::uint8_t kPePcrel = 0x10;
inline constexpr std::uint8_t kPeDatarel = 0x30;

// Reads a pointer encoded as `enc` at the cursor: pcrel adds the field's own
// address, datarel adds `datarel_base` (the .eh_frame_hdr, as for its
// table; 0: datarel is refused). DW_EH_PE_indirect is ignored: the value is
// returned, never followed. False for DW_EH_PE_omit, for the textrel,
// funcrel and aligned applications and for unknown formats.
bool read_encoded(Cursor& c, std::uint8_t enc, std::uintptr_t datarel_base, std::uintptr_t& out) noexcept;

// What the unwinder needs of a CIE.
struct Cie {
  std::uint64_t code_align = 1;
  std::int64_t data_align = 1;
  std::uint8_t fde_encoding = kPeAbsptr;  // 'R'
  bool signal_frame = false;              // 'S': the pc of the frame it describes is exact
  bool has_augmentation_data = false;     // 'z': FDEs carry an augmentation length
  std::uintptr_t insns = 0;               // initial instructions [insns, insns_end)
  std::uintptr_t insns_end = 0;
};

// What the unwinder needs of an FDE.
struct Fde {
  Cie cie;
  std::uintptr_t pc_begin = 0;
  std::uintptr_t pc_end = 0;  // one past its last byte
  std::uintptr_t insns = 0;   // instructions [insns, insns_end)
  std::uintptr_t insns_end = 0;
  std::uintptr_t datarel_base = 0;
};

// Parses the FDE at `at` and the CIE it points to. False for a CIE at `at`,
// a zero terminator, a length over kMaxEntryBytes, a CIE version other than
// 1 or 3, a return-address column other than 16, an augmentation string
// that does not start with 'z' (other than ""), or any failed read.
bool parse_fde(Memory code, std::uintptr_t at, std::uintptr_t datarel_base, Fde& out) noexcept;

enum class How : std::uint8_t {
  kUnspecified,  // no rule: unchanged (the CFA, for rsp)
  kUndefined,
  kSameValue,
  kOffset,         // saved at CFA + offset
  kValOffset,      // is CFA + offset
  kRegister,       // is in register `arg`
  kExpression,     // saved at the address the expression computes (CFA pushed first)
  kValExpression,  // is what the expression computes (CFA pushed first)
};

// One register's rule. `arg` is the offset (two's complement), the register
// or the expression's address, by `how`.
struct Rule {
  std::uint64_t arg = 0;
  std::uint32_t len = 0;  // the expression's length
  How how = How::kUnspecified;
};

// A row of the CFA table. The CFA is kRegister (register cfa.arg plus
// cfa_offset) or kValExpression (DW_CFA_def_cfa_expression: its value, with
// nothing pushed first); kUnspecified until the program sets it.
struct Row {
  Rule cfa;
  std::int64_t cfa_offset = 0;
  std::array<Rule, kColumns> reg{};
};

// Runs the CFA instructions in [begin, end) of `code` from location `loc`,
// up to the row that covers `pc` (it stops at the first advance past pc).
// `initial` is the row the CIE's instructions made (what DW_CFA_restore
// returns to); nullptr while running those. `fde_encoding` and
// `datarel_base` read DW_CFA_set_loc's operand. False on an unknown or
// malformed instruction, a remember_state nested deeper than kRememberDepth
// or a restore_state without one, more than kMaxCfaOps instructions, or a
// failed read.
bool run_cfa_program(Memory code, std::uintptr_t begin, std::uintptr_t end, const Cie& cie,
                     std::uintptr_t datarel_base, std::uintptr_t loc, std::uintptr_t pc, const Row* initial,
                     Row& row) noexcept;

// Register values of one frame.
struct Registers {
  std::array<std::uintptr_t, kColumns> value{};
  std::uint32_t known = 0;  // bit r: value[r] is known

  bool has(unsigned r) const noexcept { return r < kColumns && (known >> r & 1) != 0; }
  void set(unsigned r, std::uintptr_t v) noexcept {
    value[r] = v;
    known |= 1u << r;
  }
  void forget(unsigned r) noexcept { known &= ~(1u << r); }
};

// Evaluates the DWARF expression in [at, at + len) of `code` over this
// frame's registers, `initial` pushed first when not nullptr; DW_OP_deref
// reads `data`. False on an unsupported op (DW_OP_reg*, call*, TLS, typed
// ops), stack underflow or overflow (kExprStack), a division by zero, a
// branch outside the expression, an unknown register, more than kMaxExprOps
// operations, a failed read or an empty final stack.
bool evaluate(Memory code, std::uintptr_t at, std::uint64_t len, Memory data, const Registers& regs,
              const std::uintptr_t* initial, std::uintptr_t& result) noexcept;

// The caller's registers from this frame's `regs` and the `row` covering
// its pc: the CFA first, then rsp = CFA (the psABI's definition of the CFA)
// unless a rule says otherwise, then every other rule; registers without
// one are kept. False when the CFA cannot be computed, a saved register
// cannot be read or the return address is undefined (the outermost frame).
bool apply_row(const Row& row, Memory code, Memory data, const Registers& regs, Registers& caller,
               std::uintptr_t& cfa) noexcept;

}  // namespace np::console::cfi
#pragma GCC visibility pop
