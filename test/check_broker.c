/* check_broker.c -- the broker's specification as tests: requests in,
 * responses out, no socket. Every test runs a broker on a private loop over
 * a fresh data directory and talks to it through connections without a
 * socket (rn__conn_fake), with request bytes built here by kproto's writer. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "broker/broker_int.h"
#include "core/core.h"

#define NPEERS 3

/* One connection without a socket and what it was answered. */
typedef struct peer {
    kconn *c;
    rn_buf out;
    size_t off;             /* answers read so far */
    int closed;
} peer;

static struct {
    char dir[64];
    uv_loop_t loop;
    rn_broker_opts o;
    rn_broker *b;
    peer p[NPEERS];
    char log[16384];        /* every on_log line */
    int stopped;
} T;

/* The request being built (see req). */
static rn_buf rq;
static rn_kw w;
static int32_t corr;

static void on_log(void *data, const char *msg)
{
    (void)data;
    size_t n = strlen(T.log);
    snprintf(T.log + n, sizeof T.log - n, "%s\n", msg);
}

static int logged(const char *s) { return strstr(T.log, s) != NULL; }

static uint64_t counter(const char *name)
{
    return rn_counter_get(rn_broker_counters(T.b), name);
}

static void open_broker(void)
{
    char err[RN_ERRLEN] = "";
    T.b = rn_broker_new(&T.loop, &T.o, err);
    ck_assert_msg(T.b != NULL, "rn_broker_new: %s", err);
    for (int i = 0; i < NPEERS; i++) {
        T.p[i] = (peer){ 0 };
        T.p[i].c = rn__conn_fake(T.b, &T.p[i].out, &T.p[i].closed);
        ck_assert_ptr_nonnull(T.p[i].c);
    }
}

/* Close what is still open, let the loop free it, free the broker. */
static void close_broker(void)
{
    for (int i = 0; i < NPEERS; i++)
        if (!T.p[i].closed)
            rn__conn_fake_close(T.p[i].c);
    ck_assert_int_eq(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
    rn_broker_free(T.b);
    T.b = NULL;
    for (int i = 0; i < NPEERS; i++)
        rn_buf_free(&T.p[i].out);
}

static void setup(void)
{
    memset(&T, 0, sizeof T);
    strcpy(T.dir, "/tmp/check_broker.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(T.dir));
    ck_assert_int_eq(uv_loop_init(&T.loop), 0);
    T.o = (rn_broker_opts){
        .host = "127.0.0.1", .port = 9092, .data_dir = T.dir, .partitions = 2,
        .auto_create = 1, .flush = RN_FLUSH_NONE, .max_request = 1 << 20,
        .on_log = on_log,
    };
    open_broker();
}

static void teardown(void)
{
    char cmd[128];
    if (T.b)
        close_broker();
    ck_assert_int_eq(uv_loop_close(&T.loop), 0);   /* every handle was closed */
    rn_buf_free(&rq);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", T.dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- requests: built here, handed in as the socket would ------------------ */

/* Start a request: size hole, header (client id "check"). Returns its
 * correlation id. */
static int32_t req(int16_t key, int16_t version)
{
    rq.len = 0;
    rn_kw_init(&w, &rq);
    rn_kw_hole32(&w);
    rn_kw_i16(&w, key);
    rn_kw_i16(&w, version);
    rn_kw_i32(&w, ++corr);
    rn_kw_strz(&w, "check");
    if (rn_kapi_flexible(key, version))
        rn_kw_tags(&w);
    return corr;
}

/* When set, requests collect here instead of going in (to go in later, cut
 * as the test likes). */
static rn_buf *gather;

static void send_to(int i)
{
    ck_assert(!w.oom);
    rn_kw_fill32(&w, 0, (int32_t)(rq.len - 4));
    if (gather)
        ck_assert_int_eq(rn_buf_append(gather, rq.p, rq.len), 0);
    else
        rn__conn_input(T.p[i].c, rq.p, rq.len);
}

/* ---- answers: read back with kproto's reader ------------------------------ */

static int answered(int i) { return T.p[i].out.len > T.p[i].off; }

/* The next answer on peer i, which must be the one to request c: a reader
 * over its body. Valid until the peer gets more input. */
static rn_kr answer(int i, int32_t c)
{
    peer *p = &T.p[i];
    ck_assert_msg(p->out.len - p->off >= 8, "peer %d: no answer to request %d", i, c);
    uint32_t size = rn_be32(p->out.p + p->off);
    ck_assert_uint_ge(p->out.len - p->off - 4, size);
    rn_kr r;
    rn_kr_init(&r, p->out.p + p->off + 4, size);
    p->off += 4 + size;
    ck_assert_int_eq(rn_kr_i32(&r), c);
    return r;
}

/* The answer was read to its last byte, no more, no less. */
static void end(const rn_kr *r)
{
    ck_assert(rn_kr_ok(r));
    ck_assert_uint_eq(rn_kr_left(r), 0);
}

static void expect_str(rn_kr *r, const char *s)
{
    rn_kstr k = rn_kr_str(r);
    ck_assert(rn_kr_ok(r));
    ck_assert_msg(k.n == strlen(s) && !memcmp(k.p, s, k.n), "got '%.*s', want '%s'",
                  (int)k.n, k.p ? k.p : "", s);
}

static void expect_null_str(rn_kr *r)
{
    ck_assert(rn_kr_nstr(r).null);
}

static void copy_str(rn_kr *r, char *out, size_t outlen)
{
    rn_kstr k = rn_kr_str(r);
    ck_assert(rn_kr_ok(r) && k.n < outlen);
    memcpy(out, k.p, k.n);
    out[k.n] = 0;
}

static void expect_bytes(rn_kr *r, const void *p, size_t n)
{
    rn_kstr k = rn_kr_bytes(r);
    ck_assert(rn_kr_ok(r));
    ck_assert_uint_eq(k.n, n);
    ck_assert(n == 0 || !memcmp(k.p, p, n));
}

/* One topic holding one partition, as most requests here ask: the
 * partition's own fields come next. */
static void put_one_partition(const char *topic, int32_t part)
{
    rn_kw_array(&w, 1);
    rn_kw_strz(&w, topic);
    rn_kw_array(&w, 1);
    rn_kw_i32(&w, part);
}

/* The same in an answer. */
static void expect_one_partition(rn_kr *r, const char *topic, int32_t part)
{
    ck_assert_int_eq(rn_kr_array(r, 0, NULL), 1);
    expect_str(r, topic);
    ck_assert_int_eq(rn_kr_array(r, 0, NULL), 1);
    ck_assert_int_eq(rn_kr_i32(r), part);
}

/* ---- RecordBatch v2 ------------------------------------------------------- */

/* Append a batch of n records (no key, value "<tag>-<i>") stamped ts ms, with
 * baseOffset 0 for the broker to assign; returns where it starts in b. */
static size_t batch(rn_buf *b, int n, int64_t ts, const char *tag)
{
    rn_kw k;
    rn_kw_init(&k, b);
    size_t at = b->len;
    rn_kw_i64(&k, 0);                   /* baseOffset */
    size_t len_at = rn_kw_hole32(&k);   /* batchLength */
    rn_kw_i32(&k, 0);                   /* partitionLeaderEpoch */
    rn_kw_i8(&k, 2);                    /* magic */
    size_t crc_at = rn_kw_hole32(&k);
    rn_kw_i16(&k, 0);                   /* attributes */
    rn_kw_i32(&k, n - 1);               /* lastOffsetDelta */
    rn_kw_i64(&k, ts);                  /* firstTimestamp */
    rn_kw_i64(&k, ts);                  /* maxTimestamp */
    rn_kw_i64(&k, -1);                  /* producerId */
    rn_kw_i16(&k, -1);                  /* producerEpoch */
    rn_kw_i32(&k, -1);                  /* baseSequence */
    rn_kw_i32(&k, n);
    for (int i = 0; i < n; i++) {
        char v[4200];
        int vn = snprintf(v, sizeof v, "%s-%d", tag, i);
        rn_buf rec = { 0 };
        rn_kw rk;
        rn_kw_init(&rk, &rec);
        rn_kw_i8(&rk, 0);               /* attributes */
        rn_kw_varint(&rk, 0);           /* timestampDelta */
        rn_kw_varint(&rk, i);           /* offsetDelta */
        rn_kw_varint(&rk, -1);          /* no key */
        rn_kw_varint(&rk, vn);
        rn_kw_raw(&rk, v, (size_t)vn);
        rn_kw_varint(&rk, 0);           /* no headers */
        rn_kw_varint(&k, (int64_t)rec.len);
        rn_kw_raw(&k, rec.p, rec.len);
        rn_buf_free(&rec);
    }
    rn_kw_fill32(&k, len_at, (int32_t)(b->len - at - 12));
    rn_kw_fill32(&k, crc_at, (int32_t)rn_crc32c(0, b->p + at + 21, b->len - at - 21));
    ck_assert(!k.oom);
    return at;
}

/* n batches of two records of 2999 bytes each, stamped 3000 + k ms. */
static void big_batches(rn_buf *b, int n)
{
    char tag[3000];
    memset(tag, 'z', sizeof tag - 1);
    tag[sizeof tag - 1] = 0;
    for (int k = 0; k < n; k++)
        batch(b, 2, 3000 + k, tag);
}

/* What the broker makes of batches: base offsets assigned from first on. */
static void assign_offsets(rn_buf *b, int64_t first)
{
    for (size_t p = 0; p < b->len; p += 12 + rn_be32(b->p + p + 8)) {
        rn_put_be64(b->p + p, (uint64_t)first);
        first += (int32_t)rn_be32(b->p + p + 23) + 1;
    }
}

/* ---- the APIs, one builder and one reader each ---------------------------- */

static int32_t produce(int i, const char *topic, int32_t part, int16_t acks, const void *recs,
                       size_t n)
{
    int32_t c = req(RN_KAPI_PRODUCE, 7);
    rn_kw_nstr(&w, NULL, 0);            /* transactional_id */
    rn_kw_i16(&w, acks);
    rn_kw_i32(&w, 5000);
    put_one_partition(topic, part);
    rn_kw_bytes(&w, recs, n);
    send_to(i);
    return c;
}

static void produced(int i, int32_t c, const char *topic, int32_t part, int16_t err,
                     int64_t base, int64_t log_start)
{
    rn_kr r = answer(i, c);
    expect_one_partition(&r, topic, part);
    ck_assert_int_eq(rn_kr_i16(&r), err);
    ck_assert_int_eq(rn_kr_i64(&r), base);
    ck_assert_int_eq(rn_kr_i64(&r), -1);            /* log_append_time */
    ck_assert_int_eq(rn_kr_i64(&r), log_start);
    ck_assert_int_eq(rn_kr_i32(&r), 0);             /* throttle */
    end(&r);
}

/* Produce and take the answer, which comes at once: err, and where the
 * records went (base) when there is none. */
static void produce_now(int i, const char *topic, int32_t part, int16_t acks, const void *recs,
                        size_t n, int16_t err, int64_t base)
{
    int32_t c = produce(i, topic, part, acks, recs, n);
    produced(i, c, topic, part, err, err ? -1 : base, err ? -1 : 0);
}

/* A Fetch of version v (7..11) with 1 MiB limits, as librdkafka's. */
static int32_t fetch_v(int i, int16_t v, const char *topic, int32_t part, int64_t off,
                       int32_t max_wait, int32_t min_bytes)
{
    int32_t c = req(RN_KAPI_FETCH, v);
    rn_kw_i32(&w, -1);                  /* replica_id */
    rn_kw_i32(&w, max_wait);
    rn_kw_i32(&w, min_bytes);
    rn_kw_i32(&w, 1 << 20);             /* max_bytes */
    rn_kw_i8(&w, 0);                    /* isolation_level */
    rn_kw_i32(&w, 0);                   /* session_id */
    rn_kw_i32(&w, -1);                  /* session_epoch */
    put_one_partition(topic, part);
    if (v >= 9)
        rn_kw_i32(&w, -1);              /* current_leader_epoch */
    rn_kw_i64(&w, off);
    rn_kw_i64(&w, -1);                  /* log_start_offset */
    rn_kw_i32(&w, 1 << 20);             /* partition_max_bytes */
    rn_kw_array(&w, 0);                 /* forgotten_topics_data */
    if (v >= 11)
        rn_kw_strz(&w, "");             /* rack_id */
    send_to(i);
    return c;
}

static int32_t fetch(int i, const char *topic, int32_t part, int64_t off, int32_t max_wait,
                     int32_t min_bytes)
{
    return fetch_v(i, 11, topic, part, off, max_wait, min_bytes);
}

/* A Fetch answer for one partition; its record bytes must be recs[0..n). */
static void fetched(int i, int32_t c, const char *topic, int32_t part, int16_t err, int64_t hw,
                    int64_t log_start, const void *recs, size_t n)
{
    rn_kr r = answer(i, c);
    ck_assert_int_eq(rn_kr_i32(&r), 0);             /* throttle */
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    ck_assert_int_eq(rn_kr_i32(&r), 0);             /* session_id */
    expect_one_partition(&r, topic, part);
    ck_assert_int_eq(rn_kr_i16(&r), err);
    ck_assert_int_eq(rn_kr_i64(&r), hw);
    ck_assert_int_eq(rn_kr_i64(&r), hw);            /* last_stable_offset */
    ck_assert_int_eq(rn_kr_i64(&r), log_start);
    ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 0);  /* aborted_transactions */
    ck_assert_int_eq(rn_kr_i32(&r), -1);            /* preferred_read_replica */
    expect_bytes(&r, recs, n);
    end(&r);
}

/* A Fetch that does not wait, and its answer. */
static void fetch_now(int i, const char *topic, int32_t part, int64_t off, int16_t err,
                      int64_t hw, int64_t log_start, const void *recs, size_t n)
{
    int32_t c = fetch(i, topic, part, off, 0, 0);
    fetched(i, c, topic, part, err, hw, log_start, recs, n);
}

/* ListOffsets v2 of one partition, whose answer must be err, ts and off. */
static void offsets(int i, const char *topic, int32_t part, int64_t ts, int16_t err,
                    int64_t rts, int64_t off)
{
    int32_t c = req(RN_KAPI_LIST_OFFSETS, 2);
    rn_kw_i32(&w, -1);
    rn_kw_i8(&w, 0);
    put_one_partition(topic, part);
    rn_kw_i64(&w, ts);
    send_to(i);
    rn_kr r = answer(i, c);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    expect_one_partition(&r, topic, part);
    ck_assert_int_eq(rn_kr_i16(&r), err);
    ck_assert_int_eq(rn_kr_i64(&r), rts);
    ck_assert_int_eq(rn_kr_i64(&r), off);
    end(&r);
}

/* Metadata v4 for names (NULL: all topics). */
static int32_t metadata(int i, const char *const *names, int n, int allow)
{
    int32_t c = req(RN_KAPI_METADATA, 4);
    rn_kw_array(&w, names ? n : -1);
    for (int k = 0; names && k < n; k++)
        rn_kw_strz(&w, names[k]);
    rn_kw_i8(&w, (int8_t)allow);
    send_to(i);
    return c;
}

/* The part of a Metadata v4 answer before the topics; returns their count. */
static int32_t metadata_head(rn_kr *r)
{
    ck_assert_int_eq(rn_kr_i32(r), 0);              /* throttle */
    ck_assert_int_eq(rn_kr_array(r, 0, NULL), 1);   /* brokers: this one */
    ck_assert_int_eq(rn_kr_i32(r), 0);
    expect_str(r, "127.0.0.1");
    ck_assert_int_eq(rn_kr_i32(r), 9092);
    expect_null_str(r);                             /* rack */
    expect_str(r, "runnel");                        /* cluster_id */
    ck_assert_int_eq(rn_kr_i32(r), 0);              /* controller */
    return rn_kr_array(r, 0, NULL);
}

static void metadata_topic(rn_kr *r, int16_t err, const char *name, int32_t nparts)
{
    ck_assert_int_eq(rn_kr_i16(r), err);
    expect_str(r, name);
    ck_assert_int_eq(rn_kr_i8(r), 0);               /* is_internal */
    ck_assert_int_eq(rn_kr_array(r, 0, NULL), nparts);
    for (int32_t p = 0; p < nparts; p++) {
        ck_assert_int_eq(rn_kr_i16(r), 0);
        ck_assert_int_eq(rn_kr_i32(r), p);
        ck_assert_int_eq(rn_kr_i32(r), 0);          /* leader */
        ck_assert_int_eq(rn_kr_array(r, 0, NULL), 1);
        ck_assert_int_eq(rn_kr_i32(r), 0);          /* replicas */
        ck_assert_int_eq(rn_kr_array(r, 0, NULL), 1);
        ck_assert_int_eq(rn_kr_i32(r), 0);          /* isr */
    }
}

/* Metadata for one topic, whose answer must be err and nparts partitions. */
static void metadata_one(int i, const char *name, int allow, int16_t err, int32_t nparts)
{
    int32_t c = metadata(i, &name, 1, allow);
    rn_kr r = answer(i, c);
    ck_assert_int_eq(metadata_head(&r), 1);
    metadata_topic(&r, err, name, nparts);
    end(&r);
}

/* CreateTopics v3 of one topic; nassign > 0 gives an explicit assignment of
 * that many partitions. */
static int32_t create(int i, const char *name, int32_t parts, int16_t rf, int nassign,
                      int validate_only)
{
    int32_t c = req(RN_KAPI_CREATE_TOPICS, 3);
    rn_kw_array(&w, 1);
    rn_kw_strz(&w, name);
    rn_kw_i32(&w, parts);
    rn_kw_i16(&w, rf);
    rn_kw_array(&w, nassign);
    for (int k = 0; k < nassign; k++) {
        rn_kw_i32(&w, k);
        rn_kw_array(&w, 1);
        rn_kw_i32(&w, 0);
    }
    rn_kw_array(&w, 1);                 /* configs */
    rn_kw_strz(&w, "retention.ms");
    rn_kw_nstr(&w, "1000", 4);
    rn_kw_i32(&w, 5000);                /* timeout_ms */
    rn_kw_i8(&w, (int8_t)validate_only);
    send_to(i);
    return c;
}

/* msg NULL: the answer's error_message must be null. */
static void created(int i, int32_t c, const char *name, int16_t err, const char *msg)
{
    rn_kr r = answer(i, c);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 1);
    expect_str(&r, name);
    ck_assert_int_eq(rn_kr_i16(&r), err);
    if (msg)
        expect_str(&r, msg);
    else
        expect_null_str(&r);
    end(&r);
}

static int32_t delete(int i, const char *name)
{
    int32_t c = req(RN_KAPI_DELETE_TOPICS, 3);
    rn_kw_array(&w, 1);
    rn_kw_strz(&w, name);
    rn_kw_i32(&w, 5000);
    send_to(i);
    return c;
}

static void deleted(int i, int32_t c, const char *name, int16_t err)
{
    rn_kr r = answer(i, c);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 1);
    expect_str(&r, name);
    ck_assert_int_eq(rn_kr_i16(&r), err);
    end(&r);
}

static int partition_dir(const char *topic, int part)
{
    char p[200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s-%d", T.dir, topic, part);
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- groups ---- */

static int32_t join(int i, const char *group, const char *member, int32_t session,
                    const char *meta)
{
    int32_t c = req(RN_KAPI_JOIN_GROUP, 5);
    rn_kw_strz(&w, group);
    rn_kw_i32(&w, session);
    rn_kw_i32(&w, 30000);               /* rebalance_timeout_ms */
    rn_kw_strz(&w, member);
    rn_kw_nstr(&w, NULL, 0);            /* group_instance_id */
    rn_kw_strz(&w, "consumer");
    rn_kw_array(&w, meta ? 1 : 0);
    if (meta) {
        rn_kw_strz(&w, "range");
        rn_kw_bytes(&w, meta, strlen(meta));
    }
    send_to(i);
    return c;
}

typedef struct joined {
    int16_t err;
    int32_t gen;
    char proto[32], leader[64], member[64];
    int32_t n;                          /* members listed (the leader's answer) */
    char id[4][64], meta[4][64];
} joined;

static joined join_answer(int i, int32_t c)
{
    joined j;
    memset(&j, 0, sizeof j);
    rn_kr r = answer(i, c);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    j.err = rn_kr_i16(&r);
    j.gen = rn_kr_i32(&r);
    copy_str(&r, j.proto, sizeof j.proto);
    copy_str(&r, j.leader, sizeof j.leader);
    copy_str(&r, j.member, sizeof j.member);
    j.n = rn_kr_array(&r, 0, NULL);
    ck_assert_int_le(j.n, 4);
    for (int32_t k = 0; k < j.n; k++) {
        copy_str(&r, j.id[k], sizeof j.id[k]);
        expect_null_str(&r);
        rn_kstr md = rn_kr_bytes(&r);
        ck_assert(rn_kr_ok(&r) && md.n < sizeof j.meta[k]);
        memcpy(j.meta[k], md.p, md.n);
    }
    end(&r);
    return j;
}

/* Join as a new member the KIP-394 way (MEMBER_ID_REQUIRED, then again with
 * the id given); returns the second join's correlation id, id in *member. */
static int32_t join_new(int i, const char *group, const char *meta, char *member)
{
    int32_t c = join(i, group, "", 10000, meta);
    joined j = join_answer(i, c);
    ck_assert_int_eq(j.err, RN_KERR_MEMBER_ID_REQUIRED);
    ck_assert_int_eq(j.gen, -1);
    ck_assert_str_eq(j.leader, "");
    ck_assert_int_eq(j.n, 0);
    ck_assert(strncmp(j.member, "check-", 6) == 0);
    strcpy(member, j.member);
    return join(i, group, member, 10000, meta);
}

/* SyncGroup v3; the leader passes n assignments for the ids in ids. */
static int32_t sync_group(int i, const char *group, int32_t gen, const char *member, int n,
                          char ids[][64], const char *const *assign)
{
    int32_t c = req(RN_KAPI_SYNC_GROUP, 3);
    rn_kw_strz(&w, group);
    rn_kw_i32(&w, gen);
    rn_kw_strz(&w, member);
    rn_kw_nstr(&w, NULL, 0);
    rn_kw_array(&w, n);
    for (int k = 0; k < n; k++) {
        rn_kw_strz(&w, ids[k]);
        rn_kw_bytes(&w, assign[k], strlen(assign[k]));
    }
    send_to(i);
    return c;
}

static void synced(int i, int32_t c, int16_t err, const char *assignment)
{
    rn_kr r = answer(i, c);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    ck_assert_int_eq(rn_kr_i16(&r), err);
    expect_bytes(&r, assignment, strlen(assignment));
    end(&r);
}

/* Heartbeat v3 or LeaveGroup v1, whose answers are both throttle and error. */
static int32_t heartbeat(int i, const char *group, int32_t gen, const char *member)
{
    int32_t c = req(RN_KAPI_HEARTBEAT, 3);
    rn_kw_strz(&w, group);
    rn_kw_i32(&w, gen);
    rn_kw_strz(&w, member);
    rn_kw_nstr(&w, NULL, 0);
    send_to(i);
    return c;
}

static int32_t leave(int i, const char *group, const char *member)
{
    int32_t c = req(RN_KAPI_LEAVE_GROUP, 1);
    rn_kw_strz(&w, group);
    rn_kw_strz(&w, member);
    send_to(i);
    return c;
}

static void simple(int i, int32_t c, int16_t err)
{
    rn_kr r = answer(i, c);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    ck_assert_int_eq(rn_kr_i16(&r), err);
    end(&r);
}

/* OffsetCommit v7 of one partition. */
static int32_t commit(int i, const char *group, int32_t gen, const char *member,
                      const char *topic, int32_t part, int64_t off, const char *meta)
{
    int32_t c = req(RN_KAPI_OFFSET_COMMIT, 7);
    rn_kw_strz(&w, group);
    rn_kw_i32(&w, gen);
    rn_kw_strz(&w, member);
    rn_kw_nstr(&w, NULL, 0);
    put_one_partition(topic, part);
    rn_kw_i64(&w, off);
    rn_kw_i32(&w, -1);                  /* committed_leader_epoch */
    rn_kw_nstr(&w, meta, meta ? strlen(meta) : 0);
    send_to(i);
    return c;
}

static void committed(int i, int32_t c, const char *topic, int32_t part, int16_t err)
{
    rn_kr r = answer(i, c);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    expect_one_partition(&r, topic, part);
    ck_assert_int_eq(rn_kr_i16(&r), err);
    end(&r);
}

/* OffsetFetch v5 of one partition: its offset and metadata. */
static void offset_fetch(int i, const char *group, const char *topic, int32_t part,
                         int64_t off, const char *meta)
{
    int32_t c = req(RN_KAPI_OFFSET_FETCH, 5);
    rn_kw_strz(&w, group);
    put_one_partition(topic, part);
    send_to(i);
    rn_kr r = answer(i, c);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    expect_one_partition(&r, topic, part);
    ck_assert_int_eq(rn_kr_i64(&r), off);
    ck_assert_int_eq(rn_kr_i32(&r), -1);            /* committed_leader_epoch */
    expect_str(&r, meta);
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    ck_assert_int_eq(rn_kr_i16(&r), 0);             /* the group's error */
    end(&r);
}

/* ---- ApiVersions and unsupported requests --------------------------------- */

START_TEST(api_versions)
{
    /* v3: flexible, with the client's name and version. */
    int32_t c = req(RN_KAPI_API_VERSIONS, 3);
    rn_kw_cstr(&w, "check", 5);
    rn_kw_cstr(&w, "1.0", 3);
    rn_kw_tags(&w);
    send_to(0);
    rn_kr r = answer(0, c);
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    int32_t n = rn_kr_carray(&r, 0);
    ck_assert_int_eq(n, 18);
    /* Spot checks: the versions librdkafka 2 asks for, and the admin
     * clients' (sarama, kafka-python, KafkaJS). */
    int seen = 0;
    for (int32_t k = 0; k < n; k++) {
        int16_t key = rn_kr_i16(&r), min = rn_kr_i16(&r), max = rn_kr_i16(&r);
        int16_t want_min = -1, want_max = -1;
        rn_kr_skip_tags(&r);
        switch (key) {
        case RN_KAPI_PRODUCE: want_min = 3, want_max = 7; break;
        case RN_KAPI_FETCH: want_min = 4, want_max = 11; break;
        case RN_KAPI_API_VERSIONS: want_min = 0, want_max = 3; break;
        case RN_KAPI_JOIN_GROUP: want_min = 0, want_max = 5; break;
        case RN_KAPI_METADATA: want_min = 0, want_max = 8; break;
        case RN_KAPI_DESCRIBE_CONFIGS: want_min = 0, want_max = 2; break;
        case RN_KAPI_LIST_GROUPS: want_min = 0, want_max = 2; break;
        case RN_KAPI_DESCRIBE_GROUPS: want_min = 0, want_max = 4; break;
        default: continue;
        }
        ck_assert_int_eq(min, want_min);
        ck_assert_int_eq(max, want_max);
        seen++;
    }
    ck_assert_int_eq(seen, 8);
    ck_assert_int_eq(rn_kr_i32(&r), 0);             /* throttle */
    rn_kr_skip_tags(&r);
    end(&r);

    /* v4 is newer than we serve: a v0 answer, so that the client downgrades. */
    c = req(RN_KAPI_API_VERSIONS, 4);
    send_to(0);
    r = answer(0, c);
    ck_assert_int_eq(rn_kr_i16(&r), RN_KERR_UNSUPPORTED_VERSION);
    n = rn_kr_array(&r, 0, NULL);
    ck_assert_int_eq(n, 18);
    for (int32_t k = 0; k < 3 * n; k++)
        rn_kr_i16(&r);
    end(&r);
    ck_assert(!T.p[0].closed);
}
END_TEST

START_TEST(unsupported_api)
{
    /* A version we do not serve, and an API we do not know: the error code
     * where the body's first field would be; the connection stays. */
    rn_kr r;
    int32_t c = req(RN_KAPI_PRODUCE, 2);
    rn_kw_i16(&w, 1);
    send_to(0);
    r = answer(0, c);
    ck_assert_int_eq(rn_kr_i16(&r), RN_KERR_UNSUPPORTED_VERSION);
    end(&r);
    c = req(60, 0);                     /* DescribeCluster */
    send_to(0);
    r = answer(0, c);
    ck_assert_int_eq(rn_kr_i16(&r), RN_KERR_UNSUPPORTED_VERSION);
    end(&r);
    ck_assert(logged("unsupported api key 60 (unknown) v0, answered UNSUPPORTED_VERSION"));
    ck_assert(!T.p[0].closed);
    ck_assert_uint_eq(counter("bad_requests"), 0);
    ck_assert_uint_eq(counter("requests"), 2);
}
END_TEST

/* ---- topics: Metadata, CreateTopics, DeleteTopics ---------------------------- */

START_TEST(metadata_auto_create)
{
    const char *names[] = { "fresh", "bad/name" };
    /* Without allow_auto_topic_creation: unknown, and nothing is created. */
    metadata_one(0, "fresh", 0, RN_KERR_UNKNOWN_TOPIC_OR_PARTITION, 0);
    ck_assert(!partition_dir("fresh", 0));
    /* With it: created with the broker's partition count; an invalid name
     * is INVALID_TOPIC either way. */
    int32_t c = metadata(0, names, 2, 1);
    rn_kr r = answer(0, c);
    ck_assert_int_eq(metadata_head(&r), 2);
    metadata_topic(&r, 0, "fresh", 2);
    metadata_topic(&r, RN_KERR_INVALID_TOPIC, "bad/name", 0);
    end(&r);
    ck_assert(partition_dir("fresh", 0) && partition_dir("fresh", 1));
    ck_assert(!partition_dir("fresh", 2));
    ck_assert(logged("created topic fresh with 2 partitions"));
    /* A null list is every topic. */
    c = create(0, "other", 1, 1, 0, 0);
    created(0, c, "other", 0, NULL);
    c = metadata(0, NULL, 0, 0);
    r = answer(0, c);
    ck_assert_int_eq(metadata_head(&r), 2);
    int fresh = 0, other = 0;
    for (int k = 0; k < 2; k++) {
        rn_kr at = r;
        rn_kr_i16(&at);
        rn_kstr name = rn_kr_str(&at);
        if (name.n == 5 && !memcmp(name.p, "fresh", 5)) {
            metadata_topic(&r, 0, "fresh", 2);
            fresh++;
        } else {
            metadata_topic(&r, 0, "other", 1);
            other++;
        }
    }
    end(&r);
    ck_assert(fresh == 1 && other == 1);
    /* With auto-creation off, allow is not enough. */
    close_broker();
    T.o.auto_create = 0;
    open_broker();
    metadata_one(0, "later", 1, RN_KERR_UNKNOWN_TOPIC_OR_PARTITION, 0);
}
END_TEST

START_TEST(create_topics)
{
    int32_t c = create(0, "orders", 3, -1, 0, 0);
    created(0, c, "orders", 0, NULL);
    ck_assert(partition_dir("orders", 2) && !partition_dir("orders", 3));
    c = create(0, "orders", 3, -1, 0, 0);
    created(0, c, "orders", RN_KERR_TOPIC_ALREADY_EXISTS, "topic already exists");
    c = create(0, "bad name!", 1, -1, 0, 0);
    created(0, c, "bad name!", RN_KERR_INVALID_TOPIC, "invalid topic name");
    c = create(0, "..", 1, -1, 0, 0);
    created(0, c, "..", RN_KERR_INVALID_TOPIC, "invalid topic name");
    c = create(0, "zero", 0, -1, 0, 0);
    created(0, c, "zero", RN_KERR_INVALID_PARTITIONS, "number of partitions must be at least 1");
    /* The broker takes at most 100000 partitions a topic. */
    c = create(0, "huge", 100001, -1, 0, 0);
    rn_kr r = answer(0, c);
    rn_kr_i32(&r);
    rn_kr_array(&r, 0, NULL);
    expect_str(&r, "huge");
    ck_assert_int_eq(rn_kr_i16(&r), RN_KERR_INVALID_PARTITIONS);
    ck_assert(!rn_kr_nstr(&r).null);
    end(&r);
    ck_assert(!partition_dir("huge", 0));
    c = create(0, "replicated", 1, 3, 0, 0);
    created(0, c, "replicated", RN_KERR_INVALID_REPLICATION_FACTOR,
            "replication factor must be 1: brokerd is one broker");
    /* validate_only checks and creates nothing. */
    c = create(0, "dry", 1, 1, 0, 1);
    created(0, c, "dry", 0, NULL);
    ck_assert(!partition_dir("dry", 0));
    /* -1 partitions: the broker's default; an assignment counts them. */
    c = create(0, "dflt", -1, -1, 0, 0);
    created(0, c, "dflt", 0, NULL);
    ck_assert(partition_dir("dflt", 1) && !partition_dir("dflt", 2));
    c = create(0, "assigned", -1, -1, 4, 0);
    created(0, c, "assigned", 0, NULL);
    ck_assert(partition_dir("assigned", 3) && !partition_dir("assigned", 4));
    /* A reopened broker finds them all. */
    close_broker();
    open_broker();
    const char *names[] = { "orders", "assigned" };
    c = metadata(0, names, 2, 0);
    r = answer(0, c);
    ck_assert_int_eq(metadata_head(&r), 2);
    metadata_topic(&r, 0, "orders", 3);
    metadata_topic(&r, 0, "assigned", 4);
    end(&r);
}
END_TEST

START_TEST(delete_topics)
{
    unsigned char one[] = "x";
    int32_t c = create(0, "gone", 2, 1, 0, 0);
    created(0, c, "gone", 0, NULL);
    c = delete(0, "gone");
    deleted(0, c, "gone", 0);
    ck_assert(!partition_dir("gone", 0) && !partition_dir("gone", 1));
    ck_assert(logged("deleted topic gone"));
    c = delete(0, "gone");
    deleted(0, c, "gone", RN_KERR_UNKNOWN_TOPIC_OR_PARTITION);
    fetch_now(0, "gone", 0, 0, RN_KERR_UNKNOWN_TOPIC_OR_PARTITION, -1, -1, one, 0);
}
END_TEST

/* ---- data: Produce, Fetch, ListOffsets ---------------------------------- */

START_TEST(produce_then_fetch)
{
    rn_buf a = { 0 }, all = { 0 };
    batch(&a, 3, 1000, "a");
    produce_now(0, "t", 0, 1, a.p, a.len, 0, 0);
    size_t blen = a.len;
    batch(&a, 2, 2000, "b");
    produce_now(0, "t", 0, -1, a.p + blen, a.len - blen, 0, 3);
    ck_assert(partition_dir("t", 1));   /* Produce auto-created t */
    ck_assert_uint_eq(counter("produced_batches"), 2);
    ck_assert_uint_eq(counter("produced_bytes"), a.len);

    /* What a Fetch returns is the batches as produced, offsets assigned. */
    rn_buf_append(&all, a.p, a.len);
    assign_offsets(&all, 0);
    ck_assert_int_eq((int64_t)rn_be64(all.p + blen), 3);
    fetch_now(1, "t", 0, 0, 0, 5, 0, all.p, all.len);
    /* From an offset inside the second batch: that whole batch. */
    fetch_now(1, "t", 0, 4, 0, 5, 0, all.p + blen, all.len - blen);
    /* At the end, without waiting: nothing. */
    fetch_now(1, "t", 0, 5, 0, 5, 0, "", 0);
    ck_assert_uint_eq(counter("fetched_bytes"), all.len + all.len - blen);
    /* The other partition is there, empty. */
    fetch_now(1, "t", 1, 0, 0, 0, 0, "", 0);
    /* Record bytes of more than 16 KiB, which a socket gets by sendfile,
     * come back the same. */
    rn_buf big = { 0 };
    big_batches(&big, 10);
    ck_assert_uint_gt(big.len, 50000);
    produce_now(0, "t", 1, 1, big.p, big.len, 0, 0);
    assign_offsets(&big, 0);
    fetch_now(1, "t", 1, 0, 0, 20, 0, big.p, big.len);
    rn_buf_free(&big);
    rn_buf_free(&a);
    rn_buf_free(&all);
}
END_TEST

/* A request larger than the shared read buffer keeps the buffer it was
 * read into (no copy) when it is first there, and what follows it moves to
 * a new one; one behind others in the same input is copied. Fed whole (the
 * large ones are behind others) and in pieces that end anywhere (they come
 * first once the input before them is done): every request is answered,
 * in order, and the records read back as produced. */
START_TEST(large_requests_among_others)
{
    rn_buf big = { 0 }, small = { 0 };
    big_batches(&big, 14);
    ck_assert_uint_gt(big.len, 70000);
    batch(&small, 3, 1000, "s");
    for (int whole = 0; whole < 2; whole++) {
        const char *topic = whole ? "whole" : "pieces";
        rn_buf stream = { 0 }, both = { 0 }, smalls = { 0 };
        gather = &stream;
        int32_t c[6];
        c[0] = produce(0, topic, 0, 1, small.p, small.len);
        c[1] = produce(0, topic, 1, 1, big.p, big.len);
        c[2] = produce(0, topic, 1, 1, big.p, big.len);
        c[3] = produce(0, topic, 0, 1, small.p, small.len);
        c[4] = fetch(0, topic, 1, 0, 0, 0);
        c[5] = fetch(0, topic, 0, 0, 0, 0);
        gather = NULL;
        size_t piece = whole ? stream.len : 7001;
        for (size_t at = 0; at < stream.len; at += piece, piece = piece * 3 % 90001 + 1) {
            size_t n = stream.len - at < piece ? stream.len - at : piece;
            rn__conn_input(T.p[0].c, stream.p + at, n);
        }
        produced(0, c[0], topic, 0, 0, 0, 0);
        produced(0, c[1], topic, 1, 0, 0, 0);
        produced(0, c[2], topic, 1, 0, 28, 0);
        produced(0, c[3], topic, 0, 0, 3, 0);
        rn_buf_append(&both, big.p, big.len);
        rn_buf_append(&both, big.p, big.len);
        assign_offsets(&both, 0);
        fetched(0, c[4], topic, 1, 0, 56, 0, both.p, both.len);
        rn_buf_append(&smalls, small.p, small.len);
        rn_buf_append(&smalls, small.p, small.len);
        assign_offsets(&smalls, 0);
        fetched(0, c[5], topic, 0, 0, 6, 0, smalls.p, smalls.len);
        ck_assert(!answered(0));
        rn_buf_free(&stream);
        rn_buf_free(&both);
        rn_buf_free(&smalls);
    }
    rn_buf_free(&big);
    rn_buf_free(&small);
}
END_TEST

START_TEST(fetch_out_of_range)
{
    rn_buf a = { 0 };
    batch(&a, 5, 1000, "a");
    produce_now(0, "t", 0, 1, a.p, a.len, 0, 0);
    fetch_now(0, "t", 0, 6, RN_KERR_OFFSET_OUT_OF_RANGE, 5, 0, "", 0);
    fetch_now(0, "t", 0, -1, RN_KERR_OFFSET_OUT_OF_RANGE, 5, 0, "", 0);
    /* An error answers at once, even with max_wait. */
    int32_t c = fetch(0, "t", 0, 99, 10000, 1);
    fetched(0, c, "t", 0, RN_KERR_OFFSET_OUT_OF_RANGE, 5, 0, "", 0);
    fetch_now(0, "t", 7, 0, RN_KERR_UNKNOWN_TOPIC_OR_PARTITION, -1, -1, "", 0);
    fetch_now(0, "nosuch", 0, 0, RN_KERR_UNKNOWN_TOPIC_OR_PARTITION, -1, -1, "", 0);
    ck_assert(!partition_dir("nosuch", 0));     /* Fetch does not create */
    rn_buf_free(&a);
}
END_TEST

START_TEST(offsets_earliest_latest_by_time)
{
    rn_buf a = { 0 };
    batch(&a, 3, 1000, "a");
    batch(&a, 2, 2000, "b");
    /* A maxTimestamp of -1, as sarama sends it: recomputed on append. */
    size_t at = batch(&a, 2, 3000, "c");
    rn_put_be64(a.p + at + 35, (uint64_t)-1);
    rn_put_be32(a.p + at + 17, rn_crc32c(0, a.p + at + 21, a.len - at - 21));
    produce_now(0, "t", 0, 1, a.p, a.len, 0, 0);
    offsets(0, "t", 0, -2, 0, -1, 0);           /* earliest */
    offsets(0, "t", 0, -1, 0, -1, 7);           /* latest */
    offsets(0, "t", 0, 1000, 0, 1000, 0);
    offsets(0, "t", 0, 1500, 0, 2000, 3);       /* the first record at or after, its time */
    offsets(0, "t", 0, 2000, 0, 2000, 3);
    offsets(0, "t", 0, 2001, 0, 3000, 5);
    offsets(0, "t", 0, 3001, 0, -1, -1);        /* none that new */
    offsets(0, "t", 1, -1, 0, -1, 0);
    offsets(0, "t", 1, 5, 0, -1, -1);
    offsets(0, "t", 2, -1, RN_KERR_UNKNOWN_TOPIC_OR_PARTITION, -1, -1);
    offsets(0, "nosuch", 0, -2, RN_KERR_UNKNOWN_TOPIC_OR_PARTITION, -1, -1);
    rn_buf_free(&a);
}
END_TEST

START_TEST(corrupt_batch)
{
    rn_buf a = { 0 };
    batch(&a, 2, 1000, "a");
    produce_now(0, "t", 0, 1, a.p, a.len, 0, 0);
    /* One bit of a record flipped: the CRC does not match. */
    a.p[a.len - 3] ^= 1;
    produce_now(0, "t", 0, 1, a.p, a.len, RN_KERR_CORRUPT_MESSAGE, -1);
    ck_assert(logged("no socket: produce to t-0: batch at byte 0: CRC mismatch"));
    a.p[a.len - 3] ^= 1;
    a.p[16] = 1;                        /* magic */
    produce_now(0, "t", 0, 1, a.p, a.len, RN_KERR_CORRUPT_MESSAGE, -1);
    ck_assert(logged("magic is not 2"));
    a.p[16] = 2;
    produce_now(0, "t", 0, 1, a.p, a.len - 1, RN_KERR_CORRUPT_MESSAGE, -1);  /* cut short */
    produce_now(0, "t", 0, 1, a.p, 0, RN_KERR_CORRUPT_MESSAGE, -1);          /* empty */
    produce_now(0, "t", 0, 1, NULL, 0, RN_KERR_CORRUPT_MESSAGE, -1);         /* null */
    /* Nothing of those reached the log; it still takes good batches. */
    offsets(1, "t", 0, -1, 0, -1, 2);
    produce_now(0, "t", 0, 1, a.p, a.len, 0, 2);
    /* Other errors of a partition. */
    produce_now(0, "t", 0, 2, a.p, a.len, RN_KERR_INVALID_REQUIRED_ACKS, -1);
    produce_now(0, "t", 5, 1, a.p, a.len, RN_KERR_UNKNOWN_TOPIC_OR_PARTITION, -1);
    produce_now(0, "no good", 0, 1, a.p, a.len, RN_KERR_INVALID_TOPIC, -1);
    offsets(1, "t", 0, -1, 0, -1, 4);
    ck_assert_uint_eq(counter("produced_batches"), 2);
    ck_assert(!T.p[0].closed);
    rn_buf_free(&a);
}
END_TEST

START_TEST(acks_zero)
{
    rn_buf a = { 0 };
    batch(&a, 3, 1000, "a");
    produce(0, "t", 0, 0, a.p, a.len);
    ck_assert(!answered(0));            /* acks=0: no answer at all */
    offsets(0, "t", 0, -1, 0, -1, 3);
    rn_buf_free(&a);
}
END_TEST

/* ---- requests that wait ------------------------------------------------------- */

START_TEST(long_poll_fetch)
{
    rn_buf a = { 0 };
    batch(&a, 2, 1000, "a");
    /* At the end with min_bytes 1: it waits for a Produce... */
    int32_t f = fetch(0, "t", 0, 0, 10000, 1);
    fetched(0, f, "t", 0, RN_KERR_UNKNOWN_TOPIC_OR_PARTITION, -1, -1, "", 0);
    int32_t c = create(1, "t", 1, 1, 0, 0);
    created(1, c, "t", 0, NULL);
    f = fetch(0, "t", 0, 0, 10000, 1);
    ck_assert(!answered(0));
    /* ...and an answer queued behind it on the same connection waits too. */
    int32_t v = req(RN_KAPI_API_VERSIONS, 0);
    send_to(0);
    ck_assert(!answered(0));
    produce_now(1, "t", 0, 1, a.p, a.len, 0, 0);
    fetched(0, f, "t", 0, 0, 2, 0, a.p, a.len);
    rn_kr r = answer(0, v);
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    ck_assert(!answered(0));

    /* With nothing produced, max_wait answers it when the loop runs. */
    uv_update_time(&T.loop);
    uint64_t t0 = uv_now(&T.loop);
    f = fetch(0, "t", 0, 2, 30, 1);
    ck_assert(!answered(0));
    ck_assert_int_eq(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
    ck_assert_uint_ge(uv_now(&T.loop) - t0, 30);
    fetched(0, f, "t", 0, 0, 2, 0, "", 0);
    rn_buf_free(&a);
}
END_TEST

/* As Kafka's DelayedFetch, min_bytes weighs what the log holds from the
 * fetch position, up to the partition's max_bytes, not what fits the answer:
 * whole batches up to 1 MiB hold less than 1,000,000 bytes here, but the
 * fetch is answered at once. */
START_TEST(fetch_min_bytes_counts_the_log)
{
    static char tag[4001];
    rn_buf a = { 0 };
    memset(tag, 'x', sizeof tag - 1);
    batch(&a, 22, 1000, tag);
    size_t blen = a.len;
    ck_assert_uint_lt((1u << 20) / blen * blen, 1000000);
    int64_t off = 0;
    for (int k = 0; k < 14; k++, off += 22) {
        produce_now(1, "t", 0, 1, a.p, a.len, 0, off);
        a.len = 0;
        batch(&a, 22, 1000, tag);
    }
    int32_t f = fetch(0, "t", 0, 0, 10000, 1000000);
    ck_assert(answered(0));
    rn_kr r = answer(0, f);
    ck_assert_int_eq(rn_kr_i32(&r), 0);             /* throttle */
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    ck_assert_int_eq(rn_kr_i32(&r), 0);             /* session_id */
    expect_one_partition(&r, "t", 0);
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    ck_assert_int_eq(rn_kr_i64(&r), off);
    rn_kr_i64(&r);
    rn_kr_i64(&r);
    rn_kr_array(&r, 0, NULL);
    rn_kr_i32(&r);
    ck_assert_uint_eq(rn_kr_bytes(&r).n, (1u << 20) / blen * blen);
    end(&r);
    /* More than the partition may send in one answer: it waits. */
    f = fetch(0, "t", 0, 0, 20, (1 << 20) + 1);
    ck_assert(!answered(0));
    /* From near the end, what is left is less than min_bytes: it waits. */
    int32_t g = fetch(2, "t", 0, off - 22, 20, 1000000);
    ck_assert(!answered(2));
    ck_assert_int_eq(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
    ck_assert(answered(0));
    answer(0, f);
    r = answer(2, g);
    rn_buf_free(&a);
}
END_TEST

/* Below Fetch v10 a client cannot read zstd: Kafka answers
 * UNSUPPORTED_COMPRESSION_TYPE when the batch at the fetch position is
 * zstd, and serves the batches before it. */
START_TEST(fetch_zstd_needs_v10)
{
    rn_buf a = { 0 }, z = { 0 };
    batch(&a, 2, 1000, "a");
    size_t at = batch(&z, 1, 1000, "zstd");
    /* Its record compressed with zstd, in place. */
    unsigned char zrec[256];
    size_t zn = ZSTD_compress(zrec, sizeof zrec, z.p + at + 61, z.len - at - 61, 3);
    ck_assert(!ZSTD_isError(zn));
    rn_kw k;
    z.len = at + 61;
    rn_kw_init(&k, &z);
    rn_kw_raw(&k, zrec, zn);
    ck_assert(!k.oom);
    rn_put_be32(z.p + at + 8, (uint32_t)(z.len - at - 12));
    z.p[at + 22] = RN_KCODEC_ZSTD;
    rn_put_be32(z.p + at + 17, rn_crc32c(0, z.p + at + 21, z.len - at - 21));
    produce_now(1, "t", 0, 1, a.p, a.len, 0, 0);
    produce_now(1, "t", 0, 1, z.p, z.len, 0, 2);
    for (int16_t v = 7; v <= 11; v++) {
        for (int64_t off = 0; off <= 2; off += 2) {
            int32_t c = fetch_v(0, v, "t", 0, off, 0, 0);
            rn_kr r = answer(0, c);
            int bad = v < 10 && off == 2;
            ck_assert_int_eq(rn_kr_i32(&r), 0);             /* throttle */
            ck_assert_int_eq(rn_kr_i16(&r), 0);
            ck_assert_int_eq(rn_kr_i32(&r), 0);             /* session_id */
            expect_one_partition(&r, "t", 0);
            ck_assert_int_eq(rn_kr_i16(&r), bad ? RN_KERR_UNSUPPORTED_COMPRESSION_TYPE : 0);
            ck_assert_int_eq(rn_kr_i64(&r), bad ? -1 : 3);  /* high watermark */
            ck_assert_int_eq(rn_kr_i64(&r), bad ? -1 : 3);
            ck_assert_int_eq(rn_kr_i64(&r), bad ? -1 : 0);  /* log start */
            ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 0);
            if (v >= 11)
                ck_assert_int_eq(rn_kr_i32(&r), -1);
            rn_kstr recs = rn_kr_bytes(&r);
            /* From 0 the first batch is plain and both go: the client
             * meets zstd only when it asks from there. */
            ck_assert_uint_eq(recs.n, bad ? 0 : off == 0 ? a.len + z.len : z.len);
            end(&r);
        }
    }
    rn_buf_free(&a);
    rn_buf_free(&z);
}
END_TEST

/* Reopen the broker with --flush always and produce a batch of two records
 * (kept in a) to t-0 from peer 0: the request's correlation id. */
static int32_t produce_flush_always(rn_buf *a)
{
    close_broker();
    T.o.flush = RN_FLUSH_ALWAYS;
    open_broker();
    batch(a, 2, 1000, "a");
    return produce(0, "t", 0, -1, a->p, a->len);
}

START_TEST(flush_always)
{
    rn_buf a = { 0 };
    int32_t c = produce_flush_always(&a);
    /* The answer waits for the fsync, which runs off the loop thread. */
    ck_assert(!answered(0));
    ck_assert_int_eq(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
    produced(0, c, "t", 0, 0, 0, 0);
    ck_assert_uint_eq(counter("group_commits"), 1);
    char rp[200], buf[128] = "";
    snprintf(rp, sizeof rp, "%s/t-0/recovery-point", T.dir);
    FILE *f = fopen(rp, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_gt(fread(buf, 1, sizeof buf - 1, f), 0);
    fclose(f);
    ck_assert_msg(strstr(buf, "recovery-point 2\n"), "%s", buf);
    rn_buf_free(&a);
}
END_TEST

/* fsync fails for partition t-0's files only (EIO), not for t-1's. */
static int fail_t0(int fd)
{
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    path[n > 0 ? n : 0] = '\0';
    if (strstr(path, "/t-0")) {
        errno = EIO;
        return -1;
    }
    return fsync(fd);
}

/* A failed fsync answers the Produce that waits for it KAFKA_STORAGE_ERROR
 * (its connection stays), takes the partition offline (later Produces to it
 * are refused at once; its records are still served) and leaves the other
 * partitions alone; brokerd's exit status will say so. After a restart the
 * partition takes appends again. */
START_TEST(fsync_fails)
{
    rn_buf a = { 0 };
    int32_t c = produce_flush_always(&a);
    ck_assert_int_eq(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
    produced(0, c, "t", 0, 0, 0, 0);
    rn__klog_fsync_hook = fail_t0;
    c = produce(0, "t", 0, -1, a.p, a.len);
    int32_t c1 = produce(1, "t", 1, 1, a.p, a.len);
    ck_assert(!answered(0));
    ck_assert_int_eq(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
    rn__klog_fsync_hook = NULL;
    ck_assert(!T.p[0].closed);
    produced(0, c, "t", 0, RN_KERR_KAFKA_STORAGE_ERROR, -1, -1);
    produced(1, c1, "t", 1, 0, 0, 0);
    ck_assert_msg(logged("/t-0: fsync: Input/output error: the partition takes no more appends"),
                  "%s", T.log);
    ck_assert(rn_broker_failed(T.b));
    /* Offline: refused without waiting, read as before. */
    produce_now(0, "t", 0, -1, a.p, a.len, RN_KERR_KAFKA_STORAGE_ERROR, -1);
    c = fetch(0, "t", 0, 0, 0, 1);
    rn_kr r = answer(0, c);
    rn_kr_i32(&r);                                  /* throttle */
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    rn_kr_i32(&r);                                  /* session_id */
    expect_one_partition(&r, "t", 0);
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    ck_assert_int_eq(rn_kr_i64(&r), 4);             /* the records stay: at least once */
    c1 = produce(1, "t", 1, 1, a.p, a.len);
    ck_assert_int_eq(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
    produced(1, c1, "t", 1, 0, 2, 0);
    close_broker();
    open_broker();
    c = produce(0, "t", 0, -1, a.p, a.len);
    ck_assert_int_eq(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
    produced(0, c, "t", 0, 0, 4, 0);
    ck_assert(!rn_broker_failed(T.b));
    rn_buf_free(&a);
}
END_TEST

/* ---- consumer groups ---------------------------------------------------------- */

START_TEST(find_coordinator)
{
    int32_t c = req(RN_KAPI_FIND_COORDINATOR, 2);
    rn_kw_strz(&w, "g");
    rn_kw_i8(&w, 0);
    send_to(0);
    rn_kr r = answer(0, c);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    expect_null_str(&r);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    expect_str(&r, "127.0.0.1");
    ck_assert_int_eq(rn_kr_i32(&r), 9092);
    end(&r);
}
END_TEST

START_TEST(group_handshake)
{
    char me[64], ids[1][64];
    const char *assign[] = { "partitions 0,1" };
    int32_t c = join_new(0, "g", "meta-A", me);
    ck_assert_str_eq(me, "check-1");
    /* The only member: a generation at once, and it leads. */
    joined j = join_answer(0, c);
    ck_assert_int_eq(j.err, 0);
    ck_assert_int_eq(j.gen, 1);
    ck_assert_str_eq(j.proto, "range");
    ck_assert_str_eq(j.leader, me);
    ck_assert_str_eq(j.member, me);
    ck_assert_int_eq(j.n, 1);
    ck_assert_str_eq(j.id[0], me);
    ck_assert_str_eq(j.meta[0], "meta-A");
    strcpy(ids[0], me);
    c = sync_group(0, "g", 1, me, 1, ids, assign);
    synced(0, c, 0, "partitions 0,1");

    c = heartbeat(0, "g", 1, me);
    simple(0, c, 0);
    c = heartbeat(0, "g", 2, me);
    simple(0, c, RN_KERR_ILLEGAL_GENERATION);
    c = heartbeat(0, "g", 1, "nobody");
    simple(0, c, RN_KERR_UNKNOWN_MEMBER_ID);
    c = heartbeat(0, "other", 1, me);
    simple(0, c, RN_KERR_UNKNOWN_MEMBER_ID);
    c = sync_group(0, "g", 0, me, 0, ids, assign);
    synced(0, c, RN_KERR_ILLEGAL_GENERATION, "");

    c = commit(0, "g", 1, me, "t", 0, 42, "m");
    committed(0, c, "t", 0, 0);
    c = commit(0, "g", 7, me, "t", 0, 43, "m");
    committed(0, c, "t", 0, RN_KERR_ILLEGAL_GENERATION);
    c = commit(0, "g", 1, "nobody", "t", 0, 44, "m");
    committed(0, c, "t", 0, RN_KERR_UNKNOWN_MEMBER_ID);
    offset_fetch(0, "g", "t", 0, 42, "m");
    offset_fetch(0, "g", "t", 1, -1, "");       /* nothing committed */
    offset_fetch(0, "none", "t", 0, -1, "");

    c = leave(0, "g", me);
    simple(0, c, 0);
    ck_assert(logged("group g: member check-1 left"));
    c = leave(0, "g", me);
    simple(0, c, RN_KERR_UNKNOWN_MEMBER_ID);
    c = heartbeat(0, "g", 1, me);
    simple(0, c, RN_KERR_UNKNOWN_MEMBER_ID);
    /* The committed offset outlives the member. */
    offset_fetch(0, "g", "t", 0, 42, "m");
}
END_TEST

START_TEST(group_rebalance)
{
    char a[64], b[64], ids[2][64];
    const char *assign[] = { "for A", "for B" };
    int32_t c = join_new(0, "g", "A", a);
    joined j = join_answer(0, c);
    ck_assert_int_eq(j.gen, 1);
    strcpy(ids[0], a);
    c = sync_group(0, "g", 1, a, 1, ids, assign);
    synced(0, c, 0, "for A");

    /* B's join starts a rebalance and waits for A to rejoin. */
    int32_t jb = join_new(1, "g", "B", b);
    ck_assert(!answered(1));
    c = heartbeat(0, "g", 1, a);
    simple(0, c, RN_KERR_REBALANCE_IN_PROGRESS);
    c = commit(0, "g", 1, a, "t", 0, 5, NULL);
    committed(0, c, "t", 0, 0);         /* allowed while preparing */
    int32_t ja = join(0, "g", a, 10000, "A");
    j = join_answer(0, ja);
    ck_assert_int_eq(j.err, 0);
    ck_assert_int_eq(j.gen, 2);
    ck_assert_str_eq(j.leader, a);
    ck_assert_int_eq(j.n, 2);
    ck_assert_str_eq(j.id[0], a);
    ck_assert_str_eq(j.meta[0], "A");
    ck_assert_str_eq(j.id[1], b);
    ck_assert_str_eq(j.meta[1], "B");
    j = join_answer(1, jb);
    ck_assert_int_eq(j.err, 0);
    ck_assert_int_eq(j.gen, 2);
    ck_assert_str_eq(j.leader, a);
    ck_assert_str_eq(j.member, b);
    ck_assert_int_eq(j.n, 0);
    ck_assert(logged("group g: generation 2 with 2 members, protocol range, leader check-1"));

    /* B's sync waits for the leader's assignment. */
    int32_t sb = sync_group(1, "g", 2, b, 0, ids, assign);
    ck_assert(!answered(1));
    /* A commit before the member has its assignment is refused; its answer
     * waits behind the sync on that connection. */
    int32_t cb = commit(1, "g", 2, b, "t", 1, 9, NULL);
    ck_assert(!answered(1));
    strcpy(ids[1], b);
    c = sync_group(0, "g", 2, a, 2, ids, assign);
    synced(0, c, 0, "for A");
    synced(1, sb, 0, "for B");
    committed(1, cb, "t", 1, RN_KERR_REBALANCE_IN_PROGRESS);
    ck_assert(!answered(1));
    c = sync_group(0, "g", 1, a, 0, ids, assign);
    synced(0, c, RN_KERR_ILLEGAL_GENERATION, "");

    /* A leaves: B must rejoin, and then leads alone. */
    c = leave(0, "g", a);
    simple(0, c, 0);
    c = heartbeat(1, "g", 2, b);
    simple(1, c, RN_KERR_REBALANCE_IN_PROGRESS);
    c = join(1, "g", b, 10000, "B");
    j = join_answer(1, c);
    ck_assert_int_eq(j.gen, 3);
    ck_assert_str_eq(j.leader, b);
    ck_assert_int_eq(j.n, 1);
}
END_TEST

START_TEST(join_errors)
{
    int32_t c = join(0, "", "", 10000, "m");
    joined j = join_answer(0, c);
    ck_assert_int_eq(j.err, RN_KERR_INVALID_GROUP_ID);
    c = join(0, "g", "", 999, "m");
    j = join_answer(0, c);
    ck_assert_int_eq(j.err, RN_KERR_INVALID_SESSION_TIMEOUT);
    c = join(0, "g", "", 10000, NULL);
    j = join_answer(0, c);
    ck_assert_int_eq(j.err, RN_KERR_INCONSISTENT_GROUP_PROTOCOL);
    c = join(0, "g", "check-99", 10000, "m");
    j = join_answer(0, c);
    ck_assert_int_eq(j.err, RN_KERR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(j.gen, -1);
    ck_assert(!T.p[0].closed);
}
END_TEST

START_TEST(offsets_persist)
{
    /* A commit from outside the group (generation -1, no member), as an
     * assign()ing consumer makes; a group id that is not a file name. */
    int32_t c = commit(0, "../odd group", -1, "", "t", 3, 1234, "meta data");
    committed(0, c, "t", 3, 0);
    c = commit(0, "../odd group", -1, "", "u", 0, 7, NULL);
    committed(0, c, "u", 0, 0);
    close_broker();
    open_broker();
    offset_fetch(0, "../odd group", "t", 3, 1234, "meta data");
    offset_fetch(0, "../odd group", "u", 0, 7, "");
    offset_fetch(0, "../odd group", "t", 0, -1, "");
}
END_TEST

/* ---- framing: partial, oversized, truncated and malformed requests -------------- */

START_TEST(request_in_pieces)
{
    int32_t c = req(RN_KAPI_API_VERSIONS, 2);
    rn_kw_fill32(&w, 0, (int32_t)(rq.len - 4));
    /* Two requests in one read, the second one byte by byte. */
    rn_buf two = { 0 };
    rn_buf_append(&two, rq.p, rq.len);
    rn_buf_append(&two, rq.p, rq.len);
    rn__conn_input(T.p[0].c, two.p, rq.len + 3);
    rn_kr r = answer(0, c);
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    ck_assert(!answered(0));
    for (size_t k = rq.len + 3; k < two.len; k++) {
        ck_assert(!answered(0));
        rn__conn_input(T.p[0].c, two.p + k, 1);
    }
    r = answer(0, c);
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    ck_assert_uint_eq(counter("requests"), 2);
    rn_buf_free(&two);
}
END_TEST

/* Hand peer 0 raw bytes that must close it with a log line holding why;
 * peer 1 still gets answers. */
static void closes(const void *p, size_t n, const char *why)
{
    rn__conn_input(T.p[0].c, p, n);
    ck_assert(T.p[0].closed);
    ck_assert_msg(logged(why), "want '%s' in:\n%s", why, T.log);
    ck_assert(logged(", closing the connection\n"));
    int32_t c = req(RN_KAPI_API_VERSIONS, 0);
    send_to(1);
    rn_kr r = answer(1, c);
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    ck_assert_uint_eq(counter("bad_requests"), 1);
}

START_TEST(request_too_small)
{
    const unsigned char small[] = { 0, 0, 0, 5, 0, 18, 0, 0, 0 };
    closes(small, sizeof small, "no socket: request size 5 is too small for a request header "
                                "(api key 18 ApiVersions)");
    ck_assert(!answered(0));
}
END_TEST

START_TEST(request_too_big)
{
    unsigned char big[8] = { 0 };
    rn_put_be32(big, (1u << 20) + 1);
    big[5] = 3;
    closes(big, sizeof big, "request size 1048577 exceeds --max-request (api key 3 Metadata)");
}
END_TEST

START_TEST(header_truncated)
{
    /* The client id claims 50 bytes; the request ends after 2. */
    const unsigned char h[] = { 0, 0, 0, 12, 0, 18, 0, 0, 0, 0, 0, 1, 0, 50, 'a', 'b' };
    closes(h, sizeof h, "truncated request header (api key 18 ApiVersions)");
}
END_TEST

START_TEST(body_malformed)
{
    /* What was asked before the bad request is answered; nothing after. */
    int32_t ok = req(RN_KAPI_API_VERSIONS, 0);
    send_to(0);
    req(RN_KAPI_METADATA, 4);
    rn_kw_array(&w, 1000);              /* a thousand names that are not there */
    rn_kw_i8(&w, 1);
    rn_kw_fill32(&w, 0, (int32_t)(rq.len - 4));
    closes(rq.p, rq.len, "malformed request (api key 3 Metadata v4)");
    rn_kr r = answer(0, ok);
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    ck_assert(!answered(0));
}
END_TEST

START_TEST(produce_malformed)
{
    /* A Produce whose records run past the request appends nothing, even
     * for the partitions before it. */
    rn_buf a = { 0 };
    batch(&a, 2, 1000, "a");
    req(RN_KAPI_PRODUCE, 7);
    rn_kw_nstr(&w, NULL, 0);
    rn_kw_i16(&w, 1);
    rn_kw_i32(&w, 5000);
    rn_kw_array(&w, 1);
    rn_kw_strz(&w, "t");
    rn_kw_array(&w, 2);
    rn_kw_i32(&w, 0);
    rn_kw_bytes(&w, a.p, a.len);
    rn_kw_i32(&w, 1);
    rn_kw_i32(&w, (int32_t)a.len);      /* but no bytes follow */
    rn_kw_fill32(&w, 0, (int32_t)(rq.len - 4));
    closes(rq.p, rq.len, "malformed request (api key 0 Produce v7)");
    ck_assert(!partition_dir("t", 0));
    ck_assert_uint_eq(counter("produced_batches"), 0);
    rn_buf_free(&a);
}
END_TEST

/* ---- the broker's life: rn_broker_new, _start, _stop, _failed ---------------- */

START_TEST(new_fails)
{
    char err[RN_ERRLEN] = "", path[200];
    close_broker();
    /* The data directory is a file. */
    snprintf(path, sizeof path, "%s/file", T.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    T.o.data_dir = path;
    ck_assert_ptr_null(rn_broker_new(&T.loop, &T.o, err));
    ck_assert_msg(strstr(err, path) && strstr(err, strerror(ENOTDIR)), "%s", err);
    /* A partition's directory is a file. */
    snprintf(path, sizeof path, "%s/data", T.dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/data/t-0", T.dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/data", T.dir);
    err[0] = 0;
    ck_assert_ptr_null(rn_broker_new(&T.loop, &T.o, err));
    ck_assert_msg(strstr(err, "/data/t-0"), "%s", err);
}
END_TEST

START_TEST(start_fails)
{
    char err[RN_ERRLEN] = "";
    close_broker();
    T.o.host = "localhost";
    open_broker();
    ck_assert_int_eq(rn_broker_start(T.b, err), RN_ERR);
    ck_assert_str_eq(err, "localhost: not a numeric address");
}
END_TEST

/* What Metadata and FindCoordinator give clients as this broker's address. */
static void expect_advertised(const char *host, int32_t port)
{
    int32_t c = metadata(0, NULL, 0, 0);
    rn_kr r = answer(0, c);
    ck_assert_int_eq(rn_kr_i32(&r), 0);             /* throttle */
    ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 1);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    expect_str(&r, host);
    ck_assert_int_eq(rn_kr_i32(&r), port);
    c = req(RN_KAPI_FIND_COORDINATOR, 2);
    rn_kw_strz(&w, "g");
    rn_kw_i8(&w, 0);
    send_to(0);
    r = answer(0, c);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    expect_null_str(&r);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    expect_str(&r, host);
    ck_assert_int_eq(rn_kr_i32(&r), port);
    end(&r);
    ck_assert_str_eq(rn_broker_advertised_host(T.b), host);
    ck_assert_int_eq(rn_broker_advertised_port(T.b), port);
}

START_TEST(advertised)
{
    char name[256] = "";
    ck_assert_int_eq(gethostname(name, sizeof name - 1), 0);
    expect_advertised("127.0.0.1", 9092);           /* the address listened on */
    /* A wildcard, which a client elsewhere would take for itself: the
     * machine's name, as Kafka advertises a listener with no host. */
    close_broker();
    T.o.host = "0.0.0.0";
    open_broker();
    expect_advertised(name, 9092);
    close_broker();
    T.o.host = "::";
    open_broker();
    expect_advertised(name, 9092);
    /* Given: the host, and the port when it is not the one listened on. */
    close_broker();
    T.o.advertise_host = "kafka1.example.com";
    open_broker();
    expect_advertised("kafka1.example.com", 9092);
    close_broker();
    T.o.advertise_port = 19092;
    open_broker();
    expect_advertised("kafka1.example.com", 19092);
}
END_TEST

START_TEST(storage_error)
{
    /* A file where the new topic's directory goes. */
    char path[200];
    snprintf(path, sizeof path, "%s/s-0", T.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert(!rn_broker_failed(T.b));
    metadata_one(0, "s", 1, RN_KERR_KAFKA_STORAGE_ERROR, 0);
    ck_assert(rn_broker_failed(T.b));
    char why[300];
    snprintf(why, sizeof why, "auto-create s: %s: %s\n", path, strerror(ENOTDIR));
    ck_assert_msg(logged(why), "%s", T.log);
    int32_t c = create(0, "s", 1, 1, 0, 0);
    snprintf(why, sizeof why, "%s: %s", path, strerror(ENOTDIR));
    created(0, c, "s", RN_KERR_KAFKA_STORAGE_ERROR, why);
}
END_TEST

static void on_stopped(void *data)
{
    (void)data;
    T.stopped++;
}

START_TEST(stop_answers_waiters)
{
    char a[64], b[64], ids[1][64];
    const char *assign[] = { "x" };
    int32_t c = create(2, "t", 1, 1, 0, 0);
    created(2, c, "t", 0, NULL);
    int32_t f = fetch(0, "t", 0, 0, 60000, 1);
    c = join_new(2, "g", "A", a);
    joined j = join_answer(2, c);
    strcpy(ids[0], a);
    c = sync_group(2, "g", j.gen, a, 1, ids, assign);
    synced(2, c, 0, "x");
    int32_t jb = join_new(1, "g", "B", b);
    ck_assert(!answered(0) && !answered(1));
    /* Stop: the long poll is answered now, the parked join gets
     * COORDINATOR_NOT_AVAILABLE, and done is called. */
    rn_broker_stop(T.b, on_stopped, NULL);
    ck_assert_int_eq(T.stopped, 1);
    fetched(0, f, "t", 0, 0, 0, 0, "", 0);
    j = join_answer(1, jb);
    ck_assert_int_eq(j.err, RN_KERR_COORDINATOR_NOT_AVAILABLE);
    ck_assert_str_eq(j.member, b);
    /* A topic is not auto-created while stopping. */
    metadata_one(2, "late", 1, RN_KERR_UNKNOWN_TOPIC_OR_PARTITION, 0);
}
END_TEST

/* ---- admin: Metadata v8, DescribeConfigs, AlterConfigs, groups -------------- */

START_TEST(metadata_v8)
{
    /* v8: leader epoch (-1: none), offline replicas, and the authorized
     * operations when asked (all of them, as Kafka without an authorizer). */
    const char *name = "m8";
    int32_t c = req(RN_KAPI_METADATA, 8);
    rn_kw_array(&w, 1);
    rn_kw_strz(&w, name);
    rn_kw_i8(&w, 1);                    /* allow_auto_topic_creation */
    rn_kw_i8(&w, 1);                    /* include_cluster_authorized_operations */
    rn_kw_i8(&w, 0);                    /* include_topic_authorized_operations */
    send_to(0);
    rn_kr r = answer(0, c);
    ck_assert_int_eq(metadata_head(&r), 1);
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    expect_str(&r, name);
    ck_assert_int_eq(rn_kr_i8(&r), 0);
    ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 2);
    for (int32_t p = 0; p < 2; p++) {
        ck_assert_int_eq(rn_kr_i16(&r), 0);
        ck_assert_int_eq(rn_kr_i32(&r), p);
        ck_assert_int_eq(rn_kr_i32(&r), 0);         /* leader */
        ck_assert_int_eq(rn_kr_i32(&r), -1);        /* leader_epoch */
        ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 1);
        ck_assert_int_eq(rn_kr_i32(&r), 0);
        ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 1);
        ck_assert_int_eq(rn_kr_i32(&r), 0);
        ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 0);  /* offline_replicas */
    }
    ck_assert_int_eq(rn_kr_i32(&r), INT32_MIN);     /* topic ops: not asked */
    /* CREATE ALTER DESCRIBE CLUSTER_ACTION DESCRIBE_CONFIGS ALTER_CONFIGS
     * IDEMPOTENT_WRITE */
    ck_assert_int_eq(rn_kr_i32(&r), 1 << 5 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 10 | 1 << 11 | 1 << 12);
    end(&r);
}
END_TEST

/* DescribeConfigs of one resource; keys NULL asks for all. */
static int32_t describe_configs(int16_t v, int8_t type, const char *name, const char *const *keys,
                                int nkeys, int synonyms)
{
    int32_t c = req(RN_KAPI_DESCRIBE_CONFIGS, v);
    rn_kw_array(&w, 1);
    rn_kw_i8(&w, type);
    rn_kw_strz(&w, name);
    rn_kw_array(&w, keys ? nkeys : -1);
    for (int k = 0; keys && k < nkeys; k++)
        rn_kw_strz(&w, keys[k]);
    if (v >= 1)
        rn_kw_i8(&w, (int8_t)synonyms);
    send_to(0);
    return c;
}

/* The head of its answer: returns the number of configs. */
static int32_t configs_head(rn_kr *r, int16_t err, int8_t type, const char *name)
{
    ck_assert_int_eq(rn_kr_i32(r), 0);              /* throttle */
    ck_assert_int_eq(rn_kr_array(r, 0, NULL), 1);
    ck_assert_int_eq(rn_kr_i16(r), err);
    rn_kstr msg = rn_kr_nstr(r);
    ck_assert(rn_kr_ok(r) && msg.null == !err);
    ck_assert_int_eq(rn_kr_i8(r), type);
    expect_str(r, name);
    return rn_kr_array(r, 0, NULL);
}

/* One config entry of a v1/v2 answer; synonym: the broker setting expected
 * as its one synonym, or NULL for none. */
static void config_entry(rn_kr *r, const char *name, const char *value, const char *synonym)
{
    expect_str(r, name);
    expect_str(r, value);
    ck_assert_int_eq(rn_kr_i8(r), 1);               /* read_only */
    ck_assert_int_eq(rn_kr_i8(r), 4);               /* STATIC_BROKER_CONFIG */
    ck_assert_int_eq(rn_kr_i8(r), 0);               /* is_sensitive */
    ck_assert_int_eq(rn_kr_array(r, 0, NULL), synonym ? 1 : 0);
    if (synonym) {
        expect_str(r, synonym);
        expect_str(r, value);
        ck_assert_int_eq(rn_kr_i8(r), 4);
    }
}

START_TEST(describe_configs_from_options)
{
    close_broker();
    T.o.klog.retention_ns = 3600 * 1000000000LL;
    T.o.klog.segment_bytes = 1 << 20;
    T.o.flush = RN_FLUSH_ALWAYS;
    open_broker();
    int32_t c = create(0, "cfg", 1, 1, 0, 0);
    created(0, c, "cfg", 0, NULL);

    /* The keys asked for, in our order; an unknown key is left out. */
    const char *keys[] = { "segment.bytes", "nope", "retention.ms", "flush.messages" };
    c = describe_configs(2, 2, "cfg", keys, 4, 1);
    rn_kr r = answer(0, c);
    ck_assert_int_eq(configs_head(&r, 0, 2, "cfg"), 3);
    config_entry(&r, "retention.ms", "3600000", "log.retention.ms");
    config_entry(&r, "segment.bytes", "1048576", "log.segment.bytes");
    config_entry(&r, "flush.messages", "1", "log.flush.interval.messages");
    end(&r);

    /* All of them (null keys), without synonyms; no retention by size. */
    c = describe_configs(1, 2, "cfg", NULL, 0, 0);
    r = answer(0, c);
    int32_t n = configs_head(&r, 0, 2, "cfg");
    ck_assert_int_ge(n, 10);
    int seen = 0;
    for (int32_t k = 0; k < n; k++) {
        rn_kr at = r;
        rn_kstr key = rn_kr_str(&at);
        if (key.n == 15 && !memcmp(key.p, "retention.bytes", 15))
            config_entry(&r, "retention.bytes", "-1", NULL), seen++;
        else if (key.n == 14 && !memcmp(key.p, "cleanup.policy", 14))
            config_entry(&r, "cleanup.policy", "delete", NULL), seen++;
        else {
            rn_kr_str(&r);
            rn_kr_nstr(&r);
            rn_kr_i8(&r);
            rn_kr_i8(&r);
            rn_kr_i8(&r);
            ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 0);
        }
    }
    ck_assert_int_eq(seen, 2);
    end(&r);

    /* v0: is_default where v1 has the source, and no synonyms. */
    const char *one[] = { "retention.ms" };
    c = describe_configs(0, 2, "cfg", one, 1, 0);
    r = answer(0, c);
    ck_assert_int_eq(configs_head(&r, 0, 2, "cfg"), 1);
    expect_str(&r, "retention.ms");
    expect_str(&r, "3600000");
    ck_assert_int_eq(rn_kr_i8(&r), 1);              /* read_only */
    ck_assert_int_eq(rn_kr_i8(&r), 0);              /* is_default */
    ck_assert_int_eq(rn_kr_i8(&r), 0);              /* is_sensitive */
    end(&r);

    /* The broker: by its id or by "" (its own settings). */
    const char *parts[] = { "num.partitions" };
    c = describe_configs(2, 4, "0", parts, 1, 0);
    r = answer(0, c);
    ck_assert_int_eq(configs_head(&r, 0, 4, "0"), 1);
    config_entry(&r, "num.partitions", "2", NULL);
    end(&r);
    c = describe_configs(2, 4, "7", NULL, 0, 0);
    r = answer(0, c);
    ck_assert_int_eq(configs_head(&r, RN_KERR_INVALID_REQUEST, 4, "7"), 0);
    end(&r);

    /* A topic that is not there; a resource type that has no configs here. */
    c = describe_configs(2, 2, "none", NULL, 0, 0);
    r = answer(0, c);
    ck_assert_int_eq(configs_head(&r, RN_KERR_UNKNOWN_TOPIC_OR_PARTITION, 2, "none"), 0);
    end(&r);
    c = describe_configs(2, 8, "x", NULL, 0, 0);
    r = answer(0, c);
    ck_assert_int_eq(configs_head(&r, RN_KERR_INVALID_REQUEST, 8, "x"), 0);
    end(&r);
    ck_assert(!T.p[0].closed);
}
END_TEST

START_TEST(alter_configs_refused)
{
    int32_t c = create(0, "cfg", 1, 1, 0, 0);
    created(0, c, "cfg", 0, NULL);
    const char *names[] = { "cfg", "none" };
    c = req(RN_KAPI_ALTER_CONFIGS, 1);
    rn_kw_array(&w, 2);
    for (int k = 0; k < 2; k++) {
        rn_kw_i8(&w, 2);
        rn_kw_strz(&w, names[k]);
        rn_kw_array(&w, 1);
        rn_kw_strz(&w, "retention.ms");
        rn_kw_nstr(&w, "1000", 4);
    }
    rn_kw_i8(&w, 0);                    /* validate_only */
    send_to(0);
    rn_kr r = answer(0, c);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 2);
    ck_assert_int_eq(rn_kr_i16(&r), RN_KERR_POLICY_VIOLATION);
    expect_str(&r, "configs are read-only: brokerd's options set them");
    ck_assert_int_eq(rn_kr_i8(&r), 2);
    expect_str(&r, "cfg");
    ck_assert_int_eq(rn_kr_i16(&r), RN_KERR_UNKNOWN_TOPIC_OR_PARTITION);
    expect_str(&r, "no such topic");
    ck_assert_int_eq(rn_kr_i8(&r), 2);
    expect_str(&r, "none");
    end(&r);
}
END_TEST

static int32_t describe_group_req(int16_t v, const char *group)
{
    int32_t c = req(RN_KAPI_DESCRIBE_GROUPS, v);
    rn_kw_array(&w, 1);
    rn_kw_strz(&w, group);
    if (v >= 3)
        rn_kw_i8(&w, 1);                /* include_authorized_operations */
    send_to(2);
    return c;
}

/* The head of a DescribeGroups v4 answer for one group; returns its members. */
static int32_t described(rn_kr *r, int16_t err, const char *group, const char *state,
                         const char *ptype, const char *proto)
{
    ck_assert_int_eq(rn_kr_i32(r), 0);
    ck_assert_int_eq(rn_kr_array(r, 0, NULL), 1);
    ck_assert_int_eq(rn_kr_i16(r), err);
    expect_str(r, group);
    expect_str(r, state);
    expect_str(r, ptype);
    expect_str(r, proto);
    return rn_kr_array(r, 0, NULL);
}

static void described_member(rn_kr *r, const char *id, const char *meta, const char *assign)
{
    expect_str(r, id);
    expect_null_str(r);                             /* group_instance_id */
    expect_str(r, "check");                         /* client_id */
    expect_str(r, "/no socket");                    /* client_host: a fake connection's */
    expect_bytes(r, meta, strlen(meta));
    expect_bytes(r, assign, strlen(assign));
}

START_TEST(list_and_describe_groups)
{
    char a[64], ids[1][64];
    const char *assign[] = { "parts" };
    /* No groups yet. */
    int32_t c = req(RN_KAPI_LIST_GROUPS, 2);
    send_to(2);
    rn_kr r = answer(2, c);
    ck_assert_int_eq(rn_kr_i32(&r), 0);
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 0);
    end(&r);

    c = join_new(0, "g", "meta-A", a);
    joined j = join_answer(0, c);
    ck_assert_int_eq(j.err, 0);
    /* Joined, not synced: members are listed, but not what they hold yet. */
    c = describe_group_req(4, "g");
    r = answer(2, c);
    ck_assert_int_eq(described(&r, 0, "g", "CompletingRebalance", "consumer", ""), 1);
    described_member(&r, a, "", "");
    ck_assert_int_eq(rn_kr_i32(&r), 1 << 3 | 1 << 6 | 1 << 8);   /* READ DELETE DESCRIBE */
    end(&r);

    strcpy(ids[0], a);
    c = sync_group(0, "g", j.gen, a, 1, ids, assign);
    synced(0, c, 0, "parts");
    c = describe_group_req(4, "g");
    r = answer(2, c);
    ck_assert_int_eq(described(&r, 0, "g", "Stable", "consumer", "range"), 1);
    described_member(&r, a, "meta-A", "parts");
    ck_assert_int_eq(rn_kr_i32(&r), 1 << 3 | 1 << 6 | 1 << 8);
    end(&r);

    c = req(RN_KAPI_LIST_GROUPS, 0);
    send_to(2);
    r = answer(2, c);
    ck_assert_int_eq(rn_kr_i16(&r), 0);
    ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 1);
    expect_str(&r, "g");
    expect_str(&r, "consumer");
    end(&r);

    /* Kafka's answers for a group it does not know and for no id (v0: no
     * throttle, no operations). */
    c = describe_group_req(4, "nobody");
    r = answer(2, c);
    ck_assert_int_eq(described(&r, 0, "nobody", "Dead", "", ""), 0);
    ck_assert_int_eq(rn_kr_i32(&r), 1 << 3 | 1 << 6 | 1 << 8);
    end(&r);
    c = describe_group_req(0, "");
    r = answer(2, c);
    ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 1);
    ck_assert_int_eq(rn_kr_i16(&r), RN_KERR_INVALID_GROUP_ID);
    expect_str(&r, "");
    expect_str(&r, "Dead");
    expect_str(&r, "");
    expect_str(&r, "");
    ck_assert_int_eq(rn_kr_array(&r, 0, NULL), 0);
    end(&r);

    /* Left: Empty, with no members, still listed. */
    c = leave(0, "g", a);
    simple(0, c, 0);
    c = describe_group_req(4, "g");
    r = answer(2, c);
    ck_assert_int_eq(described(&r, 0, "g", "Empty", "consumer", ""), 0);
    ck_assert_int_eq(rn_kr_i32(&r), 1 << 3 | 1 << 6 | 1 << 8);
    end(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("broker");
    TCase *tc = tcase_create("api");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, api_versions);
    tcase_add_test(tc, unsupported_api);
    suite_add_tcase(s, tc);

    tc = tcase_create("topics");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, metadata_auto_create);
    tcase_add_test(tc, create_topics);
    tcase_add_test(tc, delete_topics);
    suite_add_tcase(s, tc);

    tc = tcase_create("data");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, produce_then_fetch);
    tcase_add_test(tc, large_requests_among_others);
    tcase_add_test(tc, fetch_out_of_range);
    tcase_add_test(tc, offsets_earliest_latest_by_time);
    tcase_add_test(tc, corrupt_batch);
    tcase_add_test(tc, acks_zero);
    suite_add_tcase(s, tc);

    tc = tcase_create("waiting");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, long_poll_fetch);
    tcase_add_test(tc, fetch_min_bytes_counts_the_log);
    tcase_add_test(tc, fetch_zstd_needs_v10);
    tcase_add_test(tc, flush_always);
    tcase_add_test(tc, fsync_fails);
    suite_add_tcase(s, tc);

    tc = tcase_create("groups");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, find_coordinator);
    tcase_add_test(tc, group_handshake);
    tcase_add_test(tc, group_rebalance);
    tcase_add_test(tc, join_errors);
    tcase_add_test(tc, offsets_persist);
    suite_add_tcase(s, tc);

    tc = tcase_create("framing");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, request_in_pieces);
    tcase_add_test(tc, request_too_small);
    tcase_add_test(tc, request_too_big);
    tcase_add_test(tc, header_truncated);
    tcase_add_test(tc, body_malformed);
    tcase_add_test(tc, produce_malformed);
    suite_add_tcase(s, tc);

    tc = tcase_create("life");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, new_fails);
    tcase_add_test(tc, start_fails);
    tcase_add_test(tc, advertised);
    tcase_add_test(tc, storage_error);
    tcase_add_test(tc, stop_answers_waiters);
    suite_add_tcase(s, tc);

    tc = tcase_create("admin");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, metadata_v8);
    tcase_add_test(tc, describe_configs_from_options);
    tcase_add_test(tc, alter_configs_refused);
    tcase_add_test(tc, list_and_describe_groups);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
