// The dump server on the loopback interface, in-process, against a test
// client that speaks the protocol with a kernel UDP socket: what it writes,
// what it answers (and from where), and what its statistics say.
#include "netpoll/dumpd/server.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "netpoll/base/function_ref.h"
#include "temp_dir.h"
#include "test_support.h"

namespace np::dumpd {
namespace {

using namespace std::chrono_literals;
using namespace test;
using np::testing::TempDir;
namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A server on 127.0.0.1, on a port the kernel picks, running on a thread
// of its own until stop(); its event lines collected.
class Running {
 public:
  explicit Running(Options o) {
    o.bind = "127.0.0.1";
    o.port = 0;
    o.log = [this](const std::string& line) {
      std::lock_guard g(mutex_);
      log_ += line + "\n";
    };
    auto s = Server::open(o);
    EXPECT_TRUE(s) << (s ? "" : s.error().message);
    if (!s) return;
    server_ = std::move(*s);
    thread_ = std::thread([this] { server_->run(stop_); });
  }
  ~Running() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool ok() const { return server_ != nullptr; }
  std::uint16_t port() const { return server_->port(); }
  const DumpdStats& stats() const { return server_->stats(); }
  unsigned sessions() const { return server_->sessions(); }
  std::string log() {
    std::lock_guard g(mutex_);
    return log_;
  }
  // Waits (bounded) until `cond` holds.
  bool wait_for(FunctionRef<bool()> cond, std::chrono::milliseconds limit = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!cond()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }

 private:
  std::unique_ptr<Server> server_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::string log_;
};

Options options_in(const TempDir& dir) {
  Options o;
  o.dir = (dir.path() / "dumps").string();
  o.limits.max_size = 16 << 20;
  o.limits.idle_ns = 10'000'000'000;
  return o;
}

// The files of one client's directory, by name.
std::vector<std::string> files_in(const fs::path& d) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(d, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// "20261127T001502Z-<pid>-<program><suffix>"
bool named_like(const std::string& name, const std::string& rest) {
  if (name.size() != 16 + rest.size() || name.substr(16) != rest) return false;
  for (std::size_t i = 0; i < 16; ++i) {
    const char c = name[i];
    const bool ok = i == 8 ? c == 'T' : i == 15 ? c == 'Z' : (c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string json_field(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return "<missing>";
  const auto begin = at + key.size() + 3;
  if (json[begin] == '"') return json.substr(begin + 1, json.find('"', begin + 1) - begin - 1);
  return json.substr(begin, json.find_first_of(",}", begin) - begin);
}

// A client that heralds, then sends what it is given, each message
// acknowledged before the next (the test's own pace).
struct Dumper {
  explicit Dumper(std::uint16_t herald_port, std::uint16_t own_port = 0) : peer(own_port), herald_port(herald_port) {}
  bool start(const std::string& description) {
    auto a = peer.exchange(herald_port, herald(1, description), 1);
    if (!a) return false;
    session_port = a->from_port;
    return true;
  }
  bool send(std::uint32_t seqno, std::uint64_t offset, std::string_view bytes) {
    return peer.exchange(session_port, data(seqno, offset, bytes), seqno).has_value();
  }
  bool finish(std::uint32_t seqno, std::uint64_t length, bool gave_up = false) {
    return peer.exchange(session_port, finished(seqno, length, gave_up), seqno).has_value();
  }
  UdpPeer peer;
  std::uint16_t herald_port;
  std::uint16_t session_port = 0;
};

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s) c = static_cast<char>(rng() % 255 + 1);  // never 0: a hole is told apart
  return s;
}

TEST(Server, WritesADumpSentInOrder) {
  TempDir dir;
  Running r(options_in(dir));
  ASSERT_TRUE(r.ok());
  Dumper c(r.port());
  ASSERT_TRUE(c.peer.ok());
  ASSERT_TRUE(c.start("kind=crash\nprogram=crashy\npid=4242\nsignal=11\nthreads=3\nsize=40000\nhost=box\n"));
  const std::string core = pattern(40000, 1);
  std::uint32_t seq = 2;
  for (std::size_t at = 0; at < core.size(); at += 1400) ASSERT_TRUE(c.send(seq++, at, std::string_view(core).substr(at, 1400)));
  ASSERT_TRUE(c.finish(seq, core.size()));
  // The ack of FINISHED comes after the file is in place.
  const fs::path client = dir.path() / "dumps" / "127.0.0.1";
  const auto files = files_in(client);
  ASSERT_EQ(files.size(), 2u) << ::testing::PrintToString(files);
  EXPECT_TRUE(named_like(files[0], "-4242-crashy.core")) << files[0];
  EXPECT_TRUE(named_like(files[1], "-4242-crashy.json")) << files[1];
  EXPECT_EQ(read_file(client / files[0]), core);
  const std::string json = read_file(client / files[1]);
  EXPECT_EQ(json_field(json, "complete"), "true") << json;
  EXPECT_EQ(json_field(json, "reason"), "<missing>");
  EXPECT_EQ(json_field(json, "core"), files[0]);
  EXPECT_EQ(json_field(json, "client"), "127.0.0.1");
  EXPECT_EQ(json_field(json, "client_port"), std::to_string(c.peer.port()));
  EXPECT_EQ(json_field(json, "program"), "crashy");
  EXPECT_EQ(json_field(json, "pid"), "4242");
  EXPECT_EQ(json_field(json, "signal"), "11");
  EXPECT_EQ(json_field(json, "threads"), "3");
  EXPECT_EQ(json_field(json, "kind"), "crash");
  EXPECT_EQ(json_field(json, "host"), "box");
  EXPECT_EQ(json_field(json, "size"), "40000");
  EXPECT_EQ(json_field(json, "bytes_written"), "40000");
  EXPECT_EQ(json_field(json, "file_size"), "40000");
  EXPECT_EQ(json_field(json, "packets"), std::to_string(seq - 1));  // 29 DATA and the FINISHED
  EXPECT_EQ(json_field(json, "duplicates"), "0");
  EXPECT_NE(json_field(json, "seconds"), "<missing>");
  EXPECT_EQ(r.stats().dumps.complete.value(), 1u);
  EXPECT_EQ(r.stats().dumps.bytes.value(), 40000u);
  EXPECT_EQ(r.stats().dumps.packets.value(), seq - 1);
  EXPECT_EQ(r.stats().dumps.acks.value(), seq);  // the herald's too
  const std::string log = r.log();
  EXPECT_NE(log.find("dump started: 127.0.0.1:" + std::to_string(c.peer.port()) +
                     " crashy pid 4242, signal 11 (SIGSEGV), 3 threads, kind crash, host box, 39.1 KiB -> " +
                     (client / files[0]).string()),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("dump complete: 127.0.0.1 crashy pid 4242: 39.1 KiB in "), std::string::npos) << log;
  EXPECT_NE(log.find(" MB/s, " + std::to_string(seq - 1) + " packets, 0 duplicates -> " + (client / files[0]).string()),
            std::string::npos)
      << log;
}

// A client's segmented transmission (UDP GSO) reaches the session socket
// as one datagram holding several packets (UDP_GRO): each is taken and
// acknowledged as if it had come alone, the short last one too.
TEST(Server, TakesPacketsThatArriveTogetherInOneDatagramEachOnItsOwn) {
  TempDir dir;
  Running r(options_in(dir));
  ASSERT_TRUE(r.ok());
  Dumper c(r.port());
  ASSERT_TRUE(c.start("program=gso\npid=5\n"));  // plain acks: one per packet
  const std::string core = pattern(3500, 4);
  std::vector<std::byte> together;
  for (std::uint32_t k = 0; k < 4; ++k) {
    const std::size_t at = k * 1000;
    const auto m = data(2 + k, at, std::string_view(core).substr(at, 1000));
    together.insert(together.end(), m.begin(), m.end());
  }
  ASSERT_TRUE(c.peer.send_segments_to(c.session_port, together, static_cast<std::uint16_t>(24 + 1000)));
  std::vector<std::uint32_t> acked;
  while (acked.size() < 4) {
    const auto a = c.peer.ack(2s);
    if (!a) break;
    acked.push_back(a->seqno);
  }
  EXPECT_EQ(acked, (std::vector<std::uint32_t>{2, 3, 4, 5}));
  EXPECT_EQ(r.stats().dumps.packets.value(), 4u);
  EXPECT_EQ(r.stats().refused.bad_length.value(), 0u) << stats_text(r.stats());
  ASSERT_TRUE(c.finish(6, core.size()));
  const auto files = files_in(dir.path() / "dumps" / "127.0.0.1");
  ASSERT_EQ(files.size(), 2u) << ::testing::PrintToString(files);
  EXPECT_EQ(read_file(dir.path() / "dumps" / "127.0.0.1" / files[0]), core);
}

TEST(Server, WritesADumpSentOutOfOrderWithDuplicatesAndHolesAsASparseFile) {
  TempDir dir;
  Running r(options_in(dir));
  ASSERT_TRUE(r.ok());
  Dumper c(r.port());
  ASSERT_TRUE(c.start("program=holes\npid=7\n"));
  // Pages 0, 1, 3, 4 and 9 of 12 (4096 each); 2, 5-8, 10-11 are zeros the
  // client leaves out, the last two the file's sparse tail.
  constexpr std::size_t kPage = 4096;
  const std::size_t pages[] = {9, 3, 0, 4, 1};
  std::string want(12 * kPage, '\0');
  std::uint32_t seq = 2;
  std::vector<std::pair<std::uint32_t, std::vector<std::byte>>> sent;
  for (const std::size_t p : pages) {
    const std::string page = pattern(kPage, static_cast<unsigned>(p));
    want.replace(p * kPage, kPage, page);
    sent.emplace_back(seq, data(seq, p * kPage, page));
    ++seq;
  }
  // All at once, as a window, in the order above; then two again (their
  // acks "lost"): answered again, counted, not written twice.
  for (const auto& [s, m] : sent) ASSERT_TRUE(c.peer.send_to(c.session_port, m));
  std::vector<std::uint32_t> acked;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    auto a = c.peer.ack(2s);
    ASSERT_TRUE(a) << i;
    EXPECT_EQ(a->from_port, c.session_port);
    acked.push_back(a->seqno);
  }
  std::sort(acked.begin(), acked.end());
  EXPECT_EQ(acked, (std::vector<std::uint32_t>{2, 3, 4, 5, 6}));
  ASSERT_TRUE(c.peer.exchange(c.session_port, sent[1].second, sent[1].first));
  ASSERT_TRUE(c.peer.exchange(c.session_port, sent[4].second, sent[4].first));
  ASSERT_TRUE(c.finish(seq, 12 * kPage));
  const fs::path client = dir.path() / "dumps" / "127.0.0.1";
  const auto files = files_in(client);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(read_file(client / files[0]), want);  // holes read as zeros
  struct stat st {};
  ASSERT_EQ(::stat((client / files[0]).c_str(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(12 * kPage));
  EXPECT_LT(st.st_blocks * 512, static_cast<blkcnt_t>(12 * kPage)) << "not sparse";
  const std::string json = read_file(client / files[1]);
  EXPECT_EQ(json_field(json, "complete"), "true");
  EXPECT_EQ(json_field(json, "bytes_written"), std::to_string(5 * kPage));
  EXPECT_EQ(json_field(json, "file_size"), std::to_string(12 * kPage));
  EXPECT_EQ(json_field(json, "duplicates"), "2");
  EXPECT_EQ(json_field(json, "packets"), "8");
  EXPECT_EQ(r.stats().dumps.duplicates.value(), 2u);
  EXPECT_EQ(r.stats().dumps.bytes.value(), 5 * kPage);
}

TEST(Server, ASilentClientsDumpIsKeptPartialAfterIdle) {
  TempDir dir;
  Options o = options_in(dir);
  o.limits.idle_ns = 300'000'000;
  Running r(o);
  ASSERT_TRUE(r.ok());
  Dumper c(r.port());
  ASSERT_TRUE(c.start("program=quiet\npid=11\nsize=8192\n"));
  ASSERT_TRUE(c.send(2, 4096, "half of it"));
  // The dump is counted as partial before its session is let go: wait for
  // both (the sanitizer build saw the count first).
  ASSERT_TRUE(r.wait_for([&] { return r.stats().dumps.partial.value() == 1 && r.sessions() == 0; }))
      << r.sessions() << " sessions";
  const fs::path client = dir.path() / "dumps" / "127.0.0.1";
  const auto files = files_in(client);
  ASSERT_EQ(files.size(), 2u) << ::testing::PrintToString(files);
  EXPECT_TRUE(named_like(files[0], "-11-quiet.core.partial")) << files[0];
  EXPECT_TRUE(named_like(files[1], "-11-quiet.json")) << files[1];
  EXPECT_EQ(read_file(client / files[0]), std::string(4096, '\0') + "half of it");
  const std::string json = read_file(client / files[1]);
  EXPECT_EQ(json_field(json, "complete"), "false");
  EXPECT_EQ(json_field(json, "reason"), "the client went silent");
  EXPECT_EQ(json_field(json, "core"), files[0]);
  EXPECT_EQ(json_field(json, "bytes_written"), "10");
  EXPECT_EQ(json_field(json, "file_size"), "4106");
  EXPECT_NE(r.log().find("dump partial: 127.0.0.1 quiet pid 11: the client went silent; 10 bytes in "),
            std::string::npos)
      << r.log();
  // Its port is closed: more data goes nowhere.
  EXPECT_FALSE(c.peer.exchange(c.session_port, data(3, 0, "late"), 3, 1));
}

TEST(Server, AClientThatGivesUpIsKeptPartial) {
  TempDir dir;
  Running r(options_in(dir));
  ASSERT_TRUE(r.ok());
  Dumper c(r.port());
  ASSERT_TRUE(c.start("program=quitter\npid=12\n"));
  ASSERT_TRUE(c.send(2, 0, "some"));
  ASSERT_TRUE(c.finish(3, 100, true));
  const fs::path client = dir.path() / "dumps" / "127.0.0.1";
  const auto files = files_in(client);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_TRUE(named_like(files[0], "-12-quitter.core.partial")) << files[0];
  EXPECT_EQ(json_field(read_file(client / files[1]), "reason"), "the client gave up");
  EXPECT_EQ(fs::file_size(client / files[0]), 100u);
  EXPECT_EQ(r.stats().dumps.partial.value(), 1u);
}

TEST(Server, AnswersTheHeraldFromAFreshPortAndAResentHeraldFromTheSameOne) {
  TempDir dir;
  Running r(options_in(dir));
  ASSERT_TRUE(r.ok());
  UdpPeer peer;
  const auto first = peer.exchange(r.port(), herald(1, "program=p\npid=5\n"), 1);
  ASSERT_TRUE(first);
  EXPECT_NE(first->from_port, r.port());
  EXPECT_NE(first->from_port, 0);
  // The ack was "lost": the herald again, the same session answers.
  const auto again = peer.exchange(r.port(), herald(1, "program=p\npid=5\n"), 1);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->from_port, first->from_port);
  EXPECT_EQ(r.stats().dumps.sessions.value(), 1u);
  EXPECT_EQ(r.stats().dumps.heralds_resent.value(), 1u);
  EXPECT_EQ(r.sessions(), 1u);
  // Another process (pid) from the same address and port: a session of its own.
  const auto other = peer.exchange(r.port(), herald(1, "program=p\npid=6\n"), 1);
  ASSERT_TRUE(other);
  EXPECT_NE(other->from_port, first->from_port);
  EXPECT_EQ(r.sessions(), 2u);
  // After data, a herald from pid 5 is the client starting over: its old
  // dump is kept partial, a new session answers from another port.
  ASSERT_TRUE(peer.exchange(first->from_port, data(2, 0, "old"), 2));
  const auto restarted = peer.exchange(r.port(), herald(1, "program=p\npid=5\n"), 1);
  ASSERT_TRUE(restarted);
  EXPECT_NE(restarted->from_port, first->from_port);
  EXPECT_NE(restarted->from_port, other->from_port);
  EXPECT_EQ(r.stats().dumps.sessions.value(), 3u);
  EXPECT_EQ(r.stats().dumps.partial.value(), 1u);
  EXPECT_NE(r.log().find("dump partial: 127.0.0.1 p pid 5: the client started over; 3 bytes"), std::string::npos)
      << r.log();
}

TEST(Server, RefusesHeraldsBeyondMaxClientsUntilASessionEnds) {
  TempDir dir;
  Options o = options_in(dir);
  o.max_clients = 2;
  Running r(o);
  ASSERT_TRUE(r.ok());
  Dumper a(r.port()), b(r.port()), c(r.port());
  ASSERT_TRUE(a.start("program=a\npid=1\n"));
  ASSERT_TRUE(b.start("program=b\npid=2\n"));
  ASSERT_TRUE(c.peer.send_to(r.port(), herald(1, "program=c\npid=3\n")));
  ASSERT_TRUE(r.wait_for([&] { return r.stats().refused.too_many_clients.value() == 1; }));
  EXPECT_FALSE(c.peer.ack(50ms)) << "a refused herald is not answered";
  EXPECT_EQ(r.stats().dumps.sessions.value(), 2u);
  EXPECT_EQ(r.sessions(), 2u);
  // One finishes: its slot is free for the next herald (its lingering
  // session, there to answer a repeated FINISHED, makes room).
  ASSERT_TRUE(a.send(2, 0, "a's core"));
  ASSERT_TRUE(a.finish(3, 8));
  ASSERT_TRUE(c.start("program=c\npid=3\n"));
  EXPECT_EQ(r.stats().dumps.sessions.value(), 3u);
  EXPECT_EQ(r.stats().refused.too_many_clients.value(), 1u);
}

TEST(Server, RefusesAndCountsDataPastMaxSizeWithoutAnsweringOrWritingIt) {
  TempDir dir;
  Options o = options_in(dir);
  o.limits.max_size = 65536;
  Running r(o);
  ASSERT_TRUE(r.ok());
  Dumper c(r.port());
  // A herald announcing more than --max-size: refused.
  ASSERT_TRUE(c.peer.send_to(r.port(), herald(1, "program=big\npid=9\nsize=65537\n")));
  ASSERT_TRUE(r.wait_for([&] { return r.stats().refused.size_too_big.value() == 1; }));
  EXPECT_FALSE(c.peer.ack(50ms));
  ASSERT_TRUE(c.start("program=big\npid=9\nsize=65536\n"));
  ASSERT_TRUE(c.peer.send_to(c.session_port, data(2, 65530, "0123456789")));
  ASSERT_TRUE(c.peer.send_to(c.session_port, data(3, std::uint64_t{1} << 62, "x")));
  ASSERT_TRUE(c.peer.send_to(c.session_port, finished(4, 65537)));
  ASSERT_TRUE(r.wait_for([&] { return r.stats().refused.beyond_max_size.value() == 3; }));
  EXPECT_FALSE(c.peer.ack(50ms)) << "a refused datagram is not answered";
  ASSERT_TRUE(c.send(5, 65526, "0123456789"));  // ends at 65536 exactly
  ASSERT_TRUE(c.finish(6, 65536));
  const fs::path client = dir.path() / "dumps" / "127.0.0.1";
  const auto files = files_in(client);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(read_file(client / files[0]), std::string(65526, '\0') + "0123456789");
  EXPECT_EQ(json_field(read_file(client / files[1]), "refused"), "3");
  EXPECT_EQ(r.stats().dumps.bytes.value(), 10u);
}

TEST(Server, CountsEveryHostileDatagramByReasonAndAnswersNone) {
  TempDir dir;
  Running r(options_in(dir));
  ASSERT_TRUE(r.ok());
  UdpPeer evil;
  const auto h = herald(1, "pid=1\n");
  auto unknown = data(2, 0, "x");
  unknown[3] = std::byte{7};
  auto too_long = data(2, 0, "x");
  too_long[19] = std::byte{200};  // len past the datagram
  // At the herald port.
  ASSERT_TRUE(evil.send_to(r.port(), std::span(h).first(3)));
  ASSERT_TRUE(evil.send_to(r.port(), std::span(h).first(4)));
  ASSERT_TRUE(evil.send_to(r.port(), std::span(h).first(23)));
  ASSERT_TRUE(evil.send_to(r.port(), too_long));
  ASSERT_TRUE(evil.send_to(r.port(), unknown));
  ASSERT_TRUE(evil.send_to(r.port(), data(2, 0, "no session")));
  ASSERT_TRUE(evil.send_to(r.port(), finished(3, 0)));
  ASSERT_TRUE(evil.send_to(r.port(), herald(1, "pid=1\n", 7)));
  ASSERT_TRUE(evil.send_to(r.port(), herald(1, "pid=1\nprogram=\x01\n")));
  const RefusalCounters& f = r.stats().refused;
  ASSERT_TRUE(r.wait_for([&] {
    return f.bad_length.value() == 3 && f.stray_ack.value() == 1 && f.unknown_type.value() == 1 &&
           f.no_session.value() == 2 && f.bad_revision.value() == 1 && f.bad_description.value() == 1;
  })) << stats_text(r.stats());
  EXPECT_FALSE(evil.ack(50ms));
  EXPECT_EQ(r.stats().dumps.sessions.value(), 0u);
  // At a session's port.
  Dumper c(r.port());
  ASSERT_TRUE(c.start("pid=2\n"));
  ASSERT_TRUE(c.peer.send_to(c.session_port, std::span(h).first(4)));
  ASSERT_TRUE(c.peer.send_to(c.session_port, herald(9, "pid=2\n")));
  ASSERT_TRUE(c.peer.send_to(c.session_port, message(dn::kFinished, 3, 0, {}, 5)));
  ASSERT_TRUE(c.peer.send_to(c.session_port, unknown));
  ASSERT_TRUE(c.peer.send_to(c.session_port, {}));  // an empty datagram
  ASSERT_TRUE(r.wait_for([&] {
    return f.stray_ack.value() == 2 && f.herald_on_session.value() == 1 && f.bad_finished.value() == 1 &&
           f.unknown_type.value() == 2 && f.bad_length.value() == 4;
  })) << stats_text(r.stats());
  EXPECT_FALSE(c.peer.ack(50ms));
  // The session goes on.
  ASSERT_TRUE(c.send(2, 0, "fine"));
  ASSERT_TRUE(c.finish(3, 4));
  // Someone else at the session's port: refused, counted, not answered.
  ASSERT_TRUE(evil.send_to(c.session_port, data(4, 0, "intruder")));
  ASSERT_TRUE(r.wait_for([&] { return f.stranger.value() == 1; })) << stats_text(r.stats());
  EXPECT_FALSE(evil.ack(50ms));
  const std::string text = stats_text(r.stats());
  EXPECT_NE(text.find("netpoll dumpd: sessions 1, complete 1, partial 0, empty 0, bytes 4, packets 2, acks 3, "
                      "duplicates 0"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\n  refused: bad length 4, stray ack 2, unknown type 2, no session 2, bad revision 1, "
                      "bad description 1, size too big 0, too many clients 0, setup failed 0, herald on session 1, "
                      "beyond max size 0, bad finished 1, after end 0, truncated 0, stranger 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(stats_json(r.stats()).find("\"refused\":{\"bad_length\":4,\"stray_ack\":2,"), std::string::npos);
}

TEST(Server, RunsExecWithThePathsOfEachDump) {
  TempDir dir;
  const fs::path script = dir.path() / "after.sh";
  const fs::path out = dir.path() / "after.out";
  {
    std::ofstream s(script);
    s << "#!/bin/sh\necho \"$@\" > " << out.string() << ".tmp && mv " << out.string() << ".tmp " << out.string()
      << "\n";
  }
  fs::permissions(script, fs::perms::owner_all);
  Options o = options_in(dir);
  o.exec = script.string();
  Running r(o);
  ASSERT_TRUE(r.ok());
  Dumper c(r.port());
  ASSERT_TRUE(c.start("program=ex\npid=3\n"));
  ASSERT_TRUE(c.send(2, 0, "core"));
  ASSERT_TRUE(c.finish(3, 4));
  ASSERT_TRUE(r.wait_for([&] { return fs::exists(out); })) << r.log();
  const fs::path client = dir.path() / "dumps" / "127.0.0.1";
  const auto files = files_in(client);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(read_file(out), "complete " + (client / files[0]).string() + " " + (client / files[1]).string() +
                                " 127.0.0.1\n");
  EXPECT_EQ(r.stats().dumps.exec_run.value(), 1u);
}

TEST(Server, CountsAnExecScriptThatFails) {
  TempDir dir;
  const fs::path script = dir.path() / "fails.sh";
  {
    std::ofstream s(script);
    s << "#!/bin/sh\nexit 3\n";
  }
  fs::permissions(script, fs::perms::owner_all);
  Options o = options_in(dir);
  o.exec = script.string();
  Running r(o);
  ASSERT_TRUE(r.ok());
  Dumper c(r.port());
  ASSERT_TRUE(c.start("program=ex\npid=3\n"));
  ASSERT_TRUE(c.send(2, 0, "core"));
  ASSERT_TRUE(c.finish(3, 4));
  ASSERT_TRUE(r.wait_for([&] { return r.stats().dumps.exec_failed.value() == 1; })) << r.log();
  EXPECT_NE(r.log().find("exec: " + script.string() + " (pid "), std::string::npos);
  EXPECT_NE(r.log().find(") exited with status 3"), std::string::npos) << r.log();
}

TEST(Server, TakesTwoClientsAtOnce) {
  TempDir dir;
  Running r(options_in(dir));
  ASSERT_TRUE(r.ok());
  Dumper a(r.port()), b(r.port());
  ASSERT_TRUE(a.start("program=alpha\npid=100\n"));
  ASSERT_TRUE(b.start("program=beta\npid=200\n"));
  EXPECT_NE(a.session_port, b.session_port);
  EXPECT_EQ(r.sessions(), 2u);
  const std::string ca = pattern(30000, 10), cb = pattern(20000, 20);
  std::uint32_t seq = 2;
  for (std::size_t at = 0; at < 30000; at += 1000, ++seq) {
    ASSERT_TRUE(a.send(seq, at, std::string_view(ca).substr(at, 1000)));
    if (at < 20000) {
      ASSERT_TRUE(b.send(seq, at, std::string_view(cb).substr(at, 1000)));
    }
  }
  ASSERT_TRUE(b.finish(seq, 20000));
  ASSERT_TRUE(a.finish(seq, 30000));
  const fs::path client = dir.path() / "dumps" / "127.0.0.1";
  const auto files = files_in(client);
  ASSERT_EQ(files.size(), 4u) << ::testing::PrintToString(files);
  std::string got_a, got_b;
  for (const auto& f : files) {
    if (f.ends_with("-100-alpha.core")) got_a = read_file(client / f);
    if (f.ends_with("-200-beta.core")) got_b = read_file(client / f);
  }
  EXPECT_EQ(got_a, ca);
  EXPECT_EQ(got_b, cb);
  EXPECT_EQ(r.stats().dumps.complete.value(), 2u);
}

TEST(Server, ASessionThatEndsBeforeAnyDataKeepsNothing) {
  TempDir dir;
  Options o = options_in(dir);
  o.limits.idle_ns = 200'000'000;
  Running r(o);
  ASSERT_TRUE(r.ok());
  Dumper c(r.port());
  ASSERT_TRUE(c.start("program=ghost\npid=4\n"));
  ASSERT_TRUE(r.wait_for([&] { return r.stats().dumps.empty.value() == 1; }));
  EXPECT_TRUE(files_in(dir.path() / "dumps" / "127.0.0.1").empty());
  EXPECT_EQ(r.stats().dumps.partial.value(), 0u);
  EXPECT_NE(r.log().find("dump abandoned: 127.0.0.1 ghost pid 4: the client went silent before any data; nothing kept"),
            std::string::npos)
      << r.log();
}

TEST(Server, StoppingKeepsDumpsInProgressAsPartial) {
  TempDir dir;
  Running r(options_in(dir));
  ASSERT_TRUE(r.ok());
  Dumper c(r.port());
  ASSERT_TRUE(c.start("program=cut\npid=8\n"));
  ASSERT_TRUE(c.send(2, 0, "cut short"));
  r.stop();
  const fs::path client = dir.path() / "dumps" / "127.0.0.1";
  const auto files = files_in(client);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_TRUE(named_like(files[0], "-8-cut.core.partial")) << files[0];
  EXPECT_EQ(json_field(read_file(client / files[1]), "reason"), "the server stopped");
}

TEST(Server, NamesFromTheHeraldCannotLeaveTheDirectory) {
  TempDir dir;
  Running r(options_in(dir));
  ASSERT_TRUE(r.ok());
  Dumper c(r.port());
  ASSERT_TRUE(c.start("program=../../x y\npid=1\n"));
  ASSERT_TRUE(c.send(2, 0, "z"));
  ASSERT_TRUE(c.finish(3, 1));
  const auto files = files_in(dir.path() / "dumps" / "127.0.0.1");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_TRUE(named_like(files[0], "-1-_._.._x_y.core")) << files[0];
  // The .json keeps the name as sent.
  EXPECT_EQ(json_field(read_file(dir.path() / "dumps" / "127.0.0.1" / files[1]), "program"), "../../x y");
}

// A full disk (a 256 KiB tmpfs): the session ends partial, counted, and
// the server goes on.
TEST(Server, AFullDiskMakesTheDumpPartialAndIsCounted) {
  TempDir dir;
  const fs::path mnt = dir.path() / "small";
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=256k") != 0) GTEST_SKIP() << "cannot mount a tmpfs";
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  Options o;
  o.dir = mnt.string();
  {
    Running r(o);
    ASSERT_TRUE(r.ok());
    Dumper c(r.port());
    ASSERT_TRUE(c.start("program=huge\npid=77\n"));
    const std::string chunk = pattern(16384, 3);
    std::uint32_t seq = 2;
    bool refused = false;
    for (std::uint64_t at = 0; at < (1 << 20) && !refused; at += chunk.size()) refused = !c.send(seq++, at, chunk);
    EXPECT_TRUE(refused) << "256 KiB took 1 MiB";
    // Counted as partial before the session is let go: wait for both.
    ASSERT_TRUE(r.wait_for([&] { return r.stats().dumps.partial.value() == 1 && r.sessions() == 0; })) << r.log();
    EXPECT_EQ(r.stats().errors.disk_full.value() >= 1, true) << stats_text(r.stats());
    EXPECT_GE(r.stats().errors.write_errors.value(), 1u);
    EXPECT_NE(r.log().find("dump partial: 127.0.0.1 huge pid 77: the server could not write the file (write: No "
                           "space left on device)"),
              std::string::npos)
        << r.log();
    const auto files = files_in(mnt / "127.0.0.1");
    ASSERT_FALSE(files.empty());
    EXPECT_TRUE(named_like(files[0], "-77-huge.core.partial")) << files[0];
    // The server still answers heralds.
    Dumper next(r.port());
    EXPECT_TRUE(next.start("program=next\npid=78\n"));
  }
}

}  // namespace
}  // namespace np::dumpd
