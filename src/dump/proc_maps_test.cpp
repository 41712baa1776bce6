// Lines of /proc/PID/smaps as Linux 6.1 writes them (copied from a Debian
// 12 machine, addresses kept), and the kernel's dump decisions of
// core(5) for each kind of mapping.
#include "netpoll/dump/proc_maps.h"

#include <gtest/gtest.h>

namespace np::dump {
namespace {

TEST(ProcMaps, ParsesAFileMappingLine) {
  const auto m = parse_maps_line(
      "7f3a1c228000-7f3a1c24e000 r--p 00026000 fe:00 1835236                    /usr/lib/x86_64-linux-gnu/libc.so.6");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->start, 0x7f3a1c228000u);
  EXPECT_EQ(m->end, 0x7f3a1c24e000u);
  EXPECT_EQ(m->offset, 0x26000u);
  EXPECT_EQ(m->inode, 1835236u);
  EXPECT_TRUE(m->read);
  EXPECT_FALSE(m->write);
  EXPECT_FALSE(m->exec);
  EXPECT_FALSE(m->shared);
  EXPECT_EQ(m->path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
}

TEST(ProcMaps, ParsesAnonymousAndSpecialMappings) {
  auto m = parse_maps_line("7ffd5a9e6000-7ffd5aa07000 rw-p 00000000 00:00 0                          [stack]");
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->write);
  EXPECT_EQ(m->path, "[stack]");
  m = parse_maps_line("7f3a1c000000-7f3a1c021000 rw-p 00000000 00:00 0 ");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->path, "");
  m = parse_maps_line("7f3a1c000000-7f3a1c021000 ---p 00000000 00:00 0");
  ASSERT_TRUE(m.has_value());
  EXPECT_FALSE(m->read);
  EXPECT_EQ(m->path, "");
  m = parse_maps_line("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->start, 0xffffffffff600000u);
  EXPECT_TRUE(m->exec);
}

TEST(ProcMaps, KeepsSpacesInsideAPath) {
  const auto m = parse_maps_line("7f0000000000-7f0000001000 rw-s 00000000 00:01 5 /dev/zero (deleted)");
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->shared);
  EXPECT_EQ(m->path, "/dev/zero (deleted)");
}

TEST(ProcMaps, RejectsWhatIsNotAMapsLine) {
  EXPECT_FALSE(parse_maps_line("Rss:                   8 kB"));
  EXPECT_FALSE(parse_maps_line("AnonHugePages:         0 kB"));
  EXPECT_FALSE(parse_maps_line("VmFlags: rd mr mw me"));
  EXPECT_FALSE(parse_maps_line(""));
  EXPECT_FALSE(parse_maps_line("7f00-7f00 r--p 00000000 00:00 0"));          // empty range
  EXPECT_FALSE(parse_maps_line("7f10-7f00 r--p 00000000 00:00 0"));          // end before start
  EXPECT_FALSE(parse_maps_line("7f00-7f10 rw-x 00000000 00:00 0"));          // neither p nor s
  EXPECT_FALSE(parse_maps_line("7f00-7f10 rwz- 00000000 00:00 0"));          // a bad permission letter
  EXPECT_FALSE(parse_maps_line("7f00-7f10 r--p 00000000 00:00"));            // no inode
  EXPECT_FALSE(parse_maps_line("7f00-7f10 r--p 00000000 00:00 1x /a"));      // inode not a number
  EXPECT_FALSE(parse_maps_line("17f0000000000000000-7f10 r--p 0 00:00 0"));  // more than 64 bits
  // Every prefix of a good line is refused, except those that end after
  // the inode (the path is optional).
  const std::string_view good = "7f00-7f10 r--p 00000000 fe:00 123 /a";
  for (std::size_t n = 0; n < good.size(); ++n) {
    const bool ok = parse_maps_line(good.substr(0, n)).has_value();
    EXPECT_EQ(ok, n >= 31) << good.substr(0, n);
  }
}

TEST(ProcMaps, ReadsSmapsSizesInBytes) {
  EXPECT_EQ(parse_smaps_kb("Rss:                   8 kB", "Rss"), 8192u);
  EXPECT_EQ(parse_smaps_kb("Anonymous:          1024 kB", "Anonymous"), 1u << 20);
  EXPECT_EQ(parse_smaps_kb("Swap:                  0 kB", "Swap"), 0u);
  EXPECT_EQ(parse_smaps_kb("Size:                  8 kB", "Rss").error(), Errc::kNotFound);
  EXPECT_EQ(parse_smaps_kb("RssAnon:               8 kB", "Rss").error(), Errc::kNotFound);
  EXPECT_EQ(parse_smaps_kb("Rss:", "Rss").error(), Errc::kMalformed);
  EXPECT_EQ(parse_smaps_kb("Rss:     x kB", "Rss").error(), Errc::kMalformed);
  EXPECT_EQ(parse_smaps_kb("Rss:     8 MB", "Rss").error(), Errc::kMalformed);
}

TEST(ProcMaps, ReadsTheVmFlagsThatDecideADump) {
  auto f = parse_vm_flags("VmFlags: rd wr mr mw me dd sd ");
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->dont_dump);
  EXPECT_FALSE(f->io);
  EXPECT_FALSE(f->hugetlb);
  f = parse_vm_flags("VmFlags: rd mr pf io de dd");  // [vvar]
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->io);
  EXPECT_TRUE(f->dont_dump);
  f = parse_vm_flags("VmFlags: rd wr mr mw me ht");
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->hugetlb);
  f = parse_vm_flags("VmFlags: rd wr mr mw me add");  // not "dd"
  ASSERT_TRUE(f.has_value());
  EXPECT_FALSE(f->dont_dump);
  EXPECT_EQ(parse_vm_flags("Rss: 4 kB").error(), Errc::kNotFound);
}

TEST(ProcMaps, ReadsCoredumpFilter) {
  EXPECT_EQ(parse_coredump_filter("00000033\n"), 0x33u);
  EXPECT_EQ(parse_coredump_filter("7f"), 0x7fu);
  EXPECT_FALSE(parse_coredump_filter(""));
  EXPECT_FALSE(parse_coredump_filter("\n"));
  EXPECT_FALSE(parse_coredump_filter("0x33"));
  EXPECT_FALSE(parse_coredump_filter("33 44"));
  EXPECT_FALSE(parse_coredump_filter("123456789"));  // more than 32 bits
}

TEST(ProcMaps, ClassifiesPaths) {
  EXPECT_EQ(classify_path(""), MappingKind::kAnonymous);
  EXPECT_EQ(classify_path("[heap]"), MappingKind::kAnonymous);
  EXPECT_EQ(classify_path("[anon:scratch]"), MappingKind::kAnonymous);
  EXPECT_EQ(classify_path("/usr/lib/x86_64-linux-gnu/libc.so.6"), MappingKind::kFile);
  EXPECT_EQ(classify_path("anon_inode:[io_uring]"), MappingKind::kFile);
  EXPECT_EQ(classify_path("[vdso]"), MappingKind::kVdso);
  EXPECT_EQ(classify_path("[vsyscall]"), MappingKind::kVdso);
  EXPECT_EQ(classify_path("[vvar]"), MappingKind::kNeverDumped);
}

// One mapping's facts from a maps line and what smaps said about it.
MappingFacts facts(std::string_view line, bool written = false, VmFlags flags = {}, bool have_smaps = true) {
  MappingFacts f;
  f.line = parse_maps_line(line).value();
  f.flags = flags;
  f.have_smaps = have_smaps;
  f.written = written;
  return f;
}

constexpr std::uint32_t kDefault = kDefaultCoredumpFilter;

TEST(ProcMaps, DumpsWrittenPrivateMemoryByDefault) {
  EXPECT_EQ(dump_extent(facts("5000-6000 rw-p 00000000 00:00 0 [heap]", true), kDefault), DumpExtent::kWhole);
  EXPECT_EQ(dump_extent(facts("5000-6000 rw-p 00000000 00:00 0", true), kDefault), DumpExtent::kWhole);
  // Never written (no anonymous pages): as the kernel, nothing.
  EXPECT_EQ(dump_extent(facts("5000-6000 rw-p 00000000 00:00 0", false), kDefault), DumpExtent::kNothing);
  // Without smaps, anonymous memory counts as written.
  EXPECT_EQ(dump_extent(facts("5000-6000 rw-p 00000000 00:00 0", false, {}, false), kDefault), DumpExtent::kWhole);
  // Bit 0 off: none of it.
  EXPECT_EQ(dump_extent(facts("5000-6000 rw-p 00000000 00:00 0 [heap]", true), kDefault & ~kFilterAnonPrivate),
            DumpExtent::kNothing);
}

TEST(ProcMaps, FileMappingsGiveTheirElfHeaderOrWrittenPages) {
  const std::string_view text = "7f00-7f10 r-xp 00000000 fe:00 5 /usr/lib/libc.so.6";
  const std::string_view text2 = "7f10-7f20 r-xp 00028000 fe:00 5 /usr/lib/libc.so.6";
  EXPECT_EQ(dump_extent(facts(text), kDefault), DumpExtent::kFirstPageIfElf);
  EXPECT_EQ(dump_extent(facts(text2), kDefault), DumpExtent::kNothing);
  EXPECT_EQ(dump_extent(facts(text), kDefault & ~kFilterElfHeaders), DumpExtent::kNothing);
  EXPECT_EQ(dump_extent(facts(text2), kDefault | kFilterFilePrivate), DumpExtent::kWhole);
  // Relocated read-only data (RELRO): written, so dumped.
  EXPECT_EQ(dump_extent(facts("7f20-7f30 r--p 001d2000 fe:00 5 /usr/lib/libc.so.6", true), kDefault),
            DumpExtent::kWhole);
  // Without smaps, a writable private file mapping counts as written.
  EXPECT_EQ(dump_extent(facts("7f30-7f40 rw-p 001d6000 fe:00 5 /usr/lib/libc.so.6", false, {}, false), kDefault),
            DumpExtent::kWhole);
  EXPECT_EQ(dump_extent(facts("7f30-7f40 r--p 001d6000 fe:00 5 /usr/lib/libc.so.6", false, {}, false), kDefault),
            DumpExtent::kNothing);
}

TEST(ProcMaps, SharedMemoryFollowsBitsOneAndThree) {
  const std::string_view anon = "7f00-7f10 rw-s 00000000 00:01 9 /dev/zero (deleted)";
  const std::string_view memfd = "7f00-7f10 rw-s 00000000 00:01 9 /memfd:ring (deleted)";
  const std::string_view sysv = "7f00-7f10 rw-s 00000000 00:01 9 /SYSV00000000";
  const std::string_view file = "7f00-7f10 rw-s 00000000 fe:00 9 /var/tmp/shared.db";
  EXPECT_EQ(dump_extent(facts(anon), kDefault), DumpExtent::kWhole);
  EXPECT_EQ(dump_extent(facts(memfd), kDefault), DumpExtent::kWhole);
  EXPECT_EQ(dump_extent(facts(sysv), kDefault), DumpExtent::kWhole);
  EXPECT_EQ(dump_extent(facts(anon), kDefault & ~kFilterAnonShared), DumpExtent::kNothing);
  EXPECT_EQ(dump_extent(facts(file), kDefault), DumpExtent::kNothing);
  EXPECT_EQ(dump_extent(facts(file), kDefault | kFilterFileShared), DumpExtent::kWhole);
}

TEST(ProcMaps, SpecialMappingsAndFlagsOverrideTheFilter) {
  EXPECT_EQ(dump_extent(facts("7f00-7f02 r-xp 00000000 00:00 0 [vdso]"), 0), DumpExtent::kWhole);
  EXPECT_EQ(dump_extent(facts("7f00-7f04 r--p 00000000 00:00 0 [vvar]", false, {.dont_dump = true, .io = true}),
                        0x7f),
            DumpExtent::kNothing);
  EXPECT_EQ(dump_extent(facts("5000-6000 rw-p 00000000 00:00 0", true, {.dont_dump = true}), 0x7f),
            DumpExtent::kNothing);
  EXPECT_EQ(dump_extent(facts("5000-6000 rw-s 00000000 00:05 3 /dev/mem", true, {.io = true}), 0x7f),
            DumpExtent::kNothing);
  // Unreadable memory is never dumped, whatever the filter.
  EXPECT_EQ(dump_extent(facts("5000-6000 ---p 00000000 00:00 0", true), 0x7f), DumpExtent::kNothing);
  EXPECT_EQ(dump_extent(facts("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]"), 0x7f),
            DumpExtent::kNothing);
}

TEST(ProcMaps, HugePagesFollowBitsFiveAndSix) {
  const VmFlags ht{.hugetlb = true};
  EXPECT_EQ(dump_extent(facts("7f00-7f20 rw-p 00000000 00:0f 7 /anon_hugepage (deleted)", true, ht), kDefault),
            DumpExtent::kWhole);
  EXPECT_EQ(dump_extent(facts("7f00-7f20 rw-p 00000000 00:0f 7 /anon_hugepage (deleted)", true, ht),
                        kDefault & ~kFilterHugePrivate),
            DumpExtent::kNothing);
  EXPECT_EQ(dump_extent(facts("7f00-7f20 rw-s 00000000 00:0f 7 /dev/hugepages/x", true, ht), kDefault),
            DumpExtent::kNothing);
  EXPECT_EQ(dump_extent(facts("7f00-7f20 rw-s 00000000 00:0f 7 /dev/hugepages/x", true, ht),
                        kDefault | kFilterHugeShared),
            DumpExtent::kWhole);
  // Without smaps the anonymous kind still shows by its name.
  EXPECT_EQ(dump_extent(facts("7f00-7f20 rw-p 00000000 00:0f 7 /anon_hugepage (deleted)", false, {}, false),
                        kDefault & ~kFilterHugePrivate),
            DumpExtent::kNothing);
}

}  // namespace
}  // namespace np::dump
