#!/bin/sh
# pipeline.sh -- the tools joined as a user joins them: logtail in each of the
# three output formats into winagg (which detects the format) into topk, all
# giving the same answer; and a live logtail | winagg | topk run.
. "$(dirname "$0")/lib.sh"
WINAGG=$top_builddir/winagg
TOPK=$top_builddir/topk

"$GENLOG" -n 30000 --start 1700000000 --seed 3 >"$T/access.log"
for fmt in lines json frames; do
    "$LOGTAIL" --once --start beginning -o $fmt "$T/access.log" |
        "$WINAGG" -k 'Input=([^ &]*)' --lower --time '\[([^]]+)\]' -w 10s -s 5s |
        "$TOPK" -n 5 -o tsv >"$T/top.$fmt"
    [ -s "$T/top.$fmt" ] || fail "no output through $fmt"
done
expect_file "$T/top.json" "$T/top.lines"
expect_file "$T/top.frames" "$T/top.lines"
# The first window's top term, against awk over the raw log.
first=$(head -n 1 "$T/top.lines" | cut -f 4,5)
want=$(mawk 'match($0, /\[14\/Nov\/2023:22:13:2[0-4] /) && match($0, /Input=[^ &]*/) {
                 c[tolower(substr($0, RSTART + 6, RLENGTH - 6))]++ }
             END { for (k in c) print c[k] "\t" k }' "$T/access.log" |
    sort -k1,1nr -k2,2 | head -n 1 | mawk -F '\t' '{ print $2 "\t" $1 }')
expect_eq "top term of the first window" "$first" "$want"

# Live: a log written at 2000 lines/s, followed, counted in 1 s windows.
: >"$T/live.log"
sh -c 'echo $$ >"$1"; exec "$2" "$3"' sh "$T/lpid" "$LOGTAIL" "$T/live.log" |
    "$WINAGG" -k 'Input=([^ &]*)' --lower -w 1s | "$TOPK" -n 3 -o tsv >"$T/live.top" &
"$GENLOG" -r 2000 -n 6000 -o "$T/live.log"
wait_until 5 test -s "$T/live.top" || fail "no window came out while the log was live"
sleep 1.5
kill -TERM "$(cat "$T/lpid")"
wait
windows=$(cut -f 1 "$T/live.top" | sort -u | wc -l)
[ "$windows" -ge 3 ] || fail "live: only $windows windows"
note "pipeline: ok ($windows live windows)"
