// The built-in commands (command/invocation.h lists them), on np-cmd.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>

#include "netpoll/remote/server.h"

namespace np::remote {

using command::Builtin;

namespace {

// sysrq's 'c': a write to address 0, the fault of a real crash (written in
// assembly so that no sanitizer turns it into a report of its own).
void crash_now(void*) {
  asm volatile("movl $0, 0" ::: "memory");
}

void terminate_now(void*) { ::kill(::getpid(), SIGTERM); }

// The lines of /proc/self/status a person asks about, read without stdio.
void status_lines(Reply& reply) noexcept {
  char buf[4096];
  const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  std::size_t len = 0;
  for (ssize_t n; len < sizeof buf && (n = ::read(fd, buf + len, sizeof buf - len)) > 0;)
    len += static_cast<std::size_t>(n);
  ::close(fd);
  constexpr std::string_view kWanted[] = {"VmSize:", "VmRSS:", "VmHWM:", "VmData:", "RssAnon:", "RssFile:", "Threads:"};
  std::string_view rest(buf, len);
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    for (const auto w : kWanted) {
      if (line.substr(0, w.size()) != w) continue;
      std::string_view value = line.substr(w.size());
      value.remove_prefix(std::min(value.size(), value.find_first_not_of(" \t")));
      reply.text("\n").text(w.substr(0, w.size() - 1)).text(" ").text(value);
    }
  }
}

}  // namespace

void Server::builtin(Builtin b, std::string_view args, Reply& reply) noexcept {
  switch (b) {
    case Builtin::kHelp: return help(reply);
    case Builtin::kStacks: return stacks(reply);
    case Builtin::kMemory: return memory(reply);
    case Builtin::kLevel: return level(args, reply);
    case Builtin::kStats: return stats(reply);
    case Builtin::kDump:
      if (cfg_.hooks.dump == nullptr) {
        reply.text("dump: ").text(cfg_.hooks.dump_missing).end_record();
        return;
      }
      cfg_.hooks.dump(cfg_.hooks.dump_arg, reply);
      reply.end_record();
      return;
    case Builtin::kGdb:
      if (cfg_.hooks.gdb_grant == nullptr) {
        reply.text("gdb: ").text(cfg_.hooks.gdb_missing).end_record();
        return;
      }
      if (cfg_.hooks.gdb_grant(cfg_.hooks.gdb_arg, reply.sender(), cfg_.hooks.gdb_grant_time, false, reply) &&
          cfg_.hooks.gdb_break_in != nullptr)
        reply.then(cfg_.hooks.gdb_break_in, cfg_.hooks.gdb_arg);
      reply.end_record();
      return;
    case Builtin::kCrash:
      reply.text("crash: crashing now (SIGSEGV at address 0 on thread np-cmd), as asked").end_record();
      // A crash that waits for gdb serves the address that asked.
      if (cfg_.hooks.gdb_grant != nullptr) {
        static_cast<void>(cfg_.hooks.gdb_grant(cfg_.hooks.gdb_arg, reply.sender(), cfg_.hooks.gdb_grant_time, true, reply));
        reply.end_record();
      }
      reply.then(&crash_now, nullptr);
      return;
    case Builtin::kTerminate:
      reply.format("terminate: sending SIGTERM to process {}", ::getpid()).end_record();
      reply.then(&terminate_now, nullptr);
      return;
    case Builtin::kCount: break;
  }
}

void Server::help(Reply& reply) noexcept {
  reply.text("commands (letter, name, what it does):");
  for (const auto& b : command::kBuiltins) {
    reply.text("\n").text(std::string_view(&b.letter, 1)).text("  ").text(b.name);
    if (!b.usage.empty()) reply.text(" ").text(b.usage);
    reply.text(": ").text(b.help);
  }
  const std::size_t n = command_count_.load(std::memory_order_acquire);
  if (n > 0) reply.text("\nthe program's:");
  for (std::size_t i = 0; i < n; ++i)
    reply.text("\n   ").text(commands_[i].name.view()).text(": ").text(commands_[i].help.view());
  reply.end_record();
}

void Server::memory(Reply& reply) noexcept {
  reply.format("memory of process {}:", ::getpid());
  status_lines(reply);
  // glibc's view of its heap (takes its arena locks: see server.h).
  const struct mallinfo2 mi = ::mallinfo2();
  reply.format("\nheap: arena {} bytes, in use {} bytes, free {} bytes, mmapped {} bytes in {} blocks, top releasable {} bytes",
               mi.arena, mi.uordblks, mi.fordblks, mi.hblkhd, mi.hblks, mi.keepcost);
  reply.end_record();
}

void Server::level(std::string_view args, Reply& reply) noexcept {
  if (cfg_.logger == nullptr) {
    reply.text("level: no console in this process").end_record();
    return;
  }
  const std::uint8_t was = cfg_.logger->console_level();
  const auto describe = [&reply](std::uint8_t l) {
    if (l >= console::kAllLevels) {
      reply.text("every record is sent");
      return;
    }
    if (l == 0) {
      reply.text("no record is sent (but commands' and crash records)");
      return;
    }
    reply.text("records at ");
    for (std::uint8_t i = 0; i < l; ++i)
      reply.text(i == 0 ? "" : ", ").text(console::to_string(static_cast<console::Level>(i)));
    reply.text(" are sent");
  };
  if (args.empty()) {
    reply.format("console level {}: ", was);
    describe(was);
    reply.end_record();
    return;
  }
  const auto l = command::parse_level_arg(args);
  if (!l) {
    reply.text("level: expected a level 0 to 8, not '").text(args).text("'").end_record();
    return;
  }
  cfg_.logger->set_console_level(*l);
  reply.format("console level {} (was {}): ", *l, was);
  describe(*l);
  reply.end_record();
}

void Server::stats(Reply& reply) noexcept {
  const auto drops = [&reply](const auto& counters) {
    const char* sep = " (";
    counters.for_each([&](auto reason, std::uint64_t v) {
      if (v == 0) return;
      reply.text(sep).text(to_string(reason)).format(" {}", v);
      sep = ", ";
    });
    if (*sep == ',') reply.text(")");
  };
  const auto device = [&](std::string_view what, core::SharedDevice& d) {
    const auto& s = d.stats();
    reply.text("\n").text(what).text(" ").text(d.spec().text).format(
        ": rx frames {}, delivered {}, dropped {}", s.rx_frames.value(), s.rx_delivered.value(), s.rx_drops.total());
    drops(s.rx_drops);
    reply.format("; tx frames {}, dropped {}", s.tx_frames.value(), s.tx_drops.total());
    drops(s.tx_drops);
    reply.format("; arp replies sent {}; deferred now {}, deepest {}", s.arp_replies_sent.value(), d.deferred_depth(),
                 s.deferred_high.value());
  };
  reply.format("remote commands: accepted {}, run {}, unknown {}, replies {}, reply errors {}, dropped {}",
               verifier_.accepted(), stats_.executed.value(), stats_.unknown.value(), stats_.replies.value(),
               stats_.reply_errors.value(), verifier_.drops().total());
  drops(verifier_.drops());
  device("commands' device", np_->shared());
  if (console::Logger* lg = cfg_.logger) {
    const auto& ls = lg->stats();
    reply.format("\nconsole: level {}, logged {}, filtered {}, truncated {}, continued {}, ring overflows {}, pending {}",
                 lg->console_level(), ls.logged.value(), ls.filtered.value(), ls.truncated.value(),
                 ls.continued.value(), lg->ring_overflows(), lg->pending());
    for (std::size_t i = 0; i < lg->target_count(); ++i) {
      const auto& ts = lg->target_stats(i);
      core::Netpoll& c = lg->target_client(i);
      reply.format("\ntarget {} ", i + 1).text(c.target().text).format(
          ": records {}, datagrams {}, dropped {}, tx errors {}; client tx {}, rx {}", ts.records.value(),
          ts.datagrams.value(), ts.dropped.value(), ts.tx_errors.value(), c.stats().tx_datagrams.value(),
          c.stats().rx_datagrams.value());
      drops(c.stats().tx_drops);
      device("console device", c.shared());
    }
  }
  reply.end_record();
}

void Server::stacks(Reply& reply) noexcept {
  std::size_t left_out = 0;
  const std::size_t n = stacks_->walk(
      [&reply](pid_t, std::string_view record) {
        reply.text(record);
        reply.end_record();
      },
      &left_out);
  reply.format("stacks: {} threads", n);
  if (left_out > 0) reply.format(", {} more not shown", left_out);
  reply.end_record();
}

}  // namespace np::remote
