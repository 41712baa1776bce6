// netpoll: one command line for the framework's tools.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "cli.h"
#include "commands.h"

namespace {

using np::tools::Command;

constexpr Command kCommands[] = {
    {"console", "send standard input lines as netconsole log records", np::tools::cmd_console},
    {"run", "run a program, its output as records, netpoll's crash path inside it", np::tools::cmd_run},
    {"send", "send datagrams through netpoll (MESSAGE or stdin lines)", np::tools::cmd_send},
    {"listen", "receive netconsole records from many sources (Linux's and ours)", np::tools::cmd_listen},
    {"dumpd", "receive crash dumps (ELF cores) over debugnet's UDP protocol", np::tools::cmd_dumpd},
    {"coredump", "the kernel's core_pattern helper: every core of the host to dumpd", np::tools::cmd_coredump},
    {"cmd", "send a remote command to a process taking them (netpoll run --commands), print its reply",
     np::tools::cmd_cmd},
    {"keygen", "make a key file for remote commands (mode 0600)", np::tools::cmd_keygen},
    {"recv", "print the datagrams netpoll receives for a target", np::tools::cmd_recv},
    {"bench", "benchmarks, printed side by side (bench send, recv, console, listen, crash)", np::tools::cmd_bench},
    {"dump", "print the frames arriving on a device, decoded", np::tools::cmd_dump},
    {"inject", "build UDP frames by hand and transmit them on a device", np::tools::cmd_inject},
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: netpoll COMMAND [OPTIONS] [ARGS]\n"
               "\n"
               "A polled, allocation-free UDP/ARP path over raw network devices.\n"
               "\n"
               "commands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out,
               "\n"
               "Devices are named by one string everywhere:\n"
               "  packet:IFNAME                      AF_PACKET on a kernel interface\n"
               "  xdp:IFNAME                         AF_XDP on queue 0 of a kernel interface, beside the kernel\n"
               "  tap:IFNAME                         a TAP device (created or attached)\n"
               "  udp:LOCAL_IP:PORT@REMOTE_IP:PORT   Ethernet frames over UDP (qemu -netdev socket,udp=)\n"
               "  pair:NAME                          one end of an in-memory wire\n"
               "followed by ?KEY=VALUE&... options, e.g. packet:eth0?pcap=out.pcap\n"
               "\n"
               "Run 'netpoll COMMAND --help' for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string_view sub = argv[1];
  if (sub == "--help" || sub == "-h" || sub == "help") {
    usage(stdout);
    return 0;
  }
  if (sub == "--version") {
    std::printf("netpoll 0.1.0\n");
    return 0;
  }
  for (const auto& c : kCommands) {
    if (sub != c.name) continue;
    try {
      return c.run(argc, argv);
    } catch (const np::tools::UsageError& e) {
      np::tools::print_error(sub, e.what());
      std::fprintf(stderr, "Try 'netpoll %s --help'.\n", c.name);
      return 2;
    }
  }
  std::fprintf(stderr, "netpoll: unknown command '%s'\n", argv[1]);
  std::fprintf(stderr, "Try 'netpoll --help'.\n");
  return 2;
}

#if defined(__SANITIZE_ADDRESS__)
// libdw loads libdebuginfod, whose libcrypto keeps an allocation for the
// process's life: not ours, not a leak to report.
extern "C" const char* __lsan_default_suppressions() { return "leak:libcrypto.so\n"; }
#endif
