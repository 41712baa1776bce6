// netpoll recv as a person runs it: a separate process on a veth in a
// namespace, the kernel next door sending, and its --help as the promise of
// what the lines look like.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "net_helpers.h"
#include "netns.h"
#include "netpoll/base/bytes.h"

namespace np::tools {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// What the help says a byte is shown as: the word after `what` ("a
// backslash as \\;" gives "\\").
std::string help_says(const std::string& help, const std::string& what) {
  const auto at = help.find(what);
  if (at == std::string::npos) return "<the help does not say \"" + what + "...\">";
  const auto from = at + what.size();
  return help.substr(from, help.find_first_of(" ;,)\n", from) - from);
}

// Issue 11: the help said a backslash was shown as \xHH while recv printed
// \\. The help's words are now read and held against what recv prints for
// the four characters `\x80` and for the byte 0x80, which must differ.
TEST(RecvOverVeth, PrintsABackslashAndOtherBytesAsItsHelpSays) {
  std::string help;
  ASSERT_EQ(sh(std::string(NP_NETPOLL_BIN) + " recv --help", &help), 0) << help;
  const std::string backslash = help_says(help, "a backslash as ");
  const std::string byte = help_says(help, "non-ASCII as ");
  EXPECT_EQ(backslash, "\\\\") << help;
  EXPECT_EQ(byte, "\\xHH") << help;

  VethBed bed;
  const auto dir = std::filesystem::temp_directory_path() / ("np-recv-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() {
      sh("kill $(cat " + (dir / "pid").string() + ") 2>/dev/null");
      std::filesystem::remove_all(dir);
    }
  } cleanup{dir};
  // 10.77.0.5 is no kernel's: recv answers ARP for it.
  ASSERT_TRUE(sh_ok(bed.a.exec() + "sh -c \"" + NP_NETPOLL_BIN +
                    " recv --count 1 --timeout 20 '6666@10.77.0.5/np0,@0.0.0.0/' > " + (dir / "out").string() +
                    " 2> " + (dir / "err").string() + " & echo \\$! > " + (dir / "pid").string() + "\""));
  // Ready once it has described its setup.
  for (int i = 0; i < 500 && read_file(dir / "err").empty(); ++i) std::this_thread::sleep_for(10ms);
  UdpSocket peer(bed.b, bed.b_ip, 5555);
  ASSERT_TRUE(peer.send_to("10.77.0.5", 6666, as_bytes("text[\\x80] byte[\x80] back[\\] tab[\t]\n")));
  std::string out;
  for (int i = 0; i < 500 && (out = read_file(dir / "out")).find('\n') == std::string::npos; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(out, "10.77.0.2:5555 text[" + backslash + "x80] byte[\\x80] back[" + backslash + "] tab[\\x09]\n")
      << read_file(dir / "err");
}

}  // namespace
}  // namespace np::tools
