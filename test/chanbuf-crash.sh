#!/bin/bash
# chanbuf-crash.sh -- logtail --pos --to chanbuf --dir, with chanbuf killed
# with -9 in the middle of a stream again and again (and logtail too, every
# other time), each restarted: every line written to the followed file
# reaches the file sink; lines may come twice, never not at all.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

start_chanbuf crash -v --dir "$T/ch" --sink "out=file://$T/sink/out"
CB_ADDR=$C
"$GENLOG" --seq -r 4000 -o "$T/live.log" &
gpid=$!
PIDS="$PIDS $gpid"
bg "$LOGTAIL" --pos "$T/pos" --to "tcp://$C" "$T/live.log" 2>>"$T/lt.err"
lpid=$!
for round in 1 2 3 4 5 6; do
    sleep 0.6
    kill -9 "$cpid"; wait "$cpid" 2>/dev/null || true
    if [ $((round % 2)) = 0 ]; then
        kill -9 "$lpid"; wait "$lpid" 2>/dev/null || true
        bg "$LOGTAIL" --pos "$T/pos" --to "tcp://$C" "$T/live.log" 2>>"$T/lt.err"
        lpid=$!
    fi
    sleep 0.2
    start_chanbuf crash -v --dir "$T/ch" --sink "out=file://$T/sink/out"
done
sleep 0.5
kill -TERM "$gpid"; wait "$gpid" 2>/dev/null || true
n=$(wc -l <"$T/live.log")
# Once logtail has read and sent everything, a clean stop of both.
caught_up() {
    [ "$(counter "$cpid" "$clog" pending)" = 0 ] && sleep 1 &&
        [ "$(counter "$cpid" "$clog" pending)" = 0 ]
}
wait_until 30 caught_up || fail "chanbuf did not catch up: $(tail -n 3 "$clog")"
stop "$lpid"
stop "$cpid"
cat "$T"/sink/out.* | seq_of /dev/stdin | sort -n >"$T/got"
sort -nu "$T/got" >"$T/got.unique"
seq 1 "$n" >"$T/want"
expect_file "$T/got.unique" "$T/want"
dups=$(( $(wc -l <"$T/got") - n ))
hopdups=$(grep -o 'duplicates=[0-9]*' "$clog" | cut -d= -f2 | awk '{ s += $1 } END { print s + 0 }')
grep -q 'events pending from the last run' "$clog" || fail "no recovery was reported: $(cat "$clog")"
note "chanbuf-crash: ok ($n lines, 6 kills of chanbuf and 3 of logtail;" \
    "$dups delivered twice; $hopdups batches' events recognised as duplicates)"
