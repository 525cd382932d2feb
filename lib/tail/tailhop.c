/* tailhop.c -- logtail --to: the follow engine's events over a hop, with
 * positions saved for acknowledged batches only (see tail.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tail/tail.h"
#include "core/core.h"

/* Pause the engine above these, read on below half of them. */
#define HIGH_BATCHES 32
#define HIGH_BYTES (16u << 20)
#define PART_BYTES (1u << 20)   /* a batch goes out early at this size */

typedef struct hb {
    struct hb *next;
    rn_posfile *snap;           /* positions once this batch is acked, or NULL */
} hb;

struct rn_tailhop {
    uv_loop_t *loop;
    rn_tailhop_opts o;
    rn_tail *tail;
    rn_hop_sender *snd;
    rn_batch cur;               /* the events gathered, not yet sent */
    hb *first, *last;           /* batches sent and not acknowledged, in order */
    rn_posfile *acked;          /* positions of the newest acknowledged snapshot */
    int dirty, paused, finishing, closed, unfinished;
    int put_in_turn;            /* events were put since the last turn */
    rn_possaver saver;          /* the positions, saved off the loop thread */
    int64_t deadline;           /* 0: wait as long as it takes */
    uv_timer_t commit_timer, drain_timer;
};

/* The newest acknowledged positions, in the pool (now, on this thread, for
 * the last save, which does not leave it to one still in the pool); a save
 * that failed is tried again. */
static void save(rn_tailhop *h, int now)
{
    char err[RN_ERRLEN];
    if (!h->o.pos_path || (!h->dirty && !h->saver.failing && !(now && h->saver.busy)))
        return;
    int r = now ? rn_possaver_save(&h->saver, h->acked, err)
                : rn_possaver_queue(&h->saver, h->acked, err);
    if (now || r < 0)
        r = rn_posfile_said(r, err, h->o.pos_path, &h->saver.failing, h->o.on_warn, h->o.data);
    if (r == 0)
        h->dirty = 0;
}

static void free_snap(rn_posfile *p)
{
    if (p) {
        rn_posfile_free(p);
        free(p);
    }
}

static void close_all(rn_tailhop *h);

static void on_ack(void *data, void *cookie, int status)
{
    rn_tailhop *h = data;
    hb *b = cookie;
    (void)status;
    if (b->snap) {
        free_snap(h->acked);
        h->acked = b->snap;
        h->dirty = 1;
    }
    h->first = b->next;         /* acks come in order: b is the first */
    if (h->last == b)
        h->last = NULL;
    free(b);
    if (h->paused && rn_hop_sender_unacked(h->snd) < HIGH_BATCHES / 2
        && rn_hop_sender_unacked_bytes(h->snd) < HIGH_BYTES / 2) {
        h->paused = 0;
        rn_tail_pause(h->tail, 0);
    }
    if (h->finishing && rn_hop_sender_unacked(h->snd) == 0)
        close_all(h);
}

static void hop_warn(void *data, const char *msg)
{
    rn_tailhop *h = data;
    rn_warn_to(h->o.on_warn, h->o.data, "%s", msg);
}

/* Send the gathered events as a batch, with snap (may be NULL). */
static int send_part(rn_tailhop *h, rn_posfile *snap)
{
    char err[RN_ERRLEN];
    hb *b = calloc(1, sizeof *b);
    if (!b)
        return RN_ERR;
    b->snap = snap;
    /* The sender takes the batch's buffer. */
    if (rn_hop_sender_send(h->snd, &h->cur.buf, h->cur.count, b, err) < 0) {
        free(b);
        return RN_ERR;
    }
    rn_batch_reset(&h->cur);
    if (h->last)
        h->last->next = b;
    else
        h->first = b;
    h->last = b;
    return 0;
}

int rn_tailhop_put(rn_tailhop *h, const rn_event *ev)
{
    h->put_in_turn = 1;
    if (rn_batch_add(&h->cur, ev) < 0)
        return RN_ERR;          /* out of memory, as tail.h says */
    if (h->cur.count >= h->o.batch || h->cur.buf.len >= PART_BYTES)
        return send_part(h, NULL);
    return 0;
}

void rn_tailhop_turn(rn_tailhop *h)
{
    char err[RN_ERRLEN];
    if (h->closed || (!h->cur.count && !h->last && !h->put_in_turn))
        return;
    h->put_in_turn = 0;
    rn_posfile *snap = NULL;
    if (h->o.pos_path) {
        snap = calloc(1, sizeof *snap);
        if (!snap || rn_tail_positions(h->tail, snap, err) < 0) {
            free_snap(snap);
            snap = NULL;    /* positions wait for the next turn */
        }
    }
    if (h->cur.count) {
        if (send_part(h, snap) < 0) {
            rn_warn_to(h->o.on_warn, h->o.data, "out of memory");
            free_snap(snap);
        }
    } else if (h->last) {
        /* The turn's lines went out in full batches: the newest carries the
         * positions. */
        free_snap(h->last->snap);
        h->last->snap = snap;
    } else if (snap) {
        /* Every batch of the turn went out full and was acknowledged before
         * the turn ended (a sender can read an ack in the same poll): all
         * the turn read is delivered. */
        free_snap(h->acked);
        h->acked = snap;
        h->dirty = 1;
    }
    if (!h->paused && (rn_hop_sender_unacked(h->snd) >= HIGH_BATCHES
                       || rn_hop_sender_unacked_bytes(h->snd) >= HIGH_BYTES)) {
        h->paused = 1;
        rn_tail_pause(h->tail, 1);
    }
}

static void on_commit_timer(uv_timer_t *t)
{
    save(t->data, 0);
}

static void on_drain_timer(uv_timer_t *t)
{
    rn_tailhop *h = t->data;
    if (h->deadline && rn_mono_ns() >= h->deadline)
        close_all(h);
}

static void on_closed(uv_handle_t *hd)
{
    (void)hd;
}

static void close_all(rn_tailhop *h)
{
    if (h->closed)
        return;
    h->closed = 1;
    h->unfinished = rn_hop_sender_unacked(h->snd) > 0;
    save(h, 1);
    rn_hop_sender_close(h->snd);
    uv_close((uv_handle_t *)&h->commit_timer, on_closed);
    uv_close((uv_handle_t *)&h->drain_timer, on_closed);
}

void rn_tailhop_finish(rn_tailhop *h)
{
    if (h->finishing)
        return;
    h->finishing = 1;
    rn_tailhop_turn(h);
    if (rn_hop_sender_unacked(h->snd) == 0)
        close_all(h);
    else
        uv_timer_start(&h->drain_timer, on_drain_timer, 20, 20);
}

void rn_tailhop_stop(rn_tailhop *h)
{
    if (h->deadline)
        h->deadline = 1;        /* asked twice: now */
    else
        h->deadline = rn_mono_ns() + h->o.drain_ns;
    if (h->finishing && h->deadline == 1)
        close_all(h);
}

rn_tailhop *rn_tailhop_new(uv_loop_t *loop, const rn_tailhop_opts *o, char *err)
{
    rn_tailhop *h = calloc(1, sizeof *h);
    if (!h || !(h->acked = calloc(1, sizeof *h->acked))
        || rn_possaver_init(&h->saver, loop, o->pos_path, o->on_warn, o->data) < 0) {
        if (h)
            free(h->acked);
        free(h);
        rn_seterr(err, "out of memory");
        return NULL;
    }
    h->loop = loop;
    h->o = *o;
    if (!h->o.batch)
        h->o.batch = 1000;
    if (!h->o.commit_ns)
        h->o.commit_ns = 1000000000;
    rn_hop_sender_opts so = { .url = o->url, .on_ack = on_ack, .on_warn = hop_warn, .data = h };
    if (!(h->snd = rn_hop_sender_new(loop, &so, err))) {
        rn_possaver_destroy(&h->saver);
        free(h->acked);
        free(h);
        return NULL;
    }
    uv_timer_init(loop, &h->commit_timer);
    uv_timer_init(loop, &h->drain_timer);
    h->commit_timer.data = h->drain_timer.data = h;
    uint64_t ms = (uint64_t)(h->o.commit_ns / 1000000);
    uv_timer_start(&h->commit_timer, on_commit_timer, ms, ms);
    uv_unref((uv_handle_t *)&h->commit_timer);
    return h;
}

void rn_tailhop_attach(rn_tailhop *h, rn_tail *t) { h->tail = t; }

const rn_counters *rn_tailhop_counters(const rn_tailhop *h)
{
    return rn_hop_sender_counters(h->snd);
}

void rn_tailhop_metrics(const rn_tailhop *h, rn_prom *p, const char *prefix)
{
    char pre[128];
    snprintf(pre, sizeof pre, "%s_hop", prefix);
    rn_hop_sender_metrics(h->snd, p, pre);
}

int rn_tailhop_unfinished(const rn_tailhop *h) { return h->unfinished; }
int rn_tailhop_failed(const rn_tailhop *h) { return h->saver.failing; }

void rn_tailhop_free(rn_tailhop *h)
{
    if (!h)
        return;
    rn_hop_sender_free(h->snd);
    for (hb *b = h->first, *n; b; b = n) {
        n = b->next;
        free_snap(b->snap);
        free(b);
    }
    free_snap(h->acked);
    rn_batch_free(&h->cur);
    rn_possaver_destroy(&h->saver);
    free(h);
}
