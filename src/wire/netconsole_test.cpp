// The netconsole formats against real Linux traffic: Debian's 6.1 kernel
// under qemu, captured on the wire (tests/data/CAPTURES.md).
#include "netpoll/wire/netconsole.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "pcap_reader.h"

namespace np::wire::netconsole {
namespace {

using np::testing::read_udp_pcap;
using np::testing::test_data;

std::vector<std::string> emit_ext(const Header& h, std::string_view body) {
  char head[kMaxHeader];
  const std::size_t n = format_header(h, head);
  EXPECT_GT(n, 0u);
  std::vector<std::string> out;
  emit_extended(std::string_view(head, n), body, [&out](std::string_view d) { out.emplace_back(d); });
  return out;
}

std::string escaped(std::string_view text) {
  std::string out(escaped_length(text), '?');
  EXPECT_EQ(escape(text, out), out.size());
  return out;
}

std::string unescaped(std::string_view text) {
  std::string out(text.size(), '?');
  out.resize(unescape(text, out));
  return out;
}

// The captured extended datagrams of the six test records, by record.
struct Record {
  Parsed first;
  std::vector<std::string> datagrams;
  std::string body;  // reassembled
};

std::vector<Record> captured_test_records() {
  std::vector<Record> out;
  for (const auto& d : read_udp_pcap(test_data("linux-6.1-netconsole-ext.pcap"))) {
    auto p = parse_extended(d.payload);
    if (!p || p->body.find("nctest: ") == std::string_view::npos) {
      if (p && p->fragmented && p->frag_offset > 0 && !out.empty() && out.back().first.seq == p->seq) {
        out.back().datagrams.push_back(d.payload);
        out.back().body += p->body;
      }
      continue;
    }
    if (p->fragmented && p->frag_offset > 0 && !out.empty() && out.back().first.seq == p->seq) {
      out.back().datagrams.push_back(d.payload);
      out.back().body += p->body;
      continue;
    }
    out.push_back({*p, {d.payload}, std::string(p->body)});
  }
  return out;
}

TEST(NetconsoleCapture, HasTheSixTestRecords) {
  const auto records = captured_test_records();
  ASSERT_EQ(records.size(), 6u);
  EXPECT_EQ(records[0].datagrams.size(), 1u);
  EXPECT_EQ(records[1].datagrams.size(), 2u);  // the 992-byte line
  EXPECT_EQ(records[2].datagrams.size(), 4u);  // 900 bytes of 0x01
  EXPECT_EQ(records[5].first.facility, 3);     // daemon
  EXPECT_EQ(records[5].first.level, 3);        // err
}

// Our formatter, given what each record said, produces the kernel's
// datagrams byte for byte: header, escaping, fragment cuts and offsets.
TEST(NetconsoleFormat, ReproducesTheKernelsDatagramsForEachTestRecord) {
  const auto records = captured_test_records();
  ASSERT_EQ(records.size(), 6u);
  const std::string m2_tail = unescaped(records[1].body.substr(std::string("nctest: M2 long ").size()));
  const std::vector<std::string> texts = {
      "nctest: M1 short message",
      "nctest: M2 long " + m2_tail.substr(0, m2_tail.size() - 1),  // the text, without the final '\n'
      "nctest: M3 bin " + std::string(900, '\x01') + " END",
      "nctest: M4 tab[\t] backslash[\\] utf8[\xc3\xa9] semicolon[;] comma[,]",
      "nctest: M5 first line\nnctest: M5 second line",
      "nctest: M6 daemon.err message",
  };
  EXPECT_EQ(texts[1].size(), 988u);
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Parsed& p = records[i].first;
    const Header h{{}, p.facility, p.level, p.seq, p.timestamp_us, p.continuation};
    EXPECT_EQ(emit_ext(h, escaped(texts[i]) + "\n"), records[i].datagrams) << "record " << i + 1;
  }
}

TEST(NetconsoleFormat, EscapesExactlyTheBytesLinuxEscapes) {
  EXPECT_EQ(escaped("tab[\t] backslash[\\] utf8[\xc3\xa9] del[\x7f] nul[" + std::string(1, '\0') + "] ~"),
            "tab[\\x09] backslash[\\x5c] utf8[\\xc3\\xa9] del[\\x7f] nul[\\x00] ~");
  EXPECT_EQ(escaped("a;b,c=d"), "a;b,c=d");
}

TEST(NetconsoleFormat, EscapeStopsBeforeAnEscapeThatDoesNotFit) {
  char out[5];
  EXPECT_EQ(escape("ab\x01", out), 2u);  // "ab" fits, "\x01" needs 4 more
  char exact[6];
  EXPECT_EQ(escape("ab\x01", exact), 6u);
}

TEST(NetconsoleFormat, UnescapeUndoesEscapeOnRandomBytes) {
  std::mt19937 rng(11);
  for (int round = 0; round < 200; ++round) {
    std::string s(rng() % 300, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    const std::string e = escaped(s);
    EXPECT_EQ(e.size(), escaped_length(s));
    EXPECT_EQ(unescaped(e), s);
    // In place, as receivers do it: the output overwrites the input.
    std::string in_place = e;
    in_place.resize(unescape(in_place, in_place));
    EXPECT_EQ(in_place, s);
  }
}

// Every non-fragmented extended datagram of the boot log (dictionary lines
// included) re-emits byte-identical after parse -> unescape -> escape.
TEST(NetconsoleFormat, RoundTripsEveryCapturedRecordWithItsDictionary) {
  const auto all = read_udp_pcap(test_data("linux-6.1-netconsole-ext.pcap"));
  ASSERT_EQ(all.size(), 352u);
  std::size_t with_dict = 0, checked = 0;
  for (const auto& d : all) {
    auto p = parse_extended(d.payload);
    ASSERT_TRUE(p) << d.payload;
    if (p->fragmented) continue;
    std::string rebuilt;
    const auto text = split_body(p->body, [&](std::string_view key, std::string_view value) {
      rebuilt += " " + std::string(key) + "=" + escaped(unescaped(value)) + "\n";
      ++with_dict;
    });
    rebuilt = escaped(unescaped(text)) + "\n" + rebuilt;
    const Header h{{}, p->facility, p->level, p->seq, p->timestamp_us, p->continuation};
    ASSERT_EQ(emit_ext(h, rebuilt), std::vector<std::string>{d.payload});
    ++checked;
  }
  EXPECT_GT(with_dict, 10u);
  EXPECT_EQ(checked, 352u - 2u - 4u);  // minus the fragments of M2 and M3
}

TEST(NetconsoleFormat, CapturedIpHeadersAreWhatNetpollSends) {
  const auto all = read_udp_pcap(test_data("linux-6.1-netconsole-ext.pcap"));
  ASSERT_FALSE(all.empty());
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].ttl, 64);
    EXPECT_FALSE(all[i].dont_frag);
    EXPECT_EQ(all[i].ip_ident, i + 1);  // IP ID counts up from 1
    EXPECT_EQ(all[i].src_port, 6665);
    EXPECT_EQ(all[i].dst_port, 6666);
    EXPECT_NE(all[i].udp_checksum, 0);
  }
}

TEST(NetconsoleFormat, BasicFormatCutsLongRecordsAt1000Bytes) {
  const auto plain = read_udp_pcap(test_data("linux-6.1-netconsole-plain.pcap"));
  // The plain capture's M2 record: one console line cut in two.
  std::size_t i = 0;
  while (i < plain.size() && plain[i].payload.find("nctest: M2 long") == std::string::npos) ++i;
  ASSERT_LT(i + 1, plain.size());
  const std::string line = plain[i].payload + plain[i + 1].payload;
  std::vector<std::string> out;
  EXPECT_EQ(emit_basic(line, [&out](std::string_view d) { out.emplace_back(d); }), 2u);
  EXPECT_EQ(out, (std::vector<std::string>{plain[i].payload, plain[i + 1].payload}));
  EXPECT_EQ(out[0].size(), 1000u);
}

TEST(NetconsoleFormat, PrependsTheReleaseToEveryFragment) {
  const Header h{"6.1.0-test", 1, 6, 42, 123456, false};
  const std::string body(1500, 'x');
  const auto d = emit_ext(h, body + "\n");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].substr(0, 45), "6.1.0-test,14,42,123456,-,ncfrag=0/1501;xxxxx");
  EXPECT_EQ(d[0].size(), 1000u);
  EXPECT_EQ(d[1].rfind("6.1.0-test,14,42,123456,-,ncfrag=960/1501;", 0), 0u);
  auto p = parse_extended(d[1]);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->release, "6.1.0-test");
  EXPECT_EQ(p->seq, 42u);
  EXPECT_EQ(p->frag_offset, 960u);
  EXPECT_EQ(p->frag_total, 1501u);
  EXPECT_EQ(p->body.size(), 541u);
}

TEST(NetconsoleParse, ReadsEveryHeaderField) {
  auto p = parse_extended("27,362,3392160,c,ncemg=1,future=x;text\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->facility, 3);
  EXPECT_EQ(p->level, 3);
  EXPECT_EQ(p->seq, 362u);
  EXPECT_EQ(p->timestamp_us, 3392160u);
  EXPECT_TRUE(p->continuation);
  EXPECT_TRUE(p->emergency);
  EXPECT_FALSE(p->fragmented);
  EXPECT_TRUE(p->release.empty());
  EXPECT_EQ(p->body, "text\n");
}

// A line sent in several records: 'c' on the first, '+' on the others
// (the marks older kernels' /dev/kmsg wrote, and netconsd's ncrx reads as
// cont_start and cont).
TEST(NetconsoleFormat, WritesAndReadsTheContinuationFlags) {
  char out[kMaxHeader];
  Header h{"6.1.0-test", 1, 6, 7, 100, false};
  EXPECT_EQ(std::string_view(out, format_header(h, out)), "6.1.0-test,14,7,100,-");
  h.continuation = true;
  EXPECT_EQ(std::string_view(out, format_header(h, out)), "6.1.0-test,14,7,100,c");
  h.follows = true;
  EXPECT_EQ(std::string_view(out, format_header(h, out)), "6.1.0-test,14,7,100,+");
  h.emergency = true;
  EXPECT_EQ(std::string_view(out, format_header(h, out)), "6.1.0-test,14,7,100,+,ncemg=1");
  struct Want {
    const char* datagram;
    bool continuation, follows;
  };
  for (const Want& w : {Want{"14,7,100,-;x", false, false}, Want{"14,7,100,c;x", true, false},
                        Want{"14,7,100,+;x", true, true}, Want{"6.1.0-test,14,7,100,+,ncfrag=0/1;x", true, true}}) {
    auto p = parse_extended(w.datagram);
    ASSERT_TRUE(p) << w.datagram;
    EXPECT_EQ(p->continuation, w.continuation) << w.datagram;
    EXPECT_EQ(p->follows, w.follows) << w.datagram;
    EXPECT_EQ(p->seq, 7u) << w.datagram;
  }
  EXPECT_FALSE(parse_extended("14,7,100,++;x"));
}

TEST(NetconsoleParse, RefusesMalformedHeaders) {
  for (const char* bad : {"no semicolon", "6,1,2;x", "6,1,2,x;x", "999,1,2,-;x", "a,1,2,-;x", "6,-1,2,-;x",
                          "6,1,2,-,ncfrag=5/3;x", "6,1,2,-,ncfrag=0/2;xyz", "6,1,2,-,ncfrag=1;x", ";"}) {
    EXPECT_FALSE(parse_extended(bad)) << bad;
  }
}

TEST(NetconsoleParse, SplitsDictionaryLines) {
  std::vector<std::pair<std::string, std::string>> fields;
  const auto text = split_body("msg\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:01.0\n", [&](auto k, auto v) {
    fields.emplace_back(k, v);
  });
  EXPECT_EQ(text, "msg");
  EXPECT_EQ(fields, (std::vector<std::pair<std::string, std::string>>{{"SUBSYSTEM", "pci"},
                                                                       {"DEVICE", "+pci:0000:00:01.0"}}));
}

}  // namespace
}  // namespace np::wire::netconsole

namespace np::wire::netconsole {
namespace {

// glibc's tables (<syslog.h>, facilitynames and prioritynames).
TEST(NetconsolePriority, NamesEveryFacilityAndLevelAsSyslogDoes) {
  const char* const facilities[24] = {"kern",   "user",   "mail",   "daemon", "auth",   "syslog", "lpr",    "news",
                                      "uucp",   "cron",   "authpriv", "ftp",  nullptr,  nullptr,  nullptr,  nullptr,
                                      "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"};
  for (unsigned f = 0; f < 256; ++f) {
    const std::string_view name = facility_name(static_cast<std::uint8_t>(f));
    if (f < 24 && facilities[f] != nullptr) {
      EXPECT_EQ(name, facilities[f]) << f;
      EXPECT_EQ(name.data()[name.size()], '\0') << f;  // a C string
      EXPECT_EQ(facility_from_name(name), f) << name;
    } else {
      EXPECT_TRUE(name.empty()) << f;
    }
  }
  const char* const levels[8] = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};
  for (unsigned l = 0; l < 256; ++l) {
    const std::string_view name = level_name(static_cast<std::uint8_t>(l));
    if (l < 8) {
      EXPECT_EQ(name, levels[l]) << l;
      EXPECT_EQ(name.data()[name.size()], '\0') << l;
      EXPECT_EQ(level_from_name(name), l) << name;
    } else {
      EXPECT_TRUE(name.empty()) << l;
    }
  }
}

TEST(NetconsolePriority, KnowsNoOtherName) {
  for (const std::string_view other : {"", "warn", "error", "Kern", "local8", "kern ", "6", "?"}) {
    EXPECT_EQ(facility_from_name(other), std::nullopt) << other;
    EXPECT_EQ(level_from_name(other), std::nullopt) << other;
  }
}

TEST(Ncrx, FormatsAckAndMissingSequenceNumbers) {
  char out[kMaxDatagram];
  const std::uint64_t missing[] = {7, 9, 12};
  const auto n = format_ncrx(5, missing, out);
  EXPECT_EQ(std::string_view(out, n), "ncrx5 7 9 12");
  EXPECT_EQ(std::string_view(out, format_ncrx(42, {}, out)), "ncrx42");
}

TEST(Ncrx, KeepsToOneDatagramOfWholeNumbers) {
  std::vector<std::uint64_t> many(500, 123456789);
  std::string out(2000, '\0');
  const auto n = format_ncrx(1, many, out);
  EXPECT_LE(n, kMaxDatagram);
  EXPECT_NE(out[n - 1], ' ');
  std::uint64_t ack = 0;
  std::size_t count = 0;
  ASSERT_TRUE(parse_ncrx(std::string_view(out.data(), n), ack, [&](std::uint64_t s) {
    EXPECT_EQ(s, 123456789u);
    ++count;
  }));
  EXPECT_EQ(count, (n - 5) / 10);
}

TEST(Ncrx, ParsesAndRefuses) {
  std::uint64_t ack = 0;
  std::vector<std::uint64_t> missing;
  ASSERT_TRUE(parse_ncrx("ncrx17 18 20\n", ack, [&](std::uint64_t s) { missing.push_back(s); }));
  EXPECT_EQ(ack, 17u);
  EXPECT_EQ(missing, (std::vector<std::uint64_t>{18, 20}));
  for (const char* bad : {"", "ncrx", "ncrxx", "ncr5", "ncrx5 x", "ncrx5  6", "6,1,2,-;text"}) {
    EXPECT_FALSE(parse_ncrx(bad, ack, [](std::uint64_t) {})) << bad;
  }
}

TEST(NetconsoleFormat, EmergencyRecordsCarryNcemg) {
  char head[kMaxHeader];
  const Header h{{}, 1, 6, 9, 100, false, true};
  const auto n = format_header(h, head);
  EXPECT_EQ(std::string_view(head, n), "14,9,100,-,ncemg=1");
  auto p = parse_extended(std::string(head, n) + ";x\n");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->emergency);
}

}  // namespace
}  // namespace np::wire::netconsole
