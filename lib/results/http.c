/* http.c -- the live dashboard (rn_dash): HTTP/1.1 on libuv, requests parsed
 * by http_parser; the page, the recent windows as JSON, and Server-Sent
 * Events of the windows as they are published.
 *
 * A published window is turned into its event ("event: window\ndata: JSON")
 * once, and that one buffer is shared, by reference count, by every write
 * that sends it and by the list of windows held; so 200 event streams cost
 * 200 write requests a window, not 200 copies. */
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hop/hop.h"        /* addresses: parsing, resolving, naming */
#include "results/results_int.h"

#define READ_BUF (64 * 1024)
#define LINGER_MS 2000      /* at most, after an error answer, for the peer's close */
#define SSE_HEAD "event: window\ndata: "
#define SSE_HEAD_LEN (sizeof SSE_HEAD - 1)

/* Bytes that several writes share: a window's event, the page. */
typedef struct msg {
    size_t refs, len;
    const char *p;
    char buf[];
} msg;

typedef struct dwin {
    int64_t start, end;
    msg *ev;            /* SSE_HEAD JSON "\n\n" */
} dwin;

typedef struct conn conn;

typedef struct wreq {
    uv_write_t req;
    conn *c;
    size_t n;
    msg *m[2];
} wreq;

/* The causes warned about, once each. */
enum { W_BAD, W_METHOD, W_BIG, W_FULL, W_SLOW, W_IDLE, W_ACCEPT, W_NOMEM, W_COUNT };

struct conn {
    uv_tcp_t h;
    uv_timer_t timer;
    uv_shutdown_t sreq;
    rn_dash *d;
    conn *prev, *next;
    int handles;            /* open handles; freed when the last has closed */
    http_parser parser;
    rn_buf url;
    size_t msg_bytes;       /* of the request being read, head and body */
    int in_msg, head_done, head_checked, msg_done, url_too_long, nomem;
    int sse, eof, closing, lingering, close_after;
    size_t writes;          /* in flight */
};

struct rn_dash {
    uv_loop_t *loop;
    size_t keep, max_clients, max_header, max_request, max_queue;
    uint64_t idle_ms, keepalive_ms;
    rn_warn_fn *on_warn;
    void *data;
    uv_tcp_t listener;
    uv_timer_t ka;
    int listener_open, ka_open, listen_tried, closed;
    char address[INET6_ADDRSTRLEN + 16];
    conn *conns;            /* every connection until freed, closing ones too */
    size_t nconns;
    dwin *win;              /* keep slots, [0, nwin) in order of end, start */
    size_t nwin;
    msg *page, *ping;
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

static msg *msg_new(size_t len)
{
    msg *m = malloc(sizeof *m + len);
    if (!m)
        return NULL;
    m->refs = 1;
    m->len = len;
    m->p = m->buf;
    return m;
}

/* A message over bytes that live for ever (the page, a constant). */
static msg *msg_static(const void *p, size_t len)
{
    msg *m = malloc(sizeof *m);
    if (!m)
        return NULL;
    m->refs = 1;
    m->len = len;
    m->p = p;
    return m;
}

static msg *msg_ref(msg *m)
{
    m->refs++;
    return m;
}

static void msg_unref(msg *m)
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

/* "dashboard: client PEER: what" the first time a cause happens; the
 * counters count every time. */
static void warn_once(rn_dash *d, int cause, conn *c, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void warn_once(rn_dash *d, int cause, conn *c, const char *fmt, ...)
{
    char prefix[INET6_ADDRSTRLEN + 64], who[INET6_ADDRSTRLEN + 16];
    char what[RN_ERRLEN];
    va_list ap;

    if (d->warned[cause])
        return;
    d->warned[cause] = 1;
    if (c) {
        peer_name(c, who, sizeof who);
        snprintf(prefix, sizeof prefix, "dashboard: client %s: ", who);
    } else {
        snprintf(prefix, sizeof prefix, "dashboard %s: ", d->address);
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    rn_warn_to(d->on_warn, d->data, "%s%s (said once; the counters count the others)",
               prefix, what);
}

/* ---- the server ------------------------------------------------------------ */

static uint64_t ns_to_ms(int64_t ns)
{
    uint64_t ms = (uint64_t)(ns / 1000000);
    return ms ? ms : 1;
}

rn_dash *rn_dash_new(uv_loop_t *loop, const rn_dash_opts *o, char *err)
{
    rn_dash_opts none = {0};
    rn_dash *d;

    if (!o)
        o = &none;
    if (o->idle_ns < 0 || o->keepalive_ns < 0) {
        rn_seterr(err, "dashboard: negative timeout");
        return NULL;
    }
    if (!(d = calloc(1, sizeof *d))) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    d->loop = loop;
    d->keep = o->keep ? o->keep : RN_DASH_KEEP;
    d->max_clients = o->max_clients ? o->max_clients : RN_DASH_MAX_CLIENTS;
    d->max_header = o->max_header ? o->max_header : RN_DASH_MAX_HEADER;
    d->max_request = o->max_request ? o->max_request : RN_DASH_MAX_REQUEST;
    if (d->max_request < d->max_header)
        d->max_request = d->max_header;
    d->max_queue = o->max_queue ? o->max_queue : RN_DASH_MAX_QUEUE;
    d->idle_ms = ns_to_ms(o->idle_ns ? o->idle_ns : RN_DASH_IDLE_NS);
    d->keepalive_ms = ns_to_ms(o->keepalive_ns ? o->keepalive_ns : RN_DASH_KEEPALIVE_NS);
    d->on_warn = o->on_warn;
    d->data = o->data;
    d->win = calloc(d->keep, sizeof *d->win);
    d->page = msg_static(rn_dash__page, rn_dash__page_len);
    d->ping = msg_static(": keep-alive\n\n", 14);
    if (!d->win || !d->page || !d->ping) {
        rn_seterr(err, "out of memory");
        rn_dash_free(d);
        return NULL;
    }
    d->c_clients = rn_counter_add(&d->counters, "clients");
    d->c_refused = rn_counter_add(&d->counters, "refused");
    d->c_requests = rn_counter_add(&d->counters, "requests");
    d->c_bad = rn_counter_add(&d->counters, "bad_requests");
    d->c_dropped = rn_counter_add(&d->counters, "dropped");
    d->c_timeouts = rn_counter_add(&d->counters, "timeouts");
    d->c_streams = rn_counter_add(&d->counters, "streams");
    return d;
}

const char *rn_dash_address(const rn_dash *d) { return d->address; }
const rn_counters *rn_dash_counters(const rn_dash *d) { return &d->counters; }
size_t rn_dash_windows(const rn_dash *d) { return d->nwin; }

/* ---- connections ------------------------------------------------------------ */

static void conn_freed(uv_handle_t *h)
{
    conn *c = h->data;
    rn_dash *d = c->d;

    if (--c->handles > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    d->nconns--;
    rn_buf_free(&c->url);
    free(c);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (c->sse)
        (*c->d->c_streams)--;
    uv_close((uv_handle_t *)&c->timer, conn_freed);
    uv_close((uv_handle_t *)&c->h, conn_freed);
}

static void conn_idle(uv_timer_t *t)
{
    conn *c = t->data;

    (*c->d->c_timeouts)++;
    if (c->in_msg && !c->lingering)
        warn_once(c->d, W_IDLE, c, "sent part of a request and not the rest within %llu ms: "
                  "closed", (unsigned long long)c->d->idle_ms);
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
    conn_timer(c, c->d->idle_ms < LINGER_MS ? c->d->idle_ms : LINGER_MS);
}

static void conn_written(uv_write_t *req, int status)
{
    wreq *w = req->data;
    conn *c = w->c;

    for (size_t i = 0; i < w->n; i++)
        msg_unref(w->m[i]);
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

/* Send a (and b, may be NULL): their references pass to the write. A client
 * that has more than max_queue bytes waiting (and something waiting at all:
 * one message always goes, however big) is dropped. -1 when the connection
 * was closed. */
static int conn_send(conn *c, msg *a, msg *b)
{
    rn_dash *d = c->d;
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->h);
    size_t len = a->len + (b ? b->len : 0);
    wreq *w;

    if (c->closing) {
        msg_unref(a);
        msg_unref(b);
        return -1;
    }
    if (queued > 0 && queued + len > d->max_queue) {
        (*d->c_dropped)++;
        warn_once(d, W_SLOW, c, "does not read what is sent to it: dropped with %zu bytes "
                  "queued", queued);
        msg_unref(a);
        msg_unref(b);
        conn_close(c);
        return -1;
    }
    if (!(w = malloc(sizeof *w))) {
        warn_once(d, W_NOMEM, c, "out of memory: closed");
        msg_unref(a);
        msg_unref(b);
        conn_close(c);
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
            msg_unref(w->m[i]);
        free(w);
        conn_close(c);
        return -1;
    }
    c->writes++;
    return 0;
}

/* ---- answers ------------------------------------------------------------------ */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
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

/* An answer with body[0..len) (not sent for HEAD). -1 when the connection
 * was closed. */
static int answer(conn *c, int status, const char *type, const char *body, size_t len,
                  int send_body, int keep)
{
    char h[512];
    size_t hn = head(h, status, type, len, keep);
    size_t bn = send_body ? len : 0;
    msg *m = msg_new(hn + bn);

    if (!m) {
        warn_once(c->d, W_NOMEM, c, "out of memory: closed");
        conn_close(c);
        return -1;
    }
    memcpy(m->buf, h, hn);
    if (bn)
        memcpy(m->buf + hn, body, bn);
    if (!keep)
        c->close_after = 1;
    return conn_send(c, m, NULL);
}

/* An error answer that ends the connection (404 keeps it). */
static void refuse(conn *c, int status, const char *why)
{
    char body[RN_ERRLEN + 64];
    int n = snprintf(body, sizeof body, "%d %s: %s\n", status, reason(status), why);

    if (status != 404) {
        (*c->d->c_bad)++;
        int cause = status == 405 ? W_METHOD : status == 400 ? W_BAD : W_BIG;
        warn_once(c->d, cause, c, "%d %s: %s", status, reason(status), why);
    }
    answer(c, status, "text/plain; charset=utf-8", body,
           n < (int)sizeof body ? (size_t)n : sizeof body - 1, 1, status == 404);
}

/* A window as JSON (see results.h) appended to b. */
static int window_json(rn_buf *b, const rn_topn_window *w)
{
    char t[40], v[40];
    size_t n;

    n = rn_time_format(w->start, t);
    if (rn_buf_append(b, "{\"start\":\"", 10) < 0 || rn_buf_append(b, t, n) < 0)
        return -1;
    n = rn_time_format(w->end, t);
    if (rn_buf_append(b, "\",\"end\":\"", 9) < 0 || rn_buf_append(b, t, n) < 0)
        return -1;
    n = rn_u64_dec(w->nkeys, v);
    if (rn_buf_append(b, "\",\"keys\":", 9) < 0 || rn_buf_append(b, v, n) < 0
        || rn_buf_append(b, ",\"top\":[", 8) < 0)
        return -1;
    for (size_t i = 0; i < w->n; i++) {
        n = rn_value_format(w->top[i].value, v);
        if ((i && rn_buf_append(b, ",", 1) < 0) || rn_buf_append(b, "{\"key\":", 7) < 0
            || rn_json_put_string(b, w->top[i].key.p, w->top[i].key.n) < 0
            || rn_buf_append(b, ",\"value\":", 9) < 0 || rn_buf_append(b, v, n) < 0
            || rn_buf_append(b, "}", 1) < 0)
            return -1;
    }
    return rn_buf_append(b, "]}", 2);
}

static const char *ev_json(const msg *ev, size_t *len)
{
    *len = ev->len - SSE_HEAD_LEN - 2;
    return ev->p + SSE_HEAD_LEN;
}

static void get_latest(conn *c, int body)
{
    rn_dash *d = c->d;
    int keep = http_should_keep_alive(&c->parser);

    if (d->nwin == 0) {
        answer(c, 200, "application/json", "null", 4, body, keep);
        return;
    }
    size_t n;
    const char *j = ev_json(d->win[d->nwin - 1].ev, &n);
    answer(c, 200, "application/json", j, n, body, keep);
}

/* "since=MS" out of a query string; other parameters (a cache buster) are
 * let be. 0, or -1 when since is not a number. */
static int query_since(const char *q, size_t n, int64_t *since_ns)
{
    *since_ns = INT64_MIN;
    while (n > 0) {
        const char *amp = memchr(q, '&', n);
        size_t pn = amp ? (size_t)(amp - q) : n;
        if (pn > 6 && memcmp(q, "since=", 6) == 0) {
            char num[24];
            uint64_t ms;
            if (pn - 6 >= sizeof num)
                return -1;
            memcpy(num, q + 6, pn - 6);
            num[pn - 6] = '\0';
            if (rn_parse_uint(num, (uint64_t)INT64_MAX / 1000000, &ms, NULL) < 0)
                return -1;
            *since_ns = (int64_t)ms * 1000000;
        } else if (pn == 6 && memcmp(q, "since=", 6) == 0) {
            return -1;
        }
        q += pn;
        n -= pn;
        if (n > 0) {
            q++;
            n--;
        }
    }
    return 0;
}

static void get_windows(conn *c, const char *q, size_t qn, int body)
{
    rn_dash *d = c->d;
    rn_buf b = {0};
    int64_t since;
    int first = 1;

    if (query_since(q, qn, &since) < 0) {
        refuse(c, 400, "since= wants milliseconds since the epoch");
        return;
    }
    if (rn_buf_append(&b, "[", 1) < 0)
        goto nomem;
    for (size_t i = 0; i < d->nwin; i++) {
        if (d->win[i].end <= since)
            continue;
        size_t n;
        const char *j = ev_json(d->win[i].ev, &n);
        if ((!first && rn_buf_append(&b, ",", 1) < 0) || rn_buf_append(&b, j, n) < 0)
            goto nomem;
        first = 0;
    }
    if (rn_buf_append(&b, "]", 1) < 0)
        goto nomem;
    answer(c, 200, "application/json", b.p, b.len, body, http_should_keep_alive(&c->parser));
    rn_buf_free(&b);
    return;
nomem:
    rn_buf_free(&b);
    warn_once(d, W_NOMEM, c, "out of memory: closed");
    conn_close(c);
}

static void get_page(conn *c, int body)
{
    char h[512];
    int keep = http_should_keep_alive(&c->parser);
    size_t hn = head(h, 200, "text/html; charset=utf-8", c->d->page->len, keep);
    msg *m = msg_new(hn);

    if (!m) {
        warn_once(c->d, W_NOMEM, c, "out of memory: closed");
        conn_close(c);
        return;
    }
    memcpy(m->buf, h, hn);
    if (!keep)
        c->close_after = 1;
    conn_send(c, m, body ? msg_ref(c->d->page) : NULL);
}

static void get_events(conn *c, int body)
{
    /* The stream's head, then how soon to reconnect after a drop. */
#define EVENTS_HEAD "HTTP/1.1 200 OK\r\n" \
        "Content-Type: text/event-stream; charset=utf-8\r\n" \
        "Cache-Control: no-store\r\n" \
        "X-Content-Type-Options: nosniff\r\n" \
        "Connection: close\r\n\r\n"
    static const char h[] = EVENTS_HEAD "retry: 2000\n\n";
    rn_dash *d = c->d;
    msg *m = msg_static(h, body ? sizeof h - 1 : sizeof EVENTS_HEAD - 1);

    if (!m) {
        warn_once(d, W_NOMEM, c, "out of memory: closed");
        conn_close(c);
        return;
    }
    if (!body) {
        c->close_after = 1;
        conn_send(c, m, NULL);
        return;
    }
    if (conn_send(c, m, d->nwin ? msg_ref(d->win[d->nwin - 1].ev) : NULL) < 0)
        return;
    c->sse = 1;
    (*d->c_streams)++;
    uv_timer_stop(&c->timer);
    rn_buf_free(&c->url);       /* a stream reads no more requests */
}

static int path_is(const char *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* A whole request has been read: answer it. */
static void handle(conn *c)
{
    rn_dash *d = c->d;
    enum http_method m = (enum http_method)c->parser.method;
    struct http_parser_url u;

    (*d->c_requests)++;
    if (c->parser.upgrade)          /* what follows is not HTTP: read no more */
        c->close_after = 1;
    if (m != HTTP_GET && m != HTTP_HEAD) {
        char why[64];
        snprintf(why, sizeof why, "method %s", http_method_str(m));
        refuse(c, 405, why);
        return;
    }
    http_parser_url_init(&u);
    if (c->url.len == 0 || http_parser_parse_url(c->url.p, c->url.len, 0, &u) != 0
        || !(u.field_set & (1 << UF_PATH))) {
        refuse(c, 400, "bad request target");
        return;
    }
    const char *path = c->url.p + u.field_data[UF_PATH].off;
    size_t pn = u.field_data[UF_PATH].len;
    const char *q = "";
    size_t qn = 0;
    if (u.field_set & (1 << UF_QUERY)) {
        q = c->url.p + u.field_data[UF_QUERY].off;
        qn = u.field_data[UF_QUERY].len;
    }
    int body = m == HTTP_GET;
    if (path_is(path, pn, "/") || path_is(path, pn, "/index.html"))
        get_page(c, body);
    else if (path_is(path, pn, "/events"))
        get_events(c, body);
    else if (path_is(path, pn, "/api/latest"))
        get_latest(c, body);
    else if (path_is(path, pn, "/api/windows"))
        get_windows(c, q, qn, body);
    else
        refuse(c, 404, "no such page");
    if (!c->closing && !c->sse)
        conn_timer(c, d->idle_ms);
}

/* ---- reading requests ---------------------------------------------------------- */

static int on_begin(http_parser *p)
{
    conn *c = p->data;
    c->in_msg = 1;
    c->head_done = c->head_checked = c->msg_done = 0;
    c->url.len = 0;
    c->msg_bytes = 0;
    conn_timer(c, c->d->idle_ms);   /* the whole request within idle_ms */
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    conn *c = p->data;
    if (c->url.len + n > c->d->max_header) {
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
    rn_dash *d = c->d;

    while (n > 0 && !c->closing && !c->sse && !c->close_after) {
        size_t used = http_parser_execute(&c->parser, &settings, p, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

        p += used;
        n -= used;
        c->msg_bytes += used;
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
        } else if (e != HPE_OK) {
            if (c->nomem) {
                warn_once(d, W_NOMEM, c, "out of memory: closed");
                conn_close(c);
            } else if (c->url_too_long || e == HPE_HEADER_OVERFLOW) {
                refuse(c, 431, "request head over the limit");
            } else {
                refuse(c, 400, http_errno_description(e));
            }
            return;
        }
        if (c->in_msg && !c->head_checked) {
            if (c->msg_bytes > d->max_header) {
                refuse(c, 431, "request head over the limit");
                return;
            }
            c->head_checked = c->head_done;
        }
        if (c->in_msg && c->msg_bytes > d->max_request) {
            refuse(c, 413, "request over the limit");
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
    *buf = uv_buf_init(c->d->rbuf, sizeof c->d->rbuf);
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    conn *c = st->data;

    if (n == 0 || c->closing)
        return;
    if (n < 0) {
        /* The peer is done sending: finish what is being written, then
         * close. An event stream (or one whose reads failed) closes now. */
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

static void refuse_full(rn_dash *d)
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

    if (!t || uv_tcp_init(d->loop, t) < 0) {
        free(t);
        return;
    }
    if (uv_accept((uv_stream_t *)&d->listener, (uv_stream_t *)t) == 0) {
        (*d->c_refused)++;
        warn_once(d, W_FULL, NULL, "%zu clients connected already: one more refused "
                  "with 503", d->max_clients);
        if (uv_fileno((uv_handle_t *)t, &fd) == 0)
            while (recv(fd, d->rbuf, sizeof d->rbuf, MSG_DONTWAIT) > 0)
                ;
        uv_buf_t b = uv_buf_init((char *)ans, sizeof ans - 1);
        uv_try_write((uv_stream_t *)t, &b, 1);
    }
    uv_close((uv_handle_t *)t, refused_freed);
}

static void on_connection(uv_stream_t *ls, int status)
{
    rn_dash *d = ls->data;
    conn *c;

    if (status < 0) {
        warn_once(d, W_ACCEPT, NULL, "accept: %s", uv_strerror(status));
        return;
    }
    if (d->nconns >= d->max_clients) {
        refuse_full(d);
        return;
    }
    if (!(c = calloc(1, sizeof *c))) {
        warn_once(d, W_NOMEM, NULL, "out of memory: a client refused");
        refuse_full(d);
        return;
    }
    c->d = d;
    uv_tcp_init(d->loop, &c->h);
    uv_timer_init(d->loop, &c->timer);
    c->h.data = c->timer.data = c;
    c->handles = 2;
    c->next = d->conns;
    if (d->conns)
        d->conns->prev = c;
    d->conns = c;
    d->nconns++;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_accept(ls, (uv_stream_t *)&c->h) < 0) {
        conn_close(c);
        return;
    }
    (*d->c_clients)++;
    uv_tcp_nodelay(&c->h, 1);
    conn_timer(c, d->idle_ms);
    if (uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read) < 0)
        conn_close(c);
}

/* ---- listening, publishing, closing ----------------------------------------------- */

static void ping_streams(uv_timer_t *t)
{
    rn_dash *d = t->data;
    for (conn *c = d->conns; c; c = c->next)
        if (c->sse && !c->closing)
            conn_send(c, msg_ref(d->ping), NULL);
}

int rn_dash_listen(rn_dash *d, const char *addr, char *err)
{
    struct sockaddr_storage ss;
    rn_hop_target t;
    int sl = sizeof ss, r;

    if (d->listen_tried || d->closed)
        return rn_seterr(err, "dashboard: listen was called before");
    d->listen_tried = 1;
    if (rn_hop_addr_parse(addr, &t, err) < 0 || rn_hop_listen_addr(d->loop, &t, &ss, err) < 0)
        return RN_ERR;
    if ((r = uv_tcp_init(d->loop, &d->listener)) < 0)
        return rn_seterr(err, "dashboard: listen on %s: %s", addr, uv_strerror(r));
    d->listener.data = d;
    d->listener_open = 1;
    if ((r = uv_tcp_bind(&d->listener, (struct sockaddr *)&ss, 0)) < 0
        || (r = uv_listen((uv_stream_t *)&d->listener, SOMAXCONN, on_connection)) < 0) {
        uv_close((uv_handle_t *)&d->listener, NULL);
        d->listener_open = 0;
        return rn_seterr(err, "dashboard: listen on %s: %s", addr, uv_strerror(r));
    }
    if (uv_tcp_getsockname(&d->listener, (struct sockaddr *)&ss, &sl) == 0)
        rn_hop_sockaddr_name((struct sockaddr *)&ss, d->address, sizeof d->address);
    uv_timer_init(d->loop, &d->ka);
    d->ka.data = d;
    d->ka_open = 1;
    uv_timer_start(&d->ka, ping_streams, d->keepalive_ms, d->keepalive_ms);
    return 0;
}

/* Where (start, end) goes in the windows held: *same when it is held. */
static size_t win_place(const rn_dash *d, int64_t start, int64_t end, int *same)
{
    size_t i = d->nwin;

    *same = 0;
    while (i > 0 && (d->win[i - 1].end > end
                     || (d->win[i - 1].end == end && d->win[i - 1].start >= start))) {
        if (d->win[i - 1].end == end && d->win[i - 1].start == start) {
            *same = 1;
            return i - 1;
        }
        i--;
    }
    return i;
}

int rn_dash_publish(rn_dash *d, const rn_topn_window *w, char *err)
{
    rn_buf b = {0};
    msg *ev;
    int same;

    if (rn_buf_append(&b, SSE_HEAD, SSE_HEAD_LEN) < 0 || window_json(&b, w) < 0
        || rn_buf_append(&b, "\n\n", 2) < 0 || !(ev = msg_new(b.len))) {
        rn_buf_free(&b);
        rn_seterr(err, "out of memory");
        return RN_ENOMEM;
    }
    memcpy(ev->buf, b.p, b.len);
    rn_buf_free(&b);

    size_t i = win_place(d, w->start, w->end, &same);
    if (same) {
        msg_unref(d->win[i].ev);
        d->win[i].ev = msg_ref(ev);
    } else if (d->nwin < d->keep || i > 0) {
        if (d->nwin == d->keep) {       /* the oldest goes */
            msg_unref(d->win[0].ev);
            memmove(d->win, d->win + 1, (d->nwin - 1) * sizeof *d->win);
            d->nwin--;
            i--;
        }
        memmove(d->win + i + 1, d->win + i, (d->nwin - i) * sizeof *d->win);
        d->win[i] = (dwin){ .start = w->start, .end = w->end, .ev = msg_ref(ev) };
        d->nwin++;
    }
    /* else: older than everything held, with no room; it is still sent */
    for (conn *c = d->conns; c; c = c->next)
        if (c->sse && !c->closing)
            conn_send(c, msg_ref(ev), NULL);
    msg_unref(ev);
    return 0;
}

void rn_dash_close(rn_dash *d)
{
    if (d->closed)
        return;
    d->closed = 1;
    if (d->listener_open) {
        uv_close((uv_handle_t *)&d->listener, NULL);
        d->listener_open = 0;
    }
    if (d->ka_open) {
        uv_close((uv_handle_t *)&d->ka, NULL);
        d->ka_open = 0;
    }
    for (conn *c = d->conns; c; c = c->next)
        conn_close(c);
}

void rn_dash_free(rn_dash *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nwin; i++)
        msg_unref(d->win[i].ev);
    free(d->win);
    msg_unref(d->page);
    msg_unref(d->ping);
    free(d);
}
