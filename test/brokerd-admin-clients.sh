#!/bin/sh
# brokerd-admin-clients.sh -- a Kafka client with its own protocol code
# (kafka-python, KafkaJS) against brokerd with its default version
# negotiation: a producer and a consumer (keys and headers byte for byte),
# and the admin calls: topics, configs equal to brokerd's options
# (read-only), and the groups, with a group of two kcat members.
. "$(dirname "$0")/lib.sh"
command -v kcat >/dev/null || fail "kcat is missing (scripts/bootstrap installs it)"
# Debian's python3-kafka is for Debian's python3, which may not be first on PATH.
PY=
for p in /usr/bin/python3 python3; do
    if "$p" -c 'import kafka' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || fail "kafka-python is missing (scripts/bootstrap installs python3-kafka)"
command -v node >/dev/null || fail "node is missing (scripts/bootstrap installs nodejs)"
KJS=$NODE_MODULES/kafkajs
[ -d "$KJS" ] || fail "KafkaJS is missing from $KJS (scripts/bootstrap installs it)"

start_brokerd --partitions 3 --retention 2h --retention-bytes 10MiB --segment-bytes 64MiB \
    --max-request 2MiB --group-initial-delay 1s

# Produce with keys and headers, read back with a group-less consumer.
"$PY" - "$B" <<'EOF' || fail "kafka-python producer and consumer"
import sys
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
b = sys.argv[1]
sent = [(b"k%d" % i, bytes(range(i % 7, 256)) + b"\n\0v%d" % i, [("h", b"x%d" % i)])
        for i in range(50)]
p = KafkaProducer(bootstrap_servers=b, linger_ms=5)
for k, v, h in sent:
    p.send("kp", key=k, value=v, headers=h, partition=int(k[1:]) % 3)
p.flush()
p.close()
c = KafkaConsumer(bootstrap_servers=b, auto_offset_reset="earliest",
                  consumer_timeout_ms=5000, enable_auto_commit=False)
c.assign([TopicPartition("kp", i) for i in range(3)])
got = []
for m in c:
    got.append((m.key, m.value, [(n, bytes(x)) for n, x in m.headers]))
    if len(got) == len(sent):
        break
c.close()
assert sorted(got) == sorted(sent), "read back %d records, differ from the %d sent" % (len(got), len(sent))
EOF

# Two members of one group, started together (the initial delay puts them
# in one generation).
bg kcat -u -b "$B" -G pair -o beginning -q kp >/dev/null 2>"$T/k1.err"
bg kcat -u -b "$B" -G pair -o beginning -q kp >/dev/null 2>"$T/k2.err"
wait_until 30 grep -q 'group pair: generation [0-9]* with 2 members' "$blog" ||
    fail "no generation with both members: $(grep 'group pair' "$blog")"

"$PY" - "$B" <<'EOF' || fail "kafka-python admin calls: $(tail -3 "$blog")"
import sys, time
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
a = KafkaAdminClient(bootstrap_servers=sys.argv[1])

def want(what, got, expected):
    assert got == expected, "%s: got %r, expected %r" % (what, got, expected)

want("topics", a.list_topics(), ["kp"])
t, = a.describe_topics(["kp"])
want("describe_topics error", t["error_code"], 0)
want("partitions", sorted(p["partition"] for p in t["partitions"]), [0, 1, 2])

r, = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp")])
res, = r.resources
want("describe_configs error", res[0], 0)
cfg = {e[0]: e[1] for e in res[4]}
for k, v in {"retention.ms": "7200000", "retention.bytes": "10485760",
             "segment.bytes": "67108864", "segment.ms": "604800000",
             "cleanup.policy": "delete", "max.message.bytes": "2097152"}.items():
    want(k, cfg.get(k), v)
assert all(e[2] for e in res[4]), "a config is not read-only"
r, = a.describe_configs([ConfigResource(ConfigResourceType.BROKER, "0")])
cfg = {e[0]: e[1] for e in r.resources[0][4]}
want("num.partitions", cfg.get("num.partitions"), "3")
want("group.initial.rebalance.delay.ms", cfg.get("group.initial.rebalance.delay.ms"), "1000")
r = a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "kp",
                                    configs={"retention.ms": "1000"})])
want("alter_configs error", r.resources[0][0], 44)     # POLICY_VIOLATION

want("groups", a.list_consumer_groups(), [("pair", "consumer")])
deadline = time.time() + 20
while True:
    g, = a.describe_consumer_groups(["pair"])
    if g.state == "Stable" and len(g.members) == 2 or time.time() > deadline:
        break
    time.sleep(0.2)
want("group state", (g.error_code, g.group, g.state, g.protocol_type),
     (0, "pair", "Stable", "consumer"))
assert g.protocol in ("range", "roundrobin"), g.protocol
want("members", len(g.members), 2)
parts = []
for m in g.members:
    want("client id", m.client_id, "rdkafka")
    want("client host", m.client_host, "/127.0.0.1")
    want("subscription", m.member_metadata.subscription, ["kp"])
    for topic, ps in m.member_assignment.assignment:
        want("assigned topic", topic, "kp")
        parts += ps
want("assigned partitions", sorted(parts), [0, 1, 2])
g, = a.describe_consumer_groups(["nobody"])
want("an unknown group", g.state, "Dead")
a.close()
EOF

# The same admin calls from KafkaJS.
KJS=$KJS node - "$B" <<'EOF' || fail "KafkaJS admin calls: $(tail -3 "$blog")"
const { Kafka, ConfigResourceTypes, logLevel } = require(process.env.KJS);
const assert = require('assert');
const kafka = new Kafka({ brokers: [process.argv[2]], clientId: 'kjs', logLevel: logLevel.NOTHING });
(async () => {
  const a = kafka.admin();
  await a.connect();
  assert.deepStrictEqual(await a.listTopics(), ['kp']);
  const md = await a.fetchTopicMetadata({ topics: ['kp'] });
  assert.deepStrictEqual(md.topics[0].partitions.map(p => p.partitionId).sort(), [0, 1, 2]);
  const cf = await a.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: 'kp',
                  configNames: ['retention.ms', 'segment.bytes', 'retention.bytes'] }],
    includeSynonyms: true });
  const r = cf.resources[0];
  assert.strictEqual(r.errorCode, 0);
  assert.deepStrictEqual(Object.fromEntries(r.configEntries.map(e => [e.configName, e.configValue])),
    { 'retention.ms': '7200000', 'segment.bytes': '67108864', 'retention.bytes': '10485760' });
  assert.deepStrictEqual(r.configEntries.map(e => e.configSynonyms[0].configName),
    ['log.retention.bytes', 'log.retention.ms', 'log.segment.bytes']);
  assert.deepStrictEqual((await a.listGroups()).groups, [{ groupId: 'pair', protocolType: 'consumer' }]);
  const g = (await a.describeGroups(['pair'])).groups[0];
  assert.strictEqual(g.state, 'Stable');
  assert.strictEqual(g.members.length, 2);
  for (const m of g.members) {
    assert.strictEqual(m.clientId, 'rdkafka');
    assert.strictEqual(m.clientHost, '/127.0.0.1');
    assert.ok(m.memberAssignment.length > 0);
  }
  await a.disconnect();
})().catch(e => { console.error(e); process.exit(1); });
EOF
