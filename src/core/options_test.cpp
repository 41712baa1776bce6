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
            "couldn't parse config at '10.0.0.x/': target IP must be a dotted quad");
  EXPECT_EQ(error_of("66a5@10.0.0.1/eth0,6666@10.0.0.2/"),
            "couldn't parse config at '66a5@10.0.0.1/eth0,6666@10.0.0.2/': source port must be 1..65535");
  EXPECT_EQ(error_of("@10.0.0.1/eth0"), "couldn't parse config at 'eth0': expected [dev],");
  EXPECT_EQ(error_of("@/eth0,@10.0.0.2/zz:00:00:00:00:01"),
            "couldn't parse config at 'zz:00:00:00:00:01': target MAC must look like 02:00:00:00:00:01");
  EXPECT_EQ(error_of("r@/eth0,@10.0.0.2/"),
            "couldn't parse config at 'r@/eth0,@10.0.0.2/': release prepend ('r') needs the extended format ('+r')");
  EXPECT_EQ(error_of("@/eth0,@/"), "couldn't parse config at '/': the target IP is required");
  EXPECT_EQ(error_of("@/eth0,@fe80::1/"), "couldn't parse config at 'fe80::1/': IPv6 is not supported");
  EXPECT_EQ(error_of("@/eth0,70000@10.0.0.2/"),
            "couldn't parse config at '70000@10.0.0.2/': target port must be 1..65535");
  EXPECT_EQ(error_of("@/eth0,@10.0.0.2/;"), "couldn't parse config at '': empty target between ';'");
}

TEST(TargetOptions, SourceIpIsRefusedLikeTheTargetIp) {
  EXPECT_EQ(error_of("@10.0.0.x/eth0,@10.0.0.2/"),
            "couldn't parse config at '10.0.0.x/eth0,@10.0.0.2/': source IP must be a dotted quad");
  EXPECT_EQ(error_of("@::1/eth0,@10.0.0.2/"), "couldn't parse config at '::1/eth0,@10.0.0.2/': IPv6 is not supported");
  // Only the target IP is required: a source IP of nothing but whitespace
  // is a malformed address, not a missing one.
  EXPECT_EQ(error_of("@ /eth0,@10.0.0.2/"),
            "couldn't parse config at ' /eth0,@10.0.0.2/': source IP must be a dotted quad");
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

}  // namespace
}  // namespace np::core
