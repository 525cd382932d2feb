#!/bin/bash
# brokerd-groups.sh -- brokerd groups against brokerd: committed offsets, log
# ends and lag per partition after consume -G read part of a topic; resets to
# earliest, latest, an offset and a time (a dry run changes nothing,
# --execute does); -X and -F on consume, chanbuf and brokerd groups: a bad
# property is a usage error naming it, a good one changes what it should.
# (bash: like the other brokerd tests; make check runs us with sh)
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
BROKERD=$top_builddir/brokerd
CONSUME=$top_builddir/consume
command -v kcat >/dev/null || fail "kcat is missing (scripts/bootstrap installs it)"

start_brokerd --partitions 2 --group-initial-delay 0

# groups ARGS...: stdout in $T/out, stderr in $T/err, status in $rc.
groups() {
    rc=0
    timeout 60 "$BROKERD" groups -b "$B" "$@" >"$T/out" 2>"$T/err" || rc=$?
}

# 100 records in each partition; then, after time $T1, 50 more in partition 0.
seq 1 100 | kcat -P -b "$B" -t logs -p 0 || fail "kcat -P (partition 0)"
seq 101 200 | kcat -P -b "$B" -t logs -p 1 || fail "kcat -P (partition 1)"
sleep 0.1
T1=$(date +%s%3N)
sleep 0.1
seq 201 250 | kcat -P -b "$B" -t logs -p 0 || fail "kcat -P (partition 0, later)"

# consume -G reads 120 of the 250 and commits them; -X client.id shows in
# the member id brokerd logs.
timeout 60 "$CONSUME" -b "$B" -t logs -G g --start beginning -c 120 -X client.id=groupie \
    >"$T/read" 2>"$T/cerr" || fail "consume -G: $(cat "$T/cerr")"
expect_eq "records read" "$(wc -l <"$T/read")" 120
grep -q 'group g: generation 1 with 1 member, protocol [a-z]*, leader groupie-' "$blog" ||
    fail "-X client.id=groupie not seen by brokerd: $(grep 'group g' "$blog")"

# --describe: one row per partition with a committed offset; lag = end - committed.
groups --describe g
expect_eq "--describe g (rc; $(cat "$T/err"))" "$rc" 0
expect_eq "--describe rows" "$(wc -l <"$T/out")" 2
awk -F'\t' '$1 != "g" || $2 != "logs" || $6 != $5 - $4 { bad = 1 }
            END { exit bad }' "$T/out" || fail "--describe rows: $(cat "$T/out")"
expect_eq "log ends" "$(cut -f3,5 "$T/out" | tr '\t\n' ': ')" "0:150 1:100 "
expect_eq "committed in all" "$(awk -F'\t' '{ s += $4 } END { print s }' "$T/out")" 120
cp "$T/out" "$T/before"

# plan GROUP-ARGS... EXPECTED: a reset's plan (p0:new p1:new) and its status.
plan() {
    want=${*: -1}
    groups --reset-offsets g --topic logs "${@:1:$#-1}"
    expect_eq "reset ${*:1:$#-1} (rc; $(cat "$T/err"))" "$rc" 0
    expect_eq "reset ${*:1:$#-1}" "$(cut -f3,4 "$T/out" | tr '\t\n' ': ')" "$want"
}
committed() {
    groups --describe g
    cut -f3,4 "$T/out" | tr '\t\n' ': '
}

# A dry run prints the plan and changes nothing.
plan --to-earliest "0:0 1:0 "
grep -q 'dry run' "$T/err" || fail "no dry-run note: $(cat "$T/err")"
groups --describe g
expect_file "$T/out" "$T/before"

plan --to-offset 10 --execute "0:10 1:10 "
expect_eq "after --to-offset 10" "$(committed)" "0:10 1:10 "
plan --to-offset 120 --execute "0:120 1:100 "       # clamped to the log, as Kafka
expect_eq "after --to-offset 120" "$(committed)" "0:120 1:100 "
plan --to-earliest --execute "0:0 1:0 "
expect_eq "after --to-earliest" "$(committed)" "0:0 1:0 "
plan --to-datetime "@$T1" --execute "0:100 1:100 "  # nothing that new in 1: its end
expect_eq "after --to-datetime @T1" "$(committed)" "0:100 1:100 "
plan --to-datetime 2001-09-09T01:46:40Z "0:0 1:0 "
plan --to-latest --execute "0:150 1:100 "
expect_eq "after --to-latest" "$(committed)" "0:150 1:100 "

# The group resumes where it was reset to: from 140 in partition 0.
plan --to-offset 140 --execute "0:140 1:100 "
timeout 60 "$CONSUME" -b "$B" -t logs -G g -e >"$T/read" 2>"$T/cerr" ||
    fail "consume -G after the reset: $(cat "$T/cerr")"
expect_eq "read after reset" "$(sort -n "$T/read" | tr '\n' ' ')" "241 242 243 244 245 246 247 248 249 250 "

# Usage errors.
groups --reset-offsets g --topic logs
expect_eq "reset without --to- (rc)" "$rc" 2
groups --reset-offsets g --topic nosuch --to-earliest
expect_eq "reset of an unknown topic (rc)" "$rc" 1
grep -q 'nosuch: unknown topic' "$T/err" || fail "unknown topic: $(cat "$T/err")"
groups --reset-offsets g --topic logs --to-datetime yesterday
expect_eq "bad --to-datetime (rc)" "$rc" 2

# Members, state, --list and the refusal while a member is in the group
# (brokerd answers DescribeGroups and ListGroups).
bg timeout 60 "$CONSUME" -b "$B" -t logs -G g -X client.id=member >/dev/null 2>"$T/m.err"
mpid=$!
wait_until 30 grep -q 'leader member-' "$blog" || fail "the member did not join: $(cat "$T/m.err")"
groups --describe g --state
! grep -q 'members and state unknown' "$T/err" || fail "no members and state: $(cat "$T/err")"
expect_eq "--describe --state (rc; $(cat "$T/err"))" "$rc" 0
expect_eq "--describe --state" "$(cat "$T/out")" "$(printf 'g\tStable\t1')"
groups --describe g
awk -F'\t' '$7 !~ /^member-/ || $9 != "member" { bad = 1 } END { exit bad }' "$T/out" ||
    fail "--describe with a member: $(cat "$T/out")"
groups --reset-offsets g --topic logs --to-earliest --execute
expect_eq "reset with a member (rc)" "$rc" 1
grep -q 'g: the group has 1 member' "$T/err" || fail "refusal: $(cat "$T/err")"
expect_eq "not reset" "$(stop "$mpid"; committed)" "0:150 1:100 "
groups --list
expect_eq "--list (rc; $(cat "$T/err"))" "$rc" 0
expect_eq "--list" "$(cat "$T/out")" "g"
stop "$mpid"

# -X and -F: a bad property is a usage error naming it, on every client.
rc=0; "$CONSUME" -b "$B" -t logs -X no.such.property=1 2>"$T/err" || rc=$?
expect_eq "consume -X bad (rc)" "$rc" 2
grep -q 'no.such.property' "$T/err" || fail "consume -X bad: $(cat "$T/err")"
groups --list -X fetch.wait.max.ms=soon
expect_eq "groups -X bad value (rc)" "$rc" 2
grep -q 'fetch.wait.max.ms' "$T/err" || fail "groups -X bad value: $(cat "$T/err")"
rc=0; "$BROKERD" topics -b "$B" --list -X bootstrap.servers=elsewhere:1 2>"$T/err" || rc=$?
expect_eq "topics -X bootstrap.servers (rc)" "$rc" 2
grep -q 'bootstrap.servers: set by the tool itself' "$T/err" || fail "topics -X: $(cat "$T/err")"
rc=0; "$CONSUME" -b "$B" -t logs -X enable.auto.offset.store=true 2>"$T/err" || rc=$?
expect_eq "consume -X enable.auto.offset.store (rc)" "$rc" 2
grep -q 'enable.auto.offset.store: set by the tool itself' "$T/err" || fail "$(cat "$T/err")"
printf '# a comment\n\nclient.id = fromfile\nsocket.timeout.ms=abc\n' >"$T/props"
rc=0; "$CONSUME" -b "$B" -t logs -F "$T/props" 2>"$T/err" || rc=$?
expect_eq "consume -F bad line (rc)" "$rc" 2
grep -q "props:4: .*socket.timeout.ms" "$T/err" || fail "consume -F: $(cat "$T/err")"
rc=0; chanbuf_out=$(echo x | "$top_builddir/chanbuf" --sink "kafka://$B/big" -X acks=0 2>&1) || rc=$?
expect_eq "chanbuf -X acks (rc; $chanbuf_out)" "$rc" 2

# A good one changes behaviour: from -F, the consumer's client.id; on
# chanbuf, a message.max.bytes of 1000 drops a record of 2000 bytes.
sed -i '/socket.timeout.ms/d' "$T/props"
timeout 60 "$CONSUME" -b "$B" -t logs -G g2 -F "$T/props" -c 1 --start beginning >/dev/null \
    2>"$T/cerr" || fail "consume -F: $(cat "$T/cerr")"
grep -q 'group g2: .* leader fromfile-' "$blog" || fail "-F client.id: $(grep 'group g2' "$blog")"
{ head -c 2000 /dev/zero | tr '\0' a; echo; echo small; } >"$T/in"
timeout 60 "$top_builddir/chanbuf" --sink "kafka://$B/big" -X message.max.bytes=1000 \
    <"$T/in" 2>"$T/cb.err" || fail "chanbuf -X: $(cat "$T/cb.err")"
grep -q 'dropped=1' "$T/cb.err" || fail "chanbuf -X message.max.bytes: $(cat "$T/cb.err")"
timeout 60 "$CONSUME" -b "$B" -t big --start beginning -e >"$T/big" 2>"$T/cerr" ||
    fail "consume big: $(cat "$T/cerr")"
expect_eq "delivered under -X message.max.bytes=1000" "$(cat "$T/big")" "small"
stop "$bpid"
! grep -q Sanitizer "$T"/broker.*.log || fail "$(cat "$T"/broker.*.log)"
note "brokerd-groups: ok"
