#!/bin/bash
# brokerd-group.sh -- two kcat -G members split the partitions; when one
# leaves the other takes them all; committed offsets survive a restart.
# (bash: the malformed requests go through /dev/tcp; make check runs us with sh)
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
BROKERD=$top_builddir/brokerd
command -v kcat >/dev/null || fail "kcat is missing (scripts/bootstrap installs it)"

start() { start_brokerd --partitions 4; }
start
seq 1 100 | kcat -b "$B" -P -t g -K:
bg kcat -u -b "$B" -G grp -o beginning -f 'A %p %s\n' g >"$T/a" 2>"$T/a.err"; apid=$!
sleep 1
bg kcat -u -b "$B" -G grp -o beginning -f 'B %p %s\n' g >"$T/b" 2>"$T/b.err"; bpid2=$!
# owned FILE: how many partitions the member's latest assignment holds.
owned() { grep 'assigned:' "$1" | tail -n 1 | grep -o 'g \[' | wc -l; }
split_evenly() { [ "$(owned "$T/a.err")+$(owned "$T/b.err")" = "2+2" ]; }
wait_until 30 split_evenly ||
    fail "partitions not split 2+2: A $(owned "$T/a.err"), B $(owned "$T/b.err"): $(tail -3 "$T/a.err" "$T/b.err")"
kill -TERM "$bpid2"; wait "$bpid2" 2>/dev/null || true
# (kcat prints "Reached end" lines after its assignment: look at the latest
# assignment, wherever it is)
wait_until 30 sh -c "grep 'assigned:' '$T/a.err' | tail -n 1 | grep -q 'assigned: g \[0\], g \[1\], g \[2\], g \[3\]'" ||
    fail "A did not take all: $(grep 'assigned:' "$T/a.err" | tail -n 2)"
seq 101 110 | kcat -b "$B" -P -t g
# Every message at least once (a rebalance may hand a partition over before
# its offsets were committed: at-least-once allows repeats).
wait_until 30 sh -c "cat '$T/a' '$T/b' | cut -d' ' -f3 | sort -u | wc -l | grep -qx 110" ||
    fail "not all consumed: $(cat "$T/a" "$T/b" | cut -d' ' -f3 | sort -u | wc -l) of 110"
sleep 6     # auto commit interval is 5s
kill -TERM "$apid"; wait "$apid" 2>/dev/null || true
stop "$bpid"
start
seq 111 115 | kcat -b "$B" -P -t g
timeout 10 kcat -b "$B" -G grp -f '%s\n' g >"$T/c" 2>/dev/null || true
sort -n "$T/c" | tr '\n' ' ' | grep -qx '111 112 113 114 115 ' || fail "resume: $(cat "$T/c")"
stop "$bpid"

# Kafka's initial rebalance delay (3 s by default): two members started
# together share the first generation, and each message is read once, even
# with -o beginning; with --group-initial-delay 0 the first member gets a
# generation of its own and reads everything before the second comes.
start_brokerd --partitions 4
seq 1 200 | kcat -b "$B" -P -t d -K:
bg kcat -u -b "$B" -G first -o beginning -f '%s\n' d >"$T/d1" 2>/dev/null; p1=$!
sleep 0.5
bg kcat -u -b "$B" -G first -o beginning -f '%s\n' d >"$T/d2" 2>/dev/null; p2=$!
wait_until 20 grep -q 'group first: generation 1 with 2 members' "$blog" ||
    fail "the first generation does not hold both members: $(grep 'group first' "$blog")"
wait_until 20 sh -c "[ \$(cat '$T/d1' '$T/d2' | wc -l) -ge 200 ]" ||
    fail "read $(cat "$T/d1" "$T/d2" | wc -l) of 200"
sleep 1
expect_eq "messages read by the two members" "$(cat "$T/d1" "$T/d2" | sort -n | uniq | wc -l) $(cat "$T/d1" "$T/d2" | wc -l)" "200 200"
kill -TERM "$p1" "$p2"; wait "$p1" "$p2" 2>/dev/null || true
stop "$bpid"
start_brokerd --partitions 4 --group-initial-delay 0
bg kcat -u -b "$B" -G second -o beginning -f '%s\n' d >/dev/null 2>&1; p1=$!
wait_until 20 grep -q 'group second: generation 1 with 1 member,' "$blog" ||
    fail "without the delay, the first member's generation: $(grep 'group second' "$blog")"
kill -TERM "$p1"; wait "$p1" 2>/dev/null || true
stop "$bpid"
