#!/bin/bash
# brokerd-durability.sh -- with --flush always, kill -9 brokerd while three
# producers (one per partition, acks=all) are writing: after a restart every
# acknowledged message is there, readable, in the order it was acknowledged.
# A message is acknowledged when the kcat that produced it alone exits 0 --
# slower than delivery reports, but certain. One still in flight at the kill
# may or may not be there; nothing else may.
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
    bg "$BROKERD" serve --listen 127.0.0.1:0 --data-dir "$T/data" --partitions 3 \
        --segment-bytes 2KiB --flush always 2>"$blog"
    bpid=$!
    wait_until 30 grep -q '^brokerd: listening on' "$blog" ||
        fail "brokerd did not start: $(cat "$blog")"
    B=$(sed -n 's/^brokerd: listening on \([^,]*\),.*/\1/p' "$blog")
}
start
"$BROKERD" topics -b "$B" --create d --partitions 3 || fail "create topic d"

# producer P: messages "P-SEQ ..." to partition P, one kcat each, until told
# to stop; SEQ goes to $T/acked.P once its kcat has exited 0.
producer() {
    i=1
    : >"$T/acked.$1"
    while [ ! -e "$T/stop" ]; do
        if printf '%s-%d %s\n' "$1" "$i" "padding to make the segments roll" |
            timeout 30 kcat -b "$B" -P -t d -p "$1" -X acks=all \
                -X message.timeout.ms=5000 -X log_level=0 2>/dev/null; then
            echo "$i" >>"$T/acked.$1"
        fi
        i=$((i + 1))
    done
}
for p in 0 1 2; do bg producer $p; eval "ppid$p=\$!"; done

# Kill at a different point each run.
want=$((25 + RANDOM % 25))
acked_enough() {
    for p in 0 1 2; do lines_at_least "$T/acked.$p" "$want" || return 1; done
}
wait_until 180 acked_enough ||
    fail "producers too slow: $(wc -l "$T"/acked.* | tr '\n' ' ')"
kill -9 "$bpid"
wait "$bpid" 2>/dev/null || true
touch "$T/stop"
for p in 0 1 2; do eval "wait \$ppid$p" || true; done
note "acked before the kill: $(cat "$T"/acked.* | wc -l)"
ls "$T"/data/d-0/*.log | wc -l | grep -qvx 1 || fail "d-0 never rolled a segment"

start
timeout 60 kcat -b "$B" -C -t d -e -q -f '%p %o %s\n' >"$T/out" 2>"$T/err" ||
    fail "read back: $(cat "$T/err")"
for p in 0 1 2; do
    # What partition p holds, in offset order: offsets consecutive from 0,
    # sequence numbers strictly increasing.
    awk -v p=$p '$1 == p' "$T/out" | sort -n -k2,2 >"$T/got.$p"
    awk -v p=$p '
        $2 != NR - 1 { print "offset " $2 " at line " NR; bad = 1; exit }
        { split($3, a, "-"); s = a[2] + 0
          if (a[1] != p) { print "partition " a[1] " in " p; bad = 1; exit }
          if (s <= last) { print "seq " s " after " last; bad = 1; exit }
          last = s }
        END { exit bad }' "$T/got.$p" >"$T/why" || fail "partition $p: $(cat "$T/why")"
    awk '{ split($3, a, "-"); print a[2] }' "$T/got.$p" >"$T/seqs.$p"
    # Every acknowledged one is there.
    missing=$(sort "$T/acked.$p" | comm -23 - <(sort "$T/seqs.$p") | head -5 | tr '\n' ' ')
    [ -z "$missing" ] || fail "partition $p lost acknowledged messages: $missing"
    # And nothing that was never sent: beyond the last acked, at most the one in flight.
    last=$(tail -n 1 "$T/acked.$p")
    extra=$(awk -v l="$last" '$1 > l' "$T/seqs.$p" | wc -l)
    [ "$extra" -le 1 ] || fail "partition $p: $extra messages after the last acknowledged"
done

# The restarted broker goes on appending after what it recovered.
echo "after the restart" | kcat -b "$B" -P -t d -p 0 -X acks=all || fail "produce after restart"
n=$(wc -l <"$T/got.0")
got=$(timeout 30 kcat -b "$B" -C -t d -p 0 -o "$n" -c 1 -e -q -f '%o %s')
expect_eq "message after the restart" "$got" "$n after the restart"
stop "$bpid"
! grep -q Sanitizer "$T"/broker.*.log || fail "$(cat "$T"/broker.*.log)"
note "brokerd-durability: ok"
