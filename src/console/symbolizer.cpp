// Symbolizer (see symbolizer.h): an ELF symbol-table reader that runs at
// setup, and a lookup that only searches what it kept.
#include "netpoll/console/symbolizer.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

namespace np::console {
namespace {

// Why an object has no names (LoadedObject::note). Static text: the
// objects() table may be read from a signal handler.
constexpr const char* kNoteCannotOpen = "cannot open or map its file";
constexpr const char* kNoteNotX8664Elf = "its file is not a 64-bit little-endian x86-64 ELF file";
constexpr const char* kNoteBuildIdDiffers = "its file's build-id differs from the loaded object's (replaced on disk?)";
constexpr const char* kNoteNoSymbols = "its file has no readable symbol table";
constexpr const char* kNoteVdso = "the vDSO has no file";
constexpr const char* kNoteNoFile = "the loader gives no file name";

// The main program's file, whatever its name: the kernel keeps this link to
// the executable it mapped, even if the path has since been replaced.
constexpr const char* kExeLink = "/proc/self/exe";

// GNU build-id note (binutils --build-id): owner "GNU\0", type 3.
constexpr std::string_view kGnuNoteOwner{"GNU\0", 4};

// A slice of `bytes`, or nothing if [off, off+len) is not inside it. Every
// offset and size read from a file goes through here (or read_at): the file
// is not trusted to be well-formed.
std::optional<std::span<const std::byte>> slice(std::span<const std::byte> bytes, std::uint64_t off,
                                                std::uint64_t len) {
  if (off > bytes.size() || len > bytes.size() - off) return std::nullopt;
  return bytes.subspan(static_cast<std::size_t>(off), static_cast<std::size_t>(len));
}

// A T copied out of `bytes` at `off`: memcpy, because file offsets carry no
// alignment promise.
template <class T>
std::optional<T> read_at(std::span<const std::byte> bytes, std::uint64_t off) {
  const auto s = slice(bytes, off, sizeof(T));
  if (!s) return std::nullopt;
  T v;
  std::memcpy(&v, s->data(), sizeof v);
  return v;
}

// The descriptor of the NT_GNU_BUILD_ID note among `notes`, or empty.
// Notes are padded to their segment's alignment: 4 in the gABI, 8 for the
// segments GNU property notes live in.
std::span<const std::byte> find_build_id(std::span<const std::byte> notes, std::uint64_t align) {
  const std::size_t a = align == 8 ? 8 : 4;
  const auto pad = [a](std::uint64_t n) { return (n + a - 1) / a * a; };
  std::uint64_t at = 0;
  while (auto hdr = read_at<Elf64_Nhdr>(notes, at)) {
    at += sizeof(Elf64_Nhdr);
    const auto name = slice(notes, at, hdr->n_namesz);
    if (!name) break;
    at += pad(hdr->n_namesz);
    const auto desc = slice(notes, at, hdr->n_descsz);
    if (!desc) break;
    at += pad(hdr->n_descsz);
    const std::string_view owner(reinterpret_cast<const char*>(name->data()), name->size());
    if (hdr->n_type == NT_GNU_BUILD_ID && owner == kGnuNoteOwner) return *desc;
  }
  return {};
}

// One loaded object as dl_iterate_phdr shows it.
struct Scan {
  std::string path;       // the loader's name; the executable's real path for the main program
  std::string open_path;  // what to open: kExeLink for the main program
  bool main_program = false;
  std::uintptr_t bias = 0;
  std::uintptr_t start = 0;
  std::uintptr_t end = 0;
  std::span<const std::byte> build_id;  // in the loaded image (mapped while the object is)
};

int collect(dl_phdr_info* info, std::size_t, void* arg) {
  auto& scans = *static_cast<std::vector<Scan>*>(arg);
  Scan s;
  // glibc visits the main program first (dl_iterate_phdr(3)).
  s.main_program = scans.empty();
  s.path = info->dlpi_name != nullptr ? info->dlpi_name : "";
  s.bias = info->dlpi_addr;
  s.start = UINTPTR_MAX;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD) {
      s.start = std::min<std::uintptr_t>(s.start, s.bias + ph.p_vaddr);
      s.end = std::max<std::uintptr_t>(s.end, s.bias + ph.p_vaddr + ph.p_memsz);
    } else if (ph.p_type == PT_NOTE && s.build_id.empty()) {
      // PT_NOTE lies inside a PT_LOAD segment: readable for as long as the
      // object stays loaded.
      const std::span<const std::byte> mem(reinterpret_cast<const std::byte*>(s.bias + ph.p_vaddr), ph.p_memsz);
      s.build_id = find_build_id(mem, ph.p_align);
    }
  }
  if (s.start >= s.end) return 0;  // nothing mapped: nothing to name
  if (s.main_program) {
    s.open_path = kExeLink;
    char buf[PATH_MAX];
    const ssize_t n = ::readlink(kExeLink, buf, sizeof buf);
    s.path = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string(kExeLink);
  } else {
    s.open_path = s.path;
    if (s.path.empty()) s.path = "[unnamed]";  // a report must still show something
  }
  scans.push_back(std::move(s));
  return 0;
}

// A read-only private mapping of a whole file.
class MappedFile {
 public:
  // 0, or the errno of what failed.
  int open(const char* path) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    struct stat st {};
    int err = 0;
    if (::fstat(fd, &st) != 0) {
      err = errno;
    } else if (st.st_size <= 0) {
      err = ENOEXEC;
    } else {
      void* p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        err = errno;
      } else {
        bytes_ = {static_cast<const std::byte*>(p), static_cast<std::size_t>(st.st_size)};
      }
    }
    ::close(fd);  // the mapping holds the file
    return err;
  }
  ~MappedFile() {
    if (!bytes_.empty()) ::munmap(const_cast<std::byte*>(bytes_.data()), bytes_.size());
  }
  std::span<const std::byte> bytes() const { return bytes_; }

 private:
  std::span<const std::byte> bytes_;
};

// A function symbol read from a file, before the names are copied out.
struct Candidate {
  std::uintptr_t start;
  std::uintptr_t end;
  std::string_view name;  // inside the mapped file
  int underscores;        // leading '_' count: "write" is a better name than "__write"
  int binding_rank;       // global before weak before local
};

int binding_rank(unsigned char info) {
  switch (ELF64_ST_BIND(info)) {
    case STB_GLOBAL: return 0;
    case STB_WEAK: return 1;
    case STB_LOCAL: return 2;
    default: return 3;
  }
}

// The .symtab (else .dynsym) function symbols of the ELF file `file` that
// fall inside `obj`, relocated by its bias; nullptr, or a note saying why
// there are none.
const char* read_functions(std::span<const std::byte> file, const Scan& obj, std::vector<Candidate>& out) {
  const auto eh = read_at<Elf64_Ehdr>(file, 0);
  if (!eh || std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64) {
    return kNoteNotX8664Elf;
  }

  // The same file as the one loaded? Compare build-ids when both have one.
  if (!obj.build_id.empty() && eh->e_phentsize == sizeof(Elf64_Phdr)) {
    for (std::uint64_t i = 0; i < eh->e_phnum; ++i) {
      const auto ph = read_at<Elf64_Phdr>(file, eh->e_phoff + i * sizeof(Elf64_Phdr));
      if (!ph) break;
      if (ph->p_type != PT_NOTE) continue;
      const auto notes = slice(file, ph->p_offset, ph->p_filesz);
      if (!notes) continue;
      const auto id = find_build_id(*notes, ph->p_align);
      if (id.empty()) continue;
      if (!std::equal(id.begin(), id.end(), obj.build_id.begin(), obj.build_id.end())) return kNoteBuildIdDiffers;
      break;
    }
  }

  if (eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr)) return kNoteNoSymbols;
  const auto section = [&](std::uint64_t i) { return read_at<Elf64_Shdr>(file, eh->e_shoff + i * sizeof(Elf64_Shdr)); };
  std::uint64_t shnum = eh->e_shnum;
  if (shnum == 0) {  // more than SHN_LORESERVE sections: the count is in section 0 (gABI)
    const auto s0 = section(0);
    if (!s0) return kNoteNoSymbols;
    shnum = s0->sh_size;
  }
  std::optional<Elf64_Shdr> symtab, dynsym;
  for (std::uint64_t i = 0; i < shnum; ++i) {
    const auto sh = section(i);
    if (!sh) return kNoteNoSymbols;
    if (sh->sh_type == SHT_SYMTAB && !symtab) symtab = sh;
    if (sh->sh_type == SHT_DYNSYM && !dynsym) dynsym = sh;
  }
  const auto& table = symtab ? symtab : dynsym;
  if (!table || table->sh_entsize != sizeof(Elf64_Sym) || table->sh_link >= shnum) return kNoteNoSymbols;
  const auto strtab = section(table->sh_link);
  if (!strtab || strtab->sh_type != SHT_STRTAB) return kNoteNoSymbols;
  const auto syms = slice(file, table->sh_offset, table->sh_size);
  const auto strings = slice(file, strtab->sh_offset, strtab->sh_size);
  if (!syms || !strings) return kNoteNoSymbols;
  const std::string_view text(reinterpret_cast<const char*>(strings->data()), strings->size());

  for (std::uint64_t off = sizeof(Elf64_Sym); off + sizeof(Elf64_Sym) <= syms->size(); off += sizeof(Elf64_Sym)) {
    const auto sym = read_at<Elf64_Sym>(*syms, off);
    // STT_FUNC only: an STT_GNU_IFUNC symbol's value is its resolver, and
    // naming the resolver "memcpy" would mislead.
    if (!sym || ELF64_ST_TYPE(sym->st_info) != STT_FUNC) continue;
    if (sym->st_shndx == SHN_UNDEF || sym->st_shndx == SHN_ABS) continue;
    if (sym->st_name >= text.size()) continue;
    const std::size_t nul = text.find('\0', sym->st_name);
    if (nul == std::string_view::npos || nul == sym->st_name) continue;
    const std::uintptr_t start = obj.bias + sym->st_value;
    if (start < obj.start || start >= obj.end) continue;
    // A symbol without a size (hand-written assembly, crti's _init) names
    // only its first byte: stretching it to the next symbol would name PLT
    // stubs and padding after it wrongly.
    const std::uintptr_t size = sym->st_size == 0 ? 1 : sym->st_size;
    const std::uintptr_t end = size > obj.end - start ? obj.end : start + size;
    const std::string_view name = text.substr(sym->st_name, nul - sym->st_name);
    const auto underscores = static_cast<int>(std::min(name.find_first_not_of('_'), name.size()));
    out.push_back({start, end, name, underscores, binding_rank(sym->st_info)});
  }
  return nullptr;
}

// Sorts by address, keeps one name per address (the widest, then the one a
// person would write: fewest leading underscores, global before weak before
// local), and cuts a function short where the next one starts, so that the
// table has no overlaps and a binary search finds the one answer.
void settle(std::vector<Candidate>& c) {
  std::sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) {
    return std::tuple(a.start, b.end, a.underscores, a.binding_rank, a.name) <
           std::tuple(b.start, a.end, b.underscores, b.binding_rank, b.name);
  });
  c.erase(std::unique(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) { return a.start == b.start; }),
          c.end());
  for (std::size_t i = 0; i + 1 < c.size(); ++i) c[i].end = std::min(c[i].end, c[i + 1].start);
}

}  // namespace

SetupResult<SymbolizerPtr> Symbolizer::load() {
  std::vector<Scan> scans;
  ::dl_iterate_phdr(collect, &scans);
  std::sort(scans.begin(), scans.end(), [](const Scan& a, const Scan& b) { return a.start < b.start; });
  const auto vdso = static_cast<std::uintptr_t>(::getauxval(AT_SYSINFO_EHDR));

  // Built in vectors, then copied whole into the guarded region.
  struct Building {
    std::vector<LoadedObject> objects_;
    std::vector<Range> ranges_;
    std::vector<Function> functions_;
    std::vector<char> names_;
  };
  auto sym = std::make_unique<Building>();
  std::vector<std::size_t> path_at;  // offsets into names_, turned into pointers once it stops growing
  std::vector<Candidate> found;
  for (const Scan& s : scans) {
    LoadedObject obj;
    Range range{s.start, s.end, sym->functions_.size(), 0, 0};
    found.clear();
    MappedFile file;
    if (vdso >= s.start && vdso < s.end) {
      obj.note = kNoteVdso;
    } else if (s.open_path.empty()) {
      obj.note = kNoteNoFile;
    } else if (const int err = file.open(s.open_path.c_str()); err != 0) {
      if (s.main_program) {
        return setup_error(Errc::kIo, "symbolizer: cannot read the executable " + s.open_path + ": " +
                                          std::strerror(err) + (err == ENOENT ? " (is /proc mounted?)" : ""));
      }
      obj.note = kNoteCannotOpen;
    } else {
      obj.note = read_functions(file.bytes(), s, found);
    }
    settle(found);

    path_at.push_back(sym->names_.size());
    sym->names_.insert(sym->names_.end(), s.path.begin(), s.path.end());
    sym->names_.push_back('\0');
    const std::size_t slash = s.path.rfind('/');
    range.basename_at = path_at.back() + (slash == std::string::npos ? 0 : slash + 1);
    for (const Candidate& c : found) {
      sym->functions_.push_back({c.start, c.end, sym->names_.size()});
      sym->names_.insert(sym->names_.end(), c.name.begin(), c.name.end());
      sym->names_.push_back('\0');
    }
    range.count = found.size();
    obj.base = s.bias;
    obj.start = s.start;
    obj.end = s.end;
    obj.functions = found.size();
    sym->objects_.push_back(obj);
    sym->ranges_.push_back(range);
  }
  const std::size_t bytes = sizeof(Symbolizer) + 64 + sym->objects_.size() * sizeof(LoadedObject) +
                            sym->ranges_.size() * sizeof(Range) + sym->functions_.size() * sizeof(Function) +
                            sym->names_.size();
  auto region = GuardedRegion::map(bytes, "the symbol tables");
  if (!region) return std::unexpected(region.error());
  auto* objects = region->make_array<LoadedObject>(sym->objects_.size());
  auto* ranges = static_cast<Range*>(region->take(sym->ranges_.size() * sizeof(Range), alignof(Range)));
  auto* functions = static_cast<Function*>(region->take(sym->functions_.size() * sizeof(Function), alignof(Function)));
  auto* names = static_cast<char*>(region->take(sym->names_.size(), 1));
  void* at = region->take(sizeof(Symbolizer), alignof(Symbolizer));
  Symbolizer* out = at != nullptr ? new (at) Symbolizer() : nullptr;
  if (objects == nullptr || (ranges == nullptr && !sym->ranges_.empty()) ||
      (functions == nullptr && !sym->functions_.empty()) || (names == nullptr && !sym->names_.empty()) ||
      out == nullptr)
    return setup_error(Errc::kNoBuffer, "symbolizer: the tables do not fit their region");
  std::copy(sym->ranges_.begin(), sym->ranges_.end(), ranges);
  std::copy(sym->functions_.begin(), sym->functions_.end(), functions);
  std::copy(sym->names_.begin(), sym->names_.end(), names);
  for (std::size_t i = 0; i < sym->objects_.size(); ++i) {
    objects[i] = sym->objects_[i];
    objects[i].path = names + path_at[i];
  }
  out->objects_ = {objects, sym->objects_.size()};
  out->ranges_ = {ranges, sym->ranges_.size()};
  out->functions_ = {functions, sym->functions_.size()};
  out->names_ = {names, sym->names_.size()};
  Symbolizer* placed = out;
  placed->region_ = std::move(*region);
  if (!placed->region_.seal()) {
    SymbolizerUnmap{}(placed);
    return setup_error(Errc::kIo, "symbolizer: cannot seal the tables");
  }
  return SymbolizerPtr(placed);
}

void SymbolizerUnmap::operator()(Symbolizer* s) const noexcept {
  if (s == nullptr) return;
  s->region_.unseal();
  GuardedRegion region = std::move(s->region_);  // unmapped last, with the object in it
  s->~Symbolizer();
}



Symbol Symbolizer::lookup(std::uintptr_t pc) const noexcept {
  Symbol out;
  // The last object starting at or below pc, if pc is inside it.
  auto r = std::upper_bound(ranges_.begin(), ranges_.end(), pc,
                            [](std::uintptr_t v, const Range& x) { return v < x.start; });
  if (r == ranges_.begin()) return out;
  --r;
  if (pc >= r->end) return out;
  out.object = names_.data() + r->basename_at;
  out.base = objects_[static_cast<std::size_t>(r - ranges_.begin())].base;

  const auto first = functions_.begin() + r->first;
  const auto last = first + r->count;
  auto f = std::upper_bound(first, last, pc, [](std::uintptr_t v, const Function& x) { return v < x.start; });
  if (f == first) return out;
  --f;
  if (pc >= f->end) return out;
  out.function = names_.data() + f->name_at;
  out.offset = pc - f->start;
  return out;
}

}  // namespace np::console
