// OutputMerge over real pipes: the test writes as the program would and
// looks as netpoll run does, and the order of the lines is asserted.
#include "netpoll/witness/output_merge.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace np::witness {
namespace {

class Pipes {
 public:
  Pipes() {
    EXPECT_EQ(::pipe(out_), 0);
    EXPECT_EQ(::pipe(err_), 0);
  }
  ~Pipes() {
    for (int fd : {out_[0], out_[1], err_[0], err_[1]}) {
      if (fd >= 0) ::close(fd);
    }
  }
  std::array<int, 2> readers() const { return {out_[0], err_[0]}; }
  void out(const std::string& s) { ASSERT_EQ(::write(out_[1], s.data(), s.size()), static_cast<ssize_t>(s.size())); }
  void err(const std::string& s) { ASSERT_EQ(::write(err_[1], s.data(), s.size()), static_cast<ssize_t>(s.size())); }
  void close_writers() {
    ::close(out_[1]);
    ::close(err_[1]);
    out_[1] = err_[1] = -1;
  }

 private:
  int out_[2] = {-1, -1};
  int err_[2] = {-1, -1};
};

// Every finished line, as "stream:text".
std::vector<std::string> take(OutputMerge& m) {
  std::vector<std::string> lines;
  for (auto l = m.front(); l; l = m.front()) {
    lines.push_back((l->stream == 0 ? "out:" : "err:") + std::string(l->text));
    m.pop();
  }
  return lines;
}

using Lines = std::vector<std::string>;

// The case that reading each pipe whole, standard output first, gets
// wrong: an error line written before more output, both waiting when the
// runner reads.
TEST(OutputMerge, ALineWrittenBeforeALookGoesBeforeLinesWrittenAfterIt) {
  Pipes p;
  OutputMerge m(p.readers(), 1 << 16);
  p.out("o1\n");
  p.err("e1\n");
  EXPECT_EQ(m.look(), 6u);
  p.out("o2\n");
  p.err("e2\n");
  p.out("o3\n");
  m.look();
  EXPECT_EQ(take(m), (Lines{"out:o1", "err:e1", "out:o2", "out:o3", "err:e2"}));
}

// What one look cannot tell apart comes standard output first; the lines
// taken in still wait while the ring is full, and keep their order with
// the ones after.
TEST(OutputMerge, LinesWaitingToBeSentKeepTheOrderOfTheirLooks) {
  Pipes p;
  OutputMerge m(p.readers(), 1 << 16);
  p.err("e1\n");
  m.look();
  p.out("o1\n");
  m.look();
  p.err("e2\n");
  m.look();
  p.out("o2\n");
  p.err("e3\n");
  m.look();
  EXPECT_EQ(take(m), (Lines{"err:e1", "out:o1", "err:e2", "out:o2", "err:e3"}));
}

// A line counts from its newline: a stream's half-written line does not
// hold back the other stream's finished ones.
TEST(OutputMerge, ALineIsPlacedByItsNewline) {
  Pipes p;
  OutputMerge m(p.readers(), 1 << 16);
  p.out("par");
  m.look();
  EXPECT_FALSE(m.front());
  p.err("e1\n");
  m.look();
  p.out("tial\nnext");
  m.look();
  EXPECT_EQ(take(m), (Lines{"err:e1", "out:partial"}));
  // The end: the last bytes without a newline are a line.
  p.close_writers();
  m.look();
  EXPECT_FALSE(m.any_open());
  EXPECT_EQ(take(m), (Lines{"out:next"}));
}

TEST(OutputMerge, TheDyingProgramsHalfLinesAreLinesToo) {
  Pipes p;
  OutputMerge m(p.readers(), 1 << 16);
  p.err("half an err");
  p.out("half an out");
  m.look();
  EXPECT_FALSE(m.front());
  m.end_partial_lines();
  EXPECT_EQ(take(m), (Lines{"out:half an out", "err:half an err"}));
  EXPECT_TRUE(m.any_open());
}

// The hold is bounded: a full one reads no more (the pipe keeps the rest,
// and the program blocks on it), and room comes back as lines leave. A
// line longer than the hold leaves in pieces of the hold's size.
TEST(OutputMerge, AFullHoldLeavesTheRestInThePipe) {
  Pipes p;
  OutputMerge m(p.readers(), 8);
  p.out("aaa\nbbb\nccc\n");
  EXPECT_EQ(m.look(), 8u);
  EXPECT_FALSE(m.has_room(0));
  EXPECT_TRUE(m.has_room(1));
  EXPECT_EQ(m.look(), 0u) << "nothing read while the hold is full";
  EXPECT_EQ(take(m), (Lines{"out:aaa", "out:bbb"}));
  EXPECT_EQ(m.look(), 4u);
  EXPECT_EQ(take(m), (Lines{"out:ccc"}));
  p.err("0123456789abcdefghij\n");
  Lines pieces;
  for (int i = 0; i < 3; ++i) {
    m.look();
    for (const auto& l : take(m)) pieces.push_back(l);
  }
  EXPECT_EQ(pieces, (Lines{"err:01234567", "err:89abcdef", "err:ghij"}));
}

TEST(OutputMerge, EmptyLinesAndManyLinesInOneRead) {
  Pipes p;
  OutputMerge m(p.readers(), 1 << 16);
  std::string many;
  Lines want;
  for (int i = 0; i < 1000; ++i) {
    many += std::to_string(i) + "\n\n";
    want.push_back("out:" + std::to_string(i));
    want.push_back("out:");
  }
  p.out(many);
  EXPECT_EQ(m.look(), many.size());
  EXPECT_EQ(take(m), want);
}

// Lines taken a few at a time while more come in: the held bytes move to
// the front of the buffer many times over, and every line comes out whole
// and in order across those moves (lines still held, a partial line).
TEST(OutputMerge, LinesStayWholeAsTheHeldBytesMoveToTheFront) {
  Pipes p;
  OutputMerge m(p.readers(), 64);
  Lines want, got;
  int next = 0;
  for (int round = 0; round < 200; ++round) {
    std::string chunk;
    for (int i = 0; i < 3; ++i, ++next) {
      chunk += "line " + std::to_string(next) + "\n";
      want.push_back("out:line " + std::to_string(next));
    }
    chunk += "half";  // finished by the next round's first bytes
    p.out(chunk);
    m.look();
    for (int i = 0; i < 2; ++i) {  // fewer than come in: some stay held
      const auto line = m.front();
      if (!line) break;
      got.push_back((line->stream == 0 ? "out:" : "err:") + std::string(line->text));
      m.pop();
    }
    p.out(" done " + std::to_string(round) + "\n");
    want.push_back("out:half done " + std::to_string(round));
  }
  for (int i = 0; i < 100 && got.size() < want.size(); ++i) {
    m.look();
    for (const auto& l : take(m)) got.push_back(l);
  }
  EXPECT_EQ(got, want);
}

// Backing the buffers with memory (netpoll run, once its program runs)
// keeps what is held: lines, a partial line, their order.
TEST(OutputMerge, BackingTheBuffersKeepsWhatIsHeld) {
  Pipes p;
  OutputMerge m(p.readers(), 1 << 16);
  p.out("one\ntwo\nhal");
  p.err("err\n");
  m.look();
  m.back_memory();
  p.out("f\n");
  m.look();
  EXPECT_EQ(take(m), (Lines{"out:one", "out:two", "err:err", "out:half"}));
}

}  // namespace
}  // namespace np::witness
