// Fuzzes netpoll dumpd's protocol logic (dumpd/session.h, herald.h): a
// session fed a sequence of datagrams and events, every datagram also
// judged as a herald. Invariants: every write lies within max_size and
// inside the datagram; nothing is written or acked after the session left
// `receiving` (a repeated FINISHED's ack aside) nor for a refused
// datagram; a file is finished at most once; an accepted herald's names
// are bounded and safe as file names. A session's memory is its fixed
// members (sizeof, checked at compile time below), whatever comes in.
//
// Input: max_size (4 bytes, big-endian), the herald's number (4), then
// records: op (1: 0 receive, 1 herald again, 2 expire, 3 abort), time step
// (1, in 10 ms), length (2, big-endian) and that many bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "netpoll/base/bytes.h"
#include "netpoll/dumpd/session.h"

using namespace np;
using namespace np::dumpd;

static_assert(sizeof(Session) <= 512, "a session is fixed, small state");

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  if (size < 8) return 0;
  Limits limits;
  limits.max_size = load_be32(in, 0) + std::uint64_t{1};
  limits.idle_ns = 1'000'000'000;
  limits.linger_ns = 200'000'000;
  std::int64_t now = 0;
  Session s(limits, load_be32(in, 4), now);
  int ends = 0;
  std::uint64_t receives = 0;
  // The acks asked for, through AckRuns as a range client gets them: the
  // runs, expanded, are exactly the numbers in the order they were asked.
  AckRuns runs(true);
  std::vector<std::uint32_t> asked;
  const auto take_run = [&](const AckRun& r) {
    if ((r.first == 0 && r.last != 0) || r.first > r.last || r.last - r.first >= 64 || asked.size() < r.last - r.first + 1u) std::abort();
    for (std::uint32_t k = 0; k <= r.last - r.first; ++k) {
      if (asked[k] != r.first + k) std::abort();
    }
    asked.erase(asked.begin(), asked.begin() + (r.last - r.first + 1));
  };
  for (std::size_t at = 8; at + 4 <= size;) {
    const auto op = static_cast<std::uint8_t>(in[at]);
    now += static_cast<std::int64_t>(in[at + 1]) * 10'000'000;
    const std::size_t len = std::min<std::size_t>(load_be16(in, at + 2), size - at - 4);
    const auto d = in.subspan(at + 4, len);
    at += 4 + len;
    if (const auto h = check_herald(d, limits)) {
      if (h->info.size > limits.max_size || h->info.program.size() > kMaxName || h->info.host.size() > kMaxName)
        std::abort();
      const std::string name = sanitised_name(h->info.program);
      if (name.empty() || name.size() > kMaxFileName || name.front() == '.' || name.find('/') != std::string::npos)
        std::abort();
    }
    const Session::State before = s.state();
    switch (op % 4) {
      case 0: {
        ++receives;
        const Step st = s.receive(d, now);
        if (st.refused != Refusal::kNone) {
          if (!st.data.empty() || st.ack || st.end != End::kNone) std::abort();
          break;
        }
        if (!st.data.empty()) {
          if (before != Session::State::kReceiving) std::abort();
          if (st.offset > limits.max_size || st.data.size() > limits.max_size - st.offset) std::abort();
          if (st.data.data() < d.data() || st.data.data() + st.data.size() > d.data() + d.size()) std::abort();
        }
        if (st.end != End::kNone) {
          if (++ends > 1 || st.final_size > limits.max_size) std::abort();
        }
        if (st.ack) {
          asked.push_back(st.ack_seqno);
          if (const auto r = runs.add(st.ack_seqno)) take_run(*r);
        }
        if (before == Session::State::kClosed) std::abort();  // nothing accepted once closed
        if (before == Session::State::kFinished && !st.duplicate) std::abort();
        break;
      }
      case 1:
        (void)s.herald_again(0, now);
        break;
      case 2:
        if (now >= s.deadline_ns()) (void)s.expire(now);
        break;
      case 3:
        s.abort(End::kStopped, now);
        break;
    }
    if (s.extent() > limits.max_size) std::abort();
    if (s.counters().packets + s.counters().refused != receives) std::abort();
  }
  if (const auto r = runs.close()) take_run(*r);
  if (!asked.empty()) std::abort();
  return 0;
}
