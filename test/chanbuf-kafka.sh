#!/bin/bash
# chanbuf-kafka.sh -- the kafka sink into brokerd, read back with consume:
# every event once, with its key and headers; and a whole pipeline of
# logtail --to chanbuf --dir --sink kafka:// to consume -G.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
CHANBUF=$top_builddir/chanbuf
CONSUME=$top_builddir/consume

start_brokerd --partitions 3

# Standard input to a topic; at the end of input chanbuf waits for every
# delivery report.
seq 1 20000 | "$CHANBUF" -v --sink "kafka://$B/numbers" 2>"$T/k1.err" ||
    fail "chanbuf: $(cat "$T/k1.err")"
grep -q 'out.kafka://.*=20000 pending=0' "$T/k1.err" || fail "counters: $(cat "$T/k1.err")"
"$CONSUME" -b "$B" -t numbers -e --start beginning | sort -n >"$T/k1.got"
seq 1 20000 >"$T/k1.want"
expect_file "$T/k1.got" "$T/k1.want"

# Keys from a header, headers and timestamps kept.
for i in $(seq 1 30); do
    printf '{"ts":%d000000,"headers":{"user":"u%d","level":"info"},"body":"e%d"}\n' \
        $((1700000000000 + i)) $((i % 3)) "$i"
done | "$CHANBUF" --sink "kafka://$B/keyed?key=user&acks=1" 2>/dev/null
"$CONSUME" -b "$B" -t keyed -e --start beginning -o json >"$T/k2.json"
expect_eq "records" "$(wc -l <"$T/k2.json")" 30
for i in 1 2 30; do
    line=$(grep "\"body\":\"e$i\"" "$T/k2.json")
    case $line in *'"key":"u'$((i % 3))'"'*) ;; *) fail "e$i has no key u$((i % 3)): $line" ;; esac
    case $line in *'"level":"info"'*) ;; *) fail "e$i lost its header: $line" ;; esac
    case $line in *'"ts":'$((1700000000000 + i))'000000'*) ;; *) fail "e$i lost its ts: $line" ;; esac
done
# One key, one partition.
parts=$(grep '"key":"u1"' "$T/k2.json" | grep -o '"partition":"[0-9]*"' | sort -u | wc -l)
expect_eq "partitions of key u1" "$parts" 1

# logtail -> chanbuf (file channel) -> brokerd -> consume -G: every line once.
"$GENLOG" --seq -n 30000 -o "$T/access.log"
start_chanbuf agent -v --dir "$T/chan" --sink "kafka://$B/access"
"$LOGTAIL" --once --pos "$T/pos" --to "tcp://$C" "$T/access.log" 2>"$T/lt.err" ||
    fail "logtail: $(cat "$T/lt.err")"
stop "$cpid"
grep -q 'pending=0' "$clog" || fail "chanbuf stopped with events pending: $(cat "$clog")"
"$CONSUME" -b "$B" -t access -G g -e --start beginning >"$T/access.got"
seq_of "$T/access.got" | sort -n >"$T/seq.got"
seq 1 30000 >"$T/seq.want"
expect_file "$T/seq.got" "$T/seq.want"
note "chanbuf-kafka: ok"
