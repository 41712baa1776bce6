// debugnet::Stream against a server made of kernel UDP sockets in a peer
// namespace: the herald answered from a fresh port, every packet written
// where its offset says, loss both ways, a server that never answers.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "alloc_guard.h"
#include "listener.h"
#include "netns.h"
#include "netpoll/base/clock.h"
#include "netpoll/debugnet/stream.h"
#include "netpoll/wire/debugnet.h"

namespace np {
namespace {

using testing::ScopedNetns;
using testing::VethBed;
namespace dn = wire::debugnet;

// A debugnet server with the kernel's sockets: enough of one to check the
// client against the protocol. It records what it saw.
class TestServer {
 public:
  // ranges: answers DATA with range acks (wire/debugnet.h), one for each
  // run of up to 16 consecutive numbers, as netpoll dumpd does for a
  // client whose herald asks for them; first a malformed one.
  explicit TestServer(const testing::Netns& ns, bool ranges = false) : ranges_(ranges) {
    ScopedNetns in(ns);
    herald_ = udp_socket(dn::kServerPort);
    thread_ = std::thread([this] { run(); });
  }
  ~TestServer() {
    stop_ = true;
    thread_.join();
    ::close(herald_);
    if (session_ >= 0) ::close(session_);
  }

  // Waits (bounded) for FINISHED; the file as it stands then.
  bool wait_finished(std::chrono::seconds limit = std::chrono::seconds(20)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!finished_ && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return finished_;
  }

  std::vector<std::byte> file;  // as written, up to FINISHED's length
  std::string herald;
  std::uint32_t herald_aux2 = 0;
  std::uint16_t herald_client_port = 0;
  std::uint16_t session_port = 0;
  std::uint32_t finished_aux2 = 0;
  int heralds = 0;
  std::set<std::uint32_t> seen;  // sequence numbers
  int duplicates = 0;
  bool out_of_window = false;
  int acks_sent = 0;  // datagrams: plain and range acks

 private:
  static int udp_socket(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
    return fd;
  }

  void ack(int fd, const sockaddr_in& to, std::uint32_t seq) {
    std::byte b[4];
    wire::emit_debugnet_ack(seq, b);
    ::sendto(fd, b, sizeof b, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    ++acks_sent;
  }
  void ack_range(std::uint32_t first, std::uint32_t last) {
    std::byte b[8];
    wire::emit_debugnet_ack_range({first, last}, b);
    ::sendto(session_, b, sizeof b, 0, reinterpret_cast<const sockaddr*>(&client_), sizeof client_);
    ++acks_sent;
  }
  // The run not yet acknowledged, if any.
  void flush_run() {
    if (run_first_ != 0) ack_range(run_first_, run_last_);
    run_first_ = 0;
  }

  void run() {
    std::vector<std::byte> buf(65536);
    while (!stop_) {
      pollfd p[2] = {{herald_, POLLIN, 0}, {session_, POLLIN, 0}};
      if (::poll(p, session_ >= 0 ? 2 : 1, ranges_ ? 1 : 10) <= 0) {
        flush_run();
        continue;
      }
      for (int i = 0; i < 2; ++i) {
        if ((p[i].revents & POLLIN) == 0) continue;
        sockaddr_in from{};
        socklen_t fl = sizeof from;
        const ssize_t n = ::recvfrom(p[i].fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
        if (n < 0) continue;
        auto m = wire::DebugnetMessage<const std::byte>::check(std::span<const std::byte>(buf.data(), n));
        if (!m) continue;
        if (i == 0 && m->type() == dn::kHerald) {
          ++heralds;
          herald.assign(reinterpret_cast<const char*>(m->payload().data()), m->payload().size());
          herald_aux2 = m->aux2();
          herald_client_port = ntohs(from.sin_port);
          if (session_ < 0) {
            session_ = udp_socket(0);
            sockaddr_in me{};
            socklen_t ml = sizeof me;
            ::getsockname(session_, reinterpret_cast<sockaddr*>(&me), &ml);
            session_port = ntohs(me.sin_port);
          }
          ack(session_, from, m->seqno());
          if (ranges_) {
            client_ = from;
            // Neither an ack nor a message: counted by the client, nothing more.
            std::byte bad[8];
            store_be32(bad, 0, 5);
            store_be32(bad, 4, 1);
            ::sendto(session_, bad, sizeof bad, 0, reinterpret_cast<const sockaddr*>(&from), sizeof from);
          }
          continue;
        }
        if (i != 1) continue;
        const std::uint32_t seq = m->seqno();
        if (!seen.insert(seq).second) ++duplicates;
        if (seq >= highest_acked_ + dn::kMaxInFlight + 1 && highest_acked_ != 0) out_of_window = true;
        if (m->type() == dn::kData) {
          const std::uint64_t end = m->offset() + m->len();
          if (file.size() < end) file.resize(end);
          std::memcpy(file.data() + m->offset(), m->payload().data(), m->len());
        } else if (m->type() == dn::kFinished) {
          file.resize(m->offset());
          finished_aux2 = m->aux2();
          finished_ = true;
        }
        highest_acked_ = std::max(highest_acked_, seq);
        if (!ranges_ || m->type() != dn::kData) {
          flush_run();
          ack(session_, from, seq);
        } else if (run_first_ != 0 && seq == run_last_ + 1 && seq - run_first_ < 16) {
          run_last_ = seq;
        } else {
          flush_run();
          run_first_ = run_last_ = seq;
        }
      }
    }
  }

  const bool ranges_;
  sockaddr_in client_{};
  std::uint32_t run_first_ = 0, run_last_ = 0;
  int herald_ = -1;
  int session_ = -1;
  std::uint32_t highest_acked_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

std::unique_ptr<debugnet::Stream> make_stream(const VethBed& bed, std::chrono::milliseconds herald_interval =
                                                                      std::chrono::milliseconds(200),
                                              int herald_tries = 25, bool segment_offload = true) {
  ScopedNetns in(bed.a);
  debugnet::StreamConfig cfg;
  auto parsed = core::parse_targets(std::to_string(dn::kClientPort) + "@/" + bed.a_if + "," +
                                    std::to_string(dn::kServerPort) + "@" + bed.b_ip + "/");
  EXPECT_TRUE(parsed) << parsed.error().message;
  cfg.client.target = parsed->targets.at(0);
  cfg.client.target.device = "packet:" + bed.a_if;
  cfg.herald_interval = herald_interval;
  cfg.herald_tries = herald_tries;
  cfg.segment_offload = segment_offload;
  auto s = debugnet::Stream::setup(std::move(cfg));
  EXPECT_TRUE(s) << s.error().message;
  return s ? std::move(*s) : nullptr;
}

std::vector<std::byte> random_bytes(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<std::byte>(rng() | 1);  // never zero
  return v;
}

std::span<const std::byte> text_bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

std::int64_t in_seconds(int s) { return monotonic_ns() + std::int64_t{s} * 1'000'000'000; }

// Writes `data` page by page, leaving out the pages `hole` says, and
// finishes with `size`.
void transfer(debugnet::Stream& s, const std::vector<std::byte>& data, std::uint64_t size,
              const std::function<bool(std::size_t page)>& hole) {
  ASSERT_TRUE(s.open(text_bytes("kind=live\nprogram=test\n"), in_seconds(10)));
  for (std::size_t off = 0; off < data.size(); off += 4096) {
    if (hole(off / 4096)) continue;
    const auto n = std::min<std::size_t>(4096, data.size() - off);
    ASSERT_TRUE(s.write(off, std::span(data).subspan(off, n), in_seconds(30)));
  }
  const auto& st = s.stats();
  ASSERT_TRUE(s.finish(size, false, in_seconds(30)))
      << "packets " << st.packets.value() << ", acks " << st.acks.value() << ", retransmits "
      << st.retransmits.value() << ", fast " << st.fast_resends.value() << ", stray " << st.stray.value()
      << ", send errors " << st.send_errors.value() << "\n" << s.client().shared().stats_text()
      << "device rx " << s.client().shared().device().stats().rx_frames.value() << " dropped " << s.client().shared().device().stats().rx_dropped.value();
}

TEST(DebugnetStream, WritesEveryByteWhereItsOffsetSaysAndLeavesHolesZero) {
  VethBed bed;
  TestServer server(bed.b);
  auto s = make_stream(bed);
  ASSERT_TRUE(s);
  const auto data = random_bytes(1 << 20, 1);
  const std::uint64_t size = data.size() + 3 * 4096;  // a sparse tail
  transfer(*s, data, size, [](std::size_t page) { return page % 7 == 3; });
  ASSERT_TRUE(server.wait_finished());
  ASSERT_EQ(server.file.size(), size);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < size; ++i) {
    const bool hole = i >= data.size() || (i / 4096) % 7 == 3;
    wrong += server.file[i] != (hole ? std::byte{0} : data[i]);
  }
  EXPECT_EQ(wrong, 0u);
  // The description, and the stream's own line asking for range acks.
  EXPECT_EQ(server.herald, "kind=live\nprogram=test\nacks=ranges\n");
  EXPECT_EQ(server.herald_aux2, 1u);
  EXPECT_EQ(server.herald_client_port, dn::kClientPort);
  EXPECT_EQ(s->session_port(), 0u);  // the transfer is over
  EXPECT_FALSE(server.out_of_window);
  EXPECT_EQ(server.finished_aux2, 0u);
  // Contiguous pages travel in full packets: per run of written pages, its
  // bytes over the packet size rounded up; and the herald and FINISHED.
  std::uint64_t written = 0, expected_packets = 2, run = 0;
  for (std::size_t page = 0; page <= data.size() / 4096; ++page) {
    if (page < data.size() / 4096 && page % 7 != 3) {
      run += 4096;
      continue;
    }
    written += run;
    expected_packets += (run + s->max_data() - 1) / s->max_data();
    run = 0;
  }
  const auto& st = s->stats();
  EXPECT_EQ(st.data_bytes.value(), written);
  EXPECT_EQ(st.packets.value(), expected_packets);
  EXPECT_EQ(st.transfers.value(), 1u);
  EXPECT_EQ(st.finished.value(), 1u);
  EXPECT_EQ(st.failed.value(), 0u);
  EXPECT_EQ(st.acks.value() + 1, st.packets.value());  // every packet but the herald counted as acknowledged
  EXPECT_EQ(server.seen.size() + 1, st.packets.value());  // the herald came to the herald port
  // Runs of full packets went in segmented transmissions, which the
  // server's plain socket took as the datagrams above. This server acks
  // each packet alone: once the window is full, the stream waits for a
  // quarter of it before it sends again, so bursts stay long (without
  // that, a third went segmented).
  EXPECT_GT(st.segmented.value(), st.packets.value() * 3 / 4);
  EXPECT_LT(st.segmented.value(), st.packets.value());
}

// The same transfer with segment_offload off: every packet a transmission
// of its own, the same bytes at the server.
TEST(DebugnetStream, WithoutSegmentOffloadEveryPacketGoesAloneAndTheBytesAreTheSame) {
  VethBed bed;
  TestServer server(bed.b);
  auto s = make_stream(bed, std::chrono::milliseconds(200), 25, /*segment_offload=*/false);
  ASSERT_TRUE(s);
  const auto data = random_bytes(256 << 10, 5);
  transfer(*s, data, data.size(), [](std::size_t) { return false; });
  ASSERT_TRUE(server.wait_finished());
  EXPECT_TRUE(server.file == data);
  EXPECT_EQ(s->stats().segmented.value(), 0u);
  EXPECT_EQ(server.seen.size() + 1, s->stats().packets.value());
}

TEST(DebugnetStream, TakesARangeAcknowledgementForEachRunOfPackets) {
  VethBed bed;
  TestServer server(bed.b, /*ranges=*/true);
  auto s = make_stream(bed);
  ASSERT_TRUE(s);
  const auto data = random_bytes(1 << 20, 3);
  transfer(*s, data, data.size(), [](std::size_t) { return false; });
  ASSERT_TRUE(server.wait_finished());
  ASSERT_EQ(server.file.size(), data.size());
  EXPECT_TRUE(server.file == data);
  const auto& st = s->stats();
  // Every packet but the herald acknowledged, once, though the server sent
  // one datagram for up to 16 of them (a run of resent packets, when a
  // busy machine delays the server past the ack timeout, is answered again
  // with ranges of its own); the malformed range was stray.
  EXPECT_EQ(st.acks.value() + 1, st.packets.value());
  EXPECT_LT(2 * server.acks_sent, static_cast<int>(st.packets.value()))
      << "packets " << st.packets.value() << ", resent " << st.retransmits.value() + st.fast_resends.value();
  EXPECT_EQ(st.stray.value(), 1u);
}

TEST(DebugnetStream, ArrivesWholeUnderLossBothWays) {
  VethBed bed;
  tools::lose_udp_each_way(bed, 20, tools::random_udp_loss("sport 20024", 20), tools::random_udp_loss("dport 20024", 20));
  TestServer server(bed.b);
  auto s = make_stream(bed, std::chrono::milliseconds(50), 100);
  ASSERT_TRUE(s);
  const auto data = random_bytes(512 << 10, 2);
  transfer(*s, data, data.size(), [](std::size_t) { return false; });
  ASSERT_TRUE(server.wait_finished()) << "server saw " << server.seen.size() << " up to "
                                      << (server.seen.empty() ? 0 : *server.seen.rbegin()) << ", duplicates "
                                      << server.duplicates;
  EXPECT_TRUE(server.file == data);
  EXPECT_GT(s->stats().retransmits.value() + s->stats().fast_resends.value(), 0u);
  EXPECT_GT(server.duplicates, 0);  // acknowledgements were lost too
  tools::expect_losses_each_way(bed);
}

TEST(DebugnetStream, AServerThatNeverAnswersFailsTheHeraldInItsTries) {
  VethBed bed;
  auto s = make_stream(bed, std::chrono::milliseconds(30), 4);
  ASSERT_TRUE(s);
  const auto start = std::chrono::steady_clock::now();
  auto r = s->open(text_bytes("kind=live\n"), in_seconds(10));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::kTimeout);
  EXPECT_LT(took, std::chrono::seconds(2));
  EXPECT_EQ(s->stats().failed.value(), 1u);
  EXPECT_EQ(s->stats().retransmits.value(), 3u);
  // The stream is free again.
  EXPECT_EQ(s->open(text_bytes("kind=live\n"), monotonic_ns() + 10'000'000).error(), Errc::kTimeout);
}

TEST(DebugnetStream, ATransferAllocatesNothing) {
  VethBed bed;
  TestServer server(bed.b);
  auto s = make_stream(bed);
  ASSERT_TRUE(s);
  const auto data = random_bytes(256 << 10, 3);
  testing::AllocGuard guard;
  const bool opened = s->open(text_bytes("kind=live\n"), in_seconds(10)).has_value();
  bool written = opened;
  for (std::size_t off = 0; written && off < data.size(); off += 4096)
    written = s->write(off, std::span(data).subspan(off, 4096), in_seconds(10)).has_value();
  const bool finished = written && s->finish(data.size(), false, in_seconds(10)).has_value();
  EXPECT_EQ(guard.stop(), 0u);
  ASSERT_TRUE(opened && written && finished);
  ASSERT_TRUE(server.wait_finished());
  EXPECT_TRUE(server.file == data);
  EXPECT_GT(s->stats().segmented.value(), 0u) << "the guard watched segmented transmissions too";
}

TEST(DebugnetStream, AnotherThreadsTransferIsRefusedAsBusy) {
  VethBed bed;
  TestServer server(bed.b);
  auto s = make_stream(bed);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->open(text_bytes("kind=live\n"), in_seconds(10)));
  Result<void> other;
  std::thread([&] { other = s->open(text_bytes("kind=live\n"), in_seconds(1)); }).join();
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error(), Errc::kBusy);
  ASSERT_TRUE(s->finish(0, true, in_seconds(10)));
  ASSERT_TRUE(server.wait_finished());
  EXPECT_EQ(server.finished_aux2, 1u);
}

}  // namespace
}  // namespace np
