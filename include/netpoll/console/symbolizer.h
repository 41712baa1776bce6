// Symbolizer: names for code addresses, looked up inside a fatal-signal
// handler.
//
// The usual ways to name an address cannot run on the crash path: dladdr()
// takes the dynamic loader's lock (which the crashing thread may hold),
// backtrace_symbols() and __cxa_demangle() allocate. So the work is split:
//
//  - load() (setup) visits every object loaded now with dl_iterate_phdr —
//    the executable and each shared library — reads its function symbols
//    from the ELF file on disk (.symtab when the file has one, else
//    .dynsym), relocates them by the object's load bias and keeps them in
//    preallocated sorted tables plus one blob of names;
//  - lookup() (any context) is a binary search over that memory: no lock, no
//    dl* call, no system call, no allocation.
//
// Names are returned mangled ("_ZN2np4core7Netpoll8send_udpE..."): the
// demangler allocates, so demangling is left to whoever reads the report
// (c++filt).
//
// Limits, by design of a snapshot:
//  - objects dlopen()ed after load() are unknown (lookup says "no object");
//    after a dlclose() their old addresses may be named wrongly;
//  - a file that changed on disk since it was loaded is detected by its GNU
//    build-id when both carry one, and its names are not used (wrong names
//    are worse than none);
//  - objects with no file (the vDSO) are known by range only, without names;
//  - only what the file's symbol table holds can be named: a stripped
//    library has .dynsym only, so its static functions show as "??" with the
//    object and offset (addr2line can name them from the debug file).
// x86-64 Linux only: the ELF reader accepts 64-bit little-endian x86-64
// files and nothing else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "netpoll/base/guarded.h"
#include "netpoll/base/result.h"

namespace np::console {

// What lookup() knows about one address.
struct Symbol {
  const char* object = nullptr;    // basename of the object's file, or nullptr: in no loaded object
  std::uintptr_t base = 0;         // the object's load bias: pc - base is what addr2line takes
  const char* function = nullptr;  // mangled name of the enclosing function, or nullptr: unknown
  std::uintptr_t offset = 0;       // pc - the function's first byte (0 when no function)
};

// One object as load() found it; for diagnostics ("why has libfoo no names?").
struct LoadedObject {
  const char* path = nullptr;   // as the loader names it (the executable's real path)
  std::uintptr_t base = 0;      // load bias
  std::uintptr_t start = 0;     // lowest address of its PT_LOAD segments
  std::uintptr_t end = 0;       // one past the highest
  std::size_t functions = 0;    // function symbols kept
  const char* note = nullptr;   // why it has no names (cannot open, build-id differs, ...), or nullptr
};

class Symbolizer;
// Unmaps the region a Symbolizer lives in (see load()).
struct SymbolizerUnmap {
  void operator()(Symbolizer* s) const noexcept;
};
using SymbolizerPtr = std::unique_ptr<Symbolizer, SymbolizerUnmap>;

class Symbolizer {
 public:
  // Reads the symbols of every object loaded now. Fails only when the
  // executable's file cannot be opened (e.g. /proc is not mounted); any
  // other object whose names cannot be read is kept without them, and
  // objects() says why. The symbolizer and its tables live in one guarded
  // mapping, sealed read-only (base/guarded.h): a dying program's stray
  // writes cannot change the names a crash report prints.
  // Context: setup.
  [[nodiscard]] static SetupResult<SymbolizerPtr> load();

  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // The object and function containing `pc`. For a return address taken from
  // a stack, pass pc - 1: the call may be the last instruction of its
  // function, and the return address then belongs to the next one.
  // Context: any (reads only memory filled by load()).
  Symbol lookup(std::uintptr_t pc) const noexcept;

  // Every object load() saw, ordered by address. Context: any.
  std::span<const LoadedObject> objects() const noexcept { return objects_; }

 private:
  // lookup() finds an object by binary search over ranges_ (parallel to
  // objects_), then its function by binary search over its slice of
  // functions_. Names are offsets into names_.
  struct Function {
    std::uintptr_t start;
    std::uintptr_t end;  // one past the last byte
    std::size_t name_at;
  };
  struct Range {
    std::uintptr_t start;
    std::uintptr_t end;
    std::size_t first;  // its functions are functions_[first, first + count)
    std::size_t count;
    std::size_t basename_at;
  };

  friend struct SymbolizerUnmap;
  Symbolizer() = default;

  GuardedRegion region_;                  // holds this object and every table below
  std::span<const LoadedObject> objects_;  // sorted by start; pointers into names_
  std::span<const Range> ranges_;          // ranges_[i] is objects_[i]
  std::span<const Function> functions_;    // per object sorted by start, not overlapping
  std::span<const char> names_;            // NUL-terminated names
};

}  // namespace np::console
