#include "netpoll/witness/output_merge.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>

namespace np::witness {

OutputMerge::OutputMerge(std::array<int, kStreams> fds, std::size_t hold) : hold_(std::max<std::size_t>(hold, 1)) {
  for (int i = 0; i < kStreams; ++i) {
    streams_[i].fd = fds[i];
    ::fcntl(fds[i], F_SETFL, ::fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    // Room for a hold and as much again: the held bytes move to the front
    // once per hold's worth read, not at every read.
    streams_[i].bytes.reserve(2 * hold_);
  }
}

void OutputMerge::back_memory() {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  for (auto& s : streams_) {
    const std::size_t held = s.bytes.size();
    s.bytes.resize_and_overwrite(s.bytes.capacity(), [&](char* p, std::size_t n) {
      for (std::size_t at = held; at < n; at += page) p[at] = 0;
      return held;
    });
    // Room for a mark per 16 bytes of a full hold, written once.
    const std::size_t marks = s.lines.size();
    s.lines.resize(std::max(marks, hold_ / 16));
    s.lines.resize(marks);
  }
}

std::size_t OutputMerge::look(Echo echo) {
  ++looks_;
  // First how much each pipe holds, both together; then exactly that.
  // Whether a pipe has ended is asked first: an end seen before the count
  // means no byte can follow it.
  pollfd fds[kStreams];
  std::size_t avail[kStreams] = {};
  for (int i = 0; i < kStreams; ++i) fds[i] = {streams_[i].open ? streams_[i].fd : -1, POLLIN, 0};
  ::poll(fds, kStreams, 0);
  for (int i = 0; i < kStreams; ++i) {
    int n = 0;
    if (streams_[i].open && ::ioctl(streams_[i].fd, FIONREAD, &n) == 0 && n > 0) avail[i] = static_cast<std::size_t>(n);
  }
  std::size_t total = 0;
  for (int i = 0; i < kStreams; ++i) {
    Stream& s = streams_[i];
    if (!s.open) continue;
    const bool ended = (fds[i].revents & (POLLHUP | POLLERR | POLLNVAL)) != 0 && avail[i] == 0;
    if (ended) {
      s.open = false;
      cut_partial(s);
      continue;
    }
    // The hold's room; the buffer moves its held bytes to the front first.
    std::size_t want = std::min(avail[i], hold_ - s.held());
    if (want == 0) continue;
    if (s.start > 0 && s.bytes.size() + want > s.bytes.capacity()) {
      s.bytes.erase(0, s.start);
      s.base += s.start;  // the marks stay as they are
      s.partial -= s.start;
      s.start = 0;
    }
    const std::size_t at = s.bytes.size();
    ssize_t got = 0;
    // Read straight into the room after the held bytes: nothing zeroed first.
    s.bytes.resize_and_overwrite(at + want, [&](char* p, std::size_t) {
      got = ::read(s.fd, p + at, want);
      return at + static_cast<std::size_t>(std::max<ssize_t>(got, 0));
    });
    if (got <= 0) continue;
    echo(i, std::string_view(s.bytes).substr(at));
    total += static_cast<std::size_t>(got);
    stamp(s, at);
    if (s.held() >= hold_ && s.partial == s.start) cut_partial(s);  // one line fills the hold
  }
  return total;
}

void OutputMerge::stamp(Stream& s, std::size_t from) {
  for (std::size_t nl; (nl = s.bytes.find('\n', from)) != std::string::npos; from = nl + 1) {
    s.push_line({looks_, s.base + s.partial, s.base + nl});
    s.partial = nl + 1;
  }
}

void OutputMerge::cut_partial(Stream& s) {
  if (s.partial == s.bytes.size()) return;
  s.push_line({looks_, s.base + s.partial, s.base + s.bytes.size()});
  s.partial = s.bytes.size();
}

void OutputMerge::end_partial_lines() {
  ++looks_;
  for (auto& s : streams_) cut_partial(s);
}

int OutputMerge::next_stream() const {
  int best = -1;
  for (int i = 0; i < kStreams; ++i) {
    if (streams_[i].no_lines()) continue;
    if (best < 0 || streams_[i].first_line().look < streams_[best].first_line().look) best = i;
  }
  return best;
}

std::optional<OutputMerge::Line> OutputMerge::front() const {
  const int i = next_stream();
  if (i < 0) return std::nullopt;
  const auto& m = streams_[i].first_line();
  return Line{i, std::string_view(streams_[i].bytes).substr(m.begin - streams_[i].base, m.end - m.begin)};
}

void OutputMerge::pop() {
  const int i = next_stream();
  if (i < 0) return;
  Stream& s = streams_[i];
  s.pop_line();
  s.start = s.no_lines() ? s.partial : s.first_line().begin - s.base;
}

}  // namespace np::witness
