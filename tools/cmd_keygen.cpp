// netpoll keygen FILE: a key for remote commands (command/key.h).
#include <cstdio>

#include "cli.h"
#include "commands.h"
#include "netpoll/command/key.h"

namespace np::tools {
namespace {

constexpr const char* kHelp =
    "usage: netpoll keygen FILE\n"
    "\n"
    "Makes a key for remote commands (netpoll run --commands FILE, netpoll cmd\n"
    "--key FILE): a random key id and a random 32-byte HMAC-SHA-256 secret,\n"
    "written to FILE with mode 0600. An existing FILE is never overwritten.\n"
    "Both ends need the same file: copy it to the sending machine over a safe\n"
    "channel (scp), keep it mode 0600 there (a key file that group or others\n"
    "may read is refused). Prints the key id.\n";

}  // namespace

int cmd_keygen(int argc, char** argv) {
  ArgParser args;
  args.flag("help");
  args.parse(argc, argv, 2);
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("expected one FILE");
  const std::string& path = args.positional()[0];
  auto k = command::generate_key_file(path);
  if (!k) {
    print_error("keygen", k.error().message);
    return 1;
  }
  std::printf("key %08x written to %s (mode 0600)\n", k->id, path.c_str());
  return 0;
}

}  // namespace np::tools
