#!/bin/sh
# logtail-exec.sh -- --exec runs a command and reads its output as events;
# --restart runs it again; a failing command makes the exit status 1.
. "$(dirname "$0")/lib.sh"

expect_eq "exec" "$("$LOGTAIL" --exec 'printf "a\nb\nc"')" "$(printf 'a\nb\nc')"

# json events from a command carry the command header.
"$LOGTAIL" -o json --exec 'echo hi' >"$T/j"
grep -q '"command":"echo hi"' "$T/j" || fail "no command header: $(cat "$T/j")"

# --restart: run again after each exit, until stopped.
bg "$LOGTAIL" --restart --exec 'echo tick' >"$T/ticks"
pid=$!
wait_lines "$T/ticks" 3 15
stop "$pid"
[ "$(sort -u "$T/ticks")" = tick ] || fail "restart output: $(sort -u "$T/ticks")"

# A command that fails: its output still comes out, then exit status 1.
set +e
"$LOGTAIL" --exec 'echo partial; exit 3' >"$T/f" 2>"$T/ferr"
st=$?
set -e
expect_eq "failing command status" $st 1
expect_eq "failing command output" "$(cat "$T/f")" partial
grep -q "exited with status 3" "$T/ferr" || fail "message: $(cat "$T/ferr")"

# Files and a command at once.
printf 'from file\n' >"$T/x.log"
"$LOGTAIL" --once --start beginning --exec 'echo from command' "$T/x.log" | sort >"$T/mix"
printf 'from command\nfrom file\n' >"$T/mixexp"
expect_file "$T/mix" "$T/mixexp"
note "exec: ok"
