// netpoll dumpd as operators run it: a separate process in a namespace of
// the test's own, a client in the other namespace across a veth pair
// speaking debugnet's protocol with a kernel UDP socket from netdump's
// client port; its --help, its errors, its lines and its summary at exit.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "dump_server.h"
#include "listener.h"
#include "net_helpers.h"
#include "netns.h"
#include "netpoll/base/bytes.h"
#include "netpoll/wire/debugnet.h"
#include "temp_dir.h"

namespace np::tools {
namespace {

using namespace std::chrono_literals;
using namespace np::testing;
namespace dn = np::wire::debugnet;
namespace fs = std::filesystem;

std::vector<std::byte> message(std::uint32_t type, std::uint32_t seqno, std::uint64_t offset, std::string_view payload,
                               std::uint32_t aux2) {
  const np::wire::DebugnetRepr r{type, seqno, offset, aux2, as_bytes(payload)};
  std::vector<std::byte> out(r.buffer_len());
  r.emit(out);
  return out;
}

// Sends `m` until its ack comes (bounded); where the ack came from.
std::string exchange(const UdpSocket& s, const std::string& ip, std::uint16_t port, const std::vector<std::byte>& m,
                     std::uint32_t seqno) {
  for (int tries = 0; tries < 20; ++tries) {
    if (!s.send_to(ip, port, m)) return "";
    std::string from;
    while (auto d = s.receive(200ms, &from)) {
      if (d->size() == 4 && load_be32(*d, 0) == seqno) return from;
    }
  }
  return "";
}

TEST(DumpdCommand, HelpSaysWhatItTakesAndWhatItWrites) {
  std::string help;
  ASSERT_EQ(sh(kNetpollBin + " dumpd --help", &help), 0);
  EXPECT_EQ(help.rfind("usage: netpoll dumpd [options]\n", 0), 0u) << help;
  for (const char* says : {"  --dir DIR ", "(default /var/crash/netpoll)", "  --port N ", "(default 20023)",
                           "  --bind ADDR ", "  --max-size BYTES ", "(default 64G)", "  --max-clients N ",
                           "(default 16, at most 1024)", "  --idle S ", "(default 30)", "  --exec SCRIPT ",
                           "SCRIPT complete|partial CORE JSON CLIENT", "  --quiet ", "  --stats-interval S ",
                           "NAME.core.part ", "NAME.core.partial ", "NAME.json "}) {
    EXPECT_NE(help.find(says), std::string::npos) << says;
  }
  std::string top;
  ASSERT_EQ(sh(kNetpollBin + " --help", &top), 0);
  EXPECT_NE(top.find("  dumpd      receive crash dumps (ELF cores) over debugnet's UDP protocol\n"), std::string::npos)
      << top;
}

TEST(DumpdCommand, ABadOptionSaysWhatIsWrong) {
  const std::pair<std::string, std::string> cases[] = {
      {"--bogus", "unknown option --bogus"},
      {"--max-size 12X", "--max-size '12X': expected bytes, e.g. 1048576, 512M or 64G"},
      {"--max-size 0", "--max-size '0': expected from 1 byte to 4096T"},
      {"--max-clients 0", "--max-clients '0': expected a whole number from 1 to 1024"},
      {"--idle 0", "--idle '0': expected more than 0 seconds"},
      {"--idle soon", "--idle 'soon': expected seconds, e.g. 2 or 0.5"},
      {"--port 70000", "--port '70000': expected a whole number from 0 to 65535"},
      {"--exec /nonexistent/script", "--exec '/nonexistent/script': No such file or directory (a path to an executable)"},
      {"--stats-format xml", "--stats-format must be text or json"},
      {"extra", "unexpected argument 'extra'"},
  };
  for (const auto& [args, message] : cases) {
    std::string out;
    EXPECT_EQ(sh(kNetpollBin + " dumpd " + args + " 2>&1", &out), 2) << args;
    EXPECT_EQ(out, "netpoll dumpd: " + message + "\nTry 'netpoll dumpd --help'.\n") << args;
  }
  std::string out;
  EXPECT_EQ(sh(kNetpollBin + " dumpd --bind 10.0.0.300 --dir /tmp 2>&1", &out), 1);
  EXPECT_EQ(out, "netpoll dumpd: --bind '10.0.0.300': not an IPv4 or IPv6 address\n");
}

// A dump across a veth pair from netdump's client port; the summary at
// SIGINT counts it, and a datagram for no session.
TEST(DumpdCommand, TakesADumpAcrossVethAndSumsItUpAtSigint) {
  VethBed bed;
  TempDir dir;
  const fs::path dumps = dir.path() / "dumps";
  DumpServer d(bed.b, {"--dir", dumps.string(), "--bind", bed.b_ip}, dir);
  ASSERT_NE(d.err().find("netpoll dumpd: " + bed.b_ip + " port 20023, dumps to " + dumps.string() +
                         " (at most 16 clients, 64.0 GiB a dump, idle 30 s)\n"),
            std::string::npos)
      << d.err();
  UdpSocket client(bed.a, bed.a_ip, dn::kClientPort);
  const std::string from = exchange(client, bed.b_ip, dn::kServerPort,
                                    message(dn::kHerald, 1, 0, "kind=crash\nprogram=crashy\npid=31\nsignal=6\n", 1), 1);
  ASSERT_EQ(from.rfind(bed.b_ip + ":", 0), 0u) << "the herald is answered from the address it was sent to: " << from;
  const auto port = static_cast<std::uint16_t>(std::stoul(from.substr(from.find(':') + 1)));
  ASSERT_NE(port, dn::kServerPort);
  std::string core;
  std::uint32_t seq = 2;
  for (int i = 0; i < 40; ++i, ++seq) {
    const std::string piece(1400, static_cast<char>('a' + i % 26));
    ASSERT_EQ(exchange(client, bed.b_ip, port, message(dn::kData, seq, core.size(), piece, 0), seq), from);
    core += piece;
  }
  ASSERT_EQ(exchange(client, bed.b_ip, port, message(dn::kFinished, seq, core.size(), "", 0), seq), from);
  ASSERT_TRUE(client.send_to(bed.b_ip, dn::kServerPort, message(dn::kData, 99, 0, "stray", 0)));
  // Until the stray DATA has been seen: SIGUSR1 prints the statistics.
  for (int i = 0; i < 100 && d.err().find("no session 1,") == std::string::npos; ++i) {
    std::this_thread::sleep_for(20ms);
    if (i % 10 == 0) d.signal(SIGUSR1);
  }
  EXPECT_EQ(WEXITSTATUS(d.stop(SIGINT)), 0);
  const std::string err = d.err();
  const fs::path client_dir = dumps / bed.a_ip;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(client_dir)) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_TRUE(files[0].ends_with("-31-crashy.core")) << files[0];
  EXPECT_EQ(read_file(client_dir / files[0]), core);
  const std::string json = read_file(client_dir / files[1]);
  EXPECT_NE(json.find("\"complete\":true,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"client\":\"" + bed.a_ip + "\",\"client_port\":20024,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"bytes_written\":56000,\"file_size\":56000,"), std::string::npos) << json;
  EXPECT_NE(err.find("netpoll dumpd: dump started: " + bed.a_ip + ":20024 crashy pid 31, signal 6 (SIGABRT), 0 threads, "
                     "kind crash, host ?, size not said -> " + (client_dir / files[0]).string() + "\n"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("netpoll dumpd: dump complete: " + bed.a_ip + " crashy pid 31: 54.7 KiB in "), std::string::npos)
      << err;
  // The summary at exit is the last thing said.
  const std::string summary = err.substr(err.rfind("netpoll dumpd: sessions "));
  EXPECT_EQ(summary.rfind("netpoll dumpd: sessions 1, complete 1, partial 0, empty 0, bytes 56000, packets 41, "
                          "acks 42, duplicates 0, out of window 0, heralds answered again 0, exec run 0, exec failed 0\n"
                          "  refused: bad length 0, stray ack 0, unknown type 0, no session 1, ",
                          0),
            0u)
      << summary;
  EXPECT_NE(summary.find("\n  errors: write errors 0, disk full 0, acks failed 0, kernel drops 0\n"), std::string::npos);
}

}  // namespace
}  // namespace np::tools
