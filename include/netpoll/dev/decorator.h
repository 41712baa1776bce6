// Decorator: a Device that wraps another Device and passes every call it
// does not override through to it.
//
// The pcap writer and the fault injector are devices wrapping devices
// (FreeBSD debugnet, smoltcp phy/): each changes what happens to a frame on
// receive or transmit and must leave everything else exactly as the inner
// device has it. This base is where "everything else" is written once, so
// a decorator overrides only what it changes, and a virtual added to Device
// is forwarded here, in one place, instead of in every decorator.
//
// transmit_more() is forwarded to the inner device's transmit_more(), not
// turned into transmit(), so that xmit_more batching survives decoration
// (a burst recorded to a pcap file on an AF_PACKET device still costs one
// kick). A decorator that overrides transmit() must therefore also say what
// transmit_more() means for it.
//
// Threads: as Device. The decorator adds no state of its own.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include "netpoll/base/assert.h"
#include "netpoll/dev/device.h"

namespace np::dev {

class Decorator : public Device {
 public:
  // Takes ownership of `inner`, which must not be null. Context: setup.
  explicit Decorator(std::unique_ptr<Device> inner) noexcept : inner_(std::move(inner)) {
    NP_ASSERT(inner_ != nullptr);
  }

  // Each forwards to the inner device (see Device). Context: any.
  std::size_t receive(std::size_t budget, FrameSink sink) noexcept override { return inner_->receive(budget, sink); }
  TxStatus transmit(std::span<const std::byte> frame) noexcept override { return inner_->transmit(frame); }
  TxStatus transmit_more(std::span<const std::byte> frame) noexcept override { return inner_->transmit_more(frame); }
  void poll() noexcept override { inner_->poll(); }
  bool tx_pending() const noexcept override { return inner_->tx_pending(); }
  LinkState link() const noexcept override { return inner_->link(); }
  MacAddr mac() const noexcept override { return inner_->mac(); }
  std::size_t mtu() const noexcept override { return inner_->mtu(); }
  int ifindex() const noexcept override { return inner_->ifindex(); }
  int fd() const noexcept override { return inner_->fd(); }
  std::string_view name() const noexcept override { return inner_->name(); }
  // The inner device's counters: what actually crossed it.
  const DeviceStats& stats() const noexcept override { return inner_->stats(); }
  bool revalidate() noexcept override { return inner_->revalidate(); }
  SetupResult<void> claim(const Claim& what) override { return inner_->claim(what); }
  void unclaim(const Claim& what) noexcept override { inner_->unclaim(what); }
  Result<void> join_multicast(const MacAddr& group) noexcept override { return inner_->join_multicast(group); }

 protected:
  // The wrapped device. Context: any.
  Device& inner() noexcept { return *inner_; }
  const Device& inner() const noexcept { return *inner_; }

 private:
  const std::unique_ptr<Device> inner_;
};

}  // namespace np::dev
