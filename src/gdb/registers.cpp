#include "netpoll/gdb/registers.h"

#include <array>
#include <cstring>

namespace np::gdb {
namespace {

using dump::Reg;
using dump::detail::ThreadCapture;

constexpr std::array<RegisterInfo, kRegisterCount> make_table() {
  constexpr std::string_view names[kRegisterCount] = {
      "rax",   "rbx",   "rcx",   "rdx",   "rsi",   "rdi",   "rbp",   "rsp",   "r8",      "r9",      "r10",     "r11",
      "r12",   "r13",   "r14",   "r15",   "rip",   "eflags", "cs",   "ss",    "ds",      "es",      "fs",      "gs",
      "st0",   "st1",   "st2",   "st3",   "st4",   "st5",   "st6",   "st7",   "fctrl",   "fstat",   "ftag",    "fiseg",
      "fioff", "foseg", "fooff", "fop",   "xmm0",  "xmm1",  "xmm2",  "xmm3",  "xmm4",    "xmm5",    "xmm6",    "xmm7",
      "xmm8",  "xmm9",  "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "mxcsr",   "orig_rax", "fs_base", "gs_base"};
  std::array<RegisterInfo, kRegisterCount> t{};
  std::uint16_t at = 0;
  for (int i = 0; i < kRegisterCount; ++i) {
    std::uint16_t size = 8;
    if (i == 17 || (i >= 18 && i <= 23) || (i >= 32 && i <= 39) || i == 56) size = 4;
    if (i >= 24 && i <= 31) size = 10;
    if (i >= 40 && i <= 55) size = 16;
    t[static_cast<std::size_t>(i)] = RegisterInfo{names[i], size, at};
    at = static_cast<std::uint16_t>(at + size);
  }
  return t;
}

constexpr std::array<RegisterInfo, kRegisterCount> kTable = make_table();
static_assert(kTable[59].offset + kTable[59].size == kRegisterFileSize);

// The general registers 0-16 (rip) in user_regs_struct.
constexpr Reg kGeneral[17] = {Reg::kRax, Reg::kRbx, Reg::kRcx, Reg::kRdx, Reg::kRsi, Reg::kRdi,
                              Reg::kRbp, Reg::kRsp, Reg::kR8,  Reg::kR9,  Reg::kR10, Reg::kR11,
                              Reg::kR12, Reg::kR13, Reg::kR14, Reg::kR15, Reg::kRip};
// 18-23 and 57-59: what the kernel keeps, the frame does not restore.
constexpr Reg kFixed[6] = {Reg::kCs, Reg::kSs, Reg::kDs, Reg::kEs, Reg::kFs, Reg::kGs};

// The FXSAVE image's fields (Intel SDM vol. 1, 10.5.1, 64-bit format).
constexpr std::size_t kFcw = 0, kFsw = 2, kFtw = 4, kFop = 6, kFip = 8, kFcs = 12, kFdp = 16, kFds = 20,
                      kMxcsr = 24, kSt0 = 32, kXmm0 = 160;

constexpr std::string_view kDescription =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
    "<target version=\"1.0\">\n"
    "<architecture>i386:x86-64</architecture>\n"
    "<osabi>GNU/Linux</osabi>\n"
    "<feature name=\"org.gnu.gdb.i386.core\">\n"
    "<reg name=\"rax\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rbx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rcx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rdx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rsi\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rdi\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rbp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
    "<reg name=\"rsp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
    "<reg name=\"r8\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r9\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r10\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r11\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r12\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r13\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r14\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r15\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/>\n"
    "<reg name=\"eflags\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"cs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"ss\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"ds\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"es\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"fs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"gs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"st0\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st1\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st2\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st3\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st4\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st5\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st6\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st7\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"fctrl\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fstat\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"ftag\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fiseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fioff\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"foseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fooff\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fop\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "</feature>\n"
    "<feature name=\"org.gnu.gdb.i386.sse\">\n"
    "<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>\n"
    "<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>\n"
    "<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>\n"
    "<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>\n"
    "<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>\n"
    "<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>\n"
    "<union id=\"vec128\">"
    "<field name=\"v4_float\" type=\"v4f\"/>"
    "<field name=\"v2_double\" type=\"v2d\"/>"
    "<field name=\"v16_int8\" type=\"v16i8\"/>"
    "<field name=\"v8_int16\" type=\"v8i16\"/>"
    "<field name=\"v4_int32\" type=\"v4i32\"/>"
    "<field name=\"v2_int64\" type=\"v2i64\"/>"
    "<field name=\"uint128\" type=\"uint128\"/>"
    "</union>\n"
    "<reg name=\"xmm0\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm1\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm2\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm3\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm4\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm5\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm6\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm7\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm8\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm9\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm10\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm11\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm12\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm13\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm14\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm15\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"mxcsr\" bitsize=\"32\" type=\"int\" group=\"vector\"/>\n"
    "</feature>\n"
    "<feature name=\"org.gnu.gdb.i386.linux\">\n"
    "<reg name=\"orig_rax\" bitsize=\"64\" type=\"int\" group=\"system\"/>\n"
    "</feature>\n"
    "<feature name=\"org.gnu.gdb.i386.segments\">\n"
    "<reg name=\"fs_base\" bitsize=\"64\" type=\"int\"/>\n"
    "<reg name=\"gs_base\" bitsize=\"64\" type=\"int\"/>\n"
    "</feature>\n"
    "</target>\n";

void put_le(std::span<std::byte> out, std::uint64_t v, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>(v >> (8 * i));
}

std::uint64_t get_le(std::span<const std::byte> in, std::size_t n) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{std::to_integer<std::uint8_t>(in[i])} << (8 * i);
  return v;
}

std::uint64_t fx_field(const std::byte* fx, std::size_t at, std::size_t n) noexcept {
  return get_le(std::span<const std::byte>(fx + at, n), n);
}

void set_fx_field(std::byte* fx, std::size_t at, std::size_t n, std::uint64_t v) noexcept {
  put_le(std::span<std::byte>(fx + at, n), v, n);
}

bool has_fx(const ThreadCapture& cap) noexcept { return cap.fp != nullptr && cap.fp_len >= dump::kFxsaveSize; }

// Where an x87/SSE register sits in the FXSAVE image: {offset, bytes}.
struct FxPlace {
  std::size_t at = 0, n = 0;
};
FxPlace fx_place(int regno) noexcept {
  if (regno >= 24 && regno <= 31) return {kSt0 + 16 * static_cast<std::size_t>(regno - 24), 10};
  if (regno >= 40 && regno <= 55) return {kXmm0 + 16 * static_cast<std::size_t>(regno - 40), 16};
  switch (regno) {
    case 32: return {kFcw, 2};
    case 33: return {kFsw, 2};
    case 35: return {kFcs, 2};
    case 36: return {kFip, 4};
    case 37: return {kFds, 2};
    case 38: return {kFdp, 4};
    case 39: return {kFop, 2};
    case 56: return {kMxcsr, 4};
    default: return {};
  }
}

}  // namespace

const RegisterInfo& register_info(int regno) noexcept {
  static constexpr RegisterInfo kNone{};
  if (regno < 0 || regno >= kRegisterCount) return kNone;
  return kTable[static_cast<std::size_t>(regno)];
}

std::string_view target_description() noexcept { return kDescription; }

std::uint16_t full_tag_word(std::span<const std::byte, 512> fx) noexcept {
  const std::uint8_t abridged = std::to_integer<std::uint8_t>(fx[kFtw]);
  const unsigned top = (fx_field(fx.data(), kFsw, 2) >> 11) & 7;
  std::uint16_t tags = 0;
  for (unsigned phys = 0; phys < 8; ++phys) {
    unsigned tag = 3;  // empty
    if ((abridged >> phys & 1) != 0) {
      // The image keeps registers in stack order: physical register
      // `phys` is st((phys - top) mod 8).
      const std::byte* st = fx.data() + kSt0 + 16 * ((phys - top) & 7);
      const std::uint64_t mantissa = fx_field(st, 0, 8);
      const unsigned exponent = static_cast<unsigned>(fx_field(st, 8, 2)) & 0x7fff;
      if (exponent == 0x7fff) {
        tag = 2;  // infinity or NaN
      } else if (exponent == 0) {
        tag = mantissa == 0 ? 1 : 2;  // zero, or denormal
      } else {
        tag = (mantissa >> 63) != 0 ? 0 : 2;  // valid, or unnormal
      }
    }
    tags = static_cast<std::uint16_t>(tags | tag << (2 * phys));
  }
  return tags;
}

std::size_t read_register(const ThreadCapture& cap, int regno, std::span<std::byte> out) noexcept {
  const RegisterInfo& info = register_info(regno);
  if (info.size == 0 || out.size() < info.size) return 0;
  const auto& r = cap.regs;
  if (regno <= 16) {
    put_le(out, r[kGeneral[regno]], 8);
  } else if (regno == kRegEflags) {
    put_le(out, r[Reg::kEflags], 4);
  } else if (regno <= 23) {
    put_le(out, r[kFixed[regno - 18]], 4);
  } else if (regno == 57) {
    put_le(out, r[Reg::kOrigRax], 8);
  } else if (regno == 58) {
    put_le(out, r[Reg::kFsBase], 8);
  } else if (regno == 59) {
    put_le(out, r[Reg::kGsBase], 8);
  } else {
    if (!has_fx(cap)) return 0;
    if (regno == 34) {
      put_le(out, full_tag_word(std::span<const std::byte, 512>(cap.fp, 512)), 4);
      return info.size;
    }
    const FxPlace p = fx_place(regno);
    std::memset(out.data(), 0, info.size);
    std::memcpy(out.data(), cap.fp + p.at, p.n);
    if (regno == 39) put_le(out, fx_field(cap.fp, kFop, 2) & 0x7ff, 4);
  }
  return info.size;
}

Result<void> write_register(ThreadCapture& cap, int regno, std::span<const std::byte> in) noexcept {
  const RegisterInfo& info = register_info(regno);
  if (info.size == 0 || in.size() != info.size) return fail(Errc::kInvalidArgument);
  auto& r = cap.regs;
  const std::uint64_t v = get_le(in, in.size() < 8 ? in.size() : 8);
  const auto keep = [](std::uint64_t now, std::uint64_t want) -> Result<void> {
    if (now != want) return fail(Errc::kUnsupported);
    return {};
  };
  if (regno <= 16) {
    r[kGeneral[regno]] = v;
    return {};
  }
  if (regno == kRegEflags) {
    r[Reg::kEflags] = v;
    return {};
  }
  if (regno <= 23) return keep(r[kFixed[regno - 18]] & 0xffff, v & 0xffff);
  if (regno == 57) return keep(r[Reg::kOrigRax], v);
  if (regno == 58) return keep(r[Reg::kFsBase], v);
  if (regno == 59) return keep(r[Reg::kGsBase], v);
  if (!has_fx(cap)) return fail(Errc::kUnsupported);
  if (regno == 34) {
    // Back to one bit per register: set unless the tag says empty.
    std::uint8_t abridged = 0;
    for (unsigned phys = 0; phys < 8; ++phys) {
      if ((v >> (2 * phys) & 3) != 3) abridged = static_cast<std::uint8_t>(abridged | 1u << phys);
    }
    if (std::to_integer<std::uint8_t>(cap.fp[kFtw]) != abridged) {
      cap.fp[kFtw] = static_cast<std::byte>(abridged);
      cap.fp_dirty = true;
    }
    return {};
  }
  const FxPlace p = fx_place(regno);
  if (regno == 39) {
    set_fx_field(cap.fp, kFop, 2, v & 0x7ff);
  } else if (std::memcmp(cap.fp + p.at, in.data(), p.n) != 0) {
    std::memcpy(cap.fp + p.at, in.data(), p.n);
  } else {
    return {};  // unchanged
  }
  cap.fp_dirty = true;
  return {};
}

int gdb_signal(int s) noexcept {
  // Linux x86-64 -> gdb's numbering (gdb/signals.def); the first six and
  // a few more agree.
  switch (s) {
    case 1: case 2: case 3: case 4: case 5: case 6: case 8: case 9: case 11: case 13: case 14: case 15:
    case 21: case 22: case 24: case 25: case 26: case 27: case 28:
      return s;
    case 7: return 10;   // SIGBUS
    case 10: return 30;  // SIGUSR1
    case 12: return 31;  // SIGUSR2
    case 17: return 20;  // SIGCHLD
    case 18: return 19;  // SIGCONT
    case 19: return 17;  // SIGSTOP
    case 20: return 18;  // SIGTSTP
    case 23: return 16;  // SIGURG
    case 29: return 23;  // SIGIO
    case 30: return 32;  // SIGPWR
    case 31: return 12;  // SIGSYS
    case 0: return 0;
    default: return 143;  // GDB_SIGNAL_UNKNOWN
  }
}

}  // namespace np::gdb
