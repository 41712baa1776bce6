// Syslog forwarding against real sockets on the loopback interface: the
// bytes each server receives, and what is counted when there is none.
#include "netpoll/receiver/syslog_writer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "netpoll/listen/format.h"
#include "test_support.h"

namespace np::receiver {
namespace {

using namespace std::chrono_literals;
using np::listen::Clock;
using test::LoopbackSocket;

using test::kContext;

// The RFC 5424 message listen/format.h makes of `r`.
std::string message(const np::listen::Record& r) {
  std::string s;
  np::listen::append_syslog(s, r, {std::chrono::system_clock::time_point(std::chrono::microseconds(test::kWhenUs)),
                                   kContext.source});
  return s;
}

TEST(SyslogWriter, SendsOneDatagramPerMessageOverUdp) {
  LoopbackSocket server(SOCK_DGRAM);
  ASSERT_TRUE(server.ok());
  SyslogWriter w(SyslogTarget{false, "127.0.0.1", server.port()});
  const std::string with_nul("a NUL\0inside", 12);
  const np::listen::Record records[] = {test::record(1, "first"), test::record(2, with_nul),
                                        test::record(3, "third")};
  for (const auto& r : records) w.add(kContext, r);
  EXPECT_EQ(w.pending(), 3u);
  const auto f = w.flush(Clock::now());
  EXPECT_EQ(f.sent, 3u);
  EXPECT_EQ(f.dropped, 0u);
  EXPECT_EQ(w.pending(), 0u);
  EXPECT_TRUE(w.connected());
  for (const auto& r : records) {
    const auto got = server.receive(2s);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, message(r));
  }
  EXPECT_EQ(message(records[0]).rfind("<27>1 " + std::string(test::kWhen) + " 10.77.0.2 netconsole - - ", 0), 0u)
      << message(records[0]);
  EXPECT_FALSE(server.receive(50ms).has_value());
  // An empty flush sends nothing.
  const auto none = w.flush(Clock::now());
  EXPECT_EQ(none.sent + none.dropped, 0u);
}

TEST(SyslogWriter, FramesMessagesWithOctetCountingOverTcp) {
  LoopbackSocket server(SOCK_STREAM);
  ASSERT_TRUE(server.ok());
  SyslogWriter w(SyslogTarget{true, "127.0.0.1", server.port()});
  const auto a = test::record(7, "line one"), b = test::record(8, "two\nlines");
  w.add(kContext, a);
  w.add(kContext, b);
  const auto f = w.flush(Clock::now());  // the connection completes in the listener's backlog
  EXPECT_EQ(f.sent, 2u);
  EXPECT_EQ(f.dropped, 0u);
  const std::string want = std::to_string(message(a).size()) + " " + message(a) + std::to_string(message(b).size()) +
                           " " + message(b);
  EXPECT_EQ(server.accept_and_read(want.size(), 2s), want);
}

TEST(SyslogWriter, CountsMessagesDroppedWithoutAServerAndRetriesAtMostOnceASecond) {
  std::uint16_t port = 0;
  {
    LoopbackSocket probe(SOCK_STREAM);  // a port nobody listens on once it is closed
    port = probe.port();
  }
  SyslogWriter w(SyslogTarget{true, "127.0.0.1", port});
  const auto t0 = Clock::now();
  w.add(kContext, test::record(1, "lost"));
  w.add(kContext, test::record(2, "lost too"));
  auto f = w.flush(t0);
  EXPECT_EQ(f.sent, 0u);
  EXPECT_EQ(f.dropped, 2u);
  EXPECT_FALSE(w.connected());
  EXPECT_EQ(w.pending(), 0u);

  // The server comes up; within the second no attempt is made.
  LoopbackSocket server(SOCK_STREAM, port);
  ASSERT_TRUE(server.ok());
  w.add(kContext, test::record(3, "too early"));
  f = w.flush(t0 + 999ms);
  EXPECT_EQ(f.dropped, 1u);
  EXPECT_FALSE(w.connected());
  // A second after the failed attempt it connects.
  const auto r = test::record(4, "delivered");
  w.add(kContext, r);
  f = w.flush(t0 + 1s);
  EXPECT_EQ(f.sent, 1u);
  EXPECT_EQ(f.dropped, 0u);
  EXPECT_TRUE(w.connected());
  const std::string want = std::to_string(message(r).size()) + " " + message(r);
  EXPECT_EQ(server.accept_and_read(want.size(), 2s), want);
}

TEST(SyslogWriter, AConnectionThatBreaksDropsItsMessagesAndIsMadeAgain) {
  std::optional<LoopbackSocket> server(std::in_place, SOCK_STREAM);
  ASSERT_TRUE(server->ok());
  const std::uint16_t port = server->port();
  SyslogWriter w(SyslogTarget{true, "127.0.0.1", port});
  const auto t0 = Clock::now();
  w.add(kContext, test::record(1, "first"));
  ASSERT_EQ(w.flush(t0).sent, 1u);
  server.reset();  // the server goes away: its queued connection is reset
  // A big enough write to meet the reset (the first may still be taken by
  // the kernel's buffers).
  std::uint64_t dropped = 0;
  for (int i = 0; i < 20 && dropped == 0; ++i) {
    w.add(kContext, test::record(2, std::string(60000, 'x')));
    dropped += w.flush(t0 + std::chrono::seconds(i)).dropped;
    ::usleep(10'000);
  }
  EXPECT_GT(dropped, 0u);
  EXPECT_FALSE(w.connected());
  server.emplace(SOCK_STREAM, port);
  ASSERT_TRUE(server->ok());
  w.add(kContext, test::record(3, "again"));
  EXPECT_EQ(w.flush(t0 + 60s).sent, 1u);
  EXPECT_TRUE(w.connected());
}

}  // namespace
}  // namespace np::receiver
