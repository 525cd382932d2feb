# lib.sh -- shared by the shell tests: paths, a scratch directory, background
# processes cleaned up on exit, and assertions that say what differed.
set -eu

: "${top_builddir:=$(cd "$(dirname "$0")/../build" && pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
# KafkaJS, where scripts/bootstrap installs it (make check passes configure's
# NODE_MODULES on: a build from the release tarball uses its tree's).
: "${NODE_MODULES:=$top_srcdir/deps/node/node_modules}"
LOGTAIL=$top_builddir/logtail
GENLOG=$top_builddir/scripts/genlog
T=$(mktemp -d "${TMPDIR:-/tmp}/runnel-test.XXXXXX")
PIDS=

cleanup() {
    # Subshells keep the traps: a watchdog ( sleep N; kill ... ) & that is
    # killed must not clean up under the running test (nor, after it, kill
    # pids that are someone else's by then).
    [ "${BASHPID:-$$}" = "$$" ] || exit 1      # (dash resets them)
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP_TMP:-}" ] && echo "# kept $T" >&2 || rm -rf "$T"
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "# $*" >&2; }

# bg CMD...: run in the background, remember its pid in $!
bg() { "$@" & PIDS="$PIDS $!"; }

# wait_until SECONDS CMD...: poll CMD every 20ms until it succeeds.
wait_until() {
    limit=$1; shift
    i=0
    while ! "$@"; do
        i=$((i + 1))
        [ $i -lt $((limit * 50)) ] || return 1
        sleep 0.02
    done
}

lines_at_least() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }

# wait_lines FILE N [SECONDS]: FILE has at least N lines, or fail.
wait_lines() {
    wait_until "${3:-10}" lines_at_least "$1" "$2" ||
        fail "$1 has $(wc -l <"$1" 2>/dev/null || echo 0) lines, expected at least $2"
}

# expect_file FILE EXPECTED_FILE: identical, or show the difference.
expect_file() {
    cmp -s "$1" "$2" || { diff "$2" "$1" | head -20 >&2; fail "$1 differs from $2"; }
}

expect_eq() { # what got expected
    [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
}

# mk ARGS...: make in the build directory, quietly (from inside make check:
# not with the jobserver of the make running the test).
mk() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL ${MAKE:-make} -s --no-print-directory \
        -C "$top_builddir" "$@"
}

# make_var NAME: the value of NAME in the build's Makefile (bindir, ...).
make_var() {
    printf 'print-var:\n\t@echo "$(%s)"\n' "$1" >"$T/print-var.mk"
    mk -f Makefile -f "$T/print-var.mk" print-var
}

# seq_of FILE: the sequence numbers of genlog --seq lines, one a line.
seq_of() { awk '$1 == "SEQ" { print $2 + 0 }' "$1"; }

# stop PID: SIGTERM, then wait for it (its status is ignored).
stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# start_brokerd ARGS...: brokerd serve on a port the kernel picks (so tests
# never collide), data in $T/data; sets B (host:port) and bpid.
nbroker=0
start_brokerd() {
    nbroker=$((nbroker + 1))
    blog=$T/broker.$nbroker.log
    bg "$top_builddir/brokerd" serve --listen 127.0.0.1:0 --data-dir "$T/data" "$@" 2>"$blog"
    bpid=$!
    wait_until 30 grep -q '^brokerd: listening on' "$blog" ||
        fail "brokerd did not start: $(cat "$blog")"
    B=$(sed -n 's/^brokerd: listening on \([^,]*\),.*/\1/p' "$blog")
}

# start_chanbuf NAME ARGS...: chanbuf --listen on a port the kernel picks
# (or on $CB_ADDR when set: a restart on the same address); sets C (host:port),
# cpid, and its log $T/NAME.log (appended to across restarts).
start_chanbuf() {
    cname=$1; shift
    clog=$T/$cname.log
    : >>"$clog"
    before=$(grep -c '^chanbuf: listening on' "$clog" || true)
    bg "$top_builddir/chanbuf" --listen "${CB_ADDR:-127.0.0.1:0}" "$@" 2>>"$clog"
    cpid=$!
    chanbuf_up() { [ "$(grep -c '^chanbuf: listening on' "$clog" || true)" -gt "$before" ]; }
    wait_until 30 chanbuf_up || fail "chanbuf $cname did not start: $(cat "$clog")"
    C=$(sed -n 's/^chanbuf: listening on //p' "$clog" | tail -n 1)
}

# counter PID LOG NAME: ask PID for its counters (SIGUSR1) and print the
# value of NAME from the newest line in LOG.
counter() {
    _pid=$1 _log=$2 _name=$3
    _n=$(grep -c "$_name=" "$_log" || true)
    kill -USR1 "$_pid" 2>/dev/null || return 1
    _i=0
    while [ "$(grep -c "$_name=" "$_log" || true)" -le "$_n" ]; do
        _i=$((_i + 1))
        [ $_i -lt 250 ] || return 1
        sleep 0.02
    done
    grep -o "$_name=[0-9]*" "$_log" | tail -n 1 | cut -d= -f2
}

# start_redis: a private redis-server on a free port (tries ports from a
# random base until one starts); sets port and rpid, and rcli to talk to it.
# start_redis_on PORT: again on the port of before (after a kill).
start_redis_on() {
    bg redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --dir "$T" >>"$T/redis.log" 2>&1
    rpid=$!
    wait_until 5 sh -c "redis-cli -p $1 ping 2>/dev/null | grep -q PONG || ! kill -0 $rpid 2>/dev/null" &&
        kill -0 "$rpid" 2>/dev/null
}
start_redis() {
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
        fail "redis-server or redis-cli is missing (scripts/bootstrap installs them)"
    port=
    base=$(( $(od -An -N2 -tu2 /dev/urandom) % 20000 + 20000 ))
    for k in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19; do
        p=$((base + k * 7))     # (wait_until uses i)
        if start_redis_on "$p"; then
            port=$p
            break
        fi
    done
    [ -n "$port" ] || fail "no redis-server would start: $(cat "$T/redis.log")"
}
rcli() { redis-cli -p "$port" "$@"; }
