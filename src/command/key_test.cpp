#include "netpoll/command/key.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "temp_dir.h"

namespace np::command {
namespace {

std::string read_key_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_key_text(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

constexpr const char* kLine =
    "netpoll-command-key 1 1a2b3c4d 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

TEST(KeyFile, KeygenWritesAFileOfMode0600ThatLoadsBackAsTheSameKey) {
  np::testing::TempDir dir;
  const std::string path = (dir.path() / "k").string();
  auto k = generate_key_file(path);
  ASSERT_TRUE(k) << k.error().message;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto ring = load_key_file(path);
  ASSERT_TRUE(ring) << ring.error().message;
  ASSERT_EQ(ring->size(), 1u);
  EXPECT_EQ((*ring)[0].id, k->id);
  EXPECT_EQ((*ring)[0].secret, k->secret);
  EXPECT_NE(read_key_text(path).find(key_line(*k)), std::string::npos);
}

TEST(KeyFile, KeygenNeverOverwritesAFile) {
  np::testing::TempDir dir;
  const std::string path = (dir.path() / "k").string();
  write_key_text(path, kLine, 0600);
  auto k = generate_key_file(path);
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error().code, Errc::kExists);
  EXPECT_NE(k.error().message.find("never overwritten"), std::string::npos) << k.error().message;
  EXPECT_EQ(read_key_text(path), kLine);
}

TEST(KeyFile, ReadsTheIdAndSecretOfALine) {
  np::testing::TempDir dir;
  const std::string path = (dir.path() / "k").string();
  write_key_text(path, std::string("# comment\n\n") + kLine, 0600);
  auto ring = load_key_file(path);
  ASSERT_TRUE(ring) << ring.error().message;
  ASSERT_EQ(ring->size(), 1u);
  EXPECT_EQ((*ring)[0].id, 0x1a2b3c4du);
  for (std::size_t i = 0; i < kSecretLen; ++i) EXPECT_EQ((*ring)[0].secret[i], i);
  EXPECT_NE(ring->find(0x1a2b3c4d), nullptr);
  EXPECT_EQ(ring->find(0x1a2b3c4e), nullptr);
}

TEST(KeyFile, RefusesAFileGroupOrOthersMayReadWithAMessageThatSaysWhatToDo) {
  np::testing::TempDir dir;
  const std::string path = (dir.path() / "k").string();
  for (const mode_t mode : {0644, 0640, 0604, 0620}) {
    write_key_text(path, kLine, mode);
    auto ring = load_key_file(path);
    ASSERT_FALSE(ring) << std::oct << mode;
    EXPECT_EQ(ring.error().code, Errc::kPermission);
    EXPECT_NE(ring.error().message.find("accessible by group or others"), std::string::npos) << ring.error().message;
    EXPECT_NE(ring.error().message.find("chmod 600 " + path), std::string::npos) << ring.error().message;
  }
}

TEST(KeyFile, RefusesABadLineNamingItsNumberAndAFileWithoutKeys) {
  np::testing::TempDir dir;
  const std::string path = (dir.path() / "k").string();
  write_key_text(path, std::string(kLine) + "netpoll-command-key 1 1a2b3c4 00\n", 0600);
  auto bad = load_key_file(path);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("line 2"), std::string::npos) << bad.error().message;
  write_key_text(path, std::string(kLine) + kLine, 0600);
  auto twice = load_key_file(path);
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("comes twice"), std::string::npos) << twice.error().message;
  write_key_text(path, "# nothing\n", 0600);
  EXPECT_EQ(load_key_file(path).error().code, Errc::kNotFound);
  auto missing = load_key_file((dir.path() / "none").string());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("netpoll keygen"), std::string::npos) << missing.error().message;
}

}  // namespace
}  // namespace np::command
