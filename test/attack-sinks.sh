#!/bin/sh
# attack-sinks.sh -- full disks and stuck peers at the ends of a stage (issue
# 13): chanbuf's file sink on a full disk holds its events, says so once and
# resumes by itself with every event once in whole files, and a stop while
# stuck is bounded and fails; the kafka sink drops a record over the size
# limit instead of wedging, and a stop with the broker down is bounded; a
# logtail whose receiver closes idle connections reconnects quietly; a stop
# of logtail --to with a stuck receiver is bounded; logtail's position file
# and winagg's state file on a full disk are said once, saved again when
# there is room, and fail the exit when the last save failed.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || fail "python3 is missing (scripts/bootstrap installs it)"
CHANBUF=$top_builddir/chanbuf
WINAGG=$top_builddir/winagg
BROKERD=$top_builddir/brokerd
CONSUME=$top_builddir/consume

now_ms() { date +%s%3N; }
# within MS START: fail unless less than MS ms have passed since START.
within() { _e=$(( $(now_ms) - $2 )); [ $_e -lt "$1" ] || fail "$3: took $_e ms (bound $1)"; }
count() { grep -c "$1" "$2" || true; }
# stuck_stop WHAT FIFO PATTERN ERRFILE CHANBUF_ARGS...: chanbuf with a 1 s
# --timeout reading FIFO, given 10 events; once ERRFILE shows PATTERN (the
# sink is stuck), a SIGTERM must end it within 3 s, with status 1, saying
# that the 10 events were not delivered.
stuck_stop() {
    _what=$1 _fifo=$2 _pat=$3 _err=$4; shift 4
    mkfifo "$_fifo"
    "$CHANBUF" --timeout 1s "$@" <"$_fifo" 2>"$_err" &
    _cb=$!; PIDS="$PIDS $_cb"
    exec 7>"$_fifo"
    seq 1 10 >&7
    wait_until 10 grep -q "$_pat" "$_err" || fail "$_what: not stuck: $(cat "$_err")"
    _t0=$(now_ms)
    kill -TERM "$_cb"
    _st=0; wait "$_cb" || _st=$?
    within 3000 "$_t0" "$_what"
    exec 7>&-
    expect_eq "$_what: status" $_st 1
    grep -q '10 events in the memory channel were not delivered' "$_err" ||
        fail "$_what: loss not said: $(cat "$_err")"
}
# fill DIR: take every free block of the file system of DIR.
fill() { dd if=/dev/zero of="$1/fill" bs=4k 2>/dev/null || true; }

# Two 2 MB file systems when mounting is allowed (root).
D=$T/disk
mkdir -p "$D"
if mount -t tmpfs -o size=2m tmpfs "$D" 2>/dev/null; then
    trap 'umount "$D" 2>/dev/null || true; cleanup' EXIT INT TERM
    full=1
else
    note "attack-sinks: cannot mount a tmpfs (not root): the full-disk cases are not run"
    full=
fi

# (An asynchronous command reads /dev/null unless its own redirection says
# otherwise: those with input are started with '&' here, not with bg.)
seq 1 20000 | sed 's/$/ padding-padding-padding-padding/' >"$T/in"

if [ -n "$full" ]; then
    # 1. The file sink on a full disk: frames files rolled at 50k, the disk
    # filling after about 300k. Every file is whole on its own (a file whose
    # first batch failed must not lose its stream header), and every event
    # is in exactly one file.
    mkdir "$D/out"
    dd if=/dev/zero of="$D/fill" bs=4k count=400 2>/dev/null
    "$CHANBUF" -v -o frames --sink "f=file://$D/out/ev?roll=50KiB" <"$T/in" 2>"$T/f.err" &
    cb=$!; PIDS="$PIDS $cb"
    wait_until 10 grep -q 'No space left on device' "$T/f.err" || fail "no full disk: $(cat "$T/f.err")"
    sleep 1.5
    expect_eq "full disk said" "$(count 'No space left' "$T/f.err")" 1
    rm "$D/fill"
    st=0; wait "$cb" || st=$?
    expect_eq "file sink status" $st 0
    expect_eq "room again said" "$(count 'writing again' "$T/f.err")" 1
    grep -q 'out.f=20000 pending=0' "$T/f.err" || fail "counters: $(cat "$T/f.err")"
    for f in "$D"/out/ev.*; do
        [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '211RNF' ] || fail "$f has no stream header"
        "$CHANBUF" <"$f" 2>/dev/null
    done | sort -n >"$T/f.got"
    sort -n "$T/in" >"$T/f.want"
    expect_file "$T/f.got" "$T/f.want"
    ! ls -a "$D/out" | grep -q '\.tmp$' || fail "a .tmp file is left: $(ls -a "$D/out")"
    rm -rf "$D/out"

    # 2. A stop while the disk is full ends within --timeout, exits 1 and
    # says what was not delivered.
    mkdir "$D/out"
    fill "$D"
    stuck_stop "stop with a full disk" "$T/fifo2" 'No space left on device' "$T/s.err" \
        --sink "file://$D/out/ev"
    rm -rf "$D/out" "$D/fill"

    # 3. logtail's position file on a full disk: said once, the old file
    # stays whole, saved again when there is room; a stop whose last save
    # failed exits 1.
    : >"$T/log3"
    bg "$LOGTAIL" --pos "$D/pos" "$T/log3" >"$T/l3.out" 2>"$T/l3.err"
    lt=$!
    echo a >>"$T/log3"
    wait_until 10 grep -q ' 2 ' "$D/pos" 2>/dev/null || fail "no position saved"
    cp "$D/pos" "$T/pos.old"
    fill "$D"
    echo b >>"$T/log3"
    wait_until 10 grep -q 'positions not saved' "$T/l3.err" || fail "not said: $(cat "$T/l3.err")"
    sleep 2.2      # two more saves fail, quietly
    expect_eq "position failure said" "$(count 'positions not saved' "$T/l3.err")" 1
    expect_file "$D/pos" "$T/pos.old"
    rm "$D/fill"
    wait_until 10 grep -q 'positions saved again' "$T/l3.err" || fail "not said: $(cat "$T/l3.err")"
    grep -q ' 4 ' "$D/pos" || fail "position not saved again: $(cat "$D/pos")"
    fill "$D"
    echo c >>"$T/log3"
    wait_lines "$T/l3.out" 3
    sleep 0.1
    st=0; kill -TERM "$lt"; wait "$lt" || st=$?
    expect_eq "logtail status with its last save failed" $st 1
    expect_eq "position failure said again" "$(count 'positions not saved' "$T/l3.err")" 2
    grep -q '^runnel-pos 1$' "$D/pos" && grep -q ' 4 ' "$D/pos" || fail "pos: $(cat "$D/pos")"
    rm "$D/fill" "$D/pos"

    # 4. winagg's --state on a full disk: the save every 5 s fails (said
    # once), the one at the end works again (said) and the status is 0; a
    # run whose last save fails exits 1 and leaves the old file whole.
    mkfifo "$T/fifo4"
    ( st=0; "$WINAGG" -f 1 -w 10s --state "$D/st" <"$T/fifo4" >"$T/w.out" 2>"$T/w.err" || st=$?
      echo $st >"$T/w.st" ) &
    PIDS="$PIDS $!"
    exec 7>"$T/fifo4"
    for i in 1 2 3; do echo "k$i" >&7; done
    fill "$D"
    wait_until 10 grep -q 'state not saved' "$T/w.err" || fail "not said: $(cat "$T/w.err")"
    rm "$D/fill"
    exec 7>&-
    wait_until 10 test -s "$T/w.st" || fail "winagg did not end"
    expect_eq "winagg status after room again" "$(cat "$T/w.st")" 0
    expect_eq "state failure said" "$(count 'state not saved' "$T/w.err")" 1
    grep -q 'state saved again' "$T/w.err" || fail "not said: $(cat "$T/w.err")"
    cp "$D/st" "$T/st.old"
    fill "$D"
    st=0; echo k4 | "$WINAGG" -f 1 -w 10s --state "$D/st" >/dev/null 2>"$T/w2.err" || st=$?
    expect_eq "winagg status with its last save failed" $st 1
    grep -q 'state not saved' "$T/w2.err" || fail "not said: $(cat "$T/w2.err")"
    expect_file "$D/st" "$T/st.old"
    rm "$D/fill"
fi

# 5. The kafka sink and a record over message.max.bytes (1 MB): dropped,
# counted and said, and everything else delivered.
start_brokerd
python3 -c '
import sys
for i in range(5): print("a%d" % i)
print("x" * 2000000)
for i in range(5): print("b%d" % i)' >"$T/big"
st=0; "$CHANBUF" --sink "k=kafka://$B/big" <"$T/big" 2>"$T/k.err" || st=$?
expect_eq "kafka sink status" $st 0
expect_eq "too large said" "$(count 'dropped 1 record: a record of 2000000 bytes is over the limit (message.max.bytes 1000000' "$T/k.err")" 1
grep -q 'out.k=10 pending=0 dropped=1' "$T/k.err" || fail "counters: $(cat "$T/k.err")"
"$CONSUME" -b "$B" -t big -e --start beginning >"$T/k.got"
grep -v xxx "$T/big" >"$T/k.want"
expect_file "$T/k.got" "$T/k.want"

# 6. A stop with the broker down ends within --timeout, exits 1, and says
# what was not delivered; a second SIGTERM ends the default 10 s at once.
stuck_stop "stop with the broker down" "$T/fifo6" 'Connection refused' "$T/kd.err" \
    --sink "kafka://127.0.0.1:1/t"
"$CHANBUF" --sink "kafka://127.0.0.1:1/t" <"$T/big" 2>"$T/kd2.err" &
cb=$!; PIDS="$PIDS $cb"
wait_until 10 grep -q 'Connection refused' "$T/kd2.err" || fail "$(cat "$T/kd2.err")"
t0=$(now_ms)
kill -TERM "$cb"; sleep 0.2; kill -TERM "$cb"
st=0; wait "$cb" || st=$?
within 2000 "$t0" "a second SIGTERM"
expect_eq "second SIGTERM status" $st 1

# 7. A receiver that closes idle connections: logtail reconnects without a
# word, and what it sends later arrives.
start_chanbuf idle -q --idle-timeout 1s --sink stdout >"$T/idle.out"  # -q: port 0 still said
: >"$T/log7"
bg "$LOGTAIL" --start beginning --to "tcp://$C" "$T/log7" 2>"$T/l7.err"
lt=$!
echo one >>"$T/log7"
wait_lines "$T/idle.out" 1
sleep 3.5           # closed as idle at least twice
echo two >>"$T/log7"
wait_lines "$T/idle.out" 2
n=$(counter "$lt" "$T/l7.err" reconnects) || fail "no counters: $(cat "$T/l7.err")"
[ "$n" -ge 2 ] || fail "reconnects=$n: the idle closes did not happen"
expect_eq "idle close messages" "$(grep -v 'lines=' "$T/l7.err" || true)" ""
stop "$lt"

# 8. logtail --to a receiver that accepts and never answers: a stop ends
# within --timeout, and lines read and never delivered (no --pos) exit 1.
python3 -c '
import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
held = []
while True:
    held.append(s.accept()[0])' >"$T/stuck.port" &
PIDS="$PIDS $!"
wait_until 10 test -s "$T/stuck.port"
seq 1 100 >"$T/log8"
bg "$LOGTAIL" --timeout 1s --start beginning --to "tcp://127.0.0.1:$(cat "$T/stuck.port")" \
    "$T/log8" 2>"$T/l8.err"
lt=$!
sleep 0.5
t0=$(now_ms)
kill -TERM "$lt"
st=0; wait "$lt" || st=$?
within 3000 "$t0" "logtail stop with a stuck receiver"
expect_eq "logtail stuck stop status" $st 1
grep -q 'not acknowledged: they are lost' "$T/l8.err" || fail "loss not said: $(cat "$T/l8.err")"
note "attack-sinks: ok"
