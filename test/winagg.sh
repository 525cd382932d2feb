#!/bin/sh
# winagg.sh -- winagg against an independent awk reference on generated
# access logs: tumbling and sliding windows, count/sum/min/max/avg, event time,
# arrival time with idle input, late events, --state restarts, usage errors.
# The rows are compared without winagg's watermark records ('#' lines), as
# a reader of the rows alone takes them (grep -v '^#', cut -s).
. "$(dirname "$0")/lib.sh"
WINAGG=$top_builddir/winagg
TIME='\[([^]]+)\]'
KEY='Input=([^ &]*)'
BYTES='HTTP/1\.1" [0-9]+ ([0-9]+)'

"$GENLOG" -n 40000 --start 1700000000 --seed 7 >"$T/log"

# ref W S AGG: the rows an independent computation gives, sorted. Each event
# adds to every window that holds it; windows are aligned to the epoch.
ref() {
    TZ=UTC mawk -v W="$1" -v S="$2" -v agg="$3" '
    BEGIN { split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", m, " ")
            for (i = 1; i <= 12; i++) mon[m[i]] = i; k = W / S }
    match($0, /Input=[^ &]*/) {
        key = tolower(substr($0, RSTART + 6, RLENGTH - 6))
        match($0, /\[[^]]+\]/); ts = substr($0, RSTART + 1, RLENGTH - 2)
        split(ts, a, /[\/: ]/)
        t = mktime(a[3] " " mon[a[2]] " " a[1] " " a[4] " " a[5] " " a[6])
        match($0, /HTTP\/1\.1" [0-9]+ [0-9]+/); split(substr($0, RSTART, RLENGTH), b, " ")
        v = b[3] + 0
        n = int(t / S)
        for (e = n; e < n + k; e++) {
            id = e SUBSEP key
            cnt[id]++; sum[id] += v
            if (!(id in mn) || v < mn[id]) mn[id] = v
            if (!(id in mx) || v > mx[id]) mx[id] = v
        }
    }
    END {
        for (id in cnt) {
            split(id, p, SUBSEP); e = p[1]
            s = strftime("%Y-%m-%dT%H:%M:%SZ", (e - k + 1) * S, 1)
            f = strftime("%Y-%m-%dT%H:%M:%SZ", (e + 1) * S, 1)
            val = agg == "count" ? cnt[id] : agg == "sum" ? sum[id] : agg == "min" ? mn[id] : \
                  agg == "max" ? mx[id] : sprintf("%.6f", sum[id] / cnt[id])
            print s "\t" f "\t" p[2] "\t" val
        }
    }' "$T/log" | LC_ALL=C sort
}

check() { # W S AGG winagg-args...
    w=$1 s=$2 agg=$3; shift 3
    ref "$w" "$s" "$agg" >"$T/want"
    "$WINAGG" -k "$KEY" --lower --time "$TIME" -w "${w}s" -s "${s}s" "$@" <"$T/log" |
        grep -v '^#' | LC_ALL=C sort >"$T/got"
    if [ "$agg" = avg ]; then
        mawk -F '\t' -v OFS='\t' '{ $4 = sprintf("%.6f", $4) } 1' "$T/got" >"$T/got2"
        mv "$T/got2" "$T/got"
    fi
    [ -s "$T/want" ] || fail "empty reference for $w/$s $agg"
    expect_file "$T/got" "$T/want"
    note "W=${w}s S=${s}s $agg: $(wc -l <"$T/got") rows match"
}

check 10 10 count
check 10 2 count
check 6 1 count
check 10 5 sum -a sum --value "$BYTES"
check 10 5 min -a min --value "$BYTES"
check 10 5 max -a max --value "$BYTES"
check 10 5 avg -a avg --value "$BYTES"

# Field keys and JSON keys give the same counts as the regex.
"$WINAGG" -k "$KEY" --time "$TIME" -w 10s <"$T/log" | grep -v '^#' | LC_ALL=C sort >"$T/byregex"
mawk 'match($0, /Input=[^ &]*/) { print substr($0, RSTART + 6, RLENGTH - 6) "\t" $0 }' "$T/log" |
    "$WINAGG" -f 1 -d '	' --time "$TIME" -w 10s | grep -v '^#' | LC_ALL=C sort >"$T/byfield"
expect_file "$T/byfield" "$T/byregex"

# Event time from the ts header of json events.
printf '{"ts":1700000001000000000,"headers":{},"body":"a"}\n{"ts":1700000002000000000,"headers":{},"body":"b"}\n{"ts":1700000011000000000,"headers":{},"body":"a"}\n' |
    "$WINAGG" -f 1 -w 10s --time header >"$T/hdr"
printf '# watermark 2023-11-14T22:13:20Z\n2023-11-14T22:13:20Z\t2023-11-14T22:13:30Z\ta\t1\n2023-11-14T22:13:20Z\t2023-11-14T22:13:30Z\tb\t1\n# watermark 2023-11-14T22:13:30Z\n2023-11-14T22:13:30Z\t2023-11-14T22:13:40Z\ta\t1\n' >"$T/hdrwant"
expect_file "$T/hdr" "$T/hdrwant"

# Late events: behind the watermark, counted, reported and kept.
printf '[14/Nov/2023:22:13:21 +0000] x\n[14/Nov/2023:22:13:35 +0000] x\n[14/Nov/2023:22:13:22 +0000] late\n[14/Nov/2023:22:13:36 +0000] y\n' >"$T/late.log"
"$WINAGG" -f 3 --time "$TIME" -w 10s --late-out "$T/late.out" <"$T/late.log" >"$T/lrows" 2>"$T/lerr"
grep -q 'late=1' "$T/lerr" || fail "late not reported: $(cat "$T/lerr")"
expect_eq "late-out" "$(cat "$T/late.out")" "[14/Nov/2023:22:13:22 +0000] late"
expect_eq "rows with a late event" "$(cut -s -f 3,4 "$T/lrows" | tr '\t\n' ':,')" "x:1,x:1,y:1,"
# ... and with --lateness it is in time.
"$WINAGG" -f 3 --time "$TIME" -w 10s --lateness 20s <"$T/late.log" >"$T/lrows2" 2>"$T/lerr2"
expect_eq "rows within lateness" "$(cut -s -f 3,4 "$T/lrows2" | tr '\t\n' ':,')" "late:1,x:1,x:1,y:1,"

# Arrival time: a window closes on the clock while the input is idle.
# (the writer keeps the pipe open for 4 s after its lines)
( printf 'k\nk\nk\n'; sleep 4 ) | "$WINAGG" -f 1 -w 1s >"$T/arr" &
wait_until 3 grep -qv "^#" "$T/arr" || fail "no window emitted while the input was idle"
expect_eq "idle window" "$(cut -s -f 3,4 "$T/arr")" "$(printf 'k\t3')"
wait

# Signals while the input is idle: SIGUSR1 prints the counters and winagg
# goes on; SIGTERM emits the open window and exits 0 at once.
mkfifo "$T/idle"
bg sh -c 'exec >"$1"; printf "k\nk\n"; exec sleep 60' sh "$T/idle"
writer=$!
"$WINAGG" -f 1 -w 1d <"$T/idle" >"$T/term" 2>"$T/term.err" &
wpid=$!
# SIGUSR1 kills a process that has no handler for it yet.
catches_usr1() { [ $((0x$(awk '/^SigCgt:/ { print $2 }' "/proc/$wpid/status") & 0x200)) -ne 0 ]; }
wait_until 10 catches_usr1 || fail "winagg has no SIGUSR1 handler"
i=0
until [ "$(counter "$wpid" "$T/term.err" events)" = 2 ]; do
    i=$((i + 1))
    [ $i -lt 50 ] || fail "SIGUSR1 while idle: $(cat "$T/term.err")"
    sleep 0.1
done
! grep -qv '^#' "$T/term" || fail "a window of a day emitted early: $(cat "$T/term")"
bg sh -c "sleep 10; kill -9 $wpid 2>/dev/null"     # a hang fails, not waits
t0=$(date +%s%N)
kill -TERM "$wpid"
st=0
wait "$wpid" || st=$?
ms=$((($(date +%s%N) - t0) / 1000000))
expect_eq "status after SIGTERM while idle" $st 0
[ $ms -lt 2000 ] || fail "winagg took $ms ms to exit after SIGTERM"
expect_eq "rows after SIGTERM while idle" "$(cut -s -f 3,4 "$T/term")" "$(printf 'k\t2')"
kill "$writer"

# --state: two runs over two halves equal one run over the whole, taking the
# last row written for each window and key (rows are upserts).
head -n 20000 "$T/log" >"$T/h1"
tail -n +20001 "$T/log" >"$T/h2"
run() { "$WINAGG" -k "$KEY" --lower --time "$TIME" -w 10s -s 5s "$@"; }
run --state "$T/st" <"$T/h1" >"$T/r1"
run --state "$T/st" <"$T/h2" >"$T/r2"
cat "$T/r1" "$T/r2" | mawk -F '\t' 'NF == 4 { v[$1 FS $2 FS $3] = $4 } END { for (k in v) print k "\t" v[k] }' |
    LC_ALL=C sort >"$T/rr"
run <"$T/log" | grep -v '^#' | LC_ALL=C sort >"$T/whole"
expect_file "$T/rr" "$T/whole"
# Other options against that state: an error, not a wrong answer.
set +e
"$WINAGG" -k "$KEY" --time "$TIME" -w 20s --state "$T/st" </dev/null >/dev/null 2>"$T/serr"
st=$?
set -e
expect_eq "status with a mismatched state" $st 1
grep -q "different options" "$T/serr" || fail "message: $(cat "$T/serr")"

# Usage errors.
for args in "-k x -w 10s -s 3s" "-w 10s" "-k x" "-k x -f 1 -w 1s" "-k x -w 1s -a sum" \
    "-k x -w 1s --value y" "-k ( -w 1s" "-k x -w 1s --lateness 5s" "-k x -w 1s -o xml"; do
    set +e
    # shellcheck disable=SC2086
    "$WINAGG" $args </dev/null >/dev/null 2>"$T/uerr"
    st=$?
    set -e
    expect_eq "status of winagg $args" $st 2
    grep -q '^winagg: ' "$T/uerr" || fail "no message for $args"
done
"$WINAGG" -k x -w 10s -s 3s </dev/null 2>&1 | grep -q 'not a multiple of the slide (-s 3s)' ||
    fail "multiple message"
# --urldecode: a term sent encoded and as it is counts as one key; '+' is a
# space; a '%' that starts no valid escape stays. Against a python3
# reference (urllib's unquote_plus keeps invalid escapes too).
printf 'GET /s?Input=%%E6%%89%%8B%%E6%%9C%%BA x\nGET /s?Input=手机 x\nGET /s?Input=a+b x\nGET /s?Input=a%%20b x\nGET /s?Input=%%zz x\nGET /s?Input=50%% x\nGET /s?Input=%%E6%%89 x\n' >"$T/enc"
"$WINAGG" -k 'Input=([^ &]*)' --urldecode -w 1d --time header <"$T/enc" |
    awk -F '\t' 'NF == 4 { print $3 "\t" $4 }' | sort >"$T/dec"
python3 -c '
import sys, urllib.parse, collections, re
c = collections.Counter()
for line in open(sys.argv[1], "rb"):
    m = re.search(rb"Input=([^ &\n]*)", line)
    c[urllib.parse.unquote_to_bytes(m.group(1).replace(b"+", b" "))] += 1
out = sorted(k + b"\t" + str(v).encode() for k, v in c.items())
sys.stdout.buffer.write(b"".join(l + b"\n" for l in out))
' "$T/enc" | LC_ALL=C sort >"$T/dec.want"
LC_ALL=C sort "$T/dec" >"$T/dec.sorted"
expect_file "$T/dec.sorted" "$T/dec.want"
grep -q "^手机	2$" "$T/dec" || fail "encoded and plain 手机 not merged: $(cat "$T/dec")"

# A key that matches no event is said, once: early (after 10,000 events)
# and at the end; events without a key among events with one are normal.
"$WINAGG" -k 'input=([^ &]*)' -w 1d <"$T/log" >"$T/nokey.out" 2>"$T/nokey.err"
expect_eq "rows of a key that never matches" "$(grep -vc '^#' "$T/nokey.out" || true)" 0
expect_eq "warnings" "$(grep -c 'none had a key' "$T/nokey.err")" 1
grep -q "^winagg: the first [0-9]* events and none had a key: does the key (-k 'input=(\[^ &\]\*)') match them?$" \
    "$T/nokey.err" || fail "early warning: $(cat "$T/nokey.err")"
printf 'a\nb\n' | "$WINAGG" -k 'x=(.)' -w 1d 2>&1 >/dev/null |
    grep -qx "winagg: 2 events and none had a key: does the key (-k 'x=(.)') match them?" ||
    fail "no warning at the end"
"$WINAGG" -k 'Input=([^ &]*)' -w 1d <"$T/log" >/dev/null 2>"$T/some.err"
[ ! -s "$T/some.err" ] || fail "winagg spoke with keys found: $(cat "$T/some.err")"
note "winagg: ok"
