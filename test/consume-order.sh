#!/bin/bash
# consume-order.sh -- consume in catch-up over a 6-partition topic hands
# records on in timestamp order, so that an event-time winagg behind it
# counts nothing late and prints what it prints over the source file
# (and, to show that the order is what does it, --order-wait 0 does not);
# and a topic that does not exist yet is waited for.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
CONSUME=$top_builddir/consume
CHANBUF=$top_builddir/chanbuf
WINAGG=$top_builddir/winagg

start_brokerd --partitions 6

# An nginx access log of 12000 lines over 20 minutes: time moves forward,
# each line up to 3 s behind its place (local disorder), a pause of a
# minute in the middle; a few search terms.
awk 'BEGIN {
    srand(12); t0 = 1700000000
    split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", mon, " ")
    for (i = 0; i < 12000; i++) {
        t = t0 + int(i / 10) - int(rand() * 4) + (i >= 6000 ? 60 : 0)
        term = "t" int(rand() * rand() * 8)
        printf "%d 10.0.%d.%d - - [%s +0000] \"GET /s?Input=%s HTTP/1.1\" 200 %d\n", t,
            i % 7, i % 251, strftime("%d/%b/%Y:%H:%M:%S", t, 1), term, 100 + i % 900
    }
}' >"$T/gen"
cut -d' ' -f2- "$T/gen" >"$T/access.log"

# Into a 6-partition topic, each record's timestamp its event time, spread
# over the partitions by a key header.
awk '{ t = $1; sub(/^[0-9]+ /, ""); gsub(/"/, "\\\"")
       printf "{\"ts\":%d000000000,\"headers\":{\"k\":\"c%d\"},\"body\":\"%s\"}\n", t, NR % 97, $0 }' \
    "$T/gen" | "$CHANBUF" --sink "kafka://$B/access?key=k" 2>"$T/chanbuf.err" ||
    fail "chanbuf: $(cat "$T/chanbuf.err")"
"$CONSUME" -b "$B" -t access -e --start beginning -o json --order-wait 0 >"$T/all.json"
expect_eq "records in the topic" "$(wc -l <"$T/all.json")" 12000
expect_eq "partitions used" "$(grep -o '"partition":"[0-9]*"' "$T/all.json" | sort -u | wc -l)" 6

agg() { "$WINAGG" -k 'Input=([^ &]*)' --time '\[([^]]+)\]' --lateness 5s -w 10s "$@"; }

# The reference, computed apart: counts per 10 s window and term, as rows.
awk '{ t = $1 - $1 % 10; if (match($0, /Input=[^ &]*/)) n[t "\t" substr($0, RSTART + 6, RLENGTH - 6)]++ }
     END { for (k in n) { split(k, a, "\t")
                          printf "%s\t%s\t%s\t%d\n", strftime("%Y-%m-%dT%H:%M:%SZ", a[1], 1),
                              strftime("%Y-%m-%dT%H:%M:%SZ", a[1] + 10, 1), a[2], n[k] } }' \
    "$T/gen" | sort >"$T/want"

# The same winagg over the source file agrees with the reference.
agg <"$T/access.log" >"$T/file.rows" 2>"$T/file.err"
grep -q 'late=[1-9]' "$T/file.err" && fail "the file alone has late events: $(cat "$T/file.err")"
expect_file <(grep -v '^#' "$T/file.rows" | sort) "$T/want"

# Catch-up through a group, in order: nothing late, the file's rows.
"$CONSUME" -b "$B" -t access -e -G g1 --start beginning | agg >"$T/ord.rows" 2>"$T/ord.err"
grep -q 'late=[1-9]' "$T/ord.err" && fail "in order, late events: $(cat "$T/ord.err")"
expect_file <(grep -v '^#' "$T/ord.rows") <(grep -v '^#' "$T/file.rows")

# Without a group, all 6 partitions assigned at once: the same.
"$CONSUME" -b "$B" -t access -e --start beginning | agg >"$T/ord2.rows" 2>"$T/ord2.err"
grep -q 'late=[1-9]' "$T/ord2.err" && fail "in order without a group, late events: $(cat "$T/ord2.err")"
expect_file <(grep -v '^#' "$T/ord2.rows") <(grep -v '^#' "$T/file.rows")

# As fetched (--order-wait 0), partition after partition: late events.
"$CONSUME" -b "$B" -t access -e -G g2 --start beginning --order-wait 0 | agg >/dev/null 2>"$T/raw.err"
grep -q 'late=[1-9]' "$T/raw.err" || fail "--order-wait 0 made nothing late: $(cat "$T/raw.err")"

# -c in order: the group resumes after exactly what was printed, the held
# records included (they were not handed on, so not committed).
"$CONSUME" -b "$B" -t access -G g3 --start beginning -c 5000 >"$T/c1"
"$CONSUME" -b "$B" -t access -G g3 -e >"$T/c2"
expect_eq "lines over two runs" "$(cat "$T/c1" "$T/c2" | wc -l)" 12000
# A run that ends (-c 1) before most partitions gave anything: they resume
# at their start next time, not at the end (--start's default).
"$CONSUME" -b "$B" -t access -G g4 --start beginning --order-wait 0 -c 1 >"$T/d1"
"$CONSUME" -b "$B" -t access -G g4 -e >"$T/d2"
expect_eq "lines over two runs after -c 1" "$(cat "$T/d1" "$T/d2" | wc -l)" 12000
expect_file <(cat "$T/c1" "$T/c2" | sort) <(sort "$T/access.log")

# A topic that does not exist yet: consume waits, says so once, and reads
# it once a producer has created it.
bg "$CONSUME" -b "$B" -t later -G g4 --start beginning >"$T/later" 2>"$T/later.err"
lpid=$!
wait_until 10 grep -q "waiting for topic 'later' on $B to exist" "$T/later.err" ||
    fail "no word of the wait: $(cat "$T/later.err")"
sleep 1
kill -0 "$lpid" 2>/dev/null || fail "consume did not wait: $(cat "$T/later.err")"
seq 1 20 | sed 's/^/line /' | "$CHANBUF" --sink "kafka://$B/later" 2>"$T/chanbuf2.err" ||
    fail "chanbuf: $(cat "$T/chanbuf2.err")"
wait_lines "$T/later" 20 20
stop "$lpid"
expect_file <(sort "$T/later") <(seq 1 20 | sed 's/^/line /' | sort)
expect_eq "messages" "$(wc -l <"$T/later.err")" 1

# With -e (cron): it waits --timeout at most, then exits 1 with a message.
set +e
s=$(date +%s%N)
"$CONSUME" -b "$B" -t never -G g5 -e --timeout 2s 2>"$T/never.err"; st=$?
ms=$((($(date +%s%N) - s) / 1000000))
set -e
expect_eq "exit status, no topic" "$st" 1
[ "$ms" -ge 1900 ] && [ "$ms" -lt 6000 ] || fail "exited after $ms ms, --timeout 2s"
grep -q "^consume: unknown topic 'never' on $B: it did not appear within 2000 ms" "$T/never.err" ||
    fail "message: $(cat "$T/never.err")"
note "consume-order: ok"
