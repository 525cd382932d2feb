/* broker_api.c -- the data APIs: ApiVersions, Metadata, Produce, Fetch,
 * ListOffsets, CreateTopics, DeleteTopics, FindCoordinator. Each parses the
 * request with the bounded reader, answers into q->out and either finishes
 * the request or leaves it waiting; -1 means the request was malformed. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

#define MIN_TOPIC 6     /* smallest encoding of a topic entry: name + count */

int rn__api_versions(kreq *q)
{
    const rn_kapi_range *rg = rn_kapi_find(RN_KAPI_API_VERSIONS);
    rn__req_begin(q);
    if (q->h.api_version > rg->max || q->h.api_version < 0) {
        /* Answer v0 with the ranges so the client can downgrade. */
        rn_kapi_versions_body(&q->w, 0, RN_KERR_UNSUPPORTED_VERSION);
    } else {
        if (q->h.api_version >= 3) {
            rn_kr r;
            rn_kr_init(&r, q->body, q->blen);
            rn_kr_cstr(&r);     /* client_software_name */
            rn_kr_cstr(&r);     /* client_software_version */
            rn_kr_skip_tags(&r);
            if (!rn_kr_ok(&r))
                return -1;
        }
        rn_kapi_versions_body(&q->w, q->h.api_version, RN_KERR_NONE);
    }
    rn__req_done(q);
    return 0;
}

/* Kafka's authorized-operations bits (AclOperation codes) for what a client
 * may do with no authorizer, which is every operation of the resource, as
 * Kafka answers without one; INT32_MIN when the client did not ask. */
#define OPS_NOT_ASKED INT32_MIN
#define OP(code) (1 << (code))
#define TOPIC_OPS (OP(3) | OP(4) | OP(5) | OP(6) | OP(7) | OP(8) | OP(10) | OP(11))
#define CLUSTER_OPS (OP(5) | OP(7) | OP(8) | OP(9) | OP(10) | OP(11) | OP(12))

static void write_topic_meta(rn_kw *w, int16_t v, int16_t err, const char *name, size_t n,
                             const ktopic *t, int topic_ops)
{
    rn_kw_i16(w, err);
    rn_kw_str(w, name, n);
    if (v >= 1)
        rn_kw_i8(w, 0);         /* is_internal */
    int32_t parts = t ? t->n : 0;
    rn_kw_array(w, parts);
    for (int32_t i = 0; i < parts; i++) {
        rn_kw_i16(w, 0);
        rn_kw_i32(w, i);
        rn_kw_i32(w, 0);        /* leader */
        if (v >= 7)
            rn_kw_i32(w, -1);   /* leader_epoch: none kept, so no epoch validation */
        rn_kw_array(w, 1);      /* replicas */
        rn_kw_i32(w, 0);
        rn_kw_array(w, 1);      /* isr */
        rn_kw_i32(w, 0);
        if (v >= 5)
            rn_kw_array(w, 0);  /* offline_replicas */
    }
    if (v >= 8)
        rn_kw_i32(w, topic_ops ? TOPIC_OPS : OPS_NOT_ASKED);
}

/* Room for parts more partitions under --max-partitions: 1 or 0. *held is
 * the partitions of all topics, counted on the first call of a request
 * (start it at -1) and kept up to date by the caller as it creates. */
static int partitions_fit(rn_broker *b, int64_t *held, int32_t parts)
{
    if (b->o.max_partitions <= 0)
        return 1;
    if (*held < 0) {
        *held = 0;
        for (ktopic *t = b->topics; t; t = t->next)
            *held += t->n;
    }
    return *held + parts <= b->o.max_partitions;
}

/* Find a topic, creating it when auto-creation is allowed. *err gets the
 * error code for a topic that is not there. *held is partitions_fit's; a
 * topic over the limit is refused with UNKNOWN_TOPIC_OR_PARTITION, logged
 * once a request (*refused counts them). */
static ktopic *topic_get(rn_broker *b, rn_kstr name, int create, int16_t *err,
                         int64_t *held, int *refused)
{
    ktopic *t = rn__topic_find(b, name.p, name.n);
    char msg[RN_ERRLEN];
    *err = RN_KERR_NONE;
    if (t)
        return t;
    if (!rn__topic_name_ok(name.p, name.n)) {
        *err = RN_KERR_INVALID_TOPIC;
        return NULL;
    }
    if (!create || !b->o.auto_create || b->stopping) {
        *err = RN_KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    if (!partitions_fit(b, held, b->o.partitions)) {
        if ((*refused)++ == 0)
            rn__blog(b, "auto-create %.*s refused: %" PRId64 " partitions held, "
                     "--max-partitions is %d", (int)name.n, name.p, *held,
                     (int)b->o.max_partitions);
        *err = RN_KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    if (rn__topic_create(b, name.p, name.n, b->o.partitions, &t, msg) < 0) {
        rn__blog(b, "auto-create %.*s: %s", (int)name.n, name.p, msg);
        *err = RN_KERR_KAFKA_STORAGE_ERROR;
        return NULL;
    }
    if (*held >= 0)
        *held += t->n;
    return t;
}

int rn__metadata(kreq *q)
{
    rn_broker *b = q->c->b;
    int16_t v = q->h.api_version;
    rn_kr r;
    int null;
    rn_kr_init(&r, q->body, q->blen);
    int32_t n = rn_kr_array(&r, 2, &null);
    size_t topics_at = r.off;
    for (int32_t i = 0; i < n; i++)
        rn_kr_str(&r);
    int allow = v >= 4 ? rn_kr_i8(&r) : 1;
    int cluster_ops = v >= 8 ? rn_kr_i8(&r) : 0;
    int topic_ops = v >= 8 ? rn_kr_i8(&r) : 0;
    if (!rn_kr_ok(&r))
        return -1;

    rn__req_begin(q);
    rn_kw *w = &q->w;
    if (v >= 3)
        rn_kw_i32(w, 0);
    rn_kw_array(w, 1);
    rn_kw_i32(w, 0);
    rn_kw_strz(w, rn_broker_advertised_host(b));
    rn_kw_i32(w, rn_broker_advertised_port(b));
    if (v >= 1)
        rn_kw_nstr(w, NULL, 0);                 /* rack */
    if (v >= 2)
        rn_kw_strz(w, "runnel");                /* cluster_id */
    if (v >= 1)
        rn_kw_i32(w, 0);                        /* controller_id */
    if (null || (v == 0 && n == 0)) {           /* all topics */
        size_t at = rn_kw_hole32(w);
        int32_t cnt = 0;
        for (ktopic *t = b->topics; t; t = t->next, cnt++)
            write_topic_meta(w, v, 0, t->name, strlen(t->name), t, topic_ops);
        rn_kw_fill32(w, at, cnt);
    } else {
        rn_kr_init(&r, q->body, q->blen);
        r.off = topics_at;
        int64_t held = -1;
        int refused = 0;
        rn_kw_array(w, n);
        for (int32_t i = 0; i < n; i++) {
            rn_kstr name = rn_kr_str(&r);
            int16_t e;
            ktopic *t = topic_get(b, name, allow, &e, &held, &refused);
            write_topic_meta(w, v, e, name.p, name.n, t, topic_ops);
        }
    }
    if (v >= 8)
        rn_kw_i32(w, cluster_ops ? CLUSTER_OPS : OPS_NOT_ASKED);
    rn__req_done(q);
    return 0;
}

/* Whether a record set holds a zstd batch (codec 4), which Kafka accepts
 * only from Produce v7 on. A set too damaged to walk is left to klog. */
static int has_zstd(const unsigned char *p, size_t n)
{
    for (size_t at = 0; n - at >= RN_KLOG_BATCH_HEADER; ) {
        int32_t blen = (int32_t)rn_be32(p + at + 8);
        if ((p[at + 22] & 7) == 4)
            return 1;
        if (blen < 49 || (uint64_t)blen + 12 > n - at)
            break;
        at += 12 + (size_t)blen;
    }
    return 0;
}

/* Produce: one pass checks the request's shape, so that a malformed request
 * appends nothing; the second appends and answers. */
static int produce_pass(kreq *q, int act)
{
    rn_broker *b = q->c->b;
    int16_t v = q->h.api_version;
    rn_kr r;
    rn_kw *w = &q->w;
    rn_kr_init(&r, q->body, q->blen);
    rn_kr_nstr(&r);                         /* transactional_id */
    int16_t acks = rn_kr_i16(&r);
    rn_kr_i32(&r);                          /* timeout_ms */
    int32_t nt = rn_kr_array(&r, MIN_TOPIC, NULL);
    if (act) {
        q->noresp = acks == 0;
        rn__req_begin(q);
        rn_kw_array(w, nt);
    }
    int64_t now = rn__now_ms(), held = -1;
    int refused = 0;
    for (int32_t i = 0; i < nt && rn_kr_ok(&r); i++) {
        rn_kstr name = rn_kr_str(&r);
        int32_t np = rn_kr_array(&r, 8, NULL);
        int16_t terr = 0;
        ktopic *t = act ? topic_get(b, name, 1, &terr, &held, &refused) : NULL;
        if (act) {
            rn_kw_str(w, name.p, name.n);
            rn_kw_array(w, np);
        }
        for (int32_t j = 0; j < np && rn_kr_ok(&r); j++) {
            int32_t p = rn_kr_i32(&r);
            rn_kstr rec = rn_kr_bytes(&r);
            if (!act)
                continue;
            int16_t e = terr;
            int64_t base = -1;
            if (acks != 0 && acks != 1 && acks != -1)
                e = RN_KERR_INVALID_REQUIRED_ACKS;
            else if (!e && (p < 0 || p >= t->n))
                e = RN_KERR_UNKNOWN_TOPIC_OR_PARTITION;
            else if (!e && (rec.null || rec.n == 0))
                e = RN_KERR_CORRUPT_MESSAGE;
            else if (!e && v < 7 && has_zstd((const unsigned char *)rec.p, rec.n))
                e = RN_KERR_UNSUPPORTED_COMPRESSION_TYPE;
            /* A log whose fsync failed is offline: said when it failed. */
            if (!e && rn_klog_failed(t->logs[p]))
                e = RN_KERR_KAFKA_STORAGE_ERROR;
            if (!e) {
                char err[RN_ERRLEN];
                /* The frame is ours: klog assigns offsets in place. */
                unsigned char *recs = q->frame + ((const unsigned char *)rec.p - q->frame);
                int rr = rn_klog_append(t->logs[p], recs, rec.n, now, &base, err);
                if (rr == RN_ECORRUPT) {
                    e = RN_KERR_CORRUPT_MESSAGE;
                    rn__blog(b, "%s: produce to %s-%d: %s", q->c->peer, t->name, p, err);
                } else if (rr < 0) {
                    /* Kafka answers a full or failing log directory so too
                     * (NOT_ENOUGH_REPLICAS is about replicas, which we lack). */
                    e = RN_KERR_KAFKA_STORAGE_ERROR;
                    rn__append_failed(b, t, p, err);
                } else {
                    rn__appended(b, t, p);
                    (*b->c_produced_batches)++;
                    *b->c_produced_bytes += rec.n;
                }
                if (e)
                    base = -1;
            }
            rn_kw_i32(w, p);
            rn_kw_i16(w, e);
            rn_kw_i64(w, base);
            rn_kw_i64(w, -1);                   /* log_append_time_ms: CreateTime */
            if (v >= 5)
                rn_kw_i64(w, e || !t ? -1 : rn_klog_start(t->logs[p]));
        }
    }
    if (act)
        rn_kw_i32(w, 0);                        /* throttle_time_ms */
    return rn_kr_ok(&r) ? 0 : -1;
}

int rn__produce(kreq *q)
{
    if (produce_pass(q, 0) < 0)
        return -1;
    produce_pass(q, 1);
    rn__produced(q);
    return 0;
}

void rn__produce_unsynced(kreq *q)
{
    rn_broker *b = q->c->b;
    int16_t v = q->h.api_version;
    /* Walk the answer produce_pass wrote, after the size and correlation id;
     * its entries have a fixed size after the topic name. */
    unsigned char *out = (unsigned char *)q->out.p;
    rn_kr r;
    rn_kr_init(&r, out + 8, q->out.len - 8);
    int32_t nt = rn_kr_array(&r, MIN_TOPIC, NULL);
    for (int32_t i = 0; i < nt && rn_kr_ok(&r); i++) {
        rn_kstr name = rn_kr_str(&r);
        ktopic *t = rn__topic_find(b, name.p, name.n);
        int32_t np = rn_kr_array(&r, 8, NULL);
        for (int32_t j = 0; j < np && rn_kr_ok(&r); j++) {
            unsigned char *at = out + 8 + r.off;
            int32_t p = rn_kr_i32(&r);
            int16_t e = rn_kr_i16(&r);
            rn_kr_i64(&r);                      /* base_offset */
            rn_kr_i64(&r);                      /* log_append_time_ms */
            if (v >= 5)
                rn_kr_i64(&r);                  /* log_start_offset */
            if (!rn_kr_ok(&r) || e != 0
                || (t && p >= 0 && p < t->n && !rn__unsynced(b, t->logs[p])))
                continue;
            at[4] = RN_KERR_KAFKA_STORAGE_ERROR >> 8;
            at[5] = RN_KERR_KAFKA_STORAGE_ERROR & 0xff;
            rn_put_be64(at + 6, (uint64_t)-1);
            if (v >= 5)
                rn_put_be64(at + 22, (uint64_t)-1);
        }
    }
}

/* ---- Fetch ---- */

/* Build the Fetch answer for what the logs hold now; returns the record
 * bytes in it, or -1 for a malformed request. *errors is set when a partition
 * has an error (the answer then goes at once). *readable gets what Kafka's
 * DelayedFetch weighs against min_bytes: per partition, the bytes from the
 * fetch position to the log end, up to the partition's max_bytes, whether
 * or not this answer has room for them. */
static long fetch_build(kreq *q, int32_t *max_wait, int32_t *min_bytes, int *errors,
                        long *readable)
{
    rn_broker *b = q->c->b;
    int16_t v = q->h.api_version;
    rn_kr r;
    rn_kw *w = &q->w;
    rn_kr_init(&r, q->body, q->blen);
    rn_kr_i32(&r);                          /* replica_id */
    *max_wait = rn_kr_i32(&r);
    *min_bytes = rn_kr_i32(&r);
    int32_t max_bytes = rn_kr_i32(&r);
    rn_kr_i8(&r);                           /* isolation_level: no transactions here */
    if (v >= 7) {
        rn_kr_i32(&r);                      /* session_id: sessions are not kept */
        rn_kr_i32(&r);                      /* session_epoch */
    }
    int32_t nt = rn_kr_array(&r, MIN_TOPIC, NULL);
    rn__req_begin(q);
    rn_kw_i32(w, 0);                        /* throttle_time_ms */
    if (v >= 7) {
        rn_kw_i16(w, 0);
        rn_kw_i32(w, 0);                    /* session_id */
    }
    rn_kw_array(w, nt);
    long total = 0;
    *errors = 0;
    *readable = 0;
    for (int32_t i = 0; i < nt && rn_kr_ok(&r); i++) {
        rn_kstr name = rn_kr_str(&r);
        int32_t np = rn_kr_array(&r, 16, NULL);
        ktopic *t = rn__topic_find(b, name.p, name.n);
        if (t)
            rn__fetch_watch(q, t);
        rn_kw_str(w, name.p, name.n);
        rn_kw_array(w, np);
        for (int32_t j = 0; j < np && rn_kr_ok(&r); j++) {
            int32_t p = rn_kr_i32(&r);
            if (v >= 9)
                rn_kr_i32(&r);              /* current_leader_epoch */
            int64_t off = rn_kr_i64(&r);
            if (v >= 5)
                rn_kr_i64(&r);              /* log_start_offset (a follower's) */
            int32_t pmax = rn_kr_i32(&r);
            if (!rn_kr_ok(&r))
                break;
            int16_t e = 0;
            int64_t hw = -1, start = -1;
            rn_klog_slice sl = { .fd = -1 };
            if (!t || p < 0 || p >= t->n) {
                e = RN_KERR_UNKNOWN_TOPIC_OR_PARTITION;
            } else {
                rn_klog *l = t->logs[p];
                char err[RN_ERRLEN];
                hw = rn_klog_end(l);
                start = rn_klog_start(l);
                long room = (long)max_bytes - total;
                size_t want = pmax > 0 ? (size_t)pmax : 0;
                if (total > 0 && room < (long)want)
                    want = room > 0 ? (size_t)room : 0;
                if (off < start || off > hw) {
                    e = RN_KERR_OFFSET_OUT_OF_RANGE;
                } else if (off < hw && pmax > 0) {
                    /* With no room left, read only to weigh what waits. */
                    int rr = rn_klog_read(l, off, want > 0 ? want : 1, &sl, err);
                    if (rr == RN_ERANGE) {
                        e = RN_KERR_OFFSET_OUT_OF_RANGE;
                    } else if (rr < 0) {
                        e = RN_KERR_KAFKA_STORAGE_ERROR;
                        rn__blog(b, "%s-%d: %s", t->name, p, err);
                    } else if (v < 10 && sl.codec == 4) {
                        /* zstd needs Fetch v10, as Kafka says for the
                         * batch at the fetch position. */
                        e = RN_KERR_UNSUPPORTED_COMPRESSION_TYPE;
                        hw = start = -1;
                    } else {
                        *readable += sl.avail < (uint64_t)pmax ? (long)sl.avail : (long)pmax;
                        if (want == 0)
                            sl.len = 0;
                    }
                }
            }
            if (e)
                *errors = 1;
            rn_kw_i32(w, p);
            rn_kw_i16(w, e);
            rn_kw_i64(w, hw);
            rn_kw_i64(w, hw);               /* last_stable_offset: no transactions */
            if (v >= 5)
                rn_kw_i64(w, start);
            rn_kw_array(w, 0);              /* aborted_transactions */
            if (v >= 11)
                rn_kw_i32(w, -1);           /* preferred_read_replica */
            /* The record bytes go by sendfile(2) from the segment when
             * the answer is sent (see rn__req_file); small ones are read
             * in now. */
            size_t at = rn_kw_hole32(w);
            if (!e && sl.len && !w->oom) {
                long got = rn__req_file(q, sl.fd, sl.pos, sl.len);
                if (got < 0) {
                    w->oom = 1;
                    break;
                }
                rn_kw_fill32(w, at, (int32_t)got);
                total += got;
            }
        }
    }
    if (v >= 7) {                           /* forgotten_topics_data */
        int32_t nf = rn_kr_array(&r, MIN_TOPIC, NULL);
        for (int32_t i = 0; i < nf && rn_kr_ok(&r); i++) {
            rn_kr_str(&r);
            int32_t np = rn_kr_array(&r, 4, NULL);
            for (int32_t j = 0; j < np; j++)
                rn_kr_i32(&r);
        }
    }
    if (v >= 11)
        rn_kr_str(&r);                      /* rack_id */
    return rn_kr_ok(&r) ? total : -1;
}

static void on_fetch_timer(uv_timer_t *t)
{
    kreq *q = t->data;
    int32_t mw, mb;
    int errs;
    long readable;
    long got = fetch_build(q, &mw, &mb, &errs, &readable);
    if (got > 0)
        *q->c->b->c_fetched_bytes += (uint64_t)got;
    rn__req_done(q);
}

/* Answer the request if it can be answered now (or final): 1; else wait: 0. */
static int fetch_try(kreq *q, int final)
{
    rn_broker *b = q->c->b;
    int32_t max_wait, min_bytes;
    int errs;
    long readable;
    long got = fetch_build(q, &max_wait, &min_bytes, &errs, &readable);
    if (got < 0)
        return -1;
    if (final || errs || got >= min_bytes || readable >= min_bytes || max_wait <= 0
        || b->stopping) {
        *b->c_fetched_bytes += (uint64_t)got;
        rn__req_done(q);
        return 1;
    }
    rn__req_drop_files(q);      /* rebuilt when woken: hold no descriptors meanwhile */
    if (q->wait == W_FETCH)
        return 0;
    q->out.len = 0;
    rn__wait(&b->fetches, q, W_FETCH);
    q->timer = malloc(sizeof *q->timer);
    if (q->timer) {
        uv_timer_init(b->loop, q->timer);
        q->timer->data = q;
        uv_timer_start(q->timer, on_fetch_timer, (uint64_t)max_wait, 0);
    }
    return 0;
}

int rn__fetch(kreq *q)
{
    /* The skipped tail (forgotten topics, rack) is checked leniently; what
     * we read is bounded either way. */
    return fetch_try(q, 0) < 0 ? -1 : 0;
}

void rn__fetch_wake(rn_broker *b)
{
    /* Only those that read a topic appended to (see rn__appended); one
     * that answering another closes leaves the woken list as it is freed. */
    kreq *q;
    while ((q = rn__fetch_woken(b)))
        fetch_try(q, 0);
}

void rn__fetch_expire_all(rn_broker *b)
{
    while (b->fetches.head)
        fetch_try(b->fetches.head, 1);
}

/* ---- ListOffsets ---- */

int rn__list_offsets(kreq *q)
{
    rn_broker *b = q->c->b;
    int16_t v = q->h.api_version;
    rn_kr r;
    rn_kw *w = &q->w;
    rn_kr_init(&r, q->body, q->blen);
    rn_kr_i32(&r);
    if (v >= 2)
        rn_kr_i8(&r);
    int32_t nt = rn_kr_array(&r, MIN_TOPIC, NULL);
    rn__req_begin(q);
    if (v >= 2)
        rn_kw_i32(w, 0);
    rn_kw_array(w, nt);
    for (int32_t i = 0; i < nt && rn_kr_ok(&r); i++) {
        rn_kstr name = rn_kr_str(&r);
        int32_t np = rn_kr_array(&r, 12, NULL);
        ktopic *t = rn__topic_find(b, name.p, name.n);
        rn_kw_str(w, name.p, name.n);
        rn_kw_array(w, np);
        for (int32_t j = 0; j < np && rn_kr_ok(&r); j++) {
            int32_t p = rn_kr_i32(&r);
            int64_t ts = rn_kr_i64(&r);
            int16_t e = 0;
            int64_t off = -1, rts = -1;
            if (!t || p < 0 || p >= t->n) {
                e = RN_KERR_UNKNOWN_TOPIC_OR_PARTITION;
            } else if (ts == -1) {
                off = rn_klog_end(t->logs[p]);
            } else if (ts == -2) {
                off = rn_klog_start(t->logs[p]);
            } else {
                char err[RN_ERRLEN];
                if (rn_klog_offset_for_time(t->logs[p], ts, &off, &rts, err) < 0) {
                    e = RN_KERR_KAFKA_STORAGE_ERROR;
                    off = rts = -1;
                    rn__blog(b, "%s-%d: %s", t->name, p, err);
                }
            }
            rn_kw_i32(w, p);
            rn_kw_i16(w, e);
            rn_kw_i64(w, rts);
            rn_kw_i64(w, off);
        }
    }
    if (!rn_kr_ok(&r))
        return -1;
    rn__req_done(q);
    return 0;
}

/* ---- CreateTopics, DeleteTopics ---- */

int rn__create_topics(kreq *q)
{
    rn_broker *b = q->c->b;
    int16_t v = q->h.api_version;
    rn_kr r;
    rn_kw *w = &q->w;
    /* First pass: shape, and the trailing validate_only flag. */
    rn_kr_init(&r, q->body, q->blen);
    int32_t nt = rn_kr_array(&r, 16, NULL);
    for (int32_t i = 0; i < nt && rn_kr_ok(&r); i++) {
        rn_kr_str(&r);
        rn_kr_i32(&r);
        rn_kr_i16(&r);
        int32_t na = rn_kr_array(&r, 8, NULL);
        for (int32_t j = 0; j < na && rn_kr_ok(&r); j++) {
            rn_kr_i32(&r);
            int32_t nb = rn_kr_array(&r, 4, NULL);
            for (int32_t k = 0; k < nb; k++)
                rn_kr_i32(&r);
        }
        int32_t nc = rn_kr_array(&r, 4, NULL);
        for (int32_t j = 0; j < nc && rn_kr_ok(&r); j++) {
            rn_kr_str(&r);
            rn_kr_nstr(&r);
        }
    }
    rn_kr_i32(&r);
    int validate_only = v >= 1 ? rn_kr_i8(&r) : 0;
    if (!rn_kr_ok(&r))
        return -1;

    rn_kr_init(&r, q->body, q->blen);
    nt = rn_kr_array(&r, 16, NULL);
    rn__req_begin(q);
    if (v >= 2)
        rn_kw_i32(w, 0);
    rn_kw_array(w, nt);
    int64_t held = -1;
    for (int32_t i = 0; i < nt; i++) {
        rn_kstr name = rn_kr_str(&r);
        int32_t parts = rn_kr_i32(&r);
        int16_t rf = rn_kr_i16(&r);
        int32_t na = rn_kr_array(&r, 8, NULL);
        for (int32_t j = 0; j < na; j++) {
            rn_kr_i32(&r);
            int32_t nb = rn_kr_array(&r, 4, NULL);
            for (int32_t k = 0; k < nb; k++)
                rn_kr_i32(&r);
        }
        int32_t nc = rn_kr_array(&r, 4, NULL);
        for (int32_t j = 0; j < nc; j++) {
            rn_kr_str(&r);
            rn_kr_nstr(&r);
        }
        if (na > 0)
            parts = na;
        if (parts == -1)
            parts = b->o.partitions;
        int16_t e = 0;
        const char *msg = NULL;
        char err[RN_ERRLEN];
        int32_t most = b->o.max_partitions > 0 && b->o.max_partitions < 100000
                           ? b->o.max_partitions : 100000;
        ktopic *t;
        if (!rn__topic_name_ok(name.p, name.n)) {
            e = RN_KERR_INVALID_TOPIC, msg = "invalid topic name";
        } else if (rn__topic_find(b, name.p, name.n)) {
            e = RN_KERR_TOPIC_ALREADY_EXISTS, msg = "topic already exists";
        } else if (parts < 1) {
            e = RN_KERR_INVALID_PARTITIONS, msg = "number of partitions must be at least 1";
        } else if (parts > most) {
            snprintf(err, sizeof err, "%d partitions is more than the %d brokerd allows",
                     (int)parts, (int)most);
            e = RN_KERR_INVALID_PARTITIONS, msg = err;
        } else if (rf != -1 && rf != 1) {
            e = RN_KERR_INVALID_REPLICATION_FACTOR,
            msg = "replication factor must be 1: brokerd is one broker";
        } else if (!partitions_fit(b, &held, parts)) {
            snprintf(err, sizeof err, "%d more partitions would pass the broker's limit of "
                     "%d (%" PRId64 " held)", (int)parts, (int)b->o.max_partitions, held);
            rn__blog(b, "create %.*s refused: %s", (int)name.n, name.p, err);
            e = RN_KERR_POLICY_VIOLATION, msg = err;
        } else if (!validate_only && rn__topic_create(b, name.p, name.n, parts, &t, err) < 0) {
            e = RN_KERR_KAFKA_STORAGE_ERROR, msg = err;
        } else if (!validate_only && held >= 0) {
            held += parts;
        }
        rn_kw_str(w, name.p, name.n);
        rn_kw_i16(w, e);
        if (v >= 1)
            rn_kw_nstr(w, msg, msg ? strlen(msg) : 0);
    }
    rn__req_done(q);
    return 0;
}

int rn__delete_topics(kreq *q)
{
    rn_broker *b = q->c->b;
    rn_kr r;
    rn_kw *w = &q->w;
    rn_kr_init(&r, q->body, q->blen);
    int32_t nt = rn_kr_array(&r, 2, NULL);
    size_t at = r.off;
    for (int32_t i = 0; i < nt; i++)
        rn_kr_str(&r);
    rn_kr_i32(&r);
    if (!rn_kr_ok(&r))
        return -1;
    rn_kr_init(&r, q->body, q->blen);
    r.off = at;
    rn__req_begin(q);
    if (q->h.api_version >= 1)
        rn_kw_i32(w, 0);
    rn_kw_array(w, nt);
    for (int32_t i = 0; i < nt; i++) {
        rn_kstr name = rn_kr_str(&r);
        ktopic *t = rn__topic_find(b, name.p, name.n);
        int16_t e = 0;
        char err[RN_ERRLEN];
        if (!t) {
            e = RN_KERR_UNKNOWN_TOPIC_OR_PARTITION;
        } else {
            /* A fetch waiting on it must not read a closed log. */
            rn__fetch_expire_all(b);
            if (rn__topic_delete(b, t, err) < 0) {
                rn__blog(b, "delete %.*s: %s", (int)name.n, name.p, err);
                e = RN_KERR_KAFKA_STORAGE_ERROR;
            }
        }
        rn_kw_str(w, name.p, name.n);
        rn_kw_i16(w, e);
    }
    rn__req_done(q);
    return 0;
}

int rn__find_coordinator(kreq *q)
{
    rn_broker *b = q->c->b;
    int16_t v = q->h.api_version;
    rn_kr r;
    rn_kw *w = &q->w;
    rn_kr_init(&r, q->body, q->blen);
    rn_kr_str(&r);
    if (v >= 1)
        rn_kr_i8(&r);
    if (!rn_kr_ok(&r))
        return -1;
    rn__req_begin(q);
    if (v >= 1)
        rn_kw_i32(w, 0);
    rn_kw_i16(w, 0);
    if (v >= 1)
        rn_kw_nstr(w, NULL, 0);
    rn_kw_i32(w, 0);
    rn_kw_strz(w, rn_broker_advertised_host(b));
    rn_kw_i32(w, rn_broker_advertised_port(b));
    rn__req_done(q);
    return 0;
}

/* ---- DescribeConfigs, AlterConfigs ---- */

enum { RES_TOPIC = 2, RES_BROKER = 4 };
enum { SRC_STATIC_BROKER = 4 };     /* ConfigSource: the broker's startup settings */

/* A setting as Kafka names it for a topic and for the broker (the topic's
 * synonym), with its value from brokerd's options. A topic's settings are
 * all the broker's: brokerd has no per-topic overrides. */
#define MAX_CONFIGS 24     /* room for configs_of's 15 entries */

typedef struct kconfig {
    const char *topic, *broker;
    char value[24];
} kconfig;

#define NEVER INT64_MAX     /* what Kafka shows for "no limit" in a time it keeps as a long */

static int configs_of(const rn_broker *b, kconfig *c)
{
    const rn_broker_opts *o = &b->o;
    const rn_klog_opts *k = &o->klog;
    int n = 0;
#define SET(t, br, fmt, val) \
    (c[n].topic = (t), c[n].broker = (br), snprintf(c[n].value, sizeof c[n].value, fmt, val), n++)
    SET(NULL, "num.partitions", "%d", (int)o->partitions);
    SET(NULL, "auto.create.topics.enable", "%s", o->auto_create ? "true" : "false");
    SET(NULL, "group.initial.rebalance.delay.ms", "%" PRId64, o->group_initial_delay_ns / 1000000);
    SET("cleanup.policy", "log.cleanup.policy", "%s", "delete");
    SET("compression.type", "compression.type", "%s", "producer");
    SET("max.message.bytes", "message.max.bytes", "%zu", o->max_request);
    SET("message.timestamp.type", "log.message.timestamp.type", "%s", "CreateTime");
    SET("min.insync.replicas", "min.insync.replicas", "%d", 1);
    SET("retention.bytes", "log.retention.bytes", "%" PRId64,
        k->retention_bytes ? (int64_t)k->retention_bytes : -1);
    SET("retention.ms", "log.retention.ms", "%" PRId64,
        k->retention_ns > 0 ? k->retention_ns / 1000000 : -1);
    /* (0 takes klog's default: see rn_klog_open) */
    SET("segment.bytes", "log.segment.bytes", "%" PRIu64,
        k->segment_bytes ? k->segment_bytes : (uint64_t)1 << 30);
    SET("segment.ms", "log.roll.ms", "%" PRId64,
        k->segment_age_ns > 0 ? k->segment_age_ns / 1000000 : NEVER);
    SET("index.interval.bytes", "log.index.interval.bytes", "%" PRIu32,
        k->index_interval ? k->index_interval : 4096);
    SET("flush.messages", "log.flush.interval.messages", "%" PRId64,
        o->flush == RN_FLUSH_ALWAYS ? 1 : NEVER);
    SET("flush.ms", "log.flush.interval.ms", "%" PRId64,
        o->flush == RN_FLUSH_INTERVAL ? o->flush_interval_ns / 1000000 : NEVER);
#undef SET
    return n;
}

/* Whether the keys asked for (a null array: all) name s. */
static int key_asked(rn_kr keys, int32_t nkeys, const char *s)
{
    if (nkeys < 0)
        return 1;
    for (int32_t i = 0; i < nkeys; i++) {
        rn_kstr k = rn_kr_str(&keys);
        if (k.n == strlen(s) && !memcmp(k.p, s, k.n))
            return 1;
    }
    return 0;
}

/* One resource's answer; keys is a reader at its key list of nkeys (-1: null). */
static void describe_resource(kreq *q, int8_t type, rn_kstr name, rn_kr keys, int32_t nkeys,
                              int synonyms)
{
    rn_broker *b = q->c->b;
    int16_t v = q->h.api_version;
    rn_kw *w = &q->w;
    kconfig c[MAX_CONFIGS];
    int n = configs_of(b, c);
    int16_t e = 0;
    const char *msg = NULL;
    if (type == RES_TOPIC) {
        if (!rn__topic_find(b, name.p, name.n))
            e = RN_KERR_UNKNOWN_TOPIC_OR_PARTITION, msg = "no such topic";
    } else if (type == RES_BROKER) {
        if (name.n && !(name.n == 1 && name.p[0] == '0'))
            e = RN_KERR_INVALID_REQUEST, msg = "brokerd is broker 0";
    } else {
        e = RN_KERR_INVALID_REQUEST, msg = "only topic and broker configs are described";
    }
    rn_kw_i16(w, e);
    rn_kw_nstr(w, msg, msg ? strlen(msg) : 0);
    rn_kw_i8(w, type);
    rn_kw_str(w, name.p, name.n);
    size_t at = rn_kw_hole32(w);
    int32_t cnt = 0;
    for (int i = 0; i < n && !e; i++) {
        const char *key = type == RES_TOPIC ? c[i].topic : c[i].broker;
        if (!key || !key_asked(keys, nkeys, key))
            continue;
        rn_kw_strz(w, key);
        rn_kw_nstr(w, c[i].value, strlen(c[i].value));
        rn_kw_i8(w, 1);                     /* read_only */
        if (v == 0)
            rn_kw_i8(w, 0);                 /* is_default */
        else
            rn_kw_i8(w, SRC_STATIC_BROKER);
        rn_kw_i8(w, 0);                     /* is_sensitive */
        if (v >= 1) {
            rn_kw_array(w, synonyms);
            if (synonyms) {                 /* the broker setting it comes from */
                rn_kw_strz(w, c[i].broker);
                rn_kw_nstr(w, c[i].value, strlen(c[i].value));
                rn_kw_i8(w, SRC_STATIC_BROKER);
            }
        }
        cnt++;
    }
    rn_kw_fill32(w, at, cnt);
}

/* A DescribeConfigs resource: its type and name, and a reader at its key
 * list of *nkeys keys (-1: null, all). */
static void read_described(rn_kr *r, int8_t *type, rn_kstr *name, rn_kr *keys, int32_t *nkeys)
{
    int null;
    *type = rn_kr_i8(r);
    *name = rn_kr_str(r);
    *nkeys = rn_kr_array(r, 2, &null);
    *keys = *r;
    for (int32_t j = 0; j < *nkeys; j++)
        rn_kr_str(r);
    if (null)
        *nkeys = -1;
}

int rn__describe_configs(kreq *q)
{
    int16_t v = q->h.api_version;
    rn_kr r, keys;
    int8_t type;
    rn_kstr name;
    int32_t nk;
    rn_kr_init(&r, q->body, q->blen);
    int32_t nr = rn_kr_array(&r, 7, NULL);
    size_t at = r.off;
    for (int32_t i = 0; i < nr && rn_kr_ok(&r); i++)
        read_described(&r, &type, &name, &keys, &nk);
    int synonyms = v >= 1 ? rn_kr_i8(&r) != 0 : 0;
    if (!rn_kr_ok(&r))
        return -1;
    rn_kr_init(&r, q->body, q->blen);
    r.off = at;
    rn__req_begin(q);
    rn_kw_i32(&q->w, 0);                    /* throttle_time_ms */
    rn_kw_array(&q->w, nr);
    for (int32_t i = 0; i < nr; i++) {
        read_described(&r, &type, &name, &keys, &nk);
        describe_resource(q, type, name, keys, nk, synonyms);
    }
    rn__req_done(q);
    return 0;
}

/* An AlterConfigs resource: its type and name (its settings are skipped). */
static void read_altered(rn_kr *r, int8_t *type, rn_kstr *name)
{
    *type = rn_kr_i8(r);
    *name = rn_kr_str(r);
    int32_t nc = rn_kr_array(r, 4, NULL);
    for (int32_t j = 0; j < nc; j++) {
        rn_kr_str(r);
        rn_kr_nstr(r);
    }
}

int rn__alter_configs(kreq *q)
{
    rn_broker *b = q->c->b;
    rn_kr r;
    rn_kw *w = &q->w;
    int8_t type;
    rn_kstr name;
    rn_kr_init(&r, q->body, q->blen);
    int32_t nr = rn_kr_array(&r, 7, NULL);
    size_t at = r.off;
    for (int32_t i = 0; i < nr && rn_kr_ok(&r); i++)
        read_altered(&r, &type, &name);
    rn_kr_i8(&r);                           /* validate_only */
    if (!rn_kr_ok(&r))
        return -1;
    rn_kr_init(&r, q->body, q->blen);
    r.off = at;
    rn__req_begin(q);
    rn_kw_i32(w, 0);                        /* throttle_time_ms */
    rn_kw_array(w, nr);
    for (int32_t i = 0; i < nr; i++) {
        read_altered(&r, &type, &name);
        int16_t e = RN_KERR_POLICY_VIOLATION;
        const char *msg = "configs are read-only: brokerd's options set them";
        if (type == RES_TOPIC && !rn__topic_find(b, name.p, name.n))
            e = RN_KERR_UNKNOWN_TOPIC_OR_PARTITION, msg = "no such topic";
        else if (type != RES_TOPIC && type != RES_BROKER)
            e = RN_KERR_INVALID_REQUEST, msg = "only topic and broker configs exist";
        rn_kw_i16(w, e);
        rn_kw_nstr(w, msg, strlen(msg));
        rn_kw_i8(w, type);
        rn_kw_str(w, name.p, name.n);
    }
    rn__req_done(q);
    return 0;
}
