#!/bin/sh
# dashboard.sh -- the dashboard in a real browser: headless Chromium (driven
# by test/dashboard.js) loads the page of `topk --http`, fed winagg rows and
# watermarks through a fifo; the bars show the keys and values of a known window (a Chinese
# key among them) in order; when the next window is published they change,
# through the event stream, with their rank moves and an integer too big for
# a double kept exact; the page fits a phone's screen; a reload shows both
# windows again (from /api/windows). A machine without chromium fails this
# test: scripts/bootstrap installs it.
. "$(dirname "$0")/lib.sh"

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || fail "chromium is not installed (scripts/bootstrap installs it)"
command -v node >/dev/null || fail "node is not installed (scripts/bootstrap installs it)"

# topk reads rows from a fifo that stays open here (read-write, so that
# opening it does not wait for a reader). Not through bg: a background
# command's stdin is /dev/null unless the redirection is its own.
mkfifo "$T/in"
exec 3<>"$T/in"
"$top_builddir/topk" -n 5 -o tsv --http 127.0.0.1:0 <"$T/in" >"$T/out" 2>"$T/err" 3>&- &
PIDS="$PIDS $!"
wait_until 10 grep -q 'dashboard on http://' "$T/err" || fail "topk did not start: $(cat "$T/err")"
A=$(sed -n 's|^topk: dashboard on http://\(.*\)/$|\1|p' "$T/err")

W1=$(printf '2026-11-23T07:40:00Z\t2026-11-23T07:40:10Z')
W2=$(printf '2026-11-23T07:40:10Z\t2026-11-23T07:40:20Z')
# Each window is published when the watermark passes its end.
printf '%s\tfoo\t5\n%s\t搜索\t7\n%s\tquux\t3\n# watermark 2026-11-23T07:40:10Z\n' \
    "$W1" "$W1" "$W1" >&3
wait_lines "$T/out" 3
printf '%s\tfoo\t9\n%s\t搜索\t4\n%s\tquux\t1\n%s\tbig\t9007199254740993\n# watermark 2026-11-23T07:40:20Z\n' \
    "$W2" "$W2" "$W2" "$W2" >"$T/w2"

node "$top_srcdir/test/dashboard.js" "$CHROMIUM" "$T/profile" "http://$A/" \
    'expect=[["搜索","7",""],["foo","5",""],["quux","3",""]]' \
    fits lines=3 \
    "feed=$T/w2:$T/in" \
    'expect=[["big","9007199254740993","new"],["foo","9","same"],["搜索","4","down:2"],["quux","1","down:1"]]' \
    fits lines=4 windows=2 \
    reload windows=2 \
    'expect=[["big","9007199254740993","new"],["foo","9","same"],["搜索","4","down:2"],["quux","1","down:1"]]' \
    >"$T/steps" 2>"$T/chromium.log" 3>&- ||
    fail "the browser test failed: $(cat "$T/steps" "$T/chromium.log" | grep -v '^\[' | tail -20)"
note "$(grep '^ok expect' "$T/steps" | tr '\n' ' ')"
grep -q '^2026-11-23T07:40:10Z.*big' "$T/out" || fail "window 2 was not printed: $(cat "$T/out")"
[ "$(grep -vc 'dashboard on http://' "$T/err")" = 0 ] || fail "topk warned: $(cat "$T/err")"
# The input ends: topk says so and goes on serving the last windows until
# it is stopped; SIGTERM ends it with status 0.
tpid=$(echo $PIDS | awk '{ print $NF }')
exec 3>&-
wait_until 10 grep -q 'input ended; serving the dashboard' "$T/err" ||
    fail "no word that the input ended: $(cat "$T/err")"
latest=$(node -e 'fetch(process.argv[1]).then(r => r.json()).then(j => console.log(j.end))' \
    "http://$A/api/latest")
expect_eq "the latest window after the input ended" "$latest" "2026-11-23T07:40:20Z"
kill -TERM "$tpid"
wait "$tpid" || fail "topk exited with status $? on SIGTERM"
note "dashboard: ok"
