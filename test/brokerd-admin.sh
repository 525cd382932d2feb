#!/bin/bash
# brokerd-admin.sh -- brokerd topics against brokerd: create, list, describe
# and delete through librdkafka's admin API, the errors (exists, unknown,
# unreachable broker) as exit 1 with a message, usage errors as exit 2.
# (bash: like the other brokerd tests; make check runs us with sh)
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
BROKERD=$top_builddir/brokerd
command -v kcat >/dev/null || fail "kcat is missing (scripts/bootstrap installs it)"

# start ARGS...: brokerd serve on a port the kernel picks (no clash with
# anything else running), stderr in $blog; sets bpid, blog and B.
nstart=0
start() {
    nstart=$((nstart + 1))
    blog=$T/broker.$nstart.log
    bg "$BROKERD" serve --listen 127.0.0.1:0 --data-dir "$T/data" "$@" 2>"$blog"
    bpid=$!
    wait_until 30 grep -q '^brokerd: listening on' "$blog" ||
        fail "brokerd did not start: $(cat "$blog")"
    B=$(sed -n 's/^brokerd: listening on \([^,]*\),.*/\1/p' "$blog")
}
start --partitions 2

# topics ARGS...: run brokerd topics, stdout in $T/out, stderr in $T/err, status in $rc.
topics() {
    rc=0
    timeout 60 "$BROKERD" topics -b "$B" "$@" >"$T/out" 2>"$T/err" || rc=$?
}

topics --list
expect_eq "--list on an empty broker (rc)" "$rc" 0
expect_eq "--list on an empty broker" "$(cat "$T/out")" ""

topics --create zeta --partitions 3
expect_eq "--create zeta (rc; $(cat "$T/err"))" "$rc" 0
topics --create alpha
expect_eq "--create alpha (rc; $(cat "$T/err"))" "$rc" 0
[ -d "$T/data/zeta-2" ] && [ ! -d "$T/data/zeta-3" ] || fail "zeta's partition directories"
[ -d "$T/data/alpha-1" ] || fail "alpha: the broker's default of 2 partitions"

topics --list
expect_eq "--list (rc)" "$rc" 0
expect_eq "--list" "$(tr '\n' ' ' <"$T/out")" "alpha zeta "

topics --describe zeta
expect_eq "--describe zeta (rc)" "$rc" 0
printf 'zeta\t0\t0\t0\t0\nzeta\t1\t0\t0\t0\nzeta\t2\t0\t0\t0\n' >"$T/exp"
expect_file "$T/out" "$T/exp"

topics --describe
expect_eq "--describe (rc)" "$rc" 0
printf 'alpha\t0\t0\t0\t0\nalpha\t1\t0\t0\t0\n' | cat - "$T/exp" >"$T/exp.all"
expect_file "$T/out" "$T/exp.all"

# An unknown topic is reported, the others described, and nothing is created.
topics --describe nosuch zeta
expect_eq "--describe nosuch zeta (rc)" "$rc" 1
grep -q '^brokerd: nosuch: unknown topic$' "$T/err" || fail "describe nosuch: $(cat "$T/err")"
expect_file "$T/out" "$T/exp"
[ ! -d "$T/data/nosuch-0" ] || fail "describing nosuch created it"

topics --create zeta
expect_eq "--create zeta again (rc)" "$rc" 1
grep -q 'zeta: topic already exists' "$T/err" || fail "create twice: $(cat "$T/err")"

# The topic works for kcat, and deleting it takes its data.
seq 1 50 | kcat -b "$B" -P -t zeta || fail "produce to zeta"
n=$(timeout 20 kcat -b "$B" -C -t zeta -e -q | wc -l)
expect_eq "messages in zeta" "$n" 50
topics --delete zeta
expect_eq "--delete zeta (rc; $(cat "$T/err"))" "$rc" 0
[ ! -d "$T/data/zeta-0" ] || fail "zeta-0 still on disk"
topics --list
expect_eq "--list after delete" "$(tr '\n' ' ' <"$T/out")" "alpha "
topics --delete zeta
expect_eq "--delete zeta again (rc)" "$rc" 1
grep -q 'zeta: unknown topic' "$T/err" || fail "delete twice: $(cat "$T/err")"

# Usage errors.
for args in "--list --delete alpha" "--describe --partitions 3" "--create" "--bogus" \
        "--list extra" "--create x --partitions 0" "--list --timeout soon" ""; do
    topics $args
    expect_eq "topics $args (rc)" "$rc" 2
    grep -q '^brokerd: ' "$T/err" || fail "topics $args: no message: $(cat "$T/err")"
done
rc=0; "$BROKERD" topics --list >/dev/null 2>"$T/err" || rc=$?
expect_eq "topics without -b (rc)" "$rc" 2

# An unreachable broker: exit 1 and one clear message after the timeout, not
# before it and not much after. Port 1 is privileged: nobody listens there.
for args in "--list" "--describe" "--create x" "--delete x"; do
    start=$(date +%s)
    rc=0
    timeout 60 "$BROKERD" topics -b 127.0.0.1:1 --timeout 2s $args >"$T/out" 2>"$T/err" || rc=$?
    took=$(( $(date +%s) - start ))
    expect_eq "unreachable $args (rc; $(cat "$T/err"))" "$rc" 1
    grep -q '^brokerd: 127.0.0.1:1: .*broker unreachable' "$T/err" ||
        fail "unreachable $args: $(cat "$T/err")"
    expect_eq "unreachable $args: lines on stderr" "$(wc -l <"$T/err")" 1
    [ ! -s "$T/out" ] || fail "unreachable $args: stdout: $(cat "$T/out")"
    [ "$took" -le 20 ] || fail "unreachable $args took ${took}s"
done

stop "$bpid"
! grep -q Sanitizer "$T"/broker.*.log || fail "$(cat "$T"/broker.*.log)"
note "brokerd-admin: ok"
