// Micro-benchmarks of the wire layer: the per-frame work on the send and
// receive paths (checksum, building a UDP frame, validating one).
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <random>
#include <vector>

#include "netpoll/wire/ethernet.h"
#include "netpoll/wire/ipv4.h"
#include "netpoll/wire/udp.h"

namespace {

using namespace np;
using namespace np::wire;

const MacAddr kSrcMac(2, 0, 0, 0, 0, 1);
const MacAddr kDstMac(2, 0, 0, 0, 0, 2);
const Ipv4Addr kSrcIp(10, 0, 0, 1);
const Ipv4Addr kDstIp(10, 0, 0, 2);

std::vector<std::byte> random_payload(std::size_t n) {
  std::mt19937 rng(1);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

void BM_Checksum(benchmark::State& state) {
  const auto data = random_payload(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(checksum(data));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Checksum)->Arg(64)->Arg(1000)->Arg(1472);

// Ethernet + IPv4 + UDP headers and checksums around a payload already in
// place, as netpoll's send path does.
void BM_BuildUdpFrame(benchmark::State& state) {
  const auto payload = random_payload(static_cast<std::size_t>(state.range(0)));
  std::array<std::byte, 1514> frame{};
  std::uint16_t ident = 0;
  for (auto _ : state) {
    auto ip_area = EthernetRepr{kSrcMac, kDstMac, ethertype::kIpv4}.emit(frame);
    const UdpRepr udp{6665, 6666, payload};
    auto udp_area = Ipv4Repr{kSrcIp, kDstIp, ip_proto::kUdp, static_cast<std::uint16_t>(udp.buffer_len()), 64,
                             ident++, false, 0}
                        .emit(ip_area);
    udp.emit(udp_area, kSrcIp, kDstIp);
    benchmark::DoNotOptimize(frame);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_BuildUdpFrame)->Arg(64)->Arg(1000);

// The receive-side validation of one UDP frame: every check netpoll makes.
void BM_ValidateUdpFrame(benchmark::State& state) {
  const auto payload = random_payload(static_cast<std::size_t>(state.range(0)));
  std::vector<std::byte> frame(14 + 20 + 8 + payload.size());
  auto ip_area = EthernetRepr{kSrcMac, kDstMac, ethertype::kIpv4}.emit(frame);
  const UdpRepr udp{6665, 6666, payload};
  auto udp_area =
      Ipv4Repr{kSrcIp, kDstIp, ip_proto::kUdp, static_cast<std::uint16_t>(udp.buffer_len()), 64, 1, false, 0}.emit(
          ip_area);
  udp.emit(udp_area, kSrcIp, kDstIp);
  const std::span<const std::byte> in(frame);
  for (auto _ : state) {
    auto eth = EthernetFrame<const std::byte>::check(in);
    auto ip = Ipv4Packet<const std::byte>::check(eth->payload());
    auto ipr = Ipv4Repr::parse(*ip);
    auto u = UdpPacket<const std::byte>::check(ip->payload());
    auto ur = UdpRepr::parse(*u, ipr->src, ipr->dst);
    benchmark::DoNotOptimize(ur);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_ValidateUdpFrame)->Arg(64)->Arg(1000);

}  // namespace
