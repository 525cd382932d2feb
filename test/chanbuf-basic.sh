#!/bin/bash
# chanbuf-basic.sh -- chanbuf fed on standard input: lines through a memory
# channel unchanged; headers through frames and json; replicating to several
# sinks; multiplexing by a header, exactly as routed; file sinks that roll and
# show complete files only; a file channel that keeps what a sink could not
# deliver for the next run; drop when full; and the errors.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
CHANBUF=$top_builddir/chanbuf

# Lines in, lines out, in order, at the end of input everything delivered;
# silent on success (a cron job mails nothing), the counters with -v.
seq 1 20000 >"$T/want"
"$CHANBUF" <"$T/want" >"$T/out" 2>"$T/err"
expect_file "$T/out" "$T/want"
expect_eq "stderr of a run that went well" "$(cat "$T/err")" ""
"$CHANBUF" -v <"$T/want" >"$T/out" 2>"$T/err"
expect_file "$T/out" "$T/want"
grep -q '^chanbuf: in=20000 out.stdout=20000 pending=0 dropped=0' "$T/err" ||
    fail "counters at exit with -v: $(cat "$T/err")"

# json in (with headers), frames through the channel, json out: unchanged.
{
    printf '{"ts":1000,"headers":{"level":"error","host":"a"},"body":"e1"}\n'
    printf '{"ts":2000,"headers":{"level":"info"},"body":"i1"}\n'
    printf '{"ts":3000,"headers":{},"body":"plain text"}\n'
    printf '{"ts":4000,"headers":{"level":"debug"},"body":"d1"}\n'
    printf '{"ts":5000,"headers":{"level":"error"},"body":"e2"}\n'
} >"$T/events.json"
"$CHANBUF" -o json <"$T/events.json" >"$T/out.json" 2>/dev/null
expect_file "$T/out.json" "$T/events.json"
"$CHANBUF" -o frames <"$T/events.json" 2>/dev/null | "$CHANBUF" -o json >"$T/out2.json" 2>/dev/null
expect_file "$T/out2.json" "$T/events.json"

# Replicating: every sink gets every event.
"$CHANBUF" --sink "file://$T/r1/all" --sink "file://$T/r2/all" --sink stdout \
    <"$T/want" >"$T/r.out" 2>"$T/r.err"
expect_file "$T/r.out" "$T/want"
cat "$T"/r1/all.* >"$T/r1.all"
cat "$T"/r2/all.* >"$T/r2.all"
expect_file "$T/r1.all" "$T/want"
expect_file "$T/r2.all" "$T/want"

# Multiplexing: by the level header; the sink no route names gets the rest.
"$CHANBUF" -o json --sink "err=file://$T/m/err" --sink "info=file://$T/m/info" \
    --sink rest=stdout --route level=error:err --route level=info:info \
    <"$T/events.json" >"$T/m.rest" 2>"$T/m.err"
expect_eq "routed to err" "$(cat "$T"/m/err.* | grep -o '"body":"[^"]*"' | tr '\n' ' ')" \
    '"body":"e1" "body":"e2" '
expect_eq "routed to info" "$(cat "$T"/m/info.* | grep -o '"body":"[^"]*"' | tr '\n' ' ')" \
    '"body":"i1" '
expect_eq "the default sink" "$(grep -o '"body":"[^"]*"' "$T/m.rest" | tr '\n' ' ')" \
    '"body":"plain text" "body":"d1" '
# Every sink named by a route: the rest goes nowhere, and nothing hangs.
"$CHANBUF" --sink "a=file://$T/m2/a" --route level=error:a <"$T/events.json" 2>/dev/null
expect_eq "only the routed events" "$(cat "$T"/m2/a.* | tr '\n' ' ')" "e1 e2 "

# A file sink rolls by size: complete files only, nothing hidden left, the
# whole input in order across them.
"$CHANBUF" --batch 100 --sink "file://$T/roll/part?roll=20KiB" <"$T/want" 2>/dev/null
n=$(ls "$T/roll" | wc -l)
[ "$n" -ge 5 ] || fail "roll=20KiB made $n files of 107k"
[ -z "$(ls -A "$T/roll" | grep '^\.')" ] || fail "hidden files left: $(ls -A "$T/roll")"
cat "$T"/roll/part.* >"$T/roll.all"
expect_file "$T/roll.all" "$T/want"

# A .tmp file left by a killed run (with half an event at its end) is cut
# after its last whole line and completed at the next start.
mkdir -p "$T/left"
printf 'one\ntwo\nthr' >"$T/left/.logs.1700000000000.tmp"
"$CHANBUF" --sink "file://$T/left/logs" </dev/null 2>"$T/left.err"
expect_eq "the completed file" "$(cat "$T/left/logs.1700000000000")" "one
two"
grep -q 'byte offset 8' "$T/left.err" || fail "no byte offset: $(cat "$T/left.err")"

# File channel: a sink that cannot deliver (nothing listens there) keeps the
# events on disk; the next run, with the same sink name, delivers them.
port=$(( (RANDOM % 20000) + 30000 ))
seq 1 5000 >"$T/fc.want"
# (not with bg: an asynchronous command's standard input would be /dev/null)
"$CHANBUF" --dir "$T/fc" --sink "out=tcp://127.0.0.1:$port" <"$T/fc.want" 2>"$T/fc.err" &
cb=$!
PIDS="$PIDS $cb"
wait_until 10 grep -q 'connection refused' "$T/fc.err" || fail "$(cat "$T/fc.err")"
stored() { kill -USR1 "$cb" 2>/dev/null; grep -q 'in=5000 ' "$T/fc.err"; }
wait_until 10 stored || fail "the file channel did not take the input: $(cat "$T/fc.err")"
kill -TERM "$cb"; sleep 0.3; kill -TERM "$cb" 2>/dev/null || true
wait "$cb" || fail "chanbuf exited $? on SIGTERM"
grep -q '5000 events stay in' "$T/fc.err" || fail "pending not reported: $(cat "$T/fc.err")"
"$CHANBUF" --dir "$T/fc" --sink out=stdout </dev/null >"$T/fc.out" 2>"$T/fc2.err"
expect_file "$T/fc.out" "$T/fc.want"
"$CHANBUF" --dir "$T/fc" --sink out=stdout </dev/null >"$T/fc.out2" 2>/dev/null
expect_eq "a third run" "$(wc -c <"$T/fc.out2")" 0

# Drop when full: a memory channel of 10 events, a sink that is down.
seq 1 1000 | "$CHANBUF" --capacity 10 --batch 10 --when-full drop \
    --sink "tcp://127.0.0.1:$port" 2>"$T/drop.err" &
cb=$!
wait_until 10 grep -q 'connection refused' "$T/drop.err" || fail "$(cat "$T/drop.err")"
dropped() { kill -USR1 "$cb" 2>/dev/null; grep -q 'dropped=990 ' "$T/drop.err"; }
wait_until 10 dropped || fail "drop: $(cat "$T/drop.err")"
kill -TERM "$cb"; kill -TERM "$cb" 2>/dev/null || true
wait "$cb" || true
grep -q '10 events in the memory channel were not delivered' "$T/drop.err" ||
    fail "loss not reported: $(cat "$T/drop.err")"

# Errors: usage (2), bad input (1, with the byte offset), a directory in use.
st=0; "$CHANBUF" --sink bogus://x </dev/null 2>"$T/e1" || st=$?
expect_eq "bad sink status" $st 2
grep -q "a sink is stdout" "$T/e1" || fail "bad sink message: $(cat "$T/e1")"
st=0; "$CHANBUF" --route level=x:nosuch </dev/null 2>"$T/e2" || st=$?
expect_eq "bad route status" $st 2
st=0; "$CHANBUF" --sink "file://$T/x/p?roll=ten" </dev/null 2>"$T/e3" || st=$?
expect_eq "bad roll status" $st 2
st=0; "$CHANBUF" --when-full later </dev/null 2>/dev/null || st=$?
expect_eq "bad --when-full status" $st 2
printf '\211RNF\001\0\0\0\0\0\0\377garbage' >"$T/bad.frames"
st=0; "$CHANBUF" <"$T/bad.frames" >/dev/null 2>"$T/e4" || st=$?
expect_eq "corrupt frames status" $st 1
grep -q 'byte offset' "$T/e4" || fail "corrupt frames message: $(cat "$T/e4")"
"$CHANBUF" --dir "$T/busy" --sink "tcp://127.0.0.1:$port" <"$T/fc.want" 2>/dev/null &
PIDS="$PIDS $!"
wait_until 10 test -e "$T/busy/lock"
sleep 0.2
st=0; "$CHANBUF" --dir "$T/busy" </dev/null 2>"$T/e5" || st=$?
expect_eq "directory in use status" $st 1
grep -q 'in use' "$T/e5" || fail "directory in use message: $(cat "$T/e5")"

# A closed standard output ends chanbuf with status 0, saying only what the
# memory channel still held.
seq 1 1000000 | "$CHANBUF" 2>"$T/e6" | head -n 1 >/dev/null
expect_eq "closed stdout status" "${PIPESTATUS[1]}" 0
expect_eq "closed stdout messages" "$(grep -v 'in=\|events in the memory channel were not delivered' "$T/e6" || true)" ""
note "chanbuf-basic: ok"
