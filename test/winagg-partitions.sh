#!/bin/sh
# winagg-partitions.sh -- a watermark per input partition: json events of 6
# partitions, each in time order but far apart from each other (as a
# consumer catching up hands them over), give 0 late events and the counts
# of an independent reference (python3); the same events without their
# partition header are late by the thousand; a quiet partition holds the
# windows of a live input back only while it is quiet.
. "$(dirname "$0")/lib.sh"
WINAGG=$top_builddir/winagg
command -v python3 >/dev/null || fail "python3 is missing (scripts/bootstrap installs it)"

# gen.py OUT [nopart]: the events (json); the reference rows: count per
# key over 20 s windows sliding every 10 s (winagg-ref.py).
cat >"$T/gen.py" <<'EOF'
import json, random, sys
random.seed(12)
out = sys.argv[1]
nopart = len(sys.argv) > 2
T0 = 1700000000
words = ["phone", "shoes", "tea", "book", "lamp", "cup", "pen"]
parts = []
for p in range(6):
    t, ev = T0 + random.random(), []
    for i in range(1500):
        t += random.random() * 0.8
        ev.append((t, random.choice(words), p))
    parts.append(ev)
# The first event of every partition first; then each partition p runs
# 15*p seconds ahead of partition 0: up to 75 s of disorder between them.
order = [ev[0] for ev in parts]
rest = [(e[0] - 15 * e[2], e) for ev in parts for e in ev[1:]]
order += [e for _, e in sorted(rest)]
with open(out, "w") as f:
    for t, w, p in order:
        h = {} if nopart else {"topic": "access", "partition": str(p)}
        f.write(json.dumps({"ts": int(t * 1e9), "headers": h, "body": "GET /s?Input=" + w}) + "\n")
EOF
python3 "$T/gen.py" "$T/ev"
python3 "$T/gen.py" "$T/ev-nopart" nopart
python3 "$top_srcdir/test/winagg-ref.py" "$T/ev" 10 2 tsv >"$T/ref"
run() { "$WINAGG" -k 'Input=([^ &]*)' --time header -w 20s -s 10s "$@"; }

# Through a pipe, as from consume: 0 late, the reference's rows.
# (A pipe and no --state: the first windows are said to be partial.)
cat "$T/ev" | run >"$T/out" 2>"$T/err"
grep -v '^winagg: no --state: window ' "$T/err" >"$T/err.other" || true
[ ! -s "$T/err.other" ] || fail "winagg said: $(cat "$T/err")"
grep -v '^#' "$T/out" | LC_ALL=C sort >"$T/rows"
expect_file "$T/rows" "$T/ref"
# The watermark records still come as windows close, not all at the end.
[ "$(grep -c '^# watermark' "$T/out")" -gt 50 ] || fail "few watermark records: $(grep -c '^# watermark' "$T/out")"

# The same events as one stream: the disorder between partitions is late.
run <"$T/ev-nopart" >/dev/null 2>"$T/err2"
late=$(sed -n 's/.* late=\([0-9]*\).*/\1/p' "$T/err2")
[ -n "$late" ] && [ "$late" -gt 1000 ] || fail "one stream: late=$late, expected thousands ($(cat "$T/err2"))"
note "6 partitions: 0 late; as one stream: $late late"

# Live: partition 1 stops at ..12 while partition 0 goes on to ..50
# (1700000000 is 22:13:20). The window ending at ..10 closes at once; the
# one ending at ..20 (b) waits until partition 1 has been quiet for 8 s
# (its time plus the wall time since its last event), and comes out
# before the end of the input; the one ending at ..40 (c) waits longer.
ev() { printf '{"ts":%s000000000,"headers":{"topic":"t","partition":"%s"},"body":"Input=%s"}\n' "$1" "$2" "$3"; }
mkfifo "$T/fifo"
bg sh -c "exec '$WINAGG' -k 'Input=([^ &]*)' --time header -w 10s <'$T/fifo' >'$T/live' 2>'$T/live.err'"
wpid=$!
exec 3>"$T/fifo"
ev 1700000001 0 a >&3
ev 1700000012 1 b >&3
ev 1700000035 0 c >&3
ev 1700000050 0 d >&3
wait_until 10 grep -q '22:13:30Z	a	1' "$T/live" || fail "the first window did not close: $(cat "$T/live")"
sleep 1
grep -q '	b	' "$T/live" && fail "the window of b closed while partition 1 was behind it"
wait_until 20 grep -q '22:13:30Z	2023-11-14T22:13:40Z	b	1' "$T/live" ||
    fail "the quiet partition held the window back: $(cat "$T/live")"
grep -q '	c	' "$T/live" && fail "the window of c closed early: $(cat "$T/live")"
exec 3>&-
wait "$wpid" || fail "winagg failed: $(cat "$T/live.err")"
grep -q '	d	1$' "$T/live" || fail "the end of the input did not flush: $(cat "$T/live")"

# Beyond 65536 partitions the rest are one stream, said once.
python3 -c '
import json
for p in range(65540):
    print(json.dumps({"ts": (1700000000 + p % 7) * 10**9, "headers": {"partition": str(p)}, "body": "Input=x"}))
' >"$T/many"
run <"$T/many" >"$T/many.out" 2>"$T/many.err"
[ "$(grep -c 'more than 65536 partitions' "$T/many.err")" = 1 ] ||
    fail "65540 partitions: $(cat "$T/many.err")"
[ "$(grep -v '^#' "$T/many.out" | mawk -F '\t' '{ s += $4 } END { print s }')" = $((65540 * 2)) ] ||
    fail "65540 partitions: the counts are not all there"
note "winagg-partitions: ok"
