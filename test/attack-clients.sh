#!/bin/bash
# attack-clients.sh -- hostile input to the clients and the pipes (issue 13):
# times out of the int64 ns range are refused with the line, never wrapped;
# one huge key does not make every row of topk's table long; a partition
# consume cannot read ends `consume -e` with a message instead of a hang;
# with the broker killed consume says so, a SIGTERM ends it within
# --timeout and a second one at once.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
TOPK=$top_builddir/topk
WINAGG=$top_builddir/winagg
CONSUME=$top_builddir/consume

# run CMD...: sets $st to its status, output in $T/out and $T/err.
run() {
    set +e
    "$@" >"$T/out" 2>"$T/err"
    st=$?
    set -e
}

# ---- times out of range ------------------------------------------------------
W='2023-11-14T22:13:20Z	2023-11-14T22:13:50Z'
printf '%s\ta\t1\n2300-01-01T00:00:00Z\t2300-01-01T00:00:30Z\tb\t1\n' "$W" >"$T/late.tsv"
run "$TOPK" -o tsv "$T/late.tsv"
expect_eq "topk status with a row in 2300" $st 1
grep -q "^topk: $T/late.tsv: line 2: the window start is not an ISO 8601 UTC time" "$T/err" ||
    fail "topk on 2300: $(cat "$T/err")"
grep -q 17 "$T/out" && fail "a 2300 row became: $(cat "$T/out")"
printf '1600-01-01T00:00:00Z\t%s\tb\t1\n' "${W#*	}" | run "$TOPK"
expect_eq "topk status with a row in 1600" $st 1
grep -q '^topk: stdin: line 1: the window start' "$T/err" || fail "topk on 1600: $(cat "$T/err")"

# winagg's event times: iso8601 and strptime formats count a bad time.
printf '2300-01-01T00:00:00Z a\n1600-01-01T00:00:00Z b\n2023-11-14T22:13:21Z c\n' >"$T/ev"
for f in iso8601 '%Y-%m-%dT%H:%M:%SZ'; do
    run "$WINAGG" -k ' (.)$' --time '^(\S+)' --time-format "$f" -w 10s "$T/ev"
    expect_eq "winagg status ($f)" $st 0
    expect_eq "winagg rows ($f)" "$(grep -v '^#' "$T/out" | cut -f1,3 | tr '\t\n' '= ')" \
        "2023-11-14T22:13:20Z=c "
    grep -q 'badtime=2' "$T/err" || fail "winagg ($f) did not count 2 bad times: $(cat "$T/err")"
done

# ---- a huge key in topk's table ----------------------------------------------
{
    printf '%s\t' "$W"; head -c 1048576 /dev/zero | tr '\0' k; printf '\t9\n'
    printf '%s\tshort\t5\n%s\tother\t3\n' "$W" "$W"
} >"$T/big.tsv"
run "$TOPK" -n 3 "$T/big.tsv"
expect_eq "topk status with a 1 MiB key" $st 0
longest=$(awk '{ if (length($0) > m) m = length($0) } END { print m }' "$T/out")
[ "$longest" -le 100 ] || fail "the table has a line of $longest bytes"
grep -q '^   2  short  ' "$T/out" || fail "table: $(cut -c1-100 "$T/out")"
run "$TOPK" -n 3 -o tsv "$T/big.tsv"
[ "$(head -n 1 "$T/out" | wc -c)" -gt 1048576 ] || fail "tsv cut the key"

# ---- a partition consume cannot read -----------------------------------------
# A batch whose codec is 7 (none such), its CRC made right again, written into
# the segment of a stopped brokerd (a clean stop: the restart trusts the
# segment): librdkafka fetches that offset again and again.
command -v kcat >/dev/null || fail "kcat is not installed (scripts/bootstrap installs it)"
start_brokerd --partitions 2
for i in 1 2 3; do echo "rec$i" | kcat -b "$B" -P -t bad -p 0; done
echo other | kcat -b "$B" -P -t bad -p 1
stop "$bpid"
python3 - "$T/data/bad-0/00000000000000000000.log" <<'PY' || fail "could not corrupt the segment"
import struct, sys
def crc32c(b):
    c = 0xffffffff
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ (0x82f63b78 if c & 1 else 0)
    return c ^ 0xffffffff
d = bytearray(open(sys.argv[1], 'rb').read())
pos = 12 + struct.unpack('>i', d[8:12])[0]             # the second batch
n = struct.unpack('>i', d[pos + 8:pos + 12])[0]
d[pos + 22] = (d[pos + 22] & ~7) | 7                    # attributes: codec 7
d[pos + 17:pos + 21] = struct.pack('>I', crc32c(d[pos + 21:pos + 12 + n]))
open(sys.argv[1], 'wb').write(d)
PY
start_brokerd
for g in "" "-G gbad"; do
    # shellcheck disable=SC2086
    run timeout 20 "$CONSUME" -b "$B" -t bad $g -e --start beginning
    expect_eq "consume -e $g status on a corrupt batch" $st 1
    grep -q '^consume: bad: partition 0 at offset 1 cannot be read: .*codec' "$T/err" ||
        fail "consume -e $g: $(cat "$T/err")"
done
# Live, it says so and goes on with the other partitions.
bg "$CONSUME" -b "$B" -t bad --start beginning >"$T/live.out" 2>"$T/live.err"
lpid=$!
wait_until 10 grep -q 'partition 0 at offset 1 cannot be read' "$T/live.err" ||
    fail "live consume said nothing: $(cat "$T/live.err")"
wait_lines "$T/live.out" 2
expect_eq "live consume read" "$(sort "$T/live.out" | tr '\n' ' ')" "other rec1 "
stop "$lpid"
stop "$bpid"

# ---- the broker killed under consume ------------------------------------------
# It says so within seconds; the first SIGTERM ends it within --timeout (the
# group cannot be left), the second at once.
elapsed_ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
start_brokerd
seq 1 5 | kcat -b "$B" -P -t live
bg "$CONSUME" -b "$B" -t live -G glive --start beginning --timeout 2s >"$T/c1.out" 2>"$T/c1.err"
c1=$!
bg "$CONSUME" -b "$B" -t live -G glive2 --start beginning --timeout 60s >"$T/c2.out" 2>"$T/c2.err"
c2=$!
wait_lines "$T/c1.out" 5
wait_lines "$T/c2.out" 5
sleep 0.5
kill -9 "$bpid"
t0=$(date +%s%N)
wait_until 5 grep -q '^consume: cannot reach the brokers' "$T/c1.err" ||
    fail "consume said nothing within 5 s of the broker's end: $(cat "$T/c1.err")"
note "said the broker is gone after $(elapsed_ms "$t0") ms"
# term_within PID MS [again]: SIGTERM (and with "again" a second one 0.3 s
# later); PID must exit within MS ms. Sets $st.
term_within() {
    t0=$(date +%s%N)
    kill -TERM "$1"
    if [ -n "${3:-}" ]; then sleep 0.3; kill -TERM "$1"; fi
    set +e; wait "$1"; st=$?; set -e
    ms=$(elapsed_ms "$t0")
    [ "$ms" -lt "$2" ] || fail "SIGTERM${3:+ twice} took $ms ms"
}
term_within "$c1" 4000     # --timeout 2s
expect_eq "status when the group could not be left" $st 1
grep -q 'within 2000 ms' "$T/c1.err" || fail "consume on SIGTERM: $(cat "$T/c1.err")"
term_within "$c2" 2000 again
expect_eq "status on a second SIGTERM" $st 1
grep -q 'stopped again' "$T/c2.err" || fail "consume on a second SIGTERM: $(cat "$T/c2.err")"
