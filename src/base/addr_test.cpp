#include "netpoll/base/addr.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>

namespace np {
namespace {

TEST(MacAddr, ParsesColonAndDashForms) {
  EXPECT_EQ(MacAddr::parse("02:00:5e:10:AB:ff"), MacAddr(0x02, 0x00, 0x5e, 0x10, 0xab, 0xff));
  EXPECT_EQ(MacAddr::parse("02-00-5e-10-ab-ff"), MacAddr(0x02, 0x00, 0x5e, 0x10, 0xab, 0xff));
}

TEST(MacAddr, RefusesMalformedText) {
  for (const char* bad : {"", "02:00:5e:10:ab", "02:00:5e:10:ab:ff:00", "02:00-5e:10:ab:ff", "0g:00:5e:10:ab:ff",
                          "2:00:5e:10:ab:ff0", " 02:00:5e:10:ab:f"}) {
    EXPECT_FALSE(MacAddr::parse(bad)) << bad;
  }
}

TEST(MacAddr, FormatsLowerCaseColonSeparated) {
  EXPECT_STREQ(MacAddr(0x52, 0x54, 0, 0xAB, 0x0c, 0xff).text().c_str(), "52:54:00:ab:0c:ff");
}

TEST(MacAddr, ClassifiesBroadcastMulticastUnicast) {
  EXPECT_TRUE(MacAddr::broadcast().is_broadcast());
  EXPECT_TRUE(MacAddr(0x01, 0, 0x5e, 0, 0, 1).is_multicast());
  EXPECT_TRUE(MacAddr(0x02, 0, 0, 0, 0, 1).is_unicast());
  EXPECT_FALSE(MacAddr().is_unicast());
}

TEST(Ipv4Addr, ParsesDottedQuad) {
  EXPECT_EQ(Ipv4Addr::parse("10.0.255.1"), Ipv4Addr(10, 0, 255, 1));
  EXPECT_EQ(Ipv4Addr::parse("0.0.0.0"), Ipv4Addr());
}

TEST(Ipv4Addr, RefusesMalformedText) {
  for (const char* bad : {"", "10", "10.0.0", "10.0.0.256", "10.0.0.1.", "10..0.1", "a.b.c.d", "10.0.0.1 ", "1000.0.0.1",
                          "10.0.0.-1"}) {
    EXPECT_FALSE(Ipv4Addr::parse(bad)) << bad;
  }
}

TEST(Ipv4Addr, FormatsAndRoundTripsNetworkOrder) {
  const Ipv4Addr a(192, 168, 7, 42);
  EXPECT_STREQ(a.text().c_str(), "192.168.7.42");
  EXPECT_EQ(Ipv4Addr::from_network_u32(a.to_network_u32()), a);
  const std::uint32_t be = a.to_network_u32();
  EXPECT_EQ(reinterpret_cast<const unsigned char*>(&be)[0], 192);
}

TEST(Ipv4Addr, ClassifiesLoopbackMulticastBroadcast) {
  EXPECT_TRUE(Ipv4Addr(127, 0, 0, 1).is_loopback());
  EXPECT_TRUE(Ipv4Addr(224, 0, 0, 251).is_multicast());
  EXPECT_TRUE(Ipv4Addr(239, 1, 1, 1).is_multicast());
  EXPECT_FALSE(Ipv4Addr(240, 0, 0, 1).is_multicast());
  EXPECT_TRUE(Ipv4Addr::broadcast().is_broadcast());
  EXPECT_TRUE(Ipv4Addr().is_unspecified());
}

TEST(Ipv6Addr, ParsesEveryTextFormOfRfc4291) {
  EXPECT_EQ(Ipv6Addr::parse("fd77:0:0:0:0:0:0:1"), Ipv6Addr(0xfd77, 0, 0, 0, 0, 0, 0, 1));
  EXPECT_EQ(Ipv6Addr::parse("FD77::1"), Ipv6Addr(0xfd77, 0, 0, 0, 0, 0, 0, 1));
  EXPECT_EQ(Ipv6Addr::parse("::"), Ipv6Addr());
  EXPECT_EQ(Ipv6Addr::parse("::1"), Ipv6Addr(0, 0, 0, 0, 0, 0, 0, 1));
  EXPECT_EQ(Ipv6Addr::parse("fe80::"), Ipv6Addr(0xfe80, 0, 0, 0, 0, 0, 0, 0));
  EXPECT_EQ(Ipv6Addr::parse("1:2:3:4:5:6:7::"), Ipv6Addr(1, 2, 3, 4, 5, 6, 7, 0));
  EXPECT_EQ(Ipv6Addr::parse("::2:3:4:5:6:7:8"), Ipv6Addr(0, 2, 3, 4, 5, 6, 7, 8));
  EXPECT_EQ(Ipv6Addr::parse("::ffff:10.0.0.1"), Ipv6Addr(0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001));
  EXPECT_EQ(Ipv6Addr::parse("1:2:3:4:5:6:1.2.3.4"), Ipv6Addr(1, 2, 3, 4, 5, 6, 0x0102, 0x0304));
}

TEST(Ipv6Addr, RefusesMalformedText) {
  for (const char* bad : {"", ":", ":::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::1", ":1::",
                          "1::2:", "1:2:3:4:5:6:7:8::", "1::2:3:4:5:6:7:8", "::1.2.3", "::1.2.3.4:5", "fd77::1/",
                          "[fd77::1]", "fd77::1%eth0", " ::1", "1:2:3:4:5:6:7:1.2.3.4"}) {
    EXPECT_FALSE(Ipv6Addr::parse(bad)) << bad;
  }
}

TEST(Ipv6Addr, FormatsAsRfc5952Says) {
  EXPECT_STREQ(Ipv6Addr(0xfd77, 0, 0, 0, 0, 0, 0, 1).text().c_str(), "fd77::1");
  EXPECT_STREQ(Ipv6Addr().text().c_str(), "::");
  EXPECT_STREQ(Ipv6Addr(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1).text().c_str(), "2001:db8::1:0:0:1");  // first of equal runs
  EXPECT_STREQ(Ipv6Addr(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1).text().c_str(), "2001:db8:0:1:1:1:1:1");  // one zero group stays
  EXPECT_STREQ(Ipv6Addr(0x2001, 0, 0, 1, 0, 0, 0, 1).text().c_str(), "2001:0:0:1::1");  // the longest run
  EXPECT_STREQ(Ipv6Addr(0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001).text().c_str(), "::ffff:10.0.0.1");
  EXPECT_STREQ(Ipv6Addr(0xABCD, 0xef, 0, 0, 0, 0, 0, 0).text().c_str(), "abcd:ef::");
}

TEST(Ipv6Addr, AgreesWithTheCLibraryOnRandomAddresses) {
  // Our text parses back with inet_pton, and inet_ntop's text parses with
  // ours, to the same bytes; zero groups are made common so that runs of
  // every length and place occur.
  std::mt19937 rng(6);
  for (int n = 0; n < 2000; ++n) {
    std::array<std::byte, 16> b{};
    for (std::size_t g = 0; g < 8; ++g) {
      const std::uint16_t v = rng() % 3 == 0 ? 0 : static_cast<std::uint16_t>(rng());
      b[2 * g] = std::byte(v >> 8);
      b[2 * g + 1] = std::byte(v & 0xff);
    }
    const Ipv6Addr a(b);
    in6_addr back{};
    ASSERT_EQ(inet_pton(AF_INET6, a.text().c_str(), &back), 1) << a.text().c_str();
    EXPECT_EQ(std::memcmp(&back, b.data(), 16), 0) << a.text().c_str();
    char libc[INET6_ADDRSTRLEN];
    ASSERT_NE(inet_ntop(AF_INET6, b.data(), libc, sizeof libc), nullptr);
    EXPECT_EQ(Ipv6Addr::parse(libc), a) << libc;
  }
}

TEST(Ipv6Addr, MakesTheSolicitedNodeAddress) {
  // RFC 4291 section 2.7.1: ff02::1:ff00:0/104 and the low 24 bits.
  EXPECT_STREQ(Ipv6Addr::parse("fd77::12:3456:789a")->solicited_node().text().c_str(), "ff02::1:ff56:789a");
  EXPECT_TRUE(Ipv6Addr::parse("fe80::1")->is_link_local());
  EXPECT_TRUE(Ipv6Addr::parse("febf::1")->is_link_local());
  EXPECT_FALSE(Ipv6Addr::parse("fec0::1")->is_link_local());
  EXPECT_TRUE(Ipv6Addr::all_nodes().is_multicast());
  EXPECT_TRUE(Ipv6Addr::parse("::1")->is_loopback());
}

TEST(IpAddr, TellsTheFamilyByAColonAsLinuxNetconsoleDoes) {
  const auto v4 = IpAddr::parse("10.0.0.1");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->v4(), Ipv4Addr(10, 0, 0, 1));
  EXPECT_EQ(v4->bytes().size(), 4u);
  const auto v6 = IpAddr::parse("fd77::2");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->is_v6());
  EXPECT_EQ(v6->bytes().size(), 16u);
  EXPECT_STREQ(v6->text().c_str(), "fd77::2");
  EXPECT_FALSE(IpAddr::parse("10.0.0.256"));
  EXPECT_FALSE(IpAddr::parse("fd77:::2"));
}

TEST(IpAddr, NeverEqualsAnAddressOfTheOtherFamily) {
  EXPECT_NE(IpAddr(Ipv4Addr()), IpAddr(Ipv6Addr()));
  EXPECT_TRUE(IpAddr().is_unspecified());
  EXPECT_TRUE(IpAddr().is_v4());
  EXPECT_TRUE(IpAddr(Ipv6Addr()).is_unspecified());
  EXPECT_EQ(IpAddr(Ipv4Addr(10, 0, 0, 1)), IpAddr(*Ipv4Addr::parse("10.0.0.1")));
  EXPECT_TRUE(IpAddr(Ipv4Addr::broadcast()).is_broadcast());
  EXPECT_FALSE(IpAddr(*Ipv6Addr::parse("ff02::1")).is_broadcast());
  EXPECT_TRUE(IpAddr(*Ipv6Addr::parse("ff02::1")).is_multicast());
}

}  // namespace
}  // namespace np
