// What the tests of datagrams sent in segments share
// (core::Netpoll::send_udp_segments_to over a veth, IPv4 and IPv6).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <span>
#include <string>
#include <vector>

#include "net_helpers.h"
#include "netpoll/base/bytes.h"
#include "netpoll/core/netpoll.h"

namespace np::testing {

// Sends `msgs` in segments to the client's remote address at `port`, then
// expects `peer` to receive each, in order, from `from` ("" : anyone).
inline void send_segments_and_expect_each(core::Netpoll& np, const UdpSocket& peer,
                                          const std::vector<std::string>& msgs, std::uint16_t port,
                                          const std::string& from = "") {
  std::vector<std::span<const std::byte>> segments;
  for (const auto& m : msgs) segments.push_back(as_bytes(m));
  ASSERT_TRUE(np.send_udp_segments_to({np.remote_mac(), np.remote_ip(), port}, segments));
  np.flush();
  for (const auto& m : msgs) {
    std::string sender;
    auto got = peer.receive(std::chrono::milliseconds(2000), &sender);
    ASSERT_TRUE(got) << "nothing arrived for the " << m.size() << "-byte datagram of '" << m[0] << "'";
    EXPECT_EQ(as_text(*got), m);
    if (!from.empty()) {
      EXPECT_EQ(sender, from);
    }
  }
}

}  // namespace np::testing
