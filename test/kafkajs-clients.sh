#!/bin/sh
# kafkajs-clients.sh -- KafkaJS, a client with its own protocol code, against
# brokerd: a producer with keys, headers and each codec (gzip built in,
# kafkajs-snappy, kafkajs-lz4, @kafkajs/zstd), kept as sent and read back
# byte for byte; two group members started together share the first
# generation (brokerd's initial rebalance delay) and read every message
# once between them.
. "$(dirname "$0")/lib.sh"
command -v node >/dev/null || fail "node is missing (scripts/bootstrap installs nodejs)"
KJS=$NODE_MODULES/kafkajs
[ -d "$KJS" ] || fail "KafkaJS is missing from $KJS (scripts/bootstrap installs it)"
for m in kafkajs-snappy kafkajs-lz4 @kafkajs/zstd; do
    [ -d "$NODE_MODULES/$m" ] ||
        fail "the KafkaJS codec $m is missing (scripts/bootstrap installs it)"
done
NODE_PATH=$NODE_MODULES
export NODE_PATH

start_brokerd --partitions 3 --group-initial-delay 2s
timeout 120 node - "$B" "$T/data" >"$T/out" 2>"$T/err" <<'EOF2' || fail "KafkaJS: $(tail -5 "$T/err")"
const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs');
const SnappyCodec = require('kafkajs-snappy');
const LZ4Codec = require('kafkajs-lz4');
const ZstdCodec = require('@kafkajs/zstd');
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec;
CompressionCodecs[CompressionTypes.ZSTD] = ZstdCodec();
const fs = require('fs');
const [broker, data] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'kjs', brokers: [broker], logLevel: logLevel.NOTHING });
const N = 300;
const value = i => Buffer.concat([Buffer.from([...Array(256).keys()].slice(i % 7)), Buffer.from(`\n\0v${i}`)]);
(async () => {
  const p = kafka.producer();
  await p.connect();
  // Six sends of 50, one batch a partition each: none, gzip, snappy, lz4, zstd, gzip.
  const codecs = [CompressionTypes.None, CompressionTypes.GZIP, CompressionTypes.Snappy,
                  CompressionTypes.LZ4, CompressionTypes.ZSTD, CompressionTypes.GZIP];
  for (let i = 0; i < N; i += 50) {
    const messages = [];
    for (let j = i; j < i + 50; j++)
      messages.push({ key: `k${j}`, value: value(j), headers: { h: `x${j}` }, partition: j % 3 });
    await p.send({ topic: 'kjs', compression: codecs[i / 50], messages });
  }
  await p.disconnect();
  // Kept as sent: the codec of each batch of partition 0 (attributes & 7).
  const log = fs.readFileSync(`${data}/kjs-0/00000000000000000000.log`);
  const kept = [];
  for (let at = 0; at < log.length; at += 12 + log.readInt32BE(at + 8))
    kept.push(log[at + 22] & 7);
  console.log(`codecs=${kept.join(',')}`);
  // Two members of one group, started together.
  const seen = new Map();
  let dup = 0, bad = 0;
  const members = [kafka.consumer({ groupId: 'both' }), kafka.consumer({ groupId: 'both' })];
  await Promise.all(members.map(async c => {
    await c.connect();
    await c.subscribe({ topic: 'kjs', fromBeginning: true });
  }));
  await new Promise(resolve => {
    members.forEach((c, who) => c.run({ eachMessage: async ({ message }) => {
      const j = Number(message.key.toString().slice(1));
      if (seen.has(j)) dup++;
      seen.set(j, who);
      if (!message.value.equals(value(j)) || message.headers.h.toString() !== `x${j}`) bad++;
      if (seen.size === N) resolve();
    } }));
  });
  const byMember = [0, 0];
  for (const who of seen.values()) byMember[who]++;
  console.log(`read=${seen.size} dup=${dup} bad=${bad} members=${byMember[0] > 0 && byMember[1] > 0 ? 2 : 1}`);
  await Promise.all(members.map(c => c.disconnect()));
})().catch(e => { console.error(e); process.exit(1); });
EOF2
expect_eq "KafkaJS: codecs kept, read back, duplicates, differing, members that read" \
    "$(cat "$T/out" | tr '\n' ' ')" "codecs=0,1,2,3,4,1 read=300 dup=0 bad=0 members=2 "
grep -q 'group both: generation 1 with 2 members' "$blog" ||
    fail "the two members did not share the first generation: $(grep 'group both' "$blog")"
note "kafkajs-clients: ok"
