#include "netpoll/receiver/source_table.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cstring>

#include "netpoll/base/assert.h"

namespace np::receiver {

SourceKey SourceKey::of(const sockaddr_storage& sa) noexcept {
  SourceKey k;
  if (sa.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(sa);
    k.addr[10] = k.addr[11] = 0xff;
    std::memcpy(k.addr.data() + 12, &v4.sin_addr, 4);
    k.port = ntohs(v4.sin_port);
  } else {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(sa);
    std::memcpy(k.addr.data(), &v6.sin6_addr, 16);
    k.port = ntohs(v6.sin6_port);
  }
  return k;
}

std::size_t SourceKeyHash::operator()(const SourceKey& k) const noexcept {
  std::uint64_t h = 1469598103934665603ull;
  for (const std::uint8_t b : k.addr) h = (h ^ b) * 1099511628211ull;
  return (h ^ k.port) * 1099511628211ull;
}

std::string address_text(const SourceKey& k) {
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char buf[INET6_ADDRSTRLEN] = {};
  if (std::memcmp(k.addr.data(), kMapped, 12) == 0) {
    ::inet_ntop(AF_INET, k.addr.data() + 12, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(k.port);
  }
  ::inet_ntop(AF_INET6, k.addr.data(), buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(k.port);
}

std::string file_name_of(const SourceKey& k) {
  std::string s = address_text(k);
  for (char& c : s) {
    if (c == ':' || c == '[' || c == ']') c = '_';
  }
  return s;
}

SourceEntry::SourceEntry(const SourceKey& k, const sockaddr_storage& from, socklen_t from_len,
                         const np::listen::SourceLimits& limits)
    : key(k), address(address_text(k)), source(limits), peer(from), peer_len(from_len) {}

SourceEntry::~SourceEntry() {
  if (file_fd >= 0) ::close(file_fd);
}

SourceTable::SourceTable(std::size_t max_sources, const np::listen::SourceLimits& limits)
    : max_sources_(max_sources), limits_(limits) {
  NP_ASSERT(max_sources > 0);
}

SourceTable::~SourceTable() = default;

SourceEntry* SourceTable::find(const SourceKey& k) noexcept {
  const auto it = entries_.find(k);
  if (it == entries_.end()) return nullptr;
  SourceEntry& e = *it->second;
  lru_.splice(lru_.begin(), lru_, e.lru_);
  return &e;
}

SourceEntry& SourceTable::insert(const SourceKey& k, const sockaddr_storage& from, socklen_t from_len) {
  NP_ASSERT(!full());
  auto e = std::make_unique<SourceEntry>(k, from, from_len, limits_);
  SourceEntry& ref = *e;
  std::lock_guard lock(mutex_);
  lru_.push_front(&ref);
  ref.lru_ = lru_.begin();
  const bool added = entries_.emplace(k, std::move(e)).second;
  NP_ASSERT(added);
  return ref;
}

void SourceTable::evict_oldest() {
  NP_ASSERT(!lru_.empty());
  SourceEntry* victim = lru_.back();
  const SourceKey k = victim->key;  // not a reference into what erase() destroys
  std::lock_guard lock(mutex_);
  np::listen::add_stats(evicted_totals_, victim->source.stats());
  lru_.pop_back();
  entries_.erase(k);
}

void SourceTable::for_each(FunctionRef<void(SourceEntry&)> each) {
  for (auto& [k, e] : entries_) each(*e);
}

void SourceTable::for_each_locked(FunctionRef<void(const SourceEntry&)> each) const {
  std::lock_guard lock(mutex_);
  for (const auto& [k, e] : entries_) each(*e);
}

void SourceTable::add_totals(np::listen::SourceStats& into) const {
  std::lock_guard lock(mutex_);
  np::listen::add_stats(into, evicted_totals_);
  for (const auto& [k, e] : entries_) np::listen::add_stats(into, e->source.stats());
}

}  // namespace np::receiver
