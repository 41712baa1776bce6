// Micro-benchmarks of the netconsole sender's user-space work, over the
// in-memory pair (no kernel): what a record costs on top of a datagram.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "netpoll/console/logger.h"
#include "netpoll/dev/open.h"

namespace {

using namespace np;

std::string target(const char* prefix, int n) {
  return fmt::format("{}6665@10.0.0.1/pair:bench-{}?slots=65536,6666@10.0.0.2/02:00:00:00:00:02", prefix, n);
}

// netpoll send_udp of a 70-byte payload, 64 per kick, read off the far end.
void BM_SendUdp(benchmark::State& state) {
  core::ClientConfig c;
  c.target = core::parse_targets(target("", 1))->targets[0];
  c.device.service_thread = false;
  auto np = core::Netpoll::setup(std::move(c));
  auto far = dev::open_device("pair:bench-1?slots=65536");
  const std::vector<std::byte> payload(70, std::byte{'x'});
  std::uint64_t n = 0, refused = 0;
  for (auto _ : state) {
    if (!(*np)->send_udp(payload, ++n % 64 == 0 ? core::Flush::kNow : core::Flush::kLater)) ++refused;
    if (n % 1024 == 0) (*far)->receive(2048, [](std::span<const std::byte>) {});
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["refused"] = static_cast<double>(refused);  // a figure with refusals in it is not the send path's
}
BENCHMARK(BM_SendUdp);

// log() then the sender's work for it (drain), extended format.
void BM_LogAndDrain(benchmark::State& state) {
  console::LoggerConfig c;
  console::TargetConfig t;
  t.target = core::parse_targets(target("+", 2))->targets[0];
  c.targets.push_back(t);
  c.sender_thread = false;
  c.ring_records = 4096;
  c.device.service_thread = false;
  auto lg = console::Logger::create(std::move(c));
  auto far = dev::open_device("pair:bench-2?slots=65536");
  std::uint64_t n = 0;
  for (auto _ : state) {
    (*lg)->log(console::Level::kInfo, "bench record {} of the console benchmark", n);
    if (++n % 64 == 0) {
      (*lg)->drain();
      (*far)->receive(2048, [](std::span<const std::byte>) {});
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_LogAndDrain);

}  // namespace
