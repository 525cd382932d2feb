/* chan.c -- chanbuf's channel: records between the sources that put them and
 * the sinks that take them, a read and a done cursor per sink, capacity,
 * duplicate detection and waiting. A file channel keeps the records' events
 * in its write-ahead log (wal.c); a memory channel keeps them here.
 *
 * In memory every record that has not left is one small struct in a ring
 * (rn_chan__rec); a memory channel keeps the events there too (malloc'd by
 * put, freed when the record leaves), a file channel only where they are on
 * disk. Records leave from the head, when every sink's done cursor has passed
 * their end. One mutex guards all of it; puts wait on `room`, takes on
 * `avail`. Callbacks (on_avail, on_space) run under the mutex, once the
 * state is updated (see struct calls). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan/chan_int.h"

#define DEF_CAPACITY 1000000
#define DEF_MEM_BYTES (64ULL << 20)
#define DEF_FILE_BYTES (1ULL << 30)
#define DEF_SEGMENT (64ULL << 20)

#define DUP_BUCKETS 8192

/* ---- the duplicate table -------------------------------------------------- */

static int dup_init(rn_chan__duptab *t)
{
    t->e = malloc(RN_CHAN__DUP_MAX * sizeof *t->e);
    t->bucket = malloc(DUP_BUCKETS * sizeof *t->bucket);
    if (!t->e || !t->bucket)
        return RN_ENOMEM;
    for (size_t i = 0; i < DUP_BUCKETS; i++)
        t->bucket[i] = -1;
    t->n = 0;
    t->newest = t->oldest = -1;
    return 0;
}

static void dup_free(rn_chan__duptab *t)
{
    free(t->e);
    free(t->bucket);
}

static size_t dup_hash(uint64_t s)
{
    s ^= s >> 33;
    s *= 0xff51afd7ed558ccdULL;
    s ^= s >> 33;
    return (size_t)(s & (DUP_BUCKETS - 1));
}

static int32_t dup_find(const rn_chan__duptab *t, uint64_t session)
{
    for (int32_t i = t->bucket[dup_hash(session)]; i >= 0; i = t->e[i].hnext)
        if (t->e[i].session == session)
            return i;
    return -1;
}

static void lru_unlink(rn_chan__duptab *t, int32_t i)
{
    rn_chan__dupent *d = &t->e[i];
    if (d->newer >= 0)
        t->e[d->newer].older = d->older;
    else
        t->newest = d->older;
    if (d->older >= 0)
        t->e[d->older].newer = d->newer;
    else
        t->oldest = d->newer;
}

static void lru_push(rn_chan__duptab *t, int32_t i)
{
    t->e[i].newer = -1;
    t->e[i].older = t->newest;
    if (t->newest >= 0)
        t->e[t->newest].newer = i;
    t->newest = i;
    if (t->oldest < 0)
        t->oldest = i;
}

static void dup_touch(rn_chan__duptab *t, int32_t i)
{
    if (t->newest != i) {
        lru_unlink(t, i);
        lru_push(t, i);
    }
}

/* An entry for session, new (evicting the least recently used when full)
 * or found, made the most recent. */
int32_t rn_chan__dup_get(rn_chan__duptab *t, uint64_t session, uint64_t high)
{
    int32_t i = dup_find(t, session);
    if (i >= 0) {
        dup_touch(t, i);
        return i;
    }
    if (t->n < RN_CHAN__DUP_MAX) {
        i = t->n++;
    } else {
        i = t->oldest;
        lru_unlink(t, i);
        int32_t *pp = &t->bucket[dup_hash(t->e[i].session)];
        while (*pp != i)
            pp = &t->e[*pp].hnext;
        *pp = t->e[i].hnext;
    }
    rn_chan__dupent *d = &t->e[i];
    d->session = session;
    d->high = high;
    memset(d->bits, 0, sizeof d->bits);
    size_t h = dup_hash(session);
    d->hnext = t->bucket[h];
    t->bucket[h] = i;
    lru_push(t, i);
    return i;
}

/* 1 when (session, serial) was stored before, as far as the table knows. */
static int dup_seen(rn_chan__duptab *t, uint64_t session, uint64_t serial)
{
    int32_t i = dup_find(t, session);
    if (i < 0)
        return 0;
    const rn_chan__dupent *d = &t->e[i];
    if (serial > d->high)
        return 0;
    uint64_t k = d->high - serial;
    int seen = k == 0 || (k <= RN_CHAN__DUP_WINDOW
                          && (d->bits[(k - 1) / 64] >> ((k - 1) % 64) & 1));
    if (seen)
        dup_touch(t, i);   /* a sender still retrying is a live session */
    return seen;
}

/* Move every bit of the window n places up (towards older serials). */
static void bits_shift(uint64_t *w, uint64_t n)
{
    if (n >= RN_CHAN__DUP_WINDOW) {
        memset(w, 0, RN_CHAN__DUP_WORDS * sizeof *w);
        return;
    }
    size_t ws = (size_t)(n / 64);
    unsigned bs = (unsigned)(n % 64);
    for (size_t i = RN_CHAN__DUP_WORDS; i-- > 0; ) {
        uint64_t v = 0;
        if (i >= ws) {
            v = w[i - ws] << bs;
            if (bs && i >= ws + 1)
                v |= w[i - ws - 1] >> (64 - bs);
        }
        w[i] = v;
    }
}

/* Remember (session, serial). A serial more than the window below the
 * highest is not remembered: too old to tell, it counts as new. */
void rn_chan__dup_mark(rn_chan__duptab *t, uint64_t session, uint64_t serial)
{
    int32_t i = rn_chan__dup_get(t, session, serial);
    rn_chan__dupent *d = &t->e[i];
    if (serial > d->high) {
        uint64_t n = serial - d->high;
        bits_shift(d->bits, n);
        if (n <= RN_CHAN__DUP_WINDOW)
            d->bits[(n - 1) / 64] |= 1ULL << ((n - 1) % 64);
        d->high = serial;
    } else if (serial < d->high && d->high - serial <= RN_CHAN__DUP_WINDOW) {
        uint64_t k = d->high - serial - 1;
        d->bits[k / 64] |= 1ULL << (k % 64);
    }
}

/* ---- the channel ------------------------------------------------------- */

static const char *name_of(const rn_chan *c)
{
    return c->file ? c->dir : "memory channel";
}

/* Room for one more record, so that nothing can fail after a write. */
int rn_chan__ring_reserve(rn_chan *c)
{
    if (c->rn < c->rcap)
        return 0;
    size_t cap = c->rcap ? c->rcap * 2 : 1024;
    rn_chan__rec *r = malloc(cap * sizeof *r);
    if (!r)
        return RN_ENOMEM;
    for (size_t i = 0; i < c->rn; i++)
        r[i] = *rn_chan__ring_at(c, i);
    free(c->ring);
    c->ring = r;
    c->rcap = cap;
    c->rhead = 0;
    return 0;
}

void rn_chan__ring_push(rn_chan *c, const rn_chan__rec *r)
{
    *rn_chan__ring_at(c, c->rn) = *r;
    c->rn++;
    c->pending += r->count;
    c->pending_bytes += r->len;
    c->cum += r->count;
}

static int has_room(const rn_chan *c, uint32_t count, size_t len)
{
    return c->pending == 0
        || (c->pending + count <= c->capacity && c->pending_bytes + len <= c->max_bytes);
}

/* The callbacks to run once the state is updated. They run under the lock,
 * so that once rn_chan_on_avail(..., NULL) has returned the old callback is
 * never called again (a sink may then close the handle it pokes); they must
 * be cheap and must not call into the channel (uv_async_send). */
typedef struct calls {
    size_t n;
    void (*fn[RN_CHAN_MAX_SINKS + 1])(void *);
    void *arg[RN_CHAN_MAX_SINKS + 1];
} calls;

static void calls_add(calls *k, void (*fn)(void *), void *arg)
{
    if (fn) {
        k->fn[k->n] = fn;
        k->arg[k->n++] = arg;
    }
}

static void calls_run(const calls *k)
{
    for (size_t i = 0; i < k->n; i++)
        k->fn[i](k->arg[i]);
}

/* ---- open and close ------------------------------------------------------ */

static void chan_free(rn_chan *c)
{
    for (size_t i = 0; i < c->rn; i++)
        if (!c->file)
            free(rn_chan__ring_at(c, i)->at.p);
    free(c->ring);
    rn_wal__close(c);
    if (c->sinks) {
        for (size_t i = 0; i < c->nsinks; i++) {
            free(c->sinks[i].name);
            free(c->sinks[i].plan);
            pthread_mutex_destroy(&c->sinks[i].take_mu);
        }
        free(c->sinks);
    }
    dup_free(&c->dup);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->sync_mu);
    pthread_mutex_destroy(&c->ckpt_mu);
    pthread_cond_destroy(&c->avail);
    pthread_cond_destroy(&c->room);
    free(c);
}

rn_chan *rn_chan_open(const rn_chan_opts *o, char *err)
{
    const char *where = o->dir ? o->dir : "memory channel";
    if (o->nsinks < 1 || o->nsinks > RN_CHAN_MAX_SINKS) {
        rn_seterr(err, "%s: %zu sinks (1 to %d)", where, o->nsinks, RN_CHAN_MAX_SINKS);
        return NULL;
    }
    for (size_t i = 0; o->sink_names && i < o->nsinks; i++) {
        const char *n = o->sink_names[i];
        if (!n || !*n || strlen(n) > 255) {
            rn_seterr(err, "%s: sink %zu: a name must have 1 to 255 bytes", where, i);
            return NULL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(o->sink_names[j], n) == 0) {
                rn_seterr(err, "%s: sink name '%s' given twice", where, n);
                return NULL;
            }
    }
    if (o->dir && !*o->dir) {
        rn_seterr(err, "empty channel directory name");
        return NULL;
    }

    rn_chan *c = calloc(1, sizeof *c);
    if (!c) {
        rn_seterr(err, "%s: out of memory", where);
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* take's timeout */
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->sync_mu, NULL);
    pthread_mutex_init(&c->ckpt_mu, NULL);
    pthread_cond_init(&c->avail, &ca);
    pthread_cond_init(&c->room, NULL);
    pthread_condattr_destroy(&ca);
    c->dirfd = c->lockfd = -1;
    c->file = o->dir != NULL;
    c->capacity = o->capacity ? o->capacity : DEF_CAPACITY;
    c->max_bytes = o->max_bytes ? o->max_bytes : c->file ? DEF_FILE_BYTES : DEF_MEM_BYTES;
    c->segment_bytes = o->segment_bytes ? o->segment_bytes : DEF_SEGMENT;
    c->written = 1;   /* so that 0 is below every ticket */
    c->nsinks = o->nsinks;
    if (!(c->sinks = calloc(o->nsinks, sizeof *c->sinks)))
        goto nomem;
    for (size_t i = 0; i < o->nsinks; i++)
        pthread_mutex_init(&c->sinks[i].take_mu, NULL);
    for (size_t i = 0; i < o->nsinks; i++) {
        char def[32];
        snprintf(def, sizeof def, "sink%zu", i);
        if (!(c->sinks[i].name = strdup(o->sink_names ? o->sink_names[i] : def)))
            goto nomem;
    }
    if (dup_init(&c->dup) < 0 || rn_chan__ring_reserve(c) < 0)
        goto nomem;
    if (c->file) {
        if (!(c->dir = strdup(o->dir)))
            goto nomem;
        if (rn_wal__recover(c, o, err) < 0)
            goto fail;
    }
    return c;
nomem:
    rn_seterr(err, "%s: out of memory", where);
fail:
    chan_free(c);
    return NULL;
}

int rn_chan_close(rn_chan *c, char *err)
{
    if (!c)
        return 0;
    int r = c->file ? rn_chan_checkpoint(c, err) : 0;
    chan_free(c);
    return r;
}

/* ---- putting -------------------------------------------------------------- */

int rn_chan_put(rn_chan *c, const char *events, size_t len, uint32_t count,
                uint64_t session, uint64_t serial, int wait, uint64_t *ticket,
                char *err)
{
    char *copy = NULL;
    calls k = { 0 };
    if (count == 0)
        return rn_seterr(err, "%s: a record needs at least one event", name_of(c));
    if (len > RN_CHAN__MAX_LEN)
        return rn_seterr(err, "%s: a record of %zu bytes is too large (at most %u)",
                         name_of(c), len, RN_CHAN__MAX_LEN);
    if (!c->file) {
        /* Copied before the lock is taken: memcpy needs no lock. */
        if (!(copy = malloc(len ? len : 1)))
            return rn_seterr(err, "%s: out of memory", name_of(c));
        if (len)
            memcpy(copy, events, len);
    }
    pthread_mutex_lock(&c->mu);
    int r;
    for (;;) {
        if (c->shutdown) {
            r = RN_CHAN_CLOSED;
            break;
        }
        /* Checked again after every wait: the same batch may have come in
         * on another connection meanwhile. */
        if (session && dup_seen(&c->dup, session, serial)) {
            c->duplicates += count;
            if (ticket)
                *ticket = c->written;
            r = RN_CHAN_DUP;
            break;
        }
        if (has_room(c, count, len)) {
            r = 0;
            break;
        }
        if (!wait) {
            c->space_wanted = 1;
            r = RN_CHAN_FULL;
            break;
        }
        c->put_waiters++;
        pthread_cond_wait(&c->room, &c->mu);
        c->put_waiters--;
    }
    if (r == 0) {
        rn_chan__rec rc = { .seq = c->next_seq, .count = count, .len = (uint32_t)len };
        if (rn_chan__ring_reserve(c) < 0)
            r = rn_seterr(err, "%s: out of memory", name_of(c));
        else if (c->file)
            r = rn_wal__append(c, events, len, count, session, serial, &rc, err);
        else
            rc.at.p = copy;
        if (r == RN_CHAN_NOSPACE)
            c->space_wanted = 1;    /* rn_chan_done may make room */
        if (r == 0) {
            copy = NULL;
            rn_chan__ring_push(c, &rc);
            c->next_seq += count;
            c->in += count;
            c->written += RN_WAL__REC_HDR + len;
            if (ticket)
                *ticket = c->written;
            if (session)
                rn_chan__dup_mark(&c->dup, session, serial);
            if (c->take_waiters)
                pthread_cond_broadcast(&c->avail);
            for (size_t i = 0; i < c->nsinks; i++)
                calls_add(&k, c->sinks[i].avail_fn, c->sinks[i].avail_arg);
        }
    }
    calls_run(&k);
    pthread_mutex_unlock(&c->mu);
    free(copy);
    return r;
}

int rn_chan_sync(rn_chan *c, uint64_t *synced, char *err)
{
    if (c->file)
        return rn_wal__sync(c, synced, err);
    uint64_t w = rn_chan_written(c);
    if (synced)
        *synced = w;
    return 0;
}

uint64_t rn_chan_written(rn_chan *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t w = c->written;
    pthread_mutex_unlock(&c->mu);
    return w;
}

void rn_chan_on_space(rn_chan *c, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&c->mu);
    c->space_fn = fn;
    c->space_arg = arg;
    pthread_mutex_unlock(&c->mu);
}

/* ---- taking ------------------------------------------------------------- */

static int plan_reserve(rn_chan__cursor *s, size_t n)
{
    if (n <= s->plan_cap)
        return 0;
    size_t cap = s->plan_cap ? s->plan_cap : 64;
    while (cap < n)
        cap *= 2;
    rn_wal__plan *p = realloc(s->plan, cap * sizeof *p);
    if (!p)
        return RN_ENOMEM;
    s->plan = p;
    s->plan_cap = cap;
    return 0;
}

int rn_chan_take(rn_chan *c, size_t si, uint32_t max_events, int64_t wait_ns,
                 rn_chan_batch *b, char *err)
{
    if (si >= c->nsinks)
        return rn_seterr(err, "%s: no sink %zu", name_of(c), si);
    rn_chan__cursor *s = &c->sinks[si];
    struct timespec until;
    if (wait_ns > 0) {
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t ns = until.tv_nsec + wait_ns % 1000000000;
        until.tv_sec += (time_t)(wait_ns / 1000000000 + ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
    }
    pthread_mutex_lock(&s->take_mu);
    pthread_mutex_lock(&c->mu);
    int timed_out = 0;
    while (s->rno == c->head_no + c->rn) {
        if (c->shutdown || wait_ns == 0 || timed_out) {
            pthread_mutex_unlock(&c->mu);
            pthread_mutex_unlock(&s->take_mu);
            return 0;
        }
        c->take_waiters++;
        if (wait_ns < 0)
            pthread_cond_wait(&c->avail, &c->mu);
        else
            timed_out = pthread_cond_timedwait(&c->avail, &c->mu, &until) == ETIMEDOUT;
        c->take_waiters--;
    }
    size_t first = (size_t)(s->rno - c->head_no), n = 0;
    uint64_t events = 0, bytes = 0;
    while (first + n < c->rn) {
        const rn_chan__rec *r = rn_chan__ring_at(c, first + n);
        if (n > 0 && events + r->count > max_events)
            break;
        events += r->count;
        bytes += r->len;
        n++;
    }
    const rn_chan__rec *r0 = rn_chan__ring_at(c, first), *rl = rn_chan__ring_at(c, first + n - 1);
    b->seq = r0->seq;
    b->end = rl->seq + rl->count;
    b->count = (uint32_t)(events > UINT32_MAX ? UINT32_MAX : events);
    b->events.len = 0;
    int ret = 1;
    if (!c->file) {
        if (bytes > SIZE_MAX || rn_buf_reserve(&b->events, (size_t)bytes) < 0) {
            ret = rn_seterr(err, "%s: out of memory", name_of(c));
        } else {
            for (size_t i = 0; i < n; i++) {
                const rn_chan__rec *r = rn_chan__ring_at(c, first + i);
                memcpy(b->events.p + b->events.len, r->at.p, r->len);
                b->events.len += r->len;
            }
        }
    } else {
        /* The payloads are read without the lock. The records cannot leave
         * meanwhile (this sink's done cursor is below them until the cursor
         * moves, after the read), so neither can their segments. */
        if (plan_reserve(s, n) < 0) {
            ret = rn_seterr(err, "%s: out of memory", name_of(c));
        } else {
            for (size_t i = 0; i < n; i++) {
                const rn_chan__rec *r = rn_chan__ring_at(c, first + i);
                const rn_wal__seg *g = &c->segs[r->seg - c->seg_first];
                s->plan[i] = (rn_wal__plan){ .fd = g->fd, .base = g->base, .off = r->at.off,
                                             .seq = r->seq, .count = r->count, .len = r->len };
            }
            pthread_mutex_unlock(&c->mu);
            ret = rn_wal__read(c, s->plan, n, &b->events, err) < 0 ? RN_ERR : 1;
            pthread_mutex_lock(&c->mu);
        }
    }
    if (ret == 1) {
        s->rno += n;
        s->rseq = b->end;
        s->rcum += events;
    }
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&s->take_mu);
    return ret;
}

void rn_chan_done(rn_chan *c, size_t si, uint64_t end)
{
    calls k = { 0 };
    if (si >= c->nsinks)
        return;
    pthread_mutex_lock(&c->mu);
    rn_chan__cursor *s = &c->sinks[si];
    if (end > s->rseq)
        end = s->rseq;    /* never past what it took */
    if (end > s->done) {
        s->done = end;
        uint64_t low = UINT64_MAX;
        for (size_t i = 0; i < c->nsinks; i++)
            if (c->sinks[i].done < low)
                low = c->sinks[i].done;
        size_t left = 0;
        while (c->rn) {
            rn_chan__rec *r = rn_chan__ring_at(c, 0);
            if (r->seq + r->count > low)
                break;
            c->pending -= r->count;
            c->pending_bytes -= r->len;
            if (!c->file)
                free(r->at.p);
            c->rhead = (c->rhead + 1) & (c->rcap - 1);
            c->rn--;
            c->head_no++;
            left++;
        }
        if (left) {
            if (c->put_waiters)
                pthread_cond_broadcast(&c->room);
            if (c->space_wanted && c->space_fn) {
                c->space_wanted = 0;
                calls_add(&k, c->space_fn, c->space_arg);
            }
        }
    }
    calls_run(&k);
    pthread_mutex_unlock(&c->mu);
}

void rn_chan_on_avail(rn_chan *c, size_t sink, void (*fn)(void *arg), void *arg)
{
    if (sink >= c->nsinks)
        return;
    pthread_mutex_lock(&c->mu);
    c->sinks[sink].avail_fn = fn;
    c->sinks[sink].avail_arg = arg;
    pthread_mutex_unlock(&c->mu);
}

void rn_chan_shutdown(rn_chan *c)
{
    calls k = { 0 };
    pthread_mutex_lock(&c->mu);
    c->shutdown = 1;
    pthread_cond_broadcast(&c->avail);
    pthread_cond_broadcast(&c->room);
    for (size_t i = 0; i < c->nsinks; i++)
        calls_add(&k, c->sinks[i].avail_fn, c->sinks[i].avail_arg);
    /* A putter waiting in an event loop learns of it by trying again. */
    if (c->space_wanted) {
        c->space_wanted = 0;
        calls_add(&k, c->space_fn, c->space_arg);
    }
    calls_run(&k);
    pthread_mutex_unlock(&c->mu);
}

/* ---- state --------------------------------------------------------------- */

int rn_chan_checkpoint(rn_chan *c, char *err)
{
    return c->file ? rn_wal__checkpoint(c, err) : 0;
}

void rn_chan_get_stats(rn_chan *c, rn_chan_stats *st)
{
    pthread_mutex_lock(&c->mu);
    st->in = c->in;
    st->duplicates = c->duplicates;
    st->pending = c->pending;
    st->pending_bytes = c->pending_bytes;
    st->recovered = c->recovered;
    st->next_seq = c->next_seq;
    st->capacity = c->capacity;
    st->max_bytes = c->max_bytes;
    pthread_mutex_unlock(&c->mu);
}

uint64_t rn_chan_lag(rn_chan *c, size_t sink)
{
    if (sink >= c->nsinks)
        return 0;
    pthread_mutex_lock(&c->mu);
    uint64_t lag = c->cum - c->sinks[sink].rcum;
    pthread_mutex_unlock(&c->mu);
    return lag;
}

