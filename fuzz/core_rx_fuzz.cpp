// Fuzzes the core's receive path: each input is one frame, sent from a raw
// end of an in-memory pair to a SharedDevice whose clients are
// 10.0.0.2:6666 and [fd77::2]:6666 (02:00:00:00:00:02), then polled. No
// crash, no sanitizer report, and every frame the pair delivered is
// accounted for once: delivered to a client, dropped under a reason, passed
// through, or consumed as ARP or neighbour discovery.
//
// Seeds: a UDP datagram for each client, an ARP request and a neighbour
// solicitation for their addresses (made with scapy as the wire golden
// frames are: see src/wire/golden.h for the recipes).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "netpoll/core/netpoll.h"
#include "netpoll/dev/open.h"

using namespace np;

namespace {

struct Bed {
  std::unique_ptr<core::Netpoll> client;
  std::unique_ptr<core::Netpoll> client6;
  std::unique_ptr<dev::Device> raw;
  std::uint64_t delivered = 0;
};

Bed& bed() {
  static Bed* b = [] {
    auto* b = new Bed;
    core::ClientConfig c;
    auto t = core::parse_targets("6666@10.0.0.2/pair:core-rx-fuzz?mac=02:00:00:00:00:02,@0.0.0.0/");
    if (!t) std::abort();
    c.target = t->targets.at(0);
    c.device.service_thread = false;
    c.resolve_remote_mac = false;
    c.rx_hook = [b](core::Netpoll&, const core::RxInfo&, std::span<const std::byte>) { ++b->delivered; };
    auto np = core::Netpoll::setup(std::move(c));
    if (!np) std::abort();
    b->client = std::move(*np);
    core::ClientConfig c6;
    auto t6 = core::parse_targets("6666@fd77::2/pair:core-rx-fuzz?mac=02:00:00:00:00:02,@::/");
    if (!t6) std::abort();
    c6.target = t6->targets.at(0);
    c6.device.service_thread = false;
    c6.resolve_remote_mac = false;
    c6.rx_hook = [b](core::Netpoll&, const core::RxInfo&, std::span<const std::byte>) { ++b->delivered; };
    auto np6 = core::Netpoll::setup(std::move(c6));
    if (!np6) std::abort();
    b->client6 = std::move(*np6);
    auto raw = dev::open_device("pair:core-rx-fuzz?mac=02:00:00:00:00:01");
    if (!raw) std::abort();
    b->raw = std::move(*raw);
    // Released before the leak check: the shared device lives in guarded
    // memory (mmap), where LeakSanitizer does not look for pointers.
    std::atexit([] { delete &bed(); });
    return b;
  }();
  return *b;
}

}  // namespace

namespace {

// Verdict counters: a frame that reaches the receive path changes exactly
// one of them by one, unless it is ARP or neighbour discovery netpoll
// consumed (a reply or advertisement for it, or a request or solicitation
// it answered, or tried to). A datagram both clients match (none: they
// differ in family) would count twice.
struct Tally {
  std::uint64_t verdicts, arp;
  static Tally of(const Bed& b) {
    const auto& st = b.client->shared().stats();
    return {b.delivered + st.rx_drops.total() + st.rx_passed.value(),
            st.arp_replies_seen.value() + st.arp_replies_sent.value() + st.nd_adverts_seen.value() +
                st.nd_adverts_sent.value() + st.tx_drops.total()};
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bed& b = bed();
  const std::span<const std::byte> frame(reinterpret_cast<const std::byte*>(data), size);
  const auto& st = b.client->shared().stats();
  const std::uint64_t frames_before = st.rx_frames.value();
  const Tally before = Tally::of(b);
  const bool sent = b.raw->transmit(frame) == dev::TxStatus::kOk;
  b.client->poll();
  // What the client sent back (ARP replies) leaves the raw end's ring.
  b.raw->receive(64, [](std::span<const std::byte>) {});
  const std::uint64_t seen = st.rx_frames.value() - frames_before;
  if (seen != (sent ? 1u : 0u)) std::abort();
  const Tally after = Tally::of(b);
  const std::uint64_t verdicts = after.verdicts - before.verdicts;
  if (verdicts > seen) std::abort();
  if (verdicts < seen && after.arp == before.arp) std::abort();  // a frame without a verdict
  return 0;
}
