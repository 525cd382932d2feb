#!/bin/sh
# metrics.sh -- --metrics on logtail, chanbuf, brokerd and consume, scraped as
# Prometheus scrapes them during a live pipeline
#     logtail --to -> chanbuf --listen --sink kafka:// -> brokerd -> consume -G
# Every scrape is held to the text format (test/promcheck.py, with the
# Prometheus client's parser as a second reader), and the values to what went
# through: the lines at every stage, the bytes read and written, the lag
# going to 0. Then what a scraper cannot do: hold a request half sent, send
# a head over the bound, take more than the clients allowed, keep a tool
# from exiting.
. "$(dirname "$0")/lib.sh"
CHANBUF=$top_builddir/chanbuf
CONSUME=$top_builddir/consume
BROKERD=$top_builddir/brokerd

# Debian's python3-prometheus-client is for Debian's python3, which may not
# be first on PATH.
PY=
for p in /usr/bin/python3 python3; do
    if "$p" -c 'import prometheus_client' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || fail "prometheus_client is missing (scripts/bootstrap installs python3-prometheus-client)"

# metrics_of LOG: the address a tool said it serves metrics on.
metrics_of() {
    wait_until 10 grep -q 'metrics on http://' "$1" || fail "no metrics address in $1: $(cat "$1")"
    sed -n 's|^[a-z]*: metrics on http://\(.*\)/metrics$|\1|p' "$1"
}

# scrape NAME ADDR: one scrape, checked, as "SERIES<TAB>VALUE" lines in $T/NAME.
scrape() {
    "$PY" "$top_srcdir/test/promcheck.py" "http://$2/metrics" >"$T/$1.tmp" 2>"$T/$1.why" ||
        fail "$1: $(cat "$T/$1.why")"
    mv "$T/$1.tmp" "$T/$1"
}

# val NAME SERIES: SERIES's value in the last scrape NAME ("" when absent).
val() { S=$2 awk -F '\t' '$1 == ENVIRON["S"] { print $2 }' "$T/$1"; }   # (-v would unescape)
# sum NAME METRIC: the sum over METRIC's series in the last scrape NAME.
sum() { awk -F '\t' -v m="$2" '{ n = $1; sub(/\{.*/, "", n) } n == m { s += $2 } END { print s + 0 }' "$T/$1"; }
# count NAME METRIC: how many series METRIC has.
count() { awk -F '\t' -v m="$2" '{ n = $1; sub(/\{.*/, "", n) } n == m { c++ } END { print c + 0 }' "$T/$1"; }

# settled NAME ADDR SERIES|sum:METRIC|count:METRIC WANT ...: scrape until
# every pair holds.
settled() {
    _n=$1 _a=$2
    shift 2
    scrape "$_n" "$_a"
    while [ $# -gt 0 ]; do
        case $1 in
        sum:*) _got=$(sum "$_n" "${1#sum:}") ;;
        count:*) _got=$(count "$_n" "${1#count:}") ;;
        *) _got=$(val "$_n" "$1") ;;
        esac
        [ "$_got" = "$2" ] || { echo "$1 = '$_got', want $2" >"$T/$_n.unsettled"; return 1; }
        shift 2
    done
}
settle() { # (settled's arguments): within 20 s, or fail
    wait_until 20 settled "$@" || fail "$1 did not settle: $(cat "$T/$1.unsettled")"
}

# ---- the pipeline ----------------------------------------------------------------

start_brokerd --partitions 3 --group-initial-delay 200ms --metrics 127.0.0.1:0
BM=$(metrics_of "$blog")
case $BM in 127.0.0.1:[1-9]*) ;; *) fail "brokerd metrics on '$BM'" ;; esac

start_chanbuf agent --sink "kafka://$B/access" --metrics :0
CM=$(metrics_of "$clog")
case $CM in 127.0.0.1:[1-9]*) ;; *) fail ":0 is not loopback: chanbuf serves on '$CM'" ;; esac

# Two files: one with a plain name, one whose name needs escaping (a quote,
# a backslash) and is not UTF-8 (a lone 0xff).
N1=2000 N2=3000
"$GENLOG" -n $N1 --seed 5 -o "$T/access.log"
odd=$(printf '%s/odd "q" \\ \377.log' "$T")
seq 1 100 >"$odd"
bg "$LOGTAIL" --to "tcp://$C" --pos "$T/pos" --metrics :0 "$T/access.log" "$odd" 2>"$T/logtail.log"
lpid=$!
LM=$(metrics_of "$T/logtail.log")

bg "$CONSUME" -b "$B" -t access -G grp --start beginning --metrics :0 >"$T/out" 2>"$T/consume.log"
kpid=$!
KM=$(metrics_of "$T/consume.log")

# Live: more lines while everything runs.
wait_lines "$T/out" 100 30
"$GENLOG" -n $N2 --seed 6 >>"$T/access.log"
N=$((N1 + N2))
L=$((N + 100))                          # every line logtail reads
SIZE=$(($(wc -c <"$T/access.log") + $(wc -c <"$odd")))
wait_lines "$T/out" $L 30

F=runnel_logtail
settle logtail "$LM" "$F"'_lines_read_total{file="'"$T"'/access.log"}' $N \
    "$F"'_bytes_read_total{file="'"$T"'/access.log"}' "$(wc -c <"$T/access.log")" \
    "$F"'_lag_bytes{file="'"$T"'/access.log"}' 0 \
    "$F"_hop_events_sent_total $L "$F"_hop_events_delivered_total $L \
    "$F"_hop_unacked_batches 0 "$F"_files 2 "$F"_lines_cut_total 0 \
    sum:"$F"_bytes_read_total "$SIZE"
# The odd name, escaped for the format; promcheck had the client's parser
# read it back the same.
oddser=$(printf '%s_lines_read_total{file="%s/odd \\"q\\" \\\\ \357\277\275.log"}' "$F" "$T")
expect_eq "lines of the odd file" "$(val logtail "$oddser")" 100

F=runnel_chanbuf
settle chanbuf "$CM" "$F"_events_in_total $L "$F"_hop_events_received_total $L \
    "$F"'_events_out_total{sink="kafka://'"$B"'/access"}' $L \
    "$F"'_lag{sink="kafka://'"$B"'/access"}' 0 "$F"_events_pending 0 "$F"_bytes_pending 0 \
    "$F"_events_dropped_total 0 "$F"_duplicates_total 0 "$F"_hop_connections_total 1

F=runnel_brokerd
# The group's lag is known once consume has committed (every 5 s).
settle brokerd "$BM" sum:"$F"_partition_log_end_offset $L "$F"_topics 1 \
    "$F"'_group_members{group="grp"}' 1 count:"$F"_group_lag 3 sum:"$F"_group_lag 0
expect_eq "partitions of access" "$(count brokerd "$F"_partition_log_end_offset)" 3
expect_eq "bytes on disk against bytes produced" \
    "$(sum brokerd "$F"_partition_size_bytes)" "$(val brokerd "$F"_produced_bytes_total)"
expect_eq "committed offsets of grp" "$(count brokerd "$F"_group_committed_offset)" 3
[ "$(val brokerd "$F"_requests_total)" -gt 0 ] || fail "brokerd counted no requests"

# consume writes the values: every line without its newline.
F=runnel_consume
settle consume "$KM" sum:"$F"_events_out_total $L sum:"$F"_bytes_out_total $((SIZE - L)) \
    sum:"$F"_lag 0 "$F"_assigned_partitions 3
for p in 0 1 2; do
    s='{topic="access",partition="'$p'"}'
    expect_eq "consume offset of partition $p" "$(val consume "$F"_offset"$s")" \
        "$(val brokerd runnel_brokerd_partition_log_end_offset"$s")"
    expect_eq "high watermark of partition $p" "$(val consume "$F"_high_watermark"$s")" \
        "$(val brokerd runnel_brokerd_partition_log_end_offset"$s")"
done
expect_eq "lines consumed" "$(wc -l <"$T/out")" $L
note "pipeline: $L lines counted alike at every stage"

# ---- what a scraper cannot do --------------------------------------------------------

# A request held half sent, a head over the bound (431, closed), and more
# clients than allowed (the extra ones 503): the tool scrapes on, and its
# work goes on.
"$PY" - "${CM%:*}" "${CM##*:}" <<'EOF' || fail "chanbuf's metrics under a hostile client"
import socket, sys, urllib.request
host, port = sys.argv[1], int(sys.argv[2])
url = 'http://%s:%d/metrics' % (host, port)
def dial():
    s = socket.create_connection((host, port), timeout=10)
    return s
def answer(s):
    data = b''
    while b'\r\n\r\n' not in data:
        more = s.recv(4096)
        if not more:
            break
        data += more
    return data
half = dial()
half.sendall(b'GET /metr')
assert urllib.request.urlopen(url, timeout=5).status == 200, 'a half request blocks scrapes'
big = dial()
big.sendall(b'GET /metrics HTTP/1.1\r\nX: ' + b'a' * 20000 + b'\r\n\r\n')
a = answer(big)
assert a.startswith(b'HTTP/1.1 431 '), a[:80]
held = []
for _ in range(300):
    s = dial()
    s.sendall(b'GET /metrics HTTP/1.1\r\n\r\n')
    held.append(s)
served = refused = 0
for s in held:
    try:
        a = answer(s)
    except ConnectionResetError:
        a = b''         # refused before the request came: a reset
    if a.startswith(b'HTTP/1.1 200 '):
        served += 1
    else:
        assert a == b'' or a.startswith(b'HTTP/1.1 503 '), a[:80]
        refused += 1
assert served <= 256 and refused >= 300 - 256, '%d served, %d refused' % (served, refused)
for s in held + [half, big]:
    s.close()
EOF
# The slots come back once the clients have gone.
wait_until 10 "$PY" "$top_srcdir/test/promcheck.py" "http://$CM/metrics" >/dev/null 2>&1 ||
    fail "chanbuf's metrics did not come back"
"$GENLOG" -n 10 --seed 7 >>"$T/access.log"
wait_lines "$T/out" $((L + 10)) 30

# A stop is not held up by the metrics, or by a scraper connected to them.
bg "$PY" -c 'import socket, sys, time
held = []
for a in sys.argv[2:]:
    s = socket.create_connection((a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])))
    s.sendall(b"GET /metr")
    held.append(s)
open(sys.argv[1], "w").close()
time.sleep(60)' "$T/held" "$LM" "$CM" "$BM" "$KM"
wait_until 10 test -f "$T/held" || fail "could not connect to every metrics server"
for p in $kpid $lpid $cpid $bpid; do
    kill -TERM $p
    t0=$(date +%s)
    wait $p || fail "pid $p exited $? after SIGTERM"
    [ $(($(date +%s) - t0)) -le 12 ] || fail "pid $p took $(($(date +%s) - t0)) s to stop"
done
# logtail --once ends by itself, serving metrics or not.
timeout 10 "$LOGTAIL" --once --start beginning --metrics :0 "$T/access.log" >/dev/null 2>"$T/once.log" ||
    fail "logtail --once --metrics: $(cat "$T/once.log")"

# ---- the option --------------------------------------------------------------------------

for bad in "9100" ":" ":65536" "[::1:9100" "a b:1"; do
    for tool in "$LOGTAIL" "$CHANBUF" "$CONSUME -b x -t y" "$BROKERD serve"; do
        set +e
        $tool --metrics "$bad" </dev/null >/dev/null 2>"$T/bad.err"
        st=$?
        set -e
        expect_eq "$tool --metrics '$bad': exit status" $st 2
        grep -q -- '--metrics' "$T/bad.err" || fail "$tool --metrics '$bad': $(cat "$T/bad.err")"
    done
done
# A port that is taken: a runtime error, and the message says so.
start_chanbuf taken --metrics 127.0.0.1:0
TM=$(metrics_of "$clog")
set +e
"$CHANBUF" --metrics "$TM" </dev/null >/dev/null 2>"$T/taken.err"
st=$?
set -e
expect_eq "a taken port: exit status" $st 1
grep -q "metrics: listen on $TM" "$T/taken.err" || fail "a taken port: $(cat "$T/taken.err")"
note "metrics: ok"
