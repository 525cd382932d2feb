#!/bin/sh
# kafka-python-clients.sh -- kafka-python (Debian's 2.0.2, a client with its
# own protocol code) against brokerd: a producer with keys, headers and each
# codec (none, gzip, snappy in the xerial framing, lz4, zstd at Produce v7),
# read back byte for byte by kafka-python and by consume (librdkafka); two
# KafkaConsumer members of one group started together share the first
# generation and read every record once between them.
# kafka-python 2.0.2 fetches at v4 whatever the broker, and Kafka answers a
# v4 fetch of zstd records UNSUPPORTED_COMPRESSION_TYPE: so does brokerd, and
# kafka-python reads none of them (consume reads them all).
. "$(dirname "$0")/lib.sh"
CONSUME=$top_builddir/consume
# Debian's python3-kafka and codecs are for Debian's python3, which may not
# be first on PATH.
PY=
for p in /usr/bin/python3 python3; do
    if "$p" -c 'import kafka, snappy, lz4.frame, zstandard' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || fail "kafka-python or its codecs are missing (scripts/bootstrap installs" \
    "python3-kafka python3-snappy python3-lz4 python3-zstandard)"

# The records of the test, as the scripts below build them: key k<i>,
# header h = x<i>, and a value of every byte value with a newline and a NUL.
# Every byte value, twice: a record compresses even alone in its batch, as
# it may be on a loaded machine, and kafka-python sends a batch that would
# not get smaller uncompressed (the codec checks below would then fail).
RECORDS='
N = 150
def record(i):
    return (b"k%d" % i, bytes(range(i % 7, 256)) * 2 + b"\n\0v%d" % i, [("h", b"x%d" % i)])
'

start_brokerd --partitions 3 --group-initial-delay 2s
"$PY" - "$B" >"$T/py" 2>"$T/py.err" <<EOF || fail "kafka-python: $(tail -5 "$T/py.err")"
import logging, sys
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
$RECORDS
b = sys.argv[1]

class Count(logging.Handler):
    """The fetch errors kafka-python logs (it does not know code 76)."""
    n = 0
    def emit(self, r):
        if "Unknown error fetching data" in r.getMessage():
            Count.n += 1
logging.getLogger("kafka.consumer.fetcher").addHandler(Count())

for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
    topic = "kp-" + codec
    p = KafkaProducer(bootstrap_servers=b, compression_type=None if codec == "none" else codec,
                      linger_ms=50, batch_size=1 << 20)
    for i in range(N):
        k, v, h = record(i)
        p.send(topic, key=k, value=v, headers=h, partition=i % 3)
    p.flush()
    p.close()
    c = KafkaConsumer(bootstrap_servers=b, auto_offset_reset="earliest",
                      consumer_timeout_ms=2000 if codec == "zstd" else 10000,
                      enable_auto_commit=False)
    c.assign([TopicPartition(topic, i) for i in range(3)])
    seen, differ = set(), 0
    for m in c:
        i = int(m.key[1:])
        got = (m.key, m.value, [(n, bytes(x)) for n, x in m.headers])
        if got != record(i) or m.partition != i % 3 or i in seen:
            differ += 1
        seen.add(i)
        if len(seen) == N:
            break
    c.close()
    print("%s: read=%d differing=%d" % (codec, len(seen), differ)
          + (" fetch errors: %s" % (Count.n > 0) if codec == "zstd" else ""))
EOF
cat >"$T/exp" <<'EOF'
none: read=150 differing=0
gzip: read=150 differing=0
snappy: read=150 differing=0
lz4: read=150 differing=0
zstd: read=0 differing=0 fetch errors: True
EOF
expect_file "$T/py" "$T/exp"
# Kept as sent: each codec's first batch (attributes at byte 22), snappy in
# the xerial framing (its magic where the records begin, at byte 61).
for z in none:0 gzip:1 snappy:2 lz4:3 zstd:4; do
    f=$T/data/kp-${z%:*}-0/00000000000000000000.log
    expect_eq "codec of the first kp-${z%:*} batch" "$(od -An -tu1 -j22 -N1 "$f" | tr -d ' ')" "${z#*:}"
done
expect_eq "xerial magic" "$(od -An -c -j61 -N8 "$T/data/kp-snappy-0/00000000000000000000.log" |
    tr -d ' ')" '202SNAPPY\0'

# consume (librdkafka) reads them all, zstd too: key, header, value.
for z in none gzip snappy lz4 zstd; do
    timeout 60 "$CONSUME" -b "$B" -t "kp-$z" -e --start beginning -o json >"$T/c.$z" \
        2>"$T/c.err" || fail "consume kp-$z: $(cat "$T/c.err")"
    "$PY" - "$T/c.$z" <<EOF >>"$T/consumed" || fail "consume kp-$z: bad output"
import json, sys
$RECORDS
seen, differ = set(), 0
for line in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(line)
    raw = lambda s: s.encode("utf-8", "surrogateescape")   # consume's escapes
    got = (raw(e["headers"]["key"]), raw(e["body"]), [("h", raw(e["headers"]["h"]))])
    i = int(got[0][1:])
    if got != record(i) or int(e["headers"]["partition"]) != i % 3 or i in seen:
        differ += 1
    seen.add(i)
print("consume: read=%d differing=%d" % (len(seen), differ))
EOF
done
yes 'consume: read=150 differing=0' | head -5 >"$T/exp"
expect_file "$T/consumed" "$T/exp"

# Two members of one group, started together.
"$PY" - "$B" >"$T/group" 2>"$T/group.err" <<EOF || fail "kafka-python group: $(tail -5 "$T/group.err")"
import sys, threading, time
from kafka import KafkaConsumer
$RECORDS
b = sys.argv[1]
seen, dup, differ, lock = {}, 0, 0, threading.Lock()
done = threading.Event()

def member(who):
    global dup, differ
    c = KafkaConsumer("kp-gzip", bootstrap_servers=b, group_id="kp-both",
                      auto_offset_reset="earliest", client_id="kp%d" % who)
    while not done.is_set():
        for ms in c.poll(timeout_ms=200).values():
            for m in ms:
                i = int(m.key[1:])
                with lock:
                    dup += i in seen
                    differ += (m.key, m.value, [(n, bytes(x)) for n, x in m.headers]) != record(i)
                    seen[i] = who
                    if len(seen) == N:
                        done.set()
    c.close()

ts = [threading.Thread(target=member, args=(w,)) for w in (0, 1)]
for t in ts:
    t.start()
done.wait(60)
done.set()
for t in ts:
    t.join()
print("read=%d dup=%d differing=%d members=%d" % (len(seen), dup, differ, len(set(seen.values()))))
EOF
expect_eq "kafka-python group: read, duplicates, differing, members that read" "$(cat "$T/group")" \
    "read=150 dup=0 differing=0 members=2"
grep -q 'group kp-both: generation 1 with 2 members' "$blog" ||
    fail "the two members did not share the first generation: $(grep 'group kp-both' "$blog")"
note "kafka-python-clients: ok"
