/* recv.c -- the hop's receiver (rn_hop_server): it accepts connections,
 * checks every frame and every event of a batch, hands batches to its owner
 * and sends the owner's acks; a BUSY owner holds a connection's batch (and
 * stops reading it) until rn_hop_server_resume.
 *
 * What a peer can make it hold is bounded (hop.h, rn_hop_server_opts): the
 * connections, the answers a peer leaves unread (past max_unread the
 * connection is not read until they are: as Kafka mutes a channel), the
 * read buffers of frames still arriving (they grow as bytes come, not as a
 * length field claims, and all of them together stay under max_partial),
 * and the time a connection may sit idle.
 *
 * Everything runs on the caller's libuv loop; nothing here is thread-safe. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hop/hop_int.h"

/* A receiver's read buffer that grew for a big frame is given back once it
 * is empty, so that an idle connection holds little. */
#define SHRINK_ABOVE (1024 * 1024)
/* The smallest frame limit a receiver may set: a HELLO and a batch of one
 * small event must fit. */
#define MIN_MAX_FRAME 64
#define MAX_MAX_FRAME (1u << 30)

typedef struct hconn hconn;

struct rn_hop_server {
    uv_loop_t *loop;
    size_t max_frame;
    int (*on_batch)(void *data, const rn_hop_batch *b);
    void (*on_warn)(void *data, const char *msg);
    void *data;
    uv_tcp_t listener;
    int listener_open;          /* initialised, not yet closed */
    int listen_tried;           /* the listener is used once, even when it failed */
    int input_stopped, closed;
    char address[INET6_ADDRSTRLEN + 16];
    hconn *conns;               /* open ones; a closing one is off the list */
    hconn *held_head, *held_tail;   /* BUSY, in the order they were held */
    uint64_t next_id, next_hold;
    int resuming;
    size_t max_conns, max_unread, max_partial;
    uint64_t idle_ms;           /* 0: never */
    size_t nconns;              /* on the list */
    size_t partial;             /* read buffers' bytes beyond READ_CHUNK each */
    uv_timer_t idle_timer;
    int idle_open;
    uint64_t full_warned_ms, full_quiet;    /* refusals over max_conns, said once a second */
    rn_counters counters;
    uint64_t *c_connections, *c_refused, *c_batches, *c_events, *c_idle, *c_muted;
};

struct hconn {
    uv_tcp_t h;
    rn_hop_server *s;
    hconn *prev, *next;
    hconn *hprev, *hnext;       /* on the held list */
    uint64_t id;
    char peer[INET6_ADDRSTRLEN + 16];
    /* Input: in[in_off..in_len) not yet taken; base is the stream offset of
     * in[0], for the offsets in warnings. */
    unsigned char *in;
    size_t in_len, in_off, in_cap;
    uint64_t base;
    int welcomed;
    uint64_t session;
    int reading, closing, refusing;
    int muted, mute_warned;     /* answers unread past max_unread: not reading */
    int over_partial;           /* conn_alloc found max_partial reached */
    uint64_t last_ms;           /* uv_now of the last byte in or out */
    /* A BUSY batch stays where it is in the buffer (reading has stopped, so
     * nothing moves it) and is offered again from there. */
    int held, held_checked;
    uint64_t held_seq;
    uv_write_t wreq;
    int writing;
    rn_buf out, wbuf;           /* queued frames, and those being written */
};

/* A warning about one peer or the listener: "hop WHO: ...". */
static void swarn(rn_hop_server *s, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void swarn(rn_hop_server *s, const char *who, const char *fmt, ...)
{
    char prefix[sizeof ((hconn *)0)->peer + 8];
    va_list ap;

    snprintf(prefix, sizeof prefix, "hop %s: ", who);
    va_start(ap, fmt);
    rn_vwarn_to(s->on_warn, s->data, prefix, fmt, ap);
    va_end(ap);
}

/* What a read buffer of cap bytes counts towards max_partial. */
static size_t over_chunk(size_t cap)
{
    return cap > READ_CHUNK ? cap - READ_CHUNK : 0;
}

static size_t out_bytes(const hconn *c)
{
    return c->out.len + c->wbuf.len;
}

rn_hop_server *rn_hop_server_new(uv_loop_t *loop, const rn_hop_server_opts *o, char *err)
{
    size_t max_frame = o->max_frame ? o->max_frame : RN_HOP_MAX_FRAME;
    size_t max_partial = o->max_partial ? o->max_partial : RN_HOP_MAX_PARTIAL;
    rn_hop_server *s;

    if (!o->on_batch) {
        rn_seterr(err, "hop server: no on_batch callback");
        return NULL;
    }
    if (max_frame < MIN_MAX_FRAME || max_frame > MAX_MAX_FRAME) {
        rn_seterr(err, "hop server: frame limit %zu is outside %d .. %u", max_frame,
                  MIN_MAX_FRAME, MAX_MAX_FRAME);
        return NULL;
    }
    if (max_partial < max_frame) {
        rn_seterr(err, "hop server: the limit of partial frames (%zu bytes) is below the "
                  "frame limit (%zu)", max_partial, max_frame);
        return NULL;
    }
    if (!(s = calloc(1, sizeof *s))) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->max_frame = max_frame;
    s->max_partial = max_partial;
    s->max_conns = o->max_conns ? o->max_conns : RN_HOP_MAX_CONNS;
    s->max_unread = o->max_unread ? o->max_unread : RN_HOP_MAX_UNREAD;
    s->idle_ms = o->idle_ms < 0 ? 0 : o->idle_ms ? (uint64_t)o->idle_ms : RN_HOP_IDLE_MS;
    s->on_batch = o->on_batch;
    s->on_warn = o->on_warn;
    s->data = o->data;
    s->c_connections = rn_counter_add(&s->counters, "connections");
    s->c_refused = rn_counter_add(&s->counters, "refused");
    s->c_batches = rn_counter_add(&s->counters, "batches");
    s->c_events = rn_counter_add(&s->counters, "events");
    s->c_idle = rn_counter_add(&s->counters, "idle_closed");
    s->c_muted = rn_counter_add(&s->counters, "muted");
    return s;
}

const rn_counters *rn_hop_server_counters(const rn_hop_server *s) { return &s->counters; }

void rn_hop_server_metrics(const rn_hop_server *s, rn_prom *p, const char *prefix)
{
    static const rn_prom_desc d[] = {
        { "connections", "connections_total", RN_PROM_COUNTER, "Hop connections accepted." },
        { "refused", "refused_total", RN_PROM_COUNTER,
          "Hop connections refused (over --max-connections)." },
        { "batches", "batches_received_total", RN_PROM_COUNTER, "Batches taken from senders." },
        { "events", "events_received_total", RN_PROM_COUNTER, "Events in the batches taken." },
        { "idle_closed", "idle_closed_total", RN_PROM_COUNTER,
          "Hop connections closed for idling (--idle-timeout)." },
        { "muted", "muted_total", RN_PROM_COUNTER,
          "Times a sender that left answers unread was not read (--max-unread)." },
    };
    rn_prom_counters(p, prefix, &s->counters, d, sizeof d / sizeof d[0]);
}
const char *rn_hop_server_address(const rn_hop_server *s) { return s->address; }

static void conn_freed(uv_handle_t *h)
{
    hconn *c = h->data;
    c->s->partial -= over_chunk(c->in_cap);
    free(c->in);
    rn_buf_free(&c->out);
    rn_buf_free(&c->wbuf);
    free(c);
}

static void unhold(hconn *c)
{
    rn_hop_server *s = c->s;

    if (!c->held)
        return;
    if (c->hprev)
        c->hprev->hnext = c->hnext;
    else
        s->held_head = c->hnext;
    if (c->hnext)
        c->hnext->hprev = c->hprev;
    else
        s->held_tail = c->hprev;
    c->hprev = c->hnext = NULL;
    c->held = 0;
}

static void hold(hconn *c)
{
    rn_hop_server *s = c->s;

    c->held = 1;
    c->held_seq = ++s->next_hold;
    c->hnext = NULL;
    c->hprev = s->held_tail;
    if (s->held_tail)
        s->held_tail->hnext = c;
    else
        s->held_head = c;
    s->held_tail = c;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->h);
        c->reading = 0;
    }
}

static void conn_close(hconn *c)
{
    rn_hop_server *s = c->s;

    if (c->closing)
        return;
    c->closing = 1;
    unhold(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->nconns--;
    uv_close((uv_handle_t *)&c->h, conn_freed);
}

static void conn_flush(hconn *c);
static void conn_go(hconn *c);

static void conn_written(uv_write_t *w, int status)
{
    hconn *c = w->data;

    c->writing = 0;
    c->wbuf.len = 0;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);      /* the peer is gone: a read error or EOF says so too */
        return;
    }
    c->last_ms = uv_now(c->s->loop);
    conn_flush(c);
    if (c->muted && !c->closing && out_bytes(c) <= c->s->max_unread / 2) {
        c->muted = 0;
        conn_go(c);
    }
}

/* Write what is queued, one uv_write at a time so that frames keep their
 * order and acks given in a burst go out together. A refused connection
 * closes once its ERROR frame is out. */
static void conn_flush(hconn *c)
{
    if (c->writing || c->closing)
        return;
    if (c->out.len == 0) {
        if (c->refusing)
            conn_close(c);
        return;
    }
    rn_buf t = c->wbuf;
    c->wbuf = c->out;
    c->out = t;
    uv_buf_t b = uv_buf_init(c->wbuf.p, (unsigned)c->wbuf.len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->h, &b, 1, conn_written) < 0) {
        c->wbuf.len = 0;
        conn_close(c);
        return;
    }
    c->writing = 1;
}

/* Queue a frame: type and the body in two parts (either may be empty). */
static int conn_queue(hconn *c, char type, const void *a, size_t an, const void *b, size_t bn)
{
    unsigned char head[FRAME_HEAD];

    rn_hop__put_head(head, type, 1 + an + bn);
    if (rn_buf_append(&c->out, head, sizeof head) < 0 || rn_buf_append(&c->out, a, an) < 0
        || rn_buf_append(&c->out, b, bn) < 0) {
        conn_close(c);
        return -1;
    }
    if (!c->muted && out_bytes(c) > c->s->max_unread) {
        /* The peer does not read its answers: read nothing more from it
         * until it does, so that what it makes us queue stays bounded. */
        c->muted = 1;
        (*c->s->c_muted)++;
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->h);
            c->reading = 0;
        }
        if (!c->mute_warned) {
            c->mute_warned = 1;
            swarn(c->s, c->peer, "%zu bytes of answers unread; not reading from it until "
                  "it reads them", out_bytes(c));
        }
    }
    return 0;
}

/* Refuse the connection: ERROR frame, warning, close once it is written. */
static int refuse(hconn *c, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(hconn *c, uint64_t off, const char *fmt, ...)
{
    rn_hop_server *s = c->s;
    char why[RN_ERRLEN], msg[RN_ERRLEN + 32];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    int n = snprintf(msg, sizeof msg, "byte offset %llu: %s", (unsigned long long)off, why);
    if (n < 0 || (size_t)n >= sizeof msg)
        n = (int)strlen(msg);
    (*s->c_refused)++;
    unhold(c);
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->h);
        c->reading = 0;
    }
    c->refusing = 1;
    if (conn_queue(c, T_ERROR, msg, (size_t)n, NULL, 0) == 0)
        conn_flush(c);
    swarn(s, c->peer, "%s", msg);
    return -1;
}

/* What can be told from a frame's type before the whole frame is in: a
 * peer that sends a megabyte of garbage is refused at its fifth byte. */
static int frame_start(hconn *c, unsigned char type, uint32_t len, uint64_t off)
{
    char tn[8];

    if (!c->welcomed) {
        if (type == T_BATCH)
            return refuse(c, off + 4, "BATCH before HELLO");
        if (type != T_HELLO)
            return refuse(c, off + 4, "the first frame is not a HELLO (type %s)",
                          rn_hop__type_name(type, tn, sizeof tn));
        if (len != HELLO_LEN)
            return refuse(c, off, "HELLO of %u bytes (expected %d)", len, HELLO_LEN);
        return 0;
    }
    if (type == T_HELLO)
        return refuse(c, off + 4, "a second HELLO");
    if (type != T_BATCH)
        return refuse(c, off + 4, "unknown frame type %s", rn_hop__type_name(type, tn, sizeof tn));
    if (len < BATCH_HEAD)
        return refuse(c, off, "BATCH of %u bytes is too short for its serial and count", len);
    return 0;
}

static int on_hello(hconn *c, const unsigned char *body, uint64_t off)
{
    rn_hop_server *s = c->s;
    unsigned char w[WELCOME_LEN - 1];

    if (memcmp(body, MAGIC, MAGIC_LEN) != 0)
        return refuse(c, off + 5, "bad magic (not \"" MAGIC "\")");
    if (body[MAGIC_LEN] != RN_HOP_VERSION)
        return refuse(c, off + 5 + MAGIC_LEN, "protocol version %u (this receiver speaks %d)",
                      body[MAGIC_LEN], RN_HOP_VERSION);
    c->session = rn_be64(body + MAGIC_LEN + 1);
    if (c->session == 0)
        return refuse(c, off + 6 + MAGIC_LEN, "session 0");
    c->welcomed = 1;
    w[0] = RN_HOP_VERSION;
    rn_put_be32(w + 1, (uint32_t)s->max_frame);
    if (conn_queue(c, T_WELCOME, w, sizeof w, NULL, 0) < 0)
        return -1;
    conn_flush(c);
    return 0;
}

/* 0: taken; 1: held (BUSY); -1: refused or closed. */
static int on_batch_frame(hconn *c, const unsigned char *body, size_t blen, uint64_t off)
{
    rn_hop_server *s = c->s;
    rn_hop_batch b;

    b.conn = c->id;
    b.peer = c->peer;
    b.session = c->session;
    b.serial = rn_be64(body);
    b.count = rn_be32(body + 8);
    b.events = (const char *)body + BATCH_HEAD - 1;
    b.len = blen - (BATCH_HEAD - 1);
    if (b.serial == 0)
        return refuse(c, off + 5, "BATCH with serial 0");
    if (!c->held_checked) {
        char why[RN_ERRLEN];
        size_t bad = 0;
        if (rn_batch_each(b.events, b.len, b.count, NULL, NULL, &bad, why) < 0)
            return refuse(c, off + BATCH_HDR + bad, "batch %llu: %s",
                          (unsigned long long)b.serial, why);
        c->held_checked = 1;
    }
    if (s->on_batch(s->data, &b) == RN_HOP_BUSY) {
        if (!c->closing)
            hold(c);
        return 1;
    }
    (*s->c_batches)++;
    *s->c_events += b.count;
    return 0;
}

/* Take the whole frames in the buffer, in order, until one is held. */
static void conn_process(hconn *c)
{
    rn_hop_server *s = c->s;

    while (!c->closing && !c->refusing && !c->held && !c->muted && !s->input_stopped) {
        const unsigned char *p = c->in + c->in_off;
        size_t have = c->in_len - c->in_off;
        uint64_t off = c->base + c->in_off;

        if (have < 4)
            return;
        uint32_t len = rn_be32(p);
        if (len == 0) {
            refuse(c, off, "frame of 0 bytes");
            return;
        }
        if (len > s->max_frame) {
            refuse(c, off, "frame of %u bytes exceeds the limit of %zu", len, s->max_frame);
            return;
        }
        if (have >= 5 && frame_start(c, p[4], len, off) < 0)
            return;
        if (have - 4 < len)
            return;
        int r = p[4] == T_HELLO ? on_hello(c, p + 5, off)
                                : on_batch_frame(c, p + 5, len - 1, off);
        if (r != 0)
            return;
        c->in_off += 4 + (size_t)len;
        c->held_checked = 0;
    }
}

/* Read straight into the connection's buffer. It grows, by doubling, as the
 * bytes of a large frame come (whose length was checked before): memory
 * follows what a peer has sent rather than what it claims it will send. It
 * never passes max_frame + 5 bytes, and the growth of all connections'
 * buffers stays under max_partial (past it, read_cb gets UV_ENOBUFS with
 * over_partial set). */
static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    hconn *c = h->data;
    rn_hop_server *s = c->s;
    size_t want = READ_CHUNK, limit = s->max_frame + 5, cap = c->in_cap;

    (void)hint;
    if (c->in_off) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->base += c->in_off;
        c->in_off = 0;
    }
    if (c->in_len >= 4) {
        size_t need = 4 + (size_t)rn_be32(c->in);
        if (need > want)
            want = need;
    }
    if (want > limit)
        want = limit;
    if (cap > SHRINK_ABOVE && c->in_len + READ_CHUNK <= cap / 4 && want <= cap / 4) {
        /* A big frame has gone: give its room back. */
        cap = c->in_len + READ_CHUNK > want ? c->in_len + READ_CHUNK : want;
    } else if (cap < want && cap - c->in_len < READ_CHUNK) {
        cap = cap < READ_CHUNK ? READ_CHUNK : 2 * cap;
        if (cap > want)
            cap = want;
    }
    if (cap != c->in_cap) {
        size_t others = s->partial - over_chunk(c->in_cap);
        if (cap > c->in_cap && others + over_chunk(cap) > s->max_partial) {
            c->over_partial = 1;
            *buf = uv_buf_init(NULL, 0);    /* read_cb refuses the connection */
            return;
        }
        unsigned char *p = realloc(c->in, cap);
        if (!p) {
            *buf = uv_buf_init(NULL, 0);    /* read_cb gets UV_ENOBUFS */
            return;
        }
        s->partial = others + over_chunk(cap);
        c->in = p;
        c->in_cap = cap;
    }
    *buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    hconn *c = st->data;

    (void)buf;
    if (c->closing || n == 0)
        return;
    if (n == UV_ENOBUFS && c->over_partial) {
        refuse(c, c->base + c->in_off, "frames still arriving on all connections would "
               "hold more than the limit of %zu bytes; try again later", c->s->max_partial);
        return;
    }
    if (n == UV_ENOBUFS) {
        swarn(c->s, c->peer, "out of memory for the read buffer; closing");
        conn_close(c);
        return;
    }
    if (n < 0) {
        size_t pend = c->in_len - c->in_off;
        uint64_t off = c->base + c->in_off;
        /* A reset (the peer closed with our answer unread) ends a frame
         * as surely as an orderly close. */
        const char *how = n == UV_EOF ? "ended" : uv_strerror((int)n);
        if (pend == 0 || c->refusing) {
            conn_close(c);
        } else if (pend < 4) {
            refuse(c, off, "truncated frame: the connection %s after %zu of the 4 "
                   "length bytes", how, pend);
        } else {
            refuse(c, off, "truncated frame: the connection %s after %zu of its %u bytes",
                   how, pend - 4, rn_be32(c->in + c->in_off));
        }
        return;
    }
    c->in_len += (size_t)n;
    c->last_ms = uv_now(c->s->loop);
    conn_process(c);
}

/* Too many connections: an ERROR to this one, a warning once a second. */
static void refuse_over_limit(hconn *c)
{
    rn_hop_server *s = c->s;
    char msg[128];
    uint64_t now = uv_now(s->loop);
    int n = snprintf(msg, sizeof msg, "too many connections (the limit is %zu)",
                     s->max_conns);

    (*s->c_refused)++;
    c->refusing = 1;
    if (conn_queue(c, T_ERROR, msg, (size_t)n, NULL, 0) == 0)
        conn_flush(c);
    if (s->full_warned_ms && now - s->full_warned_ms < 1000) {
        s->full_quiet++;
        return;
    }
    if (s->full_quiet)
        swarn(s, c->peer, "refused: %s; %llu more refused in the last second", msg,
              (unsigned long long)s->full_quiet);
    else
        swarn(s, c->peer, "refused: %s", msg);
    s->full_warned_ms = now ? now : 1;
    s->full_quiet = 0;
}

/* Close the connections that have been idle too long: quietly when nothing
 * was under way, with an ERROR when a frame had begun to arrive. */
static void on_idle_timer(uv_timer_t *t)
{
    rn_hop_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    hconn *next;

    for (hconn *c = s->conns; c; c = next) {
        next = c->next;
        if (c->held || c->refusing || c->closing || now - c->last_ms < s->idle_ms)
            continue;
        if (c->in_len > c->in_off) {
            refuse(c, c->base + c->in_off, "idle for %llu ms in the middle of a frame",
                   (unsigned long long)(now - c->last_ms));
        } else {
            (*s->c_idle)++;
            conn_close(c);
        }
    }
}

static void on_connection(uv_stream_t *ls, int status)
{
    rn_hop_server *s = ls->data;
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    hconn *c;

    if (status < 0) {
        swarn(s, s->address, "accept: %s", uv_strerror(status));
        return;
    }
    if (!(c = calloc(1, sizeof *c))) {
        swarn(s, s->address, "out of memory for a connection");
        return;
    }
    c->s = s;
    uv_tcp_init(s->loop, &c->h);
    c->h.data = c;
    if (uv_accept(ls, (uv_stream_t *)&c->h) < 0) {
        uv_close((uv_handle_t *)&c->h, conn_freed);
        return;
    }
    c->id = ++s->next_id;
    uv_tcp_nodelay(&c->h, 1);
    uv_tcp_keepalive(&c->h, 1, KEEPALIVE_S);
    strcpy(c->peer, "?");
    if (uv_tcp_getpeername(&c->h, (struct sockaddr *)&ss, &sl) == 0)
        rn_hop_sockaddr_name((struct sockaddr *)&ss, c->peer, sizeof c->peer);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    c->last_ms = uv_now(s->loop);
    if (++s->nconns > s->max_conns) {
        refuse_over_limit(c);
        return;
    }
    (*s->c_connections)++;
    if (uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = 1;
}

int rn_hop_server_listen(rn_hop_server *s, const char *addr, char *err)
{
    struct sockaddr_storage ss;
    rn_hop_target t;
    int sl = sizeof ss, r;

    if (s->listen_tried || s->input_stopped)
        return rn_seterr(err, "hop server: listen was called before");
    if (rn_hop_addr_parse(addr, &t, err) < 0 || rn_hop_listen_addr(s->loop, &t, &ss, err) < 0)
        return RN_ERR;
    if ((r = uv_tcp_init(s->loop, &s->listener)) < 0)
        return rn_seterr(err, "listen on %s: %s", addr, uv_strerror(r));
    s->listener.data = s;
    s->listener_open = 1;
    s->listen_tried = 1;
    if ((r = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0)) < 0
        || (r = uv_listen((uv_stream_t *)&s->listener, SOMAXCONN, on_connection)) < 0) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        s->listener_open = 0;
        return rn_seterr(err, "listen on %s: %s", addr, uv_strerror(r));
    }
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &sl) == 0)
        rn_hop_sockaddr_name((struct sockaddr *)&ss, s->address, sizeof s->address);
    if (s->idle_ms) {
        uint64_t every = s->idle_ms / 4 < 1000 ? s->idle_ms / 4 : 1000;
        uv_timer_init(s->loop, &s->idle_timer);
        s->idle_timer.data = s;
        s->idle_open = 1;
        uv_timer_start(&s->idle_timer, on_idle_timer, every ? every : 1, every ? every : 1);
    }
    return 0;
}

static hconn *find_conn(rn_hop_server *s, uint64_t id)
{
    for (hconn *c = s->conns; c; c = c->next)
        if (c->id == id)
            return c->refusing ? NULL : c;
    return NULL;
}

void rn_hop_server_ack(rn_hop_server *s, uint64_t conn, uint64_t serial, int status)
{
    unsigned char a[ACK_LEN - 1];
    hconn *c = find_conn(s, conn);

    if (!c)
        return;
    rn_put_be64(a, serial);
    a[8] = (unsigned char)status;
    if (conn_queue(c, T_ACK, a, sizeof a, NULL, 0) == 0)
        conn_flush(c);
}

void rn_hop_server_nack(rn_hop_server *s, uint64_t conn, uint64_t serial, const char *reason)
{
    unsigned char a[8];
    hconn *c = find_conn(s, conn);
    size_t n = reason ? strlen(reason) : 0;

    if (!c)
        return;
    if (n > MAX_REASON)
        n = MAX_REASON;
    rn_put_be64(a, serial);
    if (conn_queue(c, T_NACK, a, sizeof a, reason, n) == 0)
        conn_flush(c);
}

/* Take what is buffered, then read on unless something holds the
 * connection (a BUSY owner, unread answers, a refusal, the stop). */
static void conn_go(hconn *c)
{
    rn_hop_server *s = c->s;

    c->last_ms = uv_now(s->loop);
    conn_process(c);
    if (!c->held && !c->closing && !c->refusing && !c->reading && !c->muted
        && !s->input_stopped) {
        if (uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read) < 0)
            conn_close(c);
        else
            c->reading = 1;
    }
}

void rn_hop_server_resume(rn_hop_server *s)
{
    uint64_t upto = s->next_hold;
    hconn *c;

    if (s->resuming || s->closed || s->input_stopped)
        return;
    s->resuming = 1;
    /* Always from the head: on_batch may close connections under us. One
     * held again goes to the tail with a later held_seq, which ends this
     * round. */
    while ((c = s->held_head) && c->held_seq <= upto && !s->closed && !s->input_stopped) {
        unhold(c);
        conn_go(c);
    }
    s->resuming = 0;
}

void rn_hop_server_stop_input(rn_hop_server *s)
{
    if (s->input_stopped)
        return;
    s->input_stopped = 1;
    if (s->idle_open) {
        uv_close((uv_handle_t *)&s->idle_timer, NULL);
        s->idle_open = 0;
    }
    if (s->listener_open) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        s->listener_open = 0;
    }
    for (hconn *c = s->conns; c; c = c->next) {
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->h);
            c->reading = 0;
        }
    }
}

void rn_hop_server_close(rn_hop_server *s)
{
    if (s->closed)
        return;
    rn_hop_server_stop_input(s);
    s->closed = 1;
    while (s->conns)
        conn_close(s->conns);
}

void rn_hop_server_free(rn_hop_server *s)
{
    free(s);
}

