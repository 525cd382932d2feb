#!/bin/sh
# logtail-errors.sh -- what goes wrong is said clearly: unreadable files
# (the others go on, status 1), over-long lines cut and counted, usage errors
# (status 2), a closed stdout (quiet).
. "$(dirname "$0")/lib.sh"

printf 'good\n' >"$T/ok.log"
mkdir "$T/dir.log"

# A directory named as a file: a warning naming it, the other file is read.
set +e
"$LOGTAIL" --once --start beginning "$T/dir.log" "$T/ok.log" >"$T/out" 2>"$T/err"
st=$?
set -e
expect_eq "status with an unreadable file" $st 1
expect_eq "the readable file" "$(cat "$T/out")" good
grep -q "^logtail: $T/dir.log: is a directory" "$T/err" || fail "message: $(cat "$T/err")"

# Permission denied (as an unprivileged user when we are root).
printf 'secret\n' >"$T/secret.log"
chmod 000 "$T/secret.log"
chmod 755 "$T"
run_as=
if [ "$(id -u)" -eq 0 ]; then
    command -v setpriv >/dev/null && run_as="setpriv --reuid=65534 --regid=65534 --clear-groups"
fi
if [ "$(id -u)" -ne 0 ] || [ -n "$run_as" ]; then
    chmod 644 "$T/ok.log"
    set +e
    $run_as "$LOGTAIL" --once --start beginning "$T/secret.log" "$T/ok.log" >"$T/out" 2>"$T/err"
    st=$?
    set -e
    expect_eq "status with a denied file" $st 1
    expect_eq "the readable file" "$(cat "$T/out")" good
    grep -q "secret.log: Permission denied" "$T/err" || fail "message: $(cat "$T/err")"
else
    note "skipping the permission test: root without setpriv"
fi

# Over-long lines are cut, counted and reported; memory stays bounded.
{ echo short; head -c 5000 /dev/zero | tr '\0' x; echo; echo tail; } >"$T/long.log"
"$LOGTAIL" --once --start beginning --max-line 100 "$T/long.log" >"$T/out" 2>"$T/err"
expect_eq "cut lines" "$(awk '{ print length($0) }' "$T/out" | tr '\n' ' ')" "5 100 4 "
grep -q "1 line longer than 100 bytes cut" "$T/err" || fail "message: $(cat "$T/err")"
# A 64 MB line without a newline, through stdin: output and memory bounded.
head -c 64000000 /dev/zero | tr '\0' y | "$LOGTAIL" --max-line 1KiB >"$T/out" 2>/dev/null
expect_eq "64 MB line cut to" "$(wc -c <"$T/out")" 1025

# Usage errors: status 2 and a message.
for args in "--start middle x" "-o xml x" "--restart x" "--max-line 0 x" "--bogus"; do
    set +e
    # shellcheck disable=SC2086
    "$LOGTAIL" $args >/dev/null 2>"$T/err"
    st=$?
    set -e
    expect_eq "status of logtail $args" $st 2
    grep -q "^logtail: " "$T/err" || fail "no message for $args"
done
"$LOGTAIL" --help | head -n 1 | grep -q '^usage: logtail ' || fail "--help"
"$LOGTAIL" --version | grep -q '^logtail (runnel) ' || fail "--version"

# stdout closed early: quiet, and no error status.
seq 1 200000 >"$T/big.log"
"$LOGTAIL" --once --start beginning "$T/big.log" 2>"$T/err" | head -n 1 >/dev/null
[ ! -s "$T/err" ] || fail "noise on a closed pipe: $(cat "$T/err")"
# A file that does not exist yet is said once, as tail -F does, and read
# when it appears; a rotation of a file already found says nothing.
bg "$LOGTAIL" "$T/later.log" >"$T/later.out" 2>"$T/later.err"
lpid=$!
wait_until 10 grep -q 'later.log: no such file yet; waiting for it$' "$T/later.err" ||
    fail "no word about the missing file: $(cat "$T/later.err")"
sleep 0.3
echo first >"$T/later.log"
wait_lines "$T/later.out" 1
mv "$T/later.log" "$T/later.log.1"
sleep 0.2
echo second >"$T/later.log"
wait_lines "$T/later.out" 2
stop "$lpid"
expect_eq "said once" "$(grep -c 'no such file' "$T/later.err")" 1
expect_eq "lines" "$(tr '\n' ' ' <"$T/later.out")" "first second "
"$LOGTAIL" --once "$T/nope.log" "$T/nope*.gz" 2>"$T/nope.err" || true
grep -qx "logtail: $T/nope.log: no such file" "$T/nope.err" || fail "--once missing: $(cat "$T/nope.err")"
grep -qx "logtail: $T/nope\*.gz: no file matches" "$T/nope.err" || fail "--once glob: $(cat "$T/nope.err")"
note "errors: ok"
