#!/bin/sh
# install.sh -- make install DESTDIR=... puts the six tools, every man page
# in its section and the systemd units in place, and nothing else; the
# installed tools run and their pages read with man; the README's crontab
# lines run with the installed tools alone on PATH; make uninstall removes
# every file again.
. "$(dirname "$0")/lib.sh"

TOOLS="logtail chanbuf winagg topk brokerd consume"
UNITS="brokerd.service chanbuf@.service logtail@.service"
D=$T/root

bindir=$(make_var bindir) mandir=$(make_var mandir) sysconfdir=$(make_var sysconfdir)
unitdir=$(make_var systemdsystemunitdir)
case $bindir in /*) ;; *) fail "bindir '$bindir' is not absolute" ;; esac
note "bindir=$bindir mandir=$mandir unitdir=$unitdir"

mk install DESTDIR="$D" >"$T/install.out" 2>&1 || fail "make install: $(tail -20 "$T/install.out")"

# Exactly these files: the tools, every page of man/ in its section, the units.
{
    for t in $TOOLS; do echo "$bindir/$t"; done
    for p in "$top_srcdir"/man/*.[1-9]; do
        p=$(basename "$p")
        echo "$mandir/man${p##*.}/$p"
    done
    case $unitdir in ''|no) ;; *) for u in $UNITS; do echo "$unitdir/$u"; done ;; esac
} | sort >"$T/want"
(cd "$D" && find . \( -type f -o -type l \) | sed 's|^\.||' | sort) >"$T/got"
expect_file "$T/got" "$T/want"

for t in $TOOLS; do
    [ -x "$D$bindir/$t" ] || fail "$bindir/$t is not executable"
    v=$("$D$bindir/$t" --version) || fail "installed $t --version failed"
    case $v in "$t "*) ;; *) fail "installed $t --version says '$v'" ;; esac
done

# man -l reads every installed page, and man finds it by name in its section.
for p in "$top_srcdir"/man/*.[1-9]; do
    p=$(basename "$p") name=${p%.*} sec=${p##*.}
    page=$D$mandir/man$sec/$p
    MANPAGER=cat MANWIDTH=80 man -l "$page" >"$T/man.out" 2>"$T/man.err" ||
        fail "man -l $page: $(cat "$T/man.err")"
    grep -q '^NAME' "$T/man.out" || fail "man -l $page shows no NAME: $(head -5 "$T/man.out")"
    grep -q "^ *$name " "$T/man.out" || fail "man -l $page does not name $name"
    w=$(man -M "$D$mandir" -w "$sec" "$name" 2>&1) || fail "man -M ... $sec $name: $w"
    expect_eq "man -w $sec $name" "$w" "$page"
done

# The units run the installed tools and read their options from sysconfdir.
case $unitdir in ''|no) ;; *)
    for u in $UNITS; do
        f=$D$unitdir/$u
        grep -q '@[a-z]*@' "$f" && fail "$u: not substituted: $(grep '@[a-z]*@' "$f")"
        t=${u%%[@.]*}
        grep -q "^ExecStart=$bindir/$t " "$f" || fail "$u does not run $bindir/$t: $(grep ExecStart "$f")"
        grep -q "^EnvironmentFile=-\{0,1\}$sysconfdir/runnel/" "$f" ||
            fail "$u: no EnvironmentFile in $sysconfdir/runnel: $(grep EnvironmentFile "$f")"
    done ;;
esac

# The README's crontab, run as cron runs it (sh -c, an empty environment but
# the crontab's own settings), with its /usr/local/bin being the install.
tab=$(mawk '/^    PATH=/ { on = 1 } on && /^    / { print substr($0, 5); next } on { exit }' \
    "$top_srcdir/README.md")
echo "$tab" | grep -q '^PATH=.*/usr/local/bin' ||
    fail "README.md: no crontab block starting with a PATH= that has /usr/local/bin"
path=$(echo "$tab" | sed -n 's/^PATH=//p' | sed "s|/usr/local/bin|$D$bindir|")
echo "$tab" | grep -v '^PATH=' | grep -v '^#' | grep -v '^$' >"$T/lines"
[ -s "$T/lines" ] || fail "README.md: no crontab line after the PATH="
mkdir -p "$T/var/log/nginx" "$T/var/lib/runnel"
# Three hours of the log (1000 lines each): two hourly windows close.
for h in 0 1 2; do
    "$GENLOG" -n 1000 --start $((1700000000 + h * 3600)) --seed $((h + 1))
done >"$T/var/log/nginx/access.log"
# cron mails any output: each line must be silent.
cron_run() { # RUN
    n=0
    while IFS= read -r line; do
        n=$((n + 1))
        case $line in *%*) fail "crontab line $n has a % (cron makes it a newline): $line" ;; esac
        set -f; set -- $line; set +f
        [ $# -gt 5 ] || fail "crontab line $n has no command: $line"
        cmd=$(echo "$line" | sed -e 's/^[^ ]* *[^ ]* *[^ ]* *[^ ]* *[^ ]* *//' -e "s|/var/|$T/var/|g")
        note "cron line $n: $cmd"
        (cd "$T" && env -i PATH="$path" HOME="$T" SHELL=/bin/sh LOGNAME=root /bin/sh -c "$cmd") \
            >"$T/cron.out" 2>"$T/cron.err" || fail "crontab line $n failed: $(cat "$T/cron.err")"
        [ ! -s "$T/cron.out" ] && [ ! -s "$T/cron.err" ] ||
            fail "crontab line $n, run $1, is not silent (cron mails it): $(head -5 "$T/cron.out" "$T/cron.err")"
    done <"$T/lines"
}
cron_run 1
# The hot-search line appends the two closed hours' top 10 (TSV rows).
out=$(grep -o ">> *[^ ]*" "$T/lines" | tail -n 1 | sed "s/^>> *//; s|/var/|$T/var/|")
[ -n "$out" ] || fail "README's crontab appends to no file"
[ -s "$out" ] || fail "the crontab wrote nothing to $out"
windows=$(cut -f1 "$out" | sort -u | wc -l)
[ "$windows" -eq 2 ] || fail "$out has $windows windows, expected 2: $(cat "$out")"
# The next run, with nothing new in the log, adds nothing.
cp "$out" "$T/first"
cron_run 2
expect_file "$out" "$T/first"

mk uninstall DESTDIR="$D" >"$T/uninstall.out" 2>&1 || fail "make uninstall: $(tail -20 "$T/uninstall.out")"
left=$(cd "$D" && find . \( -type f -o -type l \))
[ -z "$left" ] || fail "make uninstall left: $left"
note "install: $(wc -l <"$T/want") files in place, tools run, pages read, the README's crontab runs"
