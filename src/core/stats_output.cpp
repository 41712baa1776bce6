// Statistics of a shared device and of a client, for people (text: the
// non-zero drop reasons) and for programs (JSON: every reason, zeros
// included).
#include "netpoll/core/netpoll.h"

namespace np::core {
namespace {

// "drops":{"reason":count,...}, every reason, zeros included.
template <class Reason, class C>
void drops_json(JsonWriter& j, const ReasonCounters<Reason, C>& drops) {
  j.begin_object("drops");
  drops.for_each([&](Reason r, std::uint64_t n) { j.field(to_string(r), n); });
  j.end_object();
}

}  // namespace

std::string SharedDevice::stats_text() const {
  std::string s;
  const auto line = [&](const std::string& k, std::uint64_t v) {
    s += "  " + k + std::string(k.size() < 24 ? 24 - k.size() : 1, ' ') + std::to_string(v) + "\n";
  };
  s += "device " + spec_.text + " (" + dev_->mac().to_string() + ", mtu " + std::to_string(dev_->mtu()) + ")\n";
  line("clients", clients());
  line("rx frames", stats_.rx_frames.value());
  line("rx delivered", stats_.rx_delivered.value());
  line("rx passed through", stats_.rx_passed.value());
  stats_.rx_drops.for_each([&](RxDrop r, std::uint64_t n) {
    if (n != 0) line(std::string("rx drop ") + to_string(r), n);
  });
  line("arp replies sent", stats_.arp_replies_sent.value());
  line("arp replies seen", stats_.arp_replies_seen.value());
  line("arp requests sent", stats_.arp_requests_sent.value());
  line("nd adverts sent", stats_.nd_adverts_sent.value());
  line("nd adverts seen", stats_.nd_adverts_seen.value());
  line("nd solicits sent", stats_.nd_solicits_sent.value());
  line("tx frames", stats_.tx_frames.value());
  line("tx bytes", stats_.tx_bytes.value());
  line("tx direct", stats_.tx_direct.value());
  line("tx deferred", stats_.tx_deferred.value());
  line("tx busy retries", stats_.tx_retries.value());
  stats_.tx_drops.for_each([&](TxDrop r, std::uint64_t n) {
    if (n != 0) line(std::string("tx drop ") + to_string(r), n);
  });
  line("deferred queue depth", deferred_depth());
  line("deferred queue high", stats_.deferred_high.value());
  line("pool frames", pool_.frames());
  line("pool low-water", pool_.low_water());
  for (std::size_t i = 0; i < Dispatcher::kProtos; ++i) {
    const auto p = static_cast<Proto>(i);
    const auto& c = dispatcher_.counters(p);
    s += "  dispatch " + std::string(to_string(p)) + ": dispatched " + std::to_string(c.dispatched.value()) +
         ", direct " + std::to_string(c.direct.value()) + ", queued " + std::to_string(c.queued.value()) +
         ", deferred " + std::to_string(c.deferred.value()) + ", dropped " + std::to_string(c.dropped.value()) + "\n";
  }
  return s;
}

std::string SharedDevice::stats_json() const {
  JsonWriter j;
  j.begin_object();
  j.field("device", spec_.text).field("mac", dev_->mac().to_string()).field("mtu", dev_->mtu());
  j.field("clients", clients()).field_bool("trapped", trapped());
  j.begin_object("rx");
  j.field("frames", stats_.rx_frames.value()).field("delivered", stats_.rx_delivered.value());
  j.field("passed", stats_.rx_passed.value());
  drops_json(j, stats_.rx_drops);
  j.end_object();
  j.begin_object("arp");
  j.field("replies_sent", stats_.arp_replies_sent.value()).field("replies_seen", stats_.arp_replies_seen.value());
  j.field("requests_sent", stats_.arp_requests_sent.value());
  j.end_object();
  j.begin_object("ndisc");
  j.field("adverts_sent", stats_.nd_adverts_sent.value()).field("adverts_seen", stats_.nd_adverts_seen.value());
  j.field("solicits_sent", stats_.nd_solicits_sent.value());
  j.end_object();
  j.begin_object("tx");
  j.field("frames", stats_.tx_frames.value()).field("bytes", stats_.tx_bytes.value());
  j.field("direct", stats_.tx_direct.value()).field("deferred", stats_.tx_deferred.value());
  j.field("busy_retries", stats_.tx_retries.value());
  drops_json(j, stats_.tx_drops);
  j.end_object();
  j.begin_object("deferred_queue");
  j.field("depth", deferred_depth()).field("high", stats_.deferred_high.value()).field("limit", cfg_.deferred_limit);
  j.end_object();
  j.begin_object("pool");
  j.field("frames", pool_.frames()).field("available", pool_.available()).field("low_water", pool_.low_water());
  j.end_object();
  j.begin_object("dispatch");
  for (std::size_t i = 0; i < Dispatcher::kProtos; ++i) {
    const auto p = static_cast<Proto>(i);
    const auto& c = dispatcher_.counters(p);
    j.begin_object(to_string(p));
    j.field("policy", std::string(dispatcher_.policy(p) == Policy::kDirect ? "direct" : "queued"));
    j.field("dispatched", c.dispatched.value()).field("direct", c.direct.value()).field("queued", c.queued.value());
    j.field("deferred", c.deferred.value()).field("dropped", c.dropped.value());
    j.field("queue_depth", dispatcher_.queued(p));
    j.end_object();
  }
  j.end_object();
  const auto& d = dev_->stats();
  j.begin_object("backend");
  j.field("rx_frames", d.rx_frames.value()).field("rx_bytes", d.rx_bytes.value());
  j.field("rx_dropped", d.rx_dropped.value()).field("tx_frames", d.tx_frames.value());
  j.field("tx_bytes", d.tx_bytes.value()).field("tx_busy", d.tx_busy.value()).field("tx_errors", d.tx_errors.value());
  j.end_object();
  j.end_object();
  return j.str();
}

std::string Netpoll::stats_text() const {
  const TargetOptions& t = cfg_.target;
  std::string s = "client " + cfg_.name + " " + t.local_ip.with_port(t.local_port) + " -> " +
                  t.remote_ip.with_port(t.remote_port) + " (" + remote_mac().to_string() +
                  ") on " + t.device + "\n";
  s += "  tx datagrams " + std::to_string(stats_.tx_datagrams.value()) + ", bytes " +
       std::to_string(stats_.tx_bytes.value()) + "\n";
  stats_.tx_drops.for_each([&s](TxDrop r, std::uint64_t v) {
    if (v != 0) s += std::string("  tx drop ") + to_string(r) + " " + std::to_string(v) + "\n";
  });
  s += "  rx datagrams " + std::to_string(stats_.rx_datagrams.value()) + ", bytes " +
       std::to_string(stats_.rx_bytes.value()) + "\n";
  return s;
}

std::string Netpoll::stats_json() const {
  const TargetOptions& t = cfg_.target;
  JsonWriter j;
  j.begin_object();
  j.field("name", cfg_.name).field("device", t.device);
  j.field("local", t.local_ip.with_port(t.local_port));
  j.field("remote", t.remote_ip.with_port(t.remote_port));
  j.field("remote_mac", remote_mac().to_string());
  j.begin_object("tx");
  j.field("datagrams", stats_.tx_datagrams.value()).field("bytes", stats_.tx_bytes.value());
  drops_json(j, stats_.tx_drops);
  j.end_object();
  j.begin_object("rx");
  j.field("datagrams", stats_.rx_datagrams.value()).field("bytes", stats_.rx_bytes.value());
  j.end_object();
  j.end_object();
  return j.str();
}

}  // namespace np::core
