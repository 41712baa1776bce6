// The outputs' lines, byte for byte, in both formats.
#include "netpoll/receiver/output.h"

#include <gtest/gtest.h>

#include <string>

#include "alloc_guard.h"
#include "test_support.h"

namespace np::receiver {
namespace {

using test::kWhen;
using test::kWhenUs;

using test::kContext;

TEST(Output, WritesARecordAsTextOrJson) {
  const np::listen::Record r = test::record(362, "nctest: M6 daemon.err message");
  std::string text, json;
  append_record(text, OutputFormat::kText, kContext, r);
  append_record(json, OutputFormat::kJson, kContext, r);
  EXPECT_EQ(text, std::string(kWhen) + " 10.77.0.2:6665 daemon.err 362 nctest: M6 daemon.err message\n");
  EXPECT_EQ(json, "{\"received\":\"" + std::string(kWhen) +
                      "\",\"source\":\"10.77.0.2:6665\",\"format\":\"extended\",\"seq\":362,\"facility\":\"daemon\","
                      "\"level\":\"err\",\"timestamp_us\":1362,\"continuation\":false,\"emergency\":false,"
                      "\"late\":false,\"release\":null,\"text\":\"nctest: M6 daemon.err message\",\"fragments\":1,"
                      "\"msgid\":null,\"dictionary\":{},\"userdata\":{},\"sysdata\":{}}\n");
}

TEST(Output, WritesGapsAndResetsAsTextOrJson) {
  std::string text, json;
  append_gap(text, OutputFormat::kText, kContext, np::listen::Gap{12, 3, false});
  append_reset(text, OutputFormat::kText, kContext, 400, 0);
  append_gap(json, OutputFormat::kJson, kContext, np::listen::Gap{5, 1, true});
  append_reset(json, OutputFormat::kJson, kContext, 400, 0);
  const std::string t(kWhen);
  EXPECT_EQ(text, t + " 10.77.0.2:6665 gap 12..14 (3 missing)\n" + t + " 10.77.0.2:6665 reset 400 -> 0\n");
  EXPECT_EQ(json, "{\"event\":\"gap\",\"received\":\"" + t +
                      "\",\"source\":\"10.77.0.2:6665\",\"first\":5,\"count\":1,\"lost\":true}\n"
                      "{\"event\":\"reset\",\"received\":\"" + t +
                      "\",\"source\":\"10.77.0.2:6665\",\"from\":400,\"to\":0}\n");
}

TEST(Output, AppendsAfterWhatTheStringHoldsAndAllocatesNothingOnceItHasRoom) {
  const np::listen::Record r = test::record(1, "x");
  std::string out = "before\n";
  out.reserve(4096);
  np::testing::AllocGuard guard;
  append_record(out, OutputFormat::kText, kContext, r);
  append_record(out, OutputFormat::kJson, kContext, r);
  append_gap(out, OutputFormat::kJson, kContext, np::listen::Gap{2, 1, false});
  EXPECT_EQ(guard.stop(), 0u);
  EXPECT_EQ(out.rfind("before\n" + std::string(kWhen) + " 10.77.0.2:6665 daemon.err 1 x\n{", 0), 0u) << out;
}

}  // namespace
}  // namespace np::receiver
