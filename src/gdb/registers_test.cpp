#include "netpoll/gdb/registers.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <array>
#include <cstring>
#include <string>

namespace np::gdb {
namespace {

using dump::Reg;
using dump::detail::ThreadCapture;

struct Capture {
  Capture() {
    cap.fp = fx.data();
    cap.fp_len = 512;
    cap.valid = true;
  }
  ThreadCapture cap;
  alignas(64) std::array<std::byte, 512> fx{};
};

std::string hex(std::span<const std::byte> b) {
  static constexpr char k[] = "0123456789abcdef";
  std::string s;
  for (const std::byte x : b) {
    s += k[std::to_integer<unsigned>(x) >> 4];
    s += k[std::to_integer<unsigned>(x) & 15];
  }
  return s;
}

TEST(GdbRegisters, LayOutTheFileAsTheTargetDescriptionNumbersIt) {
  // Offsets summed by hand from the sizes in the header's table.
  EXPECT_EQ(register_info(0).name, "rax");
  EXPECT_EQ(register_info(16).offset, 128);
  EXPECT_EQ(register_info(17).offset, 136);
  EXPECT_EQ(register_info(18).offset, 140);
  EXPECT_EQ(register_info(24).offset, 164);
  EXPECT_EQ(register_info(24).size, 10);
  EXPECT_EQ(register_info(32).offset, 244);
  EXPECT_EQ(register_info(40).offset, 276);
  EXPECT_EQ(register_info(56).name, "mxcsr");
  EXPECT_EQ(register_info(56).offset, 532);
  EXPECT_EQ(register_info(57).name, "orig_rax");
  EXPECT_EQ(register_info(59).name, "gs_base");
  EXPECT_EQ(register_info(59).offset + register_info(59).size, kRegisterFileSize);
  EXPECT_EQ(register_info(60).size, 0);
  EXPECT_EQ(register_info(-1).size, 0);
  // Every register is in the description, in this order.
  const std::string_view d = target_description();
  std::size_t at = 0;
  for (int i = 0; i < kRegisterCount; ++i) {
    const std::string want = "<reg name=\"" + std::string(register_info(i).name) + "\" bitsize=\"" +
                             std::to_string(8 * register_info(i).size) + "\"";
    const auto found = d.find(want, at);
    ASSERT_NE(found, std::string_view::npos) << want;
    at = found;
  }
  EXPECT_NE(d.find("<architecture>i386:x86-64</architecture>"), std::string_view::npos);
  EXPECT_NE(d.find("org.gnu.gdb.i386.linux"), std::string_view::npos);
}

TEST(GdbRegisters, ReadsGeneralAndFloatingPointRegistersFromACapture) {
  Capture c;
  c.cap.regs[Reg::kRbp] = 0x00007ffc12345678;
  c.cap.regs[Reg::kEflags] = 0x246;
  c.cap.regs[Reg::kCs] = 0x33;
  std::array<std::byte, 16> out{};
  ASSERT_EQ(read_register(c.cap, 6, out), 8u);
  EXPECT_EQ(hex(std::span(out.data(), 8)), "78563412fc7f0000");
  ASSERT_EQ(read_register(c.cap, 17, out), 4u);
  EXPECT_EQ(hex(std::span(out.data(), 4)), "46020000");
  ASSERT_EQ(read_register(c.cap, 18, out), 4u);
  EXPECT_EQ(hex(std::span(out.data(), 4)), "33000000");
  // xmm3 at FXSAVE byte 160 + 48, mxcsr at 24, fop's 11 bits at 6.
  for (int i = 0; i < 16; ++i) c.fx[208 + i] = static_cast<std::byte>(0xa0 + i);
  c.fx[24] = std::byte{0x80};
  c.fx[25] = std::byte{0x1f};
  c.fx[6] = std::byte{0xff};
  c.fx[7] = std::byte{0xff};
  ASSERT_EQ(read_register(c.cap, 43, out), 16u);
  EXPECT_EQ(hex(out), "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
  ASSERT_EQ(read_register(c.cap, 56, out), 4u);
  EXPECT_EQ(hex(std::span(out.data(), 4)), "801f0000");
  ASSERT_EQ(read_register(c.cap, 39, out), 4u);
  EXPECT_EQ(hex(std::span(out.data(), 4)), "ff070000");
  // Without an FXSAVE image there is nothing to say about x87/SSE.
  c.cap.fp = nullptr;
  EXPECT_EQ(read_register(c.cap, 43, out), 0u);
  EXPECT_EQ(read_register(c.cap, 0, out), 8u);
}

TEST(GdbRegisters, TagWordTellsEmptyZeroValidAndSpecialPerPhysicalRegister) {
  std::array<std::byte, 512> fx{};
  // TOP = 6: st0 is physical register 6, st1 is 7, st2 is 0.
  fx[3] = std::byte{6 << 3};
  fx[4] = std::byte{0b11000001};  // physical 0, 6 and 7 in use
  // st0 (phys 6): 1.0 (exponent 0x3fff, integer bit set) -> valid (0)
  fx[32 + 7] = std::byte{0x80};
  fx[32 + 8] = std::byte{0xff};
  fx[32 + 9] = std::byte{0x3f};
  // st1 (phys 7): zero -> 1; st2 (phys 0): infinity -> 2
  fx[64 + 7] = std::byte{0x80};
  fx[64 + 8] = std::byte{0xff};
  fx[64 + 9] = std::byte{0x7f};
  const std::uint16_t want = 2 | 3 << 2 | 3 << 4 | 3 << 6 | 3 << 8 | 3 << 10 | 0 << 12 | 1 << 14;
  EXPECT_EQ(full_tag_word(fx), want);
}

TEST(GdbRegisters, WritesWhatAThreadResumesWithAndRefusesToChangeTheRest) {
  Capture c;
  c.cap.regs[Reg::kFsBase] = 0x1000;
  const std::array<std::byte, 8> rip{std::byte{0x10}, std::byte{0x20}, std::byte{0x40}};
  ASSERT_TRUE(write_register(c.cap, 16, rip));
  EXPECT_EQ(c.cap.regs[Reg::kRip], 0x402010u);
  const std::array<std::byte, 4> tf{std::byte{0x46}, std::byte{0x03}};
  ASSERT_TRUE(write_register(c.cap, 17, tf));
  EXPECT_EQ(c.cap.regs[Reg::kEflags], 0x346u);
  EXPECT_FALSE(c.cap.fp_dirty);
  const std::array<std::byte, 8> other_base{};
  EXPECT_EQ(write_register(c.cap, 58, other_base).error(), Errc::kUnsupported);
  const std::array<std::byte, 8> same_base{std::byte{0}, std::byte{0x10}};
  EXPECT_TRUE(write_register(c.cap, 58, same_base));
  EXPECT_EQ(write_register(c.cap, 16, std::span(rip.data(), 4)).error(), Errc::kInvalidArgument);
  // An SSE register changes the image and marks it for the frame.
  std::array<std::byte, 16> x{};
  x[0] = std::byte{1};
  ASSERT_TRUE(write_register(c.cap, 40, x));
  EXPECT_EQ(c.fx[160], std::byte{1});
  EXPECT_TRUE(c.cap.fp_dirty);
  // The tag word goes back as one bit per register.
  c.cap.fp_dirty = false;
  const std::array<std::byte, 4> tags{std::byte{0xfe}, std::byte{0xff}};  // only phys 0 in use
  ASSERT_TRUE(write_register(c.cap, 34, tags));
  EXPECT_EQ(c.fx[4], std::byte{0x01});
  EXPECT_TRUE(c.cap.fp_dirty);
}

TEST(GdbRegisters, NumbersSignalsAsGdbDoes) {
  EXPECT_EQ(gdb_signal(SIGSEGV), 11);
  EXPECT_EQ(gdb_signal(SIGTRAP), 5);
  EXPECT_EQ(gdb_signal(SIGABRT), 6);
  EXPECT_EQ(gdb_signal(SIGBUS), 10);
  EXPECT_EQ(gdb_signal(SIGUSR1), 30);
  EXPECT_EQ(gdb_signal(SIGSYS), 12);
  EXPECT_EQ(gdb_signal(SIGCHLD), 20);
  EXPECT_EQ(gdb_signal(SIGRTMIN + 7), 143);
}

}  // namespace
}  // namespace np::gdb
