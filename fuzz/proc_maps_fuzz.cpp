// The core writer's parsers of /proc/self/smaps, maps and coredump_filter
// (dump/proc_maps.h), line by line as the writer feeds them, and the dump
// decision on whatever parses. The kernel writes these files, but the
// crash path trusts nothing it did not check: no input may read out of
// bounds or make a parsed mapping inconsistent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "netpoll/dump/proc_maps.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace np::dump;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static_cast<void>(parse_coredump_filter(text));
  std::string_view rest = text;
  MappingFacts facts;
  bool have = false;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (auto m = parse_maps_line(line)) {
      // What the writer relies on: a non-empty range, a path inside the line.
      if (m->end <= m->start) std::abort();
      if (!m->path.empty() && (m->path.data() < line.data() || m->path.data() + m->path.size() > line.data() + line.size()))
        std::abort();
      if (have) static_cast<void>(dump_extent(facts, kDefaultCoredumpFilter));
      facts = MappingFacts{};
      facts.line = *m;
      facts.have_smaps = true;
      have = true;
      static_cast<void>(classify_path(m->path));
      static_cast<void>(is_anonymous_shared(*m));
      continue;
    }
    if (auto kb = parse_smaps_kb(line, "Anonymous")) {
      if (*kb % 1024 != 0) std::abort();
      facts.written = *kb > 0;
    }
    if (auto f = parse_vm_flags(line)) facts.flags = *f;
  }
  if (have) {
    for (std::uint32_t filter : {0u, kDefaultCoredumpFilter, 0x7fu}) static_cast<void>(dump_extent(facts, filter));
  }
  return 0;
}
