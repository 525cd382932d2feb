#!/bin/bash
# brokerd-recovery.sh -- a torn tail (the last .log cut mid-batch, garbage
# after it) is found and cut off at start, with the byte offset in the log,
# and everything before it still reads back; retention by size deletes old
# segments and a consumer asking for offset 0 is reset to the new log start.
# (bash: process substitution; make check runs us with sh)
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
BROKERD=$top_builddir/brokerd
command -v kcat >/dev/null || fail "kcat is missing (scripts/bootstrap installs it)"

# start ARGS...: brokerd serve on a port the kernel picks (no clash with
# anything else running), stderr in $blog; sets bpid, blog and B.
nstart=0
start() {
    nstart=$((nstart + 1))
    blog=$T/broker.$nstart.log
    bg "$BROKERD" serve --listen 127.0.0.1:0 --data-dir "$T/data" --partitions 1 "$@" \
        2>"$blog"
    bpid=$!
    wait_until 30 grep -q '^brokerd: listening on' "$blog" ||
        fail "brokerd did not start: $(cat "$blog")"
    B=$(sed -n 's/^brokerd: listening on \([^,]*\),.*/\1/p' "$blog")
}
size_of() { stat -c %s "$1"; }

# ---- a torn tail ----
start
LOG=$T/data/torn-0/00000000000000000000.log
# Five produce calls of 20 messages (a batch each, most likely; the cut
# below does not depend on it).
for b in 1 2 3 4 5; do
    [ $b -lt 5 ] || good=$(size_of "$LOG")
    seq $((b * 20 - 19)) $((b * 20)) | sed 's/^/torn message /' |
        kcat -b "$B" -P -t torn -X acks=all -X linger.ms=100 || fail "produce batch $b"
done
stop "$bpid"
all=$(size_of "$LOG")
[ "$all" -gt "$good" ] || fail "the fifth batch is not in $LOG"
# Cut the first batch of the fifth call after its 61-byte header, inside
# its records, and leave garbage after it, as a crash could.
[ $((all - good)) -gt 100 ] || fail "the fifth call wrote only $((all - good)) bytes"
truncate -s $(( good + 80 )) "$LOG"
head -c 300 /dev/urandom >>"$LOG"
torn=$(( $(size_of "$LOG") - good ))

start
grep -q "00000000000000000000.log: truncated $torn bytes at byte offset $good" "$blog" ||
    fail "no truncation in the log (expected $torn bytes at $good): $(cat "$blog")"
expect_eq "size after recovery" "$(size_of "$LOG")" "$good"
seq 1 80 | sed 's/^/torn message /' >"$T/exp"
timeout 30 kcat -b "$B" -C -t torn -e -q -f '%s\n' >"$T/out" || fail "read after recovery"
expect_file "$T/out" "$T/exp"
# Produce and fetch go on from offset 80.
seq 81 90 | sed 's/^/torn message /' | tee -a "$T/exp" |
    kcat -b "$B" -P -t torn -X acks=all || fail "produce after recovery"
timeout 30 kcat -b "$B" -C -t torn -e -q -f '%s\n' >"$T/out" || fail "read after produce"
expect_file "$T/out" "$T/exp"
o=$(timeout 30 kcat -b "$B" -C -t torn -o 80 -c 1 -e -q -f '%o %s')
expect_eq "offset 80" "$o" "80 torn message 81"
stop "$bpid"

# ---- retention by size ----
# 1k segments, keep about 4k: 2000 messages in batches of 5 make some 80
# segments, of which all but the last few must go. The broker's maintenance
# runs every ten seconds, hence the generous wait.
rm -rf "$T/data"
start --segment-bytes 1KiB --retention-bytes 4KiB
seq 1 2000 | sed 's/$/ retained or not/' |
    kcat -b "$B" -P -t r -X acks=all -X batch.num.messages=5 -X linger.ms=0 ||
    fail "produce to r"
nsegs() { ls "$T/data/r-0" | grep -c '\.log$'; }
# Wait for the state retention leaves alone (as Kafka: the oldest segment
# goes only if what remains is still >= 4k), so that no deletion races the
# reads below. Retention may have begun while the producer ran: the oldest
# segment's name, checked after, is what proves segments rolled and went.
retained() {
    stat -c '%n %s' "$T"/data/r-0/*.log | sort |
        awk '{ size[NR] = $2; total += $2 } END { exit !(total - size[1] < 4096) }'
}
wait_until 60 retained || fail "retention left $(nsegs) segments: $(ls -l "$T/data/r-0")"
first=$(ls "$T/data/r-0" | grep '\.log$' | sort | head -n 1)
start_off=$(( 10#${first%.log} ))
[ "$start_off" -gt 0 ] || fail "log start is still 0"
rc=0
timeout 30 kcat -b "$B" -C -t r -o 0 -e -X auto.offset.reset=earliest \
    -f '%o %s\n' >"$T/out" 2>"$T/err" || rc=$?
expect_eq "kcat from offset 0 (rc; $(cat "$T/err"))" "$rc" 0
! grep -qi 'error' "$T/err" || fail "kcat from offset 0: $(cat "$T/err")"
# From the new log start to the end, each message where it was written.
expect_eq "first offset read" "$(head -n 1 "$T/out" | cut -d' ' -f1)" "$start_off"
awk -v s="$start_off" '$1 != s + NR - 1 || $2 != $1 + 1 { print; bad = 1; exit }
    END { if (!bad && $2 != 2000) { print "ends at " $0; bad = 1 }; exit bad }' \
    "$T/out" >"$T/why" || fail "reading r from its start: $(cat "$T/why")"
stop "$bpid"
! grep -q Sanitizer "$T"/broker.*.log || fail "$(cat "$T"/broker.*.log)"
note "brokerd-recovery: ok"
