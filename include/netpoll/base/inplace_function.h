// InplaceFunction: an owning callable with fixed inline storage.
//
// Receive hooks and drop handlers are stored in a client at setup and called
// on the data path. std::function may allocate when it stores a callable;
// this type cannot: a callable that does not fit `Capacity` bytes is a
// compile error. Calling it never allocates.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace np {

template <class Sig, std::size_t Capacity = 48>
class InplaceFunction;

template <class R, class... Args, std::size_t Capacity>
class InplaceFunction<R(Args...), Capacity> {
 public:
  InplaceFunction() noexcept = default;

  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, InplaceFunction> && std::is_invocable_r_v<R, F&, Args...>)
  InplaceFunction(F&& f) noexcept(std::is_nothrow_constructible_v<std::decay_t<F>, F&&>) {  // NOLINT: implicit
    using T = std::decay_t<F>;
    static_assert(sizeof(T) <= Capacity, "callable too large for InplaceFunction: capture less or raise Capacity");
    static_assert(alignof(T) <= alignof(std::max_align_t));
    static_assert(std::is_nothrow_move_constructible_v<T>);
    ::new (static_cast<void*>(storage_)) T(std::forward<F>(f));
    ops_ = &kOps<T>;
  }

  InplaceFunction(InplaceFunction&& o) noexcept {
    if (o.ops_ != nullptr) {
      o.ops_->move(o.storage_, storage_);
      ops_ = o.ops_;
      o.reset();
    }
  }
  InplaceFunction& operator=(InplaceFunction&& o) noexcept {
    if (this != &o) {
      reset();
      if (o.ops_ != nullptr) {
        o.ops_->move(o.storage_, storage_);
        ops_ = o.ops_;
        o.reset();
      }
    }
    return *this;
  }
  InplaceFunction(const InplaceFunction&) = delete;
  InplaceFunction& operator=(const InplaceFunction&) = delete;
  ~InplaceFunction() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  R operator()(Args... args) const { return ops_->call(storage_, std::forward<Args>(args)...); }

  void reset() noexcept {
    if (ops_ != nullptr) {
      ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

 private:
  struct Ops {
    R (*call)(void*, Args...);
    void (*move)(void* from, void* to) noexcept;
    void (*destroy)(void*) noexcept;
  };
  template <class T>
  static constexpr Ops kOps{
      [](void* p, Args... args) -> R { return (*static_cast<T*>(p))(std::forward<Args>(args)...); },
      [](void* from, void* to) noexcept { ::new (to) T(std::move(*static_cast<T*>(from))); },
      [](void* p) noexcept { static_cast<T*>(p)->~T(); },
  };

  alignas(std::max_align_t) mutable unsigned char storage_[Capacity];
  const Ops* ops_ = nullptr;
};

}  // namespace np
