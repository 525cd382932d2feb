/* kconsume.c -- a topic as events, on librdkafka's consumer. */
#include "kafka/kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

struct rn_kcons {
    rn_kcons_opts o;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;        /* the consumer's queue, which everything is forwarded to */
    int wake[2];                /* a pipe librdkafka writes to when q gets something */
    int32_t nparts;
    char *assigned, *eof;       /* per partition */
    char *fresh;                /* assigned without a committed offset */
    int64_t *next, *stored;     /* offset to commit (after what was returned,
                                   or a partition's end) / stored; -1 none */
    /* For the metrics: events and value bytes returned and not yet written
     * out (rn_kcons_written), and written out. */
    uint64_t *ret_n, *ret_b, *out_n, *out_b;
    size_t topic_len;
    rd_kafka_message_t *cur;    /* the message the last event points into */
    char num[4][24];            /* partition, offset, ts as text */
    int64_t ts_cached;          /* the ts num[2] holds, if ts_len */
    size_t ts_len;
    char err[RN_ERRLEN];        /* a failure inside a librdkafka callback */

    /* Timestamp order across partitions (order_wait_ms > 0, several
     * partitions), per partition: */
    int ordered;
    rd_kafka_queue_t **pq;      /* its own queue, taken off the consumer's; NULL unassigned */
    rd_kafka_message_t **head;  /* the record held out of it, or NULL */
    int64_t *head_ts;           /* that record's timestamp (ms) */
    int64_t *fetched;           /* offset after the last record or end taken from pq; -1 none */
    int64_t *hold_since;        /* when it began to hold the others back (mono ns); 0 not */
    int64_t deadline;           /* the earliest hold's end, or -1 */

    /* Records (and their values' bytes) taken from the consumer's queue,
     * or partition p's own (ordered), since it was last seen empty; and the
     * fetcher's bounds on a queue (see refill). */
    struct taken { uint64_t n, bytes; } taken, *ptaken;
    uint64_t queue_records, queue_bytes;

    /* A topic that does not exist yet. */
    int waiting;
    int64_t wait_start, next_look;   /* mono ns */

    /* What went wrong, said on on_warn: per partition (and one more slot
     * for the rest) when it was last said and how often since. */
    int64_t *warned_at;
    uint64_t *unsaid;
    int down;                   /* every broker is out of reach: said, not yet back */
    char lost[RN_ERRLEN];       /* a broker that went away, to say unless all did */
    int64_t lost_at;            /* when (mono ns); 0: none */
    char fatal[RN_ERRLEN];      /* librdkafka's fatal error, or "" */
};

#define LOOK_EVERY_NS 500000000LL   /* how often to look for a topic that does not exist yet */
#define WARN_EVERY_NS 10000000000LL /* the same trouble is said again at most this often */

/* What librdkafka may hold, in bytes (consume.1 states them): a fetch, a
 * partition's share of one, a response, and a partition's queue (in KiB,
 * and in records: librdkafka keeps an op of some 300 bytes a record, so
 * for small records the count is what bounds the memory). */
#define FETCH_MAX "8388608"
#define PART_FETCH_MAX "1048576"
#define RECEIVE_MAX "8389120"       /* fetch.max.bytes + 512, as librdkafka requires */
#define QUEUED_KB "8192"
#define QUEUED_RECORDS "10000"

int rn_kcons_parse_offset(const char *s, int *kind, int64_t *val, char *err)
{
    uint64_t v;
    *val = 0;
    if (strcmp(s, "beginning") == 0) {
        *kind = RN_OFF_BEGINNING;
        return 0;
    }
    if (strcmp(s, "end") == 0) {
        *kind = RN_OFF_END;
        return 0;
    }
    *kind = s[0] == '-' ? RN_OFF_TAIL : s[0] == '@' ? RN_OFF_TIME : RN_OFF_ABS;
    if (rn_parse_uint(s + (*kind != RN_OFF_ABS), INT64_MAX, &v, NULL) < 0)
        return rn_seterr(err, "offset '%s' is none of beginning, end, N, -N, @EPOCH_MS", s);
    *val = (int64_t)v;
    return 0;
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char e[256];
    rd_kafka_conf_set(conf, k, v, e, sizeof e);   /* our own keys: cannot fail */
}

/* A numeric property as it is set now (ours, or the user's over it). */
static uint64_t conf_uint(const rd_kafka_conf_t *conf, const char *k)
{
    char v[32];
    size_t n = sizeof v;
    return rd_kafka_conf_get(conf, k, v, &n) == RD_KAFKA_CONF_OK ? strtoull(v, NULL, 10) : 0;
}

/* Say what went wrong with partition p (-1: not one partition's), at most
 * once every WARN_EVERY_NS, with how often it happened since. */
static void warn_limited(rn_kcons *c, int32_t p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn_limited(rn_kcons *c, int32_t p, const char *fmt, ...)
{
    char msg[RN_ERRLEN], more[64] = "";
    size_t slot = p >= 0 && p < c->nparts ? (size_t)p : (size_t)c->nparts;
    int64_t now = rn_mono_ns();
    if (c->warned_at) {
        if (c->warned_at[slot] && now - c->warned_at[slot] < WARN_EVERY_NS) {
            c->unsaid[slot]++;
            return;
        }
        if (c->unsaid[slot])
            snprintf(more, sizeof more, " (%llu more times since it was last said)",
                     (unsigned long long)c->unsaid[slot]);
        c->warned_at[slot] = now;
        c->unsaid[slot] = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rn_warn_to(c->o.on_warn, c->o.data, "%s%s", msg, more);
}

/* librdkafka's errors that are not about one partition. Served on the
 * caller's thread, inside rd_kafka_consumer_poll. */
static void on_error(rd_kafka_t *rk, int e, const char *reason, void *opaque)
{
    rn_kcons *c = opaque;
    (void)rk;
    if (e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (!c->down)
            rn_warn_to(c->o.on_warn, c->o.data, "cannot reach the brokers (%s): %s; waiting for them",
                       c->o.brokers, reason);
        c->down = 1;
        c->lost_at = 0;
    } else if (e == RD_KAFKA_RESP_ERR__TRANSPORT || e == RD_KAFKA_RESP_ERR__RESOLVE) {
        /* Said a little later (say_lost) unless every broker went: then
         * "cannot reach the brokers" says it all. */
        if (!c->down && !c->lost_at) {
            snprintf(c->lost, sizeof c->lost, "%s", reason);
            c->lost_at = rn_mono_ns();
        }
    } else if (e == RD_KAFKA_RESP_ERR__FATAL) {
        char why[RN_ERRLEN];
        rd_kafka_fatal_error(c->rk, why, sizeof why);
        snprintf(c->fatal, sizeof c->fatal, "%s", why);
    } else if (!c->down) {
        warn_limited(c, -1, "%s", reason);   /* one broker of several, or what else it has */
    }
}

#define LOST_SAY_NS 2000000000LL

/* One broker of several out of reach for LOST_SAY_NS: say so. */
static void say_lost(rn_kcons *c)
{
    if (c->lost_at && rn_mono_ns() - c->lost_at >= LOST_SAY_NS) {
        c->lost_at = 0;
        if (!c->down)
            warn_limited(c, -1, "%s", c->lost);
    }
}

/* While the brokers are out of reach, a broker that is up again ends it. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    rn_kcons *c = opaque;
    (void)rk;
    (void)len;
    if (c->down && strstr(json, "\"state\":\"UP\"")) {
        c->down = 0;
        rn_warn_to(c->o.on_warn, c->o.data, "reached the brokers (%s) again", c->o.brokers);
    }
    return 0;   /* librdkafka frees json */
}

/* Where a partition with no committed offset starts. Everything but an
 * absolute offset is looked up here, with one ListOffsets per leader: a
 * time as itself, the start and the end as timestamps -2 and -1. librdkafka
 * looks a logical offset up itself once the partition has its leader; one
 * assigned before that (the usual race at the start) waited half a second
 * for its retry. Where the lookup fails (or finds nothing at or after a
 * time) the logical offset stays: the start, the end, N back from the end,
 * and for a time the end. */
static void initial_offsets(rn_kcons *c, rd_kafka_topic_partition_list_t *l)
{
    int kind = c->o.offset_kind;
    int64_t val = c->o.offset_val;
    int64_t logical = kind == RN_OFF_BEGINNING ? RD_KAFKA_OFFSET_BEGINNING
                    : kind == RN_OFF_TAIL      ? RD_KAFKA_OFFSET_TAIL(val)
                    : kind == RN_OFF_ABS       ? val
                                               : RD_KAFKA_OFFSET_END;
    for (int i = 0; i < l->cnt; i++)
        l->elems[i].offset = logical;
    if (kind == RN_OFF_ABS || !l->cnt)
        return;
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_copy(l);
    for (int i = 0; i < q->cnt; i++)
        q->elems[i].offset = kind == RN_OFF_TIME ? val : kind == RN_OFF_BEGINNING ? -2 : -1;
    if (rd_kafka_offsets_for_times(c->rk, q, (int)c->o.timeout_ms) == 0) {
        for (int i = 0; i < q->cnt; i++) {
            int64_t off = q->elems[i].offset;
            if (q->elems[i].err || off < 0)
                continue;
            if (kind == RN_OFF_TAIL)   /* as RD_KAFKA_OFFSET_TAIL: not below 0 */
                off = off > val ? off - val : 0;
            l->elems[i].offset = off;
        }
    }
    rd_kafka_topic_partition_list_destroy(q);
}

/* Give each partition of l a queue of its own, before it is assigned: a
 * queue forwarded by rd_kafka_queue_forward (to NULL here) is never
 * forwarded to the consumer's queue when fetching starts. It wakes the same
 * pipe. */
static void open_queues(rn_kcons *c, const rd_kafka_topic_partition_list_t *l)
{
    for (int i = 0; c->ordered && i < l->cnt; i++) {
        int32_t p = l->elems[i].partition;
        if (p < 0 || p >= c->nparts || c->pq[p])
            continue;
        if (!(c->pq[p] = rd_kafka_queue_get_partition(c->rk, c->o.topic, p)))
            continue;   /* then its records come through the consumer's queue */
        rd_kafka_queue_forward(c->pq[p], NULL);
        rd_kafka_queue_io_event_enable(c->pq[p], c->wake[1], "!", 1);
        c->fetched[p] = -1;
        c->hold_since[p] = 0;
    }
}

/* A partition goes: its held record is dropped, not handed on, so its
 * offset is never stored; the next owner reads it. */
static void close_queue(rn_kcons *c, int32_t p)
{
    if (c->head && c->head[p]) {
        rd_kafka_message_destroy(c->head[p]);
        c->head[p] = NULL;
    }
    if (c->pq && c->pq[p]) {
        rd_kafka_queue_io_event_enable(c->pq[p], -1, NULL, 0);
        rd_kafka_queue_destroy(c->pq[p]);
        c->pq[p] = NULL;
    }
}

/* The partitions of l go (l NULL: all of them). */
static void close_queues(rn_kcons *c, const rd_kafka_topic_partition_list_t *l)
{
    if (!l) {
        for (int32_t p = 0; p < c->nparts; p++)
            close_queue(c, p);
        return;
    }
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].partition >= 0 && l->elems[i].partition < c->nparts)
            close_queue(c, l->elems[i].partition);
}

static void mark(rn_kcons *c, const rd_kafka_topic_partition_list_t *l, int on)
{
    for (int i = 0; l && i < l->cnt; i++) {
        int32_t p = l->elems[i].partition;
        if (p >= 0 && p < c->nparts) {
            c->assigned[p] = (char)on;
            c->eof[p] = 0;
            c->fresh[p] = 0;
            c->next[p] = c->stored[p] = -1;
        }
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    rn_kcons *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* Partitions the group has committed for resume there; the others
         * start where --offset says. */
        rd_kafka_topic_partition_list_t *fresh = rd_kafka_topic_partition_list_new(parts->cnt);
        rd_kafka_committed(rk, parts, (int)c->o.timeout_ms);
        for (int i = 0; i < parts->cnt; i++)
            if (parts->elems[i].offset < 0)
                rd_kafka_topic_partition_list_add(fresh, parts->elems[i].topic,
                                                  parts->elems[i].partition);
        initial_offsets(c, fresh);
        for (int i = 0; i < fresh->cnt; i++)
            rd_kafka_topic_partition_list_find(parts, fresh->elems[i].topic,
                                               fresh->elems[i].partition)->offset =
                fresh->elems[i].offset;
        mark(c, parts, 1);
        for (int i = 0; i < fresh->cnt; i++)
            if (fresh->elems[i].partition >= 0 && fresh->elems[i].partition < c->nparts)
                c->fresh[fresh->elems[i].partition] = 1;
        rd_kafka_topic_partition_list_destroy(fresh);
        open_queues(c, parts);
        rd_kafka_assign(rk, parts);
    } else {
        /* What is known to be written out is committed before another member
         * takes over; what is not may be read again there (at-least-once). */
        close_queues(c, parts);
        rd_kafka_commit(rk, NULL, 0);
        mark(c, parts, 0);
        rd_kafka_assign(rk, NULL);
    }
}

/* librdkafka stops writing to the pipe; before the consumer is closed,
 * which forwards the queue elsewhere. */
static void stop_wake(rn_kcons *c)
{
    close_queues(c, NULL);
    if (c->q) {
        rd_kafka_queue_io_event_enable(c->q, -1, NULL, 0);
        rd_kafka_queue_destroy(c->q);
        c->q = NULL;
    }
}

/* Once librdkafka is gone. */
static void close_wake(rn_kcons *c)
{
    for (int i = 0; i < 2; i++)
        if (c->wake[i] >= 0)
            close(c->wake[i]);
}

/* Read what librdkafka wrote to the pipe. */
static void drain_wake(rn_kcons *c)
{
    char buf[64];
    while (read(c->wake[0], buf, sizeof buf) > 0)
        ;
}

/* What is left once the client is destroyed. */
static void free_consumer(rn_kcons *c)
{
    close_wake(c);
    free(c->assigned);
    free(c->eof);
    free(c->fresh);
    free(c->next);
    free(c->stored);
    free(c->ret_n);
    free(c->ret_b);
    free(c->out_n);
    free(c->out_b);
    free(c->pq);
    free(c->head);
    free(c->head_ts);
    free(c->fetched);
    free(c->hold_since);
    free(c->ptaken);
    free(c->warned_at);
    free(c->unsaid);
    free(c);
}

/* Look for the topic in the metadata of every topic (asking for one topic
 * by name could create it on a broker that creates topics on demand, and a
 * topic handle would make librdkafka keep a legacy consumer object for it).
 * 1 and c->nparts: it is there; 0: not (yet); RN_ERR: no answer. */
static int look_for_topic(rn_kcons *c, int timeout_ms, char *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t r = rd_kafka_metadata(c->rk, 1, NULL, &md, timeout_ms);
    if (r != RD_KAFKA_RESP_ERR_NO_ERROR)
        return rn_seterr(err, "cannot reach %s within %d ms: %s", c->o.brokers, timeout_ms,
                         rd_kafka_err2str(r));
    int found = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[i];
        if (strcmp(mt->topic, c->o.topic) == 0 && !mt->err && mt->partition_cnt > 0) {
            c->nparts = mt->partition_cnt;
            found = 1;
        }
    }
    rd_kafka_metadata_destroy(md);
    return found;
}

/* The topic is there: check the partition, subscribe or assign. */
static int start(rn_kcons *c, char *err)
{
    const rn_kcons_opts *o = &c->o;
    size_t n = (size_t)c->nparts;
    rd_kafka_resp_err_t r;

    if (o->partition >= c->nparts)
        return rn_seterr(err, "topic '%s' has no partition %d (it has %d)", o->topic,
                         (int)o->partition, (int)c->nparts);
    c->ordered = o->order_wait_ms > 0 && o->partition < 0 && c->nparts > 1;
    c->deadline = -1;
    c->assigned = calloc(n, 1);
    c->eof = calloc(n, 1);
    c->fresh = calloc(n, 1);
    c->next = calloc(n, sizeof *c->next);
    c->stored = calloc(n, sizeof *c->stored);
    c->warned_at = calloc(n + 1, sizeof *c->warned_at);
    c->unsaid = calloc(n + 1, sizeof *c->unsaid);
    c->ret_n = calloc(n, sizeof *c->ret_n);
    c->ret_b = calloc(n, sizeof *c->ret_b);
    c->out_n = calloc(n, sizeof *c->out_n);
    c->out_b = calloc(n, sizeof *c->out_b);
    if (!c->assigned || !c->eof || !c->fresh || !c->next || !c->stored || !c->warned_at
        || !c->unsaid || !c->ret_n || !c->ret_b || !c->out_n || !c->out_b)
        return rn_seterr(err, "out of memory");
    if (c->ordered) {
        c->pq = calloc(n, sizeof *c->pq);
        c->head = calloc(n, sizeof *c->head);
        c->head_ts = calloc(n, sizeof *c->head_ts);
        c->fetched = calloc(n, sizeof *c->fetched);
        c->hold_since = calloc(n, sizeof *c->hold_since);
        c->ptaken = calloc(n, sizeof *c->ptaken);
        if (!c->pq || !c->head || !c->head_ts || !c->fetched || !c->hold_since || !c->ptaken)
            return rn_seterr(err, "out of memory");
    }
    if (o->group) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, o->topic, RD_KAFKA_PARTITION_UA);
        r = rd_kafka_subscribe(c->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
    } else {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(c->nparts);
        for (int32_t p = 0; p < c->nparts; p++)
            if (o->partition < 0 || o->partition == p)
                rd_kafka_topic_partition_list_add(l, o->topic, p);
        initial_offsets(c, l);
        mark(c, l, 1);
        open_queues(c, l);
        r = rd_kafka_assign(c->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
    }
    if (r)
        return rn_seterr(err, "cannot read '%s': %s", o->topic, rd_kafka_err2str(r));
    return 0;
}

rn_kcons *rn_kcons_new(const rn_kcons_opts *o, char *err)
{
    char e[512], ms[32];
    rn_kcons *c = calloc(1, sizeof *c);
    if (!c) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    c->o = *o;
    c->topic_len = strlen(o->topic);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, e, sizeof e) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        free(c);
        rn_seterr(err, "%s", e);
        return NULL;
    }
    /* librdkafka logs to stderr itself; lib/ does not print, and the caller
     * gets one clear message instead. */
    rd_kafka_conf_set_log_cb(conf, NULL);
    rd_kafka_conf_set_error_cb(conf, on_error);
    /* Its statistics say when a broker is reachable again. */
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    set(conf, "statistics.interval.ms", "1000");
    set(conf, "log.connection.close", "false");   /* an idle connection closed is no news */
    /* Bounds on what librdkafka holds: per fetch, per partition fetched and
     * per partition queued. A compressed batch is inflated whole all the
     * same (consume.1 says so). A queue of 10,000 records, not librdkafka's
     * 100,000, is about a fetch of 100-byte records ahead: the fetcher is
     * woken when it runs empty (refill), and a deeper queue only cost
     * memory and faults. 1M x 100 B over 3 partitions in timestamp order:
     * 93 -> 30 MB peak RSS, CPU 0.95 -> 0.66 s. */
    set(conf, "fetch.max.bytes", FETCH_MAX);
    set(conf, "max.partition.fetch.bytes", PART_FETCH_MAX);
    set(conf, "receive.message.max.bytes", RECEIVE_MAX);
    set(conf, "queued.max.messages.kbytes", QUEUED_KB);
    set(conf, "queued.min.messages", QUEUED_RECORDS);
    set(conf, "enable.partition.eof", "true");   /* ends are positions to commit */
    /* How long a fetch at a partition's end waits on the broker: with -e
     * the last fetch is one, and so is every fetch that asks for a partition
     * at its end while another one is still being read. */
    set(conf, "fetch.wait.max.ms", o->exit_at_end ? "10" : "100");
    set(conf, "auto.offset.reset", o->offset_kind == RN_OFF_END ? "latest" : "earliest");
    snprintf(ms, sizeof ms, "%lld", (long long)o->timeout_ms);
    set(conf, "socket.connection.setup.timeout.ms", ms);
    if (o->group) {
        if (rd_kafka_conf_set(conf, "group.id", o->group, e, sizeof e) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            free(c);
            rn_seterr(err, "%s", e);
            return NULL;
        }
        set(conf, "enable.auto.offset.store", "false");
        set(conf, "enable.auto.commit", "true");
        set(conf, "auto.commit.interval.ms", "1000");
        set(conf, "session.timeout.ms", "10000");
        set(conf, "heartbeat.interval.ms", "1000");
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    } else {
        set(conf, "enable.auto.commit", "false");
        set(conf, "group.id", "runnel-consume");   /* never joined: assign() only */
    }
    /* The user's last, so that they override our defaults. */
    if (rn_kprops_apply(o->props, RN_KPROPS_CONSUMER, conf, err) < 0) {
        rd_kafka_conf_destroy(conf);
        free(c);
        return NULL;
    }
    c->queue_records = conf_uint(conf, "queued.min.messages");
    c->queue_bytes = conf_uint(conf, "queued.max.messages.kbytes") * 1024;
    rd_kafka_conf_set_opaque(conf, c);
    c->wake[0] = c->wake[1] = -1;
    if (!(c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e))) {
        free(c);
        rn_seterr(err, "%s", e);
        return NULL;
    }
    rd_kafka_poll_set_consumer(c->rk);
    /* librdkafka writes a byte when the queue gets an element while empty
     * (once until it is polled again), so the caller can sleep in ppoll. */
    if (pipe2(c->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        rn_seterr(err, "pipe: %s", strerror(errno));
        goto fail;
    }
    c->q = rd_kafka_queue_get_consumer(c->rk);
    rd_kafka_queue_io_event_enable(c->q, c->wake[1], "!", 1);

    int found = look_for_topic(c, (int)o->timeout_ms, err);
    if (found < 0)
        goto fail;
    if (!found) {
        /* Not yet: Kafka's console consumer waits, and so does a pipeline
         * started before anything has produced. */
        c->waiting = 1;
        c->wait_start = rn_mono_ns();
        c->next_look = c->wait_start + LOOK_EVERY_NS;
        rn_warn_to(o->on_warn, o->data, "waiting for topic '%s' on %s to exist", o->topic,
                   o->brokers);
        return c;
    }
    if (start(c, err) < 0)
        goto fail;
    return c;
fail:
    stop_wake(c);
    rd_kafka_destroy(c->rk);
    free_consumer(c);
    return NULL;
}

/* While the topic does not exist: look again when it is time. 1: it is
 * there now and read; 0: not yet; RN_ERR. */
static int wait_for_topic(rn_kcons *c, char *err)
{
    int64_t now = rn_mono_ns();
    if (now < c->next_look)
        return 0;
    /* A short bound: the caller's loop must stay responsive to signals. */
    int ms = c->o.timeout_ms < 1000 ? (int)c->o.timeout_ms : 1000;
    int found = look_for_topic(c, ms, NULL);   /* no answer: look again later */
    if (found > 0) {
        c->waiting = 0;
        /* "end" is where the topic stood when consume started: it did not
         * exist, so all it holds came later (the first records produced,
         * which created it, included). */
        if (c->o.offset_kind == RN_OFF_END)
            c->o.offset_kind = RN_OFF_BEGINNING;
        return start(c, err) < 0 ? RN_ERR : 1;
    }
    now = rn_mono_ns();
    if (c->o.exit_at_end && now - c->wait_start >= c->o.timeout_ms * 1000000)
        return rn_seterr(err, "unknown topic '%s' on %s: it did not appear within %lld ms",
                         c->o.topic, c->o.brokers, (long long)c->o.timeout_ms);
    c->next_look = now + LOOK_EVERY_NS;
    return 0;
}

static int at_end(const rn_kcons *c)
{
    int any = 0;
    for (int32_t p = 0; p < c->nparts; p++) {
        if (!c->assigned[p])
            continue;
        if (!c->eof[p])
            return 0;
        any = 1;
    }
    return any;
}

/* v in decimal into out (24 bytes); the length. Three of them a record:
 * snprintf took a third of json output's time. */
static size_t num(char *out, int64_t v)
{
    if (v >= 0)
        return rn_u64_dec((uint64_t)v, out);
    out[0] = '-';
    return 1 + rn_u64_dec(0 - (uint64_t)v, out + 1);
}

int rn_kcons_fd(const rn_kcons *c) { return c->wake[0]; }

/* ---- waking the fetcher ---------------------------------------------------
 *
 * librdkafka (2.0) stops fetching a partition once its queue holds
 * queued.min.messages records or queued.max.messages.kbytes of values, and
 * looks at the queue again only when its broker thread wakes: for a reply,
 * a request, or its tick once a second. Taking records out does not wake
 * it. So a reader that empties a full queue in less than a second (any
 * reader of small records) then waits for the tick: 1M records of 100 B
 * came in 5-7 s with kcat -J, 2.3 s once its queue held them all.
 * (librdkafka 2.3 has fetch.queue.backoff.ms for this.) Here a request
 * wakes it: when a queue runs empty after as many records (or bytes) as
 * stop the fetcher were taken from it since it was last empty, so that it
 * may have been full, a ListOffsets goes to the leaders of its partitions
 * that are not at their end, without waiting for the answer, and their
 * broker threads look at their queues again at once. A reader that keeps
 * up with the fetches empties the queue before that and sends nothing. */

/* Record m was taken from a queue. */
static void took(struct taken *t, const rd_kafka_message_t *m)
{
    t->n++;
    t->bytes += m->len;
}

/* The queue of partition p (-1: the consumer's queue, all of them) gave
 * nothing; t counts what it gave since it was last empty. */
static void refill(rn_kcons *c, int32_t p, struct taken *t)
{
    int full = t->n >= c->queue_records || t->bytes >= c->queue_bytes;
    t->n = t->bytes = 0;
    if (!full)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(p < 0 ? 4 : 1);
    for (int32_t i = p < 0 ? 0 : p; i < (p < 0 ? c->nparts : p + 1); i++)
        if (c->assigned[i] && !c->eof[i])
            rd_kafka_topic_partition_list_add(l, c->o.topic, i)->offset = RD_KAFKA_OFFSET_END;
    /* Timeout 0: the request goes out and the call returns; the answer
     * comes to a queue that is gone, which librdkafka allows for. */
    if (l->cnt)
        rd_kafka_offsets_for_times(c->rk, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
}

/* The next message (a record, an end, an error) without waiting, or NULL
 * when the queue is empty. The pipe is emptied before librdkafka is asked
 * a last time, so that whatever comes after that writes to it again. */
static rd_kafka_message_t *poll_now(rn_kcons *c)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
    if (!m) {
        drain_wake(c);
        m = rd_kafka_consumer_poll(c->rk, 0);
    }
    if (!m)
        refill(c, -1, &c->taken);
    else if (!m->err)
        took(&c->taken, m);
    return m;
}

/* Errors that pass by themselves: a broker or a leader away for a while,
 * which librdkafka retries (and on_error says when every broker is). */
static int transient(rd_kafka_resp_err_t e)
{
    switch ((int)e) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
        return 1;
    default:
        return 0;
    }
}

/* A message that is no record: a partition's end, or an error. Destroys m.
 * 0, or RN_ERR for an error that librdkafka does not retry, and with
 * exit_at_end for one that is not known to pass (a corrupt batch, a codec it
 * lacks: librdkafka fetches the same offset again and again, so the
 * partition would never reach its end). Without exit_at_end that is said
 * (at most every WARN_EVERY_NS) and the other partitions go on. */
static int not_a_record(rn_kcons *c, rd_kafka_message_t *m, char *err)
{
    rd_kafka_resp_err_t e = m->err;
    int64_t at = m->offset;
    int32_t p = m->partition;
    char why[RN_ERRLEN];
    if (e != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        snprintf(why, sizeof why, "%s", rd_kafka_message_errstr(m));
    rd_kafka_message_destroy(m);
    if (e == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (p >= 0 && p < c->nparts) {
            c->eof[p] = 1;
            /* Everything before the end has been returned: the end is
             * a position to commit, also for a partition that gave
             * nothing (else the next run would start at --offset). */
            if (at > c->next[p])
                c->next[p] = at;
            if (c->ordered && at > c->fetched[p])
                c->fetched[p] = at;
        }
    } else if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
               || e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
               || e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION || e == RD_KAFKA_RESP_ERR__FATAL) {
        return rn_seterr(err, "%s: %s", c->o.topic, rd_kafka_err2str(e));
    } else if (!transient(e)) {
        if (c->o.exit_at_end)
            return rn_seterr(err, "%s: partition %d at offset %lld cannot be read: %s", c->o.topic,
                             (int)p, (long long)at, why);
        warn_limited(c, p, "%s: partition %d at offset %lld cannot be read: %s; waiting for it",
                     c->o.topic, (int)p, (long long)at, why);
    }
    /* else transient (a broker went away): librdkafka retries */
    return 0;
}

/* Hand record m on as *ev; it stays ours until the next call. */
static int hand_on(rn_kcons *c, rd_kafka_message_t *m, rn_event *ev)
{
    int32_t p = m->partition;
    if (p >= 0 && p < c->nparts) {
        c->eof[p] = 0;
        c->next[p] = m->offset + 1;
        c->ret_n[p]++;
        c->ret_b[p] += m->len;
    }
    c->cur = m;
    if (c->o.body_only) {
        rn_event_clear(ev);
        ev->body.p = m->payload ? m->payload : "";
        ev->body.n = m->len;
        return 1;
    }
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    rn_event_clear(ev);
    ev->ts = ts >= 0 ? ts * 1000000 : rn_now_ns();
    ev->body.p = m->payload ? m->payload : "";
    ev->body.n = m->len;
    rn_event_add_header(ev, "topic", 5, c->o.topic, c->topic_len);
    rn_event_add_header(ev, "partition", 9, c->num[0], num(c->num[0], p));
    rn_event_add_header(ev, "offset", 6, c->num[1], num(c->num[1], m->offset));
    if (m->key)
        rn_event_add_header(ev, "key", 3, m->key, m->key_len);
    if (ev->ts != c->ts_cached || !c->ts_len) {   /* a batch's records share one */
        c->ts_cached = ev->ts;
        c->ts_len = num(c->num[2], ev->ts);
    }
    rn_event_add_header(ev, "ts", 2, c->num[2], c->ts_len);
    rd_kafka_headers_t *hs;
    if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(hs, i, &name, &val, &size) == 0; i++)
            if (rn_event_add_header(ev, name, strlen(name), val ? val : "", val ? size : 0) < 0)
                break;   /* more than RN_MAX_HEADERS: the rest are left out */
    }
    return 1;
}

/* As fetched: the consumer's queue, which every partition is forwarded to. */
static int next_as_fetched(rn_kcons *c, rn_event *ev, char *err)
{
    rd_kafka_message_t *m;
    for (;;) {
        if (c->o.exit_at_end && at_end(c))
            return RN_KCONS_END;
        if (!(m = poll_now(c)))
            return 0;
        if (!m->err)
            return hand_on(c, m, ev);
        if (not_a_record(c, m, err) < 0)
            return RN_ERR;
    }
}

/* Take what is ready without waiting: rebalances and errors from the
 * consumer's queue, and a record to hold from each partition that has none
 * held. Note that this and pick are O(partitions) per record: fine for the
 * tens of partitions a topic has, not for thousands. 1 with *m: a record came through the consumer's queue (a partition
 * that has no queue of its own: added to the topic since the start), to be
 * handed on as it is; 0; RN_ERR. */
static int fill(rn_kcons *c, rd_kafka_message_t **m, char *err)
{
    /* The consumer's queue is mostly empty here: its length is a lock,
     * where an empty poll cost a sixth of a record's time. Taking from the
     * partitions' queues counts as polling for max.poll.interval.ms. */
    *m = NULL;
    while (rd_kafka_queue_length(c->q) > 0 && (*m = rd_kafka_consumer_poll(c->rk, 0))) {
        if (!(*m)->err) {
            took(&c->taken, *m);
            return 1;
        }
        if (not_a_record(c, *m, err) < 0)
            return RN_ERR;
    }
    refill(c, -1, &c->taken);
    for (int32_t p = 0; p < c->nparts; p++) {
        rd_kafka_message_t *r;
        while (c->pq[p] && !c->head[p]) {
            if (!(r = rd_kafka_consume_queue(c->pq[p], 0))) {
                refill(c, p, &c->ptaken[p]);
                break;
            }
            if (r->err) {
                if (not_a_record(c, r, err) < 0)
                    return RN_ERR;
                continue;
            }
            took(&c->ptaken[p], r);
            c->head[p] = r;
            c->head_ts[p] = rd_kafka_message_timestamp(r, NULL);
            c->fetched[p] = r->offset + 1;
            c->eof[p] = 0;
            c->hold_since[p] = 0;
        }
    }
    return 0;
}

/* Partition p has nothing held: may it still deliver something older than
 * what the others hold? Yes while librdkafka's cached high watermark is
 * beyond what was taken from it, or while nothing is known of it. */
static int may_hold(const rn_kcons *c, int32_t p)
{
    int64_t lo, hi;
    if (c->eof[p])
        return 0;
    if (rd_kafka_get_watermark_offsets(c->rk, c->o.topic, p, &lo, &hi)
        != RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0 || c->fetched[p] < 0)
        return 1;
    return c->fetched[p] < hi;
}

/* The partition whose held record goes next, or -1 (none held, or one that
 * may hold an older record is being waited for: c->deadline says until). */
static int32_t pick(rn_kcons *c)
{
    int32_t best = -1;
    int64_t now = 0, until = -1;
    c->deadline = -1;
    for (int32_t p = 0; p < c->nparts; p++)
        if (c->head[p] && (best < 0 || c->head_ts[p] < c->head_ts[best]))
            best = p;
    if (best < 0)
        return -1;
    for (int32_t p = 0; p < c->nparts; p++) {
        if (!c->pq[p] || c->head[p])
            continue;
        if (!may_hold(c, p)) {
            c->hold_since[p] = 0;
            continue;
        }
        if (!now)
            now = rn_mono_ns();
        if (!c->hold_since[p])
            c->hold_since[p] = now;
        /* Until its first fetch has answered (records or its end), a
         * partition may hold anything: it is waited for up to --timeout,
         * not --order-wait, so a slow start is not disorder. */
        int64_t wait_ms = c->fetched[p] < 0 ? c->o.timeout_ms : c->o.order_wait_ms;
        int64_t end = c->hold_since[p] + wait_ms * 1000000;
        if (end > now && (until < 0 || end < until))
            until = end;   /* else its time is up: it holds nothing back */
    }
    if (until >= 0) {
        c->deadline = until;
        return -1;
    }
    return best;
}

/* Oldest first across the partitions' own queues. As in poll_now, the
 * pipe is emptied before the queues are looked at a last time. */
static int next_in_order(rn_kcons *c, rn_event *ev, char *err)
{
    rd_kafka_message_t *m;
    for (int drained = 0;; drained = 1) {
        int r = fill(c, &m, err);
        if (r < 0)
            return RN_ERR;
        if (r == 1)
            return hand_on(c, m, ev);
        if (c->o.exit_at_end && at_end(c))
            return RN_KCONS_END;
        int32_t p = pick(c);
        if (p >= 0) {
            m = c->head[p];
            c->head[p] = NULL;
            return hand_on(c, m, ev);
        }
        if (drained)
            return 0;
        drain_wake(c);
    }
}

int rn_kcons_next(rn_kcons *c, rn_event *ev, char *err)
{
    if (c->cur) {
        rd_kafka_message_destroy(c->cur);
        c->cur = NULL;
    }
    if (c->fatal[0])
        return rn_seterr(err, "%s: %s", c->o.topic, c->fatal);
    say_lost(c);
    if (c->waiting) {
        int r = wait_for_topic(c, err);
        if (r <= 0)
            return r;
    }
    return c->ordered ? next_in_order(c, ev, err) : next_as_fetched(c, ev, err);
}

int64_t rn_kcons_deadline(const rn_kcons *c)
{
    return c->waiting ? c->next_look : c->deadline;
}

void rn_kcons_written(rn_kcons *c)
{
    for (int32_t p = 0; c->ret_n && p < c->nparts; p++)
        if (c->ret_n[p]) {
            c->out_n[p] += c->ret_n[p];
            c->out_b[p] += c->ret_b[p];
            c->ret_n[p] = c->ret_b[p] = 0;
        }
    if (!c->o.group)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (int32_t p = 0; p < c->nparts; p++)
        if (c->assigned[p] && c->next[p] >= 0 && c->next[p] > c->stored[p]) {
            rd_kafka_topic_partition_list_add(l, c->o.topic, p)->offset = c->next[p];
            c->stored[p] = c->next[p];
        }
    if (l->cnt)
        rd_kafka_offsets_store(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
}

/* One family with a sample per partition that is assigned, or has had
 * events written out; what: 0 events out, 1 bytes out, 2 offset, 3 high
 * watermark, 4 lag (the last three only where known). */
static void part_family(rn_kcons *c, rn_prom *p, const char *prefix, const char *name,
                        int type, const char *help, int what)
{
    char num[16];
    rn_prom_family(p, prefix, name, type, help);
    for (int32_t i = 0; c->ret_n && i < c->nparts; i++) {
        int64_t lo = -1, hi = -1, v;
        if (!c->assigned[i] && !c->out_n[i])
            continue;
        if (what >= 3 && (!c->assigned[i]
                          || rd_kafka_get_watermark_offsets(c->rk, c->o.topic, i, &lo, &hi)
                          || hi < 0))
            continue;
        if (what == 0 || what == 1)
            v = (int64_t)(what == 0 ? c->out_n[i] : c->out_b[i]);
        else if (what == 3)
            v = hi;
        else if (!c->assigned[i] || c->next[i] < 0)
            continue;
        else
            v = what == 2 ? c->next[i] : hi > c->next[i] ? hi - c->next[i] : 0;
        rn_prom_label l[2] = { { "topic", c->o.topic, strlen(c->o.topic) },
                               { "partition", num,
                                 (size_t)snprintf(num, sizeof num, "%d", (int)i) } };
        rn_prom_sample_i64(p, l, 2, v);
    }
}

void rn_kcons_metrics(rn_kcons *c, rn_prom *p, const char *prefix)
{
    uint64_t n = 0;
    for (int32_t i = 0; c->assigned && i < c->nparts; i++)
        n += c->assigned[i] != 0;
    rn_prom_one(p, prefix, "assigned_partitions", RN_PROM_GAUGE,
                "Partitions being read (assigned by the group, or named).", n);
    part_family(c, p, prefix, "events_out_total", RN_PROM_COUNTER,
                "Events written out (flushed to standard output).", 0);
    part_family(c, p, prefix, "bytes_out_total", RN_PROM_COUNTER,
                "Bytes of the record values written out.", 1);
    part_family(c, p, prefix, "offset", RN_PROM_GAUGE,
                "The offset after the last record handed on (or the partition's end).", 2);
    part_family(c, p, prefix, "high_watermark", RN_PROM_GAUGE,
                "The partition's high watermark, as the last fetch saw it.", 3);
    part_family(c, p, prefix, "lag", RN_PROM_GAUGE,
                "Records in the partition after the offset: high watermark less offset.", 4);
}

void rn_kcons_assignment(const rn_kcons *c, char *out, size_t outlen)
{
    size_t n = 0;
    if (outlen)
        out[0] = '\0';
    for (int32_t p = 0; p < c->nparts && n < outlen; p++)
        if (c->assigned[p]) {
            int k = snprintf(out + n, outlen - n, "%s%d", n ? "," : "", (int)p);
            n += k > 0 ? (size_t)k : 0;
        }
}

/* Milliseconds until deadline (mono ns), 0 when it has passed. */
static int ms_left(int64_t deadline)
{
    int64_t ms = (deadline - rn_mono_ns()) / 1000000;
    return ms <= 0 ? 0 : ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* Commit what was stored, waiting until deadline at most: a commit to a
 * coordinator that is away would wait for ever. RN_ERR with err naming the
 * offsets that may not have been committed. */
static int commit_until(rn_kcons *c, int64_t deadline, char *err)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_resp_err_t r = rd_kafka_commit_queue(c->rk, NULL, q, NULL, NULL);
    if (!r) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, ms_left(deadline));
        r = ev ? rd_kafka_event_error(ev) : RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (ev)
            rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    if (!r || r == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return 0;
    char offs[160] = "";
    size_t n = 0;
    for (int32_t p = 0; p < c->nparts && n < sizeof offs; p++)
        if (c->stored[p] >= 0) {
            int k = snprintf(offs + n, sizeof offs - n, "%s%d@%lld", n ? "," : "", (int)p,
                             (long long)c->stored[p]);
            n += k > 0 ? (size_t)k : 0;
        }
    if (r == RD_KAFKA_RESP_ERR__TIMED_OUT)
        return rn_seterr(err, "commit: no answer within %lld ms; not committed (partition@offset): %s",
                         (long long)c->o.timeout_ms, offs);
    return rn_seterr(err, "commit: %s; not committed (partition@offset): %s", rd_kafka_err2str(r),
                     offs);
}

/* Leave the group until deadline at most. 1 when the consumer is closed.
 * The consumer's queue, records included, is forwarded to q meanwhile, so
 * it is served as events (callbacks would not take a record): a revoke
 * unassigns (what on_rebalance would do; the commit is done), the rest is
 * dropped. */
static int close_until(rn_kcons *c, int64_t deadline)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(c->rk, q);
    if (e) {
        rd_kafka_error_destroy(e);
    } else {
        int ms;
        while (!rd_kafka_consumer_closed(c->rk) && (ms = ms_left(deadline)) > 0) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, ms < 100 ? ms : 100);
            if (!ev)
                continue;
            if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
                mark(c, rd_kafka_event_topic_partition_list(ev), 0);
                rd_kafka_assign(c->rk, NULL);
            }
            rd_kafka_event_destroy(ev);
        }
    }
    int closed = rd_kafka_consumer_closed(c->rk);
    rd_kafka_queue_destroy(q);
    return closed;
}

int rn_kcons_close(rn_kcons *c, char *err)
{
    int rc = 0;
    int64_t deadline = rn_mono_ns() + c->o.timeout_ms * 1000000;
    if (c->cur)
        rd_kafka_message_destroy(c->cur);
    if (c->o.group) {
        /* Everything returned has been written by now: commit every assigned
         * partition's position, including those that gave nothing, so that
         * a partition without a commit does not start at "end" next time
         * and skip what arrives in between. */
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(c->nparts);
        for (int32_t p = 0; p < c->nparts; p++)
            if (c->assigned[p])
                rd_kafka_topic_partition_list_add(l, c->o.topic, p);
        if (l->cnt && rd_kafka_position(c->rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* A record held back was taken from librdkafka (its position is
             * past it) but never handed on: the position is that record. */
            for (int i = 0; c->ordered && i < l->cnt; i++)
                if (c->head[l->elems[i].partition])
                    l->elems[i].offset = c->head[l->elems[i].partition]->offset;
            /* A partition without a committed offset that gave nothing yet
             * (its first fetch had not come when a -c count ended the run)
             * has no position: its start is what the next run must resume
             * from, not --offset end. */
            for (int i = 0; i < l->cnt; i++) {
                int32_t p = l->elems[i].partition;
                int64_t lo, hi;
                if (l->elems[i].offset >= 0 || c->stored[p] >= 0 || !c->fresh[p]
                    || (c->o.offset_kind != RN_OFF_BEGINNING && c->o.offset_kind != RN_OFF_END)
                    || rd_kafka_query_watermark_offsets(c->rk, c->o.topic, p, &lo, &hi,
                                                        ms_left(deadline) < 1000 ? ms_left(deadline) : 1000))
                    continue;
                l->elems[i].offset = c->o.offset_kind == RN_OFF_BEGINNING ? lo : hi;
            }
            /* Only real positions: storing "invalid" would undo an end
             * stored by rn_kcons_written. */
            rd_kafka_topic_partition_list_t *v = rd_kafka_topic_partition_list_new(l->cnt);
            for (int i = 0; i < l->cnt; i++)
                if (l->elems[i].offset >= 0 && l->elems[i].offset > c->stored[l->elems[i].partition])
                    rd_kafka_topic_partition_list_add(v, c->o.topic, l->elems[i].partition)->offset =
                        l->elems[i].offset;
            if (v->cnt)
                rd_kafka_offsets_store(c->rk, v);
            rd_kafka_topic_partition_list_destroy(v);
        }
        rd_kafka_topic_partition_list_destroy(l);
        rc = commit_until(c, deadline, err);
    }
    stop_wake(c);
    if (!close_until(c, deadline)) {
        /* rd_kafka_destroy would wait for the session to time out
         * (session.timeout.ms, however long ago the coordinator went away):
         * the client is left to the exit of the process, which is next. */
        return rc ? rc : rn_seterr(err, "the group was not left within %lld ms",
                                   (long long)c->o.timeout_ms);
    }
    rd_kafka_destroy(c->rk);
    free_consumer(c);
    return rc;
}
