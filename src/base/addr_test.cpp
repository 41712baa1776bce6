#include "netpoll/base/addr.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace np
