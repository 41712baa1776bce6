#include "alloc_guard.h"

#include <cstddef>
#include <cstdlib>
#include <new>

namespace {

// Per-thread: how many guards are active and how many allocations this
// thread has made while one was. Plain thread_local ints: initial-exec TLS
// in the executable, safe to touch from inside malloc.
thread_local int g_depth = 0;
thread_local std::uint64_t g_count = 0;

inline void note_allocation() noexcept {
  if (g_depth > 0) ++g_count;
}

}  // namespace

namespace np::testing {

AllocGuard::AllocGuard() noexcept : start_(g_count) { ++g_depth; }

AllocGuard::~AllocGuard() { stop(); }

std::uint64_t AllocGuard::stop() noexcept {
  if (active_) {
    active_ = false;
    --g_depth;
  }
  return g_count - start_;
}

}  // namespace np::testing

#if defined(__SANITIZE_ADDRESS__)

// AddressSanitizer owns malloc; we count C++ allocations only.
bool np::testing::alloc_guard_sees_malloc() noexcept { return false; }

#else

bool np::testing::alloc_guard_sees_malloc() noexcept { return true; }

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);

void* malloc(std::size_t n) {
  note_allocation();
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t m) {
  note_allocation();
  return __libc_calloc(n, m);
}
void* realloc(void* p, std::size_t n) {
  note_allocation();
  return __libc_realloc(p, n);
}
void* memalign(std::size_t a, std::size_t n) {
  note_allocation();
  return __libc_memalign(a, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) {
  note_allocation();
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, std::size_t a, std::size_t n) {
  note_allocation();
  void* p = __libc_memalign(a, n);
  if (p == nullptr) return 12;  // ENOMEM
  *out = p;
  return 0;
}
void free(void* p) { __libc_free(p); }
}

#endif

// operator new goes through malloc; where malloc is not ours (ASan), it is
// counted here instead.
#if defined(__SANITIZE_ADDRESS__)
#define NP_NOTE_NEW() note_allocation()
#else
#define NP_NOTE_NEW() static_cast<void>(0)
#endif

void* operator new(std::size_t n) {
  NP_NOTE_NEW();
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  NP_NOTE_NEW();
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void* operator new(std::size_t n, std::align_val_t a) {
  NP_NOTE_NEW();
  std::size_t al = static_cast<std::size_t>(a);
  void* p = nullptr;
  if (posix_memalign(&p, al < sizeof(void*) ? sizeof(void*) : al, n == 0 ? 1 : n) != 0) throw std::bad_alloc();
  return p;
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
