#include "proc_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace np::dump::detail {
namespace {

// A file in memory with `text`, read from its start.
int memfd_with(std::string_view text) {
  const int fd = ::memfd_create("lines", MFD_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::lseek(fd, 0, SEEK_SET);
  return fd;
}

std::vector<std::string> all_lines(LineReader& r) {
  std::vector<std::string> out;
  for (int i = 0; i < 100; ++i) {
    auto l = r.next();
    if (!l) {
      EXPECT_EQ(l.error(), Errc::kNotFound);
      break;
    }
    out.emplace_back(*l);
  }
  return out;
}

TEST(LineReader, SplitsLinesAcrossReadsOfASmallBuffer) {
  Fd fd(memfd_with("one\ntwo two\n\nthree"));
  char buf[8];
  LineReader r(fd.get(), buf);
  EXPECT_EQ(all_lines(r), (std::vector<std::string>{"one", "two two", "", "three"}));
  EXPECT_FALSE(r.truncated());
}

TEST(LineReader, CutsALineLongerThanTheBufferAndSkipsItsRest) {
  Fd fd(memfd_with("short\nthis line is far too long\nafter\n"));
  char buf[8];
  LineReader r(fd.get(), buf);
  EXPECT_EQ(all_lines(r), (std::vector<std::string>{"short", "this lin", "after"}));
  EXPECT_TRUE(r.truncated());
}

TEST(LineReader, AnEmptyFileHasNoLines) {
  Fd fd(memfd_with(""));
  char buf[8];
  LineReader r(fd.get(), buf);
  EXPECT_TRUE(all_lines(r).empty());
}

TEST(ProcFile, ReadsASmallFileWhole) {
  std::byte buf[256];
  const auto n = read_file("/proc/self/coredump_filter", buf);
  ASSERT_TRUE(n.has_value());
  EXPECT_GT(*n, 1u);
  EXPECT_EQ(buf[*n - 1], std::byte{'\n'});
  EXPECT_EQ(read_file("/proc/self/no-such-file", buf).error(), Errc::kNotFound);
}

}  // namespace
}  // namespace np::dump::detail
