#include "netpoll/gdb/session.h"

#include <signal.h>

#include <algorithm>
#include <cstring>

#include "netpoll/base/hex.h"
#include "netpoll/gdb/registers.h"

namespace np::gdb {
namespace {



// Takes a hex number (1 to 16 digits) off the front of `s`.
bool take_hex(std::string_view& s, std::uint64_t& v) noexcept {
  v = 0;
  std::size_t n = 0;
  while (n < s.size() && n < 17 && hex_digit(s[n]) >= 0) v = v << 4 | static_cast<std::uint64_t>(hex_digit(s[n++]));
  if (n == 0 || n > 16) return false;
  s.remove_prefix(n);
  return true;
}

bool take_char(std::string_view& s, char c) noexcept {
  if (s.empty() || s.front() != c) return false;
  s.remove_prefix(1);
  return true;
}

// A thread id as gdb writes it: hex, "0" (any) or "-1" (all); `all` for -1.
bool take_thread(std::string_view& s, pid_t& tid, bool& all) noexcept {
  all = false;
  if (s.starts_with("-1")) {
    s.remove_prefix(2);
    all = true;
    tid = 0;
    return true;
  }
  std::uint64_t v = 0;
  if (!take_hex(s, v) || v > 0x7fffffff) return false;
  tid = static_cast<pid_t>(v);
  return true;
}

// Decodes hex pairs from `hex` into `out`; false on a bad digit or length.
bool unhex(std::string_view hex, std::span<std::byte> out) noexcept {
  if (hex.size() != 2 * out.size()) return false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::byte>(hi << 4 | lo);
  }
  return true;
}

}  // namespace

// A reply payload being built in the session's buffer; an overflow makes
// it an error reply rather than a truncated one.
class Session::Reply {
 public:
  explicit Reply(std::span<char> buf) noexcept : buf_(buf) {}
  Reply& put(std::string_view s) noexcept {
    for (const char c : s) put(c);
    return *this;
  }
  Reply& put(char c) noexcept {
    if (len_ < buf_.size()) {
      buf_[len_++] = c;
    } else {
      overflow_ = true;
    }
    return *this;
  }
  Reply& hex_bytes(std::span<const std::byte> b) noexcept {
    for (const std::byte x : b) {
      const auto v = std::to_integer<unsigned>(x);
      put(kHexDigits[v >> 4]).put(kHexDigits[v & 15]);
    }
    return *this;
  }
  Reply& hex(std::uint64_t v, int min_digits = 1) noexcept {
    char tmp[16];
    int n = 0;
    do {
      tmp[n++] = kHexDigits[v & 15];
      v >>= 4;
    } while (v != 0 && n < 16);
    while (n < min_digits && n < 16) tmp[n++] = '0';
    while (n > 0) put(tmp[--n]);
    return *this;
  }
  Reply& error(int code) noexcept {
    len_ = 0;
    is_error_ = true;
    binary_ = false;
    return put('E').hex(static_cast<std::uint64_t>(code), 2);
  }
  void clear() noexcept { len_ = 0; }
  bool empty() const noexcept { return len_ == 0; }
  bool overflow() const noexcept { return overflow_; }
  bool is_error() const noexcept { return is_error_; }
  // Binary data (qXfer's): escaped as such when framed.
  void mark_binary() noexcept { binary_ = true; }
  wire::RspPayload kind() const noexcept { return binary_ ? wire::RspPayload::kBinary : wire::RspPayload::kText; }
  std::string_view view() const noexcept { return {buf_.data(), len_}; }
  std::size_t room() const noexcept { return buf_.size() - len_; }

 private:
  std::span<char> buf_;
  std::size_t len_ = 0;
  bool overflow_ = false;
  bool is_error_ = false;
  bool binary_ = false;
};

Session::Session(Target& target, Transport& out, SessionConfig cfg) noexcept
    : target_(target), out_(out), cfg_(cfg), decoder_(std::span<char>(in_)) {}

void Session::reset() noexcept {
  decoder_.reset();
  state_ = SessionState::kServing;
  resume_ = {};
  waiting_for_stop_ = false;
  interrupt_ = false;
  swbreak_ = false;
  heard_ = false;
  g_thread_ = 0;
  c_thread_ = 0;
  awaiting_ack_ = false;
  frame_len_ = 0;
}

void Session::on_stop(std::int64_t now_ns) noexcept {
  state_ = SessionState::kServing;
  interrupt_ = false;
  resume_ = {};
  g_thread_ = 0;
  c_thread_ = 0;
  if (!waiting_for_stop_) return;
  waiting_for_stop_ = false;
  Reply r(reply_);
  stop_reply(r);
  send_reply(r.view(), now_ns);
}

void Session::on_exit(int host_signal, std::int64_t now_ns) noexcept {
  state_ = SessionState::kKilled;
  if (!waiting_for_stop_) return;
  waiting_for_stop_ = false;
  Reply r(reply_);
  r.put('X').hex(static_cast<std::uint64_t>(gdb_signal(host_signal)), 2);
  send_reply(r.view(), now_ns);
}

void Session::on_exited(int code, std::int64_t now_ns) noexcept {
  state_ = SessionState::kKilled;
  if (!waiting_for_stop_) return;
  waiting_for_stop_ = false;
  Reply r(reply_);
  r.put('W').hex(static_cast<std::uint64_t>(code & 0xff), 2);
  send_reply(r.view(), now_ns);
}

void Session::feed(std::span<const std::byte> in, std::int64_t now_ns) noexcept {
  decoder_.feed(in, [&](wire::RspEvent e) { on_event(e, now_ns); });
}

void Session::tick(std::int64_t now_ns) noexcept {
  if (!awaiting_ack_ || now_ns - sent_ns_ < cfg_.resend_after_ns) return;
  if (resends_left_ <= 0) {
    awaiting_ack_ = false;  // given up on: gdb will ask again if it must
    return;
  }
  --resends_left_;
  ++stats_.resends;
  sent_ns_ = now_ns;
  send_raw(std::string_view(frame_.data() + 1, frame_len_));
}

void Session::on_event(wire::RspEvent e, std::int64_t now_ns) noexcept {
  switch (e) {
    case wire::RspEvent::kAck:
      ++stats_.acks;
      awaiting_ack_ = false;
      return;
    case wire::RspEvent::kNak:
      ++stats_.naks;
      if (frame_len_ > 0 && resends_left_ > 0) {
        --resends_left_;
        ++stats_.resends;
        sent_ns_ = now_ns;
        awaiting_ack_ = true;
        send_raw(std::string_view(frame_.data() + 1, frame_len_));
      }
      return;
    case wire::RspEvent::kInterrupt:
      ++stats_.interrupts;
      // While the target runs: whoever polls then stops it (interrupt_
      // asked()). Already stopped: a gdb that thinks it runs gets the stop
      // at once.
      if (state_ == SessionState::kResumed) {
        interrupt_ = true;
      } else if (waiting_for_stop_) {
        on_stop(now_ns);
      }
      return;
    case wire::RspEvent::kBadChecksum:
    case wire::RspEvent::kOverflow:
      ++stats_.bad_packets;
      send_raw("-");
      return;
    case wire::RspEvent::kPacket: {
      const std::string_view p = decoder_.payload();
      std::uint64_t hash = 0xcbf29ce484222325;  // FNV-1a
      for (const char c : p) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3;
      if (awaiting_ack_ && p.size() == served_len_ && hash == served_hash_ &&
          now_ns - served_ns_ < cfg_.resend_after_ns) {
        ++stats_.copies;
        return;
      }
      // gdb sends a packet only once it has the reply to the one before:
      // whatever was not acknowledged arrived (its '+' was lost).
      awaiting_ack_ = false;
      served_len_ = p.size();
      served_hash_ = hash;
      served_ns_ = now_ns;
      std::memcpy(work_.data(), p.data(), p.size());
      const std::size_t n = wire::rsp_unescape(std::span<char>(work_.data(), p.size()));
      // The '+' goes out with the reply, in one datagram: one loss fewer
      // to wait for. A packet without a reply gets it alone.
      ack_owed_ = true;
      heard_ = true;
      ++stats_.packets;
      serve(std::string_view(work_.data(), n), now_ns);
      if (ack_owed_) send_raw("+");
      ack_owed_ = false;
      return;
    }
  }
}

void Session::send_raw(std::string_view bytes) noexcept { out_.send(std::span<const char>(bytes.data(), bytes.size())); }

void Session::send_reply(std::string_view payload, std::int64_t now_ns, wire::RspPayload kind) noexcept {
  // frame_[0] is room for the '+' owed to the packet this answers; a
  // resend never carries it (gdb would take a stray '+' for the
  // acknowledgement of its next packet).
  const std::span<char> room(frame_.data() + 1, frame_.size() - 1);
  frame_len_ = wire::rsp_encode(payload, room, kind);
  if (frame_len_ == 0) frame_len_ = wire::rsp_encode("E01", room);  // cannot happen: sized for it
  awaiting_ack_ = true;
  resends_left_ = cfg_.resends;
  sent_ns_ = now_ns;
  frame_[0] = '+';
  const bool ack = ack_owed_;
  ack_owed_ = false;
  send_raw(std::string_view(frame_.data() + (ack ? 0 : 1), frame_len_ + (ack ? 1 : 0)));
}

bool Session::known_thread(pid_t tid) const noexcept {
  const std::size_t n = target_.thread_count();
  for (std::size_t i = 0; i < n; ++i) {
    if (target_.thread_id(i) == tid) return true;
  }
  return false;
}

pid_t Session::general_thread() const noexcept { return g_thread_ != 0 ? g_thread_ : target_.stop_event().thread; }

void Session::stop_reply(Reply& r) noexcept {
  const StopEvent ev = target_.stop_event();
  r.put('T').hex(static_cast<std::uint64_t>(gdb_signal(ev.signal)), 2);
  r.put("thread:").hex(static_cast<std::uint64_t>(ev.thread)).put(';');
  if (ev.breakpoint && swbreak_) r.put("swbreak:;");
}

void Session::serve(std::string_view p, std::int64_t now_ns) noexcept {
  Reply r(reply_);
  if (p.empty()) {
    ++stats_.unsupported;
    send_reply("", now_ns);
    return;
  }
  bool reply = true;
  const char kind = p.front();
  std::string_view rest = p.substr(1);
  switch (kind) {
    case '?':
      waiting_for_stop_ = false;
      stop_reply(r);
      break;
    case 'g':
      registers_all(r);
      break;
    case 'G':
      write_registers_all(rest, r);
      break;
    case 'p':
      read_reg(rest, r);
      break;
    case 'P':
      write_reg(rest, r);
      break;
    case 'm':
      read_mem(rest, r);
      break;
    case 'M':
      write_mem(rest, r);
      break;
    case 'H': {
      pid_t tid = 0;
      bool all = false;
      if (rest.empty() || (rest[0] != 'g' && rest[0] != 'c')) {
        r.error(1);
        break;
      }
      const char which = rest[0];
      rest.remove_prefix(1);
      if (!take_thread(rest, tid, all) || !rest.empty() || (tid != 0 && !known_thread(tid))) {
        r.error(1);
        break;
      }
      (which == 'g' ? g_thread_ : c_thread_) = tid;
      r.put("OK");
      break;
    }
    case 'T': {
      pid_t tid = 0;
      bool all = false;
      if (take_thread(rest, tid, all) && rest.empty() && known_thread(tid)) {
        r.put("OK");
      } else {
        r.error(1);
      }
      break;
    }
    case 'z':
    case 'Z':
      breakpoint(rest, kind == 'Z', r);
      break;
    case 'c':
    case 'C':
    case 's':
    case 'S': {
      // c [addr], C sig[;addr], s [addr], S sig[;addr]. A resume address
      // is not supported (gdb does not send one to a Linux target).
      if (rest.find(';') != std::string_view::npos || ((kind == 'c' || kind == 's') && !rest.empty())) {
        r.error(1);
        break;
      }
      resume_ = {};
      if (kind == 's' || kind == 'S') resume_.step = c_thread_ > 0 ? c_thread_ : target_.stop_event().thread;
      state_ = SessionState::kResumed;
      waiting_for_stop_ = true;
      reply = false;
      break;
    }
    case 'k':
      state_ = SessionState::kKilled;
      reply = false;  // `k` has no reply
      break;
    case 'D':
      state_ = SessionState::kDetached;
      r.put("OK");
      break;
    case 'v':
      if (p == "vCont?") {
        r.put("vCont;c;C;s;S");
      } else if (p.starts_with("vCont;")) {
        if (vcont(p.substr(5))) {
          state_ = SessionState::kResumed;
          waiting_for_stop_ = true;
          reply = false;
        } else {
          r.error(1);
        }
      } else if (p.starts_with("vKill")) {
        state_ = SessionState::kKilled;
        r.put("OK");
      } else {
        ++stats_.unsupported;
      }
      break;
    case 'q':
      query(p, r);
      break;
    default:
      ++stats_.unsupported;
      break;
  }
  if (!reply) return;
  if (r.overflow()) r.error(1);
  if (r.is_error()) ++stats_.errors;
  send_reply(r.view(), now_ns, r.kind());
}

void Session::query(std::string_view p, Reply& r) noexcept {
  if (p.starts_with("qSupported")) {
    swbreak_ = p.find("swbreak+") != std::string_view::npos;
    r.put("PacketSize=").hex(kPacketSize);
    r.put(";qXfer:features:read+;qXfer:threads:read+;qXfer:libraries-svr4:read+;qXfer:auxv:read+"
          ";qXfer:exec-file:read+;vContSupported+");
    if (swbreak_) r.put(";swbreak+");
  } else if (p == "qfThreadInfo") {
    r.put('m');
    const std::size_t n = target_.thread_count();
    for (std::size_t i = 0; i < n; ++i) {
      if (i > 0) r.put(',');
      r.hex(static_cast<std::uint64_t>(target_.thread_id(i)));
    }
    if (n == 0) r.clear(), r.put('l');
  } else if (p == "qsThreadInfo") {
    r.put('l');
  } else if (p == "qC") {
    r.put("QC").hex(static_cast<std::uint64_t>(target_.stop_event().thread));
  } else if (p == "qAttached" || p.starts_with("qAttached:")) {
    r.put('1');
  } else if (p.starts_with("qXfer:")) {
    xfer(p.substr(6), r);
  } else {
    ++stats_.unsupported;
  }
}

// qXfer:OBJECT:read:ANNEX:OFFSET,LENGTH -> m<data> (more) or l<data> (last).
void Session::xfer(std::string_view p, Reply& r) noexcept {
  const std::size_t c1 = p.find(':');
  if (c1 == std::string_view::npos) {
    ++stats_.unsupported;
    return;
  }
  const std::string_view object = p.substr(0, c1);
  std::string_view rest = p.substr(c1 + 1);
  if (!rest.starts_with("read:")) {
    ++stats_.unsupported;
    return;
  }
  rest.remove_prefix(5);
  const std::size_t c2 = rest.find(':');
  if (c2 == std::string_view::npos) {
    r.error(0);
    return;
  }
  const std::string_view annex = rest.substr(0, c2);
  rest.remove_prefix(c2 + 1);
  std::uint64_t offset = 0, length = 0;
  if (!take_hex(rest, offset) || !take_char(rest, ',') || !take_hex(rest, length) || !rest.empty()) {
    r.error(0);
    return;
  }
  // Room for 'l' and the data (escaping happens when framed).
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(length, kPacketSize - 8));
  std::span<char> data(reply_.data() + 1, want);
  std::size_t got = 0;
  const auto from_text = [&](std::string_view text) {
    if (offset < text.size()) {
      got = std::min<std::size_t>(want, text.size() - static_cast<std::size_t>(offset));
      std::memcpy(data.data(), text.data() + offset, got);
    }
  };
  if (object == "features") {
    if (annex != "target.xml") {
      r.error(0);
      return;
    }
    from_text(target_description());
  } else if (object == "threads") {
    if (!annex.empty()) {
      r.error(0);
      return;
    }
    from_text(std::string_view(xml_.data(), threads_xml()));
  } else {
    XferObject o;
    if (object == "auxv") {
      o = XferObject::kAuxv;
    } else if (object == "libraries-svr4") {
      o = XferObject::kLibrariesSvr4;
    } else if (object == "exec-file") {
      o = XferObject::kExecFile;
    } else {
      ++stats_.unsupported;
      return;
    }
    auto n = target_.read_object(o, annex, offset, data);
    if (!n) {
      r.error(0);
      return;
    }
    got = std::min(*n, want);
  }
  r.clear();
  r.put(got < want || want == 0 ? 'l' : 'm');
  // The data is already in place after the letter.
  for (std::size_t i = 0; i < got; ++i) r.put(data[i]);
  r.mark_binary();
}

// <threads><thread id="HEX" name="NAME"/>...</threads>, names escaped.
std::size_t Session::threads_xml() noexcept {
  Reply x(xml_);
  x.put("<?xml version=\"1.0\"?>\n<threads>\n");
  const std::size_t n = target_.thread_count();
  for (std::size_t i = 0; i < n; ++i) {
    x.put("<thread id=\"").hex(static_cast<std::uint64_t>(target_.thread_id(i))).put("\" name=\"");
    for (const char c : target_.thread_name(i)) {
      switch (c) {
        case '&': x.put("&amp;"); break;
        case '<': x.put("&lt;"); break;
        case '>': x.put("&gt;"); break;
        case '"': x.put("&quot;"); break;
        case '\'': x.put("&apos;"); break;
        default:
          if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) x.put(c);
      }
    }
    x.put("\"/>\n");
  }
  x.put("</threads>\n");
  return x.overflow() ? 0 : x.view().size();
}

void Session::registers_all(Reply& r) noexcept {
  const pid_t tid = general_thread();
  std::array<std::byte, 16> buf{};
  for (int i = 0; i < kRegisterCount; ++i) {
    const RegisterInfo& info = register_info(i);
    auto n = target_.read_register(tid, i, buf);
    if (!n && n.error() == Errc::kNotFound) {
      r.error(1);
      return;
    }
    if (!n || *n != info.size) {
      for (std::size_t k = 0; k < info.size; ++k) r.put("xx");
    } else {
      r.hex_bytes(std::span<const std::byte>(buf.data(), info.size));
    }
  }
}

void Session::write_registers_all(std::string_view hex, Reply& r) noexcept {
  const pid_t tid = general_thread();
  if (hex.size() != 2 * kRegisterFileSize) {
    r.error(1);
    return;
  }
  std::array<std::byte, 16> buf{};
  bool refused = false;
  for (int i = 0; i < kRegisterCount; ++i) {
    const RegisterInfo& info = register_info(i);
    const std::string_view h = hex.substr(2 * info.offset, 2 * info.size);
    if (h.starts_with("xx")) continue;  // gdb does not know it either
    const std::span<std::byte> b(buf.data(), info.size);
    if (!unhex(h, b)) {
      r.error(1);
      return;
    }
    if (auto w = target_.write_register(tid, i, b); !w) {
      if (w.error() == Errc::kNotFound) {
        r.error(1);
        return;
      }
      refused = true;
    }
  }
  if (refused) {
    r.error(1);
  } else {
    r.put("OK");
  }
}

void Session::read_reg(std::string_view p, Reply& r) noexcept {
  std::uint64_t n = 0;
  if (!take_hex(p, n) || !p.empty() || n >= kRegisterCount) {
    r.error(1);
    return;
  }
  const int regno = static_cast<int>(n);
  std::array<std::byte, 16> buf{};
  auto got = target_.read_register(general_thread(), regno, buf);
  const RegisterInfo& info = register_info(regno);
  if (!got && got.error() == Errc::kNotFound) {
    r.error(1);
  } else if (!got || *got != info.size) {
    for (std::size_t k = 0; k < info.size; ++k) r.put("xx");
  } else {
    r.hex_bytes(std::span<const std::byte>(buf.data(), info.size));
  }
}

void Session::write_reg(std::string_view p, Reply& r) noexcept {
  std::uint64_t n = 0;
  if (!take_hex(p, n) || !take_char(p, '=') || n >= kRegisterCount) {
    r.error(1);
    return;
  }
  const int regno = static_cast<int>(n);
  std::array<std::byte, 16> buf{};
  const std::span<std::byte> b(buf.data(), register_info(regno).size);
  if (!unhex(p, b) || !target_.write_register(general_thread(), regno, b)) {
    r.error(1);
    return;
  }
  r.put("OK");
}

void Session::read_mem(std::string_view p, Reply& r) noexcept {
  std::uint64_t addr = 0, len = 0;
  if (!take_hex(p, addr) || !take_char(p, ',') || !take_hex(p, len) || !p.empty()) {
    r.error(1);
    return;
  }
  // As much as fits the reply (gdb asks again for the rest).
  std::array<std::byte, kReplySize / 2> buf;
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(len, (kReplySize - 8) / 2));
  if (want == 0) return;  // an empty read: the empty hex string
  auto got = target_.read_memory(addr, std::span(buf.data(), want));
  if (!got || *got == 0) {
    r.error(0x14);  // EFAULT, as gdbserver says it
    return;
  }
  r.hex_bytes(std::span<const std::byte>(buf.data(), *got));
}

void Session::write_mem(std::string_view p, Reply& r) noexcept {
  std::uint64_t addr = 0, len = 0;
  if (!take_hex(p, addr) || !take_char(p, ',') || !take_hex(p, len) || !take_char(p, ':') || len > kPacketSize / 2 ||
      p.size() != 2 * len) {
    r.error(1);
    return;
  }
  std::array<std::byte, kPacketSize / 2> buf;
  const std::span<std::byte> b(buf.data(), static_cast<std::size_t>(len));
  if (!unhex(p, b)) {
    r.error(1);
    return;
  }
  if (len > 0 && !target_.write_memory(addr, b)) {
    r.error(0x14);
    return;
  }
  r.put("OK");
}

// Z0,addr,kind / z0,addr,kind: software breakpoints (kind 1: int3 is one
// byte). Other types (hardware, watchpoints) are not supported.
void Session::breakpoint(std::string_view p, bool insert, Reply& r) noexcept {
  if (!p.starts_with("0,")) {
    ++stats_.unsupported;
    return;
  }
  p.remove_prefix(2);
  std::uint64_t addr = 0, kind = 0;
  if (!take_hex(p, addr) || !take_char(p, ',') || !take_hex(p, kind)) {
    r.error(1);
    return;
  }
  // Conditions or commands evaluated by the stub (";X...") are not offered.
  if (!p.empty()) {
    r.error(1);
    return;
  }
  const auto done = insert ? target_.insert_breakpoint(addr) : target_.remove_breakpoint(addr);
  if (!done) {
    r.error(insert ? 0x0e : 0x01);
    return;
  }
  r.put("OK");
}

// vCont;ACTION[:tid];ACTION... (after "vCont"): c, C sig, s, S sig, t.
bool Session::vcont(std::string_view p) noexcept {
  Resume res;
  bool any = false;
  for (int round = 0; round < 64 && !p.empty(); ++round) {
    if (!take_char(p, ';') || p.empty()) return false;
    const char a = p.front();
    p.remove_prefix(1);
    if (a == 'C' || a == 'S') {
      std::uint64_t sig = 0;
      if (!take_hex(p, sig)) return false;
    } else if (a != 'c' && a != 's' && a != 't') {
      return false;
    }
    pid_t tid = 0;
    bool all = false;
    bool has_thread = false;
    if (take_char(p, ':')) {
      if (!take_thread(p, tid, all)) return false;
      has_thread = !all && tid != 0;
    }
    if ((a == 's' || a == 'S') && res.step == 0) res.step = has_thread ? tid : target_.stop_event().thread;
    any = true;
  }
  if (!any) return false;
  resume_ = res;
  return true;
}

}  // namespace np::gdb
