// netpoll's XDP program: steers to the AF_XDP socket only what netpoll owns,
// and passes everything else to the kernel (XDP_PASS), so the host keeps its
// networking on the interface (src/dev/xdp.cpp loads it through libxdp).
//
// Compiled at build time with clang -target bpf; the object is embedded in
// the library (xdp_program_object.cpp, generated) and opened from memory.
//
// What netpoll owns is written into the maps by the device (XdpDevice::claim)
// at setup, one entry per client address and port:
//
//   owned4 / owned6   a client's address -> flags (NP_XDP_KERNEL_HOLDS: the kernel
//                     has this address too, on some interface of this
//                     namespace; 0: only netpoll answers for it)
//   udp4 / udp6       (address, port) of a client that receives; port 0:
//                     every port of that address
//   wait4 / wait6     a peer netpoll asked for (ARP request, neighbour
//                     solicitation) -> until when (CLOCK_MONOTONIC ns) its
//                     answer is netpoll's
//   settings          [0] = 1: every frame goes to netpoll (redirect=all);
//                     [1] = the pid of the netpoll process that loaded it
//                     (read by the next one to tell a live holder from a
//                     program left behind by a process that died)
//   xsks              rx queue -> the socket bound to it
//
// The rules, per frame:
//   - UDP (over IPv4 or IPv6) to a receiving client's address and port,
//     malformed IP headers included (netpoll counts those by reason);
//   - ARP requests and replies, neighbour solicitations and adverts, for
//     an address only netpoll holds;
//   - for an address the kernel holds too, only the ARP reply or
//     neighbour advert that answers a question netpoll asked (wait4/wait6,
//     each answer taken once, so that the kernel's own questions get
//     theirs); requests and solicitations stay the kernel's (it answers
//     with the MAC netpoll would);
//   - everything else: XDP_PASS.
// A frame for netpoll arriving on a queue with no socket bound falls back to
// the kernel (bpf_redirect_map's XDP_PASS default): nothing is dropped here.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <xdp/xdp_helpers.h>

#include "xdp_steer_maps.h"

struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, NP_XDP_MAX_QUEUES);
  __type(key, __u32);
  __type(value, __u32);
} xsks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, NP_XDP_MAX_OWNED);
  __type(key, __u32);  // IPv4 address, network order
  __type(value, __u32);
} owned4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, NP_XDP_MAX_OWNED);
  __type(key, struct np_ip6_key);
  __type(value, __u32);
} owned6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, NP_XDP_MAX_PORTS);
  __type(key, struct np_udp4_key);
  __type(value, __u32);
} udp4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, NP_XDP_MAX_PORTS);
  __type(key, struct np_udp6_key);
  __type(value, __u32);
} udp6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, NP_XDP_MAX_WAITS);
  __type(key, __u32);
  __type(value, __u64);
} wait4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, NP_XDP_MAX_WAITS);
  __type(key, struct np_ip6_key);
  __type(value, __u64);
} wait6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, NP_XDP_SETTINGS);
  __type(key, __u32);
  __type(value, __u32);
} settings SEC(".maps");

// ARP over Ethernet/IPv4, RFC 826: fixed offsets in a 28-byte packet.
struct arp_eth_ipv4 {
  __be16 htype;
  __be16 ptype;
  __u8 hlen;
  __u8 plen;
  __be16 op;
  __u8 sha[6];
  __u8 spa[4];
  __u8 tha[6];
  __u8 tpa[4];
} __attribute__((packed));

// ICMPv6 neighbour solicitation/advertisement, RFC 4861 4.3/4.4: type,
// code, checksum, 4 bytes (reserved or flags), the target address.
struct nd_msg {
  __u8 type;
  __u8 code;
  __be16 checksum;
  __be32 reserved;
  __u8 target[16];
};

#define NP_ARP_REQUEST 1
#define NP_ARP_REPLY 2
#define NP_ND_SOLICIT 135
#define NP_ND_ADVERT 136

static __always_inline int to_netpoll(struct xdp_md* ctx) {
  return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

// An answer netpoll waits for: taken once, and only before its deadline.
static __always_inline int awaited(void* map, const void* key) {
  __u64* until = bpf_map_lookup_elem(map, key);
  if (!until) return 0;
  const int live = bpf_ktime_get_ns() <= *until;
  bpf_map_delete_elem(map, key);
  return live;
}

static __always_inline int steer_arp(struct xdp_md* ctx, void* l3, void* end) {
  struct arp_eth_ipv4* arp = l3;
  if ((void*)(arp + 1) > end) return XDP_PASS;
  if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) || arp->hlen != 6 || arp->plen != 4)
    return XDP_PASS;
  __u32 tpa, spa;
  __builtin_memcpy(&tpa, arp->tpa, 4);
  __builtin_memcpy(&spa, arp->spa, 4);
  __u32* flags = bpf_map_lookup_elem(&owned4, &tpa);
  if (!flags) return XDP_PASS;
  if (!(*flags & NP_XDP_KERNEL_HOLDS)) return to_netpoll(ctx);
  if (arp->op == bpf_htons(NP_ARP_REPLY) && awaited(&wait4, &spa)) return to_netpoll(ctx);
  return XDP_PASS;
}

// A UDP datagram to a receiving client's port (or to a client that takes
// every port of its address). Its IP header is not judged here: one with a
// bad checksum, options, a wrong length, or the first fragment of a
// datagram comes to netpoll, whose receive path counts it by reason, as on
// AF_PACKET. Later fragments carry no port and stay the kernel's.
static __always_inline int steer_ipv4(struct xdp_md* ctx, void* l3, void* end) {
  struct iphdr* ip = l3;
  if ((void*)(ip + 1) > end) return XDP_PASS;
  if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x1fff)) != 0 || ip->ihl < 5) return XDP_PASS;
  struct udphdr* udp = l3 + ip->ihl * 4;
  if ((void*)(udp + 1) > end) return XDP_PASS;
  struct np_udp4_key key = {.addr = ip->daddr, .port = udp->dest, .pad = 0};
  if (bpf_map_lookup_elem(&udp4, &key)) return to_netpoll(ctx);
  key.port = 0;
  if (bpf_map_lookup_elem(&udp4, &key)) return to_netpoll(ctx);
  return XDP_PASS;
}

static __always_inline int steer_ipv6(struct xdp_md* ctx, void* l3, void* end) {
  struct ipv6hdr* ip = l3;
  if ((void*)(ip + 1) > end) return XDP_PASS;
  if (ip->nexthdr == IPPROTO_ICMPV6) {
    struct nd_msg* nd = (void*)(ip + 1);
    if ((void*)(nd + 1) > end) return XDP_PASS;
    struct np_ip6_key target;
    __builtin_memcpy(target.addr, nd->target, 16);
    if (nd->type == NP_ND_SOLICIT) {
      // Sent to the target's solicited-node multicast group: the target
      // field names whose address the question is about (RFC 4861 4.3).
      __u32* flags = bpf_map_lookup_elem(&owned6, &target);
      if (flags && !(*flags & NP_XDP_KERNEL_HOLDS)) return to_netpoll(ctx);
    } else if (nd->type == NP_ND_ADVERT) {
      // An advert: the target is the peer answering (RFC 4861 4.4), the
      // destination the one who asked.
      struct np_ip6_key dst;
      __builtin_memcpy(dst.addr, &ip->daddr, 16);
      __u32* flags = bpf_map_lookup_elem(&owned6, &dst);
      if (flags && !(*flags & NP_XDP_KERNEL_HOLDS)) return to_netpoll(ctx);
      if (flags && awaited(&wait6, &target)) return to_netpoll(ctx);
    }
    return XDP_PASS;
  }
  if (ip->nexthdr != IPPROTO_UDP) return XDP_PASS;  // extension headers stay the kernel's
  struct udphdr* udp = (void*)(ip + 1);
  if ((void*)(udp + 1) > end) return XDP_PASS;
  struct np_udp6_key key;
  __builtin_memcpy(key.addr, &ip->daddr, 16);
  key.port = udp->dest;
  key.pad = 0;
  if (bpf_map_lookup_elem(&udp6, &key)) return to_netpoll(ctx);
  key.port = 0;
  if (bpf_map_lookup_elem(&udp6, &key)) return to_netpoll(ctx);
  return XDP_PASS;
}

SEC("xdp")
int netpoll_steer(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  __u32 key = NP_XDP_SETTING_ALL;
  __u32* all = bpf_map_lookup_elem(&settings, &key);
  if (all && *all) return to_netpoll(ctx);
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end) return XDP_PASS;
  void* l3 = eth + 1;
  switch (eth->h_proto) {
    case bpf_htons(ETH_P_ARP): return steer_arp(ctx, l3, end);
    case bpf_htons(ETH_P_IP): return steer_ipv4(ctx, l3, end);
    case bpf_htons(ETH_P_IPV6): return steer_ipv6(ctx, l3, end);
    default: return XDP_PASS;  // VLAN tags and other protocols: the kernel's
  }
}

// Run by libxdp's dispatcher beside other programs on the interface; what
// this one passes goes on to the next (chain call on XDP_PASS).
struct {
  __uint(priority, 20);
  __uint(XDP_PASS, 1);
} XDP_RUN_CONFIG(netpoll_steer);

// No GPL-only helper is used; the project has not chosen a license yet
// (debian/copyright), and this string claims none.
char LICENSE[] SEC("license") = "no license chosen";
