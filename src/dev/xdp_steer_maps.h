// The maps' keys and flags, shared by netpoll's XDP program
// (xdp_steer.bpf.c, C for clang -target bpf) and the device that fills the
// maps (xdp.cpp). Internal to src/dev: not a public header.
#ifndef NP_DEV_XDP_STEER_MAPS_H
#define NP_DEV_XDP_STEER_MAPS_H

#include <linux/types.h>

#define NP_XDP_MAX_QUEUES 64
#define NP_XDP_MAX_OWNED 64
#define NP_XDP_MAX_PORTS 256
#define NP_XDP_MAX_WAITS 64
// settings: [NP_XDP_SETTING_ALL] = 1 redirects every frame;
// [NP_XDP_SETTING_OWNER] = the loading process's pid.
#define NP_XDP_SETTINGS 2
#define NP_XDP_SETTING_ALL 0
#define NP_XDP_SETTING_OWNER 1
// owned4/owned6 value: the kernel has this address too.
#define NP_XDP_KERNEL_HOLDS 1u

struct np_ip6_key {
  __u8 addr[16];
};
struct np_udp4_key {
  __u32 addr;  // network order
  __u16 port;  // network order; 0: every port
  __u16 pad;
};
struct np_udp6_key {
  __u8 addr[16];
  __u16 port;  // network order; 0: every port
  __u16 pad;
};

#endif
