#!/bin/sh
# What `cmake --install` gives, checked as a user meets it (ctest:
# packaging.install, needs root for the namespaces):
#   tests/packaging/install_test.sh BUILD_DIR
# 1. installs BUILD_DIR into a DESTDIR (prefix /usr/local);
# 2. the files where they belong; libnetpoll.so's SONAME; its exports are
#    namespace np:: only;
# 3. builds tests/packaging/outside against the installed files twice, with
#    find_package (shared and static) and with pkg-config, and runs each in
#    a namespace joined by a veth pair to another, where a kernel UDP socket
#    (socat) must receive the record each one logs;
# 4. the installed `netpoll run --no-trace` finds its preload library from
#    its installed place and the program's line arrives the same way;
# 5. `man -l` renders every installed page without a warning, and
#    netpoll-listen(8) has the options of `netpoll listen --help`;
# 6. `systemd-analyze verify` passes on the installed units;
# 7. bash completion completes commands and a command's options.
set -eu
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/np-install.XXXXXX)
tag=$(basename "$work" | tr -cd 'a-zA-Z0-9' | tail -c 7)
ns_a="npi-a-$tag" ns_b="npi-b-$tag"
socat_pid=""
cleanup() {
  [ -z "$socat_pid" ] || kill "$socat_pid" 2>/dev/null || true
  ip netns del "$ns_a" 2>/dev/null || true
  ip netns del "$ns_b" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() { echo "FAILED: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

root="$work/root"
prefix="$root/usr/local"
libdir="$prefix/lib/x86_64-linux-gnu"
DESTDIR="$root" cmake --install "$build" --prefix /usr/local > "$work/install.log" || fail "cmake --install: $(cat "$work/install.log")"

# --- 2. the files ---------------------------------------------------------------
for f in bin/netpoll lib/x86_64-linux-gnu/netpoll/libnetpoll_preload.so lib/x86_64-linux-gnu/libnetpoll.so.0 \
         lib/x86_64-linux-gnu/libnetpoll.so lib/x86_64-linux-gnu/libnetpoll.a include/netpoll/console/logger.h \
         include/netpoll/gdb/stub.h lib/x86_64-linux-gnu/cmake/netpoll/netpollConfig.cmake \
         lib/x86_64-linux-gnu/pkgconfig/netpoll.pc share/man/man8/netpoll.8 share/man/man8/netpoll-listen.8 \
         share/bash-completion/completions/netpoll lib/systemd/system/netpoll-listen.service \
         lib/systemd/system/netpoll-dumpd.service etc/default/netpoll-listen etc/default/netpoll-dumpd; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
[ ! -e "$prefix/include/netpoll/receiver" ] || fail "the servers' headers are the command's own, not installed"
ok "installed files"
soname=$(objdump -p "$libdir/libnetpoll.so" | awk '$1 == "SONAME" {print $2}')
[ "$soname" = "libnetpoll.so.0" ] || fail "SONAME is '$soname'"
nm -D --defined-only "$libdir/libnetpoll.so" | awk '{ $1 = ""; $2 = ""; print substr($0, 3) }' | c++filt > "$work/exports"
others=$(grep -v -E '^((vtable|typeinfo|typeinfo name|VTT|guard variable) for )?np::' "$work/exports" || true)
[ -z "$others" ] || fail "exported beyond namespace np::: $(echo "$others" | head -5)"
grep -q '^np::console::Logger::create(' "$work/exports" || fail "Logger::create is not exported"
grep -q '^np::netdump::Dumper::setup(' "$work/exports" || fail "Dumper::setup is not exported"
if grep -E '^np::(console::cfi|core::detail)::|^np::dump::detail::(LineReader|Fd|open_read|read_file)' "$work/exports"; then fail "a layer's private code is exported"; fi
ok "SONAME $soname, $(wc -l < "$work/exports") symbols exported, all of namespace np::"
# The preload library exports its wrapper alone (src/preload/exports.map).
[ "$(nm -D --defined-only "$libdir/netpoll/libnetpoll_preload.so" | awk '{print $3}')" = "pthread_create" ] ||
  fail "the preload library exports more than pthread_create"

# --- 3. an outside project, twice ------------------------------------------------
cmake -S "$here/outside" -B "$work/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" > "$work/cmake.log" 2>&1 ||
  fail "configure with find_package: $(cat "$work/cmake.log")"
cmake --build "$work/cmake" >> "$work/cmake.log" 2>&1 || fail "build with find_package: $(cat "$work/cmake.log")"
PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs netpoll > "$work/pc_flags" || fail "pkg-config netpoll"
# shellcheck disable=SC2046
g++ -o "$work/pc_logger" "$here/outside/logger.cpp" $(cat "$work/pc_flags") 2> "$work/pc.log" ||
  fail "build with pkg-config ($(cat "$work/pc_flags")): $(cat "$work/pc.log")"
objdump -p "$work/cmake/outside_logger" | grep -q 'NEEDED *libnetpoll.so.0' || fail "find_package's program does not load libnetpoll.so.0"
objdump -p "$work/cmake/outside_logger_static" | grep -q 'NEEDED *libnetpoll' && fail "the static program loads libnetpoll"
objdump -p "$work/pc_logger" | grep -q 'NEEDED *libnetpoll.so.0' || fail "pkg-config's program does not load libnetpoll.so.0"
ok "built with find_package (shared, static) and pkg-config ($(cat "$work/pc_flags"))"

ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "va$tag" netns "$ns_a" type veth peer name "vb$tag" netns "$ns_b"
ip -n "$ns_a" addr add 10.217.0.1/24 dev "va$tag"
ip -n "$ns_b" addr add 10.217.0.2/24 dev "vb$tag"
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "va$tag" up
ip -n "$ns_b" link set "vb$tag" up
ip netns exec "$ns_b" socat -u UDP4-RECV:6666,bind=10.217.0.2 "OPEN:$work/received,creat,append" &
socat_pid=$!
sleep 0.3
target="+6665@10.217.0.1/va$tag,6666@10.217.0.2/"
LD_LIBRARY_PATH="$libdir" ip netns exec "$ns_a" "$work/cmake/outside_logger" "$target" "find_package shared" ||
  fail "the find_package program"
ip netns exec "$ns_a" "$work/cmake/outside_logger_static" "$target" "find_package static" ||
  fail "the static program"
LD_LIBRARY_PATH="$libdir" ip netns exec "$ns_a" "$work/pc_logger" "$target" "pkg-config" || fail "the pkg-config program"

# --- 4. the installed netpoll run finds its preload library ----------------------
LD_LIBRARY_PATH="$libdir" ip netns exec "$ns_a" "$prefix/bin/netpoll" run --no-trace --linger 2 "$target" -- \
  sh -c 'echo a line from the installed netpoll run' > /dev/null 2> "$work/run.err" ||
  fail "installed netpoll run --no-trace: $(cat "$work/run.err")"

deadline=$(($(date +%s) + 10))
while [ "$(grep -c -e 'from the installed library' -e 'installed netpoll run' "$work/received" 2>/dev/null)" -lt 4 ] &&
      [ "$(date +%s)" -lt "$deadline" ]; do
  sleep 0.1
done
for want in "find_package shared from the installed library" "find_package static from the installed library" \
            "pkg-config from the installed library" "a line from the installed netpoll run"; do
  grep -q -- ";$want\$" "$work/received" || fail "the kernel socket did not receive '$want': $(cat "$work/received")"
done
ok "the kernel socket received each program's record: $(tr '\n' '|' < "$work/received")"

# --- 5. man pages ----------------------------------------------------------------
pages=0
for page in "$prefix"/share/man/man8/*.8; do
  MANWIDTH=80 man --warnings -l "$page" > "$work/page.txt" 2> "$work/man.err" || fail "man -l $page: $(cat "$work/man.err")"
  [ ! -s "$work/man.err" ] || fail "man -l $page warns: $(cat "$work/man.err")"
  grep -q '^NAME' "$work/page.txt" || fail "$page has no NAME"
  pages=$((pages + 1))
done
[ "$pages" -ge 11 ] || fail "only $pages man pages"
MANWIDTH=200 man -l "$prefix/share/man/man8/netpoll-listen.8" > "$work/listen.txt" 2>/dev/null
for opt in $("$prefix/bin/netpoll" listen --help | grep -o -E '^  --[a-z-]+'); do
  grep -q -- "$opt" "$work/listen.txt" || fail "netpoll-listen(8) lacks $opt"
done
ok "man -l renders $pages pages; netpoll-listen(8) has every option of its --help"

# --- 6. systemd units --------------------------------------------------------------
# verify --root needs the system's own units there (sysinit.target, ...);
# its check of Documentation= runs man, which finds the installed pages.
mkdir -p "$root/lib/systemd"
cp -r /lib/systemd/system "$root/lib/systemd/"
for unit in netpoll-listen netpoll-dumpd; do
  grep -q "^ExecStart=/usr/local/bin/netpoll ${unit#netpoll-} " "$prefix/lib/systemd/system/$unit.service" ||
    fail "$unit.service does not run the installed netpoll"
  grep -q "^EnvironmentFile=-/usr/local/etc/default/$unit\$" "$prefix/lib/systemd/system/$unit.service" ||
    fail "$unit.service does not read its /etc/default file"
  MANPATH="$prefix/share/man" systemd-analyze verify --root="$root" "$prefix/lib/systemd/system/$unit.service" \
    > "$work/verify.log" 2>&1 || fail "systemd-analyze verify $unit: $(cat "$work/verify.log")"
  [ ! -s "$work/verify.log" ] || fail "systemd-analyze verify $unit says: $(cat "$work/verify.log")"
done
ok "systemd-analyze verify: both units"

# --- 7. bash completion ------------------------------------------------------------
complete_words() {  # complete_words WORD... : what completing the last word offers
  PATH="$prefix/bin:$PATH" bash -c '
    . /usr/share/bash-completion/bash_completion
    . "$0"
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _netpoll netpoll "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"' "$prefix/share/bash-completion/completions/netpoll" "$@"
}
[ "$(complete_words netpoll lis)" = "listen" ] || fail "completing 'netpoll lis': $(complete_words netpoll lis)"
[ "$(complete_words netpoll dumpd --met | tr '\n' ' ')" = "--metrics " ] ||
  fail "completing 'netpoll dumpd --met': $(complete_words netpoll dumpd --met)"
[ "$(complete_words netpoll listen --stats-format j)" = "json" ] || fail "completing --stats-format"
ok "bash completion"
