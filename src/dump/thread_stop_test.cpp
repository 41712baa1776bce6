#include "netpoll/dump/thread_stop.h"

#include <gtest/gtest.h>
#include <ucontext.h>

#include <array>
#include <cstring>

namespace np::dump::detail {
namespace {

struct Frame {
  Frame() {
    std::memset(&uc, 0, sizeof uc);
    ::getcontext(&uc);
    cap.fp = fp.data();
  }
  ucontext_t uc;
  ThreadCapture cap;
  alignas(64) std::array<std::byte, 4096> fp{};
};

TEST(ThreadStop, RestoreToFrameWritesBackTheRegistersACaptureRead) {
  Frame f;
  capture_from_frame(f.cap, f.uc, f.fp.size(), 0);
  ASSERT_TRUE(f.cap.valid);
  EXPECT_EQ(f.cap.regs[Reg::kRip], static_cast<std::uint64_t>(f.uc.uc_mcontext.gregs[REG_RIP]));
  EXPECT_FALSE(f.cap.fp_dirty);
  ucontext_t out = f.uc;
  f.cap.regs[Reg::kRax] = 0x1111;
  f.cap.regs[Reg::kR15] = 0x2222;
  f.cap.regs[Reg::kRip] = 0x401000;
  f.cap.regs[Reg::kRsp] = 0x7ffe0000;
  f.cap.regs[Reg::kEflags] |= 0x100;  // the trap flag of a step
  const std::byte before = reinterpret_cast<const std::byte*>(out.uc_mcontext.fpregs)[160];
  f.fp[160] = ~before;
  restore_to_frame(f.cap, out);
  EXPECT_EQ(out.uc_mcontext.gregs[REG_RAX], 0x1111);
  EXPECT_EQ(out.uc_mcontext.gregs[REG_R15], 0x2222);
  EXPECT_EQ(out.uc_mcontext.gregs[REG_RIP], 0x401000);
  EXPECT_EQ(out.uc_mcontext.gregs[REG_RSP], 0x7ffe0000);
  EXPECT_NE(out.uc_mcontext.gregs[REG_EFL] & 0x100, 0);
  // Not marked dirty: the FP state stays the frame's.
  EXPECT_EQ(reinterpret_cast<const std::byte*>(out.uc_mcontext.fpregs)[160], before);
}

TEST(ThreadStop, RestoreToFrameWritesChangedSseStateKeepingMxcsrToItsMask) {
  Frame f;
  capture_from_frame(f.cap, f.uc, f.fp.size(), 0);
  ucontext_t out = f.uc;
  auto* frame_fp = reinterpret_cast<std::byte*>(out.uc_mcontext.fpregs);
  std::uint32_t mask = 0;
  std::memcpy(&mask, frame_fp + 28, 4);
  for (int i = 0; i < 16; ++i) f.fp[160 + i] = static_cast<std::byte>(0x40 + i);  // xmm0
  const std::uint32_t mxcsr = 0xffffffff;
  std::memcpy(f.fp.data() + 24, &mxcsr, 4);
  f.cap.fp_dirty = true;
  restore_to_frame(f.cap, out);
  EXPECT_EQ(std::memcmp(frame_fp + 160, f.fp.data() + 160, 16), 0);
  std::uint32_t written = 0;
  std::memcpy(&written, frame_fp + 24, 4);
  EXPECT_EQ(written, mask != 0 ? mask : mxcsr);
}

}  // namespace
}  // namespace np::dump::detail
