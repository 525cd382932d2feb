#!/bin/sh
# readme.sh -- the README's pipeline with a broker, run as written and in the
# order written: its commands are taken from README.md, with the paths moved
# into the scratch directory and the broker on a free port; the log grows
# after the pipeline has started (consume is up before its topic exists).
# The top 10 of every window must equal the same job over the file.
. "$(dirname "$0")/lib.sh"
PATH=$top_builddir:$PATH
export PATH

block=$(mawk '/^The whole pipeline, with a broker:/ { on = 1; next }
              on && /^    / { print substr($0, 5); seen = 1; next }
              on && seen { exit }' "$top_srcdir/README.md")
[ -n "$block" ] || fail "README.md: no pipeline block after 'The whole pipeline, with a broker:'"
echo "$block" | grep -q '^brokerd serve ' || fail "README's pipeline does not start with brokerd serve: $block"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$T/var/log/nginx" "$T/var/lib"     # as on any system
script=$(echo "$block" | sed -e "s|^brokerd serve |brokerd serve --listen 127.0.0.1:$port |" \
                             -e "s|localhost:9092|127.0.0.1:$port|g" \
                             -e "s|/var/|$T/var/|g")
note "running: $script"
sh -c "$script" >"$T/out" 2>"$T/err" &
spid=$!
PIDS="$PIDS $spid"

# The log, written once everything is up: 60 s of simulated traffic.
wait_until 10 grep -q '^consume: waiting for topic' "$T/err" ||
    fail "consume did not say it waits for its topic: $(cat "$T/err")"
"$GENLOG" -n 60000 --start 1700000000 --seed 5 >"$T/var/log/nginx/access.log"
# Everything is read and through when winagg has saved past the last line.
wait_until 30 grep -q 'Input=' "$T/var/log/nginx/access.log"
sleep 6
end_stage() { # PATTERN: stop the stage whose command line matches (anchored:
              # the sh running the script names them all), if it has not
              # ended by itself (chanbuf ends with its input), and wait
    for p in $(pgrep -f "$1"); do kill -TERM "$p"; done
    wait_until 20 sh -c "! pgrep -f '$1' >/dev/null" || fail "$1 did not stop"
}
end_stage "^logtail --pos $T/var"
end_stage "^chanbuf --dir $T/var"       # the end of its input ends it
sleep 2
end_stage "^consume -b 127.0.0.1:$port"
wait "$spid" 2>/dev/null || true
end_stage "^brokerd serve --listen 127.0.0.1:$port"

"$top_builddir/winagg" -k 'Input=([^ &]*)' --lower -w 30s -s 10s --time '\[([^]]+)\]' \
    <"$T/var/log/nginx/access.log" | "$top_builddir/topk" -n 10 >"$T/want"
[ "$(grep -c '^20' "$T/want")" -ge 6 ] || fail "the reference has too few windows: $(cat "$T/want")"
[ -s "$T/out" ] || fail "the pipeline printed nothing: $(cat "$T/err")"
expect_file "$T/out" "$T/want"
grep -q 'late=[1-9]' "$T/err" && fail "late events: $(cat "$T/err")"
note "readme: the README's pipeline, as written, gives the file's answer"
