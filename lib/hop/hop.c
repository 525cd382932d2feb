/* hop.c -- framed, acknowledged TCP hops: addresses, the check of a batch's
 * events, the receiver (rn_hop_server) and the sender (rn_hop_sender).
 * man/chanbuf-hop.5 is the protocol; hop.h says what each call does.
 *
 * Everything runs on the caller's libuv loop; nothing here is thread-safe. */
#include "hop/hop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/core.h"

#define T_HELLO 'H'
#define T_WELCOME 'W'
#define T_BATCH 'B'
#define T_ACK 'A'
#define T_NACK 'N'
#define T_ERROR 'E'

#define MAGIC "RNHOP"
#define MAGIC_LEN 5
#define HELLO_LEN (1 + MAGIC_LEN + 1 + 8)   /* type, magic, version, session */
#define WELCOME_LEN (1 + 1 + 4)             /* type, version, max_frame */
#define ACK_LEN (1 + 8 + 1)                 /* type, serial, status */
#define BATCH_HEAD (1 + 8 + 4)              /* type, serial, count */
#define BATCH_HDR (4 + BATCH_HEAD)          /* what goes before the events */

#define READ_CHUNK (64 * 1024)
/* A receiver's read buffer that grew for a big frame is given back once it
 * is empty, so that an idle connection holds little. */
#define SHRINK_ABOVE (1024 * 1024)
/* The smallest frame limit a receiver may set: a HELLO and a batch of one
 * small event must fit. */
#define MIN_MAX_FRAME 64
#define MAX_MAX_FRAME (1u << 30)
/* What a sender accepts from a receiver: welcomes, acks, and reasons. */
#define MAX_REPLY_FRAME (64 * 1024)
#define MAX_REASON 1024
#define KEEPALIVE_S 60
#define DEFAULT_WINDOW 8
#define BACKOFF_MIN_NS (100 * 1000000LL)
#define BACKOFF_MAX_NS (5 * 1000000000LL)
#define NACK_WARN_EVERY_NS 1000000000LL

/* 'B', or 0x07 for a byte that does not print. */
static const char *type_name(unsigned char t, char *buf, size_t n)
{
    if (t >= 0x21 && t < 0x7f)
        snprintf(buf, n, "'%c'", t);
    else
        snprintf(buf, n, "0x%02x", t);
    return buf;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static uint64_t delay_ms(int64_t ns) { return ns <= 0 ? 0 : (uint64_t)((ns + 999999) / 1000000); }

/* ---- addresses ------------------------------------------------------------ */

static int host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
        || ch == '.' || ch == '-' || ch == '_';
}

/* s[0..n) as HOST:PORT into t; what is wrong into why (RN_ERRLEN). */
static int parse_hostport(const char *s, size_t n, rn_hop_target *t, int port0_ok, char *why)
{
    const char *host, *port;
    size_t hn, pn;
    char tmp[64];

    memset(t, 0, sizeof *t);
    if (n == 0)
        return rn_seterr(why, "missing host and port");
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return rn_seterr(why, "missing ']' after the IPv6 address");
        host = s + 1;
        hn = (size_t)(close - host);
        if (hn == 0)
            return rn_seterr(why, "missing host");
        if (hn >= sizeof tmp)
            return rn_seterr(why, "bad IPv6 address '%.*s'", (int)hn, host);
        memcpy(tmp, host, hn);
        tmp[hn] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return rn_seterr(why, "bad IPv6 address '%s'", tmp);
        if ((size_t)(close + 1 - s) == n || close[1] != ':')
            return rn_seterr(why, (size_t)(close + 1 - s) == n ? "missing port"
                                  : "junk after the IPv6 address (expected ':PORT')");
        port = close + 2;
    } else {
        const char *colon = NULL;
        for (size_t i = n; i > 0; i--) {
            if (s[i - 1] == ':') {
                colon = s + i - 1;
                break;
            }
        }
        if (!colon)
            return rn_seterr(why, "missing port");
        host = s;
        hn = (size_t)(colon - s);
        if (memchr(host, ':', hn))
            return rn_seterr(why, "an IPv6 address must be in brackets, as in [::1]:4141");
        if (hn == 0)
            return rn_seterr(why, "missing host");
        if (hn >= sizeof t->host)
            return rn_seterr(why, "host name of %zu bytes is too long", hn);
        int numeric = 1;
        for (size_t i = 0; i < hn; i++) {
            if (!host_char(host[i]))
                return rn_seterr(why, "bad host name '%.*s'", (int)hn, host);
            if (!(host[i] == '.' || (host[i] >= '0' && host[i] <= '9')))
                numeric = 0;
        }
        if (numeric) {
            struct in_addr a4;
            memcpy(t->host, host, hn);
            if (inet_pton(AF_INET, t->host, &a4) != 1)
                return rn_seterr(why, "bad IPv4 address '%.*s'", (int)hn, host);
        }
        port = colon + 1;
    }
    pn = (size_t)(s + n - port);
    if (pn == 0)
        return rn_seterr(why, "missing port");
    unsigned long v = 0;
    for (size_t i = 0; i < pn; i++) {
        if (port[i] < '0' || port[i] > '9' || pn > 5)
            return rn_seterr(why, "bad port '%.*s'", (int)pn, port);
        v = v * 10 + (unsigned long)(port[i] - '0');
    }
    if (v > 65535)
        return rn_seterr(why, "port %lu is above 65535", v);
    if (v == 0 && !port0_ok)
        return rn_seterr(why, "port 0 is not a receiver's port");
    memcpy(t->host, host, hn);
    t->host[hn] = '\0';
    t->port = (int)v;
    return 0;
}

int rn_hop_addr_parse(const char *s, rn_hop_target *t, char *err)
{
    char why[RN_ERRLEN];

    if (parse_hostport(s, strlen(s), t, 1, why) < 0)
        return rn_seterr(err, "%s: %s", s, why);
    return 0;
}

int rn_hop_url_parse(const char *url, rn_hop_url *u, char *err)
{
    static const char scheme[] = "tcp://";
    char why[RN_ERRLEN];

    memset(u, 0, sizeof *u);
    if (strncmp(url, scheme, sizeof scheme - 1) != 0)
        return rn_seterr(err, "%s: not a tcp:// URL (expected tcp://HOST:PORT)", url);
    const char *p = url + sizeof scheme - 1;
    const char *q = strchr(p, '?');
    const char *end = q ? q : p + strlen(p);

    if (p == end)
        return rn_seterr(err, "%s: no receiver (expected tcp://HOST:PORT)", url);
    int several = memchr(p, ',', (size_t)(end - p)) != NULL;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        if (u->n == RN_HOP_MAX_TARGETS)
            return rn_seterr(err, "%s: more than %d receivers", url, RN_HOP_MAX_TARGETS);
        if (parse_hostport(p, (size_t)(e - p), &u->t[u->n], 0, why) < 0) {
            if (several)
                return rn_seterr(err, "%s: receiver %zu '%.*s': %s", url, u->n + 1,
                                 (int)(e - p), p, why);
            return rn_seterr(err, "%s: %s", url, why);
        }
        u->n++;
        p = e + 1;
    }
    if (!q)
        return 0;
    for (p = q + 1; *p;) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        size_t kn = eq ? (size_t)(eq - p) : n;
        if (kn == 4 && memcmp(p, "mode", 4) == 0 && eq) {
            const char *v = eq + 1;
            size_t vn = n - kn - 1;
            if (vn == 8 && memcmp(v, "failover", 8) == 0)
                u->balance = 0;
            else if (vn == 7 && memcmp(v, "balance", 7) == 0)
                u->balance = 1;
            else
                return rn_seterr(err, "%s: unknown mode '%.*s' (use failover or balance)",
                                 url, (int)vn, v);
        } else {
            return rn_seterr(err, "%s: unknown parameter '%.*s' (only mode= is known)",
                             url, (int)n, p);
        }
        p += n;
        if (*p == '&')
            p++;
    }
    return 0;
}

/* "1.2.3.4:5" or "[::1]:5" of a socket address. */
static void sockaddr_name(const struct sockaddr *sa, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(a, ip, sizeof ip);
        snprintf(out, n, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        uv_ip4_name(a, ip, sizeof ip);
        snprintf(out, n, "%s:%d", ip, ntohs(a->sin_port));
    }
}

static void target_name(const rn_hop_target *t, char *out, size_t n)
{
    if (strchr(t->host, ':'))
        snprintf(out, n, "[%s]:%d", t->host, t->port);
    else
        snprintf(out, n, "%s:%d", t->host, t->port);
}

/* An IP literal straight into ss; 0 when host is a name. */
static int ip_literal(const rn_hop_target *t, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(t->host, t->port, (struct sockaddr_in *)ss) == 0)
        return 1;
    if (uv_ip6_addr(t->host, t->port, (struct sockaddr_in6 *)ss) == 0)
        return 1;
    return 0;
}

/* ---- receiver ---------------------------------------------------------------- */

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
    rn_counters counters;
    uint64_t *c_connections, *c_refused, *c_batches, *c_events;
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
    /* A BUSY batch stays where it is in the buffer (reading has stopped, so
     * nothing moves it) and is offered again from there. */
    int held, held_checked;
    uint64_t held_seq;
    uv_write_t wreq;
    int writing;
    rn_buf out, wbuf;           /* queued frames, and those being written */
};

static void swarn(rn_hop_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void swarn(rn_hop_server *s, const char *fmt, ...)
{
    char msg[RN_ERRLEN + 256];
    va_list ap;

    if (!s->on_warn)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->on_warn(s->data, msg);
}

rn_hop_server *rn_hop_server_new(uv_loop_t *loop, const rn_hop_server_opts *o, char *err)
{
    size_t max_frame = o->max_frame ? o->max_frame : RN_HOP_MAX_FRAME;
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
    if (!(s = calloc(1, sizeof *s))) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->max_frame = max_frame;
    s->on_batch = o->on_batch;
    s->on_warn = o->on_warn;
    s->data = o->data;
    s->c_connections = rn_counter_add(&s->counters, "connections");
    s->c_refused = rn_counter_add(&s->counters, "refused");
    s->c_batches = rn_counter_add(&s->counters, "batches");
    s->c_events = rn_counter_add(&s->counters, "events");
    return s;
}

const rn_counters *rn_hop_server_counters(const rn_hop_server *s) { return &s->counters; }
const char *rn_hop_server_address(const rn_hop_server *s) { return s->address; }

static void conn_freed(uv_handle_t *h)
{
    hconn *c = h->data;
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
    uv_close((uv_handle_t *)&c->h, conn_freed);
}

static void conn_flush(hconn *c);

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
    conn_flush(c);
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
    unsigned char head[5];

    rn_put_be32(head, (uint32_t)(1 + an + bn));
    head[4] = (unsigned char)type;
    if (rn_buf_append(&c->out, head, sizeof head) < 0 || rn_buf_append(&c->out, a, an) < 0
        || rn_buf_append(&c->out, b, bn) < 0) {
        conn_close(c);
        return -1;
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
    swarn(s, "hop %s: %s", c->peer, msg);
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
                          type_name(type, tn, sizeof tn));
        if (len != HELLO_LEN)
            return refuse(c, off, "HELLO of %u bytes (expected %d)", len, HELLO_LEN);
        return 0;
    }
    if (type == T_HELLO)
        return refuse(c, off + 4, "a second HELLO");
    if (type != T_BATCH)
        return refuse(c, off + 4, "unknown frame type %s", type_name(type, tn, sizeof tn));
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

    while (!c->closing && !c->refusing && !c->held && !s->input_stopped) {
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

/* Read straight into the connection's buffer. It is only as large as the
 * frame being read needs (whose length was checked before), and never above
 * max_frame + 5 bytes. */
static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    hconn *c = h->data;
    size_t want = READ_CHUNK, limit = c->s->max_frame + 5;

    (void)hint;
    if (c->in_off) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->base += c->in_off;
        c->in_off = 0;
    }
    if (c->in_len == 0 && c->in_cap > SHRINK_ABOVE) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    if (c->in_len >= 4) {
        size_t need = 4 + (size_t)rn_be32(c->in);
        if (need > want)
            want = need;
    }
    if (want > limit)
        want = limit;
    if (c->in_cap < want) {
        unsigned char *p = realloc(c->in, want);
        if (!p) {
            *buf = uv_buf_init(NULL, 0);    /* read_cb gets UV_ENOBUFS */
            return;
        }
        c->in = p;
        c->in_cap = want;
    }
    *buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    hconn *c = st->data;

    (void)buf;
    if (c->closing || n == 0)
        return;
    if (n == UV_ENOBUFS) {
        swarn(c->s, "hop %s: out of memory for the read buffer; closing", c->peer);
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
    conn_process(c);
}

static void on_connection(uv_stream_t *ls, int status)
{
    rn_hop_server *s = ls->data;
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    hconn *c;

    if (status < 0) {
        swarn(s, "hop %s: accept: %s", s->address, uv_strerror(status));
        return;
    }
    if (!(c = calloc(1, sizeof *c))) {
        swarn(s, "hop %s: out of memory for a connection", s->address);
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
        sockaddr_name((struct sockaddr *)&ss, c->peer, sizeof c->peer);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    (*s->c_connections)++;
    if (uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = 1;
}

/* The listener's address: an IP literal, or a name resolved here, once, at
 * start-up (blocking is harmless then). */
static int listen_addr(uv_loop_t *loop, const rn_hop_target *t, struct sockaddr_storage *ss,
                       char *err)
{
    struct addrinfo hints, *ai;
    uv_getaddrinfo_t req;
    char port[8];

    if (ip_literal(t, ss))
        return 0;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(port, sizeof port, "%d", t->port);
    int r = uv_getaddrinfo(loop, &req, NULL, t->host, port, &hints);
    if (r < 0)
        return rn_seterr(err, "%s: %s", t->host, uv_strerror(r));
    ai = req.addrinfo;
    if (!ai || ai->ai_addrlen > sizeof *ss) {
        uv_freeaddrinfo(ai);
        return rn_seterr(err, "%s: no address", t->host);
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    uv_freeaddrinfo(ai);
    return 0;
}

int rn_hop_server_listen(rn_hop_server *s, const char *addr, char *err)
{
    struct sockaddr_storage ss;
    rn_hop_target t;
    int sl = sizeof ss, r;

    if (s->listen_tried || s->input_stopped)
        return rn_seterr(err, "hop server: listen was called before");
    if (rn_hop_addr_parse(addr, &t, err) < 0 || listen_addr(s->loop, &t, &ss, err) < 0)
        return -1;
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
        sockaddr_name((struct sockaddr *)&ss, s->address, sizeof s->address);
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
        conn_process(c);
        if (!c->held && !c->closing && !c->refusing && !c->reading && !s->input_stopped) {
            if (uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read) < 0)
                conn_close(c);
            else
                c->reading = 1;
        }
    }
    s->resuming = 0;
}

void rn_hop_server_stop_input(rn_hop_server *s)
{
    if (s->input_stopped)
        return;
    s->input_stopped = 1;
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

/* ---- sender -------------------------------------------------------------------- */

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
        *c_dropped, *c_nacks;
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

static void xwarn(rn_hop_sender *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void xwarn(rn_hop_sender *s, const char *fmt, ...)
{
    char msg[RN_ERRLEN + 512];
    va_list ap;

    if (!s->o.on_warn)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->o.on_warn(s->o.data, msg);
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
        target_name(&t->t, t->name, sizeof t->name);
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
    return s;
}

const rn_counters *rn_hop_sender_counters(const rn_hop_sender *s) { return &s->counters; }
size_t rn_hop_sender_unacked(const rn_hop_sender *s) { return s->nq; }
uint64_t rn_hop_sender_unacked_bytes(const rn_hop_sender *s) { return s->qbytes; }

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
        xwarn(s, "hop %s: %s; retrying", t->name, why);
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
    t->backoff = s->bmin;
    s->fo_failed = 0;
    s->fo_backoff = s->bmin;
    if (t->down) {
        t->down = 0;
        xwarn(s, "hop %s: connected", t->name);
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
            xwarn(s, "hop %s: batch %llu refused: %.*s; sending it again "
                  "(and %llu more refused since the last report)", c->t->name,
                  (unsigned long long)serial, rn, (const char *)body + 8,
                  (unsigned long long)s->nacks_quiet);
        else
            xwarn(s, "hop %s: batch %llu refused: %.*s; sending it again", c->t->name,
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
                           type_name(type, tn, sizeof tn));
    if (type == T_ACK)
        return on_ack_frame(c, body, n);
    if (type == T_NACK)
        return on_nack_frame(c, body, n);
    return proto_error(c, "unknown frame type %s", type_name(type, tn, sizeof tn));
}

static void sconn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    sconn *c = st->data;
    rn_hop_sender *s = c->s;

    if (c->state == C_DEAD || n == 0)
        return;
    if (n < 0) {
        int kind = c->state == C_READY ? F_LOST : F_CONNECT;
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
    rn_put_be32(w->hdr, HELLO_LEN);
    w->hdr[4] = T_HELLO;
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
        xwarn(s, "hop %s: out of memory for a connection; retrying", t->name);
        arm_timer(t, s->bmax);
        return;
    }
    c->s = s;
    c->t = t;
    t->c = c;
    if (ip_literal(&t->t, &ss)) {
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
        xwarn(s, "hop %s: batch %llu of %zu bytes exceeds the receiver's frame limit of "
              "%u bytes; dropped", c->t->name, (unsigned long long)b->serial, b->ev.len,
              c->max_frame);
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
    rn_put_be32(w->hdr, (uint32_t)(BATCH_HEAD + b->ev.len));
    w->hdr[4] = T_BATCH;
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
