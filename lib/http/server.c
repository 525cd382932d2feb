/* server.c -- runnel's HTTP/1.1 server (rn_http) on libuv: requests parsed
 * by http_parser and held against bounds, answers and streams written from
 * shared, reference-counted buffers (see http.h).
 *
 * A body sent to many clients (a window's event to 200 streams, one
 * rendering of the metrics to every scraper) is one buffer shared by every
 * write that sends it: 200 write requests, not 200 copies. */
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hop/hop.h"        /* addresses: parsing, resolving, naming */
#include "http/http.h"

#define READ_BUF (64 * 1024)
#define LINGER_MS 2000      /* at most, after an error answer, for the peer's close */

typedef rn_http_msg msg;
typedef rn_http_conn conn;

typedef struct wreq {
    uv_write_t req;
    conn *c;
    size_t n;
    msg *m[2];
} wreq;

/* The causes warned about, once each. */
enum { W_BAD, W_METHOD, W_BIG, W_FULL, W_SLOW, W_IDLE, W_ACCEPT, W_NOMEM, W_COUNT };

struct rn_http_conn {
    uv_tcp_t h;
    uv_timer_t timer;
    uv_shutdown_t sreq;
    rn_http *s;
    conn *prev, *next;
    int handles;            /* open handles; freed when the last has closed */
    http_parser parser;
    rn_buf url;
    size_t msg_bytes;       /* of the request being read, head and body */
    int in_msg, head_done, head_checked, msg_done, url_too_long, nomem;
    int sse, eof, closing, lingering, close_after;
    size_t writes;          /* in flight */
};

struct rn_http {
    uv_loop_t *loop;
    const char *name;
    size_t max_clients, max_header, max_request, max_queue;
    uint64_t idle_ms;
    int weak;
    void (*on_request)(void *data, const rn_http_req *r);
    void *data;
    rn_warn_fn *on_warn;
    void *warn_data;
    uv_tcp_t listener;
    int listener_open, listen_tried, closed;
    char address[INET6_ADDRSTRLEN + 16];
    conn *conns;            /* every connection until freed, closing ones too */
    size_t nconns;
    int warned[W_COUNT];
    rn_counters counters;
    uint64_t *c_clients, *c_refused, *c_requests, *c_bad, *c_dropped, *c_timeouts,
        *c_streams;
    char rbuf[READ_BUF];    /* every read lands here and is parsed at once */
};

static int on_begin(http_parser *p);
static int on_url(http_parser *p, const char *at, size_t n);
static int on_headers(http_parser *p);
static int on_complete(http_parser *p);

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_headers_complete = on_headers,
    .on_message_complete = on_complete,
};

/* ---- shared buffers ------------------------------------------------------ */

rn_http_msg *rn_http_msg_new(size_t len)
{
    msg *m = malloc(sizeof *m + len);
    if (!m)
        return NULL;
    m->refs = 1;
    m->len = len;
    m->p = m->buf;
    return m;
}

rn_http_msg *rn_http_msg_static(const void *p, size_t len)
{
    msg *m = malloc(sizeof *m);
    if (!m)
        return NULL;
    m->refs = 1;
    m->len = len;
    m->p = p;
    return m;
}

rn_http_msg *rn_http_msg_ref(rn_http_msg *m)
{
    m->refs++;
    return m;
}

void rn_http_msg_unref(rn_http_msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

/* ---- warnings -------------------------------------------------------------- */

static void peer_name(conn *c, char *out, size_t n)
{
    struct sockaddr_storage ss;
    int sl = sizeof ss;

    if (uv_tcp_getpeername(&c->h, (struct sockaddr *)&ss, &sl) == 0)
        rn_hop_sockaddr_name((struct sockaddr *)&ss, out, n);
    else
        snprintf(out, n, "?");
}

/* "NAME: client PEER: what" the first time a cause happens; the counters
 * count every time. */
static void warn_once(rn_http *s, int cause, conn *c, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void warn_once(rn_http *s, int cause, conn *c, const char *fmt, ...)
{
    char prefix[INET6_ADDRSTRLEN + 96], who[INET6_ADDRSTRLEN + 16];
    char what[RN_ERRLEN];
    va_list ap;

    if (s->warned[cause])
        return;
    s->warned[cause] = 1;
    if (c) {
        peer_name(c, who, sizeof who);
        snprintf(prefix, sizeof prefix, "%s: client %s: ", s->name, who);
    } else {
        snprintf(prefix, sizeof prefix, "%s %s: ", s->name, s->address);
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    rn_warn_to(s->on_warn, s->warn_data, "%s%s (said once; the counters count the others)",
               prefix, what);
}

/* ---- the server ------------------------------------------------------------ */

static uint64_t ns_to_ms(int64_t ns)
{
    uint64_t ms = (uint64_t)(ns / 1000000);
    return ms ? ms : 1;
}

rn_http *rn_http_new(uv_loop_t *loop, const rn_http_opts *o, char *err)
{
    rn_http *s;

    if (o->idle_ns < 0 || !o->on_request) {
        rn_seterr(err, "%s: %s", o->name ? o->name : "http",
                  o->idle_ns < 0 ? "negative timeout" : "no request handler");
        return NULL;
    }
    if (!(s = calloc(1, sizeof *s))) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->name = o->name ? o->name : "http";
    s->max_clients = o->max_clients ? o->max_clients : RN_HTTP_MAX_CLIENTS;
    s->max_header = o->max_header ? o->max_header : RN_HTTP_MAX_HEADER;
    s->max_request = o->max_request ? o->max_request : RN_HTTP_MAX_REQUEST;
    if (s->max_request < s->max_header)
        s->max_request = s->max_header;
    s->max_queue = o->max_queue ? o->max_queue : RN_HTTP_MAX_QUEUE;
    s->idle_ms = ns_to_ms(o->idle_ns ? o->idle_ns : RN_HTTP_IDLE_NS);
    s->weak = o->weak;
    s->on_request = o->on_request;
    s->data = o->data;
    s->on_warn = o->on_warn;
    s->warn_data = o->warn_data;
    s->c_clients = rn_counter_add(&s->counters, "clients");
    s->c_refused = rn_counter_add(&s->counters, "refused");
    s->c_requests = rn_counter_add(&s->counters, "requests");
    s->c_bad = rn_counter_add(&s->counters, "bad_requests");
    s->c_dropped = rn_counter_add(&s->counters, "dropped");
    s->c_timeouts = rn_counter_add(&s->counters, "timeouts");
    s->c_streams = rn_counter_add(&s->counters, "streams");
    return s;
}

const char *rn_http_address(const rn_http *s) { return s->address; }
const rn_counters *rn_http_counters(const rn_http *s) { return &s->counters; }

/* ---- connections ------------------------------------------------------------ */

static void conn_freed(uv_handle_t *h)
{
    conn *c = h->data;
    rn_http *s = c->s;

    if (--c->handles > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    rn_buf_free(&c->url);
    free(c);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (c->sse)
        (*c->s->c_streams)--;
    uv_close((uv_handle_t *)&c->timer, conn_freed);
    uv_close((uv_handle_t *)&c->h, conn_freed);
}

static void conn_idle(uv_timer_t *t)
{
    conn *c = t->data;

    (*c->s->c_timeouts)++;
    if (c->in_msg && !c->lingering)
        warn_once(c->s, W_IDLE, c, "sent part of a request and not the rest within %llu ms: "
                  "closed", (unsigned long long)c->s->idle_ms);
    conn_close(c);
}

static void conn_timer(conn *c, uint64_t ms)
{
    uv_timer_start(&c->timer, conn_idle, ms, 0);
}

static void conn_shut(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    if (status < 0)
        conn_close(c);
}

/* After an answer that ends the connection: send our FIN, then read and drop
 * what the peer still sends until it closes too (or LINGER_MS pass), so that
 * closing with its bytes unread does not reset the connection under the
 * answer before the peer has read it. */
static void conn_linger(conn *c)
{
    if (c->lingering || c->closing)
        return;
    c->lingering = 1;
    c->sreq.data = c;
    if (c->eof || uv_shutdown(&c->sreq, (uv_stream_t *)&c->h, conn_shut) < 0) {
        conn_close(c);
        return;
    }
    conn_timer(c, c->s->idle_ms < LINGER_MS ? c->s->idle_ms : LINGER_MS);
}

static void conn_written(uv_write_t *req, int status)
{
    wreq *w = req->data;
    conn *c = w->c;

    for (size_t i = 0; i < w->n; i++)
        rn_http_msg_unref(w->m[i]);
    free(w);
    c->writes--;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->writes == 0 && c->eof)
        conn_close(c);
    else if (c->writes == 0 && c->close_after)
        conn_linger(c);
}

static void conn_nomem(conn *c)
{
    warn_once(c->s, W_NOMEM, c, "out of memory: closed");
    conn_close(c);
}

/* Send a (and b, may be NULL): their references pass to the write. A client
 * that has more than max_queue bytes waiting (and something waiting at all:
 * one message always goes, however big) is dropped. -1 when the connection
 * was closed. */
static int conn_send(conn *c, msg *a, msg *b)
{
    rn_http *s = c->s;
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->h);
    size_t len = a->len + (b ? b->len : 0);
    wreq *w;

    if (c->closing) {
        rn_http_msg_unref(a);
        rn_http_msg_unref(b);
        return -1;
    }
    if (queued > 0 && queued + len > s->max_queue) {
        (*s->c_dropped)++;
        warn_once(s, W_SLOW, c, "does not read what is sent to it: dropped with %zu bytes "
                  "queued", queued);
        rn_http_msg_unref(a);
        rn_http_msg_unref(b);
        conn_close(c);
        return -1;
    }
    if (!(w = malloc(sizeof *w))) {
        rn_http_msg_unref(a);
        rn_http_msg_unref(b);
        conn_nomem(c);
        return -1;
    }
    uv_buf_t bufs[2];
    w->c = c;
    w->n = 0;
    w->req.data = w;
    w->m[w->n] = a;
    bufs[w->n++] = uv_buf_init((char *)a->p, (unsigned)a->len);
    if (b) {
        w->m[w->n] = b;
        bufs[w->n++] = uv_buf_init((char *)b->p, (unsigned)b->len);
    }
    if (uv_write(&w->req, (uv_stream_t *)&c->h, bufs, (unsigned)w->n, conn_written) < 0) {
        for (size_t i = 0; i < w->n; i++)
            rn_http_msg_unref(w->m[i]);
        free(w);
        conn_close(c);
        return -1;
    }
    c->writes++;
    return 0;
}

/* ---- answers ------------------------------------------------------------------ */

int rn_http_path_is(const rn_http_req *r, const char *path)
{
    return r->path_len == strlen(path) && memcmp(r->path, path, r->path_len) == 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

/* The head of an answer into out (at least 512 bytes); its length. */
static size_t head(char *out, int status, const char *type, size_t len, int keep)
{
    return (size_t)snprintf(out, 512,
                            "HTTP/1.1 %d %s\r\n"
                            "Content-Type: %s\r\n"
                            "Content-Length: %zu\r\n"
                            "Cache-Control: no-store\r\n"
                            "X-Content-Type-Options: nosniff\r\n"
                            "%s"
                            "Connection: %s\r\n\r\n",
                            status, reason(status), type, len,
                            status == 405 ? "Allow: GET, HEAD\r\n" : "",
                            keep ? "keep-alive" : "close");
}

/* Whether the answer to r leaves the connection open. */
static int keeps(const rn_http_req *r, int status)
{
    return (status < 400 || status == 404) && http_should_keep_alive(&r->c->parser);
}

void rn_http_answer(const rn_http_req *r, int status, const char *type, const char *body,
                    size_t len)
{
    conn *c = r->c;
    char h[512];
    int keep = keeps(r, status);
    size_t hn = head(h, status, type, len, keep);
    size_t bn = r->head ? 0 : len;
    msg *m = rn_http_msg_new(hn + bn);

    if (!m) {
        conn_nomem(c);
        return;
    }
    memcpy(m->buf, h, hn);
    if (bn)
        memcpy(m->buf + hn, body, bn);
    if (!keep)
        c->close_after = 1;
    conn_send(c, m, NULL);
}

void rn_http_answer_msg(const rn_http_req *r, const char *type, rn_http_msg *body)
{
    conn *c = r->c;
    char h[512];
    int keep = keeps(r, 200);
    size_t hn = head(h, 200, type, body->len, keep);
    msg *m = rn_http_msg_new(hn);

    if (!m) {
        rn_http_msg_unref(body);
        conn_nomem(c);
        return;
    }
    memcpy(m->buf, h, hn);
    if (!keep)
        c->close_after = 1;
    if (r->head) {
        rn_http_msg_unref(body);
        body = NULL;
    }
    conn_send(c, m, body);
}

static void refuse(conn *c, int status, const char *why, int head_only)
{
    char body[RN_ERRLEN + 64];
    int n = snprintf(body, sizeof body, "%d %s: %s\n", status, reason(status), why);
    rn_http_req r = { .c = c, .head = head_only };

    if (status != 404) {
        (*c->s->c_bad)++;
        int cause = status == 405 ? W_METHOD : status == 400 ? W_BAD : W_BIG;
        warn_once(c->s, cause, c, "%d %s: %s", status, reason(status), why);
    }
    rn_http_answer(&r, status, "text/plain; charset=utf-8", body,
                   n < (int)sizeof body ? (size_t)n : sizeof body - 1);
}

void rn_http_refuse(const rn_http_req *r, int status, const char *why)
{
    refuse(r->c, status, why, r->head);
}

void rn_http_nomem(const rn_http_req *r) { conn_nomem(r->c); }

void rn_http_stream(const rn_http_req *r, const char *type, const char *prelude, size_t len,
                    rn_http_msg *first)
{
    conn *c = r->c;
    rn_http *s = c->s;
    int n;
    msg *m = rn_http_msg_new(512 + len);

    if (!m) {
        rn_http_msg_unref(first);
        conn_nomem(c);
        return;
    }
    n = snprintf(m->buf, 512,
                 "HTTP/1.1 200 OK\r\n"
                 "Content-Type: %s\r\n"
                 "Cache-Control: no-store\r\n"
                 "X-Content-Type-Options: nosniff\r\n"
                 "Connection: close\r\n\r\n", type);
    m->len = n < 512 ? (size_t)n : 511;     /* types are ours, and short */
    if (r->head) {
        rn_http_msg_unref(first);
        c->close_after = 1;
        conn_send(c, m, NULL);
        return;
    }
    memcpy(m->buf + m->len, prelude, len);
    m->len += len;
    if (conn_send(c, m, first) < 0)
        return;
    c->sse = 1;
    (*s->c_streams)++;
    uv_timer_stop(&c->timer);
    rn_buf_free(&c->url);       /* a stream reads no more requests */
}

void rn_http_broadcast(rn_http *s, rn_http_msg *m)
{
    for (conn *c = s->conns; c; c = c->next)
        if (c->sse && !c->closing)
            conn_send(c, rn_http_msg_ref(m), NULL);
}

/* A whole request has been read: answer it. */
static void handle(conn *c)
{
    rn_http *s = c->s;
    enum http_method m = (enum http_method)c->parser.method;
    struct http_parser_url u;

    (*s->c_requests)++;
    if (c->parser.upgrade)          /* what follows is not HTTP: read no more */
        c->close_after = 1;
    if (m != HTTP_GET && m != HTTP_HEAD) {
        char why[64];
        snprintf(why, sizeof why, "method %s", http_method_str(m));
        refuse(c, 405, why, 0);
        return;
    }
    http_parser_url_init(&u);
    if (c->url.len == 0 || http_parser_parse_url(c->url.p, c->url.len, 0, &u) != 0
        || !(u.field_set & (1 << UF_PATH))) {
        refuse(c, 400, "bad request target", m == HTTP_HEAD);
        return;
    }
    rn_http_req r = {
        .c = c, .head = m == HTTP_HEAD,
        .path = c->url.p + u.field_data[UF_PATH].off, .path_len = u.field_data[UF_PATH].len,
        .query = "",
    };
    if (u.field_set & (1 << UF_QUERY)) {
        r.query = c->url.p + u.field_data[UF_QUERY].off;
        r.query_len = u.field_data[UF_QUERY].len;
    }
    s->on_request(s->data, &r);
    if (!c->closing && !c->sse)
        conn_timer(c, s->idle_ms);
}

/* ---- reading requests ---------------------------------------------------------- */

static int on_begin(http_parser *p)
{
    conn *c = p->data;
    c->in_msg = 1;
    c->head_done = c->head_checked = c->msg_done = 0;
    c->url.len = 0;
    c->msg_bytes = 0;
    conn_timer(c, c->s->idle_ms);   /* the whole request within idle_ms */
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    conn *c = p->data;
    if (c->url.len + n > c->s->max_header) {
        c->url_too_long = 1;
        return -1;
    }
    if (rn_buf_append(&c->url, at, n) < 0) {
        c->nomem = 1;
        return -1;
    }
    return 0;
}

/* Pause at the end of the head and of the request, so that the parser
 * returns there and the bytes it took can be held against the bounds. */
static int on_headers(http_parser *p)
{
    conn *c = p->data;
    c->head_done = 1;
    http_parser_pause(p, 1);
    return 0;
}

static int on_complete(http_parser *p)
{
    conn *c = p->data;
    c->msg_done = 1;
    http_parser_pause(p, 1);
    return 0;
}

static void conn_feed(conn *c, const char *p, size_t n)
{
    rn_http *s = c->s;

    while (n > 0 && !c->closing && !c->sse && !c->close_after) {
        size_t used = http_parser_execute(&c->parser, &settings, p, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

        p += used;
        n -= used;
        c->msg_bytes += used;
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
        } else if (e != HPE_OK) {
            if (c->nomem)
                conn_nomem(c);
            else if (c->url_too_long || e == HPE_HEADER_OVERFLOW)
                refuse(c, 431, "request head over the limit", 0);
            else
                refuse(c, 400, http_errno_description(e), 0);
            return;
        }
        if (c->in_msg && !c->head_checked) {
            if (c->msg_bytes > s->max_header) {
                refuse(c, 431, "request head over the limit", 0);
                return;
            }
            c->head_checked = c->head_done;
        }
        if (c->in_msg && c->msg_bytes > s->max_request) {
            refuse(c, 413, "request over the limit", 0);
            return;
        }
        if (c->msg_done) {
            c->in_msg = c->msg_done = 0;
            handle(c);
        } else if (e == HPE_OK && n > 0) {
            c->close_after = 1;         /* an upgrade: not ours to read */
        }
    }
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    conn *c = h->data;
    (void)hint;
    *buf = uv_buf_init(c->s->rbuf, sizeof c->s->rbuf);
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    conn *c = st->data;

    if (n == 0 || c->closing)
        return;
    if (n < 0) {
        /* The peer is done sending: finish what is being written, then
         * close. A stream (or one whose reads failed) closes now. */
        c->eof = 1;
        uv_read_stop(st);
        if (n != UV_EOF || c->sse || c->lingering || c->writes == 0)
            conn_close(c);
        return;
    }
    if (c->lingering || c->sse || c->close_after)
        return;         /* dropped */
    conn_feed(c, buf->base, (size_t)n);
}

/* Over max_clients: a 503 if the socket takes it at once, and a close. What
 * the client has sent already is read first, so that the close does not
 * reset the connection under the answer. Nothing is held. */
static void refused_freed(uv_handle_t *h) { free(h); }

static void refuse_full(rn_http *s)
{
    static const char ans[] =
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 25\r\n"
        "Retry-After: 5\r\n"
        "Connection: close\r\n\r\n"
        "503 too many clients now\n";
    uv_tcp_t *t = malloc(sizeof *t);
    uv_os_fd_t fd;

    if (!t || uv_tcp_init(s->loop, t) < 0) {
        free(t);
        return;
    }
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)t) == 0) {
        (*s->c_refused)++;
        warn_once(s, W_FULL, NULL, "%zu clients connected already: one more refused "
                  "with 503", s->max_clients);
        if (uv_fileno((uv_handle_t *)t, &fd) == 0)
            while (recv(fd, s->rbuf, sizeof s->rbuf, MSG_DONTWAIT) > 0)
                ;
        uv_buf_t b = uv_buf_init((char *)ans, sizeof ans - 1);
        uv_try_write((uv_stream_t *)t, &b, 1);
    }
    uv_close((uv_handle_t *)t, refused_freed);
}

static void on_connection(uv_stream_t *ls, int status)
{
    rn_http *s = ls->data;
    conn *c;

    if (status < 0) {
        warn_once(s, W_ACCEPT, NULL, "accept: %s", uv_strerror(status));
        return;
    }
    if (s->nconns >= s->max_clients) {
        refuse_full(s);
        return;
    }
    if (!(c = calloc(1, sizeof *c))) {
        warn_once(s, W_NOMEM, NULL, "out of memory: a client refused");
        refuse_full(s);
        return;
    }
    c->s = s;
    uv_tcp_init(s->loop, &c->h);
    uv_timer_init(s->loop, &c->timer);
    if (s->weak) {
        uv_unref((uv_handle_t *)&c->h);
        uv_unref((uv_handle_t *)&c->timer);
    }
    c->h.data = c->timer.data = c;
    c->handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_accept(ls, (uv_stream_t *)&c->h) < 0) {
        conn_close(c);
        return;
    }
    (*s->c_clients)++;
    uv_tcp_nodelay(&c->h, 1);
    conn_timer(c, s->idle_ms);
    if (uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read) < 0)
        conn_close(c);
}

/* ---- listening, closing --------------------------------------------------------- */

/* ":PORT" is loopback: what is to be reached from other hosts is named. */
static int addr_parse(const char *addr, rn_hop_target *t, char *err)
{
    char full[300];

    if (addr[0] == ':' && strlen(addr) < sizeof full - 10) {
        snprintf(full, sizeof full, "127.0.0.1%s", addr);
        return rn_hop_addr_parse(full, t, err);
    }
    return rn_hop_addr_parse(addr, t, err);
}

int rn_http_addr_parse(const char *addr, char *host, size_t hostlen, int *port, char *err)
{
    rn_hop_target t;
    if (addr_parse(addr, &t, err) < 0)
        return RN_ERR;
    snprintf(host, hostlen, "%s", t.host);
    *port = t.port;
    return 0;
}

int rn_http_listen(rn_http *s, const char *addr, char *err)
{
    struct sockaddr_storage ss;
    rn_hop_target t;
    int sl = sizeof ss, r;

    if (s->listen_tried || s->closed)
        return rn_seterr(err, "%s: %s", s->name,
                         s->closed ? "listen after close" : "listen was called before");
    s->listen_tried = 1;
    char why[RN_ERRLEN];
    if (addr_parse(addr, &t, why) < 0 || rn_hop_listen_addr(s->loop, &t, &ss, why) < 0)
        return rn_seterr(err, "%s: %s", s->name, why);
    if ((r = uv_tcp_init(s->loop, &s->listener)) < 0)
        return rn_seterr(err, "%s: listen on %s: %s", s->name, addr, uv_strerror(r));
    s->listener.data = s;
    s->listener_open = 1;
    if (s->weak)
        uv_unref((uv_handle_t *)&s->listener);
    if ((r = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0)) < 0
        || (r = uv_listen((uv_stream_t *)&s->listener, SOMAXCONN, on_connection)) < 0) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        s->listener_open = 0;
        return rn_seterr(err, "%s: listen on %s: %s", s->name, addr, uv_strerror(r));
    }
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &sl) == 0)
        rn_hop_sockaddr_name((struct sockaddr *)&ss, s->address, sizeof s->address);
    return 0;
}

void rn_http_close(rn_http *s)
{
    if (s->closed)
        return;
    s->closed = 1;
    if (s->listener_open) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        s->listener_open = 0;
    }
    for (conn *c = s->conns; c; c = c->next)
        conn_close(c);
}

void rn_http_free(rn_http *s)
{
    free(s);
}
