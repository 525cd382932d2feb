#!/bin/sh
# logtail-basic.sh -- following one file: existing lines, appends, partial
# lines, --start, a file that appears later, delete and re-create, stdin,
# json headers.
. "$(dirname "$0")/lib.sh"

# --start beginning: what is there, then what is appended.
printf 'one\ntwo\n' >"$T/a.log"
bg "$LOGTAIL" --start beginning "$T/a.log" >"$T/out1"
pid=$!
wait_lines "$T/out1" 2
printf 'three\n' >>"$T/a.log"
wait_lines "$T/out1" 3
# A partial line waits for its newline.
printf 'fo' >>"$T/a.log"
sleep 0.3
expect_eq "lines before the newline" "$(wc -l <"$T/out1")" 3
printf 'ur\n' >>"$T/a.log"
wait_lines "$T/out1" 4
stop "$pid"
printf 'one\ntwo\nthree\nfour\n' >"$T/exp1"
expect_file "$T/out1" "$T/exp1"

# Default without --pos: like tail -F, only what comes after the start.
bg "$LOGTAIL" "$T/a.log" >"$T/out2"
pid=$!
sleep 0.3
printf 'five\n' >>"$T/a.log"
wait_lines "$T/out2" 1
stop "$pid"
expect_eq "start at end" "$(cat "$T/out2")" "five"

# A file that does not exist yet, then is deleted and created again.
bg "$LOGTAIL" "$T/later.log" >"$T/out3"
pid=$!
sleep 0.3
printf 'born\n' >"$T/later.log"
wait_lines "$T/out3" 1
rm "$T/later.log"
sleep 0.3
printf 'again\n' >"$T/later.log"
wait_lines "$T/out3" 2
printf 'more\n' >>"$T/later.log"
wait_lines "$T/out3" 3
stop "$pid"
printf 'born\nagain\nmore\n' >"$T/exp3"
expect_file "$T/out3" "$T/exp3"

# stdin, by '-' and by default; a last line without newline still counts.
expect_eq "stdin -" "$(printf 'x\ny' | "$LOGTAIL" -)" "$(printf 'x\ny')"
expect_eq "stdin default" "$(printf 'p\nq\n' | "$LOGTAIL")" "$(printf 'p\nq')"
printf 'r\ns\n' >"$T/in"
expect_eq "stdin from a file" "$("$LOGTAIL" - <"$T/in")" "$(printf 'r\ns')"

# json: body, and the file, offset, host and ts headers.
printf 'alpha\nbeta "q"\n' >"$T/j.log"
"$LOGTAIL" --once --start beginning -o json "$T/j.log" >"$T/j.out"
expect_eq "json lines" "$(wc -l <"$T/j.out")" 2
host=$(uname -n)
line2=$(sed -n 2p "$T/j.out")
case $line2 in
'{"ts":'*'"headers":{"file":"'"$T/j.log"'","host":"'"$host"'","offset":"6","ts":"'*'"},"body":"beta \"q\""}') ;;
*) fail "json line 2 is $line2" ;;
esac

# SIGUSR1 prints the counters on stderr and logtail goes on.
printf 'c1\nc2\n' >"$T/u.log"
bg "$LOGTAIL" --start beginning "$T/u.log" >"$T/uout" 2>"$T/uerr"
pid=$!
wait_lines "$T/uout" 2
kill -USR1 "$pid"
wait_until 5 grep -q 'lines=2 bytes=6 cut=0 rotations=0 truncations=0' "$T/uerr" ||
    fail "counters: $(cat "$T/uerr")"
printf 'c3\n' >>"$T/u.log"
wait_lines "$T/uout" 3
stop "$pid"

# A burst of appends arrives complete and in order.
: >"$T/burst.log"
bg "$LOGTAIL" "$T/burst.log" >"$T/out4"
pid=$!
sleep 0.3
seq 1 20000 >>"$T/burst.log"
wait_lines "$T/out4" 20000
stop "$pid"
seq 1 20000 >"$T/exp4"
expect_file "$T/out4" "$T/exp4"
note "basic: ok"
