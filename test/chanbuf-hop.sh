#!/bin/bash
# chanbuf-hop.sh -- logtail --to and chanbuf --listen over the hop protocol:
# four logtails into one chanbuf (fan-in), every line arrives; a receiver
# killed and the second taking over (failover); balance over two; the same
# batch twice is stored once and counted; garbage, a wrong version, an
# oversized and a truncated frame are refused with a logged reason while a
# sender next to them goes on; a slow sink holds memory bounded end to end.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
CHANBUF=$top_builddir/chanbuf

# ---- fan-in: four logtails, one chanbuf, a file sink ----------------------
for i in 1 2 3 4; do seq 1 5000 | sed "s/^/f$i /" >"$T/in$i"; done
start_chanbuf fanin --sink "file://$T/fanin/all"
fpid=$cpid
for i in 1 2 3 4; do
    bg "$LOGTAIL" --pos "$T/pos$i" --to "tcp://$C" "$T/in$i" 2>"$T/lt$i.err"
done
# More lines while they run.
for i in 1 2 3 4; do seq 5001 8000 | sed "s/^/f$i /" >>"$T/in$i"; done
cat "$T"/in1 "$T"/in2 "$T"/in3 "$T"/in4 | sort >"$T/fanin.want"
all_in() { [ "$(counter "$fpid" "$clog" in)" = 32000 ]; }
wait_until 20 all_in || fail "fan-in: in=$(counter "$fpid" "$clog" in), expected 32000"
stop "$fpid"
cat "$T"/fanin/all.* | sort >"$T/fanin.got"
expect_file "$T/fanin.got" "$T/fanin.want"

# ---- the same batch twice: stored once, counted as a duplicate -------------
start_chanbuf dup --sink "file://$T/dup/d"
dpid=$cpid
exec 3<>"/dev/tcp/${C%:*}/${C##*:}"
printf '\0\0\0\017HRNHOP\001\0\0\0\0\0\0\0\007' >&3              # HELLO, session 7
expect_eq "WELCOME" "$(head -c 10 <&3 | od -An -tx1 | tr -d ' \n')" 00000006570102000000
batch='\0\0\0\027B\0\0\0\0\0\0\0\001\0\0\0\001\0\0\0\006\223\001\200\304\001x'
printf "$batch" >&3                                                # [1, {}, "x"]
expect_eq "first ACK" "$(head -c 14 <&3 | od -An -tx1 | tr -d ' \n')" 0000000a41000000000000000100
printf "$batch" >&3
expect_eq "second ACK: a duplicate" "$(head -c 14 <&3 | od -An -tx1 | tr -d ' \n')" \
    0000000a41000000000000000101
exec 3>&-
expect_eq "duplicates counted" "$(counter "$dpid" "$clog" duplicates)" 1
stop "$dpid"
expect_eq "stored once" "$(cat "$T"/dup/d.*)" x

# ---- bad peers are refused; a good sender next to them goes on -------------
start_chanbuf bad --sink "file://$T/bad/b"
bpid2=$cpid
genlog_pid=
"$GENLOG" --seq -r 2000 -o "$T/live.log" &
genlog_pid=$!
PIDS="$PIDS $genlog_pid"
bg "$LOGTAIL" --pos "$T/live.pos" --to "tcp://$C" "$T/live.log" 2>"$T/live.err"
ltpid=$!
host=${C%:*} port=${C##*:}
refuse() {  # what to send (printf format); what the log must then say
    seen=$(wc -l <"$clog")
    exec 4<>"/dev/tcp/$host/$port"
    printf "$1" >&4
    reply=$(timeout 5 cat <&4 | od -An -c | tr -d ' \n')
    exec 4>&-
    logged() { tail -n +$((seen + 1)) "$clog" | grep -q "$1"; }
    wait_until 5 logged "$2" || fail "refusal '$2' not logged: $(cat "$clog")"
    case $reply in *E*) ;; *) fail "no ERROR frame for '$2': $reply" ;; esac
}
refuse 'GET / HTTP/1.0\r\n\r\n' 'byte offset 0: frame of 1195725856 bytes'
refuse '\0\0\0\017HRNHOP\002\0\0\0\0\0\0\0\001' 'protocol version 2'
refuse '\0\0\0\017HXXXXX\001\0\0\0\0\0\0\0\001' 'byte offset 5: bad magic'
refuse '\0\0\0\017HRNHOP\001\0\0\0\0\0\0\0\001\0\0\0\027B\0\0\0\0\0\0\0\001\0\0\0\002\0\0\0\006\223\001\200\304\001x' 'byte offset'
exec 4<>"/dev/tcp/$host/$port"
printf '\0\0\0\017HRNHOP\001\0\0\0\0\0\0\0\001\0\0\0\027B\0\0' >&4
head -c 10 <&4 >/dev/null      # the WELCOME, so that the close is orderly
exec 4>&-
wait_until 5 grep -q 'truncated' "$clog" || fail "truncated frame not logged: $(cat "$clog")"
sleep 1
kill -TERM "$genlog_pid"; wait "$genlog_pid" 2>/dev/null || true
n=$(wc -l <"$T/live.log")
got_all() { [ "$(counter "$bpid2" "$clog" in)" = "$n" ]; }
wait_until 20 got_all || fail "the good sender: in=$(counter "$bpid2" "$clog" in) of $n"
stop "$ltpid"
stop "$bpid2"
seq_of "$T/live.log" >"$T/live.want"
cat "$T"/bad/b.* | seq_of /dev/stdin >"$T/live.got"
expect_file "$T/live.got" "$T/live.want"

# ---- failover: the first receiver is killed, the second takes over ----------
start_chanbuf fa --dir "$T/fa.dir" --sink "out=file://$T/fa/out"
apid=$cpid A=$C
start_chanbuf fb --dir "$T/fb.dir" --sink "out=file://$T/fb/out"
bpid=$cpid Bc=$C
"$GENLOG" --seq -r 5000 -o "$T/fo.log" &
gpid=$!
PIDS="$PIDS $gpid"
bg "$LOGTAIL" --pos "$T/fo.pos" --to "tcp://$A,$Bc" "$T/fo.log" 2>"$T/fo.err"
fo=$!
wait_until 10 eval '[ "$(counter "$apid" "$T/fa.log" in)" -gt 2000 ]' ||
    fail "the first receiver got nothing"
kill -9 "$apid"; wait "$apid" 2>/dev/null || true
sleep 1
kill -TERM "$gpid"; wait "$gpid" 2>/dev/null || true
n=$(wc -l <"$T/fo.log")
b_has_some() { [ "$(counter "$bpid" "$T/fb.log" in)" -gt 0 ]; }
wait_until 10 b_has_some || fail "the second receiver got nothing: $(cat "$T/fo.err")"
# logtail has nothing left once every line is acknowledged by someone.
sleep 2
stop "$fo"
stop "$bpid"
# The killed receiver's file channel still holds what it had not written out.
CB_ADDR=127.0.0.1:0 start_chanbuf fa --dir "$T/fa.dir" --sink "out=file://$T/fa/out"
sleep 1.5
stop "$cpid"
cat "$T"/fa/out.* "$T"/fb/out.* | seq_of /dev/stdin | sort -nu >"$T/fo.got"
seq 1 "$n" >"$T/fo.want"
expect_file "$T/fo.got" "$T/fo.want"
grep -q "hop $A" "$T/fo.err" || fail "the failover was not reported: $(cat "$T/fo.err")"

# ---- balance: both receivers get batches, together everything -------------
start_chanbuf ba --sink "file://$T/ba/out"
apid=$cpid A=$C
start_chanbuf bb --sink "file://$T/bb/out"
bpid=$cpid Bc=$C
"$GENLOG" --seq -n 50000 -o "$T/bal.log"
"$LOGTAIL" --once --pos "$T/bal.pos" --to "tcp://$A,$Bc?mode=balance" "$T/bal.log" 2>"$T/bal.err" ||
    fail "logtail --once --to: $(cat "$T/bal.err")"
stop "$apid"
stop "$bpid"
na=$(cat "$T"/ba/out.* | wc -l) nb=$(cat "$T"/bb/out.* | wc -l)
[ "$na" -gt 0 ] && [ "$nb" -gt 0 ] || fail "balance: $na and $nb lines"
cat "$T"/ba/out.* "$T"/bb/out.* | seq_of /dev/stdin | sort -n >"$T/bal.got"
seq 1 50000 >"$T/bal.want"
expect_file "$T/bal.got" "$T/bal.want"

# ---- a slow sink: backpressure keeps both ends' memory bounded -------------
"$GENLOG" --seq -n 400000 -o "$T/big.log"     # 80 MB
bg "$CHANBUF" --listen 127.0.0.1:0 --capacity 2000 --batch 200 --sink stdout \
    2>"$T/slow.log" > >(sleep 4; cat >"$T/slow.out")
spid=$!
wait_until 10 grep -q '^chanbuf: listening on' "$T/slow.log" || fail "$(cat "$T/slow.log")"
C=$(sed -n 's/^chanbuf: listening on //p' "$T/slow.log")
bg "$LOGTAIL" --once --pos "$T/big.pos" --to "tcp://$C" "$T/big.log" 2>"$T/big.err"
lpid=$!
sleep 2      # the reader has not started: everything is backed up
hwm() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }
c_kb=$(hwm "$spid") l_kb=$(hwm "$lpid")
[ "$c_kb" -lt 65536 ] || fail "chanbuf grew to $c_kb kB behind a slow sink"
[ "$l_kb" -lt 65536 ] || fail "logtail grew to $l_kb kB behind a slow receiver"
wait "$lpid" || fail "logtail --once: $(cat "$T/big.err")"
stop "$spid"
wait_lines "$T/slow.out" 400000 20
expect_eq "everything behind the slow sink" "$(seq_of "$T/slow.out" | sort -n | uniq | wc -l)" 400000
note "chanbuf-hop: ok (chanbuf ${c_kb} kB, logtail ${l_kb} kB behind a slow sink)"
