#!/bin/bash
# consume-refill.sh -- a queue that librdkafka filled is fetched into again
# as soon as consume has taken most of it, not at librdkafka's next tick a
# second later: 20,000 records in 200 fetches that each fill the queue
# come in a few seconds (a minute or more without the wake), one partition
# as fetched and three partitions in timestamp order, every record once and
# in order.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
CONSUME=$top_builddir/consume
command -v kcat >/dev/null || fail "kcat is not installed (scripts/bootstrap installs it)"

start_brokerd --partitions 1
N=20000
# Batches of 100 records, fetched one at a time: 200 fetches, each of
# which fills a queue of 50.
P="-X batch.num.messages=100"
seq 1 $N | kcat -b "$B" -P -t one $P
"$top_builddir/brokerd" topics -b "$B" --create three --partitions 3 >/dev/null ||
    fail "cannot create topic three"
for p in 0 1 2; do      # partition p holds the n with n % 3 == p, in order
    seq 1 $N | awk -v p=$p '$1 % 3 == p' | kcat -b "$B" -P -t three -p $p $P
done

# Seconds (with a fraction) that CMD takes; its output in $T/out.
timed() {
    local t0=$EPOCHREALTIME
    "$@" >"$T/out" 2>"$T/err" || fail "$*: exit $?: $(cat "$T/err")"
    echo "$EPOCHREALTIME $t0" | awk '{ printf "%.2f", $1 - $2 }'
}

small="-X queued.min.messages=50 -X max.partition.fetch.bytes=1024"
s1=$(timed "$CONSUME" -b "$B" -t one --start beginning -e $small)
seq 1 $N >"$T/want1"
expect_file "$T/out" "$T/want1"
note "one partition as fetched: $s1 s"

# In timestamp order partition 0 goes first, and then it is at its end:
# every fetch asks for it too and waits fetch.wait.max.ms on the broker,
# which with -e is short.
s3=$(timed "$CONSUME" -b "$B" -t three --start beginning -e $small)
sort -n "$T/out" >"$T/got3"
expect_file "$T/got3" "$T/want1"
for p in 0 1 2; do      # each partition's records in their order
    awk -v p=$p '$1 % 3 == p' "$T/out" >"$T/p$p"
    sort -n "$T/p$p" | cmp -s - "$T/p$p" || fail "partition $p out of order"
done
note "three partitions in order: $s3 s"

# The wait for librdkafka's tick would be up to a second per fetch: a
# minute or more. A loaded machine gets 8 s.
awk -v a="$s1" -v b="$s3" 'BEGIN { exit !(a < 8 && b < 8) }' ||
    fail "refills wait for librdkafka's tick: $s1 s and $s3 s for $N records"
note "consume-refill: ok"
