#include "netpoll/remote/server.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "netpoll/base/bytes.h"
#include "netpoll/base/clock.h"

namespace np::remote {
namespace {

namespace cm = wire::command;
using namespace std::chrono_literals;

constexpr std::int64_t kNow = 2'000'000'000'000'000'000;  // the clock the tests pass in

command::Key test_key() {
  command::Key k;
  k.id = 0xc0ffee01;
  for (std::size_t i = 0; i < command::kSecretLen; ++i) k.secret[i] = static_cast<unsigned char>(3 * i + 1);
  return k;
}

std::string server_wire() {
  static std::atomic<int> n{0};
  return "remote-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

// A server on one end of an in-memory wire (10.0.0.1:6665), polled by the
// test, and a sender on the other (10.0.0.2:40000) that keeps every reply
// datagram.
class ServerOnAWire : public ::testing::Test {
 protected:
  void start(bool symbolize = false) {
    const std::string w = server_wire();
    ServerConfig sc;
    sc.client.target = core::parse_targets("6665@10.0.0.1/,6666@0.0.0.0/")->targets.at(0);
    sc.client.target.device = "pair:" + w + "?mac=02:00:00:00:00:0a";
    ASSERT_TRUE(sc.keys.add(test_key()));
    sc.thread = false;
    sc.symbolize = symbolize;
    auto s = Server::setup(std::move(sc));
    ASSERT_TRUE(s) << s.error().message;
    server_ = std::move(*s);
    core::ClientConfig c;
    c.target = core::parse_targets("40000@10.0.0.2/,6665@10.0.0.1/02:00:00:00:00:0a")->targets.at(0);
    c.target.device = "pair:" + w + "?mac=02:00:00:00:00:0b";
    c.device.service_thread = false;
    c.rx_hook = [this](core::Netpoll&, const core::RxInfo&, std::span<const std::byte> p) {
      replies_.emplace_back(p.begin(), p.end());
    };
    auto np = core::Netpoll::setup(std::move(c));
    ASSERT_TRUE(np) << np.error().message;
    sender_ = std::move(*np);
  }

  std::vector<std::byte> request(std::string_view body, std::uint64_t counter, const command::Key& k = test_key()) {
    std::vector<std::byte> out(cm::kHeaderLen + body.size() + cm::kMacLen);
    static_cast<void>(command::seal_request(k, counter, kNow, as_bytes(body), out));
    return out;
  }

  // Sends a datagram, polls both ends a few rounds, returns the reply's
  // text (every authenticated part for `counter`, in order) and whether
  // its last part came.
  std::pair<std::string, bool> exchange(std::span<const std::byte> datagram, std::uint64_t counter) {
    replies_.clear();
    EXPECT_TRUE(sender_->send_udp(datagram));
    for (int i = 0; i < 20; ++i) {
      server_->poll_once(kNow);
      sender_->poll();
    }
    std::map<std::uint16_t, std::string> parts;
    bool last = false;
    for (const auto& d : replies_) {
      auto v = wire::CommandDatagram<const std::byte>::check(d);
      if (!v || !command::mac_matches(test_key(), *v)) continue;
      auto r = wire::CommandRepr::parse(*v);
      if (!r || r->kind != cm::kReply || r->counter != counter) continue;
      parts[r->part] = std::string(as_text(r->body));
      last = last || r->last;
    }
    std::string text;
    for (const auto& [n, t] : parts) text += t;
    return {text, last};
  }
  std::string ask(std::string_view body) {
    const std::uint64_t c = ++counter_;
    auto [text, last] = exchange(request(body, c), c);
    EXPECT_TRUE(last) << body;
    return text;
  }

  std::unique_ptr<Server> server_;
  std::unique_ptr<core::Netpoll> sender_;
  std::vector<std::vector<std::byte>> replies_;
  std::uint64_t counter_ = kNow;
};

TEST_F(ServerOnAWire, HelpListsEveryBuiltinWithItsLetterAndAnAddedCommand) {
  start();
  ASSERT_TRUE(server_->add_command("greet", "says hello to its arguments", [](std::string_view args, Reply& r) {
    r.text("hello, ").text(args).end_record();
  }));
  const std::string help = ask("h");
  for (const auto& b : command::kBuiltins) {
    EXPECT_NE(help.find(std::string(1, b.letter) + "  " + std::string(b.name)), std::string::npos) << help;
  }
  EXPECT_NE(help.find("greet: says hello to its arguments"), std::string::npos) << help;
  EXPECT_EQ(ask("greet remote world"), "hello, remote world\n");
  EXPECT_EQ(server_->stats().executed.value(), 2u);
}

TEST_F(ServerOnAWire, AnAddedCommandMayNotTakeABuiltinsNameOrLetter) {
  start();
  const auto noop = [](std::string_view, Reply&) {};
  EXPECT_FALSE(server_->add_command("t", "", noop));
  EXPECT_FALSE(server_->add_command("stacks", "", noop));
  EXPECT_FALSE(server_->add_command("two words", "", noop));
  EXPECT_TRUE(server_->add_command("mine", "", noop));
  EXPECT_FALSE(server_->add_command("mine", "", noop));
}

TEST_F(ServerOnAWire, AnUnknownCommandIsAnsweredAndCounted) {
  start();
  EXPECT_EQ(ask("frobnicate now"), "unknown command 'frobnicate' (h lists the commands)\n");
  EXPECT_EQ(server_->stats().unknown.value(), 1u);
  EXPECT_EQ(server_->stats().executed.value(), 0u);
}

TEST_F(ServerOnAWire, WithoutHooksDumpAndGdbSayWhatIsMissing) {
  start();
  EXPECT_EQ(ask("d"), "dump: no dump server configured\n");
  EXPECT_EQ(ask("gdb"), "gdb: no gdb stub configured\n");
  EXPECT_EQ(ask("level 3"), "level: no console in this process\n");
}

TEST_F(ServerOnAWire, ForgedReplayedAndStaleRequestsAreDroppedUnansweredAndNeverRun) {
  start();
  int runs = 0;
  ASSERT_TRUE(server_->add_command("count", "", [&runs](std::string_view, Reply& r) {
    ++runs;
    r.text("counted").end_record();
  }));
  command::Key forger = test_key();
  forger.secret[7] ^= 1;
  EXPECT_EQ(exchange(request("count", kNow + 100, forger), kNow + 100).first, "");
  command::Key stranger = test_key();
  stranger.id = 1;
  EXPECT_EQ(exchange(request("count", kNow + 101, stranger), kNow + 101).first, "");
  const auto good = request("count", kNow + 102);
  EXPECT_EQ(exchange(good, kNow + 102).first, "counted\n");
  EXPECT_EQ(exchange(good, kNow + 102).first, "");  // the same bytes again
  std::vector<std::byte> s(cm::kHeaderLen + 5 + cm::kMacLen);  // 40 s old
  static_cast<void>(command::seal_request(test_key(), kNow + 103, kNow - 40'000'000'000, as_bytes("count"), s));
  EXPECT_EQ(exchange(s, kNow + 103).first, "");
  EXPECT_EQ(exchange(std::span(good).first(40), kNow + 102).first, "");
  EXPECT_EQ(runs, 1);
  const auto& d = server_->verifier().drops();
  EXPECT_EQ(d.value(command::CommandDrop::kBadMac), 1u);
  EXPECT_EQ(d.value(command::CommandDrop::kUnknownKey), 1u);
  EXPECT_EQ(d.value(command::CommandDrop::kReplay), 1u);
  EXPECT_EQ(d.value(command::CommandDrop::kStale), 1u);
  EXPECT_EQ(d.value(command::CommandDrop::kTruncated), 1u);
}

TEST_F(ServerOnAWire, TheFirstPartIsAnEmptyAcknowledgementAndTheLastIsFlagged) {
  start();
  const std::uint64_t c = kNow + 7;
  static_cast<void>(exchange(request("h", c), c));
  ASSERT_GE(replies_.size(), 2u);
  auto first = wire::CommandRepr::parse(*wire::CommandDatagram<const std::byte>::check(replies_.front()));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->part, 0);
  EXPECT_TRUE(first->body.empty());
  EXPECT_FALSE(first->last);
  auto last = wire::CommandRepr::parse(*wire::CommandDatagram<const std::byte>::check(replies_.back()));
  ASSERT_TRUE(last);
  EXPECT_TRUE(last->last);
  EXPECT_EQ(last->part, replies_.size() - 1);
}

TEST_F(ServerOnAWire, MemoryGivesResidentSizeAndHeapStatistics) {
  start();
  const std::string m = ask("m");
  EXPECT_NE(m.find("memory of process " + std::to_string(::getpid())), std::string::npos) << m;
  EXPECT_NE(m.find("VmRSS "), std::string::npos) << m;
  EXPECT_NE(m.find("VmSize "), std::string::npos) << m;
  EXPECT_NE(m.find("heap: arena "), std::string::npos) << m;
}

TEST_F(ServerOnAWire, StatsCountTheCommandsAndTheirDrops) {
  start();
  command::Key forger = test_key();
  forger.secret[0] ^= 1;
  static_cast<void>(exchange(request("h", kNow + 50, forger), kNow + 50));
  const std::string s = ask("s");
  EXPECT_NE(s.find("remote commands: accepted 1, run 1, unknown 0"), std::string::npos) << s;
  EXPECT_NE(s.find("dropped 1 (bad_mac 1)"), std::string::npos) << s;
  EXPECT_NE(s.find("commands' device pair:"), std::string::npos) << s;
}

// A thread parked in a function of its own, for `stacks`.
std::atomic<bool> g_release_parked{false};
[[gnu::noinline]] void parked_in_remote_test_function() {
  while (!g_release_parked.load()) ::usleep(1000);
}

TEST_F(ServerOnAWire, StacksNamesEveryThreadAndWhereItIs) {
  start(true);
  g_release_parked = false;
  std::thread parked([] {
    pthread_setname_np(pthread_self(), "rt-parked");
    parked_in_remote_test_function();
  });
  ::usleep(20'000);
  const std::string t = ask("t");
  g_release_parked = true;
  parked.join();
  const auto at = t.find("(rt-parked)\n");
  ASSERT_NE(at, std::string::npos) << t;
  const auto end = t.find("\nthread ", at);
  const std::string record = t.substr(at, end == std::string::npos ? std::string::npos : end - at);
  EXPECT_NE(record.find("parked_in_remote_test_function"), std::string::npos) << record;
  EXPECT_NE(t.find(": running this command"), std::string::npos) << t;
  EXPECT_NE(t.find("stacks: "), std::string::npos) << t;
}

}  // namespace
}  // namespace np::remote
