// Two processes share an Ethernet segment over the UDP tunnel on loopback.
//
// The parent opens udp:127.0.0.1:P1@127.0.0.1:P2, forks, and the child
// opens the mirror image udp:127.0.0.1:P2@127.0.0.1:P1. The child sends its
// own frames, then checks and echoes every frame the parent sends; the
// parent checks both streams byte for byte. Every wait is a poll(2) on the
// device's fd with a deadline, and the child is always reaped (killed first
// if it overstays).
#include "netpoll/dev/udp_tunnel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "alloc_guard.h"
#include "netpoll/dev/open.h"

namespace np::dev {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kChildFrames = 64;
constexpr std::size_t kParentFrames = 64;
constexpr std::size_t kMaxFrame = 1514;
constexpr auto kDeadline = std::chrono::seconds(10);

// Child exit codes, so a failure in the child says what went wrong.
enum ChildExit : int {
  kChildOk = 0,
  kChildOpenFailed = 10,
  kChildSendFailed = 11,
  kChildBadFrame = 12,
  kChildTimeout = 13,
};

// A port on 127.0.0.1 free a moment ago (bound to 0, read back, released).
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ADD_FAILURE() << "cannot find a free UDP port: " << std::strerror(errno);
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// Frame `i` of a stream (`tag` tells the streams apart): real Ethernet
// addresses of the two ends, a local experimental ethertype, and a size and
// body that depend on both, from a minimum-size frame to a full one.
std::size_t frame_size(std::uint8_t tag, std::size_t i) { return 60 + (i * 211 + tag * 13) % (kMaxFrame - 59); }

void fill_frame(std::span<std::byte> f, const MacAddr& dst, const MacAddr& src, std::uint8_t tag, std::size_t i) {
  std::memcpy(f.data(), dst.bytes().data(), 6);
  std::memcpy(f.data() + 6, src.bytes().data(), 6);
  f[12] = std::byte{0x88};
  f[13] = std::byte{0xb5};
  f[14] = std::byte{tag};
  f[15] = std::byte(static_cast<std::uint8_t>(i));
  for (std::size_t k = 16; k < f.size(); ++k) f[k] = std::byte(static_cast<std::uint8_t>(k * 3 + i * 5 + tag));
}

std::vector<std::byte> make_frame(const MacAddr& dst, const MacAddr& src, std::uint8_t tag, std::size_t i) {
  std::vector<std::byte> f(frame_size(tag, i));
  fill_frame(f, dst, src, tag, i);
  return f;
}

bool wait_readable(int fd, Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return false;
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(left < 100 ? left : 100)) >= 0;
}

// Transmits, retrying a busy device until the deadline.
bool send_frame(Device& d, std::span<const std::byte> f, Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    const TxStatus s = d.transmit(f);
    if (s == TxStatus::kOk) return true;
    if (s == TxStatus::kError) return false;
    ::usleep(100);
  }
  return false;
}

// The child's whole life: no gtest, no return to the test runner.
[[noreturn]] void child_main(const std::string& spec, int ready_fd, const MacAddr& parent_mac) {
  const auto deadline = Clock::now() + kDeadline;
  auto dev = open_device(spec);
  if (!dev) ::_exit(kChildOpenFailed);
  Device& d = **dev;
  const char ready = 'r';
  if (::write(ready_fd, &ready, 1) != 1) ::_exit(kChildOpenFailed);
  ::close(ready_fd);

  for (std::size_t i = 0; i < kChildFrames; ++i) {
    if (!send_frame(d, make_frame(parent_mac, d.mac(), 'c', i), deadline)) ::_exit(kChildSendFailed);
  }
  std::size_t seen = 0;
  bool bad = false;
  while (seen < kParentFrames) {
    if (!wait_readable(d.fd(), deadline)) ::_exit(kChildTimeout);
    d.receive(16, [&](std::span<const std::byte> f) {
      const auto want = make_frame(d.mac(), parent_mac, 'p', seen);
      if (!std::equal(f.begin(), f.end(), want.begin(), want.end())) bad = true;
      ++seen;
      if (!send_frame(d, f, deadline)) bad = true;  // echo it back unchanged
    });
    if (bad) ::_exit(kChildBadFrame);
  }
  ::_exit(kChildOk);
}

std::string describe(int status) {
  if (status == -1) return "child still running";
  if (WIFEXITED(status)) return "child exit code " + std::to_string(WEXITSTATUS(status)) + " (see ChildExit)";
  if (WIFSIGNALED(status)) return "child killed by signal " + std::to_string(WTERMSIG(status));
  return "child wait status " + std::to_string(status);
}

// Reaps the child whatever happens to the test; kills it if it overstays.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // Waits until the deadline for the child to exit; its wait status, or -1.
  int wait(Clock::time_point deadline) {
    while (pid_ > 0) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        status_ = status;
        return status;
      }
      if (r < 0 || Clock::now() >= deadline) return -1;
      ::usleep(1000);
    }
    return status_;
  }
  // True once the child has exited (reaping it); never waits.
  bool gone() { return wait(Clock::now()) != -1; }

 private:
  pid_t pid_;
  int status_ = -1;
};

// Fixed storage for received frames, so that the receive path can be run
// under an allocation guard.
struct Inbox {
  std::array<std::array<std::byte, kMaxFrame>, kChildFrames + kParentFrames> frames{};
  std::array<std::size_t, kChildFrames + kParentFrames> sizes{};
  std::size_t count = 0;
  std::size_t overflow = 0;
  std::span<const std::byte> operator[](std::size_t i) const { return {frames[i].data(), sizes[i]}; }
};

TEST(UdpTunnelTwoProcesses, FramesCrossBothWaysByteExact) {
  const std::uint16_t p1 = free_port();
  const std::uint16_t p2 = free_port();
  ASSERT_NE(p1, p2);
  const std::string mine = "udp:127.0.0.1:" + std::to_string(p1) + "@127.0.0.1:" + std::to_string(p2);
  const std::string theirs = "udp:127.0.0.1:" + std::to_string(p2) + "@127.0.0.1:" + std::to_string(p1);
  // Open our end first: the child's frames wait in our socket until we read.
  auto opened = open_udp_tunnel_device(mine, std::string_view(mine).substr(4), {});
  ASSERT_TRUE(opened) << opened.error().message;
  UdpTunnelDevice& d = **opened;
  const MacAddr child_mac = udp_tunnel_default_mac(Ipv4Addr(127, 0, 0, 1), p2);

  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << std::strerror(errno);
  if (pid == 0) {
    ::close(ready[0]);
    child_main(theirs, ready[1], d.mac());
  }
  Child child(pid);
  ::close(ready[1]);
  const auto deadline = Clock::now() + kDeadline;
  pollfd p{ready[0], POLLIN, 0};
  char byte = 0;
  const bool child_ready = ::poll(&p, 1, 10'000) == 1 && ::read(ready[0], &byte, 1) == 1;
  ::close(ready[0]);
  ASSERT_TRUE(child_ready) << "child did not open its end (exit status " << child.wait(deadline) << ")";

  // Every frame we send is prepared before the guard; the guard then covers
  // each transmit and receive call.
  std::vector<std::vector<std::byte>> ours;
  for (std::size_t i = 0; i < kParentFrames; ++i) ours.push_back(make_frame(child_mac, d.mac(), 'p', i));
  auto inbox = std::make_unique<Inbox>();
  auto keep = [&](std::span<const std::byte> f) {
    if (inbox->count == inbox->frames.size() || f.size() > kMaxFrame) {
      ++inbox->overflow;
      return;
    }
    std::memcpy(inbox->frames[inbox->count].data(), f.data(), f.size());
    inbox->sizes[inbox->count++] = f.size();
  };
  std::uint64_t allocations = 0;
  std::size_t sent = 0;
  std::size_t echoes = 0;
  auto step = [&] {  // one pass of sending and receiving; true if it moved anything
    testing::AllocGuard guard;
    bool moved = false;
    // Keep a few frames in flight, not all: the echo stream stays paced.
    if (sent < kParentFrames && sent < echoes + 8 && d.transmit(ours[sent]) == TxStatus::kOk) {
      ++sent;
      moved = true;
    }
    const std::size_t before = inbox->count;
    moved = d.receive(16, keep) > 0 || moved;
    for (std::size_t k = before; k < inbox->count; ++k) echoes += (*inbox)[k][14] == std::byte{'p'};
    allocations += guard.stop();
    return moved;
  };
  // Until everything is in, or the child has exited a while ago (early, and
  // its exit code says why; or done, and its last echoes, normally in our
  // socket before its sendto() returned, have had time to arrive even if
  // the kernel deferred them).
  std::optional<Clock::time_point> exited;
  while (inbox->count < kChildFrames + kParentFrames && Clock::now() < deadline) {
    if (!exited && child.gone()) exited = Clock::now();
    if (exited && Clock::now() - *exited > std::chrono::seconds(1)) break;
    if (!step()) wait_readable(d.fd(), deadline);
  }
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(inbox->overflow, 0u);
  ASSERT_EQ(inbox->count, kChildFrames + kParentFrames)
      << "timed out, or the child exited early: " << describe(child.wait(Clock::now()));

  // The child's frames and the echoes of ours interleave; each stream keeps
  // its order (loopback UDP does not reorder).
  std::size_t next_child = 0, next_echo = 0;
  for (std::size_t k = 0; k < inbox->count; ++k) {
    const auto f = (*inbox)[k];
    ASSERT_GE(f.size(), 16u);
    if (f[14] == std::byte{'c'}) {
      const auto want = make_frame(d.mac(), child_mac, 'c', next_child++);
      EXPECT_TRUE(std::equal(f.begin(), f.end(), want.begin(), want.end())) << "child frame " << next_child - 1;
    } else {
      const auto& want = ours[next_echo++];
      EXPECT_TRUE(std::equal(f.begin(), f.end(), want.begin(), want.end())) << "echo " << next_echo - 1;
    }
  }
  EXPECT_EQ(next_child, kChildFrames);
  EXPECT_EQ(next_echo, kParentFrames);
  EXPECT_EQ(d.stats().rx_frames.value(), kChildFrames + kParentFrames);
  EXPECT_EQ(d.stats().rx_dropped.value(), 0u);
  EXPECT_EQ(d.stats().tx_frames.value(), kParentFrames);

  const int status = child.wait(Clock::now() + std::chrono::seconds(5));
  ASSERT_TRUE(status != -1 && WIFEXITED(status)) << "child did not exit (status " << status << ")";
  EXPECT_EQ(WEXITSTATUS(status), kChildOk) << describe(status);
}

}  // namespace
}  // namespace np::dev
