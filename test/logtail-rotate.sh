#!/bin/sh
# logtail-rotate.sh -- rotation while a writer appends fast: rename, delete
# and re-create, copytruncate, and many rotations in a row under a glob.
. "$(dirname "$0")/lib.sh"

N=20000

# follow_while_writing NAME MODE EVERY PATTERN: logtail follows PATTERN while
# genlog writes N numbered lines into $T/NAME.log, rotating every EVERY lines.
follow_while_writing() {
    name=$1 mode=$2 every=$3 pattern=$4
    : >"$T/$name.log"
    bg "$LOGTAIL" --start beginning "$pattern" >"$T/$name.out"
    lpid=$!
    sleep 0.3
    "$GENLOG" --seq -n $N -r 20000 -o "$T/$name.log" --rotate-every "$every" \
        --rotate-mode "$mode" --keep 1000
}

# Rename rotation: every line once, in order.
follow_while_writing ren rename 2000 "$T/ren.log"
wait_lines "$T/ren.out" $N 30
sleep 0.3
stop "$lpid"
seq 1 $N >"$T/expect"
seq_of "$T/ren.out" >"$T/ren.seq"
expect_file "$T/ren.seq" "$T/expect"

# Delete and re-create under the same name.
follow_while_writing rec recreate 2000 "$T/rec.log"
wait_lines "$T/rec.out" $N 30
sleep 0.3
stop "$lpid"
seq_of "$T/rec.out" >"$T/rec.seq"
expect_file "$T/rec.seq" "$T/expect"

# Many rotations in a row (every 100 lines): the glob also matches the
# rotated names, so files are tracked by identity as they move: every line
# exactly once.
follow_while_writing many rename 100 "$T/many.log*"
wait_lines "$T/many.out" $N 30
sleep 0.5
stop "$lpid"
seq_of "$T/many.out" | sort -n >"$T/many.seq"
expect_file "$T/many.seq" "$T/expect"

# copytruncate: a line is read at most once and in order; whatever logtail had
# not read when the file was truncated is in the copies; nothing else is lost.
follow_while_writing ct copytruncate 2000 "$T/ct.log"
wait_until 30 sh -c "tail -n 1 '$T/ct.out' | grep -q 'SEQ 00000$N'" || true
sleep 0.3
stop "$lpid"
seq_of "$T/ct.out" >"$T/ct.seq"
sort -n -u "$T/ct.seq" | cmp -s - "$T/ct.seq" || fail "copytruncate: repeated or reordered lines"
cat "$T"/ct.log.* | seq_of /dev/stdin >"$T/ct.copies"
sort -n -u "$T/ct.seq" "$T/ct.copies" >"$T/ct.all"
expect_file "$T/ct.all" "$T/expect"
got=$(wc -l <"$T/ct.seq")
[ "$got" -ge $((N / 2)) ] || fail "copytruncate: only $got of $N lines followed"
note "rotate: ok (copytruncate followed $got of $N)"
