#!/bin/sh
# manpages.sh -- every man page (runnel(7) too) is clean mdoc for both
# formatters people read it with, mandoc and groff (man -l), and every
# tool's --help usage is its man page's SYNOPSIS, word for word.
. "$(dirname "$0")/lib.sh"

command -v mandoc >/dev/null || fail "mandoc is not installed (scripts/bootstrap)"
command -v groff >/dev/null || fail "groff is not installed (scripts/bootstrap: groff-base)"

lq=$(printf '\342\200\230') rq=$(printf '\342\200\231')    # U+2018, U+2019
norm() { tr -s ' \n' '  ' | sed 's/ *| */|/g; s/^ *//; s/ *$//'; }

n=0
for page in "$top_srcdir"/man/*.[0-9]; do
    n=$((n + 1))
    tool=$(basename "${page%.*}")
    lint=$(mandoc -Tlint -Wwarning "$page" 2>&1 || true)
    [ -z "$lint" ] || fail "$page: mandoc: $lint"
    # groff reads mdoc with -man too; -ww turns on every warning, and a
    # byte that is not ASCII (write \[uXXXX]) is one of them.
    warn=$(groff -man -ww -Tutf8 -z "$page" 2>&1 || true)
    [ -z "$warn" ] || fail "$page: groff: $warn"
    # Quotes nested by mistake, which neither warns about: two quoting
    # macros on one line (".Pq Ql 10s , Ql 5m") print "(`10s, `5m'')" -- a
    # second opening quote before the first closes. In UTF-8, where both
    # formatters tell the quotes apart (groff -Tascii prints both as ').
    for fmt in "mandoc -Tutf8" "groff -man -Tutf8"; do
        bad=$($fmt "$page" 2>/dev/null | LC_ALL=C.UTF-8 col -b |
            LC_ALL=C.UTF-8 grep -n "$lq[^$rq]*$lq" || true)
        [ -z "$bad" ] || fail "$page: nested quotes in $fmt: $bad"
    done
    [ -x "$top_builddir/$tool" ] || continue
    syn=$(mandoc -Tascii -O width=1000 "$page" | col -b |
        sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' | norm)
    help=$("$top_builddir/$tool" --help | sed '/^$/,$d' | sed 's/^usage: //' | norm)
    expect_eq "$tool --help against its SYNOPSIS" "$help" "$syn"
done
[ -f "$top_srcdir/man/runnel.7" ] || fail "no man/runnel.7"
[ "$n" -ge 8 ] || fail "only $n man pages"
note "manpages: ok ($n pages)"
