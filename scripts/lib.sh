# Shared by scripts/*: dependency installation and the build.
# Sourced, not run.

NP_ROOT=$(cd "$(dirname "$0")/.." && pwd)

# Debian packages the build and the whole suite need. Tests use real tools
# (tcpdump, socat, nftables, jq, ethtool, the kernel's veth/tap through iproute2;
# gdb and its gcore open and make the core writer's cores; python3-scapy
# makes the wire tests' golden packets again from their recipes) and the fuzz
# build needs clang 16 with its libFuzzer runtime. Packaging: the man pages
# (help2man), the .deb (debhelper, lintian), the tests of what is installed
# (man, bash-completion, systemd-analyze; curl and promtool scrape the
# metrics).
NP_PACKAGES="g++ cmake ninja-build pkg-config libgtest-dev libgmock-dev libbenchmark-dev libfmt-dev libdw-dev libsodium-dev libc6-dbg
  libxdp-dev libbpf-dev clang
  iproute2 iputils-ping ethtool tcpdump socat nftables procps kmod python3 python3-scapy rsyslog jq gdb
  clang-16 libclang-rt-16-dev
  debhelper dpkg-dev lintian help2man man-db bash-completion curl prometheus systemd"

np_say() { printf '\n==> %s [%s]\n' "$*" "$(date +%T)"; }

# Installs whatever of NP_PACKAGES is missing (apt-get update first).
np_install_deps() {
  missing=""
  for p in $NP_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    np_say "installing:$missing"
    if [ "$(id -u)" -ne 0 ]; then
      echo "netpoll: these Debian packages are missing and installing them needs root:$missing" >&2
      exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Packages install, services do not start (rsyslog is a test peer the
    # tests start themselves, not a daemon for this machine).
    policy_rc=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
      policy_rc=/usr/sbin/policy-rc.d
    fi
    apt-get update
    apt-get install -y --no-install-recommends $missing
    [ -z "$policy_rc" ] || rm -f "$policy_rc"
  fi
}

# np_build PRESET: configure (once) and build.
np_build() {
  np_say "building ($1)"
  cmake --preset "$1" -S "$NP_ROOT" >/dev/null
  cmake --build --preset "$1" -j "$(nproc)"
}
