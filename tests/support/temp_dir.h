// A directory of a test's own: np-<tag>-<pid>-<n> under the system's
// temporary directory, made empty at construction and removed, with
// everything in it, when it goes (also when an ASSERT ends the test).
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <string_view>

namespace np::testing {

class TempDir {
 public:
  explicit TempDir(std::string_view tag = "test")
      : path_(std::filesystem::temp_directory_path() /
              ("np-" + std::string(tag) + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  static inline std::atomic<int> counter_{0};
  std::filesystem::path path_;
};

}  // namespace np::testing
