// Network-namespace test beds: real devices, the real kernel as the peer.
//
// Every namespace a test creates has a unique name ("np-<pid>-<n>") and is
// deleted when its owner goes out of scope, also when an ASSERT fails. A bed
// left behind by a killed test run is swept the next time a bed is made
// (namespaces whose creating pid no longer exists).
//
// Sockets and devices belong to the namespace of the thread that creates
// them; ScopedNetns moves the calling thread into a namespace for a scope.
#pragma once

#include <string>
#include <string_view>

namespace np::testing {

// Runs `cmd` with /bin/sh; returns its exit status (or -1). stdout+stderr go
// to *output when given, else to this process's stderr.
int sh(const std::string& cmd, std::string* output = nullptr);

// sh() that records a gtest failure with the command and its output when
// the command does not exit 0.
bool sh_ok(const std::string& cmd);

// True when this process may create namespaces (it runs as root).
bool can_make_namespaces();

class Netns {
 public:
  // Creates a new, empty namespace with loopback up. Aborts the test with a
  // clear message if that is impossible.
  explicit Netns(std::string_view tag = "ns");
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;

  const std::string& name() const { return name_; }
  // "ip netns exec NAME " — prefix for commands to run inside.
  std::string exec() const { return "ip netns exec " + name_ + " "; }

 private:
  std::string name_;
};

// Moves the calling thread into a namespace until the end of the scope.
class ScopedNetns {
 public:
  explicit ScopedNetns(const Netns& ns);
  ~ScopedNetns();
  ScopedNetns(const ScopedNetns&) = delete;
  ScopedNetns& operator=(const ScopedNetns&) = delete;

 private:
  int saved_ = -1;
};

// Two namespaces joined by a veth pair: `a` holds interface `a_if` with
// 10.<n>.0.1/24, `b` holds `b_if` with 10.<n>.0.2/24 (the same fixed subnet
// in every bed is fine: namespaces do not see each other). Both ends are up.
struct VethBed {
  VethBed();
  Netns a{"a"};
  Netns b{"b"};
  std::string a_if = "np0";
  std::string b_if = "np1";
  std::string a_ip = "10.77.0.1";
  std::string b_ip = "10.77.0.2";
  std::string a_mac;  // as the kernel reports it, "aa:bb:..."
  std::string b_mac;
};

// The MAC address of `ifname` inside `ns`, lower-case colon form.
std::string mac_of(const Netns& ns, const std::string& ifname);

}  // namespace np::testing
