#!/bin/sh
# topk-ss.sh -- the -k form on a genlog stream: exact counting equals an awk
# reference; with enough counters Space-Saving finds the exact top 10; with
# few, its bounds hold and every key it marks guaranteed is really in the top
# N; the report in tsv and json says what the table says; json and frames
# events give the same counts as lines; --every reports
# while the input is still open.
. "$(dirname "$0")/lib.sh"
TOPK=$top_builddir/topk
RE='Input=([^ &]*)'

"$GENLOG" -n 200000 --seed 5 -T 2000 >"$T/g.log"
# The exact counts: "count key", largest first, then key bytes.
grep -o 'Input=[^ &]*' "$T/g.log" | cut -d= -f2- | tr 'A-Z' 'a-z' | LC_ALL=C sort |
    uniq -c | awk '{ print $1, $2 }' | LC_ALL=C sort -k1,1nr -k2,2 >"$T/truth"

# Rows of a report: "rank key count error guaranteed".
rows() { awk 'NF == 5 && $1 ~ /^[0-9]+$/' "$1"; }

# Exact: the reference's first 10, errors 0, all guaranteed.
"$TOPK" -k "$RE" --lower "$T/g.log" >"$T/exact"
head -n 1 "$T/exact" | grep -q '^top 10 at .*: 200000 events, [0-9]* keyed, [0-9]* keys counted (exact)$' ||
    fail "heading: $(head -n 1 "$T/exact")"
rows "$T/exact" | awk '{ print $3, $2 }' >"$T/exact.top"
head -n 10 "$T/truth" >"$T/truth.10"
expect_file "$T/exact.top" "$T/truth.10"
expect_eq "exact errors and guarantees" "$(rows "$T/exact" | awk '{ print $4, $5 }' | sort -u)" "0 yes"

# Bounds and guarantees of a report, against the truth, for top N.
check_report() { # report N
    rows "$1" | awk -v N="$2" '
        FNR == NR { truth[$2] = $1; cnt[FNR] = $1; next }
        {
            t = ($2 in truth) ? truth[$2] : 0
            if ($3 - $4 > t || t > $3) { print "bounds: " $0 " true " t; bad = 1 }
            if ($5 == "yes") {
                above = 0
                for (i in cnt) if (cnt[i] > t) above++
                if (above >= N) { print "guaranteed but " above " keys above: " $0; bad = 1 }
            }
        }
        END { exit bad }' "$T/truth" - || fail "Space-Saving report $1 (top $2) is wrong"
}

# Enough counters: the same top 10 as the exact count.
"$TOPK" -k "$RE" --lower -m 400 "$T/g.log" >"$T/m400"
check_report "$T/m400" 10
expect_eq "top 10 keys with -m 400" "$(rows "$T/m400" | awk '{ print $2 }')" \
    "$(awk '{ print $2 }' "$T/truth.10")"
# Few counters: bounds hold, guarantees are never wrong.
for m in 20 50 100; do
    "$TOPK" -k "$RE" --lower -n 20 -m $m "$T/g.log" >"$T/m$m"
    check_report "$T/m$m" 20
    head -n 1 "$T/m$m" | grep -q "$m keys counted (capacity $m)" || fail "heading with -m $m"
done
rows "$T/m50" | grep -q ' yes$' || fail "no key guaranteed with -m 50"

# A report goes where windows go: tsv and json carry the ranks, keys,
# counts, errors and guarantees of the table.
"$TOPK" -k "$RE" --lower -n 20 -m 50 -o tsv "$T/g.log" >"$T/m50.tsv"
"$TOPK" -k "$RE" --lower -n 20 -m 50 -o json "$T/g.log" >"$T/m50.json"
rows "$T/m50" | awk '{ print $1, $2, $3, $4, $5 }' >"$T/m50.rows"
awk -F'\t' 'NF == 7 { print $3, $4, $5, $6, $7 }' "$T/m50.tsv" >"$T/m50.tsv.rows"
expect_file "$T/m50.tsv.rows" "$T/m50.rows"
python3 -c '
import json, sys
from datetime import datetime
# As times: "...:44Z" (a whole second) sorts after "...:44.025Z" as text.
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
for line in open(sys.argv[1]):
    r = json.loads(line)
    assert r["events"] == 200000 and r["capacity"] == 50 and t(r["start"]) <= t(r["end"]), r
    for t in r["top"]:
        print(t["rank"], t["key"], t["value"], t["error"], "yes" if t["guaranteed"] else "no")
' "$T/m50.json" >"$T/m50.json.rows" || fail "-o json: $(head -c 300 "$T/m50.json")"
expect_file "$T/m50.json.rows" "$T/m50.rows"

# Events as json and frames count the same.
"$LOGTAIL" --once --start beginning -o json "$T/g.log" >"$T/g.json"
"$LOGTAIL" --once --start beginning -o frames "$T/g.log" >"$T/g.frames"
for f in json frames; do
    "$TOPK" -k "$RE" --lower -m 400 "$T/g.$f" | rows /dev/stdin >"$T/rows.$f"
    rows "$T/m400" >"$T/rows.lines"
    expect_file "$T/rows.$f" "$T/rows.lines"
done

# Without --lower "Foo" and "foo" are two keys; a regex without a group
# counts the whole match.
printf 'x Foo\nx foo\nx foo\nnothing\n' | "$TOPK" -k 'x (\w+)' >"$T/case"
expect_eq "keys without --lower" "$(rows "$T/case" | awk '{ print $2 "=" $3 }' | tr '\n' ' ')" "foo=2 Foo=1 "
head -n 1 "$T/case" | grep -q ': 4 events, 3 keyed, 2 keys counted' || fail "heading: $(head -n 1 "$T/case")"
printf 'ab1\nab2\nab1\n' | "$TOPK" -k 'ab[0-9]' -n 1 >"$T/whole"
expect_eq "whole match" "$(rows "$T/whole" | awk '{ print $2, $3 }')" "ab1 2"

# --every: reports come while the input is still open, and one at the end.
{ "$GENLOG" -n 2000 --seed 6; sleep 1.2; } | "$TOPK" -k "$RE" --every 300ms -n 3 >"$T/every" &
p=$!
sleep 0.9
n=$(grep -c '^top 3 at' "$T/every" || true)
[ "$n" -ge 2 ] || fail "--every 300ms: $n reports after 0.9 s"
wait "$p"
n2=$(grep -c '^top 3 at' "$T/every")
[ "$n2" -gt "$n" ] || fail "--every: no report at the end"
note "space-saving: ok"
