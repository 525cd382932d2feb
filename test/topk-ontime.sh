#!/bin/sh
# topk-ontime.sh -- windows reach topk's output on time: the issue's pipeline,
# whose input pauses for 6 s after its last busy window, prints every window
# within 1 s of its end (winagg closes it at its end), through tsv, json and
# frames between winagg and topk, and in topk's tsv and json.
. "$(dirname "$0")/lib.sh"
WINAGG=$top_builddir/winagg
TOPK=$top_builddir/topk

# stamp: each line read, prefixed with the time it came (s.ns).
stamp() { while IFS= read -r l; do printf '%s %s\n' "$(date +%s.%N)" "$l"; done; }

# run NAME WINAGG-FORMAT TOPK-FORMAT: the issue's command, its output stamped.
run() {
    ( for i in $(seq 30); do echo "GET /s?Input=t$((i % 3)) x"; sleep 0.1; done; sleep 6
      echo "GET /s?Input=late x" ) |
        "$WINAGG" -k 'Input=([^ &]*)' -w 1s -o "$2" | "$TOPK" -n 3 -o "$3" | stamp >"$T/$1"
}

# The four runs at once: 10 s, not 40.
run tsv tsv tsv &
p1=$!
run json json tsv &
p2=$!
run frames frames tsv &
p3=$!
run tojson tsv json &
p4=$!
PIDS="$PIDS $p1 $p2 $p3 $p4"
for p in $p1 $p2 $p3 $p4; do wait "$p"; done

# check NAME: every window printed once, within 1 s after its end (the last
# one at the end of the input); the counts add up to the 31 lines.
check() {
    if [ "$1" = tojson ]; then
        # STAMP {"start":"S","end":"E","top":[{"rank":1,"key":"K","value":V},...]}
        sed 's/^\([^ ]*\) {"start":"\([^"]*\)","end":"\([^"]*\)".*/\1 \2 \3/' "$T/$1" >"$T/$1.w"
        total=$(grep -o '"value":[0-9]*' "$T/$1" | cut -d: -f2 | awk '{ s += $1 } END { print s }')
    else
        # STAMP START<TAB>END<TAB>RANK<TAB>KEY<TAB>VALUE
        tr '\t' ' ' <"$T/$1" | cut -d ' ' -f 1-3 | uniq -f 1 >"$T/$1.w"
        total=$(cut -f 5 "$T/$1" | awk '{ s += $1 } END { print s }')
    fi
    expect_eq "$1: rows counted" "$total" 31
    nwin=$(wc -l <"$T/$1.w")
    [ "$nwin" -ge 4 ] || fail "$1: $nwin windows: $(cat "$T/$1")"
    expect_eq "$1: windows printed twice" "$(cut -d ' ' -f 2,3 "$T/$1.w" | sort | uniq -d)" ""
    worst=0 n=0
    while read -r at start end; do
        n=$((n + 1))
        e=$(date -u -d "$end" +%s)
        # ms from the window's end to its print; the last window is printed
        # at the end of the input, before its end.
        ms=$(awk -v a="$at" -v e="$e" 'BEGIN { printf "%d", (a - e) * 1000 }')
        [ "$ms" -ge 0 ] || [ "$n" -eq "$nwin" ] ||
            fail "$1: window $start .. $end printed $ms ms before its end"
        [ "$ms" -lt 1000 ] || fail "$1: window $start .. $end printed $ms ms after its end"
        [ "$ms" -le "$worst" ] || worst=$ms
    done <"$T/$1.w"
    note "$1: $nwin windows, each printed at most $worst ms after its end"
}
check tsv
check json
check frames
check tojson
# The busy windows came out before the late line was written, 6 s later:
# the last but one window was printed some 6 s before the last.
last2=$(tail -n 2 "$T/tsv.w" | cut -d ' ' -f 1 | paste -sd ' ')
gap=$(echo "$last2" | awk '{ printf "%d", $2 - $1 }')
[ "$gap" -ge 5 ] || fail "the last busy window came out with the late one: $last2"
note "topk-ontime: ok"
