// netpoll listen's table of the sources one worker tracks: a source (an
// address and port) maps to its receiver state (listen/source.h), its
// reply address and its output file, in a bounded table where the least
// recently used source is evicted to make room.
//
// One worker thread owns the table and is the only one to change it. The
// statistics printer reads it from another thread: insert() and
// evict_oldest() change the table's shape under a lock that
// for_each_locked() and add_totals() take too; counters are atomic
// (base/counter.h). Eviction is in two steps so that the worker delivers
// what the oldest source holds (and writes its file) before it goes:
// oldest(), then evict_oldest(), whose counters join the evicted totals.
//
// Memory: an entry (its Source's memory, fixed by the limits) is allocated
// when a source is first seen, never per datagram.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "netpoll/base/addr.h"
#include "netpoll/base/function_ref.h"
#include "netpoll/listen/source.h"

namespace np::receiver {

// An address and port as one key (IPv4 as its mapped IPv6 form).
struct SourceKey {
  std::array<std::uint8_t, 16> addr{};
  std::uint16_t port = 0;

  // From a received datagram's sender (AF_INET or AF_INET6). Context: any.
  static SourceKey of(const sockaddr_storage& sa) noexcept;
  bool operator==(const SourceKey&) const = default;
};

struct SourceKeyHash {
  std::size_t operator()(const SourceKey& k) const noexcept;  // FNV-1a
};

// "10.0.0.1:6665" (an IPv4-mapped address as plain IPv4), "[fd00::1]:6665".
// Context: setup.
std::string address_text(const SourceKey& k);
// The address text with ':', '[' and ']' as '_': "10.0.0.1_6665",
// "_fd00__1__6665"; the name of a source's file without its suffix.
// Context: setup.
std::string file_name_of(const SourceKey& k);

struct SourceEntry {
  SourceEntry(const SourceKey& k, const sockaddr_storage& from, socklen_t from_len,
              const np::listen::SourceLimits& limits);
  ~SourceEntry();
  SourceEntry(const SourceEntry&) = delete;
  SourceEntry& operator=(const SourceEntry&) = delete;

  const SourceKey key;
  const std::string address;  // address_text(key)
  np::listen::Source source;
  sockaddr_storage peer{};  // where reliable-mode responses go
  socklen_t peer_len = 0;
  MacAddr peer_mac;         // on netpoll's own path, the Ethernet source of its latest frame; else zero
  int file_fd = -1;         // its own file (--dir), closed with the entry; -1: none
  std::string file_buffer;  // bytes for that file, written once per batch

 private:
  friend class SourceTable;
  std::list<SourceEntry*>::iterator lru_;
};

class SourceTable {
 public:
  // Context: setup.
  SourceTable(std::size_t max_sources, const np::listen::SourceLimits& limits);
  ~SourceTable();
  SourceTable(const SourceTable&) = delete;
  SourceTable& operator=(const SourceTable&) = delete;

  // The source's entry, now the most recently used; nullptr if it is not
  // tracked. Context: any (owner thread).
  SourceEntry* find(const SourceKey& k) noexcept;
  // Whether insert() needs evict_oldest() first. Context: any.
  bool full() const noexcept { return entries_.size() >= max_sources_; }
  std::size_t size() const noexcept { return entries_.size(); }
  // The least recently used entry; the table must not be empty. Context: any.
  SourceEntry& oldest() noexcept { return *lru_.back(); }

  // Tracks a new source as the most recently used. The table must not be
  // full and must not track it. Context: setup (owner thread).
  SourceEntry& insert(const SourceKey& k, const sockaddr_storage& from, socklen_t from_len);
  // Removes the least recently used entry; its counters join the evicted
  // totals. Context: setup (owner thread).
  void evict_oldest();

  // Calls `each` for every entry. Context: the owner thread.
  void for_each(FunctionRef<void(SourceEntry&)> each);
  // Calls `each` for every entry under the table lock: for another thread.
  // Context: setup.
  void for_each_locked(FunctionRef<void(const SourceEntry&)> each) const;
  // Adds the counters of every source this table has tracked, evicted ones
  // included. Context: setup (takes the table lock).
  void add_totals(np::listen::SourceStats& into) const;

 private:
  const std::size_t max_sources_;
  const np::listen::SourceLimits limits_;
  mutable std::mutex mutex_;  // the table's shape, for readers on other threads
  std::unordered_map<SourceKey, std::unique_ptr<SourceEntry>, SourceKeyHash> entries_;
  std::list<SourceEntry*> lru_;  // most recently used first
  np::listen::SourceStats evicted_totals_;
};

}  // namespace np::receiver
