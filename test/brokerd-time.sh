#!/bin/bash
# brokerd-time.sh -- offsets by time as Kafka answers them, through clients
# with their own protocol code and librdkafka: kafka-python produces batches
# of several records with chosen timestamps (out of order inside a batch), a
# raw batch carries maxTimestamp -1 as sarama sends it; offsets_for_times is
# exact on a record level (offset and timestamp), None past the newest; and
# `consume --start @MS` and kcat's -o s@MS start at the first record at or
# after MS.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
command -v kcat >/dev/null || fail "kcat is missing (scripts/bootstrap installs it)"
# python3-kafka is Debian's: a python3 of its own (pyenv...) may not see it.
py=
for p in python3 /usr/bin/python3; do
    "$p" -c 'import kafka' 2>/dev/null && { py=$p; break; }
done
[ -n "$py" ] || fail "kafka-python is missing (python3-kafka; scripts/bootstrap installs it)"

start_brokerd --partitions 1
# Recent times, so that retention keeps them: T0 and T0 + 100 hold batches of
# four (deltas 0 50 20 70), T0 + 200 the raw batch of two (deltas 0 30).
t0=$(( $(date +%s) * 1000 - 600000 ))

PYTHONPATH=$top_srcdir/test timeout 60 "$py" - "$B" "$t0" >"$T/py" 2>"$T/py.err" <<'EOF' ||
import sys, struct
import kraw
from kafka import KafkaProducer, KafkaConsumer, TopicPartition

addr, t0 = sys.argv[1], int(sys.argv[2])
p = KafkaProducer(bootstrap_servers=addr, linger_ms=5000, batch_size=1 << 20)
for base in (t0, t0 + 100):
    for i, d in enumerate((0, 50, 20, 70)):
        p.send('tm', key=b'k%d' % i, value=b'v%d' % (base + d), timestamp_ms=base + d)
    p.flush()
p.close()

# The raw batch: firstTimestamp t0 + 200, maxTimestamp -1 (sarama's).
recs = b''
for i, d in enumerate((0, 30)):
    v = b'v%d' % (t0 + 200 + d)
    body = (b'\x00' + kraw.varint(d) + kraw.varint(i) + kraw.varint(-1)
            + kraw.varint(len(v)) + v + kraw.varint(0))
    recs += kraw.varint(len(body)) + body
after_crc = (kraw.i16(0) + kraw.i32(1) + kraw.i64(t0 + 200) + kraw.i64(-1) + kraw.i64(-1)
             + kraw.i16(-1) + kraw.i32(-1) + kraw.i32(2) + recs)
body = kraw.i32(0) + kraw.i8(2) + struct.pack('>I', kraw.crc32c(after_crc)) + after_crc
kraw.produce(kraw.Conn(addr), 'tm', kraw.i64(0) + kraw.i32(len(body)) + body)

c = KafkaConsumer(bootstrap_servers=addr)
tp = TopicPartition('tm', 0)
for d in (-5, 0, 1, 21, 50, 51, 70, 71, 100, 171, 200, 201, 230, 231):
    r = c.offsets_for_times({tp: t0 + d})[tp]
    print(d, None if r is None else '%d %d' % (r.offset, r.timestamp - t0))
c.close()
EOF
    fail "kafka-python: $(cat "$T/py.err")"
cat >"$T/py.exp" <<EOF
0 8
-5 0 0
0 0 0
1 1 50
21 1 50
50 1 50
51 3 70
70 3 70
71 4 100
100 4 100
171 8 200
200 8 200
201 9 230
230 9 230
231 None
EOF
expect_file "$T/py" "$T/py.exp"

# consume and kcat start at the first record at or after the time.
timeout 20 "$top_builddir/consume" -b "$B" -t tm --start "@$((t0 + 51))" -e >"$T/c" ||
    fail "consume --start @MS"
printf 'v%s\n' $((t0 + 70)) $((t0 + 100)) $((t0 + 150)) $((t0 + 120)) $((t0 + 170)) \
    $((t0 + 200)) $((t0 + 230)) >"$T/c.exp"
expect_file "$T/c" "$T/c.exp"
timeout 20 kcat -b "$B" -C -t tm -o "s@$((t0 + 101))" -e -q -f '%o %T\n' >"$T/k" ||
    fail "kcat -o s@MS"
printf '%s\n' "5 $((t0 + 150))" "6 $((t0 + 120))" "7 $((t0 + 170))" "8 $((t0 + 200))" \
    "9 $((t0 + 230))" >"$T/k.exp"
expect_file "$T/k" "$T/k.exp"

# The same after a restart: the recomputed max timestamps are on disk.
stop "$bpid"
start_brokerd --partitions 1
timeout 20 kcat -b "$B" -C -t tm -o "s@$((t0 + 201))" -e -q -f '%o %T\n' >"$T/k2" ||
    fail "kcat -o s@MS after a restart"
expect_eq "after a restart" "$(cat "$T/k2")" "9 $((t0 + 230))"
stop "$bpid"
