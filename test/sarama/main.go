// main.go -- the sarama side of test/sarama-clients.sh: sarama (the Go Kafka
// client, Debian's 1.22) at Version 2.1.0 against brokerd, through its
// ordinary producer, consumer, consumer group, client and cluster admin
// calls. It prints one fact a line, for the test to compare with what it
// expects; anything that fails outright exits 1 with the reason.
//
//	sarama-client BROKER
package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

const (
	parts = 3
	n     = 300 // records per codec and in the group's topic
	group = "sg"
)

var broker []string

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "sarama-client: "+format+"\n", a...)
	os.Exit(1)
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_1_0_0
	c.ClientID = "sarama"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.Flush.Frequency = 20 * time.Millisecond // many records a batch
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	return c
}

// The i-th record: every byte value, a newline and a NUL in the value.
func key(i int) []byte { return []byte(fmt.Sprintf("k%d", i)) }
func header(i int) []byte { return []byte(fmt.Sprintf("x%d", i)) }
func value(i int) []byte {
	v := []byte{}
	for b := i % 7; b < 256; b++ {
		v = append(v, byte(b))
	}
	return append(v, []byte(fmt.Sprintf("\n\x00v%d", i))...)
}

func message(topic string, i int) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{
		Topic: topic, Partition: int32(i % parts), Key: sarama.ByteEncoder(key(i)),
		Value:   sarama.ByteEncoder(value(i)),
		Headers: []sarama.RecordHeader{{Key: []byte("h"), Value: header(i)}},
	}
}

// Which record a consumed message is, and whether it is that record byte for byte.
func check(m *sarama.ConsumerMessage) (int, bool) {
	var i int
	if _, err := fmt.Sscanf(string(m.Key), "k%d", &i); err != nil {
		return -1, false
	}
	same := bytes.Equal(m.Value, value(i)) && len(m.Headers) == 1 &&
		string(m.Headers[0].Key) == "h" && bytes.Equal(m.Headers[0].Value, header(i)) &&
		int(m.Partition) == i%parts
	return i, same
}

func produce(codec sarama.CompressionCodec, msgs []*sarama.ProducerMessage) error {
	c := config()
	c.Producer.Compression = codec
	p, err := sarama.NewSyncProducer(broker, c)
	if err != nil {
		die("producer: %v", err)
	}
	defer p.Close()
	return p.SendMessages(msgs)
}

// The records of every partition of topic, each read until its end; or the
// first error a partition consumer reports.
func consumeAll(topic string) ([]*sarama.ConsumerMessage, error) {
	cl, err := sarama.NewClient(broker, config())
	if err != nil {
		die("client: %v", err)
	}
	defer cl.Close()
	co, err := sarama.NewConsumerFromClient(cl)
	if err != nil {
		die("consumer: %v", err)
	}
	defer co.Close()
	var got []*sarama.ConsumerMessage
	for p := int32(0); p < parts; p++ {
		end, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			die("%s-%d: the end: %v", topic, p, err)
		}
		pc, err := co.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			die("%s-%d: %v", topic, p, err)
		}
		for off := int64(0); off < end; {
			select {
			case m := <-pc.Messages():
				got = append(got, m)
				off = m.Offset + 1
			case e := <-pc.Errors():
				pc.Close()
				return got, e.Err
			case <-time.After(30 * time.Second):
				die("%s-%d: nothing read for 30 s at offset %d of %d", topic, p, off, end)
			}
		}
		pc.Close()
	}
	return got, nil
}

// Each codec: produced, then read back. zstd needs Produce v7 and Fetch v10,
// which sarama 1.22 never sends (it sends v3 and v4 at any Version): Kafka
// refuses it with UNSUPPORTED_COMPRESSION_TYPE both ways, and so must brokerd.
func codecs() {
	for _, c := range []struct {
		name  string
		codec sarama.CompressionCodec
	}{{"none", sarama.CompressionNone}, {"gzip", sarama.CompressionGZIP},
		{"snappy", sarama.CompressionSnappy}, {"lz4", sarama.CompressionLZ4},
		{"zstd", sarama.CompressionZSTD}} {
		topic := "s-" + c.name
		msgs := make([]*sarama.ProducerMessage, n)
		for i := range msgs {
			msgs[i] = message(topic, i)
		}
		err := produce(c.codec, msgs)
		if c.codec == sarama.CompressionZSTD {
			errs, _ := err.(sarama.ProducerErrors)
			if len(errs) == 0 {
				die("zstd at Produce v3: accepted (%v)", err)
			}
			fmt.Printf("zstd: produce refused: %d\n", int(errs[0].Err.(sarama.KError)))
			continue
		}
		if err != nil {
			die("%s: produce: %v", c.name, err)
		}
		got, err := consumeAll(topic)
		if err != nil {
			die("%s: consume: %v", c.name, err)
		}
		seen := map[int]bool{}
		differ := 0
		for _, m := range got {
			i, same := check(m)
			if !same || seen[i] {
				differ++
			}
			seen[i] = true
		}
		fmt.Printf("%s: read=%d differing=%d\n", c.name, len(seen), differ)
	}
	// zstd from librdkafka (the test produced it), fetched at v4.
	_, err := consumeAll("k-zstd")
	if ke, ok := err.(sarama.KError); ok {
		fmt.Printf("zstd: fetch refused: %d\n", int(ke))
	} else {
		fmt.Printf("zstd: fetch: %v\n", err)
	}
}

// Offsets by time: records stamped out of order in one snappy batch; for
// each time, the first record (by offset) stamped at or after it.
func offsetsByTime() {
	const topic = "s-time"
	deltas := []int64{0, 50, 20, 70, 100, 150, 120, 170}
	base := time.Now().Add(-time.Hour).UnixNano() / 1e6 * 1e6
	msgs := []*sarama.ProducerMessage{}
	for i, d := range deltas {
		m := message(topic, i)
		m.Partition = 0
		m.Timestamp = time.Unix(0, base+d*1e6)
		msgs = append(msgs, m)
	}
	if err := produce(sarama.CompressionSnappy, msgs); err != nil {
		die("time: produce: %v", err)
	}
	cl, err := sarama.NewClient(broker, config())
	if err != nil {
		die("client: %v", err)
	}
	defer cl.Close()
	checks, wrong := 0, 0
	for t := int64(-1); t <= 171; t++ {
		want := int64(-1)
		for i, d := range deltas {
			if d >= t {
				want = int64(i)
				break
			}
		}
		got, err := cl.GetOffset(topic, 0, base/1e6+t)
		if err != nil {
			die("time %d: %v", t, err)
		}
		checks++
		if got != want {
			wrong++
			fmt.Fprintf(os.Stderr, "time base+%d: offset %d, expected %d\n", t, got, want)
		}
	}
	fmt.Printf("time: checks=%d wrong=%d\n", checks, wrong)
	latest, _ := cl.GetOffset(topic, 0, sarama.OffsetNewest)
	earliest, _ := cl.GetOffset(topic, 0, sarama.OffsetOldest)
	fmt.Printf("time: latest=%d earliest=%d\n", latest, earliest)
}

// A member of the group: what it read, and the generations it joined.
type member struct {
	who int
	st  *groupState
}

type groupState struct {
	sync.Mutex
	seen        map[int]int // record -> member that read it
	dup, differ int
	generations map[int32]bool
	done        chan struct{}
}

func (m *member) Setup(s sarama.ConsumerGroupSession) error {
	m.st.Lock()
	m.st.generations[s.GenerationID()] = true
	m.st.Unlock()
	return nil
}

func (m *member) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (m *member) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		i, same := check(msg)
		m.st.Lock()
		if _, ok := m.st.seen[i]; ok {
			m.st.dup++
		}
		if !same {
			m.st.differ++
		}
		m.st.seen[i] = m.who
		if len(m.st.seen) == n {
			select {
			case <-m.st.done:
			default:
				close(m.st.done)
			}
		}
		m.st.Unlock()
		s.MarkMessage(msg, "")
	}
	return nil
}

// Two members of one group started together read every record once, in
// one generation (brokerd's initial rebalance delay); the group is
// described while they are in it, and its offsets once they have left.
func groupAndAdmin() {
	const topic = "s-group"
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = message(topic, i)
	}
	if err := produce(sarama.CompressionGZIP, msgs); err != nil {
		die("group: produce: %v", err)
	}
	st := &groupState{seen: map[int]int{}, generations: map[int32]bool{}, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	groups := []sarama.ConsumerGroup{}
	for who := 0; who < 2; who++ {
		g, err := sarama.NewConsumerGroup(broker, group, config())
		if err != nil {
			die("group: %v", err)
		}
		groups = append(groups, g)
		wg.Add(1)
		go func(g sarama.ConsumerGroup, who int) {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := g.Consume(ctx, []string{topic}, &member{who, st}); err != nil {
					fmt.Fprintf(os.Stderr, "member %d: %v\n", who, err)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}(g, who)
	}
	select {
	case <-st.done:
	case <-time.After(60 * time.Second):
		st.Lock()
		die("group: read %d of %d records in 60 s", len(st.seen), n)
	}
	st.Lock()
	readers := map[int]bool{}
	for _, who := range st.seen {
		readers[who] = true
	}
	gens := []string{}
	for g := range st.generations {
		gens = append(gens, fmt.Sprint(g))
	}
	sort.Strings(gens)
	fmt.Printf("group: read=%d dup=%d differing=%d members=%d generations=%s\n",
		len(st.seen), st.dup, st.differ, len(readers), strings.Join(gens, ","))
	st.Unlock()

	admin, err := sarama.NewClusterAdmin(broker, config())
	if err != nil {
		die("admin: %v", err)
	}
	defer admin.Close()
	listed, err := admin.ListConsumerGroups()
	if err != nil {
		die("ListConsumerGroups: %v", err)
	}
	names := []string{}
	for g, kind := range listed {
		names = append(names, g+":"+kind)
	}
	sort.Strings(names)
	fmt.Printf("groups: %s\n", strings.Join(names, " "))
	described, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(described) != 1 {
		die("DescribeConsumerGroups: %v (%d groups)", err, len(described))
	}
	d := described[0]
	assigned := []string{}
	for _, m := range d.Members {
		a, err := m.GetMemberAssignment()
		if err != nil {
			die("member assignment: %v", err)
		}
		md, err := m.GetMemberMetadata()
		if err != nil {
			die("member metadata: %v", err)
		}
		for t, ps := range a.Topics {
			for _, p := range ps {
				assigned = append(assigned, fmt.Sprintf("%s-%d", t, p))
			}
		}
		fmt.Printf("member: client=%s host=%s topics=%v\n", m.ClientId, m.ClientHost, md.Topics)
	}
	sort.Strings(assigned)
	fmt.Printf("group %s: error=%d state=%s type=%s protocol=%s members=%d assigned=%s\n",
		d.GroupId, int(d.Err), d.State, d.ProtocolType, d.Protocol, len(d.Members),
		strings.Join(assigned, ","))

	cancel()
	for _, g := range groups {
		if err := g.Close(); err != nil {
			die("group close: %v", err)
		}
	}
	wg.Wait()
	offs, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
	if err != nil {
		die("ListConsumerGroupOffsets: %v", err)
	}
	committed := []string{}
	for p := int32(0); p < parts; p++ {
		b := offs.GetBlock(topic, p)
		if b == nil {
			die("ListConsumerGroupOffsets: no %s-%d", topic, p)
		}
		committed = append(committed, fmt.Sprintf("%d:%d/%d", p, b.Offset, int(b.Err)))
	}
	fmt.Printf("committed: %s\n", strings.Join(committed, " "))
}

// Topics: created, listed with their configs, described.
func topics() {
	admin, err := sarama.NewClusterAdmin(broker, config())
	if err != nil {
		die("admin: %v", err)
	}
	defer admin.Close()
	detail := &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}
	if err := admin.CreateTopic("s-admin", detail, false); err != nil {
		die("CreateTopic: %v", err)
	}
	err = admin.CreateTopic("s-admin", detail, false)
	if te, ok := err.(*sarama.TopicError); ok {
		fmt.Printf("create again: %d\n", int(te.Err))
	} else {
		fmt.Printf("create again: %v\n", err)
	}
	all, err := admin.ListTopics()
	if err != nil {
		die("ListTopics: %v", err)
	}
	t, ok := all["s-admin"]
	if !ok {
		die("ListTopics: no s-admin among %d topics", len(all))
	}
	fmt.Printf("list: topics=%d partitions=%d replication=%d retention.ms=%s segment.bytes=%s\n",
		len(all), t.NumPartitions, t.ReplicationFactor, deref(t.ConfigEntries["retention.ms"]),
		deref(t.ConfigEntries["segment.bytes"]))
	md, err := admin.DescribeTopics([]string{"s-admin", "nosuch"})
	if err != nil || len(md) != 2 {
		die("DescribeTopics: %v (%d topics)", err, len(md))
	}
	for _, m := range md {
		fmt.Printf("describe %s: error=%d partitions=%d\n", m.Name, int(m.Err), len(m.Partitions))
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource,
		Name: "s-admin", ConfigNames: []string{"retention.bytes", "cleanup.policy"}})
	if err != nil {
		die("DescribeConfig: %v", err)
	}
	for _, e := range entries {
		fmt.Printf("config %s=%s read-only=%v\n", e.Name, e.Value, e.ReadOnly)
	}
}

func deref(s *string) string {
	if s == nil {
		return "(none)"
	}
	return *s
}

func main() {
	if len(os.Args) != 2 {
		die("usage: sarama-client BROKER")
	}
	broker = []string{os.Args[1]}
	if os.Getenv("SARAMA_LOG") != "" {
		sarama.Logger = log.New(os.Stderr, "sarama: ", log.Lmicroseconds)
	}
	codecs()
	offsetsByTime()
	topics()
	groupAndAdmin()
}
