#!/bin/bash
# vocabulary.sh -- every tool speaks the one vocabulary of runnel(7): -h and
# --help, -V and --version, -v and -q; -o with the values runnel(7)'s table
# lists for it; -X and -F where the table says the tool talks Kafka, and
# --metrics where it says the tool serves metrics, and nowhere else; --help's
# option list and the man page's SYNOPSIS name the same flags; a usage error
# is one line and exit 2; the old spellings still work, with one warning that
# names the new one; sizes end in B; and a run that went well says nothing on
# standard error.
. "$(dirname "$0")/lib.sh"

command -v mandoc >/dev/null || fail "mandoc is not installed (scripts/bootstrap)"
B7=$top_srcdir/man/runnel.7
[ -f "$B7" ] || fail "no man/runnel.7"

# run CMD...: stdout in $T/out, stderr in $T/err, status in $st.
run() { st=0; "$@" >"$T/out" 2>"$T/err" </dev/null || st=$?; }
lines() { wc -l <"$1" | tr -d ' '; }

# one_line_usage_error WHAT CMD...: exit 2 and exactly one line on stderr,
# "TOOL: ...; try 'TOOL --help'".
one_line_usage_error() {
    what=$1; shift
    run "$@"
    expect_eq "$what: status" "$st" 2
    expect_eq "$what: lines on stderr ($(cat "$T/err"))" "$(lines "$T/err")" 1
    grep -qE "^$name: .*; try '$name --help'\$" "$T/err" || fail "$what: $(cat "$T/err")"
}

# ---- runnel(7)'s table: tool, -o values, Kafka options, --metrics ---------
mandoc -Tascii -O width=200 "$B7" | col -bx >"$T/runnel.txt"
sed -n '/^ *Which tool takes which/,/^ *The first value/p' "$T/runnel.txt" |
    sed '1d;$d' | sed '/^ *$/d; /^ *tool /d; s/^ *//' |
    awk -F '  +' '{ print $1 "|" $2 "|" $3 "|" $4 }' >"$T/table"
expect_eq "tools in runnel(7)'s table" "$(cut -d'|' -f1 "$T/table" | tr '\n' ' ')" \
    "logtail chanbuf consume winagg topk brokerd serve brokerd topics brokerd groups "

printf 'client.id=vocabulary\n' >"$T/props"
while IFS='|' read -r tool outs kafka metrics; do
    name=${tool%% *}
    # shellcheck disable=SC2206
    cmd=("$top_builddir/$name")
    [ "$tool" = "$name" ] || cmd+=("${tool#* }")
    case $name in brokerd) page=$top_srcdir/man/brokerd.8 ;; *) page=$top_srcdir/man/$name.1 ;; esac

    # -h, --help: the usage on stdout, status 0, nothing on stderr.
    run "${cmd[@]}" --help
    expect_eq "$tool --help: status" "$st" 0
    [ ! -s "$T/err" ] || fail "$tool --help: stderr: $(cat "$T/err")"
    head -n 1 "$T/out" | grep -q "^usage: $name" || fail "$tool --help: $(head -n 1 "$T/out")"
    cp "$T/out" "$T/help"
    run "${cmd[@]}" -h
    expect_file "$T/out" "$T/help"
    for f in '-h, --help' '-V, --version' '-v, --verbose' '-q, --quiet'; do
        grep -q "^  $f " "$T/help" || fail "$tool --help does not list $f"
    done
    # -V, --version
    for v in -V --version; do
        run "${cmd[@]}" "$v"
        expect_eq "$tool $v: status" "$st" 0
        grep -qE "^$name \(runnel\) [0-9]+\.[0-9]+" "$T/out" || fail "$tool $v: $(cat "$T/out")"
    done

    # -o: the values of the table, and no others.
    if [ "$outs" = "-" ]; then
        one_line_usage_error "$tool -o" "${cmd[@]}" -o json --help
        grep -q "unknown option '-o'" "$T/err" || fail "$tool -o: $(cat "$T/err")"
    else
        for v in $outs; do
            run "${cmd[@]}" -o "$v" --help
            expect_eq "$tool -o $v: status ($(cat "$T/err"))" "$st" 0
            run "${cmd[@]}" --output="$v" --help
            expect_eq "$tool --output=$v: status ($(cat "$T/err"))" "$st" 0
        done
        one_line_usage_error "$tool -o xml" "${cmd[@]}" -o xml --help
        for v in $outs; do
            grep -q "$v" "$T/err" || fail "$tool -o xml does not list $v: $(cat "$T/err")"
        done
        one_line_usage_error "$tool -o with no value" "${cmd[@]}" -o
        grep -q "option '-o' needs a value" "$T/err" || fail "$tool -o: $(cat "$T/err")"
    fi

    # -X and -F where the tool talks Kafka, and nowhere else.
    if [ "$kafka" = "-X -F" ]; then
        for args in "-X client.id=x" "--property client.id=x" "-F $T/props" \
                "--property-file=$T/props"; do
            # shellcheck disable=SC2086
            run "${cmd[@]}" $args --help
            expect_eq "$tool $args: status ($(cat "$T/err"))" "$st" 0
        done
        grep -q '^  -X, --property NAME=VALUE' "$T/help" || fail "$tool --help: no -X, --property"
        grep -q '^  -F, --property-file FILE' "$T/help" || fail "$tool --help: no -F, --property-file"
    else
        one_line_usage_error "$tool -X" "${cmd[@]}" -X client.id=x --help
    fi

    # --metrics where the table says so, and nowhere else.
    if [ "$metrics" = "--metrics" ]; then
        run "${cmd[@]}" --metrics :0 --help
        expect_eq "$tool --metrics :0: status ($(cat "$T/err"))" "$st" 0
    else
        one_line_usage_error "$tool --metrics" "${cmd[@]}" --metrics :0 --help
    fi

    # -v and -q, and not both.
    for v in -v --verbose -q --quiet; do
        run "${cmd[@]}" "$v" --help
        expect_eq "$tool $v: status" "$st" 0
    done
    one_line_usage_error "$tool -v -q" "${cmd[@]}" -v -q
    grep -q 'cannot use -v with -q' "$T/err" || fail "$tool -v -q: $(cat "$T/err")"

    # Usage errors: one line, a pointer to --help, exit 2.
    one_line_usage_error "$tool --no-such-option" "${cmd[@]}" --no-such-option
    grep -q "unknown option '--no-such-option'" "$T/err" || fail "$tool: $(cat "$T/err")"
    one_line_usage_error "$tool -Z" "${cmd[@]}" -Z
    one_line_usage_error "$tool --help=x" "${cmd[@]}" --help=x

    # --help's option list and the SYNOPSIS name the same flags (-h and -V
    # aside): every option line has a flag in the SYNOPSIS, and every flag of
    # the SYNOPSIS has an option line.
    awk '/^\.Sh SYNOPSIS/ { on = 1; next } /^\.Sh/ { on = 0 } on' "$page" |
        awk '{ for (i = 1; i <= NF; i++) if ($i == "Fl" || $i == ".Fl") {
                   n = $(i + 1)
                   if (n == "Fl") { print "--" $(i + 2); i += 2 }
                   else if (n ~ /^-[a-z]/) { print "-" n; i++ }
                   else if (n ~ /^[A-Za-z]/) { print "-" n; i++ }
               } }' | sort -u >"$T/syn.flags"
    [ -s "$T/syn.flags" ] || fail "$page: no flags in SYNOPSIS"
    sed '1,/^$/d' "$T/help" | grep -E '^ {2,6}-' | sed -E 's/^ +//; s/ {2,}.*//' >"$T/help.lines"
    : >"$T/help.flags"
    while read -r line; do
        flags=$(printf '%s\n' "$line" | grep -oE '(^|[ ,])--?[A-Za-z][A-Za-z-]*' | sed 's/^[ ,]//')
        printf '%s\n' "$flags" >>"$T/help.flags"
        case " $(echo $flags) " in *" -h "*|*" --help "*|*" -V "*|*" --version "*) continue ;; esac
        found=
        for f in $flags; do grep -qxF -- "$f" "$T/syn.flags" && found=1; done
        [ -n "$found" ] || fail "$tool --help lists '$line', which its SYNOPSIS does not name"
    done <"$T/help.lines"
    while read -r f; do
        grep -qxF -- "$f" "$T/help.flags" || fail "$page: SYNOPSIS names $f; $tool --help does not list it"
    done <"$T/syn.flags"

    # The man page documents the shared options and the exit status.
    for f in 'Fl h , Fl' 'Fl V , Fl' 'Fl v , Fl' 'Fl q , Fl'; do
        grep -q "^\.It $f" "$page" || fail "$page: no .It $f"
    done
    grep -q '^\.Sh EXIT STATUS' "$page" || fail "$page: no EXIT STATUS"
    grep -q '^\.Xr runnel 7' "$page" || fail "$page: no SEE ALSO runnel(7)"
done <"$T/table"
note "shared options: ok"

# ---- sizes end in B; the old spellings warn and work ---------------------
name=logtail
: >"$T/empty"
run "$LOGTAIL" --once --max-line 64KiB "$T/empty"
expect_eq "--max-line 64KiB: status, stderr" "$st:$(cat "$T/err")" "0:"
run "$LOGTAIL" --once --max-line 64k "$T/empty"
expect_eq "--max-line 64k: status, stderr" "$st:$(cat "$T/err")" \
    "0:logtail: --max-line 64k: a size's unit ends in B now; write 64KiB (64k goes in the next release)"
run "$LOGTAIL" -q --once --max-line 64k "$T/empty"
expect_eq "-q --max-line 64k: status, stderr" "$st:$(cat "$T/err")" "0:"
one_line_usage_error "--max-line 10s" "$LOGTAIL" --once --max-line 10s "$T/empty"
grep -q "use B, KiB, MiB, GiB or TiB" "$T/err" || fail "--max-line 10s: $(cat "$T/err")"
# A duration is a duration: 10m is ten minutes, in roll= too.
name=chanbuf
mkdir "$T/roll"
run "$top_builddir/chanbuf" --sink "file://$T/roll/p?roll=10m"
expect_eq "roll=10m: status" "$st" 0
grep -q "roll=10m is 10 minutes now (it was 10 MiB): write roll=10MiB for a size" "$T/err" ||
    fail "roll=10m: $(cat "$T/err")"
run "$top_builddir/chanbuf" --sink "file://$T/roll/p?roll=10min&roll=10MiB"
expect_eq "roll=10min&roll=10MiB: status, stderr" "$st:$(cat "$T/err")" "0:"

# One warning line naming the new spelling, and the old one still does
# what it did.
name=winagg
printf 'a 1\nb 2\na 3\n' >"$T/kv"
"$top_builddir/winagg" -f 1 -a sum --value-field 2 -w 1d "$T/kv" 2>"$T/err" >"$T/new"
[ ! -s "$T/err" ] || fail "winagg, new spelling: $(cat "$T/err")"
grep -q "	a	4\$" "$T/new" || fail "winagg --value-field: $(cat "$T/new")"
old() { # WHAT NEW-SPELLING CMD...: the old spelling's output and warning
    what=$1 now=$2; shift 2
    run "$@"
    expect_eq "$what: status ($(cat "$T/err"))" "$st" 0
    expect_eq "$what: lines on stderr" "$(lines "$T/err")" 1
    grep -q "is an old spelling that goes in the next release; write $now\$" "$T/err" ||
        fail "$what: $(cat "$T/err")"
}
old "winagg -F 1" "-f N" "$top_builddir/winagg" -F 1 -a sum --value-field 2 -w 1d "$T/kv"
expect_file "$T/out" "$T/new"
old "winagg -V 2" "--value-field N" "$top_builddir/winagg" -f 1 -a sum -V 2 -w 1d "$T/kv"
expect_file "$T/out" "$T/new"
old "winagg -v REGEX" "--value REGEX" "$top_builddir/winagg" -f 1 -a sum -v ' ([0-9]+)' -w 1d "$T/kv"
expect_file "$T/out" "$T/new"
# ... and where they cannot be the old ones, -v is --verbose, -V --version.
run "$top_builddir/winagg" -v -f 1 -w 1d "$T/kv"
expect_eq "winagg -v: status" "$st" 0
grep -q '^winagg: events=3 ' "$T/err" || fail "winagg -v: $(cat "$T/err")"
run "$top_builddir/winagg" -V
grep -q '^winagg (runnel) ' "$T/out" || fail "winagg -V: $(cat "$T/out")"

name=chanbuf
old "chanbuf --fsync" "--flush (as brokerd's)" "$top_builddir/chanbuf" --dir "$T/cd" --fsync 100ms

name=consume
for o in "--offset beginning:--start" "--exit-at-end:--once (or -e)"; do
    # shellcheck disable=SC2086
    run "$top_builddir/consume" -b 127.0.0.1:1 -t x -e --timeout 200ms ${o%%:*}
    expect_eq "consume ${o%%:*}: status (not a usage error)" "$st" 1
    head -n 1 "$T/err" | grep -q "^consume: ${o%%[ :]*} is an old spelling that goes in the next release; write ${o#*:}\$" ||
        fail "consume ${o%%:*}: $(cat "$T/err")"
done
name=brokerd
run timeout 60 "$top_builddir/brokerd" topics -b 127.0.0.1:1 -t 200ms --list
expect_eq "brokerd topics -t: status (not a usage error)" "$st" 1
head -n 1 "$T/err" | grep -q "^brokerd: -t DURATION (the timeout) is an old spelling .*; write --timeout DURATION\$" ||
    fail "brokerd topics -t: $(cat "$T/err")"
"$top_builddir/brokerd" serve -l 127.0.0.1:0 -d "$T/bd" -p 2 2>"$T/bd.err" &
bpid=$!; PIDS="$PIDS $bpid"
wait_until 30 grep -q '^brokerd: listening on' "$T/bd.err" || fail "brokerd -d -p: $(cat "$T/bd.err")"
stop "$bpid"
grep -q '^brokerd: -d DIR is an old spelling .*; write --data-dir DIR$' "$T/bd.err" &&
    grep -q '^brokerd: -p N (the partitions) is an old spelling .*; write --partitions N$' "$T/bd.err" &&
    [ -d "$T/bd" ] || fail "brokerd serve -d -p: $(cat "$T/bd.err")"
note "old spellings: ok"

# ---- silent on success; counters with -v; -q keeps a failure's reason ------
seq 1 100 >"$T/nums"
for c in "$LOGTAIL --once $T/nums" "$top_builddir/chanbuf" "$top_builddir/winagg -k ^(.) -w 1d" \
        "$top_builddir/topk -k ^(.)"; do
    # shellcheck disable=SC2086
    $c <"$T/nums" >/dev/null 2>"$T/err" || fail "$c: $(cat "$T/err")"
    [ ! -s "$T/err" ] || fail "$c, a run that went well: $(cat "$T/err")"
    # shellcheck disable=SC2086
    $c -v <"$T/nums" >/dev/null 2>"$T/err" || fail "$c -v: $(cat "$T/err")"
    expect_eq "$c -v: lines on stderr ($(cat "$T/err"))" "$(lines "$T/err")" 1
    grep -qE '^[a-z]+: .*[a-z]+=[0-9]+' "$T/err" || fail "$c -v: $(cat "$T/err")"
done
# -q holds warnings back, but not the reason of a failure
run "$LOGTAIL" -q --once "$T/nosuch"
expect_eq "logtail -q, a file not there: status, stderr" "$st:$(cat "$T/err")" "0:"
run "$LOGTAIL" -q --once --exec 'echo hi; exit 3'
expect_eq "logtail -q, a command that failed: status" "$st" 1
grep -q "exited with status 3" "$T/err" || fail "logtail -q: the reason is lost: $(cat "$T/err")"
note "silence: ok"
note "vocabulary: ok"
