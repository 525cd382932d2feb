/* sink_kafka.c -- the kafka sink: every event of a batch becomes a record of
 * the topic (value = body, key = the header key= names, timestamp = ts, the
 * event's headers as record headers), produced with librdkafka. A batch is
 * done when every record of it has a successful delivery report. A failed
 * report (the broker refused, or the record could not be written) does not
 * lose the record: it is produced again after a second, counted as a retry.
 * Records never time out in the producer (message.timeout.ms = 0), so a
 * broker that is down only delays them. The one exception is a record larger
 * than the producer's or the broker's limit (message.max.bytes, 1 MB by
 * default): no retry can deliver it, so it is dropped, counted (the sink's
 * dropped counter) and said, at most every 10 s, and the rest of its batch
 * goes on. */
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "chan/chan_int.h"
#include "kafka/kafka.h"

#define MAX_INFLIGHT 200000     /* records produced and not yet reported */
#define REPORT_WAIT_NS 5000000  /* delivery reports wait at most this long */

typedef struct retry {
    struct retry *next;
    long id;
    int64_t ts_ms;
    void *val, *key;
    size_t vlen, klen;
    rd_kafka_headers_t *hdrs;
} retry;

typedef struct ksink {
    rn_sink *s;
    rd_kafka_t *rk;
    rn_sink__fifo fifo;
    rn_chan_batch b;
    uint64_t inflight;
    retry *retries, **tail;     /* failed, to produce again after a second */
    int64_t retry_at;
    int64_t warned_at;          /* rn_mono_ns of the last warning */
    int64_t drop_warned_at;     /* ... of the last one about a dropped record */
    uint64_t drops_quiet;       /* dropped since that warning */
    uint64_t batch_drops;       /* records of the batch being produced dropped */
    char max_bytes[32];         /* the producer's message.max.bytes */
    long id;                    /* the batch being produced */
    uint64_t produced;          /* records of it produced so far */
} ksink;

/* One warning every 10 s at most: a broker that is down fails every record. */
static void kwarn(ksink *k, const char *what, const char *why)
{
    int64_t now = rn_mono_ns();
    if (k->warned_at && now - k->warned_at < 10000000000LL)
        return;
    k->warned_at = now;
    rn_sink__warn(k->s, "%s: %s; trying again", what, why);
}

/* Too large for the producer (refused at once) or for the broker (in a
 * delivery report): sending it again cannot help. */
static int too_large(rd_kafka_resp_err_t e)
{
    return e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
           || e == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

/* Drop a record that can never be delivered: it counts as finished in its
 * batch. Said the first time and then at most every 10 s, with how many
 * went since. */
static void drop(ksink *k, long id, size_t len, rd_kafka_resp_err_t e)
{
    rn_sink__count(&k->s->dropped, 1);
    rn_sink__fifo_one(&k->fifo, id);
    k->drops_quiet++;
    int64_t now = rn_mono_ns();
    if (k->drop_warned_at && now - k->drop_warned_at < 10000000000LL)
        return;
    rn_sink__warn(k->s, "dropped %llu record%s: a record of %zu bytes is over the limit "
                  "(message.max.bytes %s here, and the broker's own): %s",
                  (unsigned long long)k->drops_quiet, k->drops_quiet == 1 ? "" : "s", len,
                  k->max_bytes, rd_kafka_err2str(e));
    k->drop_warned_at = now;
    k->drops_quiet = 0;
}

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    ksink *k = opaque;
    (void)rk;
    k->inflight--;
    long id = (long)(intptr_t)m->_private;
    if (!m->err) {
        rn_sink__fifo_one(&k->fifo, id);
        return;
    }
    if (too_large(m->err)) {
        drop(k, id, m->len + m->key_len, m->err);
        return;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
        return;     /* the stop purged it: it stays pending in the channel */
    kwarn(k, "delivery failed", rd_kafka_err2str(m->err));
    rn_sink__count(&k->s->retries, 1);
    retry *r = calloc(1, sizeof *r);
    if (!r || (m->len && !(r->val = malloc(m->len)))
        || (m->key_len && !(r->key = malloc(m->key_len)))) {
        /* Out of memory: the record stays pending in the channel, its batch
         * never finishes, and a restart delivers it. */
        if (r) {
            free(r->val);
            free(r);
        }
        return;
    }
    r->id = id;
    r->vlen = m->len;
    r->klen = m->key_len;
    if (m->len)
        memcpy(r->val, m->payload, m->len);
    if (m->key_len)
        memcpy(r->key, m->key, m->key_len);
    rd_kafka_timestamp_type_t tt;
    r->ts_ms = rd_kafka_message_timestamp(m, &tt);
    rd_kafka_message_detach_headers((rd_kafka_message_t *)m, &r->hdrs);
    *k->tail = r;
    k->tail = &r->next;
    if (!k->retry_at)
        k->retry_at = rn_mono_ns() + 1000000000;
}

static void on_error(rd_kafka_t *rk, int e, const char *reason, void *opaque)
{
    (void)rk;
    (void)e;
    kwarn(opaque, "kafka", reason);
}

/* Produce one record; waits while the producer's queue is full. 0 (also for
 * a record dropped as too large), or RN_ERR when the sink is stopping or the
 * record cannot be produced at all. */
static int produce(ksink *k, long id, const void *val, size_t vlen, const void *key,
                   size_t klen, int64_t ts_ms, rd_kafka_headers_t *hdrs)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            k->rk, RD_KAFKA_V_TOPIC(k->s->spec.topic),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_KEY(key, klen),
            RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_OPAQUE((void *)(intptr_t)id), RD_KAFKA_V_END);
        if (!e) {
            k->inflight++;
            return 0;
        }
        if (too_large(e)) {
            if (hdrs)
                rd_kafka_headers_destroy(hdrs);
            k->batch_drops++;
            drop(k, id, vlen + klen, e);
            return 0;
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || rn_sink__stopping(k->s)) {
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                kwarn(k, "produce", rd_kafka_err2str(e));
            if (hdrs)
                rd_kafka_headers_destroy(hdrs);
            return RN_ERR;
        }
        rd_kafka_poll(k->rk, 50);
    }
}

static int produce_event(void *arg, const rn_event *ev)
{
    ksink *k = arg;
    rn_sink *s = k->s;
    if (!rn_sink__accepts(s, ev))
        return 0;
    const rn_str *key = s->spec.key[0] ? rn_event_header(ev, s->spec.key) : NULL;
    rd_kafka_headers_t *h = NULL;
    if (ev->nhdr) {
        h = rd_kafka_headers_new(ev->nhdr);
        for (size_t i = 0; i < ev->nhdr; i++)
            rd_kafka_header_add(h, ev->hdr[i].key.p, (ssize_t)ev->hdr[i].key.n,
                                ev->hdr[i].val.p, (ssize_t)ev->hdr[i].val.n);
    }
    k->produced++;
    return produce(k, k->id, ev->body.p, ev->body.n, key ? key->p : NULL, key ? key->n : 0,
                   ev->ts / 1000000, h);
}

static void produce_batch(ksink *k)
{
    rn_sink *s = k->s;
    char err[RN_ERRLEN];
    /* Every record of the batch counts as one delivery to wait for; the
     * count is known once they are produced, so the slot starts at "one
     * more than any": it is settled below. */
    k->id = rn_sink__fifo_push(&k->fifo, k->b.end, UINT64_MAX / 2, 0);
    if (k->id < 0) {
        rn_sink__warn(s, "out of memory");
        return;
    }
    k->produced = 0;
    k->batch_drops = 0;
    size_t bad;
    int r = rn_batch_each(k->b.events.p, k->b.events.len, k->b.count, produce_event, k, &bad, err);
    if (r == RN_ECORRUPT)
        rn_sink__warn(s, "channel holds a bad record at event %llu: byte offset %zu: %s",
                      (unsigned long long)k->b.seq, bad, err);
    size_t i = (size_t)(k->id - k->fifo.first);
    struct rn_sink__fifo_ent *e = &k->fifo.e[(k->fifo.head + i) % k->fifo.cap];
    e->events = k->produced - k->batch_drops;
    if (r == 0)     /* reports so far took their part off the placeholder */
        e->left = e->left - UINT64_MAX / 2 + k->produced;
}

static void produce_retries(ksink *k)
{
    retry *list = k->retries;
    k->retries = NULL;
    k->tail = &k->retries;
    k->retry_at = 0;
    while (list) {
        retry *r = list;
        list = r->next;
        /* The producer owns the headers now, whatever the outcome; a record
         * that could not be produced (stopping) stays pending in the channel. */
        produce(k, r->id, r->val, r->vlen, r->key, r->klen, r->ts_ms, r->hdrs);
        free(r->val);
        free(r->key);
        free(r);
    }
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char e[256];
    rd_kafka_conf_set(conf, k, v, e, sizeof e);   /* our own keys: cannot fail */
}

int rn_sink__kafka_init(rn_sink *s, char *err)
{
    char e[512];
    ksink *k = calloc(1, sizeof *k);
    if (!k)
        return rn_seterr(err, "out of memory");
    s->impl = k;
    k->s = s;
    k->tail = &k->retries;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", s->spec.brokers, e, sizeof e)
        != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return rn_seterr(err, "sink %s: %s", s->spec.name, e);
    }
    rd_kafka_conf_set_log_cb(conf, NULL);
    set(conf, "acks", s->spec.acks);
    set(conf, "message.timeout.ms", "0");
    set(conf, "linger.ms", "5");
    set(conf, "enable.idempotence", "false");
    /* The user's last, so that they override our defaults. */
    if (rn_kprops_apply(s->o.kprops, RN_KPROPS_SINK, conf, e) < 0) {
        rd_kafka_conf_destroy(conf);
        return rn_seterr(err, "sink %s: %s", s->spec.name, e);
    }
    size_t mlen = sizeof k->max_bytes;
    if (rd_kafka_conf_get(conf, "message.max.bytes", k->max_bytes, &mlen) != RD_KAFKA_CONF_OK)
        strcpy(k->max_bytes, "?");
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, k);
    if (!(k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e)))
        return rn_seterr(err, "sink %s: %s", s->spec.name, e);
    return 0;
}

void *rn_sink__kafka_run(void *arg)
{
    rn_sink *s = arg;
    ksink *k = s->impl;
    char err[RN_ERRLEN];

    while (!rn_sink__stopping(s)) {
        int64_t now = rn_mono_ns();
        if (k->retry_at && now >= k->retry_at)
            produce_retries(k);
        int got = 0;
        if (k->inflight < MAX_INFLIGHT) {
            /* Wait in the channel, not in librdkafka: events that arrive
             * while records are in flight go out at once (a wait in
             * rd_kafka_poll held them until a report came). Reports are
             * served after every take, and at least every REPORT_WAIT_NS;
             * they only move the channel's done cursor. */
            int64_t wait = k->inflight ? REPORT_WAIT_NS : 100000000;
            if (k->retry_at && k->retry_at - now < wait)
                wait = k->retry_at > now ? k->retry_at - now : 0;
            got = rn_chan_take(s->o.chan, s->o.index, s->o.batch, wait, &k->b, err);
            if (got < 0)
                rn_sink__warn(s, "%s", err);
            else if (got > 0)
                produce_batch(k);
        }
        /* Too much in flight: only a report can let the sink go on. */
        rd_kafka_poll(k->rk, k->inflight >= MAX_INFLIGHT ? 20 : 0);
        rn_sink__fifo_flush(s, &k->fifo);
        if (got < 0)
            usleep(100000);
    }
    /* What is in flight gets a moment to be confirmed (the agent's drain
     * has given it its --timeout already: a broker that is down must not
     * hold the stop); the rest is purged and stays pending in the channel. */
    rd_kafka_flush(k->rk, 200);
    rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(k->rk, 0);
    rn_sink__fifo_flush(s, &k->fifo);
    for (retry *r = k->retries, *n; r; r = n) {
        n = r->next;
        if (r->hdrs)
            rd_kafka_headers_destroy(r->hdrs);
        free(r->val);
        free(r->key);
        free(r);
    }
    rd_kafka_destroy(k->rk);
    rn_sink__fifo_free(&k->fifo);
    rn_buf_free(&k->b.events);
    return NULL;
}
