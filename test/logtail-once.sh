#!/bin/sh
# logtail-once.sh -- the cron mode: --once reads to the current end, commits,
# exits 0; the next run prints only what was appended in between.
. "$(dirname "$0")/lib.sh"

seq 1 100 >"$T/a.log"
seq 1 5 | sed 's/^/b/' >"$T/b.log"
"$LOGTAIL" --once --pos "$T/pos" "$T/a.log" "$T/b.log" >"$T/run1"
cat "$T/a.log" "$T/b.log" >"$T/exp1"
expect_file "$T/run1" "$T/exp1"

seq 101 150 >>"$T/a.log"
printf 'b6\nb7-partial' >>"$T/b.log"
"$LOGTAIL" --once --pos "$T/pos" "$T/a.log" "$T/b.log" >"$T/run2"
{ seq 101 150; echo b6; } >"$T/exp2"
expect_file "$T/run2" "$T/exp2"

# The partial line is held back until its newline has been written.
printf ' done\n' >>"$T/b.log"
expect_eq "third run" "$("$LOGTAIL" --once --pos "$T/pos" "$T/a.log" "$T/b.log")" "b7-partial done"
expect_eq "nothing new" "$("$LOGTAIL" --once --pos "$T/pos" "$T/a.log" "$T/b.log" | wc -c)" 0

# --start end skips what is there; without --pos the default is the end too.
expect_eq "--start end" "$("$LOGTAIL" --once --start end "$T/a.log" | wc -c)" 0
expect_eq "default start" "$("$LOGTAIL" --once "$T/a.log" | wc -c)" 0
expect_eq "--start beginning" "$("$LOGTAIL" --once --start beginning "$T/a.log" | wc -l)" 150

# A file that grows while --once reads stops at the size it had.
"$GENLOG" --seq -n 200000 -o "$T/g.log"
( "$GENLOG" --seq -n 100000 >>"$T/g.log" ) &
"$LOGTAIL" --once --start beginning "$T/g.log" >"$T/g.out"
wait
n=$(wc -l <"$T/g.out")
[ "$n" -ge 200000 ] && [ "$n" -le 300000 ] || fail "--once on a growing file read $n lines"
note "once: ok"
