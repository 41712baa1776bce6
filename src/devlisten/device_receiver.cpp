#include "netpoll/devlisten/device_receiver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>

#include <cstring>

#include "netpoll/base/bytes.h"
#include "netpoll/base/json.h"

namespace np::devlisten {
namespace {

// Polls (each at most the device's poll budget) whose datagrams make one
// batch: their outputs are written together.
constexpr int kPollsPerBatch = 4;
// How long an idle device is waited for before the engine's timeouts are
// looked at again (its tick runs at most every 20 ms).
constexpr int kIdleWaitMs = 20;

}  // namespace

DeviceReceiver::DeviceReceiver(const receiver::Options& options, receiver::Shared& shared)
    : options_(options), shared_(shared), engine_(options_, shared_, *this) {}

DeviceReceiver::~DeviceReceiver() = default;

SetupResult<std::unique_ptr<DeviceReceiver>> DeviceReceiver::open(const receiver::Options& options,
                                                                  const DeviceOptions& device,
                                                                  receiver::Shared& shared,
                                                                  core::Registry& registry) {
  if (options.port == 0) return setup_error(Errc::kInvalidArgument, "netpoll's own path needs a port to receive on, not 0");
  if (device.ip.is_unspecified() || device.ip.is_loopback() || device.ip.is_multicast() || device.ip.is_broadcast()) {
    return setup_error(Errc::kInvalidArgument,
                       device.ip.to_string() + " cannot be received on: a unicast IPv4 address, not loopback");
  }
  std::unique_ptr<DeviceReceiver> r(new DeviceReceiver(options, shared));
  core::ClientConfig cfg;
  cfg.name = "netpoll listen";
  cfg.target.local_ip = device.ip;
  cfg.target.local_port = options.port;
  cfg.target.device = device.device;
  cfg.target.remote_ip = Ipv4Addr::any();  // from anyone
  cfg.target.remote_port = 0;
  cfg.device = device.config;
  cfg.device.service_thread = false;  // run() polls: the hook runs on its thread, the engine's
  cfg.resolve_remote_mac = false;     // answers go where each source's frames came from
  cfg.log = device.log;
  DeviceReceiver* self = r.get();
  cfg.rx_hook = [self](core::Netpoll&, const core::RxInfo& info, std::span<const std::byte> payload) {
    self->on_datagram(info, payload);
  };
  auto client = core::Netpoll::setup(std::move(cfg), registry);
  if (!client) return std::unexpected(client.error());
  r->client_ = std::move(*client);
  return r;
}

void DeviceReceiver::on_datagram(const core::RxInfo& info, std::span<const std::byte> payload) noexcept {
  sockaddr_storage from{};
  auto& sin = reinterpret_cast<sockaddr_in&>(from);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = info.src_ip.v4().to_network_u32();  // the client is IPv4 (setup)
  sin.sin_port = htons(info.src_port);
  engine_.datagram(receiver::From{from, sizeof sin, info.src_mac},
                   std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()), at_);
}

bool DeviceReceiver::respond(const receiver::SourceEntry& e, std::string_view datagram) noexcept {
  // Every source here came in as AF_INET (on_datagram).
  const auto& sin = reinterpret_cast<const sockaddr_in&>(e.peer);
  const core::UdpEndpoint to{e.peer_mac, Ipv4Addr::from_network_u32(sin.sin_addr.s_addr), ntohs(sin.sin_port)};
  return client_->send_udp_to(to, as_bytes(datagram)).has_value();
}

void DeviceReceiver::run() {
  ::pthread_setname_np(::pthread_self(), "listen-dev");
  const int fd = client_->shared().device().fd();
  const std::size_t budget = client_->shared().config().poll_budget;
  while (!shared_.stop.load(std::memory_order_relaxed)) {
    bool busy = false;
    for (int round = 0; round < kPollsPerBatch && !shared_.stop.load(std::memory_order_relaxed); ++round) {
      at_ = receiver::ReceiveTime::now();  // one receive time per poll
      // The receive hook hands each datagram to the engine; answers sent
      // from inside the poll wait in the deferred queue, which the poll
      // drains before it returns.
      const std::size_t n = client_->poll(budget);
      if (n > 0) busy = true;
      if (n < budget) break;
    }
    if (busy) engine_.end_batch(at_);
    engine_.tick(receiver::ReceiveTime::now());
    if (!busy) {
      pollfd pfd{fd, POLLIN, 0};
      ::poll(&pfd, fd >= 0 ? 1 : 0, engine_.idle(receiver::ReceiveTime::now(), kIdleWaitMs));
    }
  }
  // Stopping: deliver what every source holds.
  engine_.stop(receiver::ReceiveTime::now());
}

std::string DeviceReceiver::where() const {
  return client_->local_ip().to_string() + " port " + std::to_string(client_->local_port()) + " on " +
         client_->target().device + " (" + client_->shared().device().mac().to_string() + ")";
}

std::string DeviceReceiver::stats_report(receiver::ReportFormat format) const {
  const receiver::Engine* engines[] = {&engine_};
  receiver::StatsReport report = receiver::engines_report(engines, format);
  core::SharedDevice& dev = client_->shared();
  if (format.prometheus || format.output == receiver::OutputFormat::kJson) {
    JsonWriter j;
    j.begin_object().field_json("client", client_->stats_json()).field_json("device", dev.stats_json()).end_object();
    report.add_section("netpoll", j.str(), {});
  } else {
    report.add_section("netpoll", {}, dev.stats_text() + client_->stats_text());
  }
  return report.finish();
}

}  // namespace np::devlisten
