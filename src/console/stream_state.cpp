#include "netpoll/console/stream_state.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <utility>

namespace np::console {
namespace {

constexpr std::size_t kSize = sizeof(StreamCounters);

SetupResult<StreamCounters*> map_counters(int fd, const std::string& what) {
  void* mem = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) return setup_error(Errc::kIo, "cannot map " + what + ": " + std::strerror(errno));
  return static_cast<StreamCounters*>(mem);
}

}  // namespace

SetupResult<StreamState> StreamState::open(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return setup_error(Errc::kIo, "cannot create the directory of stream state " + path + ": " + ec.message());
  StreamState s;
  s.path_ = path;
  s.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (s.fd_ < 0) return setup_error(Errc::kIo, "cannot open stream state " + path + ": " + std::strerror(errno));
  // Creation and the first look are serialised: two processes starting
  // together must not both initialise the file. (On an error the lock goes
  // with the descriptor, which the destructor closes.)
  if (::flock(s.fd_, LOCK_EX) != 0) return setup_error(Errc::kIo, "cannot lock " + path + ": " + std::strerror(errno));
  struct stat st{};
  if (::fstat(s.fd_, &st) != 0) return setup_error(Errc::kIo, "cannot stat " + path + ": " + std::strerror(errno));
  const auto foreign = [&] {
    return setup_error(Errc::kInvalidArgument,
                       path + " is not a netpoll stream state; remove it or give another --stream-state");
  };
  const bool created = st.st_size == 0;
  if (!created && static_cast<std::size_t>(st.st_size) != kSize) return foreign();
  if (created && ::ftruncate(s.fd_, kSize) != 0)
    return setup_error(Errc::kIo, "cannot size " + path + ": " + std::strerror(errno));
  auto c = map_counters(s.fd_, path);
  if (!c) return std::unexpected(c.error());
  s.counters_ = *c;
  if (created) {
    new (s.counters_) StreamCounters();
  } else if (s.counters_->magic != StreamCounters::kMagic) {
    return foreign();
  }
  ::flock(s.fd_, LOCK_UN);
  return s;
}

SetupResult<StreamState> StreamState::fresh() {
  StreamState s;
  // Inherited by a child (netpoll run's program): no CLOEXEC.
  s.fd_ = ::memfd_create("netpoll-stream", 0);
  if (s.fd_ < 0 || ::ftruncate(s.fd_, kSize) != 0)
    return setup_error(Errc::kIo, std::string("cannot create stream counters: ") + std::strerror(errno));
  auto c = map_counters(s.fd_, "stream counters");
  if (!c) return std::unexpected(c.error());
  s.counters_ = new (*c) StreamCounters();
  return s;
}

StreamState::StreamState(StreamState&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), counters_(std::exchange(o.counters_, nullptr)), path_(std::move(o.path_)) {}

StreamState& StreamState::operator=(StreamState&& o) noexcept {
  std::swap(fd_, o.fd_);
  std::swap(counters_, o.counters_);
  std::swap(path_, o.path_);
  return *this;  // o's destructor releases what was ours
}

StreamState::~StreamState() {
  if (counters_ != nullptr) ::munmap(counters_, kSize);
  if (fd_ >= 0) ::close(fd_);
}

std::string default_stream_state_path(const std::vector<core::TargetOptions>& targets) {
  std::string dir;
  if (const char* d = std::getenv("NETPOLL_STREAM_DIR"); d != nullptr && *d != '\0') {
    dir = d;
  } else if (::access("/run", W_OK) == 0) {
    dir = "/run/netpoll/streams";
  } else if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && *x != '\0') {
    dir = std::string(x) + "/netpoll/streams";
  } else {
    dir = "/tmp/netpoll-" + std::to_string(::getuid()) + "/streams";
  }
  std::string name;
  for (const auto& t : targets) {
    if (!name.empty()) name += '+';
    name += std::to_string(t.local_port) + "@" + (t.local_ip.is_unspecified() ? "" : t.local_ip.to_string()) + "/" +
            t.device + "-" + t.remote_ip.to_string() + ":" + std::to_string(t.remote_port);
  }
  for (char& c : name) {
    if (c == '/') c = '_';  // one file name, whatever the device string holds
  }
  return dir + "/" + name;
}

}  // namespace np::console
