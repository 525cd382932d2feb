#!/bin/bash
# consume.sh -- consume against brokerd: the cron mode twice with -G and -e
# (the second run prints only what came in between), two group members
# splitting the partitions with every message once, SIGTERM and restart with
# nothing lost or repeated, keys and headers through json, and the errors.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
BROKERD=$top_builddir/brokerd
CONSUME=$top_builddir/consume
command -v kcat >/dev/null || fail "kcat is not installed (scripts/bootstrap installs it)"

start_brokerd --partitions 3

# Cron mode: two runs, the second prints exactly what was produced between.
seq 1 100 | kcat -b "$B" -P -t cron
"$CONSUME" -b "$B" -t cron -G g1 -e --start beginning | sort -n >"$T/run1"
seq 1 100 >"$T/want1"
expect_file "$T/run1" "$T/want1"
seq 101 150 | kcat -b "$B" -P -t cron
"$CONSUME" -b "$B" -t cron -G g1 -e | sort -n >"$T/run2"
seq 101 150 >"$T/want2"
expect_file "$T/run2" "$T/want2"
expect_eq "a third run" "$("$CONSUME" -b "$B" -t cron -G g1 -e | wc -l)" 0

# A partition that was empty in the first run still resumes where it was:
# its end is committed, so the second run does not start it at "end".
seq 1 10 | kcat -b "$B" -P -t sparse -p 0
"$CONSUME" -b "$B" -t sparse -G g4 -e --start beginning >/dev/null
seq 11 15 | kcat -b "$B" -P -t sparse -p 2
expect_eq "an empty partition's later records" "$("$CONSUME" -b "$B" -t sparse -G g4 -e | tr '\n' ' ')" \
    "11 12 13 14 15 "

# Two members split the partitions and together print every message once.
seq 1 3 | kcat -b "$B" -P -t split -K: -X partitioner=murmur2_random   # creates it
bg "$CONSUME" -b "$B" -t split -G g2 --start end >"$T/m1" 2>"$T/m1.err"
m1=$!
bg "$CONSUME" -b "$B" -t split -G g2 --start end >"$T/m2" 2>"$T/m2.err"
m2=$!
# Produce once both members hold partitions and together hold all three
# (SIGUSR1 makes each print its assignment).
assigned() {
    a=$(grep -o 'assigned=[0-9,]*' "$T/m1.err" | tail -n 1 | cut -d= -f2)
    b=$(grep -o 'assigned=[0-9,]*' "$T/m2.err" | tail -n 1 | cut -d= -f2)
    [ -n "$a" ] && [ -n "$b" ] && [ "$(echo "$a,$b" | tr , '\n' | sort -u | wc -l)" = 3 ]
}
sleep 1    # both have their signal handlers before the first SIGUSR1
for i in $(seq 1 80); do
    kill -USR1 "$m1" "$m2"
    sleep 0.5
    assigned && break
done
assigned || fail "the members were not both assigned: $(tail -n 1 "$T/m1.err" "$T/m2.err")"
seq 1001 1300 | sed 's/.*/k&:&/' | kcat -b "$B" -P -t split -K:   # keyed: spread over partitions
wait_until 30 bash -c "[ \$(cat '$T/m1' '$T/m2' | wc -l) -ge 300 ]" ||
    fail "members printed $(cat "$T/m1" "$T/m2" | wc -l) of 300"
sleep 0.5
stop "$m1"
stop "$m2"
cat "$T/m1" "$T/m2" | sort -n >"$T/both"
seq 1001 1300 >"$T/want3"
expect_file "$T/both" "$T/want3"
[ -s "$T/m1" ] && [ -s "$T/m2" ] || fail "one member got nothing: $(wc -l "$T/m1" "$T/m2")"

# SIGTERM in the middle, then a restart: no loss, no repeat.
seq 1 500 | kcat -b "$B" -P -t stop
bg "$CONSUME" -b "$B" -t stop -G g3 --start beginning >"$T/s1"
s1=$!
wait_lines "$T/s1" 500 20
stop "$s1"
seq 501 800 | kcat -b "$B" -P -t stop
"$CONSUME" -b "$B" -t stop -G g3 -e >"$T/s2"
cat "$T/s1" "$T/s2" | sort -n >"$T/s12"
seq 1 800 >"$T/want4"
expect_file "$T/s12" "$T/want4"

# Keys and headers through json and frames.
printf 'k1:v1\n' | kcat -b "$B" -P -t hdr -K: -H a=1 -H b=two
"$CONSUME" -b "$B" -t hdr -e --start beginning -o json >"$T/j"
grep -q '"topic":"hdr","partition":"[0-9]","offset":"0","key":"k1","ts":"[0-9]*","a":"1","b":"two"},"body":"v1"' "$T/j" ||
    fail "json: $(cat "$T/j")"
"$CONSUME" -b "$B" -t hdr -e --start beginning -o frames | head -c 4 | od -An -c | grep -q 'R   N   F' ||
    fail "frames output has no stream header"
expect_eq "-c 1" "$("$CONSUME" -b "$B" -t cron --start beginning -c 1 | wc -l)" 1
expect_eq "--start -2 -p 0" "$("$CONSUME" -b "$B" -t cron -p 0 --start -2 -e | wc -l)" 2

# Errors: exit 1 with a message, within the timeout; usage errors exit 2.
set +e
"$CONSUME" -b "$B" -t nosuch -e --timeout 3s 2>"$T/e1"; st1=$?
"$CONSUME" -b 127.0.0.1:1 -t cron -e --timeout 1s 2>"$T/e2"; st2=$?
"$CONSUME" -b "$B" -t cron -p 7 -e 2>"$T/e3"; st3=$?
"$CONSUME" -t cron 2>/dev/null; st4=$?
"$CONSUME" -b "$B" -t cron -G g -p 0 2>/dev/null; st5=$?
"$CONSUME" -b "$B" -t cron --start middle 2>/dev/null; st6=$?
set -e
# (a topic that does not exist yet is waited for: with -e for --timeout)
expect_eq "unknown topic" "$st1:$(cat "$T/e1")" "1:consume: waiting for topic 'nosuch' on $B to exist
consume: unknown topic 'nosuch' on $B: it did not appear within 3000 ms"
expect_eq "unreachable status" $st2 1
grep -q "^consume: cannot reach 127.0.0.1:1 within 1000 ms" "$T/e2" || fail "message: $(cat "$T/e2")"
expect_eq "no such partition" "$st3" 1
grep -q "has no partition 7" "$T/e3" || fail "message: $(cat "$T/e3")"
expect_eq "usage errors" "$st4 $st5 $st6" "2 2 2"
note "consume: ok"
