// The Decorator base and what the two decorators make of transmit_more(),
// over a fake inner device that records every call it gets.
#include "netpoll/dev/decorator.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "netpoll/dev/fault.h"
#include "netpoll/dev/pcap.h"

namespace np::dev {
namespace {

using Bytes = std::vector<std::byte>;

// Answers every call with fixed, recognisable values and logs the calls.
class FakeDevice final : public Device {
 public:
  std::size_t receive(std::size_t budget, FrameSink sink) noexcept override {
    calls.push_back("receive");
    if (budget == 0) return 0;
    sink(rx_frame);
    return 1;
  }
  TxStatus transmit(std::span<const std::byte> frame) noexcept override {
    calls.push_back("transmit");
    sent.emplace_back(frame.begin(), frame.end());
    return TxStatus::kOk;
  }
  TxStatus transmit_more(std::span<const std::byte> frame) noexcept override {
    calls.push_back("transmit_more");
    sent.emplace_back(frame.begin(), frame.end());
    return TxStatus::kOk;
  }
  void poll() noexcept override { calls.push_back("poll"); }
  LinkState link() const noexcept override { return LinkState{.running = true, .carrier = false}; }
  MacAddr mac() const noexcept override { return MacAddr(2, 0, 0, 0, 0, 7); }
  std::size_t mtu() const noexcept override { return 1234; }
  int ifindex() const noexcept override { return 42; }
  int fd() const noexcept override { return 99; }
  std::string_view name() const noexcept override { return "fake:0"; }
  const DeviceStats& stats() const noexcept override { return stats_; }

  Bytes rx_frame = Bytes(60, std::byte{0x5a});
  std::vector<std::string> calls;
  std::vector<Bytes> sent;

 private:
  DeviceStats stats_;
};

// A decorator that overrides nothing.
class PassThrough final : public Decorator {
 public:
  using Decorator::Decorator;
};

Bytes frame(std::uint8_t tag) {
  Bytes f(60, std::byte{tag});
  f[0] = std::byte{0x02};
  return f;
}

TEST(Decorator, ForwardsEveryCallToTheInnerDevice) {
  auto owned = std::make_unique<FakeDevice>();
  FakeDevice* fake = owned.get();
  PassThrough d(std::move(owned));

  std::vector<Bytes> got;
  EXPECT_EQ(d.receive(8, [&](std::span<const std::byte> f) { got.emplace_back(f.begin(), f.end()); }), 1u);
  EXPECT_EQ(got, std::vector<Bytes>{fake->rx_frame});
  EXPECT_EQ(d.transmit(frame(1)), TxStatus::kOk);
  EXPECT_EQ(d.transmit_more(frame(2)), TxStatus::kOk);
  d.poll();
  EXPECT_EQ(fake->calls, (std::vector<std::string>{"receive", "transmit", "transmit_more", "poll"}));
  EXPECT_EQ(fake->sent, (std::vector<Bytes>{frame(1), frame(2)}));

  EXPECT_TRUE(d.link().running);
  EXPECT_FALSE(d.link().carrier);
  EXPECT_EQ(d.mac(), MacAddr(2, 0, 0, 0, 0, 7));
  EXPECT_EQ(d.mtu(), 1234u);
  EXPECT_EQ(d.ifindex(), 42);
  EXPECT_EQ(d.fd(), 99);
  EXPECT_EQ(d.name(), "fake:0");
  EXPECT_EQ(&d.stats(), &fake->stats());
}

TEST(PcapWriter, RecordsFramesFromTransmitMoreAndLeavesThemBatched) {
  char path[] = "/tmp/np-decorator-XXXXXX";
  const int tmp = ::mkstemp(path);
  ASSERT_GE(tmp, 0);
  ::close(tmp);
  auto owned = std::make_unique<FakeDevice>();
  FakeDevice* fake = owned.get();
  auto d = wrap_pcap(std::move(owned), path);
  ASSERT_TRUE(d) << d.error().message;

  EXPECT_EQ((*d)->transmit_more(frame(1)), TxStatus::kOk);
  EXPECT_EQ((*d)->transmit_more(frame(2)), TxStatus::kOk);
  EXPECT_EQ((*d)->transmit(frame(3)), TxStatus::kOk);
  EXPECT_EQ(fake->calls, (std::vector<std::string>{"transmit_more", "transmit_more", "transmit"}));
  EXPECT_EQ((*d)->pcap_stats().tx_records.value(), 3u);
  d->reset();  // closes the file

  std::ifstream in(path, std::ios::binary);
  const std::vector<char> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ::unlink(path);
  ASSERT_EQ(file.size(), 24u + 3 * (16 + 60));
  for (std::size_t i = 0; i < 3; ++i) {
    const std::size_t data = 24 + i * (16 + 60) + 16;
    EXPECT_EQ(static_cast<std::uint8_t>(file[data + 1]), i + 1) << "record " << i;
  }
}

TEST(FaultDevice, TransmitMoreIsTransmitForTheInnerDevice) {
  auto owned = std::make_unique<FakeDevice>();
  FakeDevice* fake = owned.get();
  FaultOptions o;
  o.duplicate = 1;  // a fault that shows the frame went through the injector
  auto d = wrap_faults(std::move(owned), o);
  ASSERT_TRUE(d) << d.error().message;

  EXPECT_EQ((*d)->transmit_more(frame(1)), TxStatus::kOk);
  EXPECT_EQ(fake->calls, (std::vector<std::string>{"transmit", "transmit"}));
  EXPECT_EQ(fake->sent, (std::vector<Bytes>{frame(1), frame(1)}));
  EXPECT_EQ((*d)->fault_stats().duplicated.value(), 1u);
}

}  // namespace
}  // namespace np::dev
