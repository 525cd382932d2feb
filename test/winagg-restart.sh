#!/bin/sh
# winagg-restart.sh -- a winagg restarted mid-window. With --state the rows
# of the two runs, taken as upserts (the last row of a window and key wins,
# as in Redis), are those of an uninterrupted run and of an independent
# reference (python3). Without --state, over a pipe, the second run says
# that its first windows are partial and marks their rows ("partial":true
# in json, partial=1 in frames); over a regular file it says nothing.
. "$(dirname "$0")/lib.sh"
WINAGG=$top_builddir/winagg
command -v python3 >/dev/null || fail "python3 is missing (scripts/bootstrap installs it)"

# upsert.py FILE...: the rows of json row streams, the last per window and
# key, sorted, without the partial mark.
cat >"$T/upsert.py" <<'EOF'
import json, sys
rows = {}
for fn in sys.argv[1:]:
    for line in open(fn):
        r = json.loads(line)
        if "watermark" not in r:
            rows[(r["start"], r["end"], r["key"])] = r["value"]
for k in sorted(rows):
    print(json.dumps({"start": k[0], "end": k[1], "key": k[2], "value": rows[k]},
                     separators=(",", ":")))
EOF
python3 "$top_srcdir/test/winagg-ref.py" gen "$T/ev" 6000 5 2    # json events in time order give or take 2 s
python3 "$top_srcdir/test/winagg-ref.py" "$T/ev" 10 3 json >"$T/ref"
head -n 3000 "$T/ev" >"$T/p1"
tail -n +3001 "$T/ev" >"$T/p2"
run() { "$WINAGG" -k 'Input=([^ &]*)' --time header --lateness 3s -w 30s -s 10s -o json "$@"; }
upsert() { python3 "$T/upsert.py" "$@"; }

# One run over the whole file: the reference.
run <"$T/ev" >"$T/whole" 2>"$T/err"
[ ! -s "$T/err" ] || fail "whole: $(cat "$T/err")"
upsert "$T/whole" >"$T/whole.rows"
expect_file "$T/whole.rows" "$T/ref"

# With --state, over pipes: the same rows, nothing partial, nothing said.
cat "$T/p1" | run --state "$T/st" >"$T/s1" 2>"$T/err"
cat "$T/p2" | run --state "$T/st" >"$T/s2" 2>>"$T/err"
[ ! -s "$T/err" ] || fail "with --state: $(cat "$T/err")"
upsert "$T/s1" "$T/s2" >"$T/s.rows"
expect_file "$T/s.rows" "$T/ref"
grep -q partial "$T/s1" "$T/s2" && fail "a row marked partial with --state"

# Without --state, over a pipe: the windows that began before the second
# run's first event are marked, and said once.
first=$(head -n 1 "$T/p2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ts"])')
cat "$T/p1" | run >"$T/n1" 2>/dev/null
cat "$T/p2" | run >"$T/n2" 2>"$T/err"
[ "$(grep -c 'no --state: window .* began before this run.s first event' "$T/err")" = 1 ] ||
    fail "the restart without --state did not say so once: $(cat "$T/err")"
python3 - "$T/n2" "$first" "$T/ref" <<'EOF' || fail "partial marks"
import calendar, json, sys, time
first = int(sys.argv[2])
ref = {}
for line in open(sys.argv[3]):
    r = json.loads(line)
    ref[(r["start"], r["end"], r["key"])] = r["value"]
ns = lambda s: calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")) * 10**9
marked = short = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "watermark" in r:
        continue
    k = (r["start"], r["end"], r["key"])
    want = ns(r["start"]) < first
    if r.get("partial", False) != want:
        sys.exit("row %s: partial=%s, window starts %s the first event" %
                 (k, r.get("partial"), "before" if want else "after"))
    if want:
        marked += 1
        short += r["value"] < ref[k]
    elif r["value"] != ref[k]:
        sys.exit("row %s: %s, the reference %s" % (k, r["value"], ref[k]))
if not marked or not short:
    sys.exit("%d rows marked, %d of them short of the reference" % (marked, short))
print("# %d rows marked partial, %d short of the reference" % (marked, short), file=sys.stderr)
EOF
# Taken as upserts, the unmarked restart loses counts: what the mark is for.
upsert "$T/n1" "$T/n2" >"$T/n.rows"
cmp -s "$T/n.rows" "$T/ref" && fail "the restart without --state lost nothing: the test proves less than it says"

# Frames carry the mark as a header (seen here through chanbuf's json).
cat "$T/p2" | run -o frames 2>/dev/null | "$top_builddir/chanbuf" -o json 2>/dev/null >"$T/frames.json"
grep -q '"partial":"1"' "$T/frames.json" || fail "no partial header in frames"

# A batch run over a regular file says nothing and marks nothing.
run <"$T/p2" >"$T/b2" 2>"$T/err"
[ ! -s "$T/err" ] || fail "batch over a file: $(cat "$T/err")"
grep -q partial "$T/b2" && fail "a batch run over a file marked a row partial"
note "winagg-restart: ok"
