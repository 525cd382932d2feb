#!/bin/sh
# topk-screen.sh -- the table on a terminal (a pty, through script(1)): each
# window replaces the last (cursor home, clear), with every key's rank move,
# and wide keys aligned; the same rows into a pipe give the plain table.
. "$(dirname "$0")/lib.sh"
TOPK=$top_builddir/topk
command -v script >/dev/null || fail "script(1) is missing (Debian package bsdutils)"

W1='2026-11-23T07:40:00Z	2026-11-23T07:40:10Z'
W2='2026-11-23T07:40:10Z	2026-11-23T07:40:20Z'
cat >"$T/rows.tsv" <<EOF
$W1	a	5
$W1	手机	3
$W1	gone	1
$W2	手机	9
$W2	a	4
$W2	b	1
EOF
script -qec "$TOPK -n 3 '$T/rows.tsv'" /dev/null | tr -d '\r' >"$T/tty"
clear=$(printf '\033[H\033[2J')
expect_eq "windows drawn on a cleared screen" "$(grep -cF "$clear" "$T/tty")" 2
awk -v c="$clear" '{ if (index($0, c) == 1) $0 = substr($0, length(c) + 1); print }' \
    "$T/tty" >"$T/screen"
cat >"$T/want" <<EOF
2026-11-23T07:40:00Z .. 2026-11-23T07:40:10Z  top 3 of 3 keys
rank  key   value  move
   1  a         5   new
   2  手机      3   new
   3  gone      1   new

2026-11-23T07:40:10Z .. 2026-11-23T07:40:20Z  top 3 of 3 keys
rank  key   value  move
   1  手机      9    +1
   2  a         4    -1
   3  b         1   new

EOF
expect_file "$T/screen" "$T/want"

# Into a pipe: no escape sequences, no move column.
"$TOPK" -n 3 "$T/rows.tsv" >"$T/pipe"
grep -q "$(printf '\033')" "$T/pipe" && fail "escape sequences into a pipe: $(cat -v "$T/pipe")"
expect_eq "pipe heading" "$(sed -n 2p "$T/pipe")" "rank  key   value"
note "topk-screen: ok"
