// The source table: keys and names of sources, least-recently-used
// eviction, totals that keep what evicted sources counted.
#include "netpoll/receiver/source_table.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <set>
#include <string>

namespace np::receiver {
namespace {

sockaddr_storage v4(const char* ip, std::uint16_t port) {
  sockaddr_storage ss{};
  auto& a = reinterpret_cast<sockaddr_in&>(ss);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  EXPECT_EQ(::inet_pton(AF_INET, ip, &a.sin_addr), 1);
  return ss;
}

sockaddr_storage v6(const char* ip, std::uint16_t port) {
  sockaddr_storage ss{};
  auto& a = reinterpret_cast<sockaddr_in6&>(ss);
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  EXPECT_EQ(::inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
  return ss;
}

struct Collect : np::listen::Sink {
  std::uint64_t records = 0;
  void record(const np::listen::Record&) override { ++records; }
  void gap(const np::listen::Gap&) override {}
  void reset(std::uint64_t, std::uint64_t) override {}
};

TEST(SourceKey, NamesIpv4AndIpv6SourcesAndTheirFiles) {
  const SourceKey a = SourceKey::of(v4("10.0.0.1", 6665));
  EXPECT_EQ(address_text(a), "10.0.0.1:6665");
  EXPECT_EQ(file_name_of(a), "10.0.0.1_6665");
  const SourceKey b = SourceKey::of(v6("fd00::1", 6666));
  EXPECT_EQ(address_text(b), "[fd00::1]:6666");
  EXPECT_EQ(file_name_of(b), "_fd00__1__6666");
  // An IPv4 sender reaching an IPv6 socket comes as a mapped address: the
  // same source, named as IPv4.
  const SourceKey mapped = SourceKey::of(v6("::ffff:10.0.0.1", 6665));
  EXPECT_EQ(mapped, a);
  EXPECT_EQ(SourceKeyHash{}(mapped), SourceKeyHash{}(a));
  EXPECT_EQ(address_text(mapped), "10.0.0.1:6665");
  EXPECT_NE(SourceKey::of(v4("10.0.0.1", 6666)), a);
}

TEST(SourceTable, FindsWhatItTracksAndEvictsTheLeastRecentlyUsed) {
  SourceTable t(2, np::listen::SourceLimits{});
  const auto sa = v4("10.0.0.1", 1), sb = v4("10.0.0.2", 2), sc = v4("10.0.0.3", 3);
  const SourceKey a = SourceKey::of(sa), b = SourceKey::of(sb), c = SourceKey::of(sc);
  EXPECT_EQ(t.find(a), nullptr);
  SourceEntry& ea = t.insert(a, sa, sizeof(sockaddr_in));
  EXPECT_EQ(ea.address, "10.0.0.1:1");
  EXPECT_EQ(ea.peer_len, sizeof(sockaddr_in));
  EXPECT_EQ(ea.file_fd, -1);
  EXPECT_FALSE(t.full());
  t.insert(b, sb, sizeof(sockaddr_in));
  EXPECT_TRUE(t.full());
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(&t.oldest(), &ea);
  // Finding a touches it: b is the oldest now.
  EXPECT_EQ(t.find(a), &ea);
  EXPECT_EQ(t.oldest().address, "10.0.0.2:2");
  t.evict_oldest();
  EXPECT_EQ(t.find(b), nullptr);
  EXPECT_EQ(t.size(), 1u);
  t.insert(c, sc, sizeof(sockaddr_in));
  EXPECT_EQ(t.oldest().address, "10.0.0.1:1");
  std::set<std::string> seen;
  t.for_each_locked([&](const SourceEntry& e) { seen.insert(e.address); });
  EXPECT_EQ(seen, (std::set<std::string>{"10.0.0.1:1", "10.0.0.3:3"}));
}

TEST(SourceTable, TotalsKeepWhatEvictedSourcesCounted) {
  SourceTable t(1, np::listen::SourceLimits{});
  Collect sink;
  const auto now = np::listen::Clock::now();
  const auto sa = v4("10.0.0.1", 1), sb = v4("10.0.0.2", 2);
  SourceEntry& a = t.insert(SourceKey::of(sa), sa, sizeof(sockaddr_in));
  a.source.datagram("hello from a\n", now, sink);  // basic-format text
  a.source.datagram("and again\n", now, sink);
  t.evict_oldest();
  SourceEntry& b = t.insert(SourceKey::of(sb), sb, sizeof(sockaddr_in));
  b.source.datagram("hello from b\n", now, sink);
  np::listen::SourceStats total;
  t.add_totals(total);
  EXPECT_EQ(total.datagrams.value(), 3u);
  EXPECT_EQ(total.bytes.value(), 13u + 10u + 13u);
  // Totals add to what the caller already has.
  t.add_totals(total);
  EXPECT_EQ(total.datagrams.value(), 6u);
}

}  // namespace
}  // namespace np::receiver
