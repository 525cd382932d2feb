#!/bin/sh
# topk-redis-live.sh -- topk --redis on a live, pausing stream: every window
# is in Redis (its set, P:latest, the P:windows index) within 1 s of its
# close though input pauses; Redis killed and started again mid-stream:
# every window that closed meanwhile is in Redis afterwards, with one
# warning for the outage.
. "$(dirname "$0")/lib.sh"
TOPK=$top_builddir/topk WINAGG=$top_builddir/winagg
start_redis

mkfifo "$T/in"
"$WINAGG" -k 'Input=([^ &]*)' -w 1s <"$T/in" |
    "$TOPK" -n 3 -o tsv --redis "redis://127.0.0.1:$port" --redis-prefix hot \
        --redis-ttl 1h >"$T/out" 2>"$T/err" &
tpid=$!
PIDS="$PIDS $tpid"
exec 3>"$T/in"
now_ms() { date +%s%3N; }

# A burst in one second, then a pause of 3 s: the window must be in Redis
# within 1 s of its end, without any later input.
for i in 1 2 3 4 5 6; do echo "GET /s?Input=t$((i % 2)) x" >&3; done
sent=$(now_ms)
wait_until 5 sh -c "redis-cli -p $port get hot:latest | grep -q hot:" ||
    fail "no window in Redis: $(cat "$T/err")"
seen=$(now_ms)
key=$(rcli get hot:latest)
start_s=$(date -d "${key#hot:}" +%s)
end_ms=$(( (start_s + 1) * 1000 ))
[ $((seen - end_ms)) -lt 1000 ] || fail "window ${key#hot:} in Redis $((seen - end_ms)) ms after its end"
expect_eq "the set" "$(rcli zrevrange "$key" 0 -1 withscores | tr '\n' ' ')" "t1 3 t0 3 "
expect_eq "the index" "$(rcli zscore hot:windows "$key")" "$end_ms"
ttl=$(rcli ttl "$key")
[ "$ttl" -gt 3500 ] && [ "$ttl" -le 3600 ] || fail "ttl $ttl"
sleep 2

# Redis goes away; three windows close while it is down; it comes back.
kill -9 "$rpid"
wait "$rpid" 2>/dev/null || true
for w in 1 2 3; do
    for i in $(seq $w); do echo "GET /s?Input=down$w x" >&3; done
    sleep 1.1
done
sleep 0.5
start_redis_on "$port" 3>&- || fail "redis-server would not start again on $port"
wait_until 10 sh -c "[ \$(redis-cli -p $port zcard hot:windows) -ge 3 ]" ||
    fail "windows of the outage not written: $(rcli zrange hot:windows 0 -1); $(cat "$T/err")"
for w in 1 2 3; do
    k=$(rcli zrange hot:windows 0 -1 | while read -r k; do
            if rcli zscore "$k" "down$w" </dev/null | grep -qx "$w"; then echo "$k"; fi
        done)
    [ -n "$k" ] || fail "window with down$w=$w missing: $(rcli zrange hot:windows 0 -1)"
done
exec 3>&-
( sleep 15; kill -9 "$tpid" 2>/dev/null ) &
dog=$!
wait "$tpid" || fail "topk exited with status $? at the end of its input: $(cat "$T/err")"
kill "$dog" 2>/dev/null || true
expect_eq "outage warnings" "$(grep -c 'unreachable' "$T/err")" 1
grep -q 'reachable again' "$T/err" || fail "no word when Redis came back: $(cat "$T/err")"
# stdout had every window too.
grep -q "down3" "$T/out" || fail "stdout: $(cat "$T/out")"
note "topk-redis-live: ok"
