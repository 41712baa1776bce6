#include "netpoll/dev/spec.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "netpoll/dev/fault.h"
#include "netpoll/dev/open.h"
#include "netpoll/dev/pair.h"
#include "netpoll/dev/pcap.h"

namespace np::dev {
namespace {

using Options = std::vector<std::pair<std::string, std::string>>;

std::string parse_error(std::string_view text) {
  auto s = parse_device_spec(text);
  EXPECT_FALSE(s) << text << " parsed";
  return s ? std::string() : s.error().message;
}

std::string open_error(std::string_view text) {
  auto d = open_device(text);
  EXPECT_FALSE(d) << text << " opened";
  return d ? std::string() : d.error().message;
}

TEST(DeviceSpec, SplitsKindTargetAndOptionsInOrder) {
  auto s = parse_device_spec("udp:127.0.0.1:7001@127.0.0.1:7000?mtu=9000&mac=02:00:00:00:00:09");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->text, "udp:127.0.0.1:7001@127.0.0.1:7000?mtu=9000&mac=02:00:00:00:00:09");
  EXPECT_EQ(s->kind, "udp");
  EXPECT_EQ(s->target, "127.0.0.1:7001@127.0.0.1:7000");
  EXPECT_EQ(s->options, (Options{{"mtu", "9000"}, {"mac", "02:00:00:00:00:09"}}));
  ASSERT_NE(s->option("mac"), nullptr);
  EXPECT_EQ(*s->option("mac"), "02:00:00:00:00:09");
  EXPECT_EQ(s->option("pcap"), nullptr);
}

TEST(DeviceSpec, AcceptsEveryKindWithoutOptions) {
  for (const auto& [text, kind, target] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"packet:eth0", "packet", "eth0"},
           {"tap:tap0", "tap", "tap0"},
           {"pair:x", "pair", "x"},
           {"udp:10.0.0.1:1@10.0.0.2:2", "udp", "10.0.0.1:1@10.0.0.2:2"}}) {
    auto s = parse_device_spec(text);
    ASSERT_TRUE(s) << text;
    EXPECT_EQ(s->kind, kind);
    EXPECT_EQ(s->target, target);
    EXPECT_TRUE(s->options.empty());
  }
}

TEST(DeviceSpec, AnOptionValueMayBeEmptyOrHoldEqualsSigns) {
  auto s = parse_device_spec("pair:x?pcap=&seed=a=b");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->options, (Options{{"pcap", ""}, {"seed", "a=b"}}));
}

TEST(DeviceSpec, ABareInterfaceNameIsAnAfPacketDevice) {
  auto s = parse_device_spec("eth0");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->kind, "packet");
  EXPECT_EQ(s->target, "eth0");
  EXPECT_EQ(s->text, "packet:eth0");
  EXPECT_TRUE(s->options.empty());
}

TEST(DeviceSpec, RefusesMalformedStringsQuotingThem) {
  EXPECT_EQ(parse_error("a-name-longer-than-15"),
            "device string 'a-name-longer-than-15': expected an interface name or KIND:TARGET, e.g. eth0, "
            "packet:eth0, xdp:eth0, tap:tap0, udp:127.0.0.1:7001@127.0.0.1:7000, pair:name");
  EXPECT_EQ(parse_error(":eth0"),
            "device string ':eth0': expected an interface name or KIND:TARGET, e.g. eth0, packet:eth0, xdp:eth0, "
            "tap:tap0, udp:127.0.0.1:7001@127.0.0.1:7000, pair:name");
  EXPECT_EQ(parse_error("pair:x?"), "device string 'pair:x?': nothing after '?'");
  EXPECT_EQ(parse_error("pair:"), "device string 'pair:': nothing after 'pair:'");
  EXPECT_EQ(parse_error("pair:?mtu=9000"), "device string 'pair:?mtu=9000': nothing after 'pair:'");
  EXPECT_EQ(parse_error("pair:x?mtu"), "device string 'pair:x?mtu': option 'mtu' is not KEY=VALUE");
  EXPECT_EQ(parse_error("pair:x?=1"), "device string 'pair:x?=1': option '=1' is not KEY=VALUE");
  EXPECT_EQ(parse_error("pair:x?a=1&&b=2"), "device string 'pair:x?a=1&&b=2': option '' is not KEY=VALUE");
  EXPECT_EQ(parse_error("pair:x?mtu=1&mtu=2"), "device string 'pair:x?mtu=1&mtu=2': option 'mtu' given twice");
  EXPECT_EQ(parse_error("pair:x?mtu=1500&"), "device string 'pair:x?mtu=1500&': trailing '&'");
}

TEST(OpenDevice, RefusesAnUnknownKind) {
  auto d = open_device("bogus:x");
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(d.error().message, "device string 'bogus:x': unknown kind 'bogus' (known: packet, xdp, tap, udp, pair)");
}

TEST(OpenDevice, RefusesAnUnknownOptionListingTheKnownOnes) {
  EXPECT_EQ(open_error("pair:spec-opt?speed=10"),
            "device string 'pair:spec-opt?speed=10': unknown option 'speed' for pair devices (known: mac, mtu, "
            "slots, pcap, drop, dup, reorder, corrupt, delay, seed)");
  EXPECT_EQ(open_error("udp:127.0.0.1:1@127.0.0.1:2?slots=4"),
            "device string 'udp:127.0.0.1:1@127.0.0.1:2?slots=4': unknown option 'slots' for udp devices (known: "
            "mac, mtu, pcap, drop, dup, reorder, corrupt, delay, seed)");
}

TEST(OpenDevice, RefusesProbabilitiesOutsideZeroToOne) {
  for (const char* bad : {"1.5", "-0.1", "abc", "", "nan", "0.5x"}) {
    const std::string text = std::string("pair:spec-p?drop=") + bad;
    EXPECT_EQ(open_error(text),
              "device string '" + text + "': option drop='" + bad + "': expected a probability from 0 to 1");
  }
  EXPECT_EQ(open_error("pair:spec-p?corrupt=2"),
            "device string 'pair:spec-p?corrupt=2': option corrupt='2': expected a probability from 0 to 1");
  EXPECT_EQ(open_error("pair:spec-p?delay=70000"),
            "device string 'pair:spec-p?delay=70000': option delay='70000': expected a whole number from 0 to "
            "60000");
}

TEST(OpenDevice, RefusesABadMac) {
  EXPECT_EQ(open_error("pair:spec-mac?mac=01:00:5e:00:00:01"),
            "device string 'pair:spec-mac?mac=01:00:5e:00:00:01': option mac='01:00:5e:00:00:01': expected a "
            "unicast MAC like 02:00:00:00:00:01");
  EXPECT_EQ(open_error("pair:spec-mac?mac=02:00:00:00:00"),
            "device string 'pair:spec-mac?mac=02:00:00:00:00': option mac='02:00:00:00:00': expected a unicast "
            "MAC like 02:00:00:00:00:01");
  EXPECT_EQ(open_error("udp:127.0.0.1:1@127.0.0.1:2?mac=00:00:00:00:00:00"),
            "device string 'udp:127.0.0.1:1@127.0.0.1:2?mac=00:00:00:00:00:00': option mac='00:00:00:00:00:00': "
            "expected a unicast MAC like 02:00:00:00:00:01");
}

TEST(OpenDevice, RefusesMalformedUdpEndpointsQuotingThePartThatFailed) {
  const std::string expected = ": expected LOCAL_IP:PORT@REMOTE_IP:PORT, ";
  EXPECT_EQ(open_error("udp:127.0.0.1:7001@nope"),
            "device string 'udp:127.0.0.1:7001@nope'" + expected + "'nope' is not IP:PORT");
  EXPECT_EQ(open_error("udp:127.0.0.1:7001"), "device string 'udp:127.0.0.1:7001'" + expected + "got '127.0.0.1:7001'");
  EXPECT_EQ(open_error("udp:1.2.3.4:1@1.2.3.4:2@1.2.3.4:3"),
            "device string 'udp:1.2.3.4:1@1.2.3.4:2@1.2.3.4:3'" + expected + "got '1.2.3.4:1@1.2.3.4:2@1.2.3.4:3'");
  EXPECT_EQ(open_error("udp:300.0.0.1:7001@127.0.0.1:7000"),
            "device string 'udp:300.0.0.1:7001@127.0.0.1:7000'" + expected +
                "'300.0.0.1' in '300.0.0.1:7001' is not an IPv4 address");
  EXPECT_EQ(open_error("udp:127.0.0.1:0@127.0.0.1:7000"),
            "device string 'udp:127.0.0.1:0@127.0.0.1:7000'" + expected +
                "port '0' in '127.0.0.1:0' is not a number from 1 to 65535");
  EXPECT_EQ(open_error("udp:127.0.0.1:7001@127.0.0.1:65536"),
            "device string 'udp:127.0.0.1:7001@127.0.0.1:65536'" + expected +
                "port '65536' in '127.0.0.1:65536' is not a number from 1 to 65535");
  EXPECT_EQ(open_error("udp:127.0.0.1:7001@127.0.0.1:"),
            "device string 'udp:127.0.0.1:7001@127.0.0.1:'" + expected +
                "port '' in '127.0.0.1:' is not a number from 1 to 65535");
  EXPECT_EQ(open_error("udp:127.0.0.1:7001@0.0.0.0:7000"),
            "device string 'udp:127.0.0.1:7001@0.0.0.0:7000': remote address 0.0.0.0 cannot be sent to");
  EXPECT_EQ(open_error("udp:127.0.0.1:7001@127.0.0.1:7000?mtu=67"),
            "device string 'udp:127.0.0.1:7001@127.0.0.1:7000?mtu=67': option mtu='67': expected a whole number "
            "from 68 to 65000");
}

TEST(OpenDevice, RefusesAThirdEndOfAPair) {
  auto a = open_device("pair:spec-three");
  auto b = open_device("pair:spec-three");
  ASSERT_TRUE(a && b);
  auto c = open_device("pair:spec-three?mac=02:00:00:00:00:33");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kExists);
  EXPECT_EQ(c.error().message,
            "device string 'pair:spec-three?mac=02:00:00:00:00:33': both ends of wire 'spec-three' are already open "
            "(a wire has two ends)");
}

TEST(OpenDevice, StacksDecoratorsFaultsOutsidePcap) {
  auto d = open_device("pair:spec-stack?pcap=/dev/null&drop=0.1&seed=3");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_NE(dynamic_cast<FaultDevice*>(d->get()), nullptr);
  EXPECT_EQ(dynamic_cast<PcapDevice*>(d->get()), nullptr);
  auto p = open_device("pair:spec-stack2?pcap=/dev/null");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_NE(dynamic_cast<PcapDevice*>(p->get()), nullptr);
  auto plain = open_device("pair:spec-stack3?seed=3");  // a seed alone injects nothing
  ASSERT_TRUE(plain);
  EXPECT_NE(dynamic_cast<PairDevice*>(plain->get()), nullptr);
}

}  // namespace
}  // namespace np::dev
