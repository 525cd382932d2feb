#!/bin/sh
# winagg-final.sh -- --emit final: with --state over two runs, each window
# and key is written exactly once, with the value of the whole input; the
# windows open at the end of the first run wait for the second (where
# --emit all writes them at both ends).
. "$(dirname "$0")/lib.sh"
WINAGG=$top_builddir/winagg
TIME='\[([^]]+)\]'
KEY='Input=([^ &]*)'

"$GENLOG" -n 20000 --start 1700000000 --seed 11 >"$T/log"
head -n 10000 "$T/log" >"$T/h1"
tail -n +10001 "$T/log" >"$T/h2"
run() { "$WINAGG" -k "$KEY" --lower --time "$TIME" -w 10s -s 5s "$@"; }
rows() { grep -hv '^#' "$@"; }     # the rows without the watermark records

run --emit final --state "$T/st" <"$T/h1" >"$T/f1"
run --emit final --state "$T/st" <"$T/h2" >"$T/f2"
run --emit all --state "$T/sa" <"$T/h1" >"$T/a1"
run --emit final <"$T/log" | rows | LC_ALL=C sort >"$T/whole"
run <"$T/log" | rows | LC_ALL=C sort >"$T/whole-all"
expect_file "$T/whole" "$T/whole-all"      # one run: final = all

# Each (window, key) once over the two runs, and the rows are those of one run
# over the whole input, up to the last watermark of the second run: the
# windows still open at its end are kept in the state for a run to come.
rows "$T/f1" "$T/f2" | cut -f 1-3 | LC_ALL=C sort | uniq -d >"$T/dups"
[ ! -s "$T/dups" ] || fail "written twice: $(head -n 3 "$T/dups")"
rows "$T/f1" "$T/f2" | LC_ALL=C sort >"$T/both"
wm2=$(grep '^# watermark ' "$T/f2" | tail -n 1 | cut -d ' ' -f 3)
mawk -F '\t' -v wm="$wm2" '$2 <= wm' "$T/whole" >"$T/closed"
expect_file "$T/both" "$T/closed"
[ "$(wc -l <"$T/closed")" -lt "$(wc -l <"$T/whole")" ] ||
    fail "no window was open at the end of run 2 ($wm2): the test proves less than it says"

# The first run held back the windows still open at its end, which --emit
# all wrote; both wrote the same closed windows.
n_final=$(rows "$T/f1" | wc -l)
n_all=$(rows "$T/a1" | wc -l)
[ "$n_final" -gt 0 ] && [ "$n_final" -lt "$n_all" ] ||
    fail "run 1: $n_final rows with --emit final, $n_all with --emit all"
rows "$T/a1" | head -n "$n_final" >"$T/a1head"
rows "$T/f1" >"$T/f1rows"
expect_file "$T/f1rows" "$T/a1head"
last_end=$(rows "$T/f1" | tail -n 1 | cut -f 2)
wm=$(grep '^# watermark ' "$T/f1" | tail -n 1 | cut -d ' ' -f 3)
[ -n "$wm" ] && [ ! "$last_end" \> "$wm" ] ||
    fail "run 1 wrote a window ending $last_end, after its last watermark $wm"
note "--emit final: $(wc -l <"$T/both") rows over two runs, each once ($n_final in the first, $n_all with --emit all)"
note "winagg-final: ok"
