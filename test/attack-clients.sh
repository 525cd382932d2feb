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
