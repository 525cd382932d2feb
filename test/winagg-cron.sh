#!/bin/sh
# winagg-cron.sh -- winagg --state run from cron over what is new each time.
# A run that read nothing new prints nothing; a run with new data prints
# only the windows it added events to or closed; over all runs each closed
# window's final row (the rows up to a run's last watermark) is printed
# once and equals an independent reference (python3), and the last row of
# every window and key, taken as an upsert, is the reference's.
. "$(dirname "$0")/lib.sh"
WINAGG=$top_builddir/winagg
command -v python3 >/dev/null || fail "python3 is missing (scripts/bootstrap installs it)"

python3 "$top_srcdir/test/winagg-ref.py" gen "$T/ev" 4000 9 0    # json events in time order
python3 "$top_srcdir/test/winagg-ref.py" "$T/ev" 10 2 json >"$T/ref"
head -n 2500 "$T/ev" >"$T/p1"
tail -n +2501 "$T/ev" >"$T/p3"
run() { "$WINAGG" -k 'Input=([^ &]*)' --time header -w 20s -s 10s -o json --state "$T/st" "$@"; }

run <"$T/p1" >"$T/r1"
run </dev/null >"$T/r2"
[ ! -s "$T/r2" ] || fail "a run with nothing new printed $(wc -l <"$T/r2") lines: $(head -n 3 "$T/r2")"
cat "$T/p3" | run >"$T/r3"      # from a pipe too: with --state nothing is partial
[ -s "$T/r1" ] && [ -s "$T/r3" ] || fail "run 1 or 3 printed nothing"

python3 - "$T/ref" "$T/p3" "$T/r1" "$T/r3" <<'EOF' || fail "cron rows"
import calendar, json, sys
ref, p3, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
S, K = 10 * 10**9, 2
want = {}
for line in open(ref):
    r = json.loads(line)
    want[(r["start"], r["end"], r["key"])] = r["value"]
# windows (by start) that the events of run 3 fall in
fresh = set()
import time
iso = lambda ns: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 10**9))
for line in open(p3):
    n = json.loads(line)["ts"] // S
    for e in range(n, n + K):
        fresh.add(iso((e - K + 1) * S))
final, last = {}, {}
for i, fn in enumerate(runs):
    rows, wm = [], ""
    for line in open(fn):
        r = json.loads(line)
        if "watermark" in r:
            wm = max(wm, r["watermark"])
            continue
        if "partial" in r:
            sys.exit("%s: a row marked partial with --state" % fn)
        rows.append(r)
    for r in rows:
        k = (r["start"], r["end"], r["key"])
        last[k] = r["value"]
        closed = r["end"] <= wm
        if closed:
            if k in final:
                sys.exit("%s: the final row of %s printed again" % (fn, k))
            final[k] = r["value"]
            if r["value"] != want[k]:
                sys.exit("%s: final %s = %s, the reference %s" % (fn, k, r["value"], want[k]))
        elif i == 1 and r["start"] not in fresh:
            sys.exit("run 3 printed the open window %s, which it added nothing to" % (k,))
if last != want:
    sys.exit("the last rows differ from the reference: %d vs %d" % (len(last), len(want)))
allwm = max(json.loads(l)["watermark"] for l in open(runs[-1]) if "watermark" in l)
closed_ref = {k for k in want if k[1] <= allwm}
if set(final) != closed_ref:
    sys.exit("final rows for %d windows and keys, the reference closes %d" % (len(final), len(closed_ref)))
print("# %d final rows, each once; %d rows in all" % (len(final), len(last)), file=sys.stderr)
EOF

# Run 3 printed windows it closed without adding to (the ones open at the
# end of run 1) and windows it added to; a fourth run with nothing new
# prints nothing again.
run </dev/null >"$T/r4"
[ ! -s "$T/r4" ] || fail "run 4 printed $(head -n 3 "$T/r4")"
note "winagg-cron: ok"
