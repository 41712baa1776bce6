#include "netpoll/core/options.h"

#include <gtest/gtest.h>

namespace np::core {
namespace {

TargetOptions one(std::string_view text) {
  auto r = parse_targets(text);
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  if (!r || r->targets.size() != 1) return {};
  return r->targets[0];
}

std::string error_of(std::string_view text) {
  auto r = parse_targets(text);
  EXPECT_FALSE(r) << text;
  return r ? "" : r.error().message;
}

TEST(TargetOptions, ParsesTheFullForm) {
  const auto t = one("+r6665@10.0.0.1/eth1,6666@10.0.0.2/02:00:00:00:00:02");
  EXPECT_TRUE(t.extended);
  EXPECT_TRUE(t.release);
  EXPECT_EQ(t.local_port, 6665);
  EXPECT_EQ(t.local_ip, Ipv4Addr(10, 0, 0, 1));
  EXPECT_EQ(t.device, "eth1");
  EXPECT_EQ(t.remote_port, 6666);
  EXPECT_EQ(t.remote_ip, Ipv4Addr(10, 0, 0, 2));
  EXPECT_EQ(t.remote_mac, MacAddr(2, 0, 0, 0, 0, 2));
}

TEST(TargetOptions, FillsDefaultsForEverythingOptional) {
  const auto t = one("@/,@10.0.0.2/");
  EXPECT_FALSE(t.extended);
  EXPECT_EQ(t.local_port, 6665);
  EXPECT_TRUE(t.local_ip.is_unspecified());
  EXPECT_EQ(t.device, "");
  EXPECT_EQ(t.remote_port, 6666);
  EXPECT_EQ(t.remote_ip, Ipv4Addr(10, 0, 0, 2));
  EXPECT_FALSE(t.remote_mac);
}

TEST(TargetOptions, AcceptsDeviceStringsAndMacsAsDevice) {
  EXPECT_EQ(one("@10.1.0.1/udp:127.0.0.1:7001@127.0.0.1:7000,@10.1.0.2/").device, "udp:127.0.0.1:7001@127.0.0.1:7000");
  EXPECT_EQ(one("@/pair:x?mtu=9000,@10.1.0.2/").device, "pair:x?mtu=9000");
  EXPECT_EQ(one("@/52:54:00:12:34:56,@10.1.0.2/").device, "52:54:00:12:34:56");
}

TEST(TargetOptions, TheSlashAfterTargetIpMayBeOmitted) { EXPECT_EQ(one("@/eth0,@10.0.0.9").remote_ip, Ipv4Addr(10, 0, 0, 9)); }

TEST(TargetOptions, SplitsSeveralTargetsAtSemicolons) {
  auto r = parse_targets("+@/eth0,@10.0.0.2/;6000@/eth0,7000@10.0.0.3/");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->targets.size(), 2u);
  EXPECT_TRUE(r->targets[0].extended);
  EXPECT_FALSE(r->targets[1].extended);
  EXPECT_EQ(r->targets[1].local_port, 6000);
  EXPECT_EQ(r->targets[1].remote_port, 7000);
  EXPECT_EQ(r->targets[1].text, "6000@/eth0,7000@10.0.0.3/");
}

TEST(TargetOptions, RefusalsQuoteTheRemainderThatFailed) {
  EXPECT_EQ(error_of("6665@10.0.0.1/eth0,6666@10.0.0.x/"),
            "couldn't parse config at '10.0.0.x/': target IP must be a dotted quad or an IPv6 address");
  EXPECT_EQ(error_of("66a5@10.0.0.1/eth0,6666@10.0.0.2/"),
            "couldn't parse config at '66a5@10.0.0.1/eth0,6666@10.0.0.2/': source port must be 1..65535");
  EXPECT_EQ(error_of("@10.0.0.1/eth0"), "couldn't parse config at 'eth0': expected [dev],");
  EXPECT_EQ(error_of("@/eth0,@10.0.0.2/zz:00:00:00:00:01"),
            "couldn't parse config at 'zz:00:00:00:00:01': target MAC must look like 02:00:00:00:00:01");
  EXPECT_EQ(error_of("r@/eth0,@10.0.0.2/"),
            "couldn't parse config at 'r@/eth0,@10.0.0.2/': release prepend ('r') needs the extended format ('+r')");
  EXPECT_EQ(error_of("@/eth0,@/"), "couldn't parse config at '/': the target IP is required");
  EXPECT_EQ(error_of("@/eth0,@fe80:::1/"),
            "couldn't parse config at 'fe80:::1/': target IP is not an IPv6 address (written without brackets)");
  EXPECT_EQ(error_of("@/eth0,@[fd77::1]/"),
            "couldn't parse config at '[fd77::1]/': target IP is not an IPv6 address (written without brackets)");
  EXPECT_EQ(error_of("@/eth0,70000@10.0.0.2/"),
            "couldn't parse config at '70000@10.0.0.2/': target port must be 1..65535");
  EXPECT_EQ(error_of("@/eth0,@10.0.0.2/;"), "couldn't parse config at '': empty target between ';'");
}

TEST(TargetOptions, SourceIpIsRefusedLikeTheTargetIp) {
  EXPECT_EQ(error_of("@10.0.0.x/eth0,@10.0.0.2/"),
            "couldn't parse config at '10.0.0.x/eth0,@10.0.0.2/': source IP must be a dotted quad or an IPv6 address");
  EXPECT_EQ(error_of("@fd77::1/eth0,@10.0.0.2/"),
            "couldn't parse config at '@fd77::1/eth0,@10.0.0.2/': the source and target IP must both be IPv4 or both "
            "IPv6");
  // Only the target IP is required: a source IP of nothing but whitespace
  // is a malformed address, not a missing one.
  EXPECT_EQ(error_of("@ /eth0,@10.0.0.2/"),
            "couldn't parse config at ' /eth0,@10.0.0.2/': source IP must be a dotted quad or an IPv6 address");
  EXPECT_EQ(error_of("@/eth0,@ /"), "couldn't parse config at ' /': the target IP is required");
}

TEST(TargetOptions, WarnsAboutWhitespaceAndIgnoresIt) {
  auto r = parse_targets("@/eth0, 6666@10.0.0.2/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->targets[0].remote_port, 6666);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_EQ(r->warnings[0], "warning: whitespace is not allowed in the target port (' 6666'), ignoring it");
}

TEST(TargetOptions, PrintsLikeNetpollPrintOptions) {
  const auto t = one("6665@10.0.0.1/eth0,6666@10.0.0.2/02:00:00:00:00:02");
  EXPECT_EQ(format_target(t, "netconsole"),
            "netconsole: local port 6665\n"
            "netconsole: local IP 10.0.0.1\n"
            "netconsole: interface 'eth0'\n"
            "netconsole: remote port 6666\n"
            "netconsole: remote IP 10.0.0.2\n"
            "netconsole: remote ethernet address 02:00:00:00:00:02\n");
}

TEST(TargetOptions, ParsesIpv6AsLinuxWritesIt) {
  // No brackets: the '/' ends an address, so its colons need none.
  const auto t = one("+6665@fd77::2/eth0,6666@fd77::1/02:00:00:00:00:01");
  EXPECT_TRUE(t.extended);
  EXPECT_EQ(t.local_ip, IpAddr(*Ipv6Addr::parse("fd77::2")));
  EXPECT_EQ(t.device, "eth0");
  EXPECT_EQ(t.remote_port, 6666);
  EXPECT_EQ(t.remote_ip, IpAddr(*Ipv6Addr::parse("fd77::1")));
  EXPECT_EQ(t.remote_mac, MacAddr(2, 0, 0, 0, 0, 1));
  EXPECT_EQ(t.family(), IpFamily::kV6);
}

TEST(TargetOptions, AnEmptySourceIpTakesTheTargetsFamily) {
  const auto t = one("@/eth0,@fe80::1");
  EXPECT_TRUE(t.local_ip.is_v6());
  EXPECT_TRUE(t.local_ip.is_unspecified());
  EXPECT_EQ(t.family(), IpFamily::kV6);
  // A receive-only IPv6 client: from anyone.
  const auto any = one("6666@fd77::5/eth0,@::/");
  EXPECT_TRUE(any.remote_ip.is_v6() && any.remote_ip.is_unspecified());
  // 0.0.0.0 as the target of an IPv6 source is IPv6's "anyone" too.
  EXPECT_EQ(one("6666@fd77::5/eth0,@0.0.0.0/").remote_ip, IpAddr(Ipv6Addr::any()));
  EXPECT_EQ(one("@/eth0,@10.0.0.2/").family(), IpFamily::kV4);
}

TEST(TargetOptions, MixesIpv4AndIpv6TargetsInOneString) {
  auto r = parse_targets("+@/eth0,@10.0.0.2/;+@/eth0,@fd77::1/;6000@fd77::9/eth1,7000@fd77::8/");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->targets.size(), 3u);
  EXPECT_EQ(r->targets[0].family(), IpFamily::kV4);
  EXPECT_EQ(r->targets[1].family(), IpFamily::kV6);
  EXPECT_EQ(r->targets[2].local_ip.to_string(), "fd77::9");
  EXPECT_EQ(r->targets[2].remote_ip.to_string(), "fd77::8");
  EXPECT_EQ(r->targets[1].text, "+@/eth0,@fd77::1/");
}

TEST(TargetOptions, SettlesTheFamilyOfAConfigMadeInCode) {
  TargetOptions t;
  t.remote_ip = *Ipv6Addr::parse("fd77::1");
  ASSERT_TRUE(settle_family(t));
  EXPECT_EQ(t.local_ip, IpAddr(Ipv6Addr::any()));
  TargetOptions r;
  r.local_ip = *Ipv6Addr::parse("fd77::5");  // remote left at 0.0.0.0: anyone
  ASSERT_TRUE(settle_family(r));
  EXPECT_EQ(r.remote_ip, IpAddr(Ipv6Addr::any()));
  TargetOptions mixed;
  mixed.local_ip = Ipv4Addr(10, 0, 0, 1);
  mixed.remote_ip = *Ipv6Addr::parse("fd77::1");
  EXPECT_FALSE(settle_family(mixed));
}

TEST(TargetOptions, PrintsIpv6AddressesAsLinuxNetpollDoes) {
  const auto t = one("6665@fd77::2/eth0,6666@fd77::1/02:00:00:00:00:01");
  EXPECT_EQ(format_target(t, "netconsole"),
            "netconsole: local port 6665\n"
            "netconsole: local IPv6 address fd77::2\n"
            "netconsole: interface 'eth0'\n"
            "netconsole: remote port 6666\n"
            "netconsole: remote IPv6 address fd77::1\n"
            "netconsole: remote ethernet address 02:00:00:00:00:01\n");
}

}  // namespace
}  // namespace np::core
