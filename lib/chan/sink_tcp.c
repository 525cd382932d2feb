/* sink_tcp.c -- the tcp sink: the channel's batches to the next hop, through
 * an rn_hop_sender on an event loop of the sink's own thread.
 *
 * The channel wakes the loop (a uv_async) when records arrive; the sink then
 * takes batches while fewer than MAX_INFLIGHT are unacknowledged, and tells
 * the channel a batch is done when the hop sender reports it acknowledged
 * (which it does in order). A batch the routes leave empty is finished at
 * once, in its place in the order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "hop/hop.h"
#include "chan/chan_int.h"

#define MAX_INFLIGHT 16

typedef struct tsink {
    rn_sink *s;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t again;       /* take again after a read error */
    rn_hop_sender *snd;
    rn_sink__fifo fifo;
    rn_chan_batch b;
    rn_batch filtered;
    int closing;
} tsink;

static void pump(tsink *t);

static void on_ack(void *data, void *cookie, int status)
{
    tsink *t = data;
    (void)status;
    rn_sink__fifo_one(&t->fifo, (long)(intptr_t)cookie);
    rn_sink__fifo_flush(t->s, &t->fifo);
    __atomic_store_n(&t->s->retries,
                     rn_counter_get(rn_hop_sender_counters(t->snd), "retries"),
                     __ATOMIC_RELAXED);
    pump(t);
}

static void on_hop_warn(void *data, const char *msg)
{
    tsink *t = data;
    rn_sink__warn(t->s, "%s", msg);
}

static void on_again(uv_timer_t *h)
{
    pump(h->data);
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void shut(tsink *t)
{
    if (t->closing)
        return;
    __atomic_store_n(&t->closing, 1, __ATOMIC_RELEASE);
    rn_chan_on_avail(t->s->o.chan, t->s->o.index, NULL, NULL);
    rn_hop_sender_close(t->snd);
    uv_close((uv_handle_t *)&t->wake, on_closed);
    uv_close((uv_handle_t *)&t->again, on_closed);
}

/* Send what the channel has, up to the in-flight limit. */
static void pump(tsink *t)
{
    rn_sink *s = t->s;
    char err[RN_ERRLEN];

    if (t->closing)
        return;
    if (rn_sink__stopping(s)) {
        shut(t);
        return;
    }
    while (rn_hop_sender_unacked(t->snd) < MAX_INFLIGHT) {
        int r = rn_chan_take(s->o.chan, s->o.index, s->o.batch, 0, &t->b, err);
        if (r < 0) {
            rn_sink__warn(s, "%s", err);
            uv_timer_start(&t->again, on_again, 1000, 0);
            return;
        }
        if (r == 0)
            return;
        rn_buf *send = &t->b.events;
        uint32_t count = t->b.count;
        if (rn_sink__has_filter(s)) {
            r = rn_sink__filter(s, &t->b, &t->filtered, err);
            if (r < 0)
                rn_sink__warn(s, "channel holds a bad record at event %llu: %s",
                              (unsigned long long)t->b.seq, err);
            count = r > 0 ? t->filtered.count : 0;
            send = &t->filtered.buf;
        }
        long id = rn_sink__fifo_push(&t->fifo, t->b.end, count ? 1 : 0, count);
        if (id < 0 || (count && rn_hop_sender_send(t->snd, send, count,
                                                   (void *)(intptr_t)id, err) < 0)) {
            rn_sink__warn(s, "out of memory");
            shut(t);
            return;
        }
        if (!count)
            rn_sink__fifo_flush(s, &t->fifo);
    }
}

static void on_wake(uv_async_t *h)
{
    pump(h->data);
}

static void chan_avail(void *arg)
{
    tsink *t = arg;
    uv_async_send(&t->wake);
}

/* rn_sink_stop. The loop closes its handles only once the sink is stopping
 * (or out of memory), so the handle is open here. */
static void wake(rn_sink *s)
{
    tsink *t = s->impl;
    if (!__atomic_load_n(&t->closing, __ATOMIC_ACQUIRE))
        uv_async_send(&t->wake);
}

int rn_sink__tcp_init(rn_sink *s, char *err)
{
    tsink *t = calloc(1, sizeof *t);
    if (!t)
        return rn_seterr(err, "out of memory");
    s->impl = t;
    t->s = s;
    rn_hop_sender_opts ho = { .on_ack = on_ack, .on_warn = on_hop_warn, .data = t };
    if (rn_hop_url_parse(s->spec.uri, &ho.url, err) < 0)
        return RN_ERR;
    int r = uv_loop_init(&t->loop);
    if (r < 0)
        return rn_seterr(err, "sink %s: %s", s->spec.name, uv_strerror(r));
    uv_async_init(&t->loop, &t->wake, on_wake);
    t->wake.data = t;
    uv_timer_init(&t->loop, &t->again);
    t->again.data = t;
    if (!(t->snd = rn_hop_sender_new(&t->loop, &ho, err))) {
        uv_close((uv_handle_t *)&t->wake, NULL);
        uv_close((uv_handle_t *)&t->again, NULL);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        uv_loop_close(&t->loop);
        return RN_ERR;
    }
    s->wake = wake;
    rn_chan_on_avail(s->o.chan, s->o.index, chan_avail, t);
    return 0;
}

void *rn_sink__tcp_run(void *arg)
{
    rn_sink *s = arg;
    tsink *t = s->impl;
    uv_async_send(&t->wake);        /* what a previous run left pending */
    uv_run(&t->loop, UV_RUN_DEFAULT);
    rn_hop_sender_free(t->snd);
    uv_loop_close(&t->loop);
    rn_sink__fifo_free(&t->fifo);
    rn_buf_free(&t->b.events);
    rn_batch_free(&t->filtered);
    return NULL;
}
