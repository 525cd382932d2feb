/* agent.c -- chanbuf's agent: sources into the channel, acknowledgements
 * after the channel commit, the sinks, and the stop (see chan.h).
 *
 * Threads: the event loop (the hop server, timers, acknowledgements), one
 * thread reading standard input when there is no listener, one thread per
 * sink, and libuv's pool for fsync. The channel is the only state they share
 * (it has its own lock); the stdin thread and the sinks reach the loop only
 * through uv_async handles. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan/chan.h"
#include "hop/hop.h"

typedef struct pending_ack {
    uint64_t conn, serial, ticket;
    int status;
} pending_ack;

struct rn_agent {
    uv_loop_t *loop;
    rn_agent_opts o;
    rn_chan *chan;
    rn_sink *sinks[RN_CHAN_MAX_SINKS];
    rn_sink_filter filters[RN_CHAN_MAX_SINKS];
    rn_hop_server *server;

    uv_async_t space_async, fail_async, stdin_async;
    uv_timer_t ckpt_timer, sync_timer, drain_timer;
    uv_work_t sync_work, ckpt_work;
    int syncing, sync_again, sync_failed;
    int ckpting, ckpt_failed;   /* a checkpoint runs in the pool; it failed */
    char ckpt_err[RN_ERRLEN];
    uint64_t synced;
    char sync_err[RN_ERRLEN];

    pending_ack *acks;          /* waiting for an fsync, in order */
    size_t nacks, capacks;

    pthread_t stdin_thread;
    int stdin_started;
    int stop_pipe[2];
    int stdin_done;             /* atomic: the stdin thread has ended */

    int stopping;               /* 1 draining, 2 finishing, 3 closed */
    int64_t deadline;           /* 0: none (the end of input) */
    uint64_t last_pending;      /* file channel: a drain that makes no */
    int64_t last_progress;      /* progress for a second gives up */
    int status;
    int failed_sink;            /* atomic: a sink stopped for good: its status */
    uint64_t dropped;           /* atomic: the stdin thread counts too */
    int full_said;              /* atomic: "disk full" said, "room again" not yet */
    int ckpt_said;              /* a failed checkpoint was said */
};

/* The warnings of the channel, the sinks and the hop server, to the owner's. */
static void pass_warn(void *data, const char *msg)
{
    rn_agent *a = data;
    rn_warn_to(a->o.on_warn, a->o.data, "%s", msg);
}

/* A full disk is said once, and so is the room coming back. */
static void say_full(rn_agent *a, const char *err)
{
    if (!__atomic_exchange_n(&a->full_said, 1, __ATOMIC_ACQ_REL))
        rn_warn_to(a->o.on_warn, a->o.data, "%s; disk full: holding input until there is "
                   "room (trying again 4 times a second)", err);
}

static void say_room(rn_agent *a)
{
    if (__atomic_load_n(&a->full_said, __ATOMIC_ACQUIRE)
        && __atomic_exchange_n(&a->full_said, 0, __ATOMIC_ACQ_REL))
        rn_warn_to(a->o.on_warn, a->o.data, "%s: room on disk again; taking input", a->o.dir);
}

/* ---- routes ------------------------------------------------------------- */

int rn_route_parse(const char *arg, const rn_sink_spec *sinks, size_t nsinks, rn_route *r,
                   char **keep, char *err)
{
    char *s = strdup(arg);
    if (!s)
        return rn_seterr(err, "out of memory");
    char *eq = strchr(s, '=');
    if (!eq || eq == s) {
        free(s);
        return rn_seterr(err, "--route %s: not HEADER=VALUE:SINK", arg);
    }
    *eq = '\0';
    /* VALUE:SINK, where SINK is a sink's name, which may itself hold ':' */
    for (char *c = strchr(eq + 1, ':'); c; c = strchr(c + 1, ':')) {
        for (size_t i = 0; i < nsinks; i++) {
            if (strcmp(c + 1, sinks[i].name) == 0) {
                *c = '\0';
                r->header = s;
                r->value = eq + 1;
                r->sink = sinks[i].name;
                *keep = s;
                return 0;
            }
        }
    }
    free(s);
    return rn_seterr(err, "--route %s: no sink of that name (name a sink with "
                     "--sink NAME=URI)", arg);
}

static int build_filters(rn_agent *a, char *err)
{
    const rn_agent_opts *o = &a->o;
    if (!o->nroutes)
        return 0;
    const char **all = calloc(o->nroutes, sizeof *all);
    if (!all)
        return rn_seterr(err, "out of memory");
    for (size_t i = 0; i < o->nroutes; i++) {
        if (strcmp(o->routes[i].header, o->routes[0].header) != 0) {
            free(all);
            return rn_seterr(err, "--route: every route must use the same header "
                             "('%s' and '%s')", o->routes[0].header, o->routes[i].header);
        }
        all[i] = o->routes[i].value;
    }
    for (size_t k = 0; k < o->nsinks; k++) {
        rn_sink_filter *f = &a->filters[k];
        f->header = o->routes[0].header;
        f->all = all;
        f->nall = o->nroutes;
        f->vals = calloc(o->nroutes, sizeof *f->vals);
        if (!f->vals)
            return rn_seterr(err, "out of memory");
        for (size_t i = 0; i < o->nroutes; i++)
            if (strcmp(o->routes[i].sink, o->sinks[k].name) == 0)
                f->vals[f->nvals++] = o->routes[i].value;
        f->is_default = f->nvals == 0;
    }
    return 0;
}

/* ---- acknowledgements after fsync ------------------------------------------ */

static void start_sync(rn_agent *a);

static void sync_in_pool(uv_work_t *w)
{
    rn_agent *a = w->data;
    a->sync_failed = rn_chan_sync(a->chan, &a->synced, a->sync_err) < 0;
}

static void ack_synced(rn_agent *a)
{
    size_t i = 0;
    for (; i < a->nacks && a->acks[i].ticket <= a->synced; i++)
        rn_hop_server_ack(a->server, a->acks[i].conn, a->acks[i].serial, a->acks[i].status);
    if (i == 0)
        return;     /* (acks may be NULL: memmove must not see it) */
    memmove(a->acks, a->acks + i, (a->nacks - i) * sizeof *a->acks);
    a->nacks -= i;
}

static void finish(rn_agent *a);

static void sync_done(uv_work_t *w, int status)
{
    rn_agent *a = w->data;
    (void)status;
    a->syncing = 0;
    if (a->sync_failed) {
        /* The batches waiting are not known to be on disk: the senders try
         * again, and so does the next sync. */
        rn_warn_to(a->o.on_warn, a->o.data, "%s", a->sync_err);
        for (size_t i = 0; i < a->nacks; i++)
            rn_hop_server_nack(a->server, a->acks[i].conn, a->acks[i].serial, a->sync_err);
        a->nacks = 0;
    } else if (a->server) {
        ack_synced(a);
    }
    if (a->stopping == 2) {
        finish(a);
        return;
    }
    if (a->sync_again || a->nacks) {
        a->sync_again = 0;
        start_sync(a);
    }
}

static void start_sync(rn_agent *a)
{
    if (!a->o.dir)
        return;
    if (a->syncing) {
        a->sync_again = 1;
        return;
    }
    a->syncing = 1;
    a->sync_work.data = a;
    uv_queue_work(a->loop, &a->sync_work, sync_in_pool, sync_done);
}

static void on_sync_timer(uv_timer_t *h)
{
    start_sync(h->data);
}

static int ack_later(rn_agent *a, uint64_t conn, uint64_t serial, int status, uint64_t ticket)
{
    if (!a->o.dir || !a->o.fsync_always) {
        rn_hop_server_ack(a->server, conn, serial, status);
        return 0;
    }
    if (a->nacks == a->capacks) {
        size_t cap = a->capacks ? 2 * a->capacks : 64;
        pending_ack *p = realloc(a->acks, cap * sizeof *p);
        if (!p)
            return RN_ENOMEM;
        a->acks = p;
        a->capacks = cap;
    }
    a->acks[a->nacks++] = (pending_ack){ conn, serial, ticket, status };
    start_sync(a);
    return 0;
}

/* ---- the hop source -------------------------------------------------------- */

static int on_batch(void *data, const rn_hop_batch *b)
{
    rn_agent *a = data;
    char err[RN_ERRLEN];
    uint64_t ticket = 0;
    if (b->count == 0) {
        /* Nothing to store: stored. A NACK would have it sent for ever.
         * Acknowledged after the batches before it on the connection. */
        if (ack_later(a, b->conn, b->serial, RN_HOP_STORED, rn_chan_written(a->chan)) < 0)
            rn_hop_server_nack(a->server, b->conn, b->serial, "out of memory");
        return RN_HOP_TAKEN;
    }
    int r = rn_chan_put(a->chan, b->events, b->len, b->count, b->session, b->serial, 0,
                        &ticket, err);
    switch (r) {
    case RN_CHAN_NOSPACE:
        /* Held (not acknowledged): the sender keeps it; on_ckpt_timer
         * offers it again once the checkpoint has freed what it can. */
        say_full(a, err);
        return RN_HOP_BUSY;
    case 0:
        say_room(a);
        /* fall through */
    case RN_CHAN_DUP:
        if (ack_later(a, b->conn, b->serial, r ? RN_HOP_DUPLICATE : RN_HOP_STORED, ticket) < 0)
            rn_hop_server_nack(a->server, b->conn, b->serial, "out of memory");
        break;
    case RN_CHAN_FULL:
        if (!a->o.drop)
            return RN_HOP_BUSY;
        __atomic_add_fetch(&a->dropped, b->count, __ATOMIC_RELAXED);
        rn_hop_server_ack(a->server, b->conn, b->serial, RN_HOP_DROPPED);
        break;
    case RN_CHAN_CLOSED:
        rn_hop_server_nack(a->server, b->conn, b->serial, "shutting down");
        break;
    default:
        rn_warn_to(a->o.on_warn, a->o.data, "%s", err);
        rn_hop_server_nack(a->server, b->conn, b->serial, err);
    }
    return RN_HOP_TAKEN;
}

static void on_space_async(uv_async_t *h)
{
    rn_agent *a = h->data;
    if (a->server && !a->stopping)
        rn_hop_server_resume(a->server);
}

static void chan_space(void *arg)
{
    rn_agent *a = arg;
    uv_async_send(&a->space_async);
}

/* ---- the stdin source ------------------------------------------------------- */

/* Wait up to ms for the stop; 1 when the agent is stopping. */
static int stdin_pause(rn_agent *a, int ms)
{
    struct pollfd p = { a->stop_pipe[0], POLLIN, 0 };
    if (poll(&p, 1, ms) < 0 && errno != EINTR)
        return __atomic_load_n(&a->stopping, __ATOMIC_ACQUIRE) != 0;
    return p.revents || __atomic_load_n(&a->stopping, __ATOMIC_ACQUIRE);
}

/* Put the batch and empty it; 0, or 1 when the agent is stopping. A batch
 * that cannot be stored (a full disk, a failed write) is tried again until
 * it is; a stop meanwhile is a failure (status 1): the events were read and
 * not stored. */
static int stdin_put(rn_agent *a, rn_batch *b)
{
    char err[RN_ERRLEN];
    if (!b->count)
        return 0;
    int r;
    for (;;) {
        r = rn_chan_put(a->chan, b->buf.p, b->buf.len, b->count, 0, 0, !a->o.drop, NULL, err);
        if (r >= 0 && r != RN_CHAN_NOSPACE)
            break;
        if (r == RN_CHAN_NOSPACE)
            say_full(a, err);
        else
            rn_warn_to(a->o.on_warn, a->o.data, "%s; trying again in a second", err);
        if (stdin_pause(a, r == RN_CHAN_NOSPACE ? 250 : 1000)) {
            rn_warn_to(a->o.on_warn, a->o.data, "%u events read from standard input were "
                       "not stored", b->count);
            a->status = 1;
            return 1;
        }
    }
    if (r == 0)
        say_room(a);
    if (r == RN_CHAN_FULL)
        __atomic_add_fetch(&a->dropped, b->count, __ATOMIC_RELAXED);
    if (r == RN_CHAN_CLOSED && a->o.dir) {
        /* Stopped while waiting for room: read, and not kept for the next run. */
        rn_warn_to(a->o.on_warn, a->o.data, "%u events read from standard input were not "
                   "stored", b->count);
        a->status = 1;
    }
    rn_batch_reset(b);
    if (r == RN_CHAN_CLOSED)
        return 1;
    if (a->o.dir && a->o.fsync_always && rn_chan_sync(a->chan, NULL, err) < 0)
        rn_warn_to(a->o.on_warn, a->o.data, "%s", err);
    return 0;
}

static void *stdin_run(void *arg)
{
    rn_agent *a = arg;
    char err[RN_ERRLEN];
    rn_decoder *d = rn_decoder_new(RN_FMT_AUTO, 0);
    char *buf = malloc(1 << 16);
    rn_batch b = { 0 };
    int eof = 0;

    if (!d || !buf) {
        rn_warn_to(a->o.on_warn, a->o.data, "out of memory");
        a->status = 1;
        goto out;
    }
    while (!eof) {
        struct pollfd p[2] = { { 0, POLLIN, 0 }, { a->stop_pipe[0], POLLIN, 0 } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        ssize_t n = read(0, buf, 1 << 16);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            rn_warn_to(a->o.on_warn, a->o.data, "stdin: read: %s", strerror(errno));
            a->status = 1;
            break;
        }
        if (n == 0) {
            rn_decoder_eof(d);
            eof = 1;
        } else if (rn_decoder_feed(d, buf, (size_t)n, err) < 0) {
            rn_warn_to(a->o.on_warn, a->o.data, "stdin: %s", err);
            a->status = 1;
            break;
        }
        rn_event ev;
        int r;
        while ((r = rn_decoder_next(d, &ev, err)) == 1) {
            if (rn_batch_add(&b, &ev) < 0) {
                rn_warn_to(a->o.on_warn, a->o.data, "out of memory");
                a->status = 1;
                goto out;
            }
            if (b.count >= a->o.batch || b.buf.len >= RN_HOP_MAX_BATCH_BYTES)
                if (stdin_put(a, &b) != 0)
                    goto out;
        }
        if (r < 0) {
            stdin_put(a, &b);
            rn_warn_to(a->o.on_warn, a->o.data, "stdin: %s", err);
            a->status = 1;
            break;
        }
        if (stdin_put(a, &b) != 0)
            break;
    }
out:
    rn_decoder_free(d);
    free(buf);
    rn_batch_free(&b);
    __atomic_store_n(&a->stdin_done, 1, __ATOMIC_RELEASE);
    uv_async_send(&a->stdin_async);
    return NULL;
}

/* ---- stopping ------------------------------------------------------------ */

static void begin_stop(rn_agent *a, int64_t deadline);

static void on_stdin_async(uv_async_t *h)
{
    rn_agent *a = h->data;
    if (!a->stopping)
        begin_stop(a, 0);       /* the end of input: deliver everything */
}

static void on_fail_async(uv_async_t *h)
{
    rn_agent *a = h->data;
    int st = __atomic_load_n(&a->failed_sink, __ATOMIC_ACQUIRE);
    if (st && st != RN_EPIPE)
        a->status = 1;
    if (a->stopping < 2) {
        begin_stop(a, -1);
        finish(a);
    }
}

static void sink_failed(void *data, rn_sink *s, int status)
{
    rn_agent *a = data;
    (void)s;
    __atomic_store_n(&a->failed_sink, status, __ATOMIC_RELEASE);
    uv_async_send(&a->fail_async);
}

static void on_drain_timer(uv_timer_t *h)
{
    rn_agent *a = h->data;
    rn_chan_stats st;
    rn_chan_get_stats(a->chan, &st);
    int input_left = a->stdin_started && !__atomic_load_n(&a->stdin_done, __ATOMIC_ACQUIRE);
    int64_t now = rn_mono_ns();
    if (st.pending != a->last_pending || !a->last_progress) {
        a->last_pending = st.pending;
        a->last_progress = now;
    }
    /* A file channel keeps what is left for the next run: once the sinks
     * stop making progress, waiting longer only delays the stop. */
    int stalled = a->o.dir && a->deadline && now - a->last_progress >= 1000000000;
    if ((st.pending == 0 && a->nacks == 0 && !input_left)
        || (a->deadline && now >= a->deadline) || stalled)
        finish(a);
}

static void begin_stop(rn_agent *a, int64_t deadline)
{
    if (a->stopping)
        return;
    __atomic_store_n(&a->stopping, 1, __ATOMIC_RELEASE);
    a->deadline = deadline;
    if (a->server)
        rn_hop_server_stop_input(a->server);
    if (a->stdin_started) {
        char c = 0;
        if (write(a->stop_pipe[1], &c, 1) < 0) { /* the thread is gone already */ }
    }
    uv_timer_start(&a->drain_timer, on_drain_timer, 0, 20);
}

void rn_agent_stop(rn_agent *a)
{
    if (a->stopping == 1 && a->deadline) {
        finish(a);      /* asked twice: do not wait */
        return;
    }
    if (a->stopping == 1) {
        a->deadline = rn_mono_ns() + a->o.drain_ns;
        return;
    }
    begin_stop(a, rn_mono_ns() + a->o.drain_ns);
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

/* Stop the sinks, sync and answer the last batches, close every handle. */
static void finish(rn_agent *a)
{
    if (a->stopping >= 2 && !(a->stopping == 2 && !a->syncing && !a->ckpting))
        return;
    if (a->stopping < 2) {
        a->stopping = 2;
        uv_timer_stop(&a->drain_timer);
        rn_chan_shutdown(a->chan);
        for (size_t i = 0; i < a->o.nsinks; i++)
            if (a->sinks[i])
                rn_sink_stop(a->sinks[i]);
        for (size_t i = 0; i < a->o.nsinks; i++)
            rn_sink_join(a->sinks[i]);
        if (a->stdin_started) {
            pthread_join(a->stdin_thread, NULL);
            a->stdin_started = 0;
        }
        if (a->syncing || a->ckpting)
            return;         /* sync_done or ckpt_done calls again */
    }
    if (a->o.dir && a->nacks) {
        char err[RN_ERRLEN];
        if (rn_chan_sync(a->chan, &a->synced, err) < 0)
            rn_warn_to(a->o.on_warn, a->o.data, "%s", err);
        else
            ack_synced(a);
    }
    a->stopping = 3;
    rn_chan_stats st;
    rn_chan_get_stats(a->chan, &st);
    if (st.pending && !a->o.dir) {
        rn_warn_to(a->o.on_warn, a->o.data,
                   "%" PRIu64 " events in the memory channel were not delivered", st.pending);
        /* Accepted and lost: not a success, unless a closed standard output
         * (a reader that went away, as head does) was the reason to stop. */
        if (__atomic_load_n(&a->failed_sink, __ATOMIC_ACQUIRE) != RN_EPIPE)
            a->status = 1;
    } else if (st.pending)
        rn_warn_to(a->o.on_warn, a->o.data, "%" PRIu64 " events stay in %s for the next run",
                   st.pending, a->o.dir);
    if (a->server)
        rn_hop_server_close(a->server);
    uv_close((uv_handle_t *)&a->space_async, on_closed);
    uv_close((uv_handle_t *)&a->fail_async, on_closed);
    uv_close((uv_handle_t *)&a->stdin_async, on_closed);
    uv_close((uv_handle_t *)&a->ckpt_timer, on_closed);
    uv_close((uv_handle_t *)&a->sync_timer, on_closed);
    uv_close((uv_handle_t *)&a->drain_timer, on_closed);
}

/* The checkpoint runs in the pool, as the fsyncs do: its own fsyncs (the
 * segments, the file, the directory: 10-30 ms here) held up every hop
 * connection on the loop thread, four times a second. The channel allows it
 * beside puts, takes and a sync (wal.c). */
static void ckpt_in_pool(uv_work_t *w)
{
    rn_agent *a = w->data;
    a->ckpt_failed = rn_chan_checkpoint(a->chan, a->ckpt_err) < 0;
}

static void ckpt_done(uv_work_t *w, int status)
{
    rn_agent *a = w->data;
    (void)status;
    a->ckpting = 0;
    if (a->ckpt_failed) {
        if (!a->ckpt_said)      /* said again only after one has succeeded */
            rn_warn_to(a->o.on_warn, a->o.data, "%s", a->ckpt_err);
        a->ckpt_said = 1;
    } else {
        a->ckpt_said = 0;
    }
    if (a->stopping == 2) {
        finish(a);
        return;
    }
    /* A hop batch held for a full disk is tried again. */
    if (__atomic_load_n(&a->full_said, __ATOMIC_ACQUIRE) && a->server && !a->stopping)
        rn_hop_server_resume(a->server);
}

static void on_ckpt_timer(uv_timer_t *h)
{
    rn_agent *a = h->data;
    if (a->ckpting || a->stopping >= 2)
        return;                 /* the next tick saves what this one would */
    a->ckpting = 1;
    a->ckpt_work.data = a;
    if (uv_queue_work(a->loop, &a->ckpt_work, ckpt_in_pool, ckpt_done) < 0)
        a->ckpting = 0;
}

/* ---- public ------------------------------------------------------------- */

rn_agent *rn_agent_new(uv_loop_t *loop, const rn_agent_opts *o, char *err)
{
    rn_agent *a = calloc(1, sizeof *a);
    const char *names[RN_CHAN_MAX_SINKS];
    if (!a) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    a->loop = loop;
    a->o = *o;
    a->stop_pipe[0] = a->stop_pipe[1] = -1;
    if (!a->o.batch)
        a->o.batch = 1000;
    if (o->nsinks < 1 || o->nsinks > RN_CHAN_MAX_SINKS) {
        rn_seterr(err, "between 1 and %d sinks", RN_CHAN_MAX_SINKS);
        goto err;
    }
    for (size_t i = 0; i < o->nsinks; i++) {
        names[i] = o->sinks[i].name;
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0) {
                rn_seterr(err, "two sinks named '%s' (name them: --sink NAME=URI)", names[i]);
                goto err;
            }
        if (o->sinks[i].kind == RN_SINK_STDOUT)
            for (size_t j = 0; j < i; j++)
                if (o->sinks[j].kind == RN_SINK_STDOUT) {
                    rn_seterr(err, "stdout named as a sink twice");
                    goto err;
                }
    }
    if (build_filters(a, err) < 0)
        goto err;
    rn_chan_opts co = {
        .dir = o->dir, .capacity = o->capacity, .max_bytes = o->max_bytes,
        .nsinks = o->nsinks, .sink_names = names, .on_warn = pass_warn, .data = a,
    };
    if (!(a->chan = rn_chan_open(&co, err)))
        goto err;

    uv_async_init(loop, &a->space_async, on_space_async);
    uv_async_init(loop, &a->fail_async, on_fail_async);
    uv_async_init(loop, &a->stdin_async, on_stdin_async);
    uv_timer_init(loop, &a->ckpt_timer);
    uv_timer_init(loop, &a->sync_timer);
    uv_timer_init(loop, &a->drain_timer);
    a->space_async.data = a->fail_async.data = a->stdin_async.data = a;
    a->ckpt_timer.data = a->sync_timer.data = a->drain_timer.data = a;
    rn_chan_on_space(a->chan, chan_space, a);

    for (size_t i = 0; i < o->nsinks; i++) {
        rn_sink_opts so = {
            .chan = a->chan, .index = i, .batch = a->o.batch, .fmt = o->fmt,
            .fsync = o->dir && o->fsync_always, .filter = a->filters[i], .kprops = o->kprops,
            .on_warn = pass_warn, .on_fail = sink_failed, .data = a,
        };
        if (!(a->sinks[i] = rn_sink_start(&o->sinks[i], &so, err)))
            goto err_started;
    }
    if (o->listen) {
        rn_hop_server_opts ho = {
            .max_conns = o->max_conns, .idle_ms = o->idle_ms, .max_unread = o->max_unread,
            .max_partial = o->max_partial,
            .on_batch = on_batch, .on_warn = pass_warn, .data = a,
        };
        if (!(a->server = rn_hop_server_new(loop, &ho, err))
            || rn_hop_server_listen(a->server, o->listen, err) < 0)
            goto err_started;
    } else {
        if (pipe(a->stop_pipe) < 0) {
            rn_seterr(err, "pipe: %s", strerror(errno));
            goto err_started;
        }
        if (pthread_create(&a->stdin_thread, NULL, stdin_run, a) != 0) {
            rn_seterr(err, "cannot start a thread");
            goto err_started;
        }
        a->stdin_started = 1;
    }
    if (o->dir) {
        uv_timer_start(&a->ckpt_timer, on_ckpt_timer, 250, 250);
        if (!o->fsync_always) {
            uint64_t ms = (uint64_t)(o->fsync_ns / 1000000);
            uv_timer_start(&a->sync_timer, on_sync_timer, ms ? ms : 1, ms ? ms : 1);
        }
    }
    return a;

err_started:
    /* Stop what started, close the handles, run the loop for the closes. */
    begin_stop(a, -1);
    finish(a);
    uv_run(loop, UV_RUN_DEFAULT);
    rn_agent_free(a, NULL);
    return NULL;
err:
    for (size_t k = 0; k < RN_CHAN_MAX_SINKS; k++)
        free(a->filters[k].vals);
    free(a->filters[0].all);
    free(a);
    return NULL;
}

const char *rn_agent_address(const rn_agent *a)
{
    return a->server ? rn_hop_server_address(a->server) : NULL;
}

uint64_t rn_agent_dropped(rn_agent *a)
{
    uint64_t dropped = __atomic_load_n(&a->dropped, __ATOMIC_RELAXED);
    for (size_t i = 0; i < a->o.nsinks && a->sinks[i]; i++)
        dropped += rn_sink_dropped(a->sinks[i]);
    return dropped;
}

void rn_agent_counters(rn_agent *a, char *buf, size_t len)
{
    rn_chan_stats st;
    rn_chan_get_stats(a->chan, &st);
    uint64_t retries = 0, dropped = rn_agent_dropped(a);
    size_t n = (size_t)snprintf(buf, len, "in=%" PRIu64, st.in);
    for (size_t i = 0; i < a->o.nsinks && a->sinks[i] && n < len; i++) {
        n += (size_t)snprintf(buf + n, len - n, " out.%s=%" PRIu64, rn_sink_name(a->sinks[i]),
                              rn_sink_out(a->sinks[i]));
        retries += rn_sink_retries(a->sinks[i]);
    }
    if (n < len)
        snprintf(buf + n, len - n,
                 " pending=%" PRIu64 " dropped=%" PRIu64 " retries=%" PRIu64
                 " duplicates=%" PRIu64,
                 st.pending, dropped, retries,
                 st.duplicates);
}

/* One family with a sample per sink, the value of each from get. */
static void sink_family(rn_agent *a, rn_prom *p, const char *prefix, const char *name,
                        int type, const char *help, uint64_t (*get)(rn_agent *, size_t))
{
    rn_prom_family(p, prefix, name, type, help);
    for (size_t i = 0; i < a->o.nsinks && a->sinks[i]; i++) {
        const char *sn = rn_sink_name(a->sinks[i]);
        rn_prom_label l = { "sink", sn, strlen(sn) };
        rn_prom_sample(p, &l, 1, get(a, i));
    }
}

static uint64_t sink_out(rn_agent *a, size_t i) { return rn_sink_out(a->sinks[i]); }
static uint64_t sink_dropped(rn_agent *a, size_t i) { return rn_sink_dropped(a->sinks[i]); }
static uint64_t sink_retries(rn_agent *a, size_t i) { return rn_sink_retries(a->sinks[i]); }
static uint64_t sink_lag(rn_agent *a, size_t i) { return rn_chan_lag(a->chan, i); }

void rn_agent_metrics(rn_agent *a, rn_prom *p, const char *prefix)
{
    rn_chan_stats st;
    char pre[128];

    rn_chan_get_stats(a->chan, &st);
    rn_prom_one(p, prefix, "events_in_total", RN_PROM_COUNTER,
                "Events stored in the channel.", st.in);
    rn_prom_one(p, prefix, "duplicates_total", RN_PROM_COUNTER,
                "Events a hop sender sent again that the channel had: not stored again.",
                st.duplicates);
    rn_prom_one(p, prefix, "events_dropped_total", RN_PROM_COUNTER,
                "Events dropped because the channel was full (--when-full drop).",
                __atomic_load_n(&a->dropped, __ATOMIC_RELAXED));
    rn_prom_one(p, prefix, "events_pending", RN_PROM_GAUGE,
                "Events in the channel that some sink has not delivered.", st.pending);
    rn_prom_one(p, prefix, "bytes_pending", RN_PROM_GAUGE,
                "Bytes of the events pending.", st.pending_bytes);
    rn_prom_one(p, prefix, "events_recovered", RN_PROM_GAUGE,
                "Events a file channel found pending when it opened.", st.recovered);
    rn_prom_one(p, prefix, "capacity_events", RN_PROM_GAUGE,
                "Events the channel holds at most (--capacity).", st.capacity);
    rn_prom_one(p, prefix, "capacity_bytes", RN_PROM_GAUGE,
                "Bytes the channel holds at most (--max-bytes).", st.max_bytes);
    sink_family(a, p, prefix, "events_out_total", RN_PROM_COUNTER,
                "Events the sink delivered.", sink_out);
    sink_family(a, p, prefix, "sink_dropped_total", RN_PROM_COUNTER,
                "Records a kafka sink dropped as larger than the producer's or broker's limit.",
                sink_dropped);
    sink_family(a, p, prefix, "retries_total", RN_PROM_COUNTER,
                "Deliveries the sink tried again.", sink_retries);
    sink_family(a, p, prefix, "lag", RN_PROM_GAUGE,
                "Events in the channel the sink has not taken yet.", sink_lag);
    if (a->server) {
        snprintf(pre, sizeof pre, "%s_hop", prefix);
        rn_hop_server_metrics(a->server, p, pre);
    }
}

int rn_agent_status(const rn_agent *a) { return a->status; }

int rn_agent_free(rn_agent *a, char *err)
{
    int r = 0;
    if (!a)
        return 0;
    if (a->server)
        rn_hop_server_free(a->server);
    for (size_t i = 0; i < a->o.nsinks; i++)
        rn_sink_free(a->sinks[i]);
    if (a->chan)
        r = rn_chan_close(a->chan, err);
    if (a->stop_pipe[0] >= 0) {
        close(a->stop_pipe[0]);
        close(a->stop_pipe[1]);
    }
    for (size_t k = 0; k < RN_CHAN_MAX_SINKS; k++)
        free(a->filters[k].vals);
    free(a->filters[0].all);
    free(a->acks);
    free(a);
    return r;
}
