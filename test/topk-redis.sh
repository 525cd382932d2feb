#!/bin/sh
# topk-redis.sh -- -o redis into a real redis-server through `redis-cli
# --pipe`: each window's sorted set read back equals the tsv output, odd keys
# arrive byte for byte, P:latest names the last window, the TTL is set, and a
# re-print (late rows) replaces a set instead of adding to it.
. "$(dirname "$0")/lib.sh"
TOPK=$top_builddir/topk

start_redis

# Rows: three windows with ties; in window 0 also keys with a space, a
# newline, a tab and bytes that are not UTF-8 (tsv escapes newline and tab).
W() { printf '2026-11-23T07:40:%s0Z\t2026-11-23T07:41:%s0Z' "$1" "$1"; }
{
    for w in 0 1 2; do
        i=0
        for key in chofur dames kiril pavo tishun chufar delis kopol petu toshan; do
            i=$((i + 1))
            printf '%s\t%s\t%d\n' "$(W $w)" "$key" $(( (i * 37 + w * 11) % 23 ))
        done
    done
    printf '%s\t%s\t%d\n' "$(W 0)" "two words" 30 "$(W 0)" 'new\nline\ttab' 29 \
        "$(W 0)" "$(printf 'caf\303\251 \377\376')" 28
} >"$T/rows"

"$TOPK" -o tsv -n 8 "$T/rows" >"$T/tsv"
"$TOPK" -o redis -n 8 --redis-prefix "hot" --redis-ttl 600 "$T/rows" >"$T/resp"
rcli --pipe <"$T/resp" >"$T/pipe.out" 2>&1 || fail "redis-cli --pipe: $(cat "$T/pipe.out")"
grep -q 'errors: 0,' "$T/pipe.out" || fail "redis-cli --pipe: $(cat "$T/pipe.out")"

# Every window's set against the tsv, as "key score" lines sorted (Redis
# orders equal scores its own way). Window 0's odd keys are checked apart:
# redis-cli prints a member's newline as it is.
for w in 0 1 2; do
    start=$(W $w | cut -f1)
    expect_eq "members of hot:$start" "$(rcli ZCARD "hot:$start")" 8
    ttl=$(rcli TTL "hot:$start")
    [ "$ttl" -gt 0 ] && [ "$ttl" -le 600 ] || fail "TTL of hot:$start is $ttl"
    [ $w -eq 0 ] && continue
    awk -F'\t' -v s="$start" '$1 == s { print $4 " " $5 }' "$T/tsv" | LC_ALL=C sort >"$T/exp.$w"
    rcli --raw ZREVRANGE "hot:$start" 0 -1 WITHSCORES | paste -d' ' - - | LC_ALL=C sort >"$T/got.$w"
    expect_file "$T/got.$w" "$T/exp.$w"
done
expect_eq "hot:latest" "$(rcli GET hot:latest)" "hot:$(W 2 | cut -f1)"
k0="hot:$(W 0 | cut -f1)"
awk -F'\t' -v s="$(W 0 | cut -f1)" '$1 == s && $4 ~ /^[a-z]+$/ { print $4, $5 }' "$T/tsv" |
    while read -r key score; do
        expect_eq "score of $key" "$(rcli ZSCORE "$k0" "$key")" "$score"
    done
expect_eq "plain keys of window 0" \
    "$(awk -F'\t' -v s="$(W 0 | cut -f1)" '$1 == s && $4 ~ /^[a-z]+$/' "$T/tsv" | wc -l)" 5

# Odd keys arrive byte for byte.
expect_eq "score of 'two words'" "$(rcli ZSCORE "$k0" 'two words')" 30
expect_eq "score of a key with a newline and a tab" \
    "$(rcli ZSCORE "$k0" "$(printf 'new\nline\ttab')")" 29
expect_eq "score of a key that is not UTF-8" \
    "$(rcli ZSCORE "$k0" "$(printf 'caf\303\251 \377\376')")" 28

# A re-print replaces the set: window 0 printed, then a late row that pushes
# "dames" out of its top 2.
mkfifo "$T/in"
(exec "$TOPK" -o redis -n 2 --redis-prefix live <"$T/in" >"$T/live.resp" 2>"$T/live.err") &
tpid=$!
PIDS="$PIDS $tpid"
exec 3>"$T/in"
printf '%s\tchofur\t9\n%s\tdames\t5\n%s\tkiril\t1\n%s\tx\t1\n' "$(W 0)" "$(W 0)" "$(W 0)" "$(W 1)" >&3
sleep 0.6
printf '%s\tkiril\t10\n' "$(W 0)" >&3
sleep 0.6
exec 3>&-
wait "$tpid"
rcli --pipe <"$T/live.resp" >"$T/pipe.out" 2>&1 || fail "redis-cli --pipe: $(cat "$T/pipe.out")"
expect_eq "the set after the re-print" \
    "$(rcli ZREVRANGE "live:$(W 0 | cut -f1)" 0 -1 WITHSCORES | tr '\n' ' ')" "kiril 11 chofur 9 "
# The re-print of an older window does not move live:latest back.
expect_eq "live:latest" "$(rcli GET live:latest)" "live:$(W 1 | cut -f1)"
# Heavy hitters (-k) go to Redis too: -o redis through redis-cli --pipe,
# and --redis directly. The set holds the report's counts, P:latest names
# it, and --redis-ttl takes a duration as every option does.
printf 'a\nb\na\nc\na\nb\n' >"$T/hh"
"$TOPK" -k '^(.)' -o redis --redis-prefix hh --redis-ttl 10m "$T/hh" >"$T/hh.resp"
rcli --pipe <"$T/hh.resp" >"$T/pipe.out" 2>&1 || fail "redis-cli --pipe: $(cat "$T/pipe.out")"
set=$(rcli GET hh:latest)
case $set in hh:20*) ;; *) fail "hh:latest is '$set'" ;; esac
expect_eq "heavy hitters by redis-cli --pipe" "$(rcli ZREVRANGE "$set" 0 -1 WITHSCORES | tr '\n' ' ')" \
    "a 3 b 2 c 1 "
ttl=$(rcli TTL "$set")
[ "$ttl" -gt 500 ] && [ "$ttl" -le 600 ] || fail "--redis-ttl 10m: TTL of $set is $ttl"
"$TOPK" -k '^(.)' -n 2 --redis "redis://127.0.0.1:$port" --redis-prefix hd -o tsv "$T/hh" \
    >"$T/hh.tsv" 2>"$T/hh.err" || fail "topk -k --redis: $(cat "$T/hh.err")"
set=$(rcli GET hd:latest)
expect_eq "heavy hitters by --redis" "$(rcli ZREVRANGE "$set" 0 -1 WITHSCORES | tr '\n' ' ')" "a 3 b 2 "
expect_eq "heavy hitters in tsv beside --redis" "$(cut -f 3- "$T/hh.tsv" | tr '\t\n' ' ;')" \
    "1 a 3 0 yes;2 b 2 0 yes;"
expect_eq "the window index" "$(rcli ZRANGE hd:windows 0 -1)" "$set"
note "redis: ok"
