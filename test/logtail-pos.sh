#!/bin/sh
# logtail-pos.sh -- restarts with --pos: after SIGTERM nothing lost or
# repeated; after kill -9 nothing lost, only lines since the last commit repeated;
# a reused inode is not mistaken for the old file.
. "$(dirname "$0")/lib.sh"

seq 1 1000 | sed 's/^/line /' >"$T/a.log"

# Clean stop: the two runs together print every line exactly once.
bg "$LOGTAIL" --pos "$T/pos" "$T/a.log" >"$T/run1"
pid=$!
wait_lines "$T/run1" 1000
stop "$pid"
seq 1001 1500 | sed 's/^/line /' >>"$T/a.log"
bg "$LOGTAIL" --pos "$T/pos" "$T/a.log" >"$T/run2"
pid=$!
wait_lines "$T/run2" 500
seq 1501 2000 | sed 's/^/line /' >>"$T/a.log"
wait_lines "$T/run2" 1000
stop "$pid"
cat "$T/run1" "$T/run2" >"$T/both"
expect_file "$T/both" "$T/a.log"
head -n 1 "$T/pos" | grep -qx 'runnel-pos 1' || fail "position file header"

# kill -9 while a writer appends: restart, repeatedly; every line comes out
# at least once, in order, and a repeat only re-reads a stretch just read.
: >"$T/b.log"
"$GENLOG" --seq -n 30000 -r 10000 -o "$T/b.log" &
gpid=$!
PIDS="$PIDS $gpid"
for i in 1 2 3 4; do
    bg "$LOGTAIL" --pos "$T/posb" --start beginning "$T/b.log" >"$T/k$i"
    pid=$!
    sleep 1.3
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
done
wait "$gpid"
bg "$LOGTAIL" --pos "$T/posb" "$T/b.log" >"$T/k5"
pid=$!
caught_up() { [ "$(awk 'NR == 2 { print $5 }' "$T/posb")" = "$(stat -c %s "$T/b.log")" ]; }
wait_until 20 caught_up || fail "the last run did not commit the end of the file"
stop "$pid"
cat "$T"/k1 "$T"/k2 "$T"/k3 "$T"/k4 "$T"/k5 | seq_of /dev/stdin >"$T/kseq"
seq 1 30000 >"$T/expect"
sort -n -u "$T/kseq" >"$T/kuniq"
expect_file "$T/kuniq" "$T/expect"
# Within each run the lines are consecutive; a run starts at or before where
# the one before it ended (a repeat), never after (a loss).
prev=0
for i in 1 2 3 4 5; do
    seq_of "$T/k$i" >"$T/ks$i"
    [ -s "$T/ks$i" ] || continue
    first=$(head -n 1 "$T/ks$i")
    awk 'NR > 1 && $1 != p + 1 { exit 1 } { p = $1 }' "$T/ks$i" ||
        fail "run $i is not consecutive"
    [ "$first" -le $((prev + 1)) ] || fail "run $i starts at $first after $prev: lost lines"
    prev=$(tail -n 1 "$T/ks$i")
done
dups=$(($(wc -l <"$T/kseq") - 30000))
note "kill -9: $dups lines repeated over 4 kills"

# A position for an inode that is reused by a new file is not applied to it.
printf 'old content that is long enough\n' >"$T/c.log"
"$LOGTAIL" --once --pos "$T/posc" "$T/c.log" >/dev/null
ino=$(stat -c %i "$T/c.log")
awk -v ino="$ino" 'NR > 1 && $2 == ino { found = 1 } END { exit !found }' "$T/posc" ||
    fail "position file has no entry for inode $ino"
# Same inode, other bytes: rewrite in place keeps the inode.
printf 'NEW file, longer than the old one was\nsecond line\n' >"$T/c.log"
"$LOGTAIL" --once --pos "$T/posc" "$T/c.log" >"$T/c.out"
expect_file "$T/c.out" "$T/c.log"

# A malformed position file is an error naming it and the line.
printf 'runnel-pos 1\nnot an entry\n' >"$T/bad.pos"
if "$LOGTAIL" --once --pos "$T/bad.pos" "$T/c.log" >/dev/null 2>"$T/err"; then
    fail "a malformed position file was accepted"
fi
grep -q "bad.pos: line 2" "$T/err" || fail "message: $(cat "$T/err")"
note "pos: ok"
