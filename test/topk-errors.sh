#!/bin/sh
# topk-errors.sh -- what goes wrong is said clearly: a malformed row names
# its file and line (what was read before is printed, status 1), unreadable
# files (the others are read), corrupt events, usage errors (status 2), and
# a closed stdout (quiet).
. "$(dirname "$0")/lib.sh"
TOPK=$top_builddir/topk
W='2026-11-23T07:40:00Z	2026-11-23T07:40:30Z'

# run CMD...: sets $st to its status, output in $T/out and $T/err.
run() {
    set +e
    "$@" >"$T/out" 2>"$T/err"
    st=$?
    set -e
}

# A malformed row: named by file and line; the rows before it count, the
# rest of that file is skipped, other files are read.
printf '%s\ta\t1\n%s\tb\t2\n%s\tc\tnot-a-number\n%s\td\t9\n' "$W" "$W" "$W" "$W" >"$T/bad.tsv"
printf '%s\te\t3\n' "$W" >"$T/good.tsv"
run "$TOPK" -o tsv "$T/bad.tsv" "$T/good.tsv"
expect_eq "status with a malformed row" $st 1
grep -q "^topk: $T/bad.tsv: line 3: the value is not a number" "$T/err" || fail "message: $(cat "$T/err")"
expect_eq "rows read" "$(cut -f4,5 "$T/out" | tr '\t\n' '= ')" "e=3 b=2 a=1 "
printf 'just one field\n' | run "$TOPK"
expect_eq "status with junk on stdin" $st 1
grep -q '^topk: stdin: line 1: ' "$T/err" || fail "message: $(cat "$T/err")"
printf '2026-11-23T07:40:30Z\t2026-11-23T07:40:00Z\tk\t1\n' | run "$TOPK"
grep -q 'line 1: the window ends before it starts' "$T/err" || fail "message: $(cat "$T/err")"

# Files that cannot be read: a warning each, the others are read.
run "$TOPK" -o tsv "$T/missing" "$T/good.tsv"
expect_eq "status with a missing file" $st 1
grep -q "^topk: $T/missing: No such file or directory" "$T/err" || fail "message: $(cat "$T/err")"
expect_eq "the readable file" "$(cut -f4 "$T/out")" e
mkdir "$T/dir"
run "$TOPK" "$T/dir"
expect_eq "status with a directory" $st 1
grep -q "^topk: $T/dir: Is a directory" "$T/err" || fail "message: $(cat "$T/err")"

# Corrupt events in the -k form: named by byte offset.
printf '\211RNF\001\000\000\000\377\377\377\377garbage' >"$T/bad.frames"
run "$TOPK" -k 'x' "$T/bad.frames"
expect_eq "status with corrupt frames" $st 1
grep -q "^topk: $T/bad.frames: byte offset 8: " "$T/err" || fail "message: $(cat "$T/err")"
grep -q '^top 0 at .*: 0 events' "$T/out" || fail "no report after corrupt input"

# Usage errors: status 2 and a message.
for args in "-n 0" "-n x" "-o xml" "-k x -o xml" "-m 5" "--lower" "--every 1s" \
    "-k x -m 5" "-k x -m 0" "-k (" "--redis-ttl 5" "-o redis --redis-ttl 0" \
    "-o redis --redis-prefix=" "-k x --redis-prefix p" "-k x --every 0" "--bogus"; do
    # shellcheck disable=SC2086
    run "$TOPK" $args </dev/null
    expect_eq "status of topk $args" $st 2
    grep -q "^topk: " "$T/err" || fail "no message for $args"
done
"$TOPK" --help | head -n 1 | grep -q '^usage: topk \[-n N\]' || fail "--help"
"$TOPK" --version | grep -q '^topk (runnel) ' || fail "--version"

# stdout closed early: quiet, status 0.
awk -v w="$W" 'BEGIN { for (i = 0; i < 200000; i++) printf "%s\tk%d\t%d\n", w, i, i }' >"$T/big.tsv"
{ "$TOPK" -o tsv -n 200000 "$T/big.tsv" 2>"$T/err"; echo $? >"$T/st"; } | head -n 1 >/dev/null
[ ! -s "$T/err" ] || fail "noise on a closed pipe: $(cat "$T/err")"
expect_eq "status on a closed pipe" "$(cat "$T/st")" 0
note "errors: ok"
