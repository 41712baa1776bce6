// netpoll's XDP program (xdp_steer.bpf.c) as the BPF object clang made of
// it at build time, embedded in the library (cmake/embed.cmake writes the
// definition). Internal to src/dev: not a public header.
#pragma once

#include <cstddef>

namespace np::dev::detail {

extern const unsigned char kXdpSteerObject[];
extern const std::size_t kXdpSteerObjectSize;

}  // namespace np::dev::detail
