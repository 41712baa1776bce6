#include "reliable_notice.h"

#include <chrono>
#include <cstdio>

namespace np::tools {

std::function<void(const console::ReliableFallback&)> reliable_fallback_notice(
    const char* sub, const std::vector<console::TargetConfig>& targets) {
  std::vector<std::string> remotes;
  for (const auto& t : targets) {
    remotes.push_back(t.target.remote_ip.with_port(t.target.remote_port));
  }
  // Runs on the logger's sending thread: the text is fixed, fprintf to the
  // unbuffered stderr allocates nothing.
  return [sub, remotes = std::move(remotes)](const console::ReliableFallback& f) {
    const double waited = std::chrono::duration<double>(f.waited).count();
    std::fprintf(stderr,
                 "netpoll %s: no acknowledgement from %s within %.1f s of the first record: nothing there answers "
                 "reliable mode (netpoll listen --ack does, and so does a receiver built on netconsd's ncrx "
                 "library; netconsd itself does not); sending without acknowledgements from now on\n",
                 sub, f.target < remotes.size() ? remotes[f.target].c_str() : "?", waited);
  };
}

std::uint64_t unacknowledged_records(const console::Logger& lg) {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < lg.target_count(); ++i) n += lg.target_stats(i).unacknowledged.value();
  return n;
}

}  // namespace np::tools
