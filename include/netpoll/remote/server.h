// Remote commands in a process: authenticated requests received on the
// console source's address and port through netpoll's own receive path,
// run by a thread of netpoll's, answered to the sender and logged.
//
// The server is a netpoll client (core/netpoll.h) bound to the console
// target's local IP and port on its device, accepting any sender (remote
// 0.0.0.0), on a device of its own (a private registry, as the gdb stub
// and netdump have): the logger's device may be taken over by the crash
// path, and a thread of the program stuck in a send holds nothing here.
// Its thread ("np-cmd") polls that device; every datagram the receive
// hook gets goes through the verifier (command/verifier.h: length, key,
// MAC first, then time and counter) at a fixed cost, and only a verified
// request is copied into a small fixed queue. After each poll the thread
// runs what is queued: it parses the body (command/invocation.h), logs
// "command from IP:PORT (key ID): BODY" into the console stream, runs the
// built-in or registered command, and sends the reply both ways: each
// record of it to the console stream (Logger::send_now: numbered when
// sent, never held back by the console level) and its text to the sender
// in authenticated reply datagrams (wire/command.h: the request's key and
// counter, parts in order, the last flagged). Drops are counted by reason
// and reported in the console stream at most once per drop_report period.
//
// Because the program's threads play no part, a program whose threads
// are all stuck still answers, and `stacks` shows where they are stuck.
// A command runs on np-cmd, one at a time; while it runs (a dump, a gdb
// session) datagrams wait in the device's ring.
//
// Built-ins (command/invocation.h lists them): help, stacks (remote/
// stacks.h), memory (/proc/self/status and mallinfo2), level (the
// logger's console level), stats, dump and gdb (through hooks the
// embedder sets: netpoll run's preloaded library wires its Dumper and gdb
// Stub), crash (a SIGSEGV on np-cmd: the crash path runs as for any
// crash) and terminate (SIGTERM to the process). A program adds its own
// with add_command().
//
// Invariants: no heap after setup on np-cmd or in the receive hook (the
// queue, reply buffers and per-thread stack records are fixed at setup;
// memory's mallinfo2 is glibc's and takes its arena locks: a program
// stuck inside malloc leaves `memory` waiting, the only built-in that
// can). Without a key there is no server: nothing is received.
//
// Context: as marked.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "netpoll/base/counter.h"
#include "netpoll/base/guarded.h"
#include "netpoll/base/inplace_function.h"
#include "netpoll/base/result.h"
#include "netpoll/base/text.h"
#include "netpoll/command/invocation.h"
#include "netpoll/command/key.h"
#include "netpoll/command/verifier.h"
#include "netpoll/console/cfi_unwind.h"
#include "netpoll/console/logger.h"
#include "netpoll/console/symbolizer.h"
#include "netpoll/core/netpoll.h"
#include "netpoll/remote/stacks.h"

namespace np::remote {

class Server;

// What a command writes: records, each sent to the console stream and to
// the sender as it ends. Text beyond a record's room (kRecordRoom) is cut
// and marked.
class Reply {
 public:
  static constexpr std::size_t kRecordRoom = 8000;

  // Appends to the current record. Context: any.
  Reply& text(std::string_view s) noexcept;
  template <class... Args>
  Reply& format(fmt::format_string<Args...> f, Args&&... args) noexcept {
    const std::size_t room = kRecordRoom - len_;
    const auto r = fmt::format_to_n(buf_ + len_, room, f, std::forward<Args>(args)...);
    len_ += std::min(room, static_cast<std::size_t>(r.size));
    cut_ = cut_ || static_cast<std::size_t>(r.size) > room;
    return *this;
  }
  // Ends the current record: to the console stream and to the sender.
  // An empty record is not sent. Context: any.
  void end_record() noexcept;
  // After the whole reply has gone: `fn(arg)` (gdb's break-in, crash,
  // terminate). Context: any.
  void then(void (*fn)(void*), void* arg) noexcept {
    then_ = fn;
    then_arg_ = arg;
  }
  // Who asked: the sender's address and port. Context: any.
  const core::UdpEndpoint& sender() const noexcept { return to_; }

 private:
  friend class Server;
  Reply() = default;
  Server* server_ = nullptr;
  core::UdpEndpoint to_{};
  const command::Key* key_ = nullptr;
  std::uint64_t counter_ = 0;
  std::uint16_t part_ = 0;
  char buf_[kRecordRoom];
  std::size_t len_ = 0;
  bool cut_ = false;
  // The reply's text not yet sent to the sender (one part's worth).
  char pending_[1024];
  std::size_t pending_len_ = 0;
  void (*then_)(void*) = nullptr;
  void* then_arg_ = nullptr;
};

// A command a program adds: `args` is what followed its name.
using Handler = InplaceFunction<void(std::string_view args, Reply& reply), 64>;

// How netpoll run (or a program) lets `dump` and `gdb` reach its Dumper
// and gdb Stub, which live in layers above this one. Each is optional;
// without it the command says what is missing.
struct Hooks {
  // dump: makes the core and writes what became of it. Context: any.
  void (*dump)(void* arg, Reply& reply) noexcept = nullptr;
  void* dump_arg = nullptr;
  // gdb: lets `peer` (and only it) talk to the stub for `grant`, writes
  // how to attach; true to break in once the reply is out (`break_in`).
  // `crash`: `crash` asked (the process is about to crash and may wait
  // for gdb): grant only.
  bool (*gdb_grant)(void* arg, const core::UdpEndpoint& peer, std::chrono::milliseconds grant, bool crash,
                    Reply& reply) noexcept = nullptr;
  void (*gdb_break_in)(void* arg) noexcept = nullptr;
  void* gdb_arg = nullptr;
  std::chrono::milliseconds gdb_grant_time{300'000};
  // "with netpoll run --dump", ... : what the commands say when a hook
  // is missing.
  std::string_view dump_missing = "no dump server configured";
  std::string_view gdb_missing = "no gdb stub configured";
};

struct ServerConfig {
  // Local IP, port (the console source's: 6665 unless given) and device;
  // the remote IP is taken as 0.0.0.0 (any sender). remote MAC is never
  // resolved. The device: its own (private registry), no service thread.
  core::ClientConfig client;
  command::KeyRing keys;
  command::VerifierConfig verifier;
  // Records into this logger's stream (and `level` changes its console
  // level); nullptr: replies go to the sender only. Must outlive the
  // server.
  console::Logger* logger = nullptr;
  console::Facility facility = console::Facility::kUser;
  StacksConfig stacks;
  bool symbolize = true;  // names in `stacks` (symbol tables read at setup)
  Hooks hooks;
  std::chrono::milliseconds drop_report{1000};  // at most one drop report per this
  bool thread = true;     // false: call poll_once() yourself (tests)
  // Signals np-cmd blocks: netpoll run blocks the gdb stub's stop signal,
  // so that a program stopped for gdb after a crash still takes commands
  // (gdb then shows np-cmd without registers).
  std::vector<int> blocked_signals;
};

struct ServerStats {
  SharedCounter executed;   // commands run (built-in or registered)
  SharedCounter unknown;    // verified requests naming no command
  SharedCounter replies;    // reply datagrams sent
  SharedCounter reply_errors;  // reply datagrams netpoll refused
  SharedCounter drop_reports;  // drop reports logged
};

class Server : public InGuardedMemory<Server> {
 public:
  // Commands a program may add.
  static constexpr std::size_t kMaxCommands = 16;
  // Verified requests waiting for np-cmd at most (more: dropped, kBusy).
  static constexpr std::size_t kQueue = 4;

  // Reads the symbol tables, sets up the stacks' stop signal and the
  // client, starts np-cmd. Refuses an empty key ring. Context: setup.
  [[nodiscard]] static SetupResult<std::unique_ptr<Server>> setup(ServerConfig cfg);
  // Stops np-cmd (after the command it runs). Context: setup.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Adds a command: `name` (printable ASCII without spaces, at most 23
  // bytes, not a built-in's letter or name), a line of help (at most 95
  // bytes), the handler (runs on np-cmd). Context: setup.
  [[nodiscard]] SetupResult<void> add_command(std::string_view name, std::string_view help, Handler handler);

  // Polls the device once and runs what was verified; then, when due, the
  // drop report. `now_ns`: the clock requests are checked against and
  // reports paced by (ns since the Unix epoch; np-cmd passes
  // realtime_ns()). Returns the frames received. For a server without
  // its thread (tests); np-cmd calls it in a loop. Context: any.
  std::size_t poll_once(std::int64_t now_ns) noexcept;

  const command::Verifier& verifier() const noexcept { return verifier_; }
  const ServerStats& stats() const noexcept { return stats_; }
  core::Netpoll& client() noexcept { return *np_; }
  // "10.0.0.1:6665 on packet:eth0". Context: setup.
  std::string describe() const;

 private:
  friend class Reply;
  struct Request {
    core::UdpEndpoint from;
    std::uint32_t key_id = 0;
    std::uint64_t counter = 0;
    std::size_t len = 0;
    char body[wire::command::kMaxRequestBody];
  };
  struct Entry {
    FixedText<24> name;
    FixedText<96> help;
    Handler handler;
  };

  explicit Server(ServerConfig cfg);
  void on_datagram(const core::RxInfo& info, std::span<const std::byte> payload) noexcept;
  void run(const Request& r) noexcept;
  void builtin(command::Builtin b, std::string_view args, Reply& reply) noexcept;
  void help(Reply& reply) noexcept;
  void memory(Reply& reply) noexcept;
  void level(std::string_view args, Reply& reply) noexcept;
  void stats(Reply& reply) noexcept;
  void stacks(Reply& reply) noexcept;
  void report_drops(std::int64_t now_ns) noexcept;
  // Reply's ways out. Context: any.
  void record(std::string_view text, console::Level level) noexcept;
  void send_part(Reply& r, bool last) noexcept;
  void loop() noexcept;

  ServerConfig cfg_;
  command::Verifier verifier_;
  core::Registry registry_;
  std::unique_ptr<core::Netpoll> np_;
  console::SymbolizerPtr sym_;
  console::CfiIndex cfi_{};
  std::unique_ptr<Stacks> stacks_;
  std::array<Entry, kMaxCommands> commands_{};
  std::atomic<std::size_t> command_count_{0};
  std::array<Request, kQueue> queue_{};
  std::size_t queued_ = 0;  // the polling thread's: filled by the hook, emptied after the poll
  Reply reply_;
  std::array<std::byte, 1600> datagram_{};
  std::uint64_t drops_reported_ = 0;
  std::int64_t last_report_ns_ = INT64_MIN;
  std::int64_t now_ns_ = 0;  // poll_once()'s, for the receive hook
  std::atomic<bool> stop_{false};
  std::thread thread_;
  ServerStats stats_;
};

}  // namespace np::remote
