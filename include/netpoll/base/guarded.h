// Memory of netpoll's own, away from the program's: a mapping with a
// PROT_NONE guard page on each side.
//
// A dying program may have written over anything its pointers reach: the
// malloc heap first of all (an overflowed block runs into its neighbours),
// then writable globals. State that the crash path must trust lives in a
// GuardedRegion instead: nothing of the program's is next to it (an overrun
// that walks into it from a neighbouring mapping hits a guard page and
// faults first), and what never changes after setup is sealed read-only,
// so a stray write faults instead of landing.
//
// Objects are placed with make<T>() (a bump allocator over the mapping,
// each object aligned as its type asks); there is no free: a region lives
// as long as the structure it holds and is unmapped whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

#include "netpoll/base/result.h"

namespace np {

namespace detail {
// GuardedRegion::populate() where the kernel has no MADV_POPULATE_WRITE:
// writes each page of [base, base + size) without changing a byte.
void touch_each_page(std::byte* base, std::size_t size) noexcept;
}  // namespace detail

class GuardedRegion {
 public:
  constexpr GuardedRegion() = default;
  // Maps `size` bytes (rounded up to pages) between two guard pages.
  // Context: setup.
  [[nodiscard]] static SetupResult<GuardedRegion> map(std::size_t size, const char* what);
  // The same for a constructor, which cannot return an error: out of
  // memory at setup ends the process with a message, as a failed
  // allocation would. Context: setup.
  static GuardedRegion must_map(std::size_t size, const char* what);
  // Backs every page with memory now, so that no later write takes a page
  // fault: one first-touch (or, after a fork, copy-on-write) fault per
  // page costs a busy writer more than its work (a ring of 8 KiB slots
  // faults on every record of its first lap). Context: setup.
  void populate() noexcept;
  // An array of n default-constructed T, or nullptr. Context: setup.
  template <class T>
  T* make_array(std::size_t n) {
    if (n != 0 && sizeof(T) > SIZE_MAX / n) return nullptr;
    T* p = static_cast<T*>(take(sizeof(T) * n, alignof(T)));
    if (p != nullptr) {
      for (std::size_t i = 0; i < n; ++i) new (p + i) T();
    }
    return p;
  }
  ~GuardedRegion();
  GuardedRegion(GuardedRegion&& o) noexcept { *this = std::move(o); }
  GuardedRegion& operator=(GuardedRegion&& o) noexcept;
  GuardedRegion(const GuardedRegion&) = delete;
  GuardedRegion& operator=(const GuardedRegion&) = delete;

  // Constructs a T in the region; nullptr when it does not fit.
  // Context: setup.
  template <class T, class... Args>
  T* make(Args&&... args) {
    void* p = take(sizeof(T), alignof(T));
    return p != nullptr ? new (p) T(std::forward<Args>(args)...) : nullptr;
  }
  // Raw bytes (for arrays the caller constructs). Context: setup.
  void* take(std::size_t size, std::size_t align) noexcept;

  // Read-only, or writable again (to change it at setup). Context: setup.
  bool seal() noexcept;
  bool unseal() noexcept;

  bool contains(const void* p, std::size_t len = 1) const noexcept;
  std::byte* data() const noexcept { return base_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t used() const noexcept { return used_; }

 private:
  friend void* guarded_new(std::size_t size);
  std::byte* mapping_ = nullptr;  // the first guard page
  std::size_t mapping_size_ = 0;
  std::byte* base_ = nullptr;     // the usable bytes
  std::size_t size_ = 0;
  std::size_t used_ = 0;
};

// Objects of a class that derives from InGuardedMemory<T> are each placed
// by `new` in a guarded mapping of their own (and unmapped by `delete`):
// the crash path's objects stay off the malloc heap without changing how
// they are made and owned (std::unique_ptr<T> as before). Context: setup.
void* guarded_new(std::size_t size);
void guarded_delete(void* p, std::size_t size) noexcept;

template <class T>
struct InGuardedMemory {
  static void* operator new(std::size_t size) { return guarded_new(size); }
  static void* operator new(std::size_t size, std::align_val_t) { return guarded_new(size); }  // page-aligned
  static void operator delete(void* p, std::size_t size) noexcept { guarded_delete(p, size); }
  static void operator delete(void* p, std::size_t size, std::align_val_t) noexcept { guarded_delete(p, size); }
};

}  // namespace np
