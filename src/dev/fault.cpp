// Fault injector (see fault.h).
//
// Each direction (transmit, receive) has its own state, touched only by the
// thread that owns that side: a PRNG stream, a scratch slot for corrupting a
// frame that goes out at once, and a HoldStore of fixed slots with two FIFO
// queues over them:
//   waiting  frames held for reordering, until the next frame has gone out
//   release  frames due at a time (delay), or due now (reordered frames
//            whose next frame went out, duplicates the inner device had no
//            room for); they leave strictly in queue order
// A slot moves from waiting to release without copying.
#include "netpoll/dev/fault.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>

namespace np::dev {
namespace {

using Nanos = std::chrono::nanoseconds;

constexpr std::size_t kMaxHoldSlots = 65536;
constexpr std::chrono::milliseconds kMaxDelay = std::chrono::hours(24);
// Stream numbers: the two directions draw from unrelated sequences.
constexpr std::uint64_t kTxStream = 1;
constexpr std::uint64_t kRxStream = 2;

// SplitMix64 (Steele, Lea, Flood 2014): turns a seed into well-mixed state
// words, zero included.
std::uint64_t splitmix64(std::uint64_t& x) noexcept {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// xoshiro256** (Blackman, Vigna 2018): small, fast, and good enough that a
// drop rate over 10k frames lands where the binomial says it should.
class Rng {
 public:
  Rng(std::uint64_t seed, std::uint64_t stream) noexcept {
    std::uint64_t x = seed ^ (stream * 0xd1342543de82ef95ull);
    for (auto& w : s_) w = splitmix64(x);
  }
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1): the top 53 bits as a double. p = 1 always hits,
  // p = 0 never does.
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

struct Decision {
  bool drop = false;
  bool corrupt = false;
  bool duplicate = false;
  bool reorder = false;
  std::uint64_t where = 0;  // corruption: position (low half) and XOR value (high half)
};

// Five draws per frame whatever the settings: turning one fault on does not
// shift the sequence another one sees.
Decision draw(Rng& rng, const FaultOptions& o) noexcept {
  Decision d;
  d.drop = rng.uniform() < o.drop;
  d.corrupt = rng.uniform() < o.corrupt;
  d.duplicate = rng.uniform() < o.duplicate;
  d.reorder = rng.uniform() < o.reorder;
  d.where = rng.next();
  return d;
}

// Changes exactly one byte of a non-empty frame.
void corrupt_in_place(std::span<std::byte> frame, std::uint64_t where) noexcept {
  const std::size_t pos = static_cast<std::size_t>((where & 0xffffffffu) % frame.size());
  const auto mask = static_cast<std::uint8_t>(1 + ((where >> 32) % 255));  // 1..255, never 0
  frame[pos] ^= std::byte{mask};
}

// A FIFO of slot indices with a fixed capacity.
class IndexQueue {
 public:
  explicit IndexQueue(std::size_t cap) : cap_(cap), buf_(new std::uint32_t[cap == 0 ? 1 : cap]) {}
  bool empty() const noexcept { return count_ == 0; }
  std::uint32_t front() const noexcept { return buf_[head_]; }
  void push(std::uint32_t v) noexcept {
    buf_[(head_ + count_) % cap_] = v;
    ++count_;
  }
  void pop() noexcept {
    head_ = (head_ + 1) % cap_;
    --count_;
  }

 private:
  std::size_t cap_;
  std::unique_ptr<std::uint32_t[]> buf_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
};

class HoldStore {
 public:
  HoldStore(std::size_t slots, std::size_t slot_size)
      : slot_size_(slot_size),
        data_(new std::byte[(slots == 0 ? 1 : slots) * slot_size]),
        len_(new std::size_t[slots == 0 ? 1 : slots]),
        due_(new Nanos[slots == 0 ? 1 : slots]),
        free_(new std::uint32_t[slots == 0 ? 1 : slots]),
        free_count_(slots),
        waiting(slots),
        release(slots) {
    for (std::size_t i = 0; i < slots; ++i) free_[i] = static_cast<std::uint32_t>(slots - 1 - i);
  }

  // A free slot holding a copy of `frame`, or nullopt when all are taken.
  std::optional<std::uint32_t> take(std::span<const std::byte> frame) noexcept {
    if (free_count_ == 0) return std::nullopt;
    const std::uint32_t s = free_[--free_count_];
    std::memcpy(data_.get() + s * slot_size_, frame.data(), frame.size());
    len_[s] = frame.size();
    return s;
  }
  void give_back(std::uint32_t s) noexcept { free_[free_count_++] = s; }

  std::span<std::byte> frame(std::uint32_t s) noexcept { return {data_.get() + s * slot_size_, len_[s]}; }
  // Release time for slots in `release`; hold start for slots in `waiting`.
  Nanos& time(std::uint32_t s) noexcept { return due_[s]; }

  // Everything waiting follows now, due at `due`.
  void move_waiting_to_release(Nanos due) noexcept {
    while (!waiting.empty()) {
      const std::uint32_t s = waiting.front();
      waiting.pop();
      due_[s] = due;
      release.push(s);
    }
  }

  // Reordered frames whose next frame never came go out on their own.
  void expire_waiting(Nanos now) noexcept {
    if (!waiting.empty() && now - due_[waiting.front()] >= kReorderMaxHold) move_waiting_to_release(now);
  }

 private:
  const std::size_t slot_size_;
  std::unique_ptr<std::byte[]> data_;
  std::unique_ptr<std::size_t[]> len_;
  std::unique_ptr<Nanos[]> due_;
  std::unique_ptr<std::uint32_t[]> free_;
  std::size_t free_count_;

 public:
  IndexQueue waiting;
  IndexQueue release;
};

struct Side {
  Side(std::uint64_t seed, std::uint64_t stream, std::size_t slots, std::size_t slot_size)
      : rng(seed, stream), hold(slots, slot_size), scratch(new std::byte[slot_size]) {}
  Rng rng;
  HoldStore hold;
  std::unique_ptr<std::byte[]> scratch;  // a corrupted frame going out at once
  std::optional<Decision> pending;       // transmit: decided, not yet taken
};

class FaultInjector final : public FaultDevice {
 public:
  FaultInjector(std::unique_ptr<Device> wrapped, const FaultOptions& o)
      : FaultDevice(std::move(wrapped)),
        opts_(o),
        slot_size_(inner().mtu() + kEthHeaderLen),
        tx_(o.seed, kTxStream, o.hold_slots, slot_size_),
        rx_(o.seed, kRxStream, o.hold_slots, slot_size_) {}

  TxStatus transmit(std::span<const std::byte> frame) noexcept override {
    // Not ours to fault: the inner device answers (kError for too long).
    if (frame.empty() || frame.size() > slot_size_) return inner().transmit(frame);
    const Nanos now = clock();
    if (!flush_tx(now)) return TxStatus::kBusy;  // held frames go first
    if (!tx_.pending) tx_.pending = draw(tx_.rng, opts_);
    const Decision d = *tx_.pending;

    if (d.drop) {
      tx_.pending.reset();
      stats_.dropped.add();
      return TxStatus::kOk;
    }
    if (hold(tx_, frame, d, now)) {
      tx_.pending.reset();
      flush_tx(now);
      return TxStatus::kOk;
    }
    std::span<const std::byte> out = frame;
    if (d.corrupt) out = corrupted_copy(tx_, frame, d);
    const TxStatus s = inner().transmit(out);
    if (s == TxStatus::kBusy) return s;  // the decision waits for the retry
    tx_.pending.reset();  // taken, or refused for good (kError): either way this frame's draw is spent
    if (s == TxStatus::kError) return s;
    if (d.corrupt) stats_.corrupted.add();
    if (d.duplicate) {
      if (inner().transmit(out) == TxStatus::kOk) {
        stats_.duplicated.add();
      } else {
        hold_duplicate(tx_.hold, out, now);  // no room now: it follows as soon as there is
      }
    }
    tx_.hold.move_waiting_to_release(now);
    flush_tx(now);
    return TxStatus::kOk;
  }

  // Like transmit(): the frame meets its fault at once and reaches the inner
  // device through its transmit(), as frames released from the hold slots
  // do. Batching would save kicks, which a test wire does not need, at the
  // price of a second path to keep in step with the fault sequence.
  TxStatus transmit_more(std::span<const std::byte> frame) noexcept override { return transmit(frame); }

  void poll() noexcept override {
    inner().poll();
    flush_tx(clock());
  }

  std::size_t receive(std::size_t budget, FrameSink sink) noexcept override {
    const Nanos now = clock();
    rx_.hold.expire_waiting(now);
    std::size_t delivered = 0;
    // One inner frame at a time: a frame may turn into two deliveries (a
    // duplicate) or release held ones, and the budget must still hold.
    while (delivered < budget) {
      // Held frames that are due are older than anything still inside.
      while (delivered < budget && !rx_.hold.release.empty() &&
             rx_.hold.time(rx_.hold.release.front()) <= now) {
        const std::uint32_t s = rx_.hold.release.front();
        sink(rx_.hold.frame(s));
        ++delivered;
        rx_.hold.release.pop();
        rx_.hold.give_back(s);
      }
      if (delivered == budget) break;
      const std::size_t got = inner().receive(1, [&](std::span<const std::byte> frame) {
        on_receive(frame, now, budget, delivered, sink);
      });
      if (got == 0) break;
    }
    return delivered;
  }

  const FaultStats& fault_stats() const noexcept override { return stats_; }

 private:
  Nanos clock() const noexcept {
    if (opts_.now != nullptr) return opts_.now();
    return std::chrono::duration_cast<Nanos>(std::chrono::steady_clock::now().time_since_epoch());
  }

  std::span<const std::byte> corrupted_copy(Side& side, std::span<const std::byte> frame,
                                            const Decision& d) noexcept {
    const std::span<std::byte> copy(side.scratch.get(), frame.size());
    std::memcpy(copy.data(), frame.data(), frame.size());
    corrupt_in_place(copy, d.where);
    return copy;
  }

  // A free hold slot with a copy of `frame`, corrupted if `d` says so; nullopt
  // when all slots are taken.
  std::optional<std::uint32_t> take_slot(HoldStore& h, std::span<const std::byte> frame, const Decision& d) noexcept {
    const auto slot = h.take(frame);
    if (slot && d.corrupt) {
      corrupt_in_place(h.frame(*slot), d.where);
      stats_.corrupted.add();
    }
    return slot;
  }

  // A duplicate that cannot go out now follows from a hold slot, due at
  // `due`; with no slot free it is lost, and counted as overflow.
  void hold_duplicate(HoldStore& h, std::span<const std::byte> frame, Nanos due) noexcept {
    if (const auto slot = h.take(frame)) {
      h.time(*slot) = due;
      h.release.push(*slot);
      stats_.duplicated.add();
    } else {
      stats_.overflow.add();
    }
  }

  // Holds `frame` for reordering or delay, as `d` says, with its duplicate.
  // False when the frame is not held: no such fault, or no free slot
  // (counted as overflow); then it goes out at once.
  bool hold(Side& side, std::span<const std::byte> frame, const Decision& d, Nanos now) noexcept {
    HoldStore& h = side.hold;
    if (d.reorder) {
      if (const auto slot = take_slot(h, frame, d)) {
        h.time(*slot) = now;  // hold start, for kReorderMaxHold
        h.waiting.push(*slot);
        stats_.reordered.add();
        return true;
      }
      stats_.overflow.add();
    }
    if (opts_.delay.count() > 0) {
      if (const auto slot = take_slot(h, frame, d)) {
        const Nanos due = now + opts_.delay;
        h.time(*slot) = due;
        h.release.push(*slot);
        stats_.delayed.add();
        if (d.duplicate) hold_duplicate(h, h.frame(*slot), due);
        // This frame is the "next frame" reordered ones were waiting for.
        h.move_waiting_to_release(due);
        return true;
      }
      stats_.overflow.add();
    }
    return false;
  }

  // Sends held frames that are due, in order. False if the inner device was
  // busy and some are still due: they stay, and new frames must wait.
  bool flush_tx(Nanos now) noexcept {
    HoldStore& h = tx_.hold;
    h.expire_waiting(now);
    while (!h.release.empty()) {
      const std::uint32_t s = h.release.front();
      if (h.time(s) > now) return true;
      // kError: the inner device refused this frame for good and counted it.
      if (inner().transmit(h.frame(s)) == TxStatus::kBusy) return false;
      h.release.pop();
      h.give_back(s);
    }
    return true;
  }

  // One frame from the inner device. Called only while delivered < budget.
  void on_receive(std::span<const std::byte> frame, Nanos now, std::size_t budget, std::size_t& delivered,
                  FrameSink sink) noexcept {
    if (frame.empty() || frame.size() > slot_size_) {  // not a frame we can hold; pass it on
      sink(frame);
      ++delivered;
      return;
    }
    const Decision d = draw(rx_.rng, opts_);
    if (d.drop) {
      stats_.dropped.add();
      return;
    }
    if (hold(rx_, frame, d, now)) return;
    std::span<const std::byte> out = frame;
    if (d.corrupt) {
      out = corrupted_copy(rx_, frame, d);
      stats_.corrupted.add();
    }
    sink(out);
    ++delivered;
    if (d.duplicate) {
      if (delivered < budget) {
        sink(out);
        ++delivered;
        stats_.duplicated.add();
      } else {
        hold_duplicate(rx_.hold, out, now);
      }
    }
    rx_.hold.move_waiting_to_release(now);
  }

  const FaultOptions opts_;
  const std::size_t slot_size_;
  Side tx_;  // transmit side: transmit() and poll()
  Side rx_;  // receive side: receive()
  FaultStats stats_;
};

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

SetupResult<std::unique_ptr<FaultDevice>> wrap_faults(std::unique_ptr<Device> inner, const FaultOptions& options) {
  if (inner == nullptr) return setup_error(Errc::kInvalidArgument, "fault injector: no device to wrap");
  const std::pair<const char*, double> probabilities[] = {
      {"drop", options.drop}, {"dup", options.duplicate}, {"reorder", options.reorder}, {"corrupt", options.corrupt}};
  for (const auto& [key, p] : probabilities) {
    if (!(p >= 0.0 && p <= 1.0)) {  // also refuses NaN
      return setup_error(Errc::kInvalidArgument, std::string("fault injector: ") + key + "=" + number(p) +
                                                     " is not a probability from 0 to 1");
    }
  }
  if (options.delay.count() < 0 || options.delay > kMaxDelay) {
    return setup_error(Errc::kInvalidArgument, "fault injector: delay=" + std::to_string(options.delay.count()) +
                                                   "ms is not from 0 to 86400000 ms");
  }
  if (options.hold_slots > kMaxHoldSlots) {
    return setup_error(Errc::kInvalidArgument, "fault injector: hold_slots=" + std::to_string(options.hold_slots) +
                                                   " is more than " + std::to_string(kMaxHoldSlots));
  }
  return std::unique_ptr<FaultDevice>(new FaultInjector(std::move(inner), options));
}

}  // namespace np::dev
