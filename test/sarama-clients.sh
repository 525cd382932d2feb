#!/bin/sh
# sarama-clients.sh -- sarama (the Go Kafka client with its own protocol code,
# Debian's 1.22, built offline from /usr/share/gocode) at Version 2.1.0
# against brokerd: test/sarama/main.go produces with keys, headers and each
# codec and reads back byte for byte; looks offsets up by time inside a
# snappy batch; creates, lists and describes topics and their configs; and
# runs two consumer-group members started together, which share the first
# generation and read every record once, then describes the group and its
# committed offsets. sarama 1.22 sends zstd at Produce v3 and fetches at v4:
# brokerd refuses both with UNSUPPORTED_COMPRESSION_TYPE, as Kafka does.
. "$(dirname "$0")/lib.sh"
command -v go >/dev/null || fail "go is missing (scripts/bootstrap installs golang-go)"
GOSRC=/usr/share/gocode
[ -d "$GOSRC/src/github.com/Shopify/sarama" ] ||
    fail "sarama is missing from $GOSRC (scripts/bootstrap installs golang-github-shopify-sarama-dev)"
command -v kcat >/dev/null || fail "kcat is missing (scripts/bootstrap installs it)"

# Offline: GOPATH mode over Debian's Go sources, no module proxy, the build
# cache in the scratch directory.
GO111MODULE=off GOPATH=$GOSRC GOPROXY=off GOFLAGS= GOCACHE=$T/gocache \
    go build -o "$T/sarama-client" "$top_srcdir/test/sarama/main.go" 2>"$T/build.err" ||
    fail "building the sarama client: $(tail -20 "$T/build.err")"

start_brokerd --partitions 3 --group-initial-delay 2s --retention 2h --retention-bytes 10MiB \
    --segment-bytes 64MiB
# zstd as librdkafka produces it (Produce v7), for sarama to fetch. Each
# record compresses well on its own: librdkafka sends a batch uncompressed
# when zstd would not make it smaller, as it did for a lone small record.
awk 'BEGIN { for (i = 1; i <= 9; i++) { s = i; while (length(s) < 1000) s = s s; print s } }' |
    kcat -b "$B" -P -t k-zstd -z zstd -p 0 || fail "kcat: zstd produce"
timeout 180 "$T/sarama-client" "$B" >"$T/out" 2>"$T/err" ||
    fail "sarama: $(tail -5 "$T/err") (after: $(tail -1 "$T/out"))"
cat >"$T/exp" <<'EOF'
none: read=300 differing=0
gzip: read=300 differing=0
snappy: read=300 differing=0
lz4: read=300 differing=0
zstd: produce refused: 76
zstd: fetch refused: 76
time: checks=173 wrong=0
time: latest=8 earliest=0
create again: 36
list: topics=8 partitions=2 replication=1 retention.ms=7200000 segment.bytes=67108864
describe s-admin: error=0 partitions=2
describe nosuch: error=3 partitions=0
config cleanup.policy=delete read-only=true
config retention.bytes=10485760 read-only=true
group: read=300 dup=0 differing=0 members=2 generations=1
groups: sg:consumer
member: client=sarama host=/127.0.0.1 topics=[s-group]
member: client=sarama host=/127.0.0.1 topics=[s-group]
group sg: error=0 state=Stable type=consumer protocol=range members=2 assigned=s-group-0,s-group-1,s-group-2
committed: 0:100/0 1:100/0 2:100/0
EOF
expect_file "$T/out" "$T/exp"
grep -q 'group sg: generation 1 with 2 members' "$blog" ||
    fail "the two members did not share the first generation: $(grep 'group sg' "$blog")"
# The batches are kept in the codec sarama sent (attributes at byte 22).
for z in none:0 gzip:1 snappy:2 lz4:3; do
    f=$T/data/s-${z%:*}-0/00000000000000000000.log
    expect_eq "codec of the first s-${z%:*} batch" "$(od -An -tu1 -j22 -N1 "$f" | tr -d ' ')" "${z#*:}"
done
note "sarama-clients: ok"
