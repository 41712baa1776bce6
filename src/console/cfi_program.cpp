// DWARF call-frame bytes: cursor, CIE/FDE parser, CFA interpreter and
// expression evaluator (see cfi_program.h). References are to DWARF 5
// section 6.4 ("Call Frame Information"), section 2.5 (expressions) and
// LSB 5.0 "Exception Frames" for what .eh_frame changes.
#include "cfi_program.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace np::console::cfi {
namespace {

constexpr std::uintptr_t kPage = 4096;

// Multiplies with wrap-around: operands come from untrusted bytes, and a
// signed overflow would be undefined behaviour.
std::int64_t wrap_mul(std::uint64_t a, std::int64_t b) noexcept {
  return static_cast<std::int64_t>(a * static_cast<std::uint64_t>(b));
}
std::int64_t wrap_mul(std::int64_t a, std::int64_t b) noexcept { return wrap_mul(static_cast<std::uint64_t>(a), b); }

}  // namespace

// ---- Cursor ----------------------------------------------------------------

std::uint8_t Cursor::u8() noexcept {
  if (!ok_ || at_ >= end_) {
    ok_ = false;
    return 0;
  }
  if (at_ < buf_at_ || at_ - buf_at_ >= buf_len_) {
    // Refill, never across a page boundary: a record that ends just before
    // an unmapped page must still be readable.
    const std::uintptr_t len =
        std::min<std::uintptr_t>({buf_.size(), end_ - at_, kPage - (at_ & (kPage - 1))});
    if (!mem_(at_, buf_.data(), len)) {
      ok_ = false;
      return 0;
    }
    buf_at_ = at_;
    buf_len_ = len;
  }
  return buf_[at_++ - buf_at_];
}

std::uint64_t Cursor::le(unsigned bytes) noexcept {
  std::uint64_t v = 0;
  for (unsigned i = 0; i < bytes; ++i) v |= std::uint64_t{u8()} << (8 * i);
  return v;
}

// DWARF 5 section 7.6: seven bits a byte, low group first, the top bit set
// on every byte but the last.
std::uint64_t Cursor::uleb() noexcept {
  std::uint64_t v = 0;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    const std::uint8_t b = u8();
    if (shift < 64) v |= std::uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) return v;
  }
  ok_ = false;
  return 0;
}

std::int64_t Cursor::sleb() noexcept {
  std::uint64_t v = 0;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    const std::uint8_t b = u8();
    if (shift < 64) v |= std::uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) {
      if (shift + 7 < 64 && (b & 0x40) != 0) v |= ~std::uint64_t{0} << (shift + 7);  // sign-extend
      return static_cast<std::int64_t>(v);
    }
  }
  ok_ = false;
  return 0;
}

// ---- Pointer encodings, CIE and FDE -----------------------------------------

bool read_encoded(Cursor& c, std::uint8_t enc, std::uintptr_t datarel_base, std::uintptr_t& out) noexcept {
  if (enc == kPeOmit) return false;
  const std::uintptr_t field = c.pos();
  std::uint64_t v = 0;
  switch (enc & 0x0f) {
    case 0x00: v = c.u64(); break;  // absptr: a pointer of the target's size
    case 0x01: v = c.uleb(); break;
    case 0x02: v = c.u16(); break;
    case 0x03: v = c.u32(); break;
    case 0x04: v = c.u64(); break;
    case 0x09: v = static_cast<std::uint64_t>(c.sleb()); break;
    case 0x0a: v = static_cast<std::uint64_t>(static_cast<std::int16_t>(c.u16())); break;
    case 0x0b: v = static_cast<std::uint64_t>(static_cast<std::int32_t>(c.u32())); break;
    case 0x0c: v = c.u64(); break;
    default: return false;
  }
  switch (enc & 0x70) {
    case 0x00: break;
    case kPePcrel: v += field; break;
    case kPeDatarel:
      if (datarel_base == 0) return false;
      v += datarel_base;
      break;
    default: return false;  // textrel, funcrel, aligned: not emitted for x86-64 .eh_frame
  }
  // enc & 0x80 (DW_EH_PE_indirect) is ignored: only personality routines
  // use it, and the unwinder never follows them.
  out = v;
  return c.ok();
}

namespace {

// A CIE or FDE's length field (LSB: 0xffffffff announces a 64-bit length)
// and the cursor over its body. False for the zero terminator and for
// lengths over kMaxEntryBytes.
bool open_entry(Memory code, std::uintptr_t at, Cursor& body) noexcept {
  Cursor c(code, at, at + 12 < at ? at : at + 12);
  std::uint64_t len = c.u32();
  if (len == 0xffffffff) len = c.u64();
  if (!c.ok() || len == 0 || len > kMaxEntryBytes) return false;
  const std::uintptr_t begin = c.pos();
  if (begin + len < begin) return false;
  // Its last byte must be readable too: a parsed entry is whole, and a
  // record cut short by the end of a mapping is refused here, not halfway
  // through its instructions.
  unsigned char last;
  if (!code(begin + len - 1, &last, 1)) return false;
  body = Cursor(code, begin, begin + len);
  return true;
}

bool parse_cie(Memory code, std::uintptr_t at, std::uintptr_t datarel_base, Cie& out) noexcept {
  Cursor c(code, 0, 0);
  if (!open_entry(code, at, c)) return false;
  if (c.u32() != 0) return false;  // .eh_frame CIE id: 4 bytes, 0
  const std::uint8_t version = c.u8();
  if (version != 1 && version != 3) return false;
  char aug[8] = {};  // every augmentation GCC, clang or glibc emit is shorter
  std::size_t aug_len = 0;
  for (;;) {
    const char ch = static_cast<char>(c.u8());
    if (!c.ok()) return false;
    if (ch == '\0') break;
    if (aug_len == sizeof aug) return false;
    aug[aug_len++] = ch;
  }
  out = Cie{};
  out.code_align = c.uleb();
  out.data_align = c.sleb();
  const std::uint64_t ra = version == 1 ? c.u8() : c.uleb();
  if (!c.ok() || ra != kRip) return false;
  if (aug_len > 0) {
    // Without 'z' nothing says how long the augmentation data is ("eh" of
    // old GCC): the instructions cannot be found.
    if (aug[0] != 'z') return false;
    out.has_augmentation_data = true;
    const std::uint64_t data_len = c.uleb();
    if (!c.ok() || data_len > c.left()) return false;
    const std::uintptr_t data_end = c.pos() + data_len;
    for (std::size_t i = 1; i < aug_len; ++i) {
      if (aug[i] == 'R') {
        out.fde_encoding = c.u8();
      } else if (aug[i] == 'P') {
        std::uintptr_t personality;  // skipped: read only to move past it
        if (!read_encoded(c, c.u8(), datarel_base, personality)) return false;
      } else if (aug[i] == 'L') {
        c.u8();  // the LSDA's encoding; the FDE's augmentation data is skipped by length
      } else if (aug[i] == 'S') {
        out.signal_frame = true;
      } else if (aug[i] != 'B' && aug[i] != 'G') {
        break;  // unknown: what follows is skipped by the 'z' length
      }
    }
    if (!c.ok() || !c.seek(data_end)) return false;
  }
  out.insns = c.pos();
  out.insns_end = c.end();
  return c.ok();
}

}  // namespace

bool parse_fde(Memory code, std::uintptr_t at, std::uintptr_t datarel_base, Fde& out) noexcept {
  Cursor c(code, 0, 0);
  if (!open_entry(code, at, c)) return false;
  // The CIE pointer: this field's address minus the CIE's (LSB); 0 marks a CIE.
  const std::uintptr_t field = c.pos();
  const std::uint32_t cie_delta = c.u32();
  if (!c.ok() || cie_delta == 0 || cie_delta > field) return false;
  out = Fde{};
  out.datarel_base = datarel_base;
  if (!parse_cie(code, field - cie_delta, datarel_base, out.cie)) return false;
  std::uintptr_t range = 0;
  if (!read_encoded(c, out.cie.fde_encoding, datarel_base, out.pc_begin)) return false;
  // The range is a length: same format, no application.
  if (!read_encoded(c, static_cast<std::uint8_t>(out.cie.fde_encoding & 0x0f), 0, range)) return false;
  out.pc_end = out.pc_begin + range;
  if (out.pc_end < out.pc_begin) return false;
  if (out.cie.has_augmentation_data && !c.skip(c.uleb())) return false;  // the LSDA pointer, if any
  out.insns = c.pos();
  out.insns_end = c.end();
  return c.ok();
}

// ---- CFA instructions (DWARF 5 section 6.4.2) ------------------------------

namespace {

// DW_CFA_* opcodes with no high-bit operand.
enum : std::uint8_t {
  kNop = 0x00,
  kSetLoc = 0x01,
  kAdvanceLoc1 = 0x02,
  kAdvanceLoc2 = 0x03,
  kAdvanceLoc4 = 0x04,
  kOffsetExtended = 0x05,
  kRestoreExtended = 0x06,
  kUndefined = 0x07,
  kSameValue = 0x08,
  kRegister = 0x09,
  kRememberState = 0x0a,
  kRestoreState = 0x0b,
  kDefCfa = 0x0c,
  kDefCfaRegister = 0x0d,
  kDefCfaOffset = 0x0e,
  kDefCfaExpression = 0x0f,
  kExpression = 0x10,
  kOffsetExtendedSf = 0x11,
  kDefCfaSf = 0x12,
  kDefCfaOffsetSf = 0x13,
  kValOffset = 0x14,
  kValOffsetSf = 0x15,
  kValExpression = 0x16,
  kGnuArgsSize = 0x2e,
  kGnuNegativeOffsetExtended = 0x2f,
};

// Sets column `r`'s rule; a column past 16 (a vector register) is dropped.
void set_rule(Row& row, std::uint64_t r, Rule rule) noexcept {
  if (r < kColumns) row.reg[r] = rule;
}

Rule offset_rule(How how, std::int64_t offset) noexcept { return Rule{static_cast<std::uint64_t>(offset), 0, how}; }

// An expression block (ULEB128 length, then the bytes) as a rule over it;
// the cursor moves past it.
bool block_rule(Cursor& c, How how, Rule& rule) noexcept {
  const std::uint64_t len = c.uleb();
  if (!c.ok() || len > c.left() || len > std::numeric_limits<std::uint32_t>::max()) return false;
  rule = Rule{c.pos(), static_cast<std::uint32_t>(len), how};
  return c.skip(len);
}

}  // namespace

bool run_cfa_program(Memory code, std::uintptr_t begin, std::uintptr_t end, const Cie& cie,
                     std::uintptr_t datarel_base, std::uintptr_t loc, std::uintptr_t pc, const Row* initial,
                     Row& row) noexcept {
  Cursor c(code, begin, end);
  std::array<Row, kRememberDepth> remembered;
  std::size_t depth = 0;
  const auto restore = [&](std::uint64_t r) {
    if (r < kColumns) row.reg[r] = initial != nullptr ? initial->reg[r] : Rule{};
  };
  for (std::size_t ops = 0; !c.at_end(); ++ops) {
    if (ops == kMaxCfaOps) return false;
    const std::uint8_t op = c.u8();
    std::uint64_t advance = 0;  // in code-alignment units
    switch (op >> 6) {
      case 1: advance = op & 0x3f; break;  // DW_CFA_advance_loc
      case 2: set_rule(row, op & 0x3f, offset_rule(How::kOffset, wrap_mul(c.uleb(), cie.data_align))); break;
      case 3: restore(op & 0x3f); break;  // DW_CFA_restore
      default:
        switch (op) {
          case kNop: break;
          case kSetLoc: {
            std::uintptr_t to = 0;
            if (!read_encoded(c, cie.fde_encoding, datarel_base, to)) return false;
            if (to > pc) return true;
            loc = to;
            break;
          }
          case kAdvanceLoc1: advance = c.u8(); break;
          case kAdvanceLoc2: advance = c.u16(); break;
          case kAdvanceLoc4: advance = c.u32(); break;
          case kOffsetExtended: {
            const std::uint64_t r = c.uleb();
            set_rule(row, r, offset_rule(How::kOffset, wrap_mul(c.uleb(), cie.data_align)));
            break;
          }
          case kOffsetExtendedSf: {
            const std::uint64_t r = c.uleb();
            set_rule(row, r, offset_rule(How::kOffset, wrap_mul(c.sleb(), cie.data_align)));
            break;
          }
          case kGnuNegativeOffsetExtended: {
            const std::uint64_t r = c.uleb();
            set_rule(row, r, offset_rule(How::kOffset, wrap_mul(0 - c.uleb(), cie.data_align)));
            break;
          }
          case kValOffset: {
            const std::uint64_t r = c.uleb();
            set_rule(row, r, offset_rule(How::kValOffset, wrap_mul(c.uleb(), cie.data_align)));
            break;
          }
          case kValOffsetSf: {
            const std::uint64_t r = c.uleb();
            set_rule(row, r, offset_rule(How::kValOffset, wrap_mul(c.sleb(), cie.data_align)));
            break;
          }
          case kRestoreExtended: restore(c.uleb()); break;
          case kUndefined: set_rule(row, c.uleb(), Rule{0, 0, How::kUndefined}); break;
          case kSameValue: set_rule(row, c.uleb(), Rule{0, 0, How::kSameValue}); break;
          case kRegister: {
            const std::uint64_t r = c.uleb();
            set_rule(row, r, Rule{c.uleb(), 0, How::kRegister});
            break;
          }
          case kRememberState:
            // The whole row, the CFA rule included (DWARF 5 6.4.2.4; GCC's
            // epilogues rely on restore_state bringing the CFA back).
            if (depth == kRememberDepth) return false;
            remembered[depth++] = row;
            break;
          case kRestoreState:
            if (depth == 0) return false;
            row = remembered[--depth];
            break;
          case kDefCfa:
            row.cfa = Rule{c.uleb(), 0, How::kRegister};
            row.cfa_offset = static_cast<std::int64_t>(c.uleb());
            break;
          case kDefCfaSf:
            row.cfa = Rule{c.uleb(), 0, How::kRegister};
            row.cfa_offset = wrap_mul(c.sleb(), cie.data_align);
            break;
          case kDefCfaRegister:
            // Valid only after a register rule (6.4.2.2); libgcc makes it
            // one whatever came before, and so do we, keeping the offset.
            row.cfa = Rule{c.uleb(), 0, How::kRegister};
            break;
          case kDefCfaOffset: row.cfa_offset = static_cast<std::int64_t>(c.uleb()); break;
          case kDefCfaOffsetSf: row.cfa_offset = wrap_mul(c.sleb(), cie.data_align); break;
          case kDefCfaExpression:
            if (!block_rule(c, How::kValExpression, row.cfa)) return false;
            break;
          case kExpression:
          case kValExpression: {
            const std::uint64_t r = c.uleb();
            Rule rule;
            if (!block_rule(c, op == kExpression ? How::kExpression : How::kValExpression, rule)) return false;
            set_rule(row, r, rule);
            break;
          }
          case kGnuArgsSize: c.uleb(); break;  // matters to landing pads only
          default: return false;               // vendor ops of other targets, or garbage
        }
    }
    if (!c.ok()) return false;
    if (advance != 0) {
      // The row just built covers [loc, loc + delta): stop when pc is in it.
      const std::uint64_t delta = advance * cie.code_align;
      if (delta > pc - loc || loc > pc) return true;
      loc += delta;
    }
  }
  return c.ok();
}

// ---- DWARF expressions (DWARF 5 section 2.5) -------------------------------

namespace {

enum : std::uint8_t {
  kOpAddr = 0x03,
  kOpDeref = 0x06,
  kOpConst1u = 0x08,
  kOpConst1s = 0x09,
  kOpConst2u = 0x0a,
  kOpConst2s = 0x0b,
  kOpConst4u = 0x0c,
  kOpConst4s = 0x0d,
  kOpConst8u = 0x0e,
  kOpConst8s = 0x0f,
  kOpConstu = 0x10,
  kOpConsts = 0x11,
  kOpDup = 0x12,
  kOpDrop = 0x13,
  kOpOver = 0x14,
  kOpPick = 0x15,
  kOpSwap = 0x16,
  kOpRot = 0x17,
  kOpAbs = 0x19,
  kOpAnd = 0x1a,
  kOpDiv = 0x1b,
  kOpMinus = 0x1c,
  kOpMod = 0x1d,
  kOpMul = 0x1e,
  kOpNeg = 0x1f,
  kOpNot = 0x20,
  kOpOr = 0x21,
  kOpPlus = 0x22,
  kOpPlusUconst = 0x23,
  kOpShl = 0x24,
  kOpShr = 0x25,
  kOpShra = 0x26,
  kOpXor = 0x27,
  kOpBra = 0x28,
  kOpEq = 0x29,
  kOpGe = 0x2a,
  kOpGt = 0x2b,
  kOpLe = 0x2c,
  kOpLt = 0x2d,
  kOpNe = 0x2e,
  kOpSkip = 0x2f,
  kOpLit0 = 0x30,
  kOpLit31 = 0x4f,
  kOpBreg0 = 0x70,
  kOpBreg31 = 0x8f,
  kOpBregx = 0x92,
  kOpDerefSize = 0x94,
  kOpNop = 0x96,
};

// Binary operations: `a` is the second entry, `b` the top (DWARF's order:
// DW_OP_minus computes a - b). Comparisons are signed, as in libgcc.
bool binary(std::uint8_t op, std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  const auto sa = static_cast<std::int64_t>(a), sb = static_cast<std::int64_t>(b);
  switch (op) {
    case kOpAnd: out = a & b; return true;
    case kOpOr: out = a | b; return true;
    case kOpXor: out = a ^ b; return true;
    case kOpPlus: out = a + b; return true;
    case kOpMinus: out = a - b; return true;
    case kOpMul: out = a * b; return true;
    case kOpDiv:
      if (b == 0) return false;
      // INT64_MIN / -1 overflows: its wrapped result, without the trap.
      out = sb == -1 ? 0 - a : static_cast<std::uint64_t>(sa / sb);
      return true;
    case kOpMod:
      if (b == 0) return false;
      out = a % b;
      return true;
    case kOpShl: out = b < 64 ? a << b : 0; return true;
    case kOpShr: out = b < 64 ? a >> b : 0; return true;
    case kOpShra: out = static_cast<std::uint64_t>(sa >> std::min<std::uint64_t>(b, 63)); return true;
    case kOpEq: out = a == b; return true;
    case kOpGe: out = sa >= sb; return true;
    case kOpGt: out = sa > sb; return true;
    case kOpLe: out = sa <= sb; return true;
    case kOpLt: out = sa < sb; return true;
    case kOpNe: out = a != b; return true;
    default: return false;
  }
}

}  // namespace

bool evaluate(Memory code, std::uintptr_t at, std::uint64_t len, Memory data, const Registers& regs,
              const std::uintptr_t* initial, std::uintptr_t& result) noexcept {
  if (at + len < at) return false;
  Cursor c(code, at, at + len);
  std::array<std::uint64_t, kExprStack> st;
  std::size_t n = 0;
  const auto push = [&](std::uint64_t v) {
    if (n == st.size()) return false;
    st[n++] = v;
    return true;
  };
  if (initial != nullptr) push(*initial);
  for (std::size_t ops = 0; !c.at_end(); ++ops) {
    if (ops == kMaxExprOps) return false;
    const std::uint8_t op = c.u8();
    bool ok = true;
    if (op >= kOpLit0 && op <= kOpLit31) {
      ok = push(op - kOpLit0);
    } else if ((op >= kOpBreg0 && op <= kOpBreg31) || op == kOpBregx) {
      const std::uint64_t r = op == kOpBregx ? c.uleb() : op - kOpBreg0;
      const std::int64_t offset = c.sleb();
      ok = r < kColumns && regs.has(static_cast<unsigned>(r)) &&
           push(regs.value[r] + static_cast<std::uint64_t>(offset));
    } else {
      switch (op) {
        case kOpAddr: ok = push(c.u64()); break;
        case kOpConst1u: ok = push(c.u8()); break;
        case kOpConst1s: ok = push(static_cast<std::uint64_t>(static_cast<std::int8_t>(c.u8()))); break;
        case kOpConst2u: ok = push(c.u16()); break;
        case kOpConst2s: ok = push(static_cast<std::uint64_t>(static_cast<std::int16_t>(c.u16()))); break;
        case kOpConst4u: ok = push(c.u32()); break;
        case kOpConst4s: ok = push(static_cast<std::uint64_t>(static_cast<std::int32_t>(c.u32()))); break;
        case kOpConst8u:
        case kOpConst8s: ok = push(c.u64()); break;
        case kOpConstu: ok = push(c.uleb()); break;
        case kOpConsts: ok = push(static_cast<std::uint64_t>(c.sleb())); break;
        case kOpDup: ok = n >= 1 && push(st[n - 1]); break;
        case kOpDrop: ok = n >= 1 && (--n, true); break;
        case kOpOver: ok = n >= 2 && push(st[n - 2]); break;
        case kOpPick: {
          const std::uint8_t i = c.u8();
          ok = i < n && push(st[n - 1 - i]);
          break;
        }
        case kOpSwap:
          ok = n >= 2;
          if (ok) std::swap(st[n - 1], st[n - 2]);
          break;
        case kOpRot:  // the top becomes third, the second the top, the third second
          ok = n >= 3;
          if (ok) {
            const std::uint64_t top = st[n - 1];
            st[n - 1] = st[n - 2];
            st[n - 2] = st[n - 3];
            st[n - 3] = top;
          }
          break;
        case kOpDeref:
        case kOpDerefSize: {
          const std::uint8_t size = op == kOpDeref ? 8 : c.u8();
          ok = n >= 1 && size >= 1 && size <= 8;
          std::uint64_t v = 0;  // little-endian: the low bytes first, zero-extended
          if (ok) ok = data(st[n - 1], &v, size);
          if (ok) st[n - 1] = v;
          break;
        }
        case kOpAbs:
          ok = n >= 1;
          if (ok && static_cast<std::int64_t>(st[n - 1]) < 0) st[n - 1] = 0 - st[n - 1];
          break;
        case kOpNeg:
          ok = n >= 1;
          if (ok) st[n - 1] = 0 - st[n - 1];
          break;
        case kOpNot:
          ok = n >= 1;
          if (ok) st[n - 1] = ~st[n - 1];
          break;
        case kOpPlusUconst:
          ok = n >= 1;
          if (ok) st[n - 1] += c.uleb();
          break;
        case kOpSkip:
        case kOpBra: {
          // The offset counts from the end of this operation's operand.
          const auto offset = static_cast<std::int16_t>(c.u16());
          bool jump = true;
          if (op == kOpBra) {
            ok = n >= 1;
            jump = ok && st[--n] != 0;
          }
          if (ok && jump) ok = c.seek(c.pos() + static_cast<std::uintptr_t>(static_cast<std::intptr_t>(offset)));
          break;
        }
        case kOpNop: break;
        default:
          ok = n >= 2 && binary(op, st[n - 2], st[n - 1], st[n - 2]);
          if (ok) --n;
          break;
      }
    }
    if (!ok || !c.ok()) return false;
  }
  if (!c.ok() || n == 0) return false;
  result = st[n - 1];
  return true;
}

// ---- One frame's registers from a row ---------------------------------------

bool apply_row(const Row& row, Memory code, Memory data, const Registers& regs, Registers& caller,
               std::uintptr_t& cfa) noexcept {
  if (row.cfa.how == How::kRegister) {
    if (row.cfa.arg >= kColumns || !regs.has(static_cast<unsigned>(row.cfa.arg))) return false;
    cfa = regs.value[row.cfa.arg] + static_cast<std::uint64_t>(row.cfa_offset);
  } else if (row.cfa.how == How::kValExpression) {
    if (!evaluate(code, row.cfa.arg, row.cfa.len, data, regs, nullptr, cfa)) return false;
  } else {
    return false;
  }
  caller = regs;
  caller.set(kRsp, cfa);
  for (unsigned r = 0; r < kColumns; ++r) {
    const Rule& rule = row.reg[r];
    std::uintptr_t v = 0;
    switch (rule.how) {
      case How::kUnspecified:
      case How::kSameValue: continue;
      case How::kUndefined: caller.forget(r); continue;
      case How::kOffset:
        if (!data(cfa + rule.arg, &v, sizeof v)) return false;
        break;
      case How::kValOffset: v = cfa + rule.arg; break;
      case How::kRegister:
        if (rule.arg >= kColumns || !regs.has(static_cast<unsigned>(rule.arg))) {
          caller.forget(r);
          continue;
        }
        v = regs.value[rule.arg];
        break;
      case How::kExpression:
        if (!evaluate(code, rule.arg, rule.len, data, regs, &cfa, v) || !data(v, &v, sizeof v)) return false;
        break;
      case How::kValExpression:
        if (!evaluate(code, rule.arg, rule.len, data, regs, &cfa, v)) return false;
        break;
    }
    caller.set(r, v);
  }
  return caller.has(kRip);
}

}  // namespace np::console::cfi
