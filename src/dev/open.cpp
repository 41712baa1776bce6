#include "netpoll/dev/open.h"

#include <charconv>
#include <cmath>
#include <initializer_list>
#include <string>

#include "netpoll/dev/fault.h"
#include "netpoll/dev/packet.h"
#include "netpoll/dev/pair.h"
#include "netpoll/dev/pcap.h"
#include "netpoll/dev/tap.h"
#include "netpoll/dev/udp_tunnel.h"
#include "netpoll/dev/xdp.h"

namespace np::dev {
namespace {

constexpr std::string_view kCommonOptions[] = {"pcap", "drop", "dup", "reorder", "corrupt", "delay", "seed"};

std::string bad_value(const DeviceSpec& spec, std::string_view key, std::string_view want) {
  return "device string '" + spec.text + "': option " + std::string(key) + "='" + *spec.option(key) + "': " +
         std::string(want);
}

// Refuses options this kind does not know, naming those it does.
SetupResult<void> check_known(const DeviceSpec& spec, std::initializer_list<std::string_view> kind_options) {
  for (const auto& [key, value] : spec.options) {
    bool known = false;
    for (auto k : kCommonOptions) known = known || k == key;
    for (auto k : kind_options) known = known || k == key;
    if (!known) {
      std::string list;
      for (auto k : kind_options) list += std::string(k) + ", ";
      for (auto k : kCommonOptions) list += std::string(k) + ", ";
      list.resize(list.size() - 2);
      return setup_error(Errc::kInvalidArgument, "device string '" + spec.text + "': unknown option '" + key +
                                                     "' for " + spec.kind + " devices (known: " + list + ")");
    }
  }
  return {};
}

SetupResult<std::uint64_t> uint_option(const DeviceSpec& spec, std::string_view key, std::uint64_t fallback,
                                       std::uint64_t min, std::uint64_t max) {
  const std::string* v = spec.option(key);
  if (v == nullptr) return fallback;
  std::uint64_t out = 0;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || end != v->data() + v->size() || v->empty() || out < min || out > max) {
    return setup_error(Errc::kInvalidArgument,
                       bad_value(spec, key, "expected a whole number from " + std::to_string(min) + " to " +
                                                std::to_string(max)));
  }
  return out;
}

SetupResult<bool> bool_option(const DeviceSpec& spec, std::string_view key, bool fallback) {
  const std::string* v = spec.option(key);
  if (v == nullptr) return fallback;
  if (*v == "1" || *v == "yes" || *v == "on" || *v == "true") return true;
  if (*v == "0" || *v == "no" || *v == "off" || *v == "false") return false;
  return setup_error(Errc::kInvalidArgument, bad_value(spec, key, "expected 0 or 1"));
}

SetupResult<double> probability_option(const DeviceSpec& spec, std::string_view key) {
  const std::string* v = spec.option(key);
  if (v == nullptr) return 0.0;
  double out = 0;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || end != v->data() + v->size() || v->empty() || !(out >= 0.0 && out <= 1.0)) {
    return setup_error(Errc::kInvalidArgument, bad_value(spec, key, "expected a probability from 0 to 1"));
  }
  return out;
}

SetupResult<std::optional<MacAddr>> mac_option(const DeviceSpec& spec) {
  const std::string* v = spec.option("mac");
  if (v == nullptr) return std::optional<MacAddr>{};
  auto mac = MacAddr::parse(*v);
  if (!mac || !mac->is_unicast()) {
    return setup_error(Errc::kInvalidArgument, bad_value(spec, "mac", "expected a unicast MAC like 02:00:00:00:00:01"));
  }
  return std::optional<MacAddr>(*mac);
}

SetupResult<std::unique_ptr<Device>> open_backend(const DeviceSpec& spec) {
  if (spec.kind == "packet") {
    if (auto ok = check_known(spec, {"bypass", "rx", "rx_blocks", "rx_block_size", "tx_frames"}); !ok)
      return std::unexpected(ok.error());
    PacketOptions o;
    if (const std::string* rx = spec.option("rx"); rx != nullptr) {
      if (*rx != "ring" && *rx != "copy")
        return setup_error(Errc::kInvalidArgument, bad_value(spec, "rx", "expected ring or copy"));
      o.rx_ring = *rx == "ring";
    }
    auto bypass = bool_option(spec, "bypass", false);
    auto blocks = uint_option(spec, "rx_blocks", o.rx_blocks, 2, 4096);
    auto block_size = uint_option(spec, "rx_block_size", o.rx_block_size, 4096, 1u << 22);
    auto frames = uint_option(spec, "tx_frames", o.tx_frames, 2, 65536);
    if (!bypass) return std::unexpected(bypass.error());
    if (!blocks) return std::unexpected(blocks.error());
    if (!block_size) return std::unexpected(block_size.error());
    if (!frames) return std::unexpected(frames.error());
    o.qdisc_bypass = *bypass;
    o.rx_blocks = *blocks;
    o.rx_block_size = *block_size;
    o.tx_frames = *frames;
    return open_packet_device(spec.text, spec.target, o);
  }
  if (spec.kind == "xdp") {
    if (auto ok = check_known(spec, {"queue", "zc", "frames", "frame_size", "mode", "redirect"}); !ok)
      return std::unexpected(ok.error());
    XdpOptions o;
    if (const std::string* zc = spec.option("zc"); zc != nullptr) {
      if (*zc == "auto") o.zero_copy = ZeroCopy::kAuto;
      else if (*zc == "0") o.zero_copy = ZeroCopy::kNever;
      else if (*zc == "1") o.zero_copy = ZeroCopy::kRequired;
      else return setup_error(Errc::kInvalidArgument, bad_value(spec, "zc", "expected auto, 0 or 1"));
    }
    if (const std::string* mode = spec.option("mode"); mode != nullptr) {
      if (*mode != "native" && *mode != "skb")
        return setup_error(Errc::kInvalidArgument, bad_value(spec, "mode", "expected native or skb"));
      o.generic_xdp = *mode == "skb";
    }
    if (const std::string* redirect = spec.option("redirect"); redirect != nullptr) {
      if (*redirect != "owned" && *redirect != "all")
        return setup_error(Errc::kInvalidArgument, bad_value(spec, "redirect", "expected owned or all"));
      o.redirect_all = *redirect == "all";
    }
    auto queue = uint_option(spec, "queue", o.queue, 0, 4095);
    auto frames = uint_option(spec, "frames", o.frames, 64, 1u << 20);
    auto frame_size = uint_option(spec, "frame_size", o.frame_size, 2048, 4096);
    if (!queue) return std::unexpected(queue.error());
    if (!frames) return std::unexpected(frames.error());
    if (!frame_size) return std::unexpected(frame_size.error());
    if ((*frames & (*frames - 1)) != 0)
      return setup_error(Errc::kInvalidArgument, bad_value(spec, "frames", "expected a power of two, e.g. 4096"));
    if (*frame_size != 2048 && *frame_size != 4096)
      return setup_error(Errc::kInvalidArgument, bad_value(spec, "frame_size", "expected 2048 or 4096"));
    o.queue = static_cast<unsigned>(*queue);
    o.frames = *frames;
    o.frame_size = *frame_size;
    return open_xdp_device(spec.text, spec.target, o);
  }
  if (spec.kind == "tap") {
    if (auto ok = check_known(spec, {"mac", "up"}); !ok) return std::unexpected(ok.error());
    TapOptions o;
    auto mac = mac_option(spec);
    auto up = bool_option(spec, "up", true);
    if (!mac) return std::unexpected(mac.error());
    if (!up) return std::unexpected(up.error());
    o.mac = *mac;
    o.bring_up = *up;
    return open_tap_device(spec.text, spec.target, o);
  }
  if (spec.kind == "udp") {
    if (auto ok = check_known(spec, {"mac", "mtu"}); !ok) return std::unexpected(ok.error());
    UdpTunnelOptions o;
    auto mac = mac_option(spec);
    auto mtu = uint_option(spec, "mtu", o.mtu, 68, 65000);
    if (!mac) return std::unexpected(mac.error());
    if (!mtu) return std::unexpected(mtu.error());
    o.mac = *mac;
    o.mtu = *mtu;
    return open_udp_tunnel_device(spec.text, spec.target, o);
  }
  if (spec.kind == "pair") {
    if (auto ok = check_known(spec, {"mac", "mtu", "slots"}); !ok) return std::unexpected(ok.error());
    PairOptions o;
    auto mac = mac_option(spec);
    auto mtu = uint_option(spec, "mtu", o.mtu, 68, 65000);
    auto slots = uint_option(spec, "slots", o.slots, 2, 1u << 20);
    if (!mac) return std::unexpected(mac.error());
    if (!mtu) return std::unexpected(mtu.error());
    if (!slots) return std::unexpected(slots.error());
    o.mac = *mac;
    o.mtu = *mtu;
    o.slots = *slots;
    auto dev = open_pair_device(spec.text, spec.target, o);
    if (!dev) return std::unexpected(dev.error());
    return std::unique_ptr<Device>(std::move(*dev));
  }
  return setup_error(Errc::kInvalidArgument, "device string '" + spec.text + "': unknown kind '" + spec.kind +
                                                 "' (known: packet, xdp, tap, udp, pair)");
}

}  // namespace

SetupResult<std::unique_ptr<Device>> open_device(std::string_view text) {
  auto spec = parse_device_spec(text);
  if (!spec) return std::unexpected(spec.error());
  return open_device(*spec);
}

SetupResult<std::unique_ptr<Device>> open_device(const DeviceSpec& spec) {
  // Validate decorator options before opening anything.
  FaultOptions faults;
  auto drop = probability_option(spec, "drop");
  auto dup = probability_option(spec, "dup");
  auto reorder = probability_option(spec, "reorder");
  auto corrupt = probability_option(spec, "corrupt");
  auto delay = uint_option(spec, "delay", 0, 0, 60'000);
  auto seed = uint_option(spec, "seed", 1, 0, UINT64_MAX);
  for (auto* r : {&drop, &dup, &reorder, &corrupt}) {
    if (!*r) return std::unexpected(r->error());
  }
  if (!delay) return std::unexpected(delay.error());
  if (!seed) return std::unexpected(seed.error());
  faults.drop = *drop;
  faults.duplicate = *dup;
  faults.reorder = *reorder;
  faults.corrupt = *corrupt;
  faults.delay = std::chrono::milliseconds(*delay);
  faults.seed = *seed;

  auto dev = open_backend(spec);
  if (!dev) return dev;
  // The pcap file records what crosses the wire, so it sits next to the
  // backend; faults happen between the wire and the user.
  if (const std::string* path = spec.option("pcap")) {
    dev = wrap_pcap(std::move(*dev), *path);
    if (!dev) return dev;
  }
  if (faults.any()) {
    auto wrapped = wrap_faults(std::move(*dev), faults);
    if (!wrapped) return std::unexpected(wrapped.error());
    return std::unique_ptr<Device>(std::move(*wrapped));
  }
  return dev;
}

}  // namespace np::dev
