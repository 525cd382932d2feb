#!/bin/sh
# layout.sh -- the house keeps its shape: lib/ is one folder per subsystem,
# each behind one public header named after it; a private header (*_int.h)
# is included only by its own folder's files; cmd/ is the tools and their
# shared cli.[ch], and includes only public headers; lib/ never prints or
# exits; the README's map names every folder.
. "$(dirname "$0")/lib.sh"

cd "$top_srcdir"
for d in lib/*/; do
    sub=$(basename "$d")
    [ -f "lib/$sub/$sub.h" ] || fail "lib/$sub has no public header lib/$sub/$sub.h"
    grep -q "^      $sub/ " README.md || fail "README's layout map does not name lib/$sub/"
done
# Every header and source of lib/ lives in a subsystem folder.
stray=$(find lib -maxdepth 1 -type f \( -name '*.c' -o -name '*.h' \))
[ -z "$stray" ] || fail "files outside a subsystem folder: $stray"

# "#include "X/Y_int.h"" only from lib/X/.
bad=$(grep -n '#include "[a-z]*/[a-z_]*_int\.h"' lib/*/*.[ch] cmd/*.c |
    awk -F: '{ split($1, f, "/"); match($3, /"[a-z]*\//); want = substr($3, RSTART + 1, RLENGTH - 2);
               if (f[1] != "lib" || f[2] != want) print }')
[ -z "$bad" ] || fail "a private header included from outside its folder: $bad"

# Includes of the project's own headers name the folder ("core/core.h").
bad=$(grep -n '#include "[a-z_]*\.h"' lib/*/*.[ch] | grep -v '"[a-z]*/' || true)
[ -z "$bad" ] || fail "an include that does not name its folder: $bad"

# cmd/ is one file per tool, each with its man page, and cli.[ch], which
# every tool's main() shares: what several tools share goes there, not in a
# file that looks like a tool.
for f in cmd/*.c cmd/*.h; do
    t=$(basename "${f%.[ch]}")
    [ "$t" = cli ] && continue
    [ "${f##*.}" = c ] || fail "$f: cmd/ has no header but cli.h"
    [ -f "man/$t.1" ] || [ -f "man/$t.8" ] || fail "$f is not a tool (no man/$t.1 or .8)"
done

# lib/ never prints and never exits.
bad=$(grep -nE '\b(printf|fprintf|puts|fputs|perror|exit|_exit|abort|err|errx|warn|warnx)\(' \
    lib/*/*.c | grep -vE 'snprintf|vsnprintf|rn_|^\S+:\s*(/\*|\*)' || true)
[ -z "$bad" ] || fail "lib/ prints or exits: $bad"
note "layout: ok"
