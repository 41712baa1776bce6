#include "netpoll/dump/proc_maps.h"

#include "netpoll/base/hex.h"

namespace np::dump {
namespace {

// A cursor over one line; every read is bounded by the line.
class Cursor {
 public:
  explicit constexpr Cursor(std::string_view s) noexcept : s_(s) {}
  bool done() const noexcept { return at_ >= s_.size(); }
  char peek() const noexcept { return done() ? '\0' : s_[at_]; }
  bool take(char c) noexcept {
    if (peek() != c || done()) return false;
    ++at_;
    return true;
  }
  void skip_spaces() noexcept {
    while (!done() && (s_[at_] == ' ' || s_[at_] == '\t')) ++at_;
  }
  // 1..16 hex digits.
  bool hex(std::uint64_t& v) noexcept {
    v = 0;
    std::size_t n = 0;
    while (!done()) {
      const int d = hex_digit(s_[at_]);
      if (d < 0) break;
      if (++n > 16) return false;
      v = (v << 4) | static_cast<std::uint64_t>(d);
      ++at_;
    }
    return n > 0;
  }
  // 1..19 decimal digits (fits 64 bits).
  bool dec(std::uint64_t& v) noexcept {
    v = 0;
    std::size_t n = 0;
    while (!done() && s_[at_] >= '0' && s_[at_] <= '9') {
      if (++n > 19) return false;
      v = v * 10 + static_cast<std::uint64_t>(s_[at_] - '0');
      ++at_;
    }
    return n > 0;
  }
  std::string_view rest() const noexcept { return done() ? std::string_view{} : s_.substr(at_); }

 private:
  std::string_view s_;
  std::size_t at_ = 0;
};

bool perm(char c, char yes, bool& out) noexcept {
  if (c == yes) {
    out = true;
    return true;
  }
  out = false;
  return c == '-';
}

}  // namespace

Result<MapsLine> parse_maps_line(std::string_view line) noexcept {
  Cursor c(line);
  MapsLine m;
  std::uint64_t major = 0, minor = 0;
  if (!c.hex(m.start) || !c.take('-') || !c.hex(m.end) || m.end <= m.start || !c.take(' '))
    return fail(Errc::kMalformed);
  const std::string_view p = c.rest().substr(0, 4);
  if (p.size() != 4 || !perm(p[0], 'r', m.read) || !perm(p[1], 'w', m.write) || !perm(p[2], 'x', m.exec))
    return fail(Errc::kMalformed);
  if (p[3] != 's' && p[3] != 'p') return fail(Errc::kMalformed);
  m.shared = p[3] == 's';
  for (int i = 0; i < 4; ++i) c.take(p[static_cast<std::size_t>(i)]);
  if (!c.take(' ') || !c.hex(m.offset) || !c.take(' ') || !c.hex(major) || !c.take(':') || !c.hex(minor) ||
      !c.take(' ') || !c.dec(m.inode))
    return fail(Errc::kMalformed);
  if (!c.done() && c.peek() != ' ') return fail(Errc::kMalformed);
  c.skip_spaces();
  m.path = c.rest();
  return m;
}

Result<std::uint64_t> parse_smaps_kb(std::string_view line, std::string_view name) noexcept {
  if (line.size() <= name.size() || line.substr(0, name.size()) != name || line[name.size()] != ':')
    return fail(Errc::kNotFound);
  Cursor c(line.substr(name.size() + 1));
  c.skip_spaces();
  std::uint64_t kb = 0;
  if (!c.dec(kb) || kb > (~std::uint64_t{0} >> 10)) return fail(Errc::kMalformed);
  c.skip_spaces();
  if (c.rest() != "kB") return fail(Errc::kMalformed);
  return kb << 10;
}

Result<VmFlags> parse_vm_flags(std::string_view line) noexcept {
  constexpr std::string_view kName = "VmFlags:";
  if (line.substr(0, kName.size()) != kName) return fail(Errc::kNotFound);
  VmFlags f;
  std::string_view rest = line.substr(kName.size());
  // Two-letter names separated by spaces; a line has at most a few dozen.
  for (std::size_t guard = 0; guard < 128 && !rest.empty(); ++guard) {
    const std::size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest = rest.substr(start);
    const std::size_t end = rest.find(' ');
    const std::string_view word = rest.substr(0, end);
    if (word == "dd") f.dont_dump = true;
    else if (word == "io") f.io = true;
    else if (word == "ht") f.hugetlb = true;
    if (end == std::string_view::npos) break;
    rest = rest.substr(end);
  }
  return f;
}

Result<std::uint32_t> parse_coredump_filter(std::string_view text) noexcept {
  Cursor c(text);
  std::uint64_t v = 0;
  if (!c.hex(v) || v > 0xffffffffu) return fail(Errc::kMalformed);
  c.skip_spaces();
  c.take('\n');
  if (!c.done()) return fail(Errc::kMalformed);
  return static_cast<std::uint32_t>(v);
}

MappingKind classify_path(std::string_view path) noexcept {
  if (path.empty()) return MappingKind::kAnonymous;
  if (path.front() != '[') return MappingKind::kFile;  // a path, or anon_inode:[...] (a file of the kernel's)
  if (path == "[vdso]" || path == "[vsyscall]") return MappingKind::kVdso;
  if (path == "[vvar]" || path == "[vvar_vclock]" || path == "[uprobes]") return MappingKind::kNeverDumped;
  return MappingKind::kAnonymous;  // [heap], [stack], [anon:name], [anon_shmem:name]
}

bool is_anonymous_shared(const MapsLine& m) noexcept {
  if (!m.shared) return false;
  constexpr std::string_view kDeleted = " (deleted)";
  const std::string_view p = m.path;
  // MAP_SHARED|MAP_ANONYMOUS shows as "/dev/zero (deleted)", a memfd as
  // "/memfd:name (deleted)": shared memory whose file has no name left,
  // which is what the kernel asks (no links to the inode).
  if (p.size() >= kDeleted.size() && p.substr(p.size() - kDeleted.size()) == kDeleted) return true;
  if (p.substr(0, 5) == "/SYSV") return true;  // System V shared memory
  return classify_path(p) == MappingKind::kAnonymous;  // [anon_shmem:name]
}

DumpExtent dump_extent(const MappingFacts& m, std::uint32_t filter) noexcept {
  const MapsLine& l = m.line;
  const MappingKind kind = classify_path(l.path);
  if (!l.read) return DumpExtent::kNothing;
  if (kind == MappingKind::kVdso) return DumpExtent::kWhole;
  if (kind == MappingKind::kNeverDumped || m.flags.dont_dump) return DumpExtent::kNothing;
  const auto whole_if = [&](std::uint32_t bit) { return (filter & bit) != 0 ? DumpExtent::kWhole : DumpExtent::kNothing; };
  // Without smaps, anonymous huge pages still show by their name.
  if (m.flags.hugetlb || l.path.substr(0, 15) == "/anon_hugepage ")
    return whole_if(l.shared ? kFilterHugeShared : kFilterHugePrivate);
  if (m.flags.io) return DumpExtent::kNothing;
  if (l.shared) return whole_if(is_anonymous_shared(l) ? kFilterAnonShared : kFilterFileShared);
  const bool written = m.have_smaps ? m.written : (kind == MappingKind::kAnonymous || l.write);
  if (written && (filter & kFilterAnonPrivate) != 0) return DumpExtent::kWhole;
  if (kind != MappingKind::kFile) return DumpExtent::kNothing;
  if ((filter & kFilterFilePrivate) != 0) return DumpExtent::kWhole;
  if ((filter & kFilterElfHeaders) != 0 && l.offset == 0) return DumpExtent::kFirstPageIfElf;
  return DumpExtent::kNothing;
}

}  // namespace np::dump
