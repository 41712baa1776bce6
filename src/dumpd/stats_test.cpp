#include "netpoll/dumpd/stats.h"

#include <gtest/gtest.h>

namespace np::dumpd {
namespace {

// --metrics: what stats_text prints, every counter, as Prometheus families.
TEST(DumpdStats, ServesEveryCounterAsPrometheusText) {
  DumpdStats s;
  s.dumps.complete.add(2);
  s.refused.bad_length.add(3);
  s.errors.disk_full.add(1);
  const std::string m = stats_metrics(s);
  EXPECT_EQ(m.rfind("# HELP netpoll_dumpd_sessions_total sessions\n# TYPE netpoll_dumpd_sessions_total counter\n"
                    "netpoll_dumpd_sessions_total 0\n# HELP netpoll_dumpd_complete_total complete\n"
                    "# TYPE netpoll_dumpd_complete_total counter\nnetpoll_dumpd_complete_total 2\n", 0), 0u)
      << m;
  EXPECT_NE(m.find("# HELP netpoll_dumpd_refused_bad_length_total bad length: datagrams refused\n"
                   "# TYPE netpoll_dumpd_refused_bad_length_total counter\nnetpoll_dumpd_refused_bad_length_total 3\n"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("\nnetpoll_dumpd_errors_disk_full_total 1\n"), std::string::npos) << m;
  std::size_t families = 0;
  for (std::size_t at = 0; (at = m.find("# TYPE ", at)) != std::string::npos; ++at) ++families;
  EXPECT_EQ(families, std::size(kDumpCounters) + std::size(kRefusalCounters) + std::size(kErrorCounters));
}

}  // namespace
}  // namespace np::dumpd
