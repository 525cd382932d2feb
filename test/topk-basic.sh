#!/bin/sh
# topk-basic.sh -- the rows form: ties in a fixed order, the exact table, tsv
# and json shapes, json rows in, and `cat a b | topk` (two partitions merged)
# against an independent awk reference over a genlog stream.
. "$(dirname "$0")/lib.sh"
TOPK=$top_builddir/topk
tab=$(printf '\t')

# ---- ties and shapes ---------------------------------------------------------
W1='2026-11-23T07:40:00Z	2026-11-23T07:40:30Z'
W2='2026-11-23T07:40:10Z	2026-11-23T07:40:40Z'
cat >"$T/ties.tsv" <<EOF
# a comment, then a blank line

$W1	pear	3
$W1	apple	5
$W1	fig	3
$W2	solo	1
$W1	kiwi	5
$W1	ab	3
$W1	abc	3
$W1	pear	0
$W1	zz	-1
EOF
"$TOPK" -o tsv -n 5 "$T/ties.tsv" >"$T/ties.out"
cat >"$T/ties.exp" <<EOF
$W1	1	apple	5
$W1	2	kiwi	5
$W1	3	ab	3
$W1	4	abc	3
$W1	5	fig	3
$W2	1	solo	1
EOF
expect_file "$T/ties.out" "$T/ties.exp"
# The same rows in another order give the same output.
{ sed -n '1,2p' "$T/ties.tsv"; sed '1,2d' "$T/ties.tsv" | sort -r; } | "$TOPK" -o tsv -n 5 >"$T/ties2.out"
expect_file "$T/ties2.out" "$T/ties.exp"

"$TOPK" -n 3 "$T/ties.tsv" >"$T/table.out"
cat >"$T/table.exp" <<'EOF'
2026-11-23T07:40:00Z .. 2026-11-23T07:40:30Z  top 3 of 7 keys
rank  key    value
   1  apple      5
   2  kiwi       5
   3  ab         3

2026-11-23T07:40:10Z .. 2026-11-23T07:40:40Z  top 1 of 1 key
rank  key   value
   1  solo      1

EOF
expect_file "$T/table.out" "$T/table.exp"

"$TOPK" -o json -n 2 "$T/ties.tsv" >"$T/json.out"
cat >"$T/json.exp" <<'EOF'
{"start":"2026-11-23T07:40:00Z","end":"2026-11-23T07:40:30Z","top":[{"rank":1,"key":"apple","value":5},{"rank":2,"key":"kiwi","value":5}]}
{"start":"2026-11-23T07:40:10Z","end":"2026-11-23T07:40:40Z","top":[{"rank":1,"key":"solo","value":1}]}
EOF
expect_file "$T/json.out" "$T/json.exp"

# json rows in, decimals and escaped keys; a decimal sum keeps its decimals
# (2.5 + 1.5 = 4.0) and ties with the integer 4.
cat >"$T/rows.json" <<'EOF'
{"start":"2026-11-23T07:40:00Z","end":"2026-11-23T07:41:00Z","key":"p1","value":2.5}
{"start":"2026-11-23T07:40:00Z","end":"2026-11-23T07:41:00Z","key":"tab\there","value":4}
{"start":"2026-11-23T07:40:00Z","end":"2026-11-23T07:41:00Z","key":"p1","value":1.5}
EOF
"$TOPK" -o tsv "$T/rows.json" >"$T/rj.out"
printf '2026-11-23T07:40:00Z\t2026-11-23T07:41:00Z\t1\tp1\t4.0\n2026-11-23T07:40:00Z\t2026-11-23T07:41:00Z\t2\ttab\\there\t4\n' >"$T/rj.exp"
expect_file "$T/rj.out" "$T/rj.exp"

# ---- two partitions merged, against awk --------------------------------------
# A stand-in for winagg: count the search terms of genlog lines per 10 s
# tumbling window (the simulated clock makes 1000 lines a second).
rows_of() {
    awk '
    function iso(x) { return sprintf("2026-11-23T%02d:%02d:%02dZ", int(x / 3600), int(x % 3600 / 60), x % 60) }
    match($0, /Input=[^ &]*/) {
        term = tolower(substr($0, RSTART + 6, RLENGTH - 6))
        t = substr($4, 14, 8)
        sec = substr(t, 1, 2) * 3600 + substr(t, 4, 2) * 60 + substr(t, 7, 2)
        st = sec - sec % 10
        n[iso(st) "\t" iso(st + 10) "\t" term]++
    }
    END { for (k in n) print k "\t" n[k] }'
}
"$GENLOG" -n 40000 --seed 1 --start 1795419600 | rows_of >"$T/a.rows"
"$GENLOG" -n 40000 --seed 2 --start 1795419605 | rows_of >"$T/b.rows"

# The reference: sum per (window, key), order by end, start, value desc,
# key bytes asc; the first N of each window.
reference() {
    awk -F'\t' '{ s[$1 FS $2 FS $3] += $4 } END { for (k in s) print k FS s[k] }' |
        LC_ALL=C sort -t"$tab" -k2,2 -k1,1 -k4,4nr -k3,3 |
        awk -F'\t' -v N="$1" '{ w = $1 FS $2; if (w != pw) { r = 0; pw = w }
                                if (++r <= N) print $1 FS $2 FS r FS $3 FS $4 }'
}
for n in 1 10 40; do
    cat "$T/a.rows" "$T/b.rows" | reference $n >"$T/ref.$n"
    cat "$T/a.rows" "$T/b.rows" | "$TOPK" -o tsv -n $n >"$T/merged.$n"
    expect_file "$T/merged.$n" "$T/ref.$n"
    # Files given as arguments, and the rows shuffled, give the same.
    "$TOPK" -o tsv -n $n "$T/b.rows" "$T/a.rows" >"$T/args.$n"
    expect_file "$T/args.$n" "$T/ref.$n"
done
sort -R "$T/a.rows" "$T/b.rows" | "$TOPK" -o tsv -n 40 >"$T/shuffled"
expect_file "$T/shuffled" "$T/ref.40"
expect_eq "windows merged" "$(cut -f1 "$T/ref.40" | sort -u | wc -l)" 5
note "basic: ok"
