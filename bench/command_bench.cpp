// Micro-benchmarks of remote commands' verifier: what a forged datagram
// costs the receiving process (the flood case), next to a good one.
#include <benchmark/benchmark.h>

#include <optional>
#include <string>
#include <vector>

#include "netpoll/base/bytes.h"
#include "netpoll/command/verifier.h"

namespace {

using namespace np;

constexpr std::int64_t kBenchNow = 2'000'000'000'000'000'000;

command::Key bench_key() {
  command::Key k;
  k.id = 7;
  for (std::size_t i = 0; i < command::kSecretLen; ++i) k.secret[i] = static_cast<unsigned char>(i * 5);
  return k;
}

std::vector<std::byte> bench_request(const command::Key& k, std::uint64_t counter, std::size_t body_len) {
  const std::string body(body_len, 't');
  std::vector<std::byte> out(wire::command::kHeaderLen + body_len + wire::command::kMacLen);
  static_cast<void>(command::seal_request(k, counter, kBenchNow, as_bytes(body), out));
  return out;
}

// A forged request under the right key id, of the longest body a request
// may have (256 bytes): the most a forgery can cost (one HMAC, 320 bytes).
void BM_VerifyForgedLongest(benchmark::State& state) {
  static_cast<void>(command::crypto_ready());
  command::KeyRing ring;
  ring.add(bench_key());
  command::Verifier v(ring, {}, kBenchNow);
  command::Key forger = bench_key();
  forger.secret[0] ^= 1;
  const auto d = bench_request(forger, kBenchNow + 1, 256);
  for (auto _ : state) benchmark::DoNotOptimize(v.verify(d, kBenchNow));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_VerifyForgedLongest);

// A datagram with a key id nobody has: no HMAC at all.
void BM_VerifyUnknownKey(benchmark::State& state) {
  command::KeyRing ring;
  ring.add(bench_key());
  command::Verifier v(ring, {}, kBenchNow);
  command::Key stranger = bench_key();
  stranger.id = 8;
  const auto d = bench_request(stranger, kBenchNow + 1, 256);
  for (auto _ : state) benchmark::DoNotOptimize(v.verify(d, kBenchNow));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_VerifyUnknownKey);

// A good request ("t"), each with a new counter.
void BM_VerifyGood(benchmark::State& state) {
  static_cast<void>(command::crypto_ready());
  command::KeyRing ring;
  ring.add(bench_key());
  std::vector<std::vector<std::byte>> good;
  for (int i = 0; i < 4096; ++i) good.push_back(bench_request(bench_key(), kBenchNow + 1 + i, 1));
  std::optional<command::Verifier> v(std::in_place, ring, command::VerifierConfig{}, kBenchNow);
  std::size_t i = 0, refused = 0;
  for (auto _ : state) {
    if (i == good.size()) {
      state.PauseTiming();
      v.emplace(ring, command::VerifierConfig{}, kBenchNow);  // the counters start again
      i = 0;
      state.ResumeTiming();
    }
    if (!v->verify(good[i++], kBenchNow)) ++refused;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["refused"] = static_cast<double>(refused);
}
BENCHMARK(BM_VerifyGood);

}  // namespace
