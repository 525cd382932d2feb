#!/bin/sh
# manpages.sh -- every man page is clean mdoc, and every tool's --help usage
# is its man page's SYNOPSIS, word for word.
. "$(dirname "$0")/lib.sh"

norm() { tr -s ' \n' '  ' | sed 's/ *| */|/g; s/^ *//; s/ *$//'; }

for page in "$top_srcdir"/man/*.[0-9]; do
    tool=$(basename "${page%.*}")
    lint=$(mandoc -Tlint -Wwarning "$page" 2>&1 || true)
    [ -z "$lint" ] || fail "$page: $lint"
    [ -x "$top_builddir/$tool" ] || continue
    syn=$(mandoc -Tascii -O width=1000 "$page" | col -b |
        sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' | norm)
    help=$("$top_builddir/$tool" --help | sed '/^$/,$d' | sed 's/^usage: //' | norm)
    expect_eq "$tool --help against its SYNOPSIS" "$help" "$syn"
done
note "manpages: ok"
