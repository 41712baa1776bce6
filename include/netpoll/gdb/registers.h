// gdb's view of an x86-64 thread's registers: the numbering, sizes and
// byte layout of the register file the stub serves (`g`, `p`), the target
// description that tells gdb so (qXfer:features:read:target.xml), and the
// conversion from and to a stopped thread's capture (dump/thread_stop.h:
// user_regs_struct and the FXSAVE image).
//
// The numbering is the description's (each <reg> one more than the one
// before it), in gdbserver's amd64-linux order:
//   0-15  rax rbx rcx rdx rsi rdi rbp rsp r8-r15   8 bytes each
//   16    rip  8        17 eflags 4     18-23 cs ss ds es fs gs  4 each
//   24-31 st0-st7 10 (80-bit)           32-39 fctrl fstat ftag fiseg
//                                             fioff foseg fooff fop 4 each
//   40-55 xmm0-15 16   56 mxcsr 4       57 orig_rax 8
//   58 fs_base 8       59 gs_base 8
// 560 bytes in all, little-endian as the machine keeps them.
//
// What a write can change is what a thread resumes with (thread_stop.h's
// restore_to_frame): the general registers, rip, eflags and the x87/SSE
// state. The segment selectors, orig_rax and fs/gs base come from the
// kernel, not the signal frame: a write that keeps their value is
// accepted, one that changes it is refused (kUnsupported), never dropped
// silently.
//
// Context: any (no allocation; the description is a constant).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "netpoll/base/result.h"
#include "netpoll/dump/thread_stop.h"

namespace np::gdb {

inline constexpr int kRegisterCount = 60;
inline constexpr std::size_t kRegisterFileSize = 560;
inline constexpr int kRegRip = 16;
inline constexpr int kRegEflags = 17;

struct RegisterInfo {
  std::string_view name;
  std::uint16_t size = 0;    // bytes
  std::uint16_t offset = 0;  // in the `g` packet's register file
};

// Register `regno` (0 <= regno < kRegisterCount). Context: any.
const RegisterInfo& register_info(int regno) noexcept;

// The target description (amd64, GNU/Linux): the features
// org.gnu.gdb.i386.core, .sse, .linux (orig_rax: gdb's amd64-linux
// support, signal frames and shared libraries among it, needs it) and
// .segments. Context: any.
std::string_view target_description() noexcept;

// Register `regno` of `cap` in gdb's layout into `out` (at least its
// size); the bytes written, 0 when regno is unknown or the capture has no
// FXSAVE image for an x87/SSE register. Context: any.
std::size_t read_register(const dump::detail::ThreadCapture& cap, int regno, std::span<std::byte> out) noexcept;

// Sets register `regno` of `cap` from `in` (exactly its size): kInvalidArgument
// for an unknown number or a wrong size, kUnsupported for a change to a
// register a thread cannot resume with. An x87/SSE write marks the capture
// fp_dirty. Context: any.
[[nodiscard]] Result<void> write_register(dump::detail::ThreadCapture& cap, int regno,
                                          std::span<const std::byte> in) noexcept;

// The x87 tag word as gdb shows it (two bits per physical register:
// 0 valid, 1 zero, 2 special, 3 empty) from an FXSAVE image, which keeps
// only one bit per register (empty or not). Context: any.
std::uint16_t full_tag_word(std::span<const std::byte, 512> fxsave) noexcept;

// gdb's number for a host (Linux x86-64) signal: gdb numbers signals its
// own way (SIGBUS is 10 to it, SIGUSR1 30, ...). Context: any.
int gdb_signal(int host_signal) noexcept;

}  // namespace np::gdb
