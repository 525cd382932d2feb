#!/bin/sh
# logtail-glob.sh -- globs are expanded again so new files are picked up; a
# thousand files are followed at once, fairly.
. "$(dirname "$0")/lib.sh"

mkdir "$T/d"
printf 'a1\n' >"$T/d/a.log"
bg "$LOGTAIL" --start beginning "$T/d/*.log" >"$T/out"
pid=$!
wait_lines "$T/out" 1
printf 'b1\n' >"$T/d/b.log"      # created after the start
printf 'ignored\n' >"$T/d/c.txt" # does not match
wait_lines "$T/out" 2
printf 'a2\n' >>"$T/d/a.log"
printf 'b2\n' >>"$T/d/b.log"
wait_lines "$T/out" 4
stop "$pid"
sort "$T/out" >"$T/sorted"
printf 'a1\na2\nb1\nb2\n' >"$T/exp"
expect_file "$T/sorted" "$T/exp"

# A thousand files, each with 20 lines, then 20 more each while following.
mkdir "$T/many"
i=0
while [ $i -lt 1000 ]; do
    i=$((i + 1))
    echo "f$i" >"$T/many/$i.log"
done
bg "$LOGTAIL" --start beginning "$T/many/*.log" >"$T/mout"
pid=$!
wait_lines "$T/mout" 1000 30
for f in "$T"/many/*.log; do echo "g${f##*/}" >>"$f"; done
wait_lines "$T/mout" 2000 30
stop "$pid"
expect_eq "distinct lines from 1000 files" "$(sort -u "$T/mout" | wc -l)" 2000
note "glob: ok"
