// The code snippets of README.md, compiled so that they stay true. Not run
// by the demo (they would need an eth0 and a peer at 10.0.0.2).
#include <cstdio>

#include "netpoll/base/bytes.h"
#include "netpoll/console/crash.h"
#include "netpoll/console/logger.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/gdb/stub.h"
#include "netpoll/netdump/dumper.h"
#include "netpoll/remote/server.h"

namespace {

int using_the_library() {
  np::core::ClientConfig cfg;
  cfg.target = np::core::parse_targets("6665@/eth0,6666@10.0.0.2/")->targets[0];
  cfg.rx_hook = [](np::core::Netpoll&, const np::core::RxInfo& from, std::span<const std::byte> data) {
    // runs on the polling thread; must not block
    static_cast<void>(from);
    static_cast<void>(data);
  };
  auto np = np::core::Netpoll::setup(std::move(cfg));  // SetupResult: an error says why
  if (!np) { /* np.error().message */
    return 1;
  }
  auto sent = (*np)->send_udp(np::as_bytes("hello"));  // never allocates, never blocks for long
  if (!sent) { /* sent.error(): too big, no buffer, busy, or I/O; counted and shown to the drop handler */
    return 1;
  }
  return 0;
}

int logging_with_the_crash_path() {
  np::console::LoggerConfig cfg;
  np::console::TargetConfig target;
  target.target = np::core::parse_targets("+6665@/eth0,6666@10.0.0.2/")->targets[0];
  target.sysdata.msgid = true;
  cfg.targets.push_back(target);
  auto logger = np::console::Logger::create(std::move(cfg));  // SetupResult
  if (!logger) return 1;
  auto installed = np::console::install_crash_handler(**logger);  // SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT
  if (!installed) { /* installed.error().message */
    return 1;
  }
  (*logger)->log(np::console::Level::kWarning, "disk {} is {}% full", "sda", 93);
  // (README: the same handler, with a core after the crash record.)
  np::console::uninstall_crash_handler();
  np::netdump::DumperConfig dump;
  dump.stream.client.target = np::core::parse_targets("20024@/eth0,20023@10.0.0.2/")->targets[0];
  auto dumper = np::netdump::Dumper::setup(std::move(dump));  // SetupResult: resolves the server, stops nothing yet
  if (!dumper) { /* dumper.error().message */
    return 1;
  }
  np::console::CrashConfig crash;
  crash.after_report = &np::netdump::Dumper::on_crash;  // after the crash record
  crash.after_report_arg = dumper->get();
  auto with_dump = np::console::install_crash_handler(**logger, crash);
  np::netdump::DumpOutcome now = (*dumper)->dump_live();  // as gcore: every thread stops for the dump, then goes on
  if (!now.complete) { /* np::to_string(now.error) */
    return 1;
  }
  return with_dump ? 0 : 1;
}

int debugging_with_gdb(np::console::Logger& logger) {
  np::gdb::StubConfig gdb;
  gdb.client.target = np::core::parse_targets("6443@/eth0,6443@0.0.0.0/")->targets[0];  // any peer: the first gdb
  auto stub = np::gdb::Stub::setup(std::move(gdb));  // SetupResult: its own device, the stop and trap handlers
  if (!stub) { /* stub.error().message */
    return 1;
  }
  std::printf("%s\n", (*stub)->attach_command("./server").c_str());  // gdb ./server -ex 'target remote udp:IP:6443'
  np::console::CrashConfig crash;
  crash.after_report = &np::gdb::Stub::on_crash;  // a crash waits for gdb (5 minutes), then dies as it would have
  crash.after_report_arg = stub->get();
  crash.after_report_deadline = std::chrono::minutes(6);
  auto installed = np::console::install_crash_handler(logger, crash);
  np::gdb::Stub::break_in();  // or now: every thread stops until gdb continues
  return installed ? 0 : 1;
}

int taking_remote_commands(np::console::Logger& logger) {
  np::remote::ServerConfig cmds;
  cmds.client.target = np::core::parse_targets("6665@/eth0,6666@0.0.0.0/")->targets[0];  // the console's source
  auto keys = np::command::load_key_file("/etc/netpoll/commands.key");  // netpoll keygen; mode 0600
  if (!keys) { /* keys.error().message */
    return 1;
  }
  cmds.keys = *keys;
  cmds.logger = &logger;  // who asked what, and the replies, as records
  auto server = np::remote::Server::setup(std::move(cmds));  // its own client and thread (np-cmd)
  if (!server) { /* server.error().message */
    return 1;
  }
  auto added = (*server)->add_command("queue", "the job queue's length", [](std::string_view, np::remote::Reply& r) {
    r.format("queue: {} jobs", 42).end_record();  // runs on np-cmd; netpoll cmd ... queue
  });
  return added ? 0 : 1;
}

}  // namespace

int main(int argc, char**) {
  if (argc > 3) {
    auto logger = np::console::Logger::create({});
    return logger ? taking_remote_commands(**logger) : 1;
  }
  if (argc > 2) {
    auto logger = np::console::Logger::create({});
    return logger ? debugging_with_gdb(**logger) : 1;
  }
  if (argc > 1) return using_the_library() + logging_with_the_crash_path();
  std::puts("readme_snippets: compiled to keep README.md true; run with an argument to try them");
  return 0;
}
