/* send.c -- the hop's sender (rn_hop_sender): it connects (resolving names,
 * trying each address), keeps a window of batches in flight per connection,
 * sends a batch again on a new connection when one fails or is NACKed, backs
 * off between attempts, fails over or balances across receivers, and
 * reports batches as done in the order they were given.
 *
 * Everything runs on the caller's libuv loop; nothing here is thread-safe. */
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "hop/hop_int.h"

/* What a sender accepts from a receiver: welcomes, acks, and reasons. */
#define MAX_REPLY_FRAME (64 * 1024)
#define DEFAULT_WINDOW 8
#define BACKOFF_MIN_NS (100 * 1000000LL)
#define BACKOFF_MAX_NS (5 * 1000000000LL)
#define NACK_WARN_EVERY_NS 1000000000LL
/* A receiver that closes a connection up this long with nothing in flight
 * closed it for being idle: reconnect without a word. Sooner is a failure
 * (a receiver that closes every connection at once must not loop quietly). */
#define IDLE_QUIET_MS 1000

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static uint64_t delay_ms(int64_t ns) { return ns <= 0 ? 0 : (uint64_t)((ns + 999999) / 1000000); }

typedef struct sbatch sbatch;
typedef struct sconn sconn;
typedef struct starget starget;

enum { B_UNSENT, B_INFLIGHT, B_ACKED };

struct sbatch {
    sbatch *next;               /* the queue, in send order */
    sbatch *lprev, *lnext;      /* the unsent list, or its connection's in-flight list */
    uint64_t serial;
    uint32_t count;
    rn_buf ev;
    void *cookie;
    int state, status;
    sconn *conn;                /* B_INFLIGHT */
    unsigned sends, nacks;
    int64_t not_before;         /* after a NACK: monotonic ns before which it waits */
};

typedef struct blist {
    sbatch *head, *tail;
    size_t n;
} blist;

/* A connection's life: resolving (names only), connecting, waiting for the
 * WELCOME, ready; dead once it failed or the sender closed. next_addr: a
 * connect to one of a name's addresses failed, the handle is closing, and
 * the next address is tried from the close callback. */
enum { C_RESOLVING, C_CONNECTING, C_NEXT_ADDR, C_HELLO, C_READY, C_DEAD };

struct sconn {
    uv_tcp_t h;
    uv_connect_t creq;
    uv_getaddrinfo_t gai;
    rn_hop_sender *s;
    starget *t;
    int state;
    int refs;                   /* the open handle, a pending getaddrinfo */
    int handle_open;
    struct addrinfo *ai, *ai_next;
    int last_error;
    rn_buf in;
    size_t in_off;
    blist flight;               /* in the order they were sent */
    uint32_t max_frame;
    uint64_t ready_ms;          /* uv_now at the WELCOME */
};

struct starget {
    rn_hop_target t;
    char name[sizeof ((rn_hop_target *)0)->host + 16];
    rn_hop_sender *s;
    sconn *c;
    uv_timer_t timer;           /* reconnect after a back-off */
    int64_t backoff;            /* balance mode */
    int down;                   /* warned as unreachable, not welcomed since */
};

typedef struct swrite {
    uv_write_t w;
    sconn *c;
    unsigned char hdr[4 + HELLO_LEN > BATCH_HDR ? 4 + HELLO_LEN : BATCH_HDR];
} swrite;

struct rn_hop_sender {
    uv_loop_t *loop;
    rn_hop_sender_opts o;
    size_t window;
    int64_t bmin, bmax;
    uint64_t session, next_serial;
    size_t nt;
    starget t[RN_HOP_MAX_TARGETS];
    sbatch *head, *tail;        /* every batch not yet reported, in send order */
    size_t nq;
    uint64_t qbytes;
    blist unsent;               /* by serial */
    size_t rr;                  /* balance: the target whose turn is next */
    size_t cur;                 /* failover: the target in use */
    size_t fo_failed;           /* failover: failures since the last WELCOME */
    int64_t fo_backoff;
    uv_timer_t retry;           /* wakes NACKed batches after their delay */
    int64_t retry_at;
    int started, closed, pumping, pump_again, delivering;
    int64_t nack_warned_at;
    uint64_t nacks_quiet;
    rn_counters counters;
    uint64_t *c_batches, *c_events, *c_acked, *c_retries, *c_reconnects, *c_duplicates,
        *c_dropped, *c_nacks, *c_delivered;
    char rbuf[READ_CHUNK];
};

static void blist_append(blist *l, sbatch *b)
{
    b->lnext = NULL;
    b->lprev = l->tail;
    if (l->tail)
        l->tail->lnext = b;
    else
        l->head = b;
    l->tail = b;
    l->n++;
}

static void blist_remove(blist *l, sbatch *b)
{
    if (b->lprev)
        b->lprev->lnext = b->lnext;
    else
        l->head = b->lnext;
    if (b->lnext)
        b->lnext->lprev = b->lprev;
    else
        l->tail = b->lprev;
    b->lprev = b->lnext = NULL;
    l->n--;
}

/* Into the unsent list by serial. A new batch has the highest serial and
 * goes to the tail at once; one that comes back is old, so the walk from the
 * head to its place is short. */
static void unsent_insert(rn_hop_sender *s, sbatch *b)
{
    blist *l = &s->unsent;
    sbatch *at = l->head;

    if (!l->tail || l->tail->serial < b->serial) {
        blist_append(l, b);
        return;
    }
    while (at && at->serial < b->serial)
        at = at->lnext;
    b->lnext = at;
    b->lprev = at->lprev;
    if (at->lprev)
        at->lprev->lnext = b;
    else
        l->head = b;
    at->lprev = b;
    l->n++;
}

/* A warning about a receiver: "hop HOST:PORT: ...". */
static void twarn(starget *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void twarn(starget *t, const char *fmt, ...)
{
    char prefix[sizeof t->name + 8];
    va_list ap;

    snprintf(prefix, sizeof prefix, "hop %s: ", t->name);
    va_start(ap, fmt);
    rn_vwarn_to(t->s->o.on_warn, t->s->o.data, prefix, fmt, ap);
    va_end(ap);
}

/* A random non-zero session: getrandom, /dev/urandom, or at worst the time
 * and pid (two senders started in the same nanosecond by the same pid do
 * not happen). */
static uint64_t new_session(void)
{
    uint64_t x = 0;

    if (getrandom(&x, sizeof x, GRND_NONBLOCK) != (ssize_t)sizeof x) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, &x, sizeof x) != (ssize_t)sizeof x)
            x = (uint64_t)rn_now_ns() ^ ((uint64_t)getpid() << 40) ^ (uint64_t)rn_mono_ns();
        if (fd >= 0)
            close(fd);
    }
    return x ? x : 1;
}

rn_hop_sender *rn_hop_sender_new(uv_loop_t *loop, const rn_hop_sender_opts *o, char *err)
{
    rn_hop_sender *s;

    if (o->url.n == 0 || o->url.n > RN_HOP_MAX_TARGETS) {
        rn_seterr(err, "hop sender: %zu receivers (1 to %d)", o->url.n, RN_HOP_MAX_TARGETS);
        return NULL;
    }
    if (!(s = calloc(1, sizeof *s))) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->o = *o;
    s->window = o->window ? o->window : DEFAULT_WINDOW;
    s->bmin = o->backoff_min_ns > 0 ? o->backoff_min_ns : BACKOFF_MIN_NS;
    s->bmax = o->backoff_max_ns > 0 ? o->backoff_max_ns : BACKOFF_MAX_NS;
    if (s->bmax < s->bmin)
        s->bmax = s->bmin;
    s->fo_backoff = s->bmin;
    s->session = new_session();
    s->next_serial = 1;
    s->nt = o->url.n;
    for (size_t i = 0; i < s->nt; i++) {
        starget *t = &s->t[i];
        t->t = o->url.t[i];
        rn_hop__target_name(&t->t, t->name, sizeof t->name);
        t->s = s;
        t->backoff = s->bmin;
        uv_timer_init(loop, &t->timer);
        t->timer.data = t;
    }
    uv_timer_init(loop, &s->retry);
    s->retry.data = s;
    s->c_batches = rn_counter_add(&s->counters, "batches");
    s->c_events = rn_counter_add(&s->counters, "events");
    s->c_acked = rn_counter_add(&s->counters, "acked");
    s->c_retries = rn_counter_add(&s->counters, "retries");
    s->c_reconnects = rn_counter_add(&s->counters, "reconnects");
    s->c_duplicates = rn_counter_add(&s->counters, "duplicates");
    s->c_dropped = rn_counter_add(&s->counters, "dropped");
    s->c_nacks = rn_counter_add(&s->counters, "nacks");
    s->c_delivered = rn_counter_add(&s->counters, "delivered");
    return s;
}

const rn_counters *rn_hop_sender_counters(const rn_hop_sender *s) { return &s->counters; }
size_t rn_hop_sender_unacked(const rn_hop_sender *s) { return s->nq; }
uint64_t rn_hop_sender_unacked_bytes(const rn_hop_sender *s) { return s->qbytes; }

void rn_hop_sender_metrics(const rn_hop_sender *s, rn_prom *p, const char *prefix)
{
    static const rn_prom_desc d[] = {
        { "batches", "batches_sent_total", RN_PROM_COUNTER, "Batches given to the hop to send." },
        { "events", "events_sent_total", RN_PROM_COUNTER, "Events given to the hop to send." },
        { "acked", "batches_acked_total", RN_PROM_COUNTER,
          "Batches the receiver acknowledged (stored, duplicate or dropped)." },
        { "delivered", "events_delivered_total", RN_PROM_COUNTER,
          "Events in batches the receiver acknowledged as stored or as duplicates." },
        { "dropped", "events_dropped_total", RN_PROM_COUNTER,
          "Events in batches the receiver dropped, or that no receiver could take." },
        { "duplicates", "duplicate_batches_total", RN_PROM_COUNTER,
          "Batches the receiver already had (sent again after a lost acknowledgement)." },
        { "retries", "retries_total", RN_PROM_COUNTER, "Batches sent again." },
        { "reconnects", "reconnects_total", RN_PROM_COUNTER,
          "Connections made after one was lost or failed." },
        { "nacks", "nacks_total", RN_PROM_COUNTER, "Batches the receiver refused for now." },
    };
    rn_prom_counters(p, prefix, &s->counters, d, sizeof d / sizeof d[0]);
    rn_prom_one(p, prefix, "unacked_batches", RN_PROM_GAUGE,
                "Batches given to the hop and not acknowledged yet.", s->nq);
    rn_prom_one(p, prefix, "unacked_bytes", RN_PROM_GAUGE,
                "Bytes of the batches not acknowledged yet.", s->qbytes);
}

static void pump(rn_hop_sender *s);
static void target_connect(starget *t, int again);

/* Report the acknowledged batches at the head of the queue, in order. on_ack
 * may send (new batches go to the tail) or close. */
static void deliver(rn_hop_sender *s)
{
    if (s->delivering)
        return;
    s->delivering = 1;
    while (s->head && s->head->state == B_ACKED && !s->closed) {
        sbatch *b = s->head;
        s->head = b->next;
        if (!s->head)
            s->tail = NULL;
        s->nq--;
        s->qbytes -= b->ev.len;
        void *cookie = b->cookie;
        int status = b->status;
        if (status != RN_HOP_DROPPED)
            *s->c_delivered += b->count;
        rn_buf_free(&b->ev);
        free(b);
        (*s->c_acked)++;
        if (s->o.on_ack)
            s->o.on_ack(s->o.data, cookie, status);
    }
    s->delivering = 0;
}

static void conn_release(sconn *c)
{
    if (c->refs > 0 || c->state != C_DEAD)
        return;
    if (c->ai)
        uv_freeaddrinfo(c->ai);
    rn_buf_free(&c->in);
    free(c);
}

static void sconn_closed(uv_handle_t *h);

/* Stop c for good: no warning, no batch moved (the caller does that). */
static void conn_kill(sconn *c)
{
    if (c->state == C_DEAD)
        return;
    if (c->state == C_RESOLVING)
        uv_cancel((uv_req_t *)&c->gai);     /* on_resolved comes back either way */
    c->state = C_DEAD;
    if (c->t->c == c)
        c->t->c = NULL;
    if (c->handle_open && !uv_is_closing((uv_handle_t *)&c->h))
        uv_close((uv_handle_t *)&c->h, sconn_closed);
}

static void arm_timer(starget *t, int64_t ns);

enum { F_CONNECT, F_LOST, F_PEER, F_PROTO };

/* c failed: its batches in flight go back, in order, to be sent again; the
 * target is tried again (balance), or the next one (failover), after a
 * back-off. Warnings: once when a target becomes unreachable, always for a
 * receiver's ERROR or a protocol error. */
static void conn_fail(sconn *c, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void conn_fail(sconn *c, int kind, const char *fmt, ...)
{
    rn_hop_sender *s = c->s;
    starget *t = c->t;
    char why[RN_ERRLEN + 64];
    va_list ap;

    if (c->state == C_DEAD)
        return;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    conn_kill(c);
    while (c->flight.head) {
        sbatch *b = c->flight.head;
        blist_remove(&c->flight, b);
        b->state = B_UNSENT;
        b->conn = NULL;
        unsent_insert(s, b);
    }
    int warn = kind == F_PEER || kind == F_PROTO || !t->down;
    t->down = 1;
    if (s->o.url.balance) {
        arm_timer(t, t->backoff);
        t->backoff = min64(2 * t->backoff, s->bmax);
    } else {
        int64_t delay = 0;
        s->cur = (size_t)(t - s->t + 1) % s->nt;
        if (++s->fo_failed >= s->nt) {
            s->fo_failed = 0;
            delay = s->fo_backoff;
            s->fo_backoff = min64(2 * s->fo_backoff, s->bmax);
        }
        arm_timer(&s->t[s->cur], delay);
    }
    if (warn)
        twarn(t, "%s; retrying", why);
    pump(s);
}

static void on_target_timer(uv_timer_t *h)
{
    target_connect(h->data, 1);
}

static void arm_timer(starget *t, int64_t ns)
{
    if (!t->s->closed)
        uv_timer_start(&t->timer, on_target_timer, delay_ms(ns), 0);
}

static void on_retry_timer(uv_timer_t *h)
{
    rn_hop_sender *s = h->data;
    s->retry_at = 0;
    pump(s);
}

static void arm_retry(rn_hop_sender *s, int64_t at, int64_t now)
{
    if (s->closed || (s->retry_at && s->retry_at <= at))
        return;
    s->retry_at = at;
    uv_timer_start(&s->retry, on_retry_timer, delay_ms(at - now), 0);
}

static void try_addr(sconn *c);

static void sconn_closed(uv_handle_t *h)
{
    sconn *c = h->data;

    c->handle_open = 0;
    c->refs--;
    if (c->state == C_NEXT_ADDR) {
        try_addr(c);
        return;
    }
    conn_release(c);
}

static void on_swritten(uv_write_t *w, int status)
{
    swrite *sw = (swrite *)w;
    sconn *c = sw->c;

    free(sw);
    if (status < 0 && c->state != C_DEAD)
        conn_fail(c, F_LOST, "write: %s", uv_strerror(status));
}

static void sconn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    sconn *c = h->data;
    (void)hint;
    *buf = uv_buf_init(c->s->rbuf, sizeof c->s->rbuf);
}

static int proto_error(sconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int proto_error(sconn *c, const char *fmt, ...)
{
    char why[RN_ERRLEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    conn_fail(c, F_PROTO, "protocol error: %s", why);
    return -1;
}

static sbatch *find_flight(sconn *c, uint64_t serial)
{
    for (sbatch *b = c->flight.head; b; b = b->lnext)
        if (b->serial == serial)
            return b;
    return NULL;
}

static int on_welcome(sconn *c, const unsigned char *body, size_t n)
{
    rn_hop_sender *s = c->s;
    starget *t = c->t;

    if (c->state != C_HELLO)
        return proto_error(c, "a second WELCOME");
    if (n != WELCOME_LEN - 1)
        return proto_error(c, "WELCOME of %zu bytes", n + 1);
    if (body[0] != RN_HOP_VERSION)
        return proto_error(c, "the receiver speaks protocol version %u, not %d", body[0],
                           RN_HOP_VERSION);
    c->max_frame = rn_be32(body + 1);
    c->state = C_READY;
    c->ready_ms = uv_now(s->loop);
    t->backoff = s->bmin;
    s->fo_failed = 0;
    s->fo_backoff = s->bmin;
    if (t->down) {
        t->down = 0;
        twarn(t, "connected");
    }
    pump(s);
    return 0;
}

static int on_ack_frame(sconn *c, const unsigned char *body, size_t n)
{
    rn_hop_sender *s = c->s;

    if (n != ACK_LEN - 1)
        return proto_error(c, "ACK of %zu bytes", n + 1);
    uint64_t serial = rn_be64(body);
    unsigned status = body[8];
    sbatch *b = find_flight(c, serial);
    if (!b)
        return proto_error(c, "ACK for batch %llu, which is not in flight here",
                           (unsigned long long)serial);
    if (status > RN_HOP_DROPPED)
        return proto_error(c, "ACK for batch %llu with unknown status %u",
                           (unsigned long long)serial, status);
    blist_remove(&c->flight, b);
    b->state = B_ACKED;
    b->status = (int)status;
    b->conn = NULL;
    if (status == RN_HOP_DUPLICATE)
        (*s->c_duplicates)++;
    else if (status == RN_HOP_DROPPED)
        *s->c_dropped += b->count;
    deliver(s);
    pump(s);
    return 0;
}

static int on_nack_frame(sconn *c, const unsigned char *body, size_t n)
{
    rn_hop_sender *s = c->s;

    if (n < 8)
        return proto_error(c, "NACK of %zu bytes", n + 1);
    uint64_t serial = rn_be64(body);
    sbatch *b = find_flight(c, serial);
    if (!b)
        return proto_error(c, "NACK for batch %llu, which is not in flight here",
                           (unsigned long long)serial);
    (*s->c_nacks)++;
    blist_remove(&c->flight, b);
    b->state = B_UNSENT;
    b->conn = NULL;
    b->nacks++;
    int64_t now = rn_mono_ns();
    int64_t delay = s->bmin;
    for (unsigned i = 1; i < b->nacks && delay < s->bmax; i++)
        delay *= 2;
    b->not_before = now + min64(delay, s->bmax);
    unsent_insert(s, b);
    arm_retry(s, b->not_before, now);
    /* A receiver whose channel is full may refuse every batch: one line a
     * second says so. */
    if (now - s->nack_warned_at >= NACK_WARN_EVERY_NS || s->nack_warned_at == 0) {
        int rn = n - 8 > MAX_REASON ? MAX_REASON : (int)(n - 8);
        if (s->nacks_quiet)
            twarn(c->t, "batch %llu refused: %.*s; sending it again "
                  "(and %llu more refused since the last report)",
                  (unsigned long long)serial, rn, (const char *)body + 8,
                  (unsigned long long)s->nacks_quiet);
        else
            twarn(c->t, "batch %llu refused: %.*s; sending it again",
                  (unsigned long long)serial, rn, (const char *)body + 8);
        s->nack_warned_at = now;
        s->nacks_quiet = 0;
    } else {
        s->nacks_quiet++;
    }
    pump(s);
    return 0;
}

static int sconn_frame(sconn *c, unsigned char type, const unsigned char *body, size_t n)
{
    char tn[8];

    if (type == T_ERROR) {
        int rn = n > MAX_REASON ? MAX_REASON : (int)n;
        conn_fail(c, F_PEER, "refused by the receiver: %.*s", rn, (const char *)body);
        return -1;
    }
    if (type == T_WELCOME)
        return on_welcome(c, body, n);
    if (c->state != C_READY)
        return proto_error(c, "frame type %s before the WELCOME",
                           rn_hop__type_name(type, tn, sizeof tn));
    if (type == T_ACK)
        return on_ack_frame(c, body, n);
    if (type == T_NACK)
        return on_nack_frame(c, body, n);
    return proto_error(c, "unknown frame type %s", rn_hop__type_name(type, tn, sizeof tn));
}

static void sconn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    sconn *c = st->data;
    rn_hop_sender *s = c->s;

    if (c->state == C_DEAD || n == 0)
        return;
    if (n < 0) {
        int kind = c->state == C_READY ? F_LOST : F_CONNECT;
        if (n == UV_EOF && kind == F_LOST && !c->flight.head
            && uv_now(s->loop) - c->ready_ms >= IDLE_QUIET_MS) {
            /* Closed while nothing was in flight, after a while: a receiver
             * that closes idle connections (chanbuf --idle-timeout). Nothing
             * to send again and nothing to warn about: connect again now. */
            starget *t = c->t;
            conn_kill(c);
            arm_timer(t, 0);
            return;
        }
        if (n == UV_EOF)
            conn_fail(c, kind, "the receiver closed the connection");
        else
            conn_fail(c, kind, "read: %s", uv_strerror((int)n));
        return;
    }
    if (rn_buf_append(&c->in, buf->base, (size_t)n) < 0) {
        conn_fail(c, F_LOST, "out of memory");
        return;
    }
    while (c->state != C_DEAD && !s->closed) {
        const unsigned char *p = (const unsigned char *)c->in.p + c->in_off;
        size_t have = c->in.len - c->in_off;
        if (have < 4)
            break;
        uint32_t len = rn_be32(p);
        if (len == 0 || len > MAX_REPLY_FRAME) {
            proto_error(c, "a frame of %u bytes from the receiver", len);
            return;
        }
        if (have - 4 < len)
            break;
        c->in_off += 4 + (size_t)len;
        sconn_frame(c, p[4], p + 5, len - 1);
    }
    if (c->state == C_DEAD)
        return;
    memmove(c->in.p, c->in.p + c->in_off, c->in.len - c->in_off);
    c->in.len -= c->in_off;
    c->in_off = 0;
}

/* A name's next address is tried once this handle has closed. */
static void connect_failed(sconn *c, int status)
{
    c->last_error = status;
    if (c->ai_next) {
        c->state = C_NEXT_ADDR;
        uv_close((uv_handle_t *)&c->h, sconn_closed);
        return;
    }
    conn_fail(c, F_CONNECT, "connect: %s", uv_strerror(status));
}

static void on_connected(uv_connect_t *req, int status)
{
    sconn *c = req->data;
    rn_hop_sender *s = c->s;
    swrite *w;

    if (c->state == C_DEAD)
        return;
    if (status < 0) {
        connect_failed(c, status);
        return;
    }
    uv_tcp_nodelay(&c->h, 1);
    uv_tcp_keepalive(&c->h, 1, KEEPALIVE_S);
    if (!(w = calloc(1, sizeof *w))) {
        conn_fail(c, F_LOST, "out of memory");
        return;
    }
    w->c = c;
    rn_hop__put_head(w->hdr, T_HELLO, HELLO_LEN);
    memcpy(w->hdr + 5, MAGIC, MAGIC_LEN);
    w->hdr[5 + MAGIC_LEN] = RN_HOP_VERSION;
    rn_put_be64(w->hdr + 6 + MAGIC_LEN, s->session);
    uv_buf_t b = uv_buf_init((char *)w->hdr, 4 + HELLO_LEN);
    int r = uv_read_start((uv_stream_t *)&c->h, sconn_alloc, sconn_read);
    if (r == 0)
        r = uv_write(&w->w, (uv_stream_t *)&c->h, &b, 1, on_swritten);
    if (r < 0) {
        free(w);
        conn_fail(c, F_LOST, "%s", uv_strerror(r));
        return;
    }
    c->state = C_HELLO;
}

static void start_connect(sconn *c, const struct sockaddr *sa)
{
    int r = uv_tcp_init(c->s->loop, &c->h);

    if (r < 0) {
        conn_fail(c, F_CONNECT, "connect: %s", uv_strerror(r));
        return;
    }
    c->h.data = c;
    c->handle_open = 1;
    c->refs++;
    c->creq.data = c;
    c->state = C_CONNECTING;
    if ((r = uv_tcp_connect(&c->creq, &c->h, sa, on_connected)) < 0)
        connect_failed(c, r);
}

/* The next address of a resolved name. */
static void try_addr(sconn *c)
{
    struct addrinfo *ai = c->ai_next;

    if (!ai) {
        conn_fail(c, F_CONNECT, "connect: %s",
                  c->last_error ? uv_strerror(c->last_error) : "no address");
        conn_release(c);
        return;
    }
    c->ai_next = ai->ai_next;
    start_connect(c, ai->ai_addr);
    conn_release(c);    /* when that failed at once */
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sconn *c = req->data;

    c->refs--;
    if (c->state == C_DEAD) {
        if (res)
            uv_freeaddrinfo(res);
        conn_release(c);
        return;
    }
    c->state = C_CONNECTING;    /* the request is over: nothing to cancel */
    if (status < 0) {
        if (res)
            uv_freeaddrinfo(res);
        conn_fail(c, F_CONNECT, "resolve %s: %s", c->t->t.host, uv_strerror(status));
        conn_release(c);
        return;
    }
    c->ai = c->ai_next = res;
    try_addr(c);
}

static void target_connect(starget *t, int again)
{
    rn_hop_sender *s = t->s;
    struct sockaddr_storage ss;
    sconn *c;

    if (s->closed || t->c)
        return;
    if (again)
        (*s->c_reconnects)++;
    if (!(c = calloc(1, sizeof *c))) {
        twarn(t, "out of memory for a connection; retrying");
        arm_timer(t, s->bmax);
        return;
    }
    c->s = s;
    c->t = t;
    t->c = c;
    if (rn_hop__ip_literal(&t->t, &ss)) {
        start_connect(c, (struct sockaddr *)&ss);
        conn_release(c);
        return;
    }
    struct addrinfo hints;
    char port[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%d", t->t.port);
    c->state = C_RESOLVING;
    c->gai.data = c;
    c->refs++;
    int r = uv_getaddrinfo(s->loop, &c->gai, on_resolved, t->t.host, port, &hints);
    if (r < 0) {
        c->refs--;
        c->state = C_CONNECTING;
        conn_fail(c, F_CONNECT, "resolve %s: %s", t->t.host, uv_strerror(r));
        conn_release(c);
    }
}

/* The next ready connection with room in its window, round robin. */
static sconn *pick(rn_hop_sender *s)
{
    for (size_t i = 0; i < s->nt; i++) {
        size_t k = (s->rr + i) % s->nt;
        sconn *c = s->t[k].c;
        if (c && c->state == C_READY && c->flight.n < s->window) {
            s->rr = (k + 1) % s->nt;
            return c;
        }
    }
    return NULL;
}

static void send_batch(sconn *c, sbatch *b)
{
    rn_hop_sender *s = c->s;
    swrite *w;

    blist_remove(&s->unsent, b);
    if (BATCH_HEAD + b->ev.len > c->max_frame) {
        /* No receiver with this limit can ever take it: report it dropped
         * rather than hold up everything behind it. */
        twarn(c->t, "batch %llu of %zu bytes exceeds the receiver's frame limit of "
              "%u bytes; dropped", (unsigned long long)b->serial, b->ev.len, c->max_frame);
        b->state = B_ACKED;
        b->status = RN_HOP_DROPPED;
        *s->c_dropped += b->count;
        deliver(s);
        return;
    }
    if (!(w = malloc(sizeof *w))) {
        unsent_insert(s, b);
        conn_fail(c, F_LOST, "out of memory");
        return;
    }
    w->c = c;
    rn_hop__put_head(w->hdr, T_BATCH, BATCH_HEAD + b->ev.len);
    rn_put_be64(w->hdr + 5, b->serial);
    rn_put_be32(w->hdr + 13, b->count);
    uv_buf_t bufs[2] = { uv_buf_init((char *)w->hdr, BATCH_HDR),
                         uv_buf_init(b->ev.p, (unsigned)b->ev.len) };
    b->state = B_INFLIGHT;
    b->conn = c;
    blist_append(&c->flight, b);
    if (b->sends++)
        (*s->c_retries)++;
    int r = uv_write(&w->w, (uv_stream_t *)&c->h, bufs, b->ev.len ? 2 : 1, on_swritten);
    if (r < 0) {
        free(w);
        conn_fail(c, F_LOST, "write: %s", uv_strerror(r));
    }
}

/* Hand unsent batches, oldest first, to connections with room. Reentrant
 * calls (from on_ack, on_warn, a failure) only ask for another round. */
static void pump(rn_hop_sender *s)
{
    if (s->pumping) {
        s->pump_again = 1;
        return;
    }
    s->pumping = 1;
    do {
        int64_t now = 0;
        s->pump_again = 0;
        for (sbatch *b = s->unsent.head; b && !s->closed;) {
            if (b->not_before) {
                if (!now)
                    now = rn_mono_ns();
                if (b->not_before > now) {
                    arm_retry(s, b->not_before, now);
                    b = b->lnext;
                    continue;
                }
                b->not_before = 0;
            }
            sconn *c = pick(s);
            if (!c)
                break;
            send_batch(c, b);
            b = s->unsent.head;     /* the list may have changed under us */
        }
    } while (s->pump_again && !s->closed);
    s->pumping = 0;
}

int rn_hop_sender_send(rn_hop_sender *s, rn_buf *events, uint32_t count, void *cookie,
                       char *err)
{
    sbatch *b;

    if (s->closed)
        return rn_seterr(err, "hop sender: closed");
    if (!(b = calloc(1, sizeof *b)))
        return rn_seterr(err, "out of memory");
    b->serial = s->next_serial++;
    b->count = count;
    b->ev = *events;
    *events = (rn_buf){ 0 };
    b->cookie = cookie;
    if (s->tail)
        s->tail->next = b;
    else
        s->head = b;
    s->tail = b;
    s->nq++;
    s->qbytes += b->ev.len;
    (*s->c_batches)++;
    *s->c_events += count;
    blist_append(&s->unsent, b);
    if (!s->started) {
        s->started = 1;
        if (s->o.url.balance)
            for (size_t i = 0; i < s->nt; i++)
                target_connect(&s->t[i], 0);
        else
            target_connect(&s->t[0], 0);
    }
    pump(s);
    return 0;
}

void rn_hop_sender_close(rn_hop_sender *s)
{
    if (s->closed)
        return;
    s->closed = 1;
    for (size_t i = 0; i < s->nt; i++) {
        starget *t = &s->t[i];
        if (t->c)
            conn_kill(t->c);
        uv_close((uv_handle_t *)&t->timer, NULL);
    }
    uv_close((uv_handle_t *)&s->retry, NULL);
}

void rn_hop_sender_free(rn_hop_sender *s)
{
    if (!s)
        return;
    while (s->head) {
        sbatch *b = s->head;
        s->head = b->next;
        rn_buf_free(&b->ev);
        free(b);
    }
    free(s);
}
