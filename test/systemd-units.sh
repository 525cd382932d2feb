#!/bin/sh
# systemd-units.sh -- the units of contrib/systemd, as make builds them:
# systemd-analyze verify finds nothing to say (their tools and man pages are
# found), they keep the sandbox (the settings named below, and an exposure
# of at most 2.0 by systemd-analyze security), their state is in their
# StateDirectory; and their command lines, expanded as systemd expands them,
# run a pipeline logtail -> chanbuf -> brokerd that delivers every line and
# stops with status 0 on SIGTERM.
. "$(dirname "$0")/lib.sh"

command -v systemd-analyze >/dev/null ||
    fail "systemd-analyze is missing (scripts/bootstrap installs systemd)"
command -v man >/dev/null || fail "man is missing (scripts/bootstrap installs man-db)"
command -v kcat >/dev/null || fail "kcat is missing (scripts/bootstrap installs it)"
bindir=$(make_var bindir)
case $bindir in /*) ;; *) fail "bindir '$bindir' is not absolute" ;; esac

# The units as built, their ExecStart pointed at this build's tools (verify
# needs the program to exist), and the man pages where man finds them.
mkdir -p "$T/units"
for u in brokerd.service chanbuf@.service logtail@.service; do
    src=$top_builddir/contrib/systemd/$u
    [ -f "$src" ] || fail "$src is not built"
    grep -q "^ExecStart=$bindir/" "$src" || fail "$u does not run a tool of $bindir: $(grep ExecStart "$src")"
    sed "s|^ExecStart=$bindir/|ExecStart=$top_builddir/|" "$src" >"$T/units/$u"
done
for p in "$top_srcdir"/man/*.[1-9]; do
    mkdir -p "$T/man/man${p##*.}"
    cp "$p" "$T/man/man${p##*.}/"
done
set -- "$T/units/brokerd.service" "$T/units/chanbuf@test.service" "$T/units/logtail@test.service"
MANPATH=$T/man systemd-analyze verify "$@" >"$T/verify" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$T/verify")"
[ ! -s "$T/verify" ] || fail "systemd-analyze verify says: $(cat "$T/verify")"
systemd-analyze security --offline=yes --threshold=20 "$@" >"$T/security" 2>&1 ||
    fail "exposure over 2.0: $(grep -a -e '^✗' -e 'Overall' "$T/security")"
note "$(grep -a 'Overall exposure' "$T/security" | sed 's/^[^O]*//' | tr '\n' ' ')"

# The sandbox each unit keeps (a drop-in may loosen it; the units may not).
for u in brokerd.service chanbuf@.service logtail@.service; do
    f=$T/units/$u
    for want in DynamicUser=yes StateDirectory= ProtectSystem=strict ProtectHome=yes \
        PrivateTmp=yes PrivateDevices=yes NoNewPrivileges=yes CapabilityBoundingSet= \
        'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
        SystemCallFilter=@system-service MemoryDenyWriteExecute=yes \
        Restart=on-failure RestartPreventExitStatus=2 KillSignal=SIGTERM; do
        grep -q "^$want" "$f" || fail "$u has no $want"
    done
    # SIGHUP stops the tools (none reopens files): no reload by kill -HUP.
    if grep -q '^ExecReload=' "$f"; then fail "$u reloads: $(grep ExecReload "$f")"; fi
    # The state the tool keeps is in the unit's StateDirectory.
    sd=$(sed -n 's/^StateDirectory=//p' "$f")
    grep -q "^ExecStart=.* %S/$sd[/ ]" "$f" || fail "$u keeps no state in %S/$sd: $(grep ExecStart "$f")"
done
grep -q '^LimitNOFILE=' "$T/units/brokerd.service" || fail "brokerd.service has no LimitNOFILE"
grep -q '^ReadOnlyPaths=/var/log' "$T/units/logtail@.service" || fail "logtail@.service has no ReadOnlyPaths=/var/log"

# exec_line UNIT INSTANCE ENVFILE: the unit's command line as systemd runs
# it, one argument a line: %S, %i and %% replaced, then the variables of
# Environment= and ENVFILE ("${X}" one argument, "$X" split at spaces,
# nothing when empty).
exec_line() {
    (
        set -f +u
        for kv in $(sed -n 's/^Environment=//p' "$T/units/$1"); do export "$kv"; done
        while IFS= read -r kv; do
            case $kv in ''|'#'*) continue ;; esac
            v=${kv#*=}; v=${v#\"}; v=${v%\"}
            export "${kv%%=*}=$v"
        done <"$3"
        line=$(sed -n 's/^ExecStart=//p' "$T/units/$1" |
            sed -e "s|%S|$T/state|g" -e "s|%i|$2|g" -e 's|%%|%|g' -e 's|\${\([A-Z_]*\)}|"$\1"|g')
        eval "set -- $line"
        printf '%s\n' "$@"
    )
}
# run_unit UNIT INSTANCE ENVFILE LOG: start it as systemd would; sets upid.
run_unit() {
    exec_line "$1" "$2" "$3" >"$T/argv.$2" || fail "$1: cannot expand ExecStart"
    note "$1 ($2): $(tr '\n' ' ' <"$T/argv.$2")"
    : >"$4"
    (IFS='
'; set -f; exec $(cat "$T/argv.$2") </dev/null >>"$4" 2>&1) &
    upid=$!
    PIDS="$PIDS $upid"
}
# stop_unit PID NAME: SIGTERM (KillSignal), which must end it with status 0.
stop_unit() {
    kill -TERM "$1"
    st=0
    wait "$1" || st=$?
    [ "$st" -eq 0 ] || fail "$2 exited $st on SIGTERM: $(tail -5 "$T/$2.log")"
}

# StateDirectory= is made by systemd before the start.
mkdir -p "$T/state/brokerd" "$T/state/chanbuf/svc" "$T/state/logtail/svc" "$T/log"
printf 'LISTEN=127.0.0.1:0\nOPTS=--partitions 2\n' >"$T/brokerd.env"
run_unit brokerd.service - "$T/brokerd.env" "$T/brokerd.log"; bpid=$upid
wait_until 30 grep -q '^brokerd: listening on' "$T/brokerd.log" ||
    fail "brokerd did not start: $(cat "$T/brokerd.log")"
B=$(sed -n 's/^brokerd: listening on \([^,]*\),.*/\1/p' "$T/brokerd.log")

printf 'LISTEN=127.0.0.1:0\nOPTS="--sink kafka://%s/svc"\n' "$B" >"$T/chanbuf.env"
run_unit chanbuf@.service svc "$T/chanbuf.env" "$T/chanbuf.log"; cpid=$upid
wait_until 30 grep -q '^chanbuf: listening on' "$T/chanbuf.log" ||
    fail "chanbuf did not start: $(cat "$T/chanbuf.log")"
C=$(sed -n 's/^chanbuf: listening on //p' "$T/chanbuf.log")

"$GENLOG" --seq -n 2000 >"$T/log/access.log"
printf 'TO=tcp://%s\nFILES=%s\n' "$C" "$T/log/access.lo?" >"$T/logtail.env"
run_unit logtail@.service svc "$T/logtail.env" "$T/logtail.log"; lpid=$upid

got() { kcat -b "$B" -C -t svc -e -q 2>/dev/null >"$T/got"; [ "$(seq_of "$T/got" | sort -un | wc -l)" -ge 2000 ]; }
wait_until 60 got || fail "the topic has $(seq_of "$T/got" | sort -un | wc -l) of 2000 lines: $(cat "$T"/*.log)"
stop_unit "$lpid" logtail
stop_unit "$cpid" chanbuf
stop_unit "$bpid" brokerd
expect_eq "lines in the topic" "$(wc -l <"$T/got")" 2000
[ -s "$T/state/logtail/svc/positions" ] || fail "logtail saved no positions in its StateDirectory"
[ -n "$(ls "$T/state/chanbuf/svc")" ] || fail "chanbuf kept no channel in its StateDirectory"
[ -d "$T/state/brokerd/svc-0" ] || fail "brokerd kept no partition in its StateDirectory: $(ls "$T/state/brokerd")"
note "systemd-units: verified; their command lines carried 2000 lines logtail -> chanbuf -> brokerd"
