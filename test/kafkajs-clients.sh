#!/bin/sh
# kafkajs-clients.sh -- KafkaJS, a client with its own protocol code, against
# brokerd: a producer with keys, headers and gzip, read back byte for byte;
# two group members started together share the first generation (brokerd's
# initial rebalance delay) and read every message once between them.
. "$(dirname "$0")/lib.sh"
command -v node >/dev/null || fail "node is missing (scripts/bootstrap installs nodejs)"
KJS=$NODE_MODULES/kafkajs
[ -d "$KJS" ] || fail "KafkaJS is missing from $KJS (scripts/bootstrap installs it)"
NODE_PATH=$NODE_MODULES
export NODE_PATH

start_brokerd --partitions 3 --group-initial-delay 2s
timeout 120 node - "$B" >"$T/out" 2>"$T/err" <<'EOF2' || fail "KafkaJS: $(tail -5 "$T/err")"
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');
const broker = process.argv[2];
const kafka = new Kafka({ clientId: 'kjs', brokers: [broker], logLevel: logLevel.NOTHING });
const N = 300;
const value = i => Buffer.concat([Buffer.from([...Array(256).keys()].slice(i % 7)), Buffer.from(`\n\0v${i}`)]);
(async () => {
  const p = kafka.producer();
  await p.connect();
  for (let i = 0; i < N; i += 50) {
    const messages = [];
    for (let j = i; j < i + 50; j++)
      messages.push({ key: `k${j}`, value: value(j), headers: { h: `x${j}` }, partition: j % 3 });
    await p.send({ topic: 'kjs', compression: CompressionTypes.GZIP, messages });
  }
  await p.disconnect();
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
expect_eq "KafkaJS: read back, duplicates, differing, members that read" "$(cat "$T/out")" \
    "read=300 dup=0 bad=0 members=2"
grep -q 'group both: generation 1 with 2 members' "$blog" ||
    fail "the two members did not share the first generation: $(grep 'group both' "$blog")"
note "kafkajs-clients: ok"
