// parse_core_head against cores made here with elf_core.h's emitters (the
// layout the kernel writes: header, program headers, notes, then the
// segments' data), against the head of a real kernel core, and against
// every truncation and every broken field.
#include "netpoll/dump/core_head.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "netpoll/dump/elf_core.h"

namespace np::dump {
namespace {

struct TestNote {
  std::string owner;
  std::uint32_t type;
  std::size_t desc_size;
};

// A core: notes as given, then `loads` PT_LOAD segments of 4 KiB each at
// page-aligned offsets after the notes (their bytes are not part of the
// returned vector unless `with_data`).
std::vector<std::byte> make_core(const std::vector<TestNote>& notes, std::uint16_t loads, bool with_data = false) {
  const std::uint16_t phnum = static_cast<std::uint16_t>(1 + loads);
  std::size_t notes_size = 0;
  for (const auto& n : notes) notes_size += note_size(n.owner, n.desc_size);
  const std::size_t notes_at = kElfHeaderSize + phnum * kProgramHeaderSize;
  const std::size_t data_at = align_up(notes_at + notes_size, 4096);
  std::vector<std::byte> core(with_data ? data_at + loads * 4096u : notes_at + notes_size, std::byte{0xa5});
  emit_elf_header(std::span<std::byte, kElfHeaderSize>(core.data(), kElfHeaderSize), phnum);
  ProgramHeader note{kPtNote, 0, notes_at, 0, notes_size, 0, 0};
  emit_program_header(std::span<std::byte, kProgramHeaderSize>(core.data() + kElfHeaderSize, kProgramHeaderSize), note);
  for (std::uint16_t i = 0; i < loads; ++i) {
    ProgramHeader load{kPtLoad, kPfR, data_at + i * 4096u, 0x400000u + i * 4096u, 4096, 4096, 4096};
    emit_program_header(std::span<std::byte, kProgramHeaderSize>(
                            core.data() + kElfHeaderSize + (1 + i) * kProgramHeaderSize, kProgramHeaderSize),
                        load);
  }
  std::size_t at = notes_at;
  for (const auto& n : notes) {
    at += emit_note_header(std::span(core).subspan(at), n.owner, n.type, n.desc_size);
    std::memset(core.data() + at, 0, align_up(n.desc_size, 4));
    at += align_up(n.desc_size, 4);
  }
  return core;
}

// Three threads as the kernel writes them: each thread's registers, its
// floating point state and XSAVE area, the process's notes in between.
std::vector<TestNote> three_threads() {
  return {{"CORE", kNtPrstatus, kPrstatusSize}, {"CORE", kNtPrpsinfo, kPrpsinfoSize},
          {"CORE", kNtSiginfo, kSiginfoSize},   {"CORE", kNtAuxv, 368},
          {"CORE", kNtFile, 1234},              {"CORE", kNtFpregset, kFxsaveSize},
          {"LINUX", kNtX86Xstate, 2696},        {"CORE", kNtPrstatus, kPrstatusSize},
          {"CORE", kNtFpregset, kFxsaveSize},   {"LINUX", kNtX86Xstate, 2696},
          {"CORE", kNtPrstatus, kPrstatusSize}, {"CORE", kNtFpregset, kFxsaveSize},
          {"LINUX", kNtX86Xstate, 2696}};
}

void set_le16(std::vector<std::byte>& b, std::size_t off, std::uint16_t v) { store_le16(b, off, v); }
void set_le64(std::vector<std::byte>& b, std::size_t off, std::uint64_t v) { store_le64(b, off, v); }

TEST(CoreHead, ReadsTheSizeAndTheThreadsOfAWholeHead) {
  const auto core = make_core(three_threads(), 5);
  const auto h = parse_core_head(core);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->segments, 6u);
  EXPECT_EQ(h->segments_read, 6u);
  EXPECT_TRUE(h->headers_read);
  EXPECT_TRUE(h->size_known);
  EXPECT_EQ(h->notes, NoteState::kComplete);
  EXPECT_EQ(h->threads, 3u);
  EXPECT_EQ(h->machine, 62);
  EXPECT_EQ(h->notes_offset, kElfHeaderSize + 6 * kProgramHeaderSize);
  EXPECT_EQ(h->needed, core.size()) << "the head is the header, the program headers and the notes";
  EXPECT_EQ(h->file_size, align_up(core.size(), 4096) + 5 * 4096);
}

TEST(CoreHead, EveryPrefixParsesAsFarAsItGoes) {
  const auto core = make_core(three_threads(), 5);
  const std::size_t table_end = kElfHeaderSize + 6 * kProgramHeaderSize;
  for (std::size_t n = 0; n <= core.size(); ++n) {
    const auto h = parse_core_head(std::span(core).first(n));
    if (n < kElfHeaderSize) {
      ASSERT_FALSE(h) << n;
      EXPECT_EQ(h.error(), Errc::kTruncated);
      continue;
    }
    ASSERT_TRUE(h) << n;
    EXPECT_EQ(h->headers_read, n >= table_end) << n;
    EXPECT_EQ(h->size_known, n >= table_end) << n;
    EXPECT_EQ(h->segments_read, std::min<std::size_t>(6, (n - kElfHeaderSize) / kProgramHeaderSize)) << n;
    EXPECT_LE(h->threads, 3u) << n;
    if (n >= kElfHeaderSize + kProgramHeaderSize) {
      EXPECT_EQ(h->needed, core.size()) << n;
      EXPECT_EQ(h->notes, n == core.size() ? NoteState::kComplete : NoteState::kCut) << n;
    } else {
      EXPECT_EQ(h->needed, table_end) << n;
      EXPECT_EQ(h->notes, NoteState::kNone) << n;
    }
  }
}

TEST(CoreHead, CountsOnlyTheCoreOwnersStatusNotes) {
  const auto core = make_core({{"CORE", kNtPrstatus, kPrstatusSize},
                               {"LINUX", kNtPrstatus, kPrstatusSize},  // another owner's type 1
                               {"CORF", kNtPrstatus, kPrstatusSize},
                               {"COREX", kNtPrstatus, kPrstatusSize},
                               {"CORE", kNtPrpsinfo, kPrpsinfoSize},
                               {"", kNtPrstatus, 0}},
                              0);
  const auto h = parse_core_head(core);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->notes, NoteState::kComplete);
  EXPECT_EQ(h->threads, 1u);
}

TEST(CoreHead, RefusesWhatIsNotA64BitLittleEndianCore) {
  const auto core = make_core(three_threads(), 1);
  const std::pair<std::size_t, std::uint8_t> changes[] = {
      {0, 0x7e}, {1, 'e'}, {3, 'G'},  // magic
      {4, 1},                         // ELFCLASS32
      {5, 2},                         // big-endian
      {6, 0},                         // EI_VERSION
      {16, 2},                        // ET_EXEC
  };
  for (const auto& [at, value] : changes) {
    auto bad = core;
    bad[at] = std::byte{value};
    const auto h = parse_core_head(bad);
    ASSERT_FALSE(h) << at;
    EXPECT_EQ(h.error(), Errc::kUnsupported) << at;
  }
  // Another machine's core is still a core: its notes count the same way.
  auto other = core;
  set_le16(other, 18, 183);  // EM_AARCH64
  const auto h = parse_core_head(other);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->machine, 183);
  EXPECT_EQ(h->threads, 3u);
}

TEST(CoreHead, RefusesAnElfHeaderThatContradictsItself) {
  const auto core = make_core(three_threads(), 1);
  auto ehsize = core;
  set_le16(ehsize, 52, 52);
  auto phentsize = core;
  set_le16(phentsize, 54, 32);
  auto inside = core;
  set_le64(inside, 32, 40);  // the table starts inside the ELF header
  auto beyond = core;
  set_le64(beyond, 32, ~std::uint64_t{0} - 60);  // its end wraps
  auto past = core;
  set_le64(past, 32, kMaxCoreOffset);  // ends past 2^63
  for (const auto* bad : {&ehsize, &phentsize, &inside, &beyond, &past}) {
    const auto h = parse_core_head(*bad);
    ASSERT_FALSE(h);
    EXPECT_EQ(h.error(), Errc::kMalformed);
  }
}

TEST(CoreHead, AProgramHeaderTableFarAwayIsNeededNotRead) {
  auto core = make_core(three_threads(), 1);
  set_le64(core, 32, 1 << 20);
  const auto h = parse_core_head(core);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->needed, (1u << 20) + 2 * kProgramHeaderSize);
  EXPECT_EQ(h->segments_read, 0u);
  EXPECT_FALSE(h->headers_read);
  EXPECT_FALSE(h->size_known);
  EXPECT_EQ(h->notes, NoteState::kNone);
}

TEST(CoreHead, ASegmentEndingPast2To63StopsTheParse) {
  for (const auto& [field, value] : {std::pair<std::size_t, std::uint64_t>{8, kMaxCoreOffset + 1},
                                     {32, kMaxCoreOffset},
                                     {32, ~std::uint64_t{0}}}) {
    auto core = make_core(three_threads(), 2);
    // The second PT_LOAD: its offset (8) or its file size (32).
    set_le64(core, kElfHeaderSize + 2 * kProgramHeaderSize + field, value);
    const auto h = parse_core_head(core);
    ASSERT_TRUE(h);
    EXPECT_FALSE(h->headers_read);
    EXPECT_FALSE(h->size_known);
    EXPECT_EQ(h->segments_read, 2u);
    EXPECT_EQ(h->threads, 3u) << "the notes' header came before it";
  }
}

TEST(CoreHead, ANoteOverrunningItsSegmentIsBrokenAndCountingStopsThere) {
  const auto good = make_core(three_threads(), 0);
  const std::size_t notes_at = kElfHeaderSize + kProgramHeaderSize;
  // The 8th note (the second thread's status): its descriptor size.
  std::size_t at = notes_at;
  const auto notes = three_threads();
  for (std::size_t i = 0; i < 7; ++i) at += note_size(notes[i].owner, notes[i].desc_size);
  for (const std::uint32_t descsz : {0xffffffffu, 0x10000000u, static_cast<std::uint32_t>(good.size())}) {
    auto core = good;
    store_le32(core, at + 4, descsz);
    const auto h = parse_core_head(core);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->notes, NoteState::kBroken) << descsz;
    EXPECT_EQ(h->threads, 1u) << descsz;
    EXPECT_TRUE(h->size_known) << "the program headers are fine";
  }
  // Bytes after the last note that cannot be one.
  auto tail = good;
  tail.resize(tail.size() + 8);
  set_le64(tail, kElfHeaderSize + 32, tail.size() - notes_at);  // the notes' p_filesz
  const auto h = parse_core_head(tail);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->notes, NoteState::kBroken);
  EXPECT_EQ(h->threads, 3u);
}

TEST(CoreHead, ExtendedNumberingTakesTheSizeFromTheSectionHeaderAtTheEnd) {
  auto core = make_core(three_threads(), 1);
  set_le16(core, 56, kPnXnum);
  set_le16(core, 58, 64);
  set_le64(core, 40, 1'000'000);  // e_shoff: after the data
  auto h = parse_core_head(core);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->segments, 0u) << "unknown: the count is in that section header";
  EXPECT_EQ(h->segments_read, 1u);
  EXPECT_TRUE(h->size_known);
  EXPECT_EQ(h->file_size, 1'000'064u);
  EXPECT_EQ(h->threads, 3u);
  set_le64(core, 40, 100);  // inside the program headers: not the kernel's layout
  h = parse_core_head(core);
  ASSERT_TRUE(h);
  EXPECT_FALSE(h->size_known);
  EXPECT_EQ(h->threads, 3u);
}

TEST(CoreHead, AHeaderWithoutSegmentsIsAWholeCore) {
  auto core = make_core({}, 0);
  core.resize(kElfHeaderSize);
  set_le16(core, 56, 0);
  const auto h = parse_core_head(core);
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->size_known);
  EXPECT_EQ(h->file_size, kElfHeaderSize);
  EXPECT_EQ(h->notes, NoteState::kNone);
}

// The first 20 KiB of a core Linux 6.18 wrote (core_pattern "core") for
// tests/integration/core_child kernel (four threads, SIGSEGV): its notes
// end at 18900. On the whole core, `readelf -n` counted 4 NT_PRSTATUS
// notes, `readelf -l` 48 program headers, and the file was 25993216 bytes
// long: the end of the last segment's data.
TEST(CoreHead, ReadsTheHeadOfARealKernelCore) {
  std::ifstream in(NP_DUMP_TEST_DATA_DIR "/kernel-core-head.bin", std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  ASSERT_EQ(bytes.size(), 20480u);
  const auto h = parse_core_head(std::as_bytes(std::span(bytes.data(), bytes.size())));
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->headers_read);
  EXPECT_EQ(h->notes, NoteState::kComplete);
  EXPECT_EQ(h->threads, 4u);
  EXPECT_EQ(h->segments, 48u);
  EXPECT_EQ(h->file_size, 25993216u);
  EXPECT_EQ(h->needed, 18900u);
}

}  // namespace
}  // namespace np::dump
