#!/bin/sh
# winagg-until.sh -- interval events (--until) and filled windows (--fill,
# --fill-key): tasks running and finished per second over a Spark event log
# generated here, against a python3 reference; partly late intervals, bad
# times, and fill over gaps in event time and in arrival time, and its bound.
. "$(dirname "$0")/lib.sh"
WINAGG=$top_builddir/winagg
TASKEND='"Event":"(SparkListenerTaskEnd)"'
LAUNCH='"Launch Time":([0-9]+)'
FINISH='"Finish Time":([0-9]+)'

# A Spark event log as Spark writes it: one JSON object a line, in the
# order things happened; eight executors run tasks back to back (so tasks
# overlap), with a pause of 30 s when none runs.
python3 - "$T/eventlog" <<'PY'
import json, random, sys
random.seed(12)
t0 = 1700000000000
ev = []
tid = 0
for ex in range(1, 9):
    t = t0 + random.randint(0, 900)
    while t < t0 + 150000:
        if t0 + 60000 <= t < t0 + 90000:
            t = t0 + 90000 + random.randint(0, 2000)
        d = random.choice([random.randint(5, 400), random.randint(400, 8000)])
        if t < t0 + 60000 and t + d >= t0 + 60000:
            d = t0 + 60000 - 1 - t
        info = {"Task ID": tid, "Index": tid, "Attempt": 0, "Launch Time": t,
                "Executor ID": str(ex), "Host": "host%d" % ex, "Locality": "PROCESS_LOCAL",
                "Speculative": False, "Getting Result Time": 0}
        start = {"Event": "SparkListenerTaskStart", "Stage ID": 0, "Stage Attempt ID": 0,
                 "Task Info": dict(info, **{"Finish Time": 0, "Failed": False})}
        end = {"Event": "SparkListenerTaskEnd", "Stage ID": 0, "Stage Attempt ID": 0,
               "Task Type": "ResultTask", "Task End Reason": {"Reason": "Success"},
               "Task Info": dict(info, **{"Finish Time": t + d, "Failed": False,
                                          "Killed": False, "Accumulables": []})}
        ev.append((t, 0, tid, start))
        ev.append((t + d, 1, tid, end))
        tid += 1
        t += d + random.randint(0, 300)
ev.sort(key=lambda e: e[:3])
with open(sys.argv[1], "w") as f:
    dump = lambda o: f.write(json.dumps(o, separators=(",", ":")) + "\n")  # as Jackson
    dump({"Event": "SparkListenerApplicationStart", "App Name": "demo", "Timestamp": t0})
    for e in ev:
        dump(e[3])
PY

# ref running|finished: rows per second, 0 in the seconds between the first
# and the last with data that have none (what --fill gives one key).
ref() {
    python3 - "$1" "$T/eventlog" <<'PY'
import json, sys, time
what, path = sys.argv[1], sys.argv[2]
n = {}
for line in open(path):
    e = json.loads(line)
    if e["Event"] != "SparkListenerTaskEnd":
        continue
    a, b = e["Task Info"]["Launch Time"] // 1000, e["Task Info"]["Finish Time"] // 1000
    for s in (range(a, b + 1) if what == "running" else [b]):
        n[s] = n.get(s, 0) + 1
iso = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))
for s in range(min(n), max(n) + 1):
    print("%s\t%s\tSparkListenerTaskEnd\t%d" % (iso(s), iso(s + 1), n.get(s, 0)))
PY
}

ref running >"$T/want.running"
"$WINAGG" -k "$TASKEND" --time "$LAUNCH" --until "$FINISH" --time-format epoch_ms \
    -w 1s --fill --lateness 10s <"$T/eventlog" >"$T/out.running" 2>"$T/err.running"
grep -v '^#' "$T/out.running" >"$T/got.running"
expect_file "$T/got.running" "$T/want.running"
[ ! -s "$T/err.running" ] || fail "tasks running: $(cat "$T/err.running")"
grep -q '	0$' "$T/got.running" || fail "no filled second in the pause"
max=$(cut -f 4 "$T/got.running" | sort -n | tail -1)
[ "$max" -gt 4 ] || fail "tasks do not overlap: at most $max running"
note "tasks running per second: $(wc -l <"$T/got.running") seconds match, up to $max"

ref finished >"$T/want.finished"
"$WINAGG" -k "$TASKEND" --time "$FINISH" --time-format epoch_ms -w 1s --fill \
    <"$T/eventlog" | grep -v '^#' >"$T/got.finished"
expect_file "$T/got.finished" "$T/want.finished"
note "tasks finished per second: $(wc -l <"$T/got.finished") seconds match"

# Without lateness a task whose first seconds are closed when it ends is
# late: its closed seconds are not counted, the others are, and it is
# written to --late-out; a task wholly in closed seconds is not counted.
task() { printf '{"Event":"SparkListenerTaskEnd","Task Info":{"Launch Time":%s,"Finish Time":%s}}\n' "$1" "$2"; }
{ task 1000 3500; task 2200 2900; task 1500 5200; } >"$T/late.log"
"$WINAGG" -k "$TASKEND" --time "$LAUNCH" --until "$FINISH" --time-format epoch_ms -w 1s \
    --late-out "$T/late.out" <"$T/late.log" >"$T/late.rows" 2>"$T/late.err"
expect_eq "partly late rows" "$(cut -s -f 1,4 "$T/late.rows" | tr '\t\n' ' ,')" \
    "1970-01-01T00:00:01Z 1,1970-01-01T00:00:02Z 1,1970-01-01T00:00:03Z 2,1970-01-01T00:00:04Z 1,1970-01-01T00:00:05Z 1,"
tail -n 2 "$T/late.log" >"$T/late.want"
expect_file "$T/late.out" "$T/late.want"
grep -q 'late=2' "$T/late.err" || fail "late intervals not counted: $(cat "$T/late.err")"

# Bad times: an end before the start, no end, more than 1000000 slices.
{ task 5000 4000; printf '{"Event":"SparkListenerTaskEnd","Task Info":{"Launch Time":1000}}\n'
  task 0 1000000000; task 7000 7000; } |
    "$WINAGG" -k "$TASKEND" --time "$LAUNCH" --until "$FINISH" --time-format epoch_ms -w 1s \
    >"$T/bad.rows" 2>"$T/bad.err"
grep -q 'badtime=3' "$T/bad.err" || fail "bad intervals: $(cat "$T/bad.err")"
expect_eq "an instant interval" "$(cut -s -f 1,4 "$T/bad.rows")" "$(printf '1970-01-01T00:00:07Z\t1')"

# --until needs a time field.
st=0
"$WINAGG" -f 1 -w 1s --until x </dev/null 2>"$T/usage.err" || st=$?
expect_eq "--until without --time REGEX" $st 2

# Fill over a gap of event time, with a named key: a key that leaves gets one
# 0 row, a quiet spell repeats the last keys, the named key is in every
# window from the first with data, nothing follows the last window with data.
printf '1 a\n1 b\n2 b\n5 a\n' |
    "$WINAGG" -f 2 --time '^([0-9]+)' --time-format epoch -w 1s --fill --fill-key z |
    grep -v '^#' | cut -f 1,3,4 | sed 's/^1970-01-01T00:00://' | tr '\t\n' ' ,' >"$T/fill"
expect_eq "filled event-time gap" "$(cat "$T/fill")" \
    "01Z a 1,01Z b 1,01Z z 0,02Z a 0,02Z b 1,02Z z 0,03Z b 0,03Z z 0,04Z b 0,04Z z 0,05Z a 1,05Z b 0,05Z z 0,"

# --emit changed: a filled 0 is written once while the key stays at 0.
printf '1 a\n2 a\n6 a\n' |
    "$WINAGG" -f 2 --time '^([0-9]+)' --time-format epoch -w 1s --fill --emit changed |
    grep -v '^#' | cut -f 1,4 | sed 's/^1970-01-01T00:00://' | tr '\t\n' ' ,' >"$T/fillc"
expect_eq "fill with --emit changed" "$(cat "$T/fillc")" "01Z 1,03Z 0,06Z 1,"

# The bound: of 199999 empty seconds, the first 100000 are filled, said once.
printf '0 a\n200000 a\n' |
    "$WINAGG" -f 2 --time '^([0-9]+)' --time-format epoch -w 1s --fill \
    >"$T/big" 2>"$T/big.err"
expect_eq "rows of a cut gap" "$(grep -vc '^#' "$T/big")" 100002
expect_eq "the last filled second" "$(grep -v '^#' "$T/big" | sed -n '100001p' | cut -f 2,4)" \
    "$(printf '1970-01-02T03:46:41Z\t0')"
expect_eq "said once" "$(grep -c 'only the first 100000' "$T/big.err")" 1

# Arrival time: while the input is idle the clock passes windows, and each
# gets its 0 rows; the windows follow each other without a hole.
( printf 'a\nb\n'; sleep 2.5; printf 'a\n'; sleep 1.5 ) |
    "$WINAGG" -f 1 -w 1s --fill | grep -v '^#' >"$T/arr"
mawk -F '\t' '
    $1 != cur { if (cur != "" && $1 != curend) hole = hole " " $1; cur = $1; curend = $2 }
    { sum[$3] += $4; if ($4 == 0) zero[$1]++ }
    END { for (w in zero) if (zero[w] == 2) both++
          printf "%s|a=%d b=%d quiet=%d\n", hole, sum["a"], sum["b"], (both >= 1) }' "$T/arr" >"$T/arr.sum"
expect_eq "arrival-time fill" "$(cat "$T/arr.sum")" "|a=2 b=1 quiet=1"
note "fill: ok"
