#include "netpoll/remote/server.h"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "netpoll/base/clock.h"

namespace np::remote {

namespace cm = wire::command;
using command::Builtin;

// --- Reply ------------------------------------------------------------------

Reply& Reply::text(std::string_view s) noexcept {
  const std::size_t n = std::min(s.size(), kRecordRoom - len_);
  std::memcpy(buf_ + len_, s.data(), n);
  len_ += n;
  cut_ = cut_ || n < s.size();
  return *this;
}

void Reply::end_record() noexcept {
  if (len_ == 0) return;
  if (cut_) {
    constexpr std::string_view kCut = " [cut]";
    len_ = std::min(len_, kRecordRoom - kCut.size());
    std::memcpy(buf_ + len_, kCut.data(), kCut.size());
    len_ += kCut.size();
  }
  const std::string_view record(buf_, len_);
  server_->record(record, console::Level::kInfo);
  // To the sender: the record and its newline, in parts of pending_'s size;
  // the last part is held back until the reply ends (it carries the flag).
  const auto feed = [this](std::string_view s) {
    while (!s.empty()) {
      if (pending_len_ == sizeof pending_) server_->send_part(*this, false);
      const std::size_t n = std::min(s.size(), sizeof pending_ - pending_len_);
      std::memcpy(pending_ + pending_len_, s.data(), n);
      pending_len_ += n;
      s.remove_prefix(n);
    }
  };
  feed(record);
  feed("\n");
  len_ = 0;
  cut_ = false;
}

// --- setup ------------------------------------------------------------------

Server::Server(ServerConfig cfg)
    : cfg_(std::move(cfg)), verifier_(cfg_.keys, cfg_.verifier, realtime_ns()) {}

SetupResult<std::unique_ptr<Server>> Server::setup(ServerConfig cfg) {
  if (cfg.keys.size() == 0) return setup_error(Errc::kInvalidArgument, "remote commands: no key");
  if (!command::crypto_ready()) return setup_error(Errc::kIo, "remote commands: libsodium could not be initialised");
  std::unique_ptr<Server> s(new Server(std::move(cfg)));
  s->reply_.server_ = s.get();
  if (s->cfg_.symbolize) {
    auto sym = console::Symbolizer::load();
    if (!sym) return std::unexpected(sym.error());
    s->sym_ = std::move(*sym);
  }
  // An index that did not take every object still serves the rest.
  static_cast<void>(console::build_cfi_index(s->cfi_));
  auto st = Stacks::setup(s->cfg_.stacks, s->sym_.get(), &s->cfi_);
  if (!st) return std::unexpected(Error{st.error().code, "remote commands: " + st.error().message});
  s->stacks_ = std::move(*st);

  core::ClientConfig client = std::move(s->cfg_.client);
  if (client.name == "netpoll") client.name = "remote commands";
  if (client.target.local_port == 0) client.target.local_port = cm::kDefaultPort;
  client.target.remote_ip = Ipv4Addr{};
  client.resolve_remote_mac = false;
  client.device.service_thread = false;  // np-cmd polls
  Server* self = s.get();
  client.rx_hook = [self](core::Netpoll&, const core::RxInfo& info, std::span<const std::byte> payload) {
    self->on_datagram(info, payload);
  };
  auto np = core::Netpoll::setup(std::move(client), s->registry_);
  if (!np) return std::unexpected(np.error());
  s->np_ = std::move(*np);
  if (s->cfg_.thread) {
    s->thread_ = std::thread([self] {
      pthread_setname_np(pthread_self(), "np-cmd");
      sigset_t set;
      sigemptyset(&set);
      for (const int sig : self->cfg_.blocked_signals) sigaddset(&set, sig);
      pthread_sigmask(SIG_BLOCK, &set, nullptr);
      self->loop();
    });
  }
  return s;
}

Server::~Server() {
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
}

std::string Server::describe() const {
  return np_->local_ip().to_string() + ":" + std::to_string(np_->local_port()) + " on " + np_->target().device;
}

SetupResult<void> Server::add_command(std::string_view name, std::string_view help, Handler handler) {
  const std::size_t n = command_count_.load(std::memory_order_relaxed);
  if (n == kMaxCommands) return setup_error(Errc::kNoBuffer, "remote commands: at most 16 commands may be added");
  const bool printable = std::all_of(name.begin(), name.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  if (name.empty() || name.size() > 23 || !printable)
    return setup_error(Errc::kInvalidArgument,
                       "remote command name '" + std::string(name) + "': 1 to 23 printable characters, no space");
  if (help.size() > 95) return setup_error(Errc::kInvalidArgument, "remote command help: at most 95 bytes");
  if (command::find_builtin(name))
    return setup_error(Errc::kExists, "remote command '" + std::string(name) + "' is a built-in's name or letter");
  for (std::size_t i = 0; i < n; ++i) {
    if (commands_[i].name.view() == name)
      return setup_error(Errc::kExists, "remote command '" + std::string(name) + "' exists already");
  }
  Entry& e = commands_[n];
  e.name.append(name);
  e.help.append(help);
  e.handler = std::move(handler);
  command_count_.store(n + 1, std::memory_order_release);  // np-cmd sees the entry whole
  return {};
}

// --- receiving --------------------------------------------------------------

void Server::on_datagram(const core::RxInfo& info, std::span<const std::byte> payload) noexcept {
  const auto v = verifier_.verify(payload, now_ns_);
  if (!v) return;  // counted by reason
  if (queued_ == kQueue) {
    verifier_.count(command::CommandDrop::kBusy);
    return;
  }
  Request& r = queue_[queued_++];
  r.from = core::UdpEndpoint{info.src_mac, info.src_ip, info.src_port};
  r.key_id = v->key_id;
  r.counter = v->counter;
  r.len = v->body.size();  // at most kMaxRequestBody: the verifier refused more
  std::memcpy(r.body, v->body.data(), r.len);
}

std::size_t Server::poll_once(std::int64_t now_ns) noexcept {
  now_ns_ = now_ns;
  const std::size_t frames = np_->poll();
  // The hook ran on this thread: the queue is ours until the next poll.
  for (std::size_t i = 0; i < queued_; ++i) run(queue_[i]);
  queued_ = 0;
  report_drops(now_ns);
  return frames;
}

void Server::loop() noexcept {
  while (!stop_.load(std::memory_order_relaxed)) {
    if (poll_once(realtime_ns()) > 0) continue;
    // Sleep until a frame may be there; wake for a drop report due.
    std::int64_t wait = 100'000'000;
    if (verifier_.drops().total() != drops_reported_ && last_report_ns_ != INT64_MIN)
      wait = std::clamp<std::int64_t>(last_report_ns_ + std::chrono::nanoseconds(cfg_.drop_report).count() -
                                          realtime_ns(), 0, wait);
    np_->wait_for_frames(monotonic_ns() + wait, wait);
  }
}

void Server::report_drops(std::int64_t now_ns) noexcept {
  const std::uint64_t total = verifier_.drops().total();
  if (total == drops_reported_) return;
  if (last_report_ns_ != INT64_MIN && now_ns - last_report_ns_ < std::chrono::nanoseconds(cfg_.drop_report).count())
    return;
  FixedText<512> t;
  t.append("remote commands dropped: ").append_uint(total - drops_reported_).append(" since the last report (");
  const char* sep = "";
  verifier_.drops().for_each([&](command::CommandDrop d, std::uint64_t v) {
    if (v == 0) return;
    t.append(sep).append(command::to_string(d)).append(" ").append_uint(v);
    sep = ", ";
  });
  t.append(" in all); none was run");
  drops_reported_ = total;
  last_report_ns_ = now_ns;
  stats_.drop_reports.add();
  record(t.view(), console::Level::kWarning);
}

// --- running ----------------------------------------------------------------

void Server::run(const Request& req) noexcept {
  Reply& reply = reply_;
  reply.to_ = req.from;
  reply.key_ = verifier_.keys().find(req.key_id);
  reply.counter_ = req.counter;
  reply.part_ = 0;
  reply.len_ = 0;
  reply.cut_ = false;
  reply.pending_len_ = 0;
  reply.then_ = nullptr;
  const std::string_view body(req.body, req.len);
  // Who asked what, first, in the console stream.
  FixedText<400> who;
  who.append("remote command from ").append(req.from.ip.text().view());
  who.append(":").append_uint(req.from.port).append(" (key ").append_hex(req.key_id, 8).append("): ");
  for (const char c : body) who.append(c >= 0x20 && c < 0x7f ? c : '?');
  record(who.view(), console::Level::kNotice);
  // An empty first part: the sender stops sending the request again.
  send_part(reply, false);

  const auto inv = command::parse_invocation(std::as_bytes(std::span(req.body, req.len)));
  if (!inv) {
    stats_.unknown.add();
    reply.text("not a command: the body must be printable ASCII (h lists the commands)").end_record();
  } else if (const auto b = command::find_builtin(inv->word)) {
    stats_.executed.add();
    builtin(*b, inv->args, reply);
  } else {
    const std::size_t n = command_count_.load(std::memory_order_acquire);
    Entry* found = nullptr;
    for (std::size_t i = 0; i < n && found == nullptr; ++i) {
      if (commands_[i].name.view() == inv->word) found = &commands_[i];
    }
    if (found != nullptr) {
      stats_.executed.add();
      found->handler(inv->args, reply);
    } else {
      stats_.unknown.add();
      reply.text("unknown command '").text(inv->word).text("' (h lists the commands)");
    }
    reply.end_record();
  }
  reply.end_record();
  send_part(reply, true);
  if (reply.then_ != nullptr) reply.then_(reply.then_arg_);
}

void Server::record(std::string_view text, console::Level level) noexcept {
  // send_now(): numbered when sent, the console level does not hold it
  // back; it takes the logger's own mutex for direct sends, which no
  // program thread holds.
  if (cfg_.logger != nullptr) cfg_.logger->send_now(cfg_.facility, level, text);
}

void Server::send_part(Reply& r, bool last) noexcept {
  if (r.key_ == nullptr) return;
  wire::CommandRepr repr;
  repr.kind = cm::kReply;
  repr.last = last;
  repr.key_id = r.key_->id;
  repr.counter = r.counter_;
  repr.timestamp_ns = static_cast<std::uint64_t>(realtime_ns());
  repr.part = r.part_++;
  repr.body = std::as_bytes(std::span<const char>(r.pending_, r.pending_len_));
  const auto out = repr.emit(datagram_);
  command::seal(*r.key_, out);
  if (np_->send_udp_to(r.to_, out)) {
    stats_.replies.add();
  } else {
    stats_.reply_errors.add();
  }
  r.pending_len_ = 0;
}

}  // namespace np::remote
