#!/bin/sh
# topk-live.sh -- when windows are printed on a live stream: once the input
# has moved past them and paused, not before; late rows re-print a window;
# SIGUSR1 prints counters; SIGTERM prints what is pending and exits 0.
. "$(dirname "$0")/lib.sh"
TOPK=$top_builddir/topk

W1='2026-11-23T07:40:00Z	2026-11-23T07:40:10Z'
W2='2026-11-23T07:40:10Z	2026-11-23T07:40:20Z'
W3='2026-11-23T07:40:20Z	2026-11-23T07:40:30Z'

mkfifo "$T/in"
# The child opens the fifo, so that the shell does not block on it.
(exec "$TOPK" -o tsv -n 2 <"$T/in" >"$T/out" 2>"$T/err") &
pid=$!
PIDS="$PIDS $pid"
exec 3>"$T/in"

# Window 1 alone: the input has not moved past it, nothing is printed.
printf '%s\ta\t5\n%s\tb\t3\n%s\tc\t1\n' "$W1" "$W1" "$W1" >&3
sleep 0.5
expect_eq "output before the input moved on" "$(wc -c <"$T/out")" 0

# A row of window 2: window 1 comes out after the pause, window 2 does not.
printf '%s\tx\t1\n' "$W2" >&3
wait_lines "$T/out" 2 5
sleep 0.4
printf '%s\t1\ta\t5\n%s\t2\tb\t3\n' "$W1" "$W1" >"$T/exp1"
expect_file "$T/out" "$T/exp1"

# SIGUSR1: the counters, and topk goes on.
kill -USR1 "$pid"
wait_until 5 grep -q 'rows=4 printed=1 pending=1 late=0 dropped=0' "$T/err" ||
    fail "counters: $(cat "$T/err")"

# A late row for window 1 changes its top 2: it is printed again, whole.
printf '%s\tc\t10\n' "$W1" >&3
wait_lines "$T/out" 4 5
printf '%s\t1\tc\t11\n%s\t2\ta\t5\n' "$W1" "$W1" >>"$T/exp1"
sleep 0.3
expect_file "$T/out" "$T/exp1"

# Rows of windows 2 and 3, then SIGTERM: window 3, the latest, is printed
# although the input has not moved past it.
printf '%s\ty\t2\n%s\tz\t7\n' "$W2" "$W3" >&3
sleep 0.5
kill -TERM "$pid"
set +e
wait "$pid"
st=$?
set -e
exec 3>&-
expect_eq "status after SIGTERM" $st 0
printf '%s\t1\ty\t2\n%s\t2\tx\t1\n%s\t1\tz\t7\n' "$W2" "$W2" "$W3" >>"$T/exp1"
expect_file "$T/out" "$T/exp1"
grep -q '^topk: 1 late row added to windows already printed' "$T/err" ||
    fail "late rows not reported: $(cat "$T/err")"

# A pipe with a pause in it: what the input moved past comes out during the
# pause, the rest at the end.
{ printf '%s\ta\t1\n' "$W1"; printf '%s\tb\t1\n' "$W2"; sleep 0.6; printf '%s\tc\t1\n' "$W3"; } |
    "$TOPK" -o tsv >"$T/out2" &
p2=$!
sleep 0.4
# W1 is due 200 ms after W2's row came: printed while the writer sleeps.
expect_eq "window 1 printed during the pause" "$(cut -f3- "$T/out2")" "$(printf '1\ta\t1')"
wait "$p2"
expect_eq "all windows at the end" "$(cut -f4 "$T/out2" | tr '\n' ' ')" "a b c "
note "live: ok"
