#include "netpoll/console/symbolizer.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "alloc_guard.h"
#include "test_support.h"

// Functions with names we know, in the test binary. noipa: never inlined,
// cloned (which would rename the copy, "foo.constprop.0") or merged with a
// look-alike.
extern "C" [[gnu::noipa]] int np_symtest_marker(int x) { return x * 3 + 1; }

namespace np::console::symtest {
[[gnu::noipa]] int twice(int x) { return x * 2; }  // mangled: _ZN2np7console7symtest5twiceEi
}  // namespace np::console::symtest

namespace np::console {
namespace {

std::string_view view(const char* s) { return s == nullptr ? "(null)" : s; }

// A directory of our own under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/np-symbolizer-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(Symbolizer, NamesAnExternCFunctionOfTheTestBinaryByAnAddressInsideIt) {
  const std::uintptr_t fn = address_of(&np_symtest_marker);
  const Symbol s = test_symbolizer().lookup(fn + 2);
  EXPECT_EQ(view(s.function), "np_symtest_marker");
  EXPECT_EQ(s.offset, 2u);
  EXPECT_EQ(view(s.object), "console_test");
  EXPECT_LE(s.base, fn);
}

TEST(Symbolizer, GivesCppNamesMangled) {
  const Symbol s = test_symbolizer().lookup(address_of(&symtest::twice) + 1);
  EXPECT_EQ(view(s.function), "_ZN2np7console7symtest5twiceEi");
  EXPECT_EQ(s.offset, 1u);
  EXPECT_EQ(np_symtest_marker(1), 4);  // (keeps the marker referenced)
}

// libc's own getpid, asked of libc itself: in the sanitizer build the
// executable's getpid may be an interceptor in libasan.
std::uintptr_t libc_getpid() {
  void* libc = ::dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  if (libc == nullptr) return 0;
  const auto fn = address_of(::dlsym(libc, "getpid"));
  ::dlclose(libc);
  return fn;
}

TEST(Symbolizer, NamesALibcFunctionInLibc) {
  const std::uintptr_t fn = libc_getpid();
  ASSERT_NE(fn, 0u);
  Dl_info info{};
  ASSERT_NE(::dladdr(reinterpret_cast<void*>(fn), &info), 0);
  ASSERT_EQ(std::filesystem::path(info.dli_fname).filename(), "libc.so.6");

  const Symbol s = test_symbolizer().lookup(fn + 1);
  EXPECT_EQ(view(s.object), "libc.so.6");
  // libc exports getpid (weak) and __getpid (global) at one address; the
  // name without underscores is the one a person wrote.
  EXPECT_EQ(view(s.function), "getpid");
  EXPECT_EQ(s.offset, 1u);
  EXPECT_EQ(fn + 1 - s.offset, address_of(info.dli_saddr));
  EXPECT_EQ(s.base, address_of(info.dli_fbase));
}

TEST(Symbolizer, AnAddressInNoObjectHasNoName) {
  for (const std::uintptr_t pc : {std::uintptr_t{0}, std::uintptr_t{0x1000}, ~std::uintptr_t{0}}) {
    const Symbol s = test_symbolizer().lookup(pc);
    EXPECT_EQ(s.object, nullptr) << pc;
    EXPECT_EQ(s.function, nullptr) << pc;
  }
  // Mapped memory that belongs to no ELF object (heap-like anonymous memory).
  void* anon = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(anon, MAP_FAILED);
  const Symbol s = test_symbolizer().lookup(address_of(anon) + 16);
  ::munmap(anon, 4096);
  EXPECT_EQ(s.object, nullptr);
  EXPECT_EQ(s.function, nullptr);
}

TEST(Symbolizer, ListsTheObjectsItLoadedAndWhyOneHasNoNames) {
  bool saw_exe = false, saw_libc = false, saw_vdso = false;
  std::uintptr_t last_start = 0;
  for (const LoadedObject& o : test_symbolizer().objects()) {
    EXPECT_GE(o.start, last_start) << "objects() is ordered by address";
    EXPECT_LT(o.start, o.end);
    last_start = o.start;
    const std::filesystem::path path(o.path);
    if (path.filename() == "console_test") {
      saw_exe = true;
      EXPECT_TRUE(path.is_absolute()) << o.path << ": the executable's real path, not /proc/self/exe";
      EXPECT_EQ(o.note, nullptr) << o.note;
      EXPECT_GT(o.functions, 100u);
    } else if (path.filename() == "libc.so.6") {
      saw_libc = true;
      EXPECT_EQ(o.note, nullptr) << o.note;
      EXPECT_GT(o.functions, 1000u);  // .dynsym of a stripped libc
    } else if (path.filename() == "linux-vdso.so.1") {
      saw_vdso = true;
      EXPECT_EQ(o.functions, 0u);
      EXPECT_NE(o.note, nullptr);
    }
  }
  EXPECT_TRUE(saw_exe);
  EXPECT_TRUE(saw_libc);
  EXPECT_TRUE(saw_vdso);
}

// A library replaced on disk after it was loaded must not lend its new
// names to the old code. dpkg needs zlib and liblzma, so every Debian has both.
TEST(Symbolizer, IgnoresALibraryWhoseFileWasReplacedSinceLoading) {
  const TempDir tmp;
  const std::filesystem::path& dir = tmp.path();
  const auto lib = dir / "libnp-stale.so";
  std::filesystem::copy_file("/lib/x86_64-linux-gnu/libz.so.1", lib);
  void* handle = ::dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << ::dlerror();
  const std::uintptr_t fn = address_of(::dlsym(handle, "zlibVersion"));
  ASSERT_NE(fn, 0u);

  {
    auto fresh = Symbolizer::load();
    ASSERT_TRUE(fresh.has_value()) << fresh.error().message;
    const Symbol s = (*fresh)->lookup(fn + 1);
    EXPECT_EQ(view(s.object), "libnp-stale.so");
    EXPECT_EQ(view(s.function), "zlibVersion");
  }

  // Replace it the way a package upgrade does: a new file renamed over the
  // path, while the old inode stays mapped.
  std::filesystem::copy_file("/lib/x86_64-linux-gnu/liblzma.so.5", dir / "new.so");
  std::filesystem::rename(dir / "new.so", lib);
  auto stale = Symbolizer::load();
  ASSERT_TRUE(stale.has_value()) << stale.error().message;
  const Symbol s = (*stale)->lookup(fn + 1);
  EXPECT_EQ(view(s.object), "libnp-stale.so");
  EXPECT_EQ(s.function, nullptr) << s.function;
  bool saw = false;
  for (const LoadedObject& o : (*stale)->objects()) {
    if (std::string_view(o.path) != lib.string()) continue;
    saw = true;
    EXPECT_EQ(o.functions, 0u);
    EXPECT_NE(std::string_view(view(o.note)).find("build-id"), std::string_view::npos) << view(o.note);
  }
  EXPECT_TRUE(saw);

  ::dlclose(handle);
}

TEST(Symbolizer, LookupAllocatesNothing) {
  const Symbolizer& sym = test_symbolizer();  // loaded (allocating) before the guard
  const std::uintptr_t pcs[] = {address_of(&np_symtest_marker) + 1, libc_getpid() + 1, 0x1000};
  testing::AllocGuard guard;
  std::size_t named = 0;
  for (int round = 0; round < 100; ++round) {
    for (const std::uintptr_t pc : pcs) named += sym.lookup(pc).function != nullptr ? 1 : 0;
  }
  EXPECT_EQ(guard.stop(), 0u);
  EXPECT_EQ(named, 200u);
}

}  // namespace
}  // namespace np::console
