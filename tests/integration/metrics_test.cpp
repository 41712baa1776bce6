// `--metrics ADDR:PORT` as Prometheus sees it: netpoll listen and netpoll
// dumpd in a namespace of the test's own, known traffic sent to them, the
// page scraped with curl and checked with promtool (Debian's prometheus
// package), its values those of the traffic.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "dump_server.h"
#include "listener.h"
#include "net_helpers.h"
#include "netns.h"

namespace np::tools {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;

// The page at http://ADDRESS/metrics inside `ns` (curl), and promtool's
// verdict on it: its output and exit status.
struct Scrape {
  std::string page;
  std::string promtool;
  int promtool_status = -1;
};

Scrape scrape_metrics(const Netns& ns, const TempDir& dir, const std::string& address) {
  const std::string page = (dir.path() / "metrics.txt").string(), lint = (dir.path() / "promtool.txt").string();
  Scrape s;
  if (::system((ns.exec() + "curl -sSf --max-time 5 -o " + page + " http://" + address + "/metrics").c_str()) != 0)
    return s;
  s.page = read_file(page);
  const int status = ::system(("promtool check metrics < " + page + " > " + lint + " 2>&1").c_str());
  s.promtool_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  s.promtool = read_file(lint);
  return s;
}

// Waits (bounded) until `text()` holds `line`: the command says where it
// serves metrics just after it says its port, which the fixtures wait for.
template <class Text>
bool await_metrics_line(const Text& text, const std::string& line) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (text().find(line) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

TEST(Metrics, ListenServesItsStatisticsPerSourceAndPromtoolAcceptsThem) {
  Netns ns("metrics");
  TempDir dir;
  Listener l(ns, {"--bind", "127.0.0.1", "--workers", "1", "--metrics", "127.0.0.1:9466", "--metrics-max-sources", "1"},
             dir);
  ASSERT_TRUE(await_metrics_line([&l] { return l.err(); }, "netpoll listen: metrics at http://127.0.0.1:9466/metrics\n"))
      << l.err();
  // Three records from one source, a record and a duplicate from another.
  UdpSocket a(ns, "127.0.0.1", 6665), b(ns, "127.0.0.1", 6667);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(a.send_to("127.0.0.1", 6666, as_bytes("6," + std::to_string(i) + ",100,-;rec " + std::to_string(i))));
  }
  ASSERT_TRUE(b.send_to("127.0.0.1", 6666, as_bytes("6,0,100,-;other")));
  ASSERT_TRUE(b.send_to("127.0.0.1", 6666, as_bytes("6,0,100,-;other")));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (count_of(l.out(), " rec ") + count_of(l.out(), " other") < 4 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  const Scrape s = scrape_metrics(ns, dir, "127.0.0.1:9466");
  ASSERT_FALSE(s.page.empty()) << l.err();
  EXPECT_EQ(s.promtool_status, 0) << s.promtool << "\n" << s.page;
  for (const char* line : {"# HELP netpoll_listen_records_total records, every source\n"
                           "# TYPE netpoll_listen_records_total counter\nnetpoll_listen_records_total 4\n",
                           "\nnetpoll_listen_datagrams_total 5\n", "\nnetpoll_listen_duplicates_total 1\n",
                           "\nnetpoll_listen_sources_total 2\n", "\nnetpoll_listen_sources_tracked 2\n",
                           "\nnetpoll_listen_metrics_sources_omitted 1\n"}) {
    EXPECT_NE(s.page.find(line), std::string::npos) << line << "\n" << s.page;
  }
  // One source listed (the cap), with its own counts.
  const bool first_a = s.page.find("{source=\"127.0.0.1:6665\"}") != std::string::npos;
  EXPECT_NE(s.page.find(first_a ? "\nnetpoll_listen_source_records_total{source=\"127.0.0.1:6665\"} 3\n"
                                 : "\nnetpoll_listen_source_duplicates_total{source=\"127.0.0.1:6667\"} 1\n"),
            std::string::npos)
      << s.page;
  EXPECT_EQ(count_of(s.page, "netpoll_listen_source_records_total{"), 1u) << s.page;
  // What the statistics print at exit, the page had: the same totals.
  EXPECT_EQ(WEXITSTATUS(l.stop()), 0);
  EXPECT_NE(l.err().find("netpoll listen: records 4, datagrams 5, "), std::string::npos) << l.err();
}

TEST(Metrics, DumpdServesItsStatisticsAndPromtoolAcceptsThem) {
  Netns ns("metrics");
  TempDir dir;
  DumpServer d(ns, {"--bind", "127.0.0.1", "--dir", (dir.path() / "cores").string(), "--metrics", "127.0.0.1:9467"},
               dir);
  ASSERT_TRUE(await_metrics_line([&d] { return d.err(); }, "netpoll dumpd: metrics at http://127.0.0.1:9467/metrics\n"))
      << d.err();
  // Two datagrams too short for debugnet's header: refused, counted.
  UdpSocket c(ns, "127.0.0.1", 20024);
  ASSERT_TRUE(c.send_to("127.0.0.1", 20023, as_bytes("hi")));
  ASSERT_TRUE(c.send_to("127.0.0.1", 20023, as_bytes("again")));
  Scrape s;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  do {
    std::this_thread::sleep_for(20ms);
    s = scrape_metrics(ns, dir, "127.0.0.1:9467");
  } while (s.page.find("\nnetpoll_dumpd_refused_bad_length_total 2\n") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(s.promtool_status, 0) << s.promtool << "\n" << s.page;
  EXPECT_NE(s.page.find("# HELP netpoll_dumpd_refused_bad_length_total bad length: datagrams refused\n"
                        "# TYPE netpoll_dumpd_refused_bad_length_total counter\n"
                        "netpoll_dumpd_refused_bad_length_total 2\n"),
            std::string::npos)
      << s.page;
  EXPECT_NE(s.page.find("\nnetpoll_dumpd_sessions_total 0\n"), std::string::npos) << s.page;
  EXPECT_NE(s.page.find("\nnetpoll_dumpd_errors_kernel_drops_total 0\n"), std::string::npos) << s.page;
  EXPECT_EQ(WEXITSTATUS(d.stop()), 0);
  EXPECT_NE(d.err().find("bad length 2"), std::string::npos) << d.err();
}

}  // namespace
}  // namespace np::tools
