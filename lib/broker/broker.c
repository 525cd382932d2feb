/* broker.c -- brokerd's server: listening, connections and their framing,
 * answering in order, dispatch, topics on disk, and the flush policy (group
 * commit with fsync off the loop thread). The APIs are in broker_api.c and
 * broker_group.c. */
#include "broker/broker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker_int.h"

#define TICK_MS 100
#define STOP_GRACE_NS (5 * 1000000000LL)
/* While stopping, a connection whose answers make no progress for this long
 * (its peer reads nothing) is closed without waiting for the grace. */
#define STOP_STALL_NS (1000000000LL)
/* Slices smaller than this are read into the answer: a dup, a sendfile and
 * a close cost more than copying them. */
#ifndef SENDFILE_MIN
#define SENDFILE_MIN (16 * 1024)
#endif
/* What is read and queued with uv_write when sendfile cannot go on: when the
 * socket is full (EAGAIN; the uv_write's callback says it drained), and per
 * step of the pread fallback. */
#define WAIT_CHUNK (16 * 1024)
#define PREAD_CHUNK (256 * 1024)
/* What one answer holds, whatever the fetch asks: at most COPY_MAX record
 * bytes copied into memory and SLICES_MAX descriptors; the partitions after
 * that get no records this time, as when the fetch's max_bytes is reached
 * (the client asks again). */
#define COPY_MAX (1u << 20)
#define SLICES_MAX 1024
#define DEF_CONN_BUFFER (1u << 20)
#define DEF_PARTIAL (256u << 20)
/* At most one log line this often for each kind of refusal. */
#define LOG_EVERY_NS 1000000000LL

void rn__blog(rn_broker *b, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (b->o.on_log)
        b->o.on_log(b->o.data, msg);
}

int64_t rn__now_ms(void) { return rn_now_ns() / 1000000; }

/* ---- wait lists ---- */

kwlist *rn__wlist(rn_broker *b, int kind)
{
    switch (kind) {
    case W_FETCH: return &b->fetches;
    case W_FLUSH: return &b->flushes;
    case W_PARK: return &b->parked;
    default: return NULL;
    }
}

void rn__wait(kwlist *l, kreq *q, int kind)
{
    q->wait = kind;
    q->wnext = NULL;
    q->wprev = l ? l->tail : NULL;
    if (!l)
        return;
    if (l->tail)
        l->tail->wnext = q;
    else
        l->head = q;
    l->tail = q;
}

static void free_handle(uv_handle_t *h) { free(h); }

void rn__unwait(kreq *q)
{
    rn_broker *b = q->c->b;
    kwlist *l = rn__wlist(b, q->wait);
    if (l) {
        if (q->wprev)
            q->wprev->wnext = q->wnext;
        else
            l->head = q->wnext;
        if (q->wnext)
            q->wnext->wprev = q->wprev;
        else
            l->tail = q->wprev;
    } else if (q->wait == W_JOIN || q->wait == W_SYNC) {
        rn__group_cancel(q);
    }
    q->wprev = q->wnext = NULL;
    q->wait = W_NONE;
    if (q->timer) {
        uv_timer_stop(q->timer);
        uv_close((uv_handle_t *)q->timer, free_handle);
        q->timer = NULL;
    }
}

/* ---- parked fetches by topic ---- */

static void watch_clear(kreq *q)
{
    while (q->watches) {
        kwatch *w = q->watches;
        q->watches = w->qnext;
        if (w->tprev)
            w->tprev->tnext = w->tnext;
        else
            w->t->watchers = w->tnext;
        if (w->tnext)
            w->tnext->tprev = w->tprev;
        free(w);
    }
}

void rn__fetch_watch(kreq *q, ktopic *t)
{
    /* Within one build no other fetch registers, so a topic this fetch
     * already reads has it at the head of its list. */
    if (t->watchers && t->watchers->q == q)
        return;
    kwatch *w = calloc(1, sizeof *w);
    if (!w)
        return;
    w->q = q;
    w->t = t;
    w->tnext = t->watchers;
    if (t->watchers)
        t->watchers->tprev = w;
    t->watchers = w;
    w->qnext = q->watches;
    q->watches = w;
}

static void woken_remove(rn_broker *b, kreq *q)
{
    if (!q->woken)
        return;
    if (q->wkprev)
        q->wkprev->wknext = q->wknext;
    else
        b->woken_head = q->wknext;
    if (q->wknext)
        q->wknext->wkprev = q->wkprev;
    else
        b->woken_tail = q->wkprev;
    q->wkprev = q->wknext = NULL;
    q->woken = 0;
}

kreq *rn__fetch_woken(rn_broker *b)
{
    while (b->woken_head) {
        kreq *q = b->woken_head;
        woken_remove(b, q);
        if (q->wait == W_FETCH)
            return q;
    }
    return NULL;
}

/* ---- connections ---- */

typedef struct wreq {
    uv_write_t w;
    kconn *c;
    rn_buf out;
} wreq;

static void conn_closed(uv_handle_t *h)
{
    kconn *c = h->data;
    rn_buf_free(&c->in);
    free(c);
}

void rn__req_drop_files(kreq *q)
{
    for (size_t i = 0; i < q->nsl; i++)
        close(q->sl[i].fd);
    q->nsl = 0;
    q->sl_bytes = 0;
}

long rn__req_file(kreq *q, int fd, uint64_t pos, size_t len)
{
    rn_buf *out = &q->out;
    int dfd = -1;
    int sock = !q->c->sink;                     /* no socket: always copy */
    int first = q->copied == 0 && q->nsl == 0;  /* one batch always goes */
    int over = q->copied + len > COPY_MAX;
    if (sock && (len >= SENDFILE_MIN || over) && q->nsl < SLICES_MAX)
        dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dfd < 0 && sock && over && !first)
        return 0;
    if (dfd >= 0 && q->nsl == q->slcap) {
        size_t cap = q->slcap ? 2 * q->slcap : 8;
        kslice *sl = realloc(q->sl, cap * sizeof *sl);
        if (!sl) {
            close(dfd);
            return RN_ENOMEM;
        }
        q->sl = sl;
        q->slcap = cap;
    }
    if (dfd >= 0) {
        q->sl[q->nsl++] = (kslice){ out->len, dfd, pos, len };
        q->sl_bytes += len;
        return (long)len;
    }
    /* Small, or out of descriptors: copy as before. */
    if (rn_buf_reserve(out, len) < 0)
        return RN_ENOMEM;
    /* A read that fails gives the fetch nothing from this file; the
     * client asks again. */
    if (rn_pread_full(fd, out->p + out->len, len, pos) < 0)
        return 0;
    out->len += len;
    q->copied += len;
    return (long)len;
}

static void req_free(kreq *q)
{
    if (q->wait != W_NONE || q->timer)
        rn__unwait(q);
    watch_clear(q);
    woken_remove(q->c->b, q);
    q->c->held -= q->held;
    rn__req_drop_files(q);
    free(q->sl);
    rn_buf_free(&q->out);
    free(q->mem);
    free(q);
}

static void conn_flow(kconn *c, int may_run);
static void conn_frames(kconn *c);

/* Give back c's share of max_partial, and let the connections that wait
 * for room read again (room is reserved for them now, in list order). */
static void partial_release(kconn *c)
{
    rn_broker *b = c->b;
    if (!c->reserved)
        return;
    b->partial -= c->reserved;
    c->reserved = 0;
    for (kconn *o = b->conns; o; o = o->next) {
        if (!o->waiting || o->closing)
            continue;
        if (b->partial && b->partial + o->want > b->o.max_partial)
            continue;
        o->waiting = 0;
        o->reserved = o->want;
        b->partial += o->want;
        conn_flow(o, 0);
    }
}

static void conn_close(kconn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (c->closed)
        *c->closed = 1;
    rn_broker *b = c->b;
    c->waiting = 0;
    partial_release(c);
    if (!c->sink)
        b->nconns--;
    if (c->cur) {
        req_free(c->cur);
        c->cur = NULL;
    }
    while (c->head) {
        kreq *q = c->head;
        c->head = q->next;
        req_free(q);
    }
    c->tail = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->h, conn_closed);
}

void rn__conn_fail(kconn *c, const char *why, const kreq *q)
{
    if (q)
        rn__blog(c->b, "%s: %s (api key %d %s v%d), closing the connection", c->peer, why,
                 q->h.api_key, rn_kapi_name(q->h.api_key), q->h.api_version);
    else
        rn__blog(c->b, "%s: %s, closing the connection", c->peer, why);
    (*c->b->c_bad_requests)++;
    conn_close(c);
}

static void conn_pump(kconn *c);
static void conn_send(kconn *c);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* Whether c holds more than max_conn_buffer: its queued requests, the
 * answers done but not handed to the socket, and libuv's write queue. */
static int conn_full(kconn *c)
{
    if (c->sink)
        return 0;
    size_t q = uv_stream_get_write_queue_size((uv_stream_t *)&c->h);
    return c->held + q > c->b->o.max_conn_buffer;
}

/* Read c or not, as its flow says: stop while it is full (its peer does
 * not read its answers, or it has too many in hand) or waits for room for
 * its partial request. may_run: whole requests that wait in its input may
 * be run now (not from inside another request's handling: the next
 * on_written or tick runs them then). */
static void conn_flow(kconn *c, int may_run)
{
    rn_broker *b = c->b;
    if (c->closing || c->sink)
        return;
    c->muted = conn_full(c);
    int want = !c->muted && !c->waiting && !b->stopping;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read) == 0)
            c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->h);
        c->reading = 0;
    }
    /* Whole requests left in the input while c was full. */
    if (want && may_run && !c->in_frames && c->in.len >= 4 &&
        c->in.len - 4 >= rn_be32((unsigned char *)c->in.p))
        conn_frames(c);
}

static void on_written(uv_write_t *w, int status)
{
    wreq *wr = (wreq *)w;
    kconn *c = wr->c;
    c->nwrites--;
    rn_buf_free(&wr->out);
    free(wr);
    if (c->closing)
        return;
    if (status == 0)    /* a failed write shows as a read error or EOF too */
        c->active_ns = rn_mono_ns();
    if (c->cur) {
        conn_send(c);
        if (!c->cur)
            conn_pump(c);
    }
    if (!c->closing)
        conn_flow(c, 1);
}

/* Queue buf (taken over) with uv_write, or append it to the sink of a
 * connection without a socket; 0, or -1 with the connection closed. */
static int queue_buf(kconn *c, rn_buf *buf)
{
    if (c->sink) {
        int r = rn_buf_append(c->sink, buf->p, buf->len);
        rn_buf_free(buf);
        if (r < 0) {
            rn__conn_fail(c, "out of memory", NULL);
            return -1;
        }
        return 0;
    }
    wreq *wr = calloc(1, sizeof *wr);
    if (!wr) {
        rn_buf_free(buf);
        rn__conn_fail(c, "out of memory", NULL);
        return -1;
    }
    wr->c = c;
    wr->out = *buf;
    *buf = (rn_buf){ 0 };
    uv_buf_t ub = uv_buf_init(wr->out.p, (unsigned)wr->out.len);
    c->nwrites++;
    if (uv_write(&wr->w, (uv_stream_t *)&c->h, &ub, 1, on_written) < 0) {
        c->nwrites--;
        rn_buf_free(&wr->out);
        free(wr);
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Read n bytes of a slice and queue them: the slow path, and the way to be
 * called back once a full socket drains. 0, or -1 with the connection closed. */
static int queue_file(kconn *c, const kslice *s, uint64_t off, size_t n)
{
    rn_buf buf = { 0 };
    if (rn_buf_reserve(&buf, n) < 0) {
        rn__conn_fail(c, "out of memory", NULL);
        return -1;
    }
    int r = rn_pread_full(s->fd, buf.p, n, s->pos + off);
    if (r < 0) {
        rn__blog(c->b, "%s: fetch: reading the log: %s, closing the connection", c->peer,
                 r == RN_ESHORT ? "segment shorter than its index says" : strerror(errno));
        rn_buf_free(&buf);
        conn_close(c);
        return -1;
    }
    buf.len = n;
    return queue_buf(c, &buf);
}

/* Send c->cur, whose record bytes come from files, with write(2) and
 * sendfile(2) on the socket itself, in order, without blocking: when the
 * socket is full, what is left of the part goes through uv_write (a copy of
 * at most WAIT_CHUNK bytes of a slice), whose callback resumes here. Only
 * starts once libuv's queue is empty, so nothing overtakes an earlier
 * answer. (SIGPIPE must be ignored, as for any socket write in libuv.) */
static void conn_send(kconn *c)
{
    rn_broker *b = c->b;
    uv_stream_t *st = (uv_stream_t *)&c->h;
    uv_os_fd_t sock;
    if (uv_fileno((uv_handle_t *)&c->h, &sock) < 0) {
        conn_close(c);
        return;
    }
    while (c->cur && !c->closing) {
        kreq *q = c->cur;
        if (uv_stream_get_write_queue_size(st) > 0)
            return;                     /* on_written comes back */
        size_t i = c->part / 2;
        if (c->part > 2 * q->nsl) {
            c->cur = NULL;
            req_free(q);
            return;
        }
        if (c->part % 2 == 0) {         /* out's bytes up to slice i */
            size_t lo = i ? q->sl[i - 1].at : 0;
            size_t hi = i < q->nsl ? q->sl[i].at : q->out.len;
            size_t n = hi - lo - (size_t)c->off;
            if (n) {
                uv_buf_t ub = uv_buf_init(q->out.p + lo + c->off, (unsigned)n);
                int r = uv_try_write(st, &ub, 1);
                if (r == UV_EAGAIN)
                    r = 0;
                if (r < 0) {
                    conn_close(c);
                    return;
                }
                if (r > 0)
                    c->active_ns = rn_mono_ns();
                if ((size_t)r < n) {
                    rn_buf rest = { 0 };
                    if (rn_buf_append(&rest, ub.base + r, n - (size_t)r) < 0) {
                        rn__conn_fail(c, "out of memory", NULL);
                        return;
                    }
                    c->part++;
                    c->off = 0;
                    queue_buf(c, &rest);
                    return;
                }
            }
            c->part++;
            c->off = 0;
            continue;
        }
        const kslice *s = &q->sl[i];
        size_t n = s->len - (size_t)c->off;
        if (n == 0) {
            c->part++;
            c->off = 0;
            continue;
        }
        if (!b->no_sendfile) {
            off_t fo = (off_t)(s->pos + c->off);
            ssize_t k = sendfile(sock, s->fd, &fo, n);
            if (k > 0) {
                c->off += (uint64_t)k;
                c->active_ns = rn_mono_ns();
                continue;
            }
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                size_t m = n < WAIT_CHUNK ? n : WAIT_CHUNK;
                if (queue_file(c, s, c->off, m) == 0)
                    c->off += m;
                return;
            }
            if (k < 0 && (errno == EINVAL || errno == ENOSYS)) {
                rn__blog(b, "sendfile: %s: reading with pread from now on", strerror(errno));
                b->no_sendfile = 1;
            } else {
                if (k == 0 || (errno != EPIPE && errno != ECONNRESET))
                    rn__blog(b, "%s: fetch: sendfile: %s, closing the connection", c->peer,
                             k == 0 ? "segment shorter than its index says" : strerror(errno));
                conn_close(c);
                return;
            }
        }
        size_t m = n < PREAD_CHUNK ? n : PREAD_CHUNK;
        if (queue_file(c, s, c->off, m) == 0)
            c->off += m;
        return;
    }
}

/* Send the answers at the head of the queue that are ready, in order. */
static void conn_pump(kconn *c)
{
    while (!c->cur && c->head && c->head->done && !c->closing) {
        kreq *q = c->head;
        c->head = q->next;
        if (!c->head)
            c->tail = NULL;
        if (!q->noresp && q->nsl) {
            c->cur = q;
            c->part = 0;
            c->off = 0;
            conn_send(c);
            continue;
        }
        if (!q->noresp && q->out.len && queue_buf(c, &q->out) < 0) {
            req_free(q);
            return;
        }
        req_free(q);
    }
    conn_flow(c, 0);
}

void rn__req_begin(kreq *q)
{
    rn__req_drop_files(q);
    watch_clear(q);
    q->copied = 0;
    q->out.len = 0;
    rn_kw_init(&q->w, &q->out);
    rn_kw_hole32(&q->w);
    rn_kw_i32(&q->w, q->h.correlation_id);
}

void rn__req_done(kreq *q)
{
    if (q->wait != W_NONE || q->timer)
        rn__unwait(q);
    rn_kw_fill32(&q->w, 0, (int32_t)(q->out.len - 4 + q->sl_bytes));
    if (q->w.oom) {
        rn__conn_fail(q->c, "out of memory building the response", q);
        return;
    }
    watch_clear(q);
    q->done = 1;
    size_t resp = q->noresp ? 0 : q->out.len + (size_t)q->sl_bytes;
    q->held += resp;
    q->c->held += resp;
    conn_pump(q->c);
}

/* An API or version we do not serve: the error code where the body's first
 * field would be. Kafka itself closes the connection here; a client that
 * asked ApiVersions first never sends one. */
static int unsupported(kreq *q)
{
    rn__req_begin(q);
    rn_kw_i16(&q->w, RN_KERR_UNSUPPORTED_VERSION);
    rn__blog(q->c->b, "%s: unsupported api key %d (%s) v%d, answered UNSUPPORTED_VERSION",
             q->c->peer, q->h.api_key, rn_kapi_name(q->h.api_key), q->h.api_version);
    rn__req_done(q);
    return 0;
}

static int dispatch(kreq *q)
{
    rn_broker *b = q->c->b;
    const rn_kapi_range *rg = rn_kapi_find(q->h.api_key);
    if (q->h.api_key == RN_KAPI_API_VERSIONS)
        return rn__api_versions(q);
    if (!rg || q->h.api_version < rg->min || q->h.api_version > rg->max)
        return unsupported(q);
    /* While an fsync runs off the loop, appends wait: klog does not allow
     * appending to a log being synced. They join the next group commit. */
    if (b->syncing && (q->h.api_key == RN_KAPI_PRODUCE ||
                       q->h.api_key == RN_KAPI_DELETE_TOPICS)) {
        rn__wait(&b->parked, q, W_PARK);
        return 0;
    }
    switch (q->h.api_key) {
    case RN_KAPI_METADATA: return rn__metadata(q);
    case RN_KAPI_PRODUCE: return rn__produce(q);
    case RN_KAPI_FETCH: return rn__fetch(q);
    case RN_KAPI_LIST_OFFSETS: return rn__list_offsets(q);
    case RN_KAPI_CREATE_TOPICS: return rn__create_topics(q);
    case RN_KAPI_DELETE_TOPICS: return rn__delete_topics(q);
    case RN_KAPI_FIND_COORDINATOR: return rn__find_coordinator(q);
    case RN_KAPI_JOIN_GROUP: return rn__join_group(q);
    case RN_KAPI_SYNC_GROUP: return rn__sync_group(q);
    case RN_KAPI_HEARTBEAT: return rn__heartbeat(q);
    case RN_KAPI_LEAVE_GROUP: return rn__leave_group(q);
    case RN_KAPI_OFFSET_COMMIT: return rn__offset_commit(q);
    case RN_KAPI_OFFSET_FETCH: return rn__offset_fetch(q);
    case RN_KAPI_LIST_GROUPS: return rn__list_groups(q);
    case RN_KAPI_DESCRIBE_GROUPS: return rn__describe_groups(q);
    case RN_KAPI_DESCRIBE_CONFIGS: return rn__describe_configs(q);
    case RN_KAPI_ALTER_CONFIGS: return rn__alter_configs(q);
    default: return unsupported(q);
    }
}

static void run(kreq *q)
{
    kconn *c = q->c;
    if (dispatch(q) < 0 && !c->closing)
        rn__conn_fail(c, "malformed request", q);
}

/* A request larger than what one read brings is being read: it needs room
 * under max_partial (reserved until it is whole), or c stops reading until
 * others make room. 0 to go on reading, -1 to wait. */
static int partial_room(kconn *c, size_t size, size_t have)
{
    rn_broker *b = c->b;
    if (c->sink || size + 4 <= sizeof b->rbuf)
        return 0;
    if (!c->reserved) {
        if (b->partial && b->partial + size > b->o.max_partial) {
            c->waiting = 1;
            c->want = size;
            b->partial_waits++;
            return -1;
        }
        c->reserved = size;
        b->partial += size;
    }
    /* Room for it whole now, so the buffer does not double past it. */
    rn_buf_reserve(&c->in, size + 4 - have);
    return 0;
}

/* Cut whole requests out of the input and run them, while c is not full. */
static void conn_frames(kconn *c)
{
    rn_broker *b = c->b;
    c->in_frames++;
    while (!c->closing && c->in.len - c->in_off >= 4 && !conn_full(c)) {
        const unsigned char *p = (unsigned char *)c->in.p + c->in_off;
        size_t have = c->in.len - c->in_off;
        uint32_t size = rn_be32(p);
        char why[RN_ERRLEN + 64];
        if (size > b->o.max_request || size < 10) {
            int key = have >= 6 ? (int16_t)(p[4] << 8 | p[5]) : -1;
            snprintf(why, sizeof why, "request size %u %s (api key %d %s)", size,
                     size < 10 ? "is too small for a request header" : "exceeds --max-request",
                     key, rn_kapi_name((int16_t)key));
            rn__conn_fail(c, why, NULL);
            break;
        }
        if (have - 4 < size) {
            partial_room(c, size, have);
            break;
        }
        partial_release(c);
        kreq *q = calloc(1, sizeof *q);
        /* A large request first in the buffer keeps the buffer it was read
         * into (no copy of up to --max-request bytes); what follows it
         * moves to a new one. Others get a copy of their own. Either way
         * q->mem holds the request from its size on. */
        if (q && c->in_off == 0 && size >= sizeof b->rbuf) {
            rn_buf rest = { 0 };
            if (rn_buf_append(&rest, p + 4 + size, have - 4 - size) == 0) {
                q->mem = c->in.p;
                c->in = rest;
            }
        } else if (q && (q->mem = malloc(4 + (size_t)size)) != NULL) {
            memcpy(q->mem, p, 4 + (size_t)size);
            c->in_off += 4 + size;
        }
        if (!q || !q->mem) {
            free(q);
            rn__conn_fail(c, "out of memory", NULL);
            break;
        }
        q->frame = (unsigned char *)q->mem + 4;
        q->flen = size;
        q->held = size;
        c->held += size;
        q->c = c;
        rn_kr r;
        rn_kr_init(&r, q->frame, size);
        char err[RN_ERRLEN];
        if (rn_kreq_hdr_parse(&r, &q->h, err) < 0) {
            int key = (int16_t)(q->frame[0] << 8 | q->frame[1]);
            snprintf(why, sizeof why, "%s (api key %d %s)", err, key,
                     rn_kapi_name((int16_t)key));
            req_free(q);
            rn__conn_fail(c, why, NULL);
            break;
        }
        q->body = q->frame + r.off;
        q->blen = size - r.off;
        if (c->tail)
            c->tail->next = q;
        else
            c->head = q;
        c->tail = q;
        (*b->c_requests)++;
        run(q);
    }
    c->in_frames--;
    if (c->closing)
        return;
    /* Keep the partial request (and whole ones c was too full to run) at
     * the start of the buffer. */
    if (c->in_off) {
        memmove(c->in.p, c->in.p + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in_off = 0;
    }
    conn_flow(c, 0);
}

/* Into the input buffer itself when it has room for a read (partial_room
 * made room for a large request whole), saving a copy; else through rbuf,
 * which one read at a time shares among all connections. */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    kconn *c = h->data;
    (void)hint;
    if (c->in.cap - c->in.len >= sizeof c->b->rbuf)
        *buf = uv_buf_init(c->in.p + c->in.len, (unsigned)(c->in.cap - c->in.len));
    else
        *buf = uv_buf_init(c->b->rbuf, sizeof c->b->rbuf);
}

void rn__conn_input(kconn *c, const void *p, size_t n)
{
    if (rn_buf_append(&c->in, p, n) < 0) {
        rn__conn_fail(c, "out of memory", NULL);
        return;
    }
    conn_frames(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    kconn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0)
        return;
    c->active_ns = rn_mono_ns();
    if (buf->base != c->b->rbuf) {
        c->in.len += (size_t)n;     /* read in place (on_alloc) */
        conn_frames(c);
    } else {
        rn__conn_input(c, buf->base, (size_t)n);
    }
}

static void conn_link(rn_broker *b, kconn *c)
{
    c->next = b->conns;
    if (b->conns)
        b->conns->prev = c;
    b->conns = c;
    (*b->c_conns)++;
    if (!c->sink)
        b->nconns++;
    c->active_ns = rn_mono_ns();
}

/* Over max_connections: accept and close at once, so the client hears so
 * now instead of waiting in the backlog; on_tick says how many. */
static void refuse(rn_broker *b, uv_stream_t *server)
{
    uv_tcp_t *h = malloc(sizeof *h);
    if (!h)
        return;
    uv_tcp_init(b->loop, h);
    if (uv_accept(server, (uv_stream_t *)h) == 0)
        b->refused++;
    uv_close((uv_handle_t *)h, free_handle);
}

static void on_connection(uv_stream_t *server, int status)
{
    rn_broker *b = server->data;
    if (status < 0 || b->stopping)
        return;
    if (b->o.max_connections > 0 && b->nconns >= b->o.max_connections) {
        refuse(b, server);
        return;
    }
    kconn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->b = b;
    uv_tcp_init(b->loop, &c->h);
    c->h.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->h) < 0) {
        uv_close((uv_handle_t *)&c->h, conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->h, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[48] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->h, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
    conn_link(b, c);
    conn_flow(c, 0);
}

kconn *rn__conn_fake(rn_broker *b, rn_buf *out, int *closed)
{
    kconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->b = b;
    c->sink = out;
    c->closed = closed;
    *closed = 0;
    /* A handle that is never connected: conn_close closes it as it closes
     * a real one, and conn_closed frees c when the loop runs. */
    uv_tcp_init(b->loop, &c->h);
    c->h.data = c;
    snprintf(c->peer, sizeof c->peer, "no socket");
    conn_link(b, c);
    return c;
}

void rn__conn_fake_close(kconn *c) { conn_close(c); }

/* ---- topics ---- */

int rn__topic_name_ok(const char *name, size_t n)
{
    if (n < 1 || n > 249)
        return 0;
    if ((n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

ktopic *rn__topic_find(rn_broker *b, const char *name, size_t n)
{
    for (ktopic *t = b->topics; t; t = t->next)
        if (strlen(t->name) == n && memcmp(t->name, name, n) == 0)
            return t;
    return NULL;
}

static void topic_free(ktopic *t)
{
    for (int32_t i = 0; i < t->n; i++)
        rn_klog_close(t->logs[i]);
    free(t->logs);
    free(t->dirty);
    free(t->name);
    free(t);
}

/* Open (creating as needed) partitions 0..parts-1 of a topic. */
static int topic_open(rn_broker *b, const char *name, size_t n, int32_t parts, ktopic **out,
                      char *err)
{
    ktopic *t = calloc(1, sizeof *t);
    if (!t)
        return rn_seterr(err, "out of memory");
    t->name = strndup(name, n);
    t->logs = calloc((size_t)parts, sizeof *t->logs);
    t->dirty = calloc((size_t)parts, 1);
    if (!t->name || !t->logs || !t->dirty) {
        rn_seterr(err, "out of memory");
        goto err;
    }
    for (int32_t i = 0; i < parts; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s-%d", b->data_dir, t->name, i);
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
            rn_seterr(err, "%s: %s", dir, strerror(errno));
            goto err;
        }
        if (rn_klog_open(dir, &b->o.klog, &t->logs[i], err) < 0)
            goto err;
        if (*rn_klog_recovery_note(t->logs[i]))   /* a torn tail was cut off */
            rn__blog(b, "%s-%d: recovery: %s", t->name, i, rn_klog_recovery_note(t->logs[i]));
        t->n = i + 1;
    }
    t->next = b->topics;
    b->topics = t;
    *out = t;
    return 0;
err:
    topic_free(t);
    return -1;
}

static int rmtree(const char *dir);

int rn__topic_create(rn_broker *b, const char *name, size_t n, int32_t parts, ktopic **out,
                     char *err)
{
    if (!rn__topic_name_ok(name, n))
        return rn_seterr(err, "invalid topic name");
    if (parts < 1 || parts > 100000)
        return rn_seterr(err, "invalid number of partitions %d", parts);
    if (topic_open(b, name, n, parts, out, err) < 0) {
        /* No half-made topic: the next start would load it (and might run
         * out of descriptors the same way). The topic was not known, so
         * these directories are the ones we just made. */
        for (int32_t i = 0; i < parts; i++) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s/%.*s-%d", b->data_dir, (int)n, name, i);
            if (rmtree(dir) < 0)
                rn__blog(b, "%s: %s", dir, strerror(errno));
        }
        b->failed = 1;
        return -1;
    }
    rn__blog(b, "created topic %.*s with %d partition%s", (int)n, name, parts,
             parts == 1 ? "" : "s");
    return 0;
}

static int rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    int r = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) < 0 && (errno != EISDIR || rmtree(p) < 0))
            r = -1;
    }
    closedir(d);
    return rmdir(dir) < 0 ? -1 : r;
}

int rn__topic_delete(rn_broker *b, ktopic *t, char *err)
{
    ktopic **pp = &b->topics;
    while (*pp != t)
        pp = &(*pp)->next;
    *pp = t->next;
    int r = 0;
    for (int32_t i = 0; i < t->n; i++) {
        char dir[4096];
        rn_klog_close(t->logs[i]);
        t->logs[i] = NULL;
        snprintf(dir, sizeof dir, "%s/%s-%d", b->data_dir, t->name, i);
        if (rmtree(dir) < 0)
            r = rn_seterr(err, "%s: %s", dir, strerror(errno));
    }
    rn__blog(b, "deleted topic %s", t->name);
    t->n = 0;
    topic_free(t);
    return r;
}

/* Topic directories are "<topic>-<partition>"; partitions missing from a
 * run 0..max are created empty. */
static int topics_load(rn_broker *b, char *err)
{
    DIR *d = opendir(b->data_dir);
    if (!d)
        return rn_seterr(err, "%s: %s", b->data_dir, strerror(errno));
    struct dirent *e;
    int r = 0;
    struct { char name[256]; int32_t n; } *found = NULL;
    size_t nfound = 0;
    while ((e = readdir(d))) {
        const char *dash = strrchr(e->d_name, '-');
        if (!dash || !dash[1] || dash == e->d_name)
            continue;
        uint64_t part;
        if (rn_parse_uint(dash + 1, 99999, &part, NULL) < 0)
            continue;
        size_t n = (size_t)(dash - e->d_name);
        if (!rn__topic_name_ok(e->d_name, n))
            continue;
        size_t i;
        for (i = 0; i < nfound; i++)
            if (strlen(found[i].name) == n && !memcmp(found[i].name, e->d_name, n))
                break;
        if (i == nfound) {
            void *nf = realloc(found, (nfound + 1) * sizeof *found);
            if (!nf) {
                r = rn_seterr(err, "out of memory");
                break;
            }
            found = nf;
            memcpy(found[i].name, e->d_name, n);
            found[i].name[n] = 0;
            found[i].n = 0;
            nfound++;
        }
        if ((int32_t)part + 1 > found[i].n)
            found[i].n = (int32_t)part + 1;
    }
    closedir(d);
    for (size_t i = 0; i < nfound && r == 0; i++) {
        ktopic *t;
        r = topic_open(b, found[i].name, strlen(found[i].name), found[i].n, &t, err);
    }
    free(found);
    return r;
}

/* ---- flush: group commit ---- */

static void sync_start(rn_broker *b);

void rn__appended(rn_broker *b, ktopic *t, int32_t p)
{
    t->dirty[p] = 1;
    b->append_seq++;
    if (b->disk_err && rn_mono_ns() - b->disk_err_ns >= LOG_EVERY_NS) {
        rn__blog(b, "appends work again (%llu refused with KAFKA_STORAGE_ERROR meanwhile)",
                 (unsigned long long)b->disk_refused);
        b->disk_err = 0;
        b->disk_refused = 0;
    }
    /* Only the parked fetches that read t try again (rn__fetch_wake). */
    for (kwatch *w = t->watchers; w; w = w->tnext) {
        kreq *q = w->q;
        if (q->wait != W_FETCH || q->woken)
            continue;
        q->woken = 1;
        q->wknext = NULL;
        q->wkprev = b->woken_tail;
        if (b->woken_tail)
            b->woken_tail->wknext = q;
        else
            b->woken_head = q;
        b->woken_tail = q;
    }
}

void rn__append_failed(rn_broker *b, ktopic *t, int32_t p, const char *err)
{
    /* Not a failure of brokerd (nothing acknowledged is lost, and it goes
     * on when there is room again): no exit status for it. */
    (*b->c_storage_errors)++;
    b->disk_refused++;
    b->disk_err_ns = rn_mono_ns();
    if (!b->disk_err)
        rn__blog(b, "%s-%d: %s: Produce is answered KAFKA_STORAGE_ERROR until appends "
                 "work again", t->name, p, err);
    b->disk_err = 1;
}

/* Every log of the commit is synced, even after one failed: a log left out
 * would not be synced until its next append. */
static void sync_work(uv_work_t *w)
{
    rn_broker *b = w->data;
    char err[RN_ERRLEN];
    for (size_t i = 0; i < b->sync_n; i++) {
        b->sync_bad[i] = rn_klog_sync(b->sync_logs[i], err) < 0;
        if (b->sync_bad[i] && b->sync_failed++ == 0)
            memcpy(b->sync_err, err, sizeof err);
    }
}

int rn__unsynced(rn_broker *b, rn_klog *l)
{
    for (size_t i = 0; i < b->sync_n; i++)
        if (b->sync_logs[i] == l)
            return b->sync_bad[i];
    return 0;
}

/* After a commit in which some logs failed: the requests that waited for it
 * are answered KAFKA_STORAGE_ERROR for those, and a log that may sync
 * later (it could not even start: no descriptor) joins the next commit. */
static void commit_failed(rn_broker *b)
{
    if (b->sync_failed > 1)
        rn__blog(b, "%s (and %d more logs): these partitions take no more appends until "
                 "brokerd restarts", b->sync_err, b->sync_failed - 1);
    else
        rn__blog(b, "%s: the partition takes no more appends until brokerd restarts",
                 b->sync_err);
    b->failed = 1;
    b->sync_failed = 0;
    for (kreq *q = b->flushes.head; q; q = q->wnext)
        if (q->flush_seq <= b->sync_target)
            rn__produce_unsynced(q);
    for (ktopic *t = b->topics; t; t = t->next)
        for (int32_t i = 0; i < t->n; i++)
            if (rn__unsynced(b, t->logs[i]) && !rn_klog_failed(t->logs[i]))
                t->dirty[i] = 1;
}

static void sync_after(uv_work_t *w, int status)
{
    rn_broker *b = w->data;
    (void)status;
    b->syncing = 0;
    (*b->c_fsyncs)++;
    /* The acknowledgement would be a lie for the logs that failed: their
     * partitions are answered KAFKA_STORAGE_ERROR (the others synced). */
    if (b->sync_failed)
        commit_failed(b);
    b->synced_seq = b->sync_target;
    while (b->flushes.head && b->flushes.head->flush_seq <= b->synced_seq)
        rn__req_done(b->flushes.head);
    /* What waited for the sync to end runs now, in arrival order. */
    while (b->parked.head && !b->syncing) {
        kreq *q = b->parked.head;
        rn__unwait(q);
        run(q);
    }
    if (b->flushes.head && !b->syncing)
        sync_start(b);
}

static void sync_start(rn_broker *b)
{
    if (b->syncing)
        return;
    size_t n = 0;
    for (ktopic *t = b->topics; t; t = t->next)
        for (int32_t i = 0; i < t->n; i++)
            n += t->dirty[i];
    if (n == 0) {
        b->synced_seq = b->append_seq;
        while (b->flushes.head)
            rn__req_done(b->flushes.head);
        return;
    }
    rn_klog **logs = realloc(b->sync_logs, n * sizeof *logs);
    if (logs)
        b->sync_logs = logs;
    unsigned char *bad = logs ? realloc(b->sync_bad, n) : NULL;
    if (!bad)
        return;     /* tried again on the next append or tick */
    b->sync_bad = bad;
    b->sync_n = 0;
    for (ktopic *t = b->topics; t; t = t->next)
        for (int32_t i = 0; i < t->n; i++)
            if (t->dirty[i]) {
                t->dirty[i] = 0;
                logs[b->sync_n++] = t->logs[i];
            }
    b->sync_target = b->append_seq;
    b->syncing = 1;
    b->sync_work.data = b;
    if (uv_queue_work(b->loop, &b->sync_work, sync_work, sync_after) < 0)
        b->syncing = 0;
}

/* A request whose answer may only go once what it appended is on disk. */
static void flush_wait(rn_broker *b, kreq *q)
{
    q->flush_seq = b->append_seq;
    rn__wait(&b->flushes, q, W_FLUSH);
    sync_start(b);
}

/* Called by handlers that appended: the answer goes now or after the fsync. */
void rn__produced(kreq *q)
{
    rn_broker *b = q->c->b;
    rn__fetch_wake(b);
    if (b->o.flush == RN_FLUSH_ALWAYS && !q->noresp) {
        rn_kw_fill32(&q->w, 0, (int32_t)(q->out.len - 4));
        flush_wait(b, q);
    } else {
        rn__req_done(q);
    }
}

static void on_flush_timer(uv_timer_t *t)
{
    sync_start(t->data);
}

/* ---- life cycle ---- */

static void finish_stop(rn_broker *b);

/* What the connections' limits did since the last line of each kind: at
 * most one line a second each. */
static void conn_log(rn_broker *b, int64_t now)
{
    if (b->refused && now - b->refused_log_ns >= LOG_EVERY_NS) {
        rn__blog(b, "refused %llu connection%s over --max-connections %d",
                 (unsigned long long)b->refused, b->refused == 1 ? "" : "s",
                 b->o.max_connections);
        b->refused = 0;
        b->refused_log_ns = now;
    }
    if (b->partial_waits && now - b->partial_log_ns >= LOG_EVERY_NS) {
        int waiting = 0;
        for (kconn *c = b->conns; c; c = c->next)
            waiting += c->waiting;
        rn__blog(b, "partial requests hold %zu bytes of --max-partial %zu: %d connection%s "
                 "wait%s to send theirs", b->partial, b->o.max_partial, waiting,
                 waiting == 1 ? "" : "s", waiting == 1 ? "s" : "");
        b->partial_waits = 0;
        b->partial_log_ns = now;
    }
    if (b->idle_closed) {
        rn__blog(b, "closed %llu idle connection%s (nothing read or written for --idle-timeout "
                 "%lld ms)", (unsigned long long)b->idle_closed, b->idle_closed == 1 ? "" : "s",
                 (long long)(b->o.idle_timeout_ns / 1000000));
        b->idle_closed = 0;
    }
}

/* Close the idle connections: nothing read or written for idle_timeout,
 * and no request of theirs that the broker holds (a long poll, a rebalance:
 * waiting for those is not idleness). Runs whole requests that a full
 * connection left in its input, should no write callback have done so. */
static void conns_tick(rn_broker *b, int64_t now)
{
    for (kconn *c = b->conns, *next; c; c = next) {
        next = c->next;
        if (c->sink || c->closing)
            continue;
        int held = c->head && !c->head->done;
        if (b->o.idle_timeout_ns > 0 && !held && now - c->active_ns > b->o.idle_timeout_ns) {
            b->idle_closed++;
            conn_close(c);
            continue;
        }
        conn_flow(c, 1);
    }
    conn_log(b, now);
}

static void on_tick(uv_timer_t *t)
{
    rn_broker *b = t->data;
    int64_t now = rn_mono_ns();
    rn__group_tick(b, now);
    if (!b->stopping)
        conns_tick(b, now);
    if (b->stopping) {
        int busy = b->syncing;
        for (kconn *c = b->conns, *next; c; c = next) {
            next = c->next;
            if (!c->head && !c->nwrites && !c->cur)
                conn_close(c);
            else if ((c->nwrites || c->cur) && now - c->active_ns > STOP_STALL_NS)
                conn_close(c);
            else
                busy = 1;
        }
        if (busy && now < b->stop_deadline)
            return;
        for (kconn *c = b->conns, *next; c; c = next) {
            next = c->next;
            conn_close(c);
        }
        if (!b->syncing)
            finish_stop(b);
        return;
    }
    /* Retention and segment age, every ten seconds. */
    static int64_t last;
    if (!b->syncing && now - last > 10 * 1000000000LL) {
        char err[RN_ERRLEN];
        last = now;
        for (ktopic *tp = b->topics; tp; tp = tp->next)
            for (int32_t i = 0; i < tp->n; i++)
                if (rn_klog_maintain(tp->logs[i], rn_now_ns(), err) < 0)
                    rn__blog(b, "%s-%d: %s", tp->name, i, err);
    }
}

static void stopped(uv_handle_t *h)
{
    rn_broker *b = h->data;
    if (b->listening || b->timers_on)
        return;
    if (b->stop_done) {
        void (*done)(void *) = b->stop_done;
        b->stop_done = NULL;
        done(b->stop_data);
    }
}

static void timer_closed(uv_handle_t *h)
{
    rn_broker *b = h->data;
    b->timers_on--;
    stopped(h);
}

static void finish_stop(rn_broker *b)
{
    char err[RN_ERRLEN];
    for (ktopic *t = b->topics; t; t = t->next)
        for (int32_t i = 0; i < t->n; i++)
            if (rn_klog_sync(t->logs[i], err) < 0) {
                rn__blog(b, "%s-%d: %s", t->name, i, err);
                b->failed = 1;
            }
    if (b->timers_on == 2) {
        uv_close((uv_handle_t *)&b->tick, timer_closed);
        uv_close((uv_handle_t *)&b->flush_timer, timer_closed);
    }
}

static void listener_closed(uv_handle_t *h)
{
    rn_broker *b = h->data;
    b->listening = 0;
    stopped(h);
}

void rn_broker_stop(rn_broker *b, void (*done)(void *), void *data)
{
    if (b->stopping)
        return;
    b->stopping = 1;
    b->stop_done = done;
    b->stop_data = data;
    b->stop_deadline = rn_mono_ns() + STOP_GRACE_NS;
    if (b->listening)
        uv_close((uv_handle_t *)&b->listener, listener_closed);
    for (kconn *c = b->conns; c; c = c->next) {
        uv_read_stop((uv_stream_t *)&c->h);
        c->reading = 0;
        c->active_ns = rn_mono_ns();    /* STOP_STALL_NS counts from now */
    }
    rn__fetch_expire_all(b);
    rn__group_stop(b);
    if (b->timers_on)
        on_tick(&b->tick);
    else if (done)
        done(data);
}

rn_broker *rn_broker_new(uv_loop_t *loop, const rn_broker_opts *o, char *err)
{
    rn_broker *b = calloc(1, sizeof *b);
    if (!b) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    b->loop = loop;
    b->o = *o;
    if (!b->o.max_conn_buffer)
        b->o.max_conn_buffer = DEF_CONN_BUFFER;
    if (!b->o.max_partial)
        b->o.max_partial = DEF_PARTIAL;
    b->data_dir = strdup(o->data_dir);
    snprintf(b->host, sizeof b->host, "%s", o->host);
    b->port = o->port;
    if (o->advertise_host)
        snprintf(b->adv_host, sizeof b->adv_host, "%s", o->advertise_host);
    else if (strcmp(o->host, "0.0.0.0") != 0 && strcmp(o->host, "::") != 0)
        snprintf(b->adv_host, sizeof b->adv_host, "%s", o->host);
    else if (gethostname(b->adv_host, sizeof b->adv_host - 1) < 0 || !b->adv_host[0]) {
        rn_seterr(err, "listening on %s: the machine has no name to advertise; "
                  "give one (advertise_host)", o->host);
        free(b);
        return NULL;
    }
    b->c_conns = rn_counter_add(&b->counters, "connections");
    b->c_requests = rn_counter_add(&b->counters, "requests");
    b->c_produced_batches = rn_counter_add(&b->counters, "produced_batches");
    b->c_produced_bytes = rn_counter_add(&b->counters, "produced_bytes");
    b->c_fetched_bytes = rn_counter_add(&b->counters, "fetched_bytes");
    b->c_bad_requests = rn_counter_add(&b->counters, "bad_requests");
    b->c_fsyncs = rn_counter_add(&b->counters, "group_commits");
    b->c_storage_errors = rn_counter_add(&b->counters, "storage_errors");
    if (!b->data_dir) {
        rn_seterr(err, "out of memory");
        goto err;
    }
    if (mkdir(b->data_dir, 0755) < 0 && errno != EEXIST) {
        rn_seterr(err, "%s: %s", b->data_dir, strerror(errno));
        goto err;
    }
    if (topics_load(b, err) < 0 || rn__group_load(b, err) < 0)
        goto err;
    return b;
err:
    rn_broker_free(b);
    return NULL;
}

int rn_broker_start(rn_broker *b, char *err)
{
    struct sockaddr_storage ss;
    int r;
    if (strchr(b->host, ':'))
        r = uv_ip6_addr(b->host, b->port, (struct sockaddr_in6 *)&ss);
    else
        r = uv_ip4_addr(b->host, b->port, (struct sockaddr_in *)&ss);
    if (r < 0)
        return rn_seterr(err, "%s: not a numeric address", b->host);
    uv_tcp_init(b->loop, &b->listener);
    b->listener.data = b;
    b->listening = 1;
    if ((r = uv_tcp_bind(&b->listener, (struct sockaddr *)&ss, 0)) < 0 ||
        (r = uv_listen((uv_stream_t *)&b->listener, 128, on_connection)) < 0) {
        uv_close((uv_handle_t *)&b->listener, listener_closed);
        return rn_seterr(err, "listen %s:%d: %s", b->host, b->port, uv_strerror(r));
    }
    int len = sizeof ss;
    if (uv_tcp_getsockname(&b->listener, (struct sockaddr *)&ss, &len) == 0)
        b->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                  : ((struct sockaddr_in *)&ss)->sin_port);
    uv_timer_init(b->loop, &b->tick);
    uv_timer_init(b->loop, &b->flush_timer);
    b->tick.data = b->flush_timer.data = b;
    b->timers_on = 2;
    uv_timer_start(&b->tick, on_tick, TICK_MS, TICK_MS);
    if (b->o.flush == RN_FLUSH_INTERVAL) {
        uint64_t ms = (uint64_t)(b->o.flush_interval_ns / 1000000);
        uv_timer_start(&b->flush_timer, on_flush_timer, ms ? ms : 1, ms ? ms : 1);
    }
    return 0;
}

int rn_broker_port(const rn_broker *b) { return b->port; }
const char *rn_broker_advertised_host(const rn_broker *b) { return b->adv_host; }
int rn_broker_advertised_port(const rn_broker *b)
{
    return b->o.advertise_port ? b->o.advertise_port : b->port;
}
int rn_broker_failed(const rn_broker *b) { return b->failed; }
const rn_counters *rn_broker_counters(const rn_broker *b) { return &b->counters; }

/* One family with a sample per partition, the value of each from get. */
static void part_family(rn_broker *b, rn_prom *p, const char *prefix, const char *name,
                        const char *help, int64_t (*get)(rn_klog *))
{
    char num[16];
    rn_prom_family(p, prefix, name, RN_PROM_GAUGE, help);
    for (ktopic *t = b->topics; t; t = t->next)
        for (int32_t i = 0; i < t->n; i++) {
            if (!t->logs[i])
                continue;
            rn_prom_label l[2] = { { "topic", t->name, strlen(t->name) },
                                   { "partition", num, (size_t)snprintf(num, sizeof num,
                                                                        "%d", (int)i) } };
            rn_prom_sample_i64(p, l, 2, get(t->logs[i]));
        }
}

static int64_t log_end(rn_klog *l) { return rn_klog_end(l); }
static int64_t log_start(rn_klog *l) { return rn_klog_start(l); }
static int64_t log_size(rn_klog *l) { return (int64_t)rn_klog_size(l); }
static int64_t log_segments(rn_klog *l) { return (int64_t)rn_klog_segments(l); }

void rn_broker_metrics(rn_broker *b, rn_prom *p, const char *prefix)
{
    static const rn_prom_desc d[] = {
        { "connections", "connections_total", RN_PROM_COUNTER, "Client connections accepted." },
        { "requests", "requests_total", RN_PROM_COUNTER, "Requests served." },
        { "produced_batches", "produced_batches_total", RN_PROM_COUNTER,
          "Record batches appended by Produce." },
        { "produced_bytes", "produced_bytes_total", RN_PROM_COUNTER,
          "Bytes of the record batches appended by Produce." },
        { "fetched_bytes", "fetched_bytes_total", RN_PROM_COUNTER,
          "Record bytes sent by Fetch." },
        { "bad_requests", "bad_requests_total", RN_PROM_COUNTER,
          "Requests refused as malformed or over a limit." },
        { "group_commits", "group_commits_total", RN_PROM_COUNTER,
          "fsyncs that covered the appends since the one before (--flush)." },
        { "storage_errors", "storage_errors_total", RN_PROM_COUNTER,
          "Appends or fsyncs the disk failed." },
    };
    uint64_t ntopics = 0;

    rn_prom_counters(p, prefix, &b->counters, d, sizeof d / sizeof d[0]);
    rn_prom_one(p, prefix, "connections", RN_PROM_GAUGE, "Client connections open.",
                (uint64_t)b->nconns);
    for (ktopic *t = b->topics; t; t = t->next)
        ntopics++;
    rn_prom_one(p, prefix, "topics", RN_PROM_GAUGE, "Topics.", ntopics);
    part_family(b, p, prefix, "partition_log_end_offset",
                "The offset the next record appended to the partition gets (its high watermark).",
                log_end);
    part_family(b, p, prefix, "partition_log_start_offset",
                "The partition's first offset still kept (retention moves it on).", log_start);
    part_family(b, p, prefix, "partition_size_bytes", "Bytes of the partition's segments.",
                log_size);
    part_family(b, p, prefix, "partition_segments", "Segment files of the partition.",
                log_segments);
    rn__group_metrics(b, p, prefix);
}

void rn_broker_free(rn_broker *b)
{
    if (!b)
        return;
    while (b->topics) {
        ktopic *t = b->topics;
        b->topics = t->next;
        topic_free(t);
    }
    rn__group_free_all(b);
    free(b->sync_logs);
    free(b->sync_bad);
    free(b->data_dir);
    free(b);
}
