// Tests only: reads an ELF core back with the C library's own structs
// (<elf.h>) as the independent oracle of the format, for dump's tests.
#pragma once

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace np::dump::testing {

struct Note {
  std::string owner;
  std::uint32_t type = 0;
  std::uint64_t desc_offset = 0;  // in the file
  std::vector<std::byte> desc;
};

class CoreFile {
 public:
  // The whole file; empty when it cannot be read.
  static CoreFile read(const std::string& path) {
    CoreFile c;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return c;
    const off_t size = ::lseek(fd, 0, SEEK_END);
    c.bytes_.resize(static_cast<std::size_t>(size > 0 ? size : 0));
    std::size_t got = 0;
    while (got < c.bytes_.size()) {
      const ssize_t r = ::pread(fd, c.bytes_.data() + got, c.bytes_.size() - got, static_cast<off_t>(got));
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    c.bytes_.resize(got);
    ::close(fd);
    return c;
  }

  std::size_t size() const { return bytes_.size(); }
  const std::vector<std::byte>& bytes() const { return bytes_; }

  std::optional<Elf64_Ehdr> header() const {
    if (bytes_.size() < sizeof(Elf64_Ehdr)) return std::nullopt;
    Elf64_Ehdr h;
    std::memcpy(&h, bytes_.data(), sizeof h);
    return h;
  }

  std::vector<Elf64_Phdr> program_headers() const {
    std::vector<Elf64_Phdr> out;
    const auto h = header();
    if (!h) return out;
    for (std::size_t i = 0; i < h->e_phnum; ++i) {
      const std::size_t at = h->e_phoff + i * sizeof(Elf64_Phdr);
      if (at + sizeof(Elf64_Phdr) > bytes_.size()) break;
      Elf64_Phdr p;
      std::memcpy(&p, bytes_.data() + at, sizeof p);
      out.push_back(p);
    }
    return out;
  }

  // The notes of the first PT_NOTE, in order.
  std::vector<Note> notes() const {
    std::vector<Note> out;
    for (const Elf64_Phdr& p : program_headers()) {
      if (p.p_type != PT_NOTE) continue;
      std::size_t at = p.p_offset;
      const std::size_t end = p.p_offset + p.p_filesz;
      if (end > bytes_.size()) return out;
      while (at + sizeof(Elf64_Nhdr) <= end) {
        Elf64_Nhdr n;
        std::memcpy(&n, bytes_.data() + at, sizeof n);
        at += sizeof n;
        Note note;
        note.type = n.n_type;
        const std::size_t name_len = n.n_namesz > 0 ? n.n_namesz - 1 : 0;
        if (at + n.n_namesz > end) return out;
        note.owner.assign(reinterpret_cast<const char*>(bytes_.data() + at), name_len);
        at += (n.n_namesz + 3) / 4 * 4;
        if (at + n.n_descsz > end) return out;
        note.desc_offset = at;
        note.desc.assign(bytes_.data() + at, bytes_.data() + at + n.n_descsz);
        at += (n.n_descsz + 3) / 4 * 4;
        out.push_back(std::move(note));
      }
      break;
    }
    return out;
  }

  // `len` bytes of memory at `addr` as the core holds them (zeros where a
  // dumped segment's page was left out); nothing when no PT_LOAD dumped
  // that address.
  std::optional<std::vector<std::byte>> memory(std::uint64_t addr, std::size_t len) const {
    for (const Elf64_Phdr& p : program_headers()) {
      if (p.p_type != PT_LOAD || addr < p.p_vaddr || addr + len > p.p_vaddr + p.p_filesz) continue;
      const std::uint64_t at = p.p_offset + (addr - p.p_vaddr);
      std::vector<std::byte> out(len);
      for (std::size_t i = 0; i < len; ++i) out[i] = at + i < bytes_.size() ? bytes_[at + i] : std::byte{0};
      return out;
    }
    return std::nullopt;
  }

  std::optional<Elf64_Phdr> load_segment_at(std::uint64_t addr) const {
    for (const Elf64_Phdr& p : program_headers()) {
      if (p.p_type == PT_LOAD && addr >= p.p_vaddr && addr < p.p_vaddr + p.p_memsz) return p;
    }
    return std::nullopt;
  }

 private:
  std::vector<std::byte> bytes_;
};

}  // namespace np::dump::testing
