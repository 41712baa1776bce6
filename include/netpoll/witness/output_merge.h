// netpoll run: the program's standard output and standard error, two
// pipes, merged into one sequence of lines in the order they were written,
// as far as two pipes can tell it.
//
// A pipe keeps no time. What the reader can know is that the bytes a pipe
// held when it looked were written before that look. So each look asks
// both pipes how much they hold (FIONREAD, one right after the other) and
// then reads exactly that much from each; a line is stamped with the look
// that brought its newline, and lines leave in the order of their looks,
// standard output's first within one look. The guarantee, then: each
// stream's lines keep their order, and a line comes before every line of
// the other stream whose newline was written after the look that took it
// in. Two lines finished between the same two looks (microseconds apart
// while output flows, since the reader looks again as soon as it has
// taken a look's lines in) may come in either order.
//
// The reader keeps looking while the network is behind: up to `hold` bytes
// a stream wait here, their order known, and only then do the pipes fill
// and the program block on its writes, as on a slow terminal. (While a
// hold is full, bytes wait in the pipe and are stamped by the look that
// takes them: the order is then that of the looks.) A line longer than
// `hold` leaves in pieces of `hold` bytes.
//
// Context: one thread (netpoll run's reading thread); setup-time memory
// (the hold buffers grow to `hold` bytes and stay).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "netpoll/base/function_ref.h"

namespace np::witness {

class OutputMerge {
 public:
  static constexpr int kStreams = 2;  // 0: standard output, 1: standard error

  // Reads `fds` (pipes, made non-blocking here; not closed here).
  OutputMerge(std::array<int, kStreams> fds, std::size_t hold);

  // One look at both pipes: what they hold now is read (as far as the hold
  // has room) and its finished lines stamped. A pipe at its end with
  // nothing left is closed: its last bytes without a newline become a
  // line. Returns the bytes read; `echo` sees each read's bytes.
  using Echo = FunctionRef<void(int stream, std::string_view bytes)>;
  std::size_t look(Echo echo);

  // Backs each stream's buffer and room for its first marks with memory
  // now, so that a burst of output takes no page faults while it is read
  // (after a fork(), all the more: every page is copy-on-write until
  // written). Context: setup.
  void back_memory();
  std::size_t look() {
    return look([](int, std::string_view) {});
  }

  // The next line in order, if one is finished: its stream and its text
  // (without the newline), valid until pop().
  struct Line {
    int stream;
    std::string_view text;
  };
  std::optional<Line> front() const;
  void pop();

  // The program is dying or gone: every stream's last bytes without a
  // newline become a line (stamped now).
  void end_partial_lines();

  bool open(int stream) const { return streams_[stream].open; }
  bool any_open() const { return open(0) || open(1); }
  // False while `stream`'s hold is full: do not wait for its pipe then.
  bool has_room(int stream) const { return streams_[stream].held() < hold_; }
  std::uint64_t looks() const { return looks_; }

 private:
  struct Stream {
    int fd = -1;
    bool open = true;
    std::string bytes;  // bytes[start..] are held: finished lines, then the partial one
    std::size_t start = 0;
    std::size_t partial = 0;  // where the partial line begins
    std::uint64_t base = 0;   // the stream's offset of bytes[0]: bytes before it are gone
    struct Mark {
      std::uint64_t look;
      std::uint64_t begin;  // offsets in the stream (bytes[begin - base])
      std::uint64_t end;    // one past the line's last byte, its newline not counted
    };
    // The marks not yet popped: lines[head..]. A vector that keeps its
    // room (the used front is cut off when it fills and is at least half
    // of it; otherwise it grows), so that a burst of lines does not
    // allocate a block per few dozen lines as it comes and free it as it
    // goes.
    std::vector<Mark> lines;
    std::size_t head = 0;
    bool no_lines() const { return head == lines.size(); }
    const Mark& first_line() const { return lines[head]; }
    void push_line(const Mark& m) {
      if (head > 0 && lines.size() == lines.capacity() && head >= lines.size() / 2) {
        lines.erase(lines.begin(), lines.begin() + static_cast<std::ptrdiff_t>(head));
        head = 0;
      }
      lines.push_back(m);
    }
    void pop_line() {
      if (++head == lines.size()) {
        lines.clear();
        head = 0;
      }
    }
    std::size_t held() const { return bytes.size() - start; }
  };
  // Marks the lines the bytes from `from` on finish, stamped with the
  // current look.
  void stamp(Stream& s, std::size_t from);
  void cut_partial(Stream& s);
  int next_stream() const;  // -1: no line finished

  std::array<Stream, kStreams> streams_;
  std::size_t hold_;
  std::uint64_t looks_ = 0;
};

}  // namespace np::witness
