#!/bin/bash
# attack-broker-disk.sh -- brokerd on a full disk (issue 13), its data
# directory a 4 MiB tmpfs: produced until full, the client is answered
# KAFKA_STORAGE_ERROR (56), brokerd says so once, nothing half-written is
# visible (kcat reads back exactly what was acknowledged: no gap, no offset
# twice), fetches go on; it shuts down and restarts on the full disk, and
# takes appends again, without a restart, once there is room.
# Mounting needs root: skipped without it.
# (bash, like the other brokerd tests; make check runs us with sh)
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || fail "python3 is missing (scripts/bootstrap installs it)"
command -v kcat >/dev/null || fail "kcat is missing (scripts/bootstrap installs it)"
kraw() { timeout 60 python3 "$top_srcdir/test/kraw.py" "$B" "$@"; }

D=$T/data
mkdir "$D"
[ "$(id -u)" = 0 ] && mount -t tmpfs -o size=4m tmpfs "$D" 2>/dev/null ||
    { note "skipping: cannot mount a tmpfs (needs root)"; exit 77; }
# The mount goes before the scratch directory (after brokerd is killed).
cleanup_disk() {
    [ "${BASHPID:-$$}" = "$$" ] || exit 1
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    umount "$D" 2>/dev/null || umount -l "$D" 2>/dev/null || true
    cleanup
}
trap cleanup_disk EXIT INT TERM

# fill_up: take what room is left.
fill_up() { dd if=/dev/zero of="$D/top" bs=4k 2>/dev/null || true; }

# readback: "offset value" of every record of t, the value cut to its number.
readback() {
    timeout 30 kcat -b "$B" -C -t t -e -q -f '%o %s\n' | awk '{ print $1, substr($2, 1, 8) + 0 }'
}

# acked FILE: "offset value" of every record kraw fill had acknowledged.
acked() { awk '$2 == 0 { print $3, $1 }' "$@"; }

# answers FILE OFFSET: kraw fill's answers are acknowledgements with offsets
# OFFSET, OFFSET + 1, ..., then refusals (56, no offset) only; sets nok.
answers() {
    nok=$(awk '$2 == 0' "$1" | wc -l)
    awk -v n="$nok" -v o="$2" 'NR <= n && !($2 == 0 && $3 == o + NR - 1) { exit 1 }
                               NR > n && !($2 == 56 && $3 == -1) { exit 1 }' "$1" ||
        fail "answers: $(awk '{ print $2, $3 }' "$1" | head -20)"
}

# stop_within SECONDS: SIGTERM brokerd; it must be gone within SECONDS, exit 0.
stop_within() {
    kill -TERM "$bpid"
    wait_until "$1" sh -c "! kill -0 $bpid 2>/dev/null" ||
        fail "brokerd still running ${1}s after SIGTERM: $(tail -n 3 "$blog")"
    rc=0
    wait "$bpid" || rc=$?
    expect_eq "brokerd's exit status ($(tail -n 3 "$blog"))" "$rc" 0
}

head -c 3400000 /dev/zero >"$D/filler"
start_brokerd --segment-bytes 256KiB --retention 0 --flush always

# ---- produce until full ----------------------------------------------------
kraw fill t 0 120 10000 >"$T/fill1"
answers "$T/fill1" 0
[ "$nok" -ge 10 ] || fail "only $nok produced before the disk was full"
[ "$nok" -lt 120 ] || fail "the disk never filled"
# Once the last pages are taken, small ones fill what is left of the
# segment's last page, then they are refused too.
fill_up
kraw fill t 1000 60 100 >"$T/fill2"
answers "$T/fill2" "$(awk '$2 == 0' "$T/fill1" | wc -l)"
[ "$nok" -lt 60 ] || fail "the disk never filled for small produces"
end=$(cat "$T/fill1" "$T/fill2" | awk '$2 == 0' | wc -l)
# Said once per spell: when the small produces' first appends came more than
# a second after the refusals began (a loaded machine), brokerd says they work
# again, and the next refusal opens a new spell.
refused=$(grep -c 'No space left on device: Produce is answered KAFKA_STORAGE_ERROR until appends work again' "$blog" || true)
again=$(grep -c 'appends work again (' "$blog" || true)
expect_eq "lines saying the disk refused appends (after $again saying they work again)" \
    "$refused" "$((again + 1))"
[ "$refused" -le 2 ] || fail "the disk's refusals said $refused times"
# Fetches go on, and see exactly what was acknowledged.
acked "$T/fill1" "$T/fill2" >"$T/exp"
readback >"$T/got"
expect_file "$T/got" "$T/exp"

# ---- shut down and restart on the full disk --------------------------------
stop_within 5
start_brokerd --segment-bytes 256KiB --retention 0 --flush always
readback >"$T/got"
expect_file "$T/got" "$T/exp"
kraw fill t 2000 1 100 >"$T/fill3"
expect_eq "produce after the restart on a full disk" "$(cut -d' ' -f2- "$T/fill3")" "56 -1"
# A group's offset commit that cannot be saved is refused, not acknowledged
# and lost at the next restart; said once.
expect_eq "offset commit on a full disk" "$(kraw commit full t 1 5)" "56:1"
expect_eq "the same again" "$(kraw commit full t 1 6)" "56:1"
expect_eq "offsets after refused commits" "$(kraw fetch-offsets full t 1 | cut -d' ' -f1-2)" "0 -1"
expect_eq "lines saying commits are refused" "$(grep -c 'offset commits are refused' "$blog")" 1

# ---- room again: appends resume without a restart ---------------------------
rm "$D/filler" "$D/top"
sleep 1.1      # the line saying it works again waits a second after the last refusal
kraw fill t 3000 5 10000 >"$T/fill4"
answers "$T/fill4" "$end"
expect_eq "produced once there was room" "$nok" 5
expect_eq "lines saying appends work again" "$(grep -c '^brokerd: appends work again' "$blog")" 1
expect_eq "offset commit with room" "$(kraw commit full t 1 7)" "0:1"
expect_eq "the offset committed" "$(kraw fetch-offsets full t 1 | cut -d' ' -f1-2)" "0 7"
expect_eq "lines saying commits are saved again" "$(grep -c 'offset commits are saved again' "$blog")" 1
acked "$T/fill1" "$T/fill2" "$T/fill4" >"$T/exp"
readback >"$T/got"
expect_file "$T/got" "$T/exp"
stop_within 5
