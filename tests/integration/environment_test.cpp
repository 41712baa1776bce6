// The environment every integration test runs in: senders keep their
// stream state (console/stream_state.h) in a directory of each test's own,
// so a test starts fresh streams whatever ran before it (another test in
// this process, the other build's run of the same test), and runs inside
// one test go on from each other as they do for a user.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

class StreamDirPerTest : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo&) override {
    dir_ = std::filesystem::temp_directory_path() /
           ("np-streams-" + std::to_string(::getpid()) + "-" + std::to_string(++count_));
    std::filesystem::remove_all(dir_);
    ::setenv("NETPOLL_STREAM_DIR", dir_.c_str(), 1);
  }
  void OnTestEnd(const ::testing::TestInfo&) override { std::filesystem::remove_all(dir_); }

 private:
  std::filesystem::path dir_;
  int count_ = 0;
};

const bool kRegistered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new StreamDirPerTest);
  return true;
}();

TEST(TestEnvironment, SendersKeepTheirStreamStateInThisTestsDirectory) {
  const char* d = std::getenv("NETPOLL_STREAM_DIR");
  ASSERT_NE(d, nullptr);
  EXPECT_NE(std::string(d).find("np-streams-" + std::to_string(::getpid()) + "-"), std::string::npos) << d;
}

}  // namespace
