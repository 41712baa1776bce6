// One gdb session's protocol logic: gdb's remote serial protocol (RSP) as
// a state machine over fixed buffers, between gdb's byte stream (fed in,
// answered through a Transport) and a stopped Target (target.h).
//
// Acknowledgements stay on (gdb over UDP relies on them): every whole
// packet is answered '+' (in the same send as its reply), a damaged one
// '-'; a reply not acknowledged is sent again after `resend_after` (alone:
// gdb, waiting for the '+' of a packet, takes a reply for an old one and
// drops it), and at once on '-', up to `resends` times. A new packet from
// gdb means it has the last reply: that one is not sent again. A packet
// gdb sends again because it saw no '+' in time is served again (every
// request served twice has the effect of one), unless it comes within
// `resend_after` of the first while that reply is unacknowledged: then
// both copies were waiting for a stub that was slow (gdb's 2 s went by),
// the reply already sent is on its way, and a second '+' and reply would
// be taken by gdb for the answer to its next packet.
//
// Packets served (gdb's manual, "Packets" and "General Query Packets"):
//   qSupported   PacketSize, qXfer:features/threads/libraries-svr4/auxv/
//                exec-file:read+, swbreak+ (when gdb offers it), vContSupported+
//   ?            the stop reply: T<sig>thread:<tid>; (swbreak:; for a breakpoint)
//   g G p P      registers (registers.h); a thread's unknown registers read
//                as unavailable ('x')
//   m M          memory; an address that cannot be read or written: E14
//   qfThreadInfo qsThreadInfo qC T H(g|c)   threads
//   vCont? vCont;c / s / C / S [:tid] ...,  c s C S: resume (a signal
//                gdb asks to pass with C/S is not delivered)
//   Z0 z0        software breakpoints; other kinds: the empty reply
//   k vKill      kill: the session ends killed; D: detached
//   0x03         while the target runs: interrupt_asked() (the stub stops
//                it, the stop reply says SIGINT)
//   qAttached    1 (gdb detaches, not kills, when it quits)
// Anything else gets the empty reply ("not supported"), as the protocol
// asks. Thread ids are plain hex (no multiprocess extension). A resume
// lets every thread run (gdb's scheduler-locking is not honoured); a
// session made with `new` lives in a guarded mapping of its own (the crash
// path's memory, base/guarded.h).
//
// Context: any (no allocation after construction; every loop is bounded
// by the buffer it walks).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "netpoll/base/guarded.h"
#include "netpoll/gdb/target.h"
#include "netpoll/wire/gdb_rsp.h"

namespace np::gdb {

// The largest packet gdb may send us (we say so in qSupported).
inline constexpr std::size_t kPacketSize = 4096;
// The largest reply payload, unescaped.
inline constexpr std::size_t kReplySize = kPacketSize + 64;

struct SessionConfig {
  std::int64_t resend_after_ns = 300'000'000;
  int resends = 40;
};

enum class SessionState : std::uint8_t {
  kServing,   // the target is stopped and gdb is being answered
  kResumed,   // gdb let the target go (resume()); on_stop() when it stops again
  kKilled,    // gdb killed it (k, vKill)
  kDetached,  // gdb detached (D)
};

struct SessionStats {
  std::uint64_t packets = 0;      // whole packets served
  std::uint64_t unsupported = 0;  // answered with the empty reply
  std::uint64_t errors = 0;       // answered with an E reply
  std::uint64_t acks = 0;
  std::uint64_t naks = 0;         // '-' from gdb
  std::uint64_t resends = 0;      // replies sent again (on '-' or a timeout)
  std::uint64_t interrupts = 0;   // 0x03
  std::uint64_t bad_packets = 0;  // checksum wrong or too long: answered '-'
  std::uint64_t copies = 0;       // a packet again before its reply could be acknowledged: not answered again
};

class Session : public InGuardedMemory<Session> {
 public:
  Session(Target& target, Transport& out, SessionConfig cfg = {}) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Starts over for a new gdb: forgets what a previous one left half said.
  void reset() noexcept;

  // The target stopped (again). When gdb resumed it and is waiting for
  // the stop, the stop reply goes out now. Context: any.
  void on_stop(std::int64_t now_ns) noexcept;

  // The target cannot go on (a crashed process gdb tried to continue):
  // a gdb waiting for the stop hears that it ended with `host_signal`
  // (X). Context: any.
  void on_exit(int host_signal, std::int64_t now_ns) noexcept;
  // The program ended with exit status `code` while gdb waited for it to
  // stop: it hears so (W). Context: any.
  void on_exited(int code, std::int64_t now_ns) noexcept;

  // Bytes from gdb, in order. Context: any.
  void feed(std::span<const std::byte> in, std::int64_t now_ns) noexcept;

  // Sends the last reply again when it has waited too long for its '+'.
  // Context: any.
  void tick(std::int64_t now_ns) noexcept;

  SessionState state() const noexcept { return state_; }
  // How to go on, once state() is kResumed.
  const Resume& resume() const noexcept { return resume_; }
  // No reply waits for gdb's acknowledgement (or it was given up on).
  bool settled() const noexcept { return !awaiting_ack_; }
  // gdb has said something valid since the last reset().
  bool heard() const noexcept { return heard_; }
  // gdb sent an interrupt (its Ctrl-C, 0x03) while the target ran: the
  // caller should stop it (the stop reply then goes out from on_stop()).
  bool interrupt_asked() const noexcept { return interrupt_; }
  const SessionStats& stats() const noexcept { return stats_; }
  const wire::RspStats& framing() const noexcept { return decoder_.stats(); }

 private:
  class Reply;
  void on_event(wire::RspEvent e, std::int64_t now_ns) noexcept;
  void serve(std::string_view packet, std::int64_t now_ns) noexcept;
  void send_reply(std::string_view payload, std::int64_t now_ns,
                  wire::RspPayload kind = wire::RspPayload::kText) noexcept;
  void send_raw(std::string_view bytes) noexcept;
  void stop_reply(Reply& r) noexcept;
  void query(std::string_view p, Reply& r) noexcept;
  void xfer(std::string_view p, Reply& r) noexcept;
  void registers_all(Reply& r) noexcept;
  void write_registers_all(std::string_view hex, Reply& r) noexcept;
  void read_reg(std::string_view p, Reply& r) noexcept;
  void write_reg(std::string_view p, Reply& r) noexcept;
  void read_mem(std::string_view p, Reply& r) noexcept;
  void write_mem(std::string_view p, Reply& r) noexcept;
  void breakpoint(std::string_view p, bool insert, Reply& r) noexcept;
  bool vcont(std::string_view p) noexcept;
  bool known_thread(pid_t tid) const noexcept;
  pid_t general_thread() const noexcept;
  std::size_t threads_xml() noexcept;

  Target& target_;
  Transport& out_;
  SessionConfig cfg_;
  wire::RspDecoder decoder_;
  SessionState state_ = SessionState::kServing;
  Resume resume_;
  bool waiting_for_stop_ = false;  // gdb resumed us and waits for a stop reply
  bool swbreak_ = false;           // gdb said swbreak+
  bool heard_ = false;
  bool ack_owed_ = false;   // the packet being served has not had its '+' yet
  bool interrupt_ = false;  // 0x03 while resumed, not yet acted on
  pid_t g_thread_ = 0;  // Hg: registers and memory (0: the stopped one)
  pid_t c_thread_ = 0;  // Hc: the thread s and c apply to
  // The last reply as sent (framed), until gdb acknowledges it.
  bool awaiting_ack_ = false;
  int resends_left_ = 0;
  std::int64_t sent_ns_ = 0;
  std::size_t frame_len_ = 0;
  // The last packet served (its length and FNV-1a hash) and when: a copy
  // of it that comes before its reply was acknowledged is not answered.
  std::size_t served_len_ = 0;
  std::uint64_t served_hash_ = 0;
  std::int64_t served_ns_ = 0;
  SessionStats stats_;
  std::array<char, kPacketSize + 32> in_{};
  std::array<char, kPacketSize + 32> work_{};
  std::array<char, kReplySize> reply_{};
  std::array<char, 2 * kReplySize + 9> frame_{};  // [0]: an owed '+'
  std::array<char, 48 * 1024> xml_{};
};

}  // namespace np::gdb
