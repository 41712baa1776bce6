#include "netpoll/console/stream_state.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace np::console {
namespace {

class StreamStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("np-stream-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(StreamStateTest, ASecondOpenGoesOnWhereTheFirstStopped) {
  const std::string path = (dir_ / "a" / "stream").string();
  {
    auto s = StreamState::open(path);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->counters().seq.load(), 0u);
    s->counters().seq.fetch_add(7);
    s->counters().msgid[1].fetch_add(3);
  }
  auto again = StreamState::open(path);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->counters().seq.load(), 7u);
  EXPECT_EQ(again->counters().msgid[1].load(), 3u);
  EXPECT_EQ(again->path(), path);
}

TEST_F(StreamStateTest, ProcessesAtTheSameTimeDrawFromOneCounter) {
  const std::string path = (dir_ / "shared").string();
  auto s = StreamState::open(path);
  ASSERT_TRUE(s) << s.error().message;
  constexpr int kChildren = 4, kEach = 10000;
  for (int c = 0; c < kChildren; ++c) {
    if (::fork() == 0) {
      auto mine = StreamState::open(path);
      if (!mine) ::_exit(1);
      for (int i = 0; i < kEach; ++i) mine->counters().seq.fetch_add(1);
      ::_exit(0);
    }
  }
  for (int c = 0; c < kChildren; ++c) {
    int status = 0;
    ::wait(&status);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(s->counters().seq.load(), static_cast<std::uint64_t>(kChildren * kEach));
}

TEST_F(StreamStateTest, AFileThatIsNotAStreamStateIsRefusedAndLeftAlone) {
  std::filesystem::create_directories(dir_);
  const auto path = dir_ / "notes.txt";
  std::ofstream(path) << "my notes\n";
  auto s = StreamState::open(path.string());
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("is not a netpoll stream state"), std::string::npos) << s.error().message;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "my notes");
}

TEST_F(StreamStateTest, AFreshStreamStartsAtZeroAndHasNoFile) {
  auto s = StreamState::fresh();
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->counters().seq.load(), 0u);
  EXPECT_TRUE(s->path().empty());
  EXPECT_GE(s->fd(), 0);
}

TEST_F(StreamStateTest, TheDefaultPathNamesSourceAndTargetsUnderTheChosenDirectory) {
  auto t = core::parse_targets("+6665@10.0.0.1/eth0,6666@10.0.0.2/;6670@/pair:x?mac=02:00:00:00:00:01,514@10.0.0.3/");
  ASSERT_TRUE(t) << t.error().message;
  ::setenv("NETPOLL_STREAM_DIR", dir_.c_str(), 1);
  EXPECT_EQ(default_stream_state_path(t->targets),
            dir_.string() + "/6665@10.0.0.1_eth0-10.0.0.2:6666+6670@_pair:x?mac=02:00:00:00:00:01-10.0.0.3:514");
  ::unsetenv("NETPOLL_STREAM_DIR");
}

}  // namespace
}  // namespace np::console
