#!/bin/bash
# brokerd-basic.sh -- kcat against brokerd: metadata, produce/consume byte for
# byte (keys, values, headers) across partitions and segments with every
# compression codec, malformed requests closing only their connection, and
# data surviving a restart, and the address it advertises.
# (bash: the malformed requests go through /dev/tcp; make check runs us with sh)
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
BROKERD=$top_builddir/brokerd
command -v kcat >/dev/null || fail "kcat is missing (scripts/bootstrap installs it)"

start() { start_brokerd --partitions 3 --segment-bytes 4KiB "$@"; port=${B##*:}; }
start

kcat -b "$B" -L >"$T/meta" || fail "kcat -L"
grep -q "broker 0 at $B" "$T/meta" || fail "metadata: $(cat "$T/meta")"

for z in none gzip snappy lz4 zstd; do
    awk -v z=$z '{ printf "key%d_%s:value %d of %s \\ with : colons\n", NR, z, $1, z }' \
        < <(seq 1 800) >"$T/in.$z"
    kcat -b "$B" -P -t "t-$z" -z "$z" -K: -H "h1=one" -H "h2=two two" <"$T/in.$z" ||
        fail "produce $z"
    timeout 20 kcat -b "$B" -C -t "t-$z" -e -q -f '%k:%s\n' | sort >"$T/out.$z"
    sort "$T/in.$z" >"$T/exp.$z"
    expect_file "$T/out.$z" "$T/exp.$z"
    hdr=$(timeout 20 kcat -b "$B" -C -t "t-$z" -e -q -c 1 -f '%h')
    expect_eq "headers ($z)" "$hdr" "h1=one,h2=two two"
done
kcat -b "$B" -L -t t-gzip | grep -c 'partition [0-9]' | grep -qx 3 || fail "3 partitions"
ls -d "$T"/data/t-gzip-2 >/dev/null || fail "partition directory"

# Garbage, a truncated header and an oversized request close their connections.
exec 3<>/dev/tcp/127.0.0.1/$port; printf '\x7f\xff\xff\xff\x00\x12' >&3; exec 3<&-
exec 3<>/dev/tcp/127.0.0.1/$port; printf '\x00\x00\x00\x0a\x00\x00\x00\x03\x00\x00\x00\x01\xff\xff' >&3; exec 3<&-
exec 3<>/dev/tcp/127.0.0.1/$port; printf '\x00\x00\x00\x03abc' >&3; exec 3<&-
wait_until 5 grep -q 'exceeds --max-request' "$blog" || fail "no oversize log line"
kcat -b "$B" -L >/dev/null || fail "broker dead after garbage"
timeout 20 kcat -b "$B" -C -t t-none -e -q -f '%k:%s\n' | sort >"$T/out2"
expect_file "$T/out2" "$T/exp.none"

# Restart keeps data. (-q: the port the kernel picked is still said.)
stop "$bpid"
start -q
timeout 20 kcat -b "$B" -C -t t-zstd -e -q -f '%k:%s\n' | sort >"$T/out3"
expect_file "$T/out3" "$T/exp.zstd"
stop "$bpid"

# On 0.0.0.0 it advertises the machine's name, not the wildcard a client
# elsewhere would take for itself; --advertise says what to advertise.
start --listen 0.0.0.0:0
kcat -b "127.0.0.1:$port" -L >"$T/meta0" || fail "kcat -L on 0.0.0.0"
grep -q "broker 0 at $(hostname):$port" "$T/meta0" || fail "0.0.0.0 advertised: $(cat "$T/meta0")"
grep -q "advertised as $(hostname):$port" "$blog" || fail "not said: $(cat "$blog")"
stop "$bpid"
start --advertise localhost
kcat -b "127.0.0.1:$port" -L >"$T/meta1" || fail "kcat -L, --advertise"
grep -q "broker 0 at localhost:$port" "$T/meta1" || fail "--advertise localhost: $(cat "$T/meta1")"
timeout 20 kcat -b "127.0.0.1:$port" -C -t t-none -e -q -f '%k:%s\n' | sort >"$T/out4"
expect_file "$T/out4" "$T/exp.none"
stop "$bpid"
start --advertise '[::1]:19092'
kcat -b "127.0.0.1:$port" -L >"$T/meta2" || fail "kcat -L, --advertise [::1]:19092"
grep -q "broker 0 at ::1:19092" "$T/meta2" || fail "--advertise [::1]:19092: $(cat "$T/meta2")"
stop "$bpid"
"$BROKERD" serve --advertise 'host:port' 2>"$T/bad" && fail "--advertise host:port taken"
grep -q "advertise: host:port: bad port 'port'" "$T/bad" || fail "--advertise error: $(cat "$T/bad")"
