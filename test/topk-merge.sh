#!/bin/sh
# topk-merge.sh -- one topk over three winagg processes (partition-parallel):
# a window is printed once all three inputs have passed it, not before, with
# the rows of the three summed; an input at its end no longer holds windows
# back.
. "$(dirname "$0")/lib.sh"
WINAGG=$top_builddir/winagg
TOPK=$top_builddir/topk
T0=1700000000       # a multiple of 10: windows [T0+10i, T0+10i+10)

stamp() { while IFS= read -r l; do printf '%s %s\n' "$(date +%s.%N)" "$l"; done; }
now() { date +%s.%N; }
ms_since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%d", (a - b) * 1000 }'; }
t() { date -u -d "@$((T0 + $1))" +%Y-%m-%dT%H:%M:%SZ; }
rows() { cut -d ' ' -f 2- "$T/out"; }

mkfifo "$T/inA" "$T/inB" "$T/inC" "$T/oA" "$T/oB" "$T/oC"
# Event time ("SECONDS KEY" lines), windows of 10 s; a row format each.
for p in A:tsv B:json C:frames; do
    bg sh -c 'exec "$1" --time "^([0-9]+)" --time-format epoch -f 2 -w 10s -o "$2" <"$3" >"$4"' \
        sh "$WINAGG" "${p#*:}" "$T/in${p%:*}" "$T/o${p%:*}"
done
( "$TOPK" -o tsv -n 5 "$T/oA" "$T/oB" "$T/oC" 2>"$T/err" | stamp >"$T/out" ) &
PIDS="$PIDS $!"
exec 3>"$T/inA" 4>"$T/inB" 5>"$T/inC"

# A and B close the windows of 0, 10 and 20 s; C has said nothing yet.
printf '%s x\n%s y\n' $((T0 + 1)) $((T0 + 2)) >&3
printf '%s x\n' $((T0 + 12)) $((T0 + 22)) >&3
printf '%s z\n' $((T0 + 31)) >&3
printf '%s x\n' $((T0 + 3)) >&4
printf '%s y\n' $((T0 + 13)) $((T0 + 23)) >&4
printf '%s z\n' $((T0 + 32)) >&4
sleep 1.5
expect_eq "output while C has passed nothing" "$(rows)" ""

# C passes the windows too (its watermark: 33 s): they come out at once,
# the rows of the three inputs summed.
t1=$(now)
printf '%s x\n' $((T0 + 4)) $((T0 + 14)) >&5
printf '%s y\n' $((T0 + 24)) >&5
printf '%s z\n' $((T0 + 33)) >&5
wait_lines "$T/out" 6 5
ms=$(ms_since "$t1")
[ "$ms" -lt 1000 ] || fail "windows printed $ms ms after the last input passed them"
{
    printf '%s\t%s\t1\tx\t3\n%s\t%s\t2\ty\t1\n' "$(t 0)" "$(t 10)" "$(t 0)" "$(t 10)"
    printf '%s\t%s\t1\tx\t2\n%s\t%s\t2\ty\t1\n' "$(t 10)" "$(t 20)" "$(t 10)" "$(t 20)"
    printf '%s\t%s\t1\ty\t2\n%s\t%s\t2\tx\t1\n' "$(t 20)" "$(t 30)" "$(t 20)" "$(t 30)"
} >"$T/want"
rows >"$T/got"
expect_file "$T/got" "$T/want"
note "three windows printed $ms ms after the third input passed them"

# A and B end (their winagg emits the window of 30 s at its end): C, still
# open with its watermark at 33 s and more, holds that window back.
exec 3>&- 4>&-
sleep 1
expect_eq "rows while C holds the window of 30 s" "$(rows | wc -l)" 6
# C ends: the window comes out, z counted by all three.
exec 5>&-
wait_lines "$T/out" 7 5
expect_eq "the last window" "$(rows | tail -n 1)" "$(printf '%s\t%s\t1\tz\t3' "$(t 30)" "$(t 40)")"
wait
[ ! -s "$T/err" ] || fail "topk said: $(cat "$T/err")"
note "topk-merge: ok"
