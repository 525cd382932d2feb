#!/bin/sh
# winagg-tz.sh -- winagg --tz and topk --tz against a python3 zoneinfo
# reference: a 1d window across both DST changes of Europe/Berlin in 2026
# (a 23-hour and a 25-hour day), 1h windows across the fall-back (two local
# 01:00 hours in New York, told apart by their offset), a fixed +08:00 day;
# events out of order within the lateness; topk's bounds in the zone; an
# unknown zone refused.
. "$(dirname "$0")/lib.sh"
WINAGG=$top_builddir/winagg
TOPK=$top_builddir/topk

# events FROM TO: "EPOCH KEY" every 7 minutes between two UTC times, keys
# a..c, shuffled within blocks of 20 (20 * 7m is less than the lateness, 3h).
events() {
    python3 -c '
import random, sys
from datetime import datetime, timezone
f, t = (int(datetime.fromisoformat(a).replace(tzinfo=timezone.utc).timestamp()) for a in sys.argv[1:3])
ev = [(s, "abc"[(s // 420) % 3]) for s in range(f, t, 420)]
random.seed(12)
for i in range(0, len(ev), 20):
    b = ev[i:i + 20]; random.shuffle(b)
    for s, k in b: print(s, "key=" + k)
' "$1" "$2"
}

# ref ZONE W(d|h) <events: START\tEND\tKEY\tCOUNT sorted, bounds in ZONE.
ref() {
    python3 -c '
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo
z = sys.argv[1]
if z[0] in "+-":
    h, m = int(z[1:3]), int(z[4:6])
    tz = timezone((-1 if z[0] == "-" else 1) * timedelta(hours=h, minutes=m))
else:
    tz = ZoneInfo(z)
c = Counter()
for line in sys.stdin:
    s, k = line.split()
    s = int(s); k = k[4:]
    if sys.argv[2] == "d":
        d = datetime.fromtimestamp(s, tz).date()
        a = datetime(d.year, d.month, d.day, tzinfo=tz)
        e = a.date() + timedelta(days=1)
        b = datetime(e.year, e.month, e.day, tzinfo=tz)
        c[(a.timestamp(), b.timestamp(), k)] += 1
    else:   # hours: whole UTC hours for a zone of whole-hour offsets
        a = s // 3600 * 3600
        c[(a, a + 3600, k)] += 1
iso = lambda t: datetime.fromtimestamp(t, tz).isoformat()
for (a, b, k), n in sorted(c.items()):
    print(iso(a), iso(b), k, n, sep="\t")
' "$1" "$2"
}

run() { # ZONE W REFW FROM TO
    events "$4" "$5" >"$T/ev"
    "$WINAGG" -k 'key=(.)' --time '^([0-9]+)' --time-format epoch --lateness 3h \
        -w "$2" --tz "$1" "$T/ev" >"$T/out" 2>"$T/err" || fail "winagg --tz $1 -w $2: $(cat "$T/err")"
    grep -v '^#' "$T/out" | sort >"$T/got"
    ref "$1" "$3" <"$T/ev" >"$T/want"
    [ -s "$T/want" ] || fail "empty reference"
    cmp -s "$T/got" "$T/want" || { diff "$T/want" "$T/got" | head -20 >&2; fail "--tz $1 -w $2"; }
}

# Berlin's spring day: 23 hours; its autumn day: 25
run Europe/Berlin 1d d 2026-03-27T00:00:00 2026-03-31T00:00:00
grep -q '^2026-03-29T00:00:00+01:00	2026-03-30T00:00:00+02:00	' "$T/got" || fail "no 23-hour day"
run Europe/Berlin 1d d 2026-10-23T00:00:00 2026-10-27T00:00:00
grep -q '^2026-10-25T00:00:00+02:00	2026-10-26T00:00:00+01:00	' "$T/got" || fail "no 25-hour day"
# New York's fall-back: 01:00 EDT, then 01:00 EST
run America/New_York 1h h 2026-11-01T03:00:00 2026-11-01T09:00:00
[ "$(cut -f1 "$T/got" | grep -c '^2026-11-01T01:00:00-0[45]:00$')" -ge 2 ] &&
    grep -q '^2026-11-01T01:00:00-04:00' "$T/got" && grep -q '^2026-11-01T01:00:00-05:00' "$T/got" ||
    fail "the two 01:00 hours"
# A fixed offset: days from 16:00Z
run +08:00 1d d 2026-06-01T00:00:00 2026-06-04T00:00:00
grep -q '^2026-06-02T00:00:00+08:00	2026-06-03T00:00:00+08:00	' "$T/got" || fail "+08:00 day"

# topk reads rows with offsets: the same windows, printed in UTC without
# --tz and in the zone with it.
run Europe/Berlin 1d d 2026-10-23T00:00:00 2026-10-27T00:00:00
"$TOPK" -n 3 -o tsv "$T/out" | cut -f1,2,4,5 | sort >"$T/topk"
awk -F'\t' '{ print $1 "\t" $2 "\t" $3 "\t" $4 }' "$T/got" | python3 -c '
import sys
from datetime import datetime, timezone
for l in sys.stdin:
    a, b, k, n = l.rstrip("\n").split("\t")
    u = lambda s: datetime.fromisoformat(s).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(u(a), u(b), k, n, sep="\t")' | sort >"$T/want"
cmp -s "$T/topk" "$T/want" || { diff "$T/want" "$T/topk" >&2; fail "topk in UTC"; }
"$TOPK" -n 3 -o tsv --tz Europe/Berlin "$T/out" | cut -f1,2,4,5 | sort >"$T/topk"
cmp -s "$T/topk" "$T/got" || { diff "$T/got" "$T/topk" >&2; fail "topk --tz"; }
"$TOPK" -n 1 -o json --tz Europe/Berlin "$T/out" | grep -q '"start":"2026-10-25T00:00:00+02:00","end":"2026-10-26T00:00:00+01:00"' ||
    fail "topk -o json --tz"
"$TOPK" -n 1 -o redis --tz Europe/Berlin "$T/out" | grep -q '^topk:2026-10-25T00:00:00+02:00' ||
    fail "topk -o redis --tz key"

# Refused: an unknown zone, a bad offset (usage errors, exit 2)
for z in Mars/Olympus +8 ../etc; do
    set +e
    "$WINAGG" -k x -w 1d --tz "$z" </dev/null 2>"$T/err"; rc=$?
    set -e
    [ $rc -eq 2 ] || fail "--tz $z: exit $rc"
    grep -q "winagg: --tz: .*'$z'" "$T/err" || fail "--tz $z: $(cat "$T/err")"
done
set +e
"$TOPK" --tz Nowhere/Else </dev/null 2>"$T/err"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "unknown time zone 'Nowhere/Else'" "$T/err" || fail "topk --tz Nowhere/Else"
echo "ok"
