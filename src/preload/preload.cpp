// libnetpoll_preload.so: netpoll's crash path inside an unmodified program.
//
// `netpoll run` starts the program with LD_PRELOAD naming this library and
// the NETPOLL_RUN_* environment (console/run_shared.h). Before main() runs,
// the constructor below sets up a logger on the runner's targets (no
// threads of its own: the program's records are its output lines, which
// the runner forwards) and installs the crash handler, with standard
// output made line-buffered so that every line reaches the runner before a
// crash could lose it. pthread_create is wrapped so that every thread of
// the program gets an alternate signal stack (a stack overflow in any
// thread is reported).
//
// Without the environment the library does nothing. Errors are written to
// standard error and the program runs on without the crash path.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

#include "netpoll/base/clock.h"
#include "netpoll/console/crash.h"
#include "netpoll/console/logger.h"
#include "netpoll/console/run_shared.h"
#include "netpoll/console/stream_state.h"
#include "netpoll/gdb/stub.h"
#include "netpoll/netdump/dumper.h"
#include "netpoll/remote/server.h"

namespace {

using namespace np::console;

// netpoll run --dump: the core after the crash record, its outcome told
// to the runner through the shared memory.
struct DumpHook {
  np::netdump::Dumper* dumper = nullptr;
  RunShared* shared = nullptr;
};
DumpHook g_dump_hook;  // written once, before the handler is installed

void dump_after_report(void* arg, const siginfo_t* si, const ucontext_t* ctx) noexcept {
  const auto* hook = static_cast<const DumpHook*>(arg);
  hook->shared->dump_state.store(kDumpSending, std::memory_order_relaxed);
  const std::int64_t start = np::monotonic_ns();
  const np::netdump::DumpOutcome o = hook->dumper->dump_crash(si, ctx);
  hook->shared->dump_bytes.store(o.core.bytes_sent, std::memory_order_relaxed);
  hook->shared->dump_ms.store(static_cast<std::uint64_t>((np::monotonic_ns() - start) / 1'000'000),
                              std::memory_order_relaxed);
  hook->shared->dump_error.store(static_cast<std::uint32_t>(o.error), std::memory_order_relaxed);
  hook->shared->dump_state.store(o.complete ? kDumpComplete : o.answered ? kDumpFailed : kDumpUnanswered,
                                 std::memory_order_release);
}

// netpoll run --gdb (with or without --dump): gdb first, every thread
// stopped; when the session ends (kill, detach, or nobody came in time)
// the threads go on for the moment the core writer needs to stop them
// again, and the core follows.
struct GdbHook {
  np::gdb::Stub* stub = nullptr;
  DumpHook* dump = nullptr;  // --dump too
};
GdbHook g_gdb_hook;  // written once, before the handler is installed

// The crash path has begun: a remote `gdb` grants, never breaks in.
std::atomic<bool> g_crashed{false};

void gdb_after_report(void* arg, const siginfo_t* si, const ucontext_t* ctx) noexcept {
  const auto* hook = static_cast<const GdbHook*>(arg);
  g_crashed.store(true, std::memory_order_release);
  np::gdb::Stub::on_crash(hook->stub, si, ctx);
  if (hook->dump == nullptr) return;
  hook->stub->target().release();
  dump_after_report(hook->dump, si, ctx);
}

// netpoll run --commands: what `dump` and `gdb` reach. Made by the
// constructor below (not a global with a constructor of its own, which
// might run after it) and never freed.
struct CommandHooks {
  DumpHook* dump = nullptr;
  np::gdb::Stub* stub = nullptr;
  np::FixedText<128> dump_to;   // "10.0.0.2:20023 via ..."
  np::FixedText<256> attach;    // "gdb PROGRAM -ex 'target remote udp:IP:PORT'"
};

void dump_command(void* arg, np::remote::Reply& reply) noexcept {
  auto* h = static_cast<CommandHooks*>(arg);
  const std::int64_t start = np::monotonic_ns();
  const np::netdump::DumpOutcome o = h->dump->dumper->dump_live();
  const auto ms = (np::monotonic_ns() - start) / 1'000'000;
  if (o.complete) {
    reply.format("dump: core of process {} sent to {}: {} bytes ({} threads) in {} ms; the process goes on",
                 o.core.pid, h->dump_to.view(), o.core.bytes_sent, o.core.threads, ms);
  } else {
    reply.format("dump: core not sent whole to {}: {} ({}, {} bytes sent)", h->dump_to.view(), np::to_string(o.error),
                 o.answered ? "the server answered" : "no dump server answered", o.core.bytes_sent);
  }
}

bool gdb_command(void* arg, const np::core::UdpEndpoint& peer, std::chrono::milliseconds grant, bool crash,
                 np::remote::Reply& reply) noexcept {
  auto* h = static_cast<CommandHooks*>(arg);
  h->stub->grant(peer.ip, np::monotonic_ns() + std::chrono::nanoseconds(grant).count());
  const auto secs = grant.count() / 1000;
  if (crash || g_crashed.load(std::memory_order_acquire)) {
    reply.format("gdb: after the crash the program waits for gdb from {} only ({} s): {}", peer.ip.text().view(),
                 secs, h->attach.view());
    return false;
  }
  reply.format("gdb: every thread stops now and waits for gdb from {} only ({} s): {}", peer.ip.text().view(), secs,
               h->attach.view());
  return true;
}

void gdb_break_in(void*) noexcept { np::gdb::Stub::break_in(); }

void complain(const std::string& what) { std::fprintf(stderr, "netpoll run: crash path not installed: %s\n", what.c_str()); }

__attribute__((constructor)) void netpoll_run_init() {
  const char* shm_fd = std::getenv(kRunEnvShm);
  const char* targets = std::getenv(kRunEnvTargets);
  if (shm_fd == nullptr || targets == nullptr) return;
  const int fd = std::atoi(shm_fd);
  void* mem = ::mmap(nullptr, sizeof(RunShared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED || static_cast<RunShared*>(mem)->magic != kRunMagic) return complain("no shared counters");
  auto* shared = static_cast<RunShared*>(mem);
  std::string gdb_attach;  // --gdb: the command that attaches gdb
  std::chrono::milliseconds gdb_wait{300'000};
  const char* stream_fd = std::getenv(kRunEnvStream);
  if (stream_fd == nullptr) return complain("no stream counters");
  void* counters = ::mmap(nullptr, sizeof(StreamCounters), PROT_READ | PROT_WRITE, MAP_SHARED, std::atoi(stream_fd), 0);
  if (counters == MAP_FAILED || static_cast<StreamCounters*>(counters)->magic != StreamCounters::kMagic)
    return complain("no stream counters");
  auto* stream = static_cast<StreamCounters*>(counters);

  auto parsed = np::core::parse_targets(targets);
  if (!parsed) return complain(parsed.error().message);
  if (parsed->targets.size() > kRunMaxTargets) return complain("too many targets");
  LoggerConfig cfg;
  cfg.name = "netpoll run";
  if (const char* f = std::getenv(kRunEnvFacility)) {
    if (auto fac = parse_facility(f)) cfg.facility = *fac;
  }
  Sysdata sysdata;
  if (const char* s = std::getenv(kRunEnvSysdata)) {
    if (auto sd = parse_sysdata(s)) sysdata = *sd;
  }
  std::vector<std::pair<std::string, std::string>> userdata;
  if (const char* u = std::getenv(kRunEnvUserdata)) {
    std::string_view rest(u);
    while (!rest.empty()) {
      const auto sep = rest.find('\x1f');
      const std::string_view kv = rest.substr(0, sep);
      const auto eq = kv.find('=');
      if (eq != std::string_view::npos) userdata.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
      if (sep == std::string_view::npos) break;
      rest.remove_prefix(sep + 1);
    }
  }
  for (auto& t : parsed->targets) {
    TargetConfig tc;
    tc.target = std::move(t);
    tc.sysdata = sysdata;
    tc.userdata = userdata;
    cfg.targets.push_back(std::move(tc));
  }
  cfg.sender_thread = false;             // no thread of ours in the program
  cfg.device.service_thread = false;
  cfg.ring_records = 64;                 // the program logs nothing itself
  cfg.shared_seq = &stream->seq;
  cfg.shared_msgid = stream->msgid;
  cfg.shared_console_level = &shared->console_level;
  const Facility logger_facility = cfg.facility;
  auto lg = Logger::create(std::move(cfg));
  if (!lg) return complain(lg.error().message);
  // Lives until the process ends: a crash may come at any moment, even
  // during exit, so it is never destroyed.
  Logger* logger = lg->release();
  CrashConfig crash;
  if (const char* dump = std::getenv(kRunEnvDump)) {
    // netpoll run --dump: after the crash record, the core.
    auto dt = np::core::parse_targets(dump);
    if (!dt || dt->targets.size() != 1) return complain(std::string("--dump: ") + (dt ? "one target" : dt.error().message));
    np::netdump::DumperConfig dc;
    dc.stream.client.name = "netpoll run: netdump";
    dc.stream.client.target = std::move(dt->targets[0]);
    if (const char* d = std::getenv(kRunEnvDumpDeadline))
      dc.deadline = std::chrono::milliseconds(static_cast<std::int64_t>(std::strtod(d, nullptr) * 1000));
    crash.after_report_deadline = dc.deadline + std::chrono::seconds(1);
    auto dumper = np::netdump::Dumper::setup(std::move(dc));
    if (!dumper) return complain("--dump: " + dumper.error().message);
    // Lives until the process ends, as the logger does.
    g_dump_hook.dumper = dumper->release();
    g_dump_hook.shared = shared;
    crash.after_report = &dump_after_report;
    crash.after_report_arg = &g_dump_hook;
  }
  // The program netpoll run started, or a process it started in turn.
  const char* runner = std::getenv(kRunEnvRunner);
  const bool the_program = runner == nullptr || std::strtol(runner, nullptr, 10) == ::getppid();
  if (const char* g = the_program ? std::getenv(kRunEnvGdb) : nullptr) {
    // netpoll run --gdb: after the crash record, every thread stops and
    // gdb is served ("PORT@LOCAL_IP/DEVICE"; the peer is learned).
    const std::string_view spec(g);
    const auto at = spec.find('@');
    const auto slash = spec.find('/');
    const auto ip = at != std::string_view::npos && slash != std::string_view::npos && slash > at
                        ? np::Ipv4Addr::parse(spec.substr(at + 1, slash - at - 1))
                        : std::nullopt;
    const unsigned long port = std::strtoul(std::string(spec.substr(0, at)).c_str(), nullptr, 10);
    if (!ip || port == 0 || port > 65535) return complain(std::string("--gdb: cannot read ") + g);
    np::gdb::StubConfig sc;
    sc.client.name = "netpoll run: gdb stub";
    sc.client.target.local_port = static_cast<std::uint16_t>(port);
    sc.client.target.local_ip = *ip;
    sc.client.target.device = std::string(spec.substr(slash + 1));
    sc.client.target.remote_ip = np::Ipv4Addr{};
    // The crash only: the program's own SIGTRAP stays its own. With
    // --commands, a remote `gdb` breaks in too, and only the address that
    // sent an authenticated command is served.
    const bool commands = std::getenv(kRunEnvCommands) != nullptr;
    sc.break_in = commands;
    sc.watch = commands;
    sc.granted_only = commands;
    if (const char* w = std::getenv(kRunEnvGdbWait))
      sc.wait = std::chrono::milliseconds(static_cast<std::int64_t>(std::strtod(w, nullptr) * 1000));
    const auto dump_deadline = crash.after_report != nullptr ? crash.after_report_deadline : std::chrono::milliseconds(0);
    crash.after_report_deadline = sc.wait + std::chrono::seconds(10) + dump_deadline;
    gdb_wait = sc.wait;
    auto stub = np::gdb::Stub::setup(std::move(sc));
    if (!stub) return complain("--gdb: " + stub.error().message);
    g_gdb_hook.stub = stub->release();  // lives until the process ends
    if (crash.after_report != nullptr) g_gdb_hook.dump = &g_dump_hook;  // --dump: the core after gdb
    crash.after_report = &gdb_after_report;
    crash.after_report_arg = &g_gdb_hook;
    if (const char* a = std::getenv(kRunEnvGdbAttach)) {
      crash.report_trailer = a;
      // "stopped for gdb (S s): gdb PROGRAM -ex '...'": the command.
      const std::string_view attach(a);
      const auto colon = attach.find("): ");
      gdb_attach = std::string(colon == std::string_view::npos ? attach : attach.substr(colon + 3));
    }
  }
  crash.drain_fds = {1, 2};
  crash.peer_idle = &shared->runner_idle;
  crash.report_count = &shared->crash_reports;
  if (auto r = install_crash_handler(*logger, crash); !r) return complain(r.error().message);
  ::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (const char* keys = the_program ? std::getenv(kRunEnvCommands) : nullptr) {
    // netpoll run --commands: a thread of netpoll's (np-cmd) takes
    // authenticated commands on the first target's local address and port.
    auto ring = np::command::load_key_file(keys);
    if (!ring) return complain("--commands: " + ring.error().message);
    const auto& t = logger->target_client(0).target();
    np::remote::ServerConfig sc;
    sc.client.name = "netpoll run: remote commands";
    sc.client.target.local_ip = t.local_ip;
    sc.client.target.local_port = t.local_port;
    sc.client.target.device = t.device;
    sc.keys = *ring;
    sc.logger = logger;
    sc.facility = logger_facility;
    sc.hooks.dump_missing = "no dump server (netpoll run --dump HOST)";
    sc.hooks.gdb_missing = "no gdb stub (netpoll run --gdb)";
    auto* hooks = new CommandHooks();
    if (g_dump_hook.dumper != nullptr) {
      hooks->dump = &g_dump_hook;
      hooks->dump_to.append(g_dump_hook.dumper->describe());
      sc.hooks.dump = &dump_command;
      sc.hooks.dump_arg = hooks;
    }
    if (g_gdb_hook.stub != nullptr) {
      hooks->stub = g_gdb_hook.stub;
      hooks->attach.append(gdb_attach);
      sc.hooks.gdb_grant = &gdb_command;
      sc.hooks.gdb_break_in = &gdb_break_in;
      sc.hooks.gdb_arg = hooks;
      sc.hooks.gdb_grant_time = gdb_wait;
      // Stopped for gdb after a crash, the program still takes commands.
      sc.blocked_signals.push_back(np::gdb::ProcessTargetConfig{}.stop_signal);
    }
    auto server = np::remote::Server::setup(std::move(sc));
    if (!server) return complain("--commands: " + server.error().message);
    server->release();  // lives until the process ends, as the logger does
  }
}

struct ThreadStart {
  void* (*fn)(void*);
  void* arg;
};

void* start_with_altstack(void* p) {
  const ThreadStart start = *static_cast<ThreadStart*>(p);
  std::free(p);
  static_cast<void>(prepare_thread());  // without one, only this thread's overflow goes unreported
  return start.fn(start.arg);
}

}  // namespace

extern "C" int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*fn)(void*), void* arg) {
  using Create = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
  static const Create real = reinterpret_cast<Create>(::dlsym(RTLD_NEXT, "pthread_create"));
  if (real == nullptr) return EAGAIN;
  if (std::getenv(kRunEnvShm) == nullptr) return real(thread, attr, fn, arg);
  auto* start = static_cast<ThreadStart*>(std::malloc(sizeof(ThreadStart)));
  if (start == nullptr) return real(thread, attr, fn, arg);
  *start = ThreadStart{fn, arg};
  const int rc = real(thread, attr, start_with_altstack, start);
  if (rc != 0) std::free(start);
  return rc;
}
