// Numbers as a person reads them in a message.
#pragma once

#include <cstdint>
#include <string>

namespace np {

// "512 bytes", "4.5 KiB", "24.8 MiB", "1.25 GiB". Context: setup.
std::string human_bytes(std::uint64_t n);

// "1 packet", "3 packets": `what` in the singular. Context: setup.
std::string count_text(std::uint64_t n, const char* what);

}  // namespace np
