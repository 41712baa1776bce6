// netpoll listen's receiving thread in-process: after a source's first
// datagrams (its state, its file, the output buffers), receiving, parsing,
// reassembling, formatting and writing allocate nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "alloc_guard.h"
#include "net_helpers.h"
#include "netns.h"
#include "netpoll/receiver/worker.h"
#include "netpoll/wire/netconsole.h"

namespace np::receiver {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;
namespace nc = np::wire::netconsole;

// Datagrams of record `seq`: a short one, or every third a 2500-byte one
// in fragments with escapes to undo.
std::vector<std::string> record(std::uint64_t seq) {
  std::vector<std::string> out;
  const nc::Header h{{}, 1, 6, seq, 1000 + seq, false, false};
  char head[nc::kMaxHeader];
  const auto n = nc::format_header(h, head);
  std::string body = "record " + std::to_string(seq);
  if (seq % 3 == 0) body += " " + std::string(2500, 'x') + "\\x09tab";
  body += "\n cpu=1\n";
  nc::emit_extended(std::string_view(head, n), body, [&](std::string_view d) { out.emplace_back(d); });
  return out;
}

TEST(ListenWorker, ReceivesFormatsAndWritesWithoutAllocating) {
  for (const OutputFormat format : {OutputFormat::kText, OutputFormat::kJson}) {
    Netns ns("lw");
    const auto dir = std::filesystem::temp_directory_path() / ("np-listen-worker-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    Options o;
    o.bind = "127.0.0.1";
    o.port = 0;
    o.to_stdout = false;
    o.dir = dir.string();
    o.format = format;
    Shared shared;
    std::unique_ptr<Worker> w;
    {
      ScopedNetns in(ns);
      auto opened = Worker::open(0, o, shared);
      ASSERT_TRUE(opened) << opened.error().message;
      w = std::move(*opened);
    }
    UdpSocket src(ns, "127.0.0.1", 6665);
    const auto send = [&](std::uint64_t from, std::uint64_t to) {
      for (std::uint64_t seq = from; seq < to; ++seq) {
        for (const auto& d : record(seq)) ASSERT_TRUE(src.send_to("127.0.0.1", w->bound_port(), as_bytes(d)));
      }
    };
    const auto records = [&] {
      np::listen::SourceStats total;
      w->add_totals(total);
      return total.records.value();
    };
    const auto wait_records = [&](std::uint64_t n) {
      for (int i = 0; i < 500 && records() < n; ++i) std::this_thread::sleep_for(10ms);
    };

    // Warm-up: the source is created, its file opened, buffers grow.
    std::thread warm([&] { w->run(); });
    send(0, 300);
    wait_records(300);
    shared.stop = true;
    warm.join();
    ASSERT_EQ(records(), 300u);

    // Measured: the same thread function again, guarded from its start.
    shared.stop = false;
    std::uint64_t allocations = ~0ull;
    std::thread measured([&] {
      AllocGuard guard;
      w->run();
      allocations = guard.stop();
    });
    send(300, 3300);
    wait_records(3300);
    shared.stop = true;
    measured.join();
    EXPECT_EQ(records(), 3300u);
    EXPECT_EQ(allocations, 0u) << (format == OutputFormat::kJson ? "json" : "text");

    // And what it wrote is every record, in order.
    std::ifstream in(dir / (format == OutputFormat::kJson ? "127.0.0.1_6665.json" : "127.0.0.1_6665.log"));
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::size_t at = 0;
    for (std::uint64_t seq = 0; seq < 3300; seq += 97) {
      const std::string want = format == OutputFormat::kJson ? "\"seq\":" + std::to_string(seq) + ","
                                                             : " user.info " + std::to_string(seq) + " record ";
      at = text.find(want, at);
      ASSERT_NE(at, std::string::npos) << seq;
    }
    w.reset();
    std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace np::receiver
