// Private to console and its tests: what a test needs to reach inside a
// Logger, kept out of the public header.
#pragma once

#include "netpoll/console/logger.h"

namespace np::console {

struct LoggerTesting {
  // Plays a sender thread preempted between taking a ring ticket's number
  // and noting it: begin() takes the number, finish() notes it and lets go.
  // Context: any thread but the one that will crash.
  class NumberingPause {
   public:
    NumberingPause(Logger& lg, std::uint64_t ticket) : lg_(lg), ticket_(ticket) {}
    bool begin() noexcept {
      if (!lg_.begin_numbering()) return false;
      seq_ = lg_.next_seq(0);
      return true;
    }
    std::uint64_t finish() noexcept {
      lg_.note_number(ticket_, seq_);
      lg_.end_numbering();
      return seq_;
    }

   private:
    Logger& lg_;
    std::uint64_t ticket_;
    std::uint64_t seq_ = 0;
  };
};

}  // namespace np::console
