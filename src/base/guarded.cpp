#include "netpoll/base/guarded.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace np {
namespace {

std::size_t page_size() noexcept { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

}  // namespace

SetupResult<GuardedRegion> GuardedRegion::map(std::size_t size, const char* what) {
  const std::size_t page = page_size();
  const std::size_t usable = (size + page - 1) / page * page;
  const std::size_t total = usable + 2 * page;
  void* m = ::mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED)
    return setup_error(Errc::kNoBuffer, std::string("cannot map memory for ") + what + ": " + std::strerror(errno));
  auto* bytes = static_cast<std::byte*>(m);
  if (usable > 0 && ::mprotect(bytes + page, usable, PROT_READ | PROT_WRITE) != 0) {
    const int e = errno;
    ::munmap(m, total);
    return setup_error(Errc::kNoBuffer, std::string("cannot map memory for ") + what + ": " + std::strerror(e));
  }
  GuardedRegion r;
  r.mapping_ = bytes;
  r.mapping_size_ = total;
  r.base_ = bytes + page;
  r.size_ = usable;
  return r;
}

GuardedRegion GuardedRegion::must_map(std::size_t size, const char* what) {
  auto r = map(size, what);
  if (!r) {
    const std::string& m = r.error().message;
    [[maybe_unused]] const ssize_t w = ::write(STDERR_FILENO, m.data(), m.size());
    [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, "\n", 1);
    std::abort();
  }
  return std::move(*r);
}

void detail::touch_each_page(std::byte* base, std::size_t size) noexcept {
  // A write to each page that changes nothing (an atomic or of zero: a
  // record being written meanwhile keeps its byte).
  auto* bytes = reinterpret_cast<unsigned char*>(base);
  const std::size_t page = page_size();
  for (std::size_t at = 0; at < size; at += page) {
    std::atomic_ref<unsigned char>(bytes[at]).fetch_or(0, std::memory_order_relaxed);
  }
}

void GuardedRegion::populate() noexcept {
  if (base_ == nullptr || size_ == 0) return;
#ifdef MADV_POPULATE_WRITE
  if (::madvise(base_, size_, MADV_POPULATE_WRITE) == 0) return;
#endif
  detail::touch_each_page(static_cast<std::byte*>(base_), size_);  // kernels before 5.14
}

GuardedRegion::~GuardedRegion() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
}

GuardedRegion& GuardedRegion::operator=(GuardedRegion&& o) noexcept {
  if (this == &o) return *this;
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
  mapping_ = std::exchange(o.mapping_, nullptr);
  mapping_size_ = std::exchange(o.mapping_size_, 0);
  base_ = std::exchange(o.base_, nullptr);
  size_ = std::exchange(o.size_, 0);
  used_ = std::exchange(o.used_, 0);
  return *this;
}

void* GuardedRegion::take(std::size_t size, std::size_t align) noexcept {
  const auto at = reinterpret_cast<std::uintptr_t>(base_) + used_;
  const std::uintptr_t aligned = (at + align - 1) & ~(std::uintptr_t{align} - 1);
  const std::size_t offset = aligned - reinterpret_cast<std::uintptr_t>(base_);
  if (base_ == nullptr || offset > size_ || size > size_ - offset) return nullptr;
  used_ = offset + size;
  return base_ + offset;
}

bool GuardedRegion::seal() noexcept { return size_ == 0 || ::mprotect(base_, size_, PROT_READ) == 0; }

bool GuardedRegion::unseal() noexcept { return size_ == 0 || ::mprotect(base_, size_, PROT_READ | PROT_WRITE) == 0; }

bool GuardedRegion::contains(const void* p, std::size_t len) const noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const auto b = reinterpret_cast<std::uintptr_t>(base_);
  return base_ != nullptr && a >= b && len <= size_ && a - b <= size_ - len;
}

void* guarded_new(std::size_t size) {
  GuardedRegion r = GuardedRegion::must_map(size, "an object of netpoll's");
  void* p = r.data();
  r.mapping_ = nullptr;  // kept mapped: guarded_delete() unmaps it
  return p;
}

void guarded_delete(void* p, std::size_t size) noexcept {
  if (p == nullptr) return;
  const std::size_t page = page_size();
  const std::size_t usable = (size + page - 1) / page * page;
  ::munmap(static_cast<std::byte*>(p) - page, usable + 2 * page);
}

}  // namespace np
