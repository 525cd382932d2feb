/* redis.c -- the Redis writer (rn_redisw): each window copied as it is handed
 * over into the RESP of one MULTI/EXEC, kept in a queue in order, and written
 * through hiredis' async API and its libuv adapter, across outages.
 *
 * The queue is a list in the order windows were handed over; those on the
 * wire are a prefix of it (Redis answers in order), the rest wait. A lost
 * connection puts the whole prefix back to waiting, so windows are written
 * in order, at least once. Nothing here is thread-safe.
 *
 * hiredis 0.14 frees a context itself after its connect callback reports a
 * failure and after its disconnect callback; redisAsyncFree() inside a reply
 * callback is deferred until the callback returns, outside one it runs at
 * once and calls every pending callback with a NULL reply. So w->ac is set to
 * NULL before any free, and every callback ignores a context that is not
 * w->ac (or a NULL reply). It must not be freed inside the connect callback,
 * which hiredis goes on using.
 *
 * The socket is watched by our own copy of hiredis' libuv adapter
 * (hiredis/adapters/libuv.h), with one fix: 0.14's drops a poll that reports
 * an error, and libuv reports a refused connect as one (UV_EBADF on POLLERR),
 * so a connect to a Redis that is down was never seen to fail. As hiredis
 * 1.0 does, an error hands the events being watched to hiredis, which then
 * finds the socket's error itself. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "results/results.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STALL_MS 5000           /* no connect, no reply for this long: lost */
#define MAX_INFLIGHT 16         /* transactions on the wire at once */
#define DEFAULT_PORT 6379

typedef struct item item;

struct item {
    item *prev, *next;
    uint64_t seq;               /* order of handing over */
    int64_t start, end;
    int inflight;
    rn_buf resp;                /* MULTI, the window's commands, EXEC */
};

/* down: waiting for the backoff; resolving, connecting, hello (AUTH, SELECT
 * and PING sent): on the way up; up: writing; closed: finished. */
enum { S_DOWN, S_RESOLVING, S_CONNECTING, S_HELLO, S_UP, S_CLOSED };

struct rn_redisw {
    uv_loop_t *loop;
    rn_redis_url url;
    char name[sizeof ((rn_redis_url *)0)->host + 16];
    char *prefix;
    rn_tz *tz;
    int64_t ttl_s;
    size_t max_pending;
    rn_warn_fn *on_warn;
    void *data;

    int state;
    redisAsyncContext *ac;
    uv_getaddrinfo_t gai;
    int gai_busy;
    uv_timer_t timer;           /* the backoff when down, the stall watch otherwise */
    uv_timer_t close_timer;
    int handles_open;
    uint64_t backoff_ms;
    int failed_once;            /* a connection failed or was lost: count reconnects */

    item *head, *tail;
    item *next_send;            /* the first waiting item; NULL: none */
    size_t nitems, ninflight;
    uint64_t seq;

    /* The outage, from its warning to the one saying it is over; recovering:
     * connected again, and "over" is said once the items up to seq mark are
     * written or dropped. */
    int outage, recovering;
    int64_t outage_start;
    uint64_t outage_written, outage_dropped, mark;
    int warned_exec;

    int closing, finished, told_closed;
    void (*on_closed)(void *data);

    rn_counters counters;
    uint64_t *c_written, *c_dropped, *c_reconnects, *c_pending;
};

static void connect_start(rn_redisw *w);
static void pump(rn_redisw *w);
static void finish(rn_redisw *w);

static void rwarn(rn_redisw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rwarn(rn_redisw *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rn_vwarn_to(w->on_warn, w->data, w->name, fmt, ap);
    va_end(ap);
}

/* ---- the URL ------------------------------------------------------------ */

/* s[0..n) %-decoded into out (cap bytes with the NUL). */
static int decode(const char *s, size_t n, char *out, size_t cap, const char *what, char *err)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < n ? rn_hexval((unsigned char)s[i + 1]) : -1;
            int lo = hi < 0 ? -1 : rn_hexval((unsigned char)s[i + 2]);
            if (lo < 0 || hi * 16 + lo == 0)
                return rn_seterr(err, "redis URL: bad %%-escape in the %s", what);
            c = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= cap)
            return rn_seterr(err, "redis URL: %s too long (at most %zu bytes)", what, cap - 1);
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_number(const char *s, size_t n, uint64_t max, uint64_t *v)
{
    char buf[24];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return rn_parse_uint(buf, max, v, NULL) < 0 ? -1 : 0;
}

static int host_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '-' || c == '.' || c == '_';
}

int rn_redis_url_parse(const char *s, rn_redis_url *u, char *err)
{
    static const char form[] = "redis://[:PASSWORD@]HOST:PORT[/DB]";

    memset(u, 0, sizeof *u);
    u->port = DEFAULT_PORT;
    u->db = -1;
    if (strncmp(s, "rediss://", 9) == 0)
        return rn_seterr(err, "redis URL: rediss:// (TLS) is not supported");
    if (strncmp(s, "redis://", 8) != 0)
        return rn_seterr(err, "redis URL: must start with redis:// (%s)", form);
    const char *p = s + 8;

    /* The password may hold anything, '@' and '/' too, unless escaped: so
     * the host begins after the last '@'. DB and port are digits only. */
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            return rn_seterr(err, "redis URL: a password goes after a colon (%s)", form);
        if (decode(p, (size_t)(colon - p), u->user, sizeof u->user, "user name", err) < 0
            || decode(colon + 1, (size_t)(at - colon - 1), u->password, sizeof u->password,
                      "password", err) < 0)
            return RN_ERR;
        if (!u->password[0])
            return rn_seterr(err, "redis URL: empty password");
        u->has_password = 1;
        p = at + 1;
    }

    const char *h = p, *hend;
    if (*p == '[') {
        h = p + 1;
        hend = strchr(h, ']');
        if (!hend)
            return rn_seterr(err, "redis URL: '[' without ']' around an IPv6 address");
        p = hend + 1;
    } else {
        hend = p;
        while (host_char((unsigned char)*hend))
            hend++;
        p = hend;
    }
    size_t hn = (size_t)(hend - h);
    if (hn == 0)
        return rn_seterr(err, "redis URL: no host (%s)", form);
    if (hn >= sizeof u->host)
        return rn_seterr(err, "redis URL: host name too long");
    memcpy(u->host, h, hn);
    u->host[hn] = '\0';
    if (h != s + 8 && h[-1] == '[') {
        unsigned char a[16];
        if (uv_inet_pton(AF_INET6, u->host, a) != 0)
            return rn_seterr(err, "redis URL: '%s' is not an IPv6 address", u->host);
    }

    if (*p == ':') {
        const char *q = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        uint64_t port;
        if (parse_number(q, (size_t)(p - q), 65535, &port) < 0 || port == 0
            || (*p && *p != '/'))
            return rn_seterr(err, "redis URL: bad port '%.*s' (1 to 65535)",
                             (int)strcspn(q, "/"), q);
        u->port = (int)port;
    }
    if (*p == '/') {
        const char *q = ++p;
        uint64_t db;
        if (*q) {
            if (parse_number(q, strlen(q), INT32_MAX, &db) < 0)
                return rn_seterr(err, "redis URL: bad database number '%s'", q);
            u->db = (int)db;
        }
    } else if (*p) {
        return rn_seterr(err, "redis URL: unexpected '%c' after the host (%s)", *p, form);
    }
    return 0;
}

/* ---- the queue ------------------------------------------------------------ */

static size_t waiting(const rn_redisw *w) { return w->nitems - w->ninflight; }

static void set_pending(rn_redisw *w) { *w->c_pending = w->nitems; }

static void unlink_item(rn_redisw *w, item *it)
{
    if (it == w->next_send)
        w->next_send = it->next;
    if (it->prev)
        it->prev->next = it->next;
    else
        w->head = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        w->tail = it->prev;
    w->nitems--;
    rn_buf_free(&it->resp);
    free(it);
}

/* Said once what was kept at reconnection is written (or dropped). */
static void check_back(rn_redisw *w)
{
    if (!w->recovering || (w->head && w->head->seq <= w->mark))
        return;
    w->recovering = 0;
    w->outage = 0;
    uint64_t written = *w->c_written - w->outage_written;
    rwarn(w, ": reachable again after %.1fs: %" PRIu64 " window%s written, %" PRIu64 " dropped",
          (double)(rn_mono_ns() - w->outage_start) / 1e9, written, written == 1 ? "" : "s",
          *w->c_dropped - w->outage_dropped);
}

/* Drop the oldest waiting windows until at most max_pending wait. */
static void trim(rn_redisw *w)
{
    while (waiting(w) > w->max_pending && w->next_send) {
        unlink_item(w, w->next_send);
        (*w->c_dropped)++;
    }
    set_pending(w);
    check_back(w);
}

/* ---- the socket on the loop (hiredis' libuv adapter, fixed) ------------------------ */

typedef struct watcher {
    redisAsyncContext *ac;      /* NULL once hiredis let go */
    uv_poll_t h;
    int events;
} watcher;

static void on_poll(uv_poll_t *h, int status, int events)
{
    watcher *p = h->data;
    int ev = status < 0 ? p->events : events;
    if (p->ac && (ev & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void poll_update(watcher *p)
{
    if (p->events)
        uv_poll_start(&p->h, p->events, on_poll);
    else
        uv_poll_stop(&p->h);
}

static void add_read(void *d) { watcher *p = d; p->events |= UV_READABLE; poll_update(p); }
static void del_read(void *d) { watcher *p = d; p->events &= ~UV_READABLE; poll_update(p); }
static void add_write(void *d) { watcher *p = d; p->events |= UV_WRITABLE; poll_update(p); }
static void del_write(void *d) { watcher *p = d; p->events &= ~UV_WRITABLE; poll_update(p); }

static void on_watcher_closed(uv_handle_t *h) { free(h->data); }

/* hiredis frees the context: the handle closes on the loop's next turn. */
static void cleanup(void *d)
{
    watcher *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->h, on_watcher_closed);
}

static int attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    watcher *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    if (uv_poll_init(loop, &p->h, ac->c.fd) != 0) {
        free(p);
        return -1;
    }
    p->ac = ac;
    p->h.data = p;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = p;
    return 0;
}

/* ---- the connection --------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void watch(rn_redisw *w)
{
    uv_timer_start(&w->timer, on_timer, STALL_MS, 0);
}

/* The connection failed or was lost (w->ac is already NULL): every window
 * on the wire waits again; say so if this begins an outage; retry later. */
static void fail(rn_redisw *w, const char *reason)
{
    for (item *it = w->head; it && it->inflight; it = it->next)
        it->inflight = 0;
    w->next_send = w->head;
    w->ninflight = 0;
    w->failed_once = 1;
    w->recovering = 0;
    trim(w);
    if (w->finished)
        return;
    w->state = S_DOWN;
    if (!w->outage) {
        w->outage = 1;
        w->outage_start = rn_mono_ns();
        w->outage_written = *w->c_written;
        w->outage_dropped = *w->c_dropped;
        rwarn(w, ": unreachable (%s); keeping up to %zu window%s", reason, w->max_pending,
              w->max_pending == 1 ? "" : "s");
    }
    uv_timer_start(&w->timer, on_timer, w->backoff_ms, 0);
    w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
}

/* Give the connection up ourselves, then fail. */
static void lost(rn_redisw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lost(rn_redisw *w, const char *fmt, ...)
{
    char reason[RN_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    redisAsyncContext *ac = w->ac;
    w->ac = NULL;
    if (ac)
        redisAsyncFree(ac);
    fail(w, reason);
}

static void on_timer(uv_timer_t *t)
{
    rn_redisw *w = t->data;
    if (w->state == S_DOWN)
        connect_start(w);
    else if (w->state == S_CONNECTING || w->state == S_HELLO
             || (w->state == S_UP && w->ninflight))
        lost(w, "no answer in %d s", STALL_MS / 1000);
}

static void up(rn_redisw *w)
{
    w->state = S_UP;
    w->backoff_ms = BACKOFF_MIN_MS;
    w->warned_exec = 0;
    uv_timer_stop(&w->timer);
    if (w->failed_once)
        (*w->c_reconnects)++;
    if (w->outage) {
        w->recovering = 1;
        w->mark = w->tail ? w->tail->seq : 0;
        check_back(w);
    }
    if (w->closing && !w->nitems)
        finish(w);
    else
        pump(w);
}

/* The replies of AUTH, SELECT and PING: privdata names the command. */
static void on_hello(redisAsyncContext *ac, void *r, void *privdata)
{
    rn_redisw *w = ac->data;
    redisReply *reply = r;
    if (!reply || ac != w->ac)
        return;
    watch(w);
    if (reply->type == REDIS_REPLY_ERROR)
        lost(w, "%s: %s", (const char *)privdata, reply->str);
    else if (strcmp(privdata, "PING") == 0)
        up(w);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    rn_redisw *w = cac->data;
    if (cac != w->ac)
        return;
    redisAsyncContext *ac = w->ac;
    if (status != REDIS_OK) {
        w->ac = NULL;           /* hiredis frees it when we return */
        fail(w, ac->errstr[0] ? ac->errstr : "connect failed");
        return;
    }
    w->state = S_HELLO;
    watch(w);
    const rn_redis_url *u = &w->url;
    if (u->has_password && u->user[0])
        redisAsyncCommand(ac, on_hello, "AUTH", "AUTH %s %s", u->user, u->password);
    else if (u->has_password)
        redisAsyncCommand(ac, on_hello, "AUTH", "AUTH %s", u->password);
    if (u->db >= 0)
        redisAsyncCommand(ac, on_hello, "SELECT", "SELECT %d", u->db);
    redisAsyncCommand(ac, on_hello, "PING", "PING");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rn_redisw *w = ac->data;
    (void)status;
    if (ac != w->ac)
        return;
    w->ac = NULL;               /* hiredis frees it when we return */
    fail(w, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void connect_addr(rn_redisw *w, const char *ip)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, w->url.port);
    if (!ac) {
        fail(w, "out of memory");
        return;
    }
    if (ac->err) {
        char reason[RN_ERRLEN];
        snprintf(reason, sizeof reason, "%s", ac->errstr);
        redisAsyncFree(ac);
        fail(w, reason);
        return;
    }
    ac->data = w;
    if (attach(ac, w->loop) < 0) {
        redisAsyncFree(ac);
        fail(w, "cannot watch the socket");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    w->ac = ac;
    w->state = S_CONNECTING;
    watch(w);
}

static void maybe_closed(rn_redisw *w)
{
    if (w->finished && !w->handles_open && !w->gai_busy && !w->told_closed) {
        w->told_closed = 1;
        if (w->on_closed)
            w->on_closed(w->data);
    }
}

/* The warning names the host already. */
static void fail_resolve(rn_redisw *w, const char *why)
{
    char reason[RN_ERRLEN];
    snprintf(reason, sizeof reason, "resolving the host: %s", why);
    fail(w, reason);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    rn_redisw *w = req->data;
    w->gai_busy = 0;
    if (w->finished) {
        uv_freeaddrinfo(res);
        maybe_closed(w);
        return;
    }
    if (status < 0) {
        fail_resolve(w, uv_strerror(status));
        return;
    }
    /* IPv4 first, as hiredis does for an address it resolves itself: a
     * server bound to 127.0.0.1 is reached as "localhost". */
    struct addrinfo *pick = NULL;
    for (struct addrinfo *a = res; a && !pick; a = a->ai_next)
        if (a->ai_family == AF_INET)
            pick = a;
    for (struct addrinfo *a = res; a && !pick; a = a->ai_next)
        if (a->ai_family == AF_INET6)
            pick = a;
    char ip[64] = "";
    if (pick && pick->ai_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)pick->ai_addr, ip, sizeof ip);
    else if (pick)
        uv_ip6_name((struct sockaddr_in6 *)pick->ai_addr, ip, sizeof ip);
    uv_freeaddrinfo(res);
    if (!ip[0]) {
        fail_resolve(w, "no IPv4 or IPv6 address");
        return;
    }
    connect_addr(w, ip);
}

static void connect_start(rn_redisw *w)
{
    unsigned char a[16];
    if (uv_inet_pton(AF_INET, w->url.host, a) == 0 || uv_inet_pton(AF_INET6, w->url.host, a) == 0) {
        connect_addr(w, w->url.host);
        return;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    w->gai.data = w;
    int r = uv_getaddrinfo(w->loop, &w->gai, on_resolved, w->url.host, NULL, &hints);
    if (r < 0) {
        fail_resolve(w, uv_strerror(r));
        return;
    }
    w->gai_busy = 1;
    w->state = S_RESOLVING;
}

/* ---- writing ------------------------------------------------------------------ */

/* The end of the RESP command (an array of bulk strings, as we write them)
 * that starts at p. */
static const char *resp_end(const char *p)
{
    char *e;
    long n = strtol(p + 1, &e, 10);         /* "*N\r\n" */
    p = e + 2;
    while (n-- > 0) {
        long len = strtol(p + 1, &e, 10);   /* "$LEN\r\n" BYTES "\r\n" */
        p = e + 2 + len + 2;
    }
    return p;
}

static void on_exec(redisAsyncContext *ac, void *r, void *privdata)
{
    rn_redisw *w = ac->data;
    redisReply *reply = r;
    item *it = privdata;
    if (!reply || ac != w->ac)
        return;
    if (reply->type != REDIS_REPLY_ARRAY) {
        /* Aborted (EXECABORT, NOAUTH, LOADING after a restart, ...): try
         * again on a new connection. */
        lost(w, "EXEC: %s", reply->type == REDIS_REPLY_ERROR ? reply->str : "no transaction");
        return;
    }
    /* The commands ran. One that failed (a key of another type) would fail
     * again: say it once a connection and go on. */
    for (size_t i = 0; i < reply->elements && !w->warned_exec; i++)
        if (reply->element[i]->type == REDIS_REPLY_ERROR) {
            w->warned_exec = 1;
            rwarn(w, ": a window's command failed: %s", reply->element[i]->str);
        }
    if (it != w->head) {        /* cannot happen: Redis answers in order */
        lost(w, "reply out of order");
        return;
    }
    w->ninflight--;
    unlink_item(w, it);
    (*w->c_written)++;
    set_pending(w);
    check_back(w);
    if (w->ninflight)
        watch(w);
    else
        uv_timer_stop(&w->timer);
    if (w->closing && !w->nitems)
        finish(w);
    else
        pump(w);
}

static void pump(rn_redisw *w)
{
    while (w->state == S_UP && w->ac && w->next_send && w->ninflight < MAX_INFLIGHT) {
        item *it = w->next_send;
        const char *p = it->resp.p, *end = p + it->resp.len;
        while (p < end) {
            const char *e = resp_end(p);
            int last = e == end;
            if (redisAsyncFormattedCommand(w->ac, last ? on_exec : NULL, last ? it : NULL, p,
                                           (size_t)(e - p)) != REDIS_OK) {
                lost(w, "cannot send a command");
                return;
            }
            p = e;
        }
        if (!w->ninflight)
            watch(w);
        it->inflight = 1;
        w->ninflight++;
        w->next_send = it->next;
    }
}

static int put_cmd(rn_buf *b, size_t argc, ...)
{
    rn_str argv[8];
    va_list ap;
    va_start(ap, argc);
    for (size_t i = 0; i < argc; i++) {
        argv[i].p = va_arg(ap, const char *);
        argv[i].n = strlen(argv[i].p);
    }
    va_end(ap);
    return rn_topn_resp(b, argc, argv);
}

/* MULTI; what `topk -o redis` writes; the index; EXEC. */
static int format_window(rn_redisw *w, rn_buf *b, const rn_topn_window *win)
{
    char start[RN_TIMELEN], endms[24], cutoff[24], ttl[24];
    char *k = NULL, *idx = NULL;
    int r = -1;

    rn_time_format_tz(win->start, w->tz, start);
    if (asprintf(&k, "%s:%s", w->prefix, start) < 0) {
        k = NULL;
        goto err;
    }
    if (asprintf(&idx, "%s:windows", w->prefix) < 0) {
        idx = NULL;
        goto err;
    }
    rn_topn_fmt f = { .out = RN_TOPN_REDIS, .prefix = w->prefix, .ttl = w->ttl_s, .tz = w->tz };
    snprintf(endms, sizeof endms, "%" PRId64, win->end / 1000000);
    if (put_cmd(b, 1, "MULTI") < 0 || rn_topn_format(b, &f, win) < 0
        || put_cmd(b, 4, "ZADD", idx, endms, k) < 0)
        goto err;
    if (w->ttl_s) {
        snprintf(cutoff, sizeof cutoff, "(%" PRId64, win->end / 1000000 - w->ttl_s * 1000);
        snprintf(ttl, sizeof ttl, "%" PRId64, w->ttl_s);
        if (put_cmd(b, 4, "ZREMRANGEBYSCORE", idx, "-inf", cutoff) < 0
            || put_cmd(b, 3, "EXPIRE", idx, ttl) < 0)
            goto err;
    }
    if (put_cmd(b, 1, "EXEC") < 0)
        goto err;
    r = 0;
err:
    free(k);
    free(idx);
    return r;
}

int rn_redisw_put(rn_redisw *w, const rn_topn_window *win, char *err)
{
    if (w->closing)
        return rn_seterr(err, "%s: closed", w->name);
    item *it = calloc(1, sizeof *it);
    if (!it || format_window(w, &it->resp, win) < 0) {
        if (it)
            rn_buf_free(&it->resp);
        free(it);
        rn_seterr(err, "%s: out of memory", w->name);
        return RN_ENOMEM;
    }
    it->start = win->start;
    it->end = win->end;
    it->seq = ++w->seq;

    /* An earlier copy of the window still waiting is replaced, not written. */
    for (item *o = w->next_send; o; o = o->next)
        if (o->start == it->start && o->end == it->end) {
            unlink_item(w, o);
            break;
        }
    it->prev = w->tail;
    if (w->tail)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    if (!w->next_send)
        w->next_send = it;
    w->nitems++;
    trim(w);
    pump(w);
    return 0;
}

/* ---- life ---------------------------------------------------------------------- */

rn_redisw *rn_redisw_new(uv_loop_t *loop, const rn_redisw_opts *o, char *err)
{
    rn_redisw *w = calloc(1, sizeof *w);
    if (!w) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    if (rn_redis_url_parse(o->url ? o->url : "", &w->url, err) < 0)
        goto err;
    const char *prefix = o->prefix ? o->prefix : "topk";
    if (!*prefix) {
        rn_seterr(err, "redis: empty key prefix");
        goto err;
    }
    if (o->ttl_ns < 0) {
        rn_seterr(err, "redis: negative TTL");
        goto err;
    }
    w->prefix = strdup(prefix);
    if (!w->prefix) {
        rn_seterr(err, "out of memory");
        goto err;
    }
    w->loop = loop;
    w->ttl_s = (o->ttl_ns + 999999999) / 1000000000;
    w->tz = o->tz;
    w->max_pending = o->max_pending ? o->max_pending : RN_REDISW_KEEP;
    w->on_warn = o->on_warn;
    w->data = o->data;
    w->backoff_ms = BACKOFF_MIN_MS;
    snprintf(w->name, sizeof w->name, strchr(w->url.host, ':') ? "redis [%s]:%d" : "redis %s:%d",
             w->url.host, w->url.port);
    w->c_written = rn_counter_add(&w->counters, "written");
    w->c_dropped = rn_counter_add(&w->counters, "dropped");
    w->c_reconnects = rn_counter_add(&w->counters, "reconnects");
    w->c_pending = rn_counter_add(&w->counters, "pending");

    uv_timer_init(loop, &w->timer);
    uv_timer_init(loop, &w->close_timer);
    w->timer.data = w->close_timer.data = w;
    w->handles_open = 2;
    connect_start(w);
    return w;
err:
    free(w->prefix);
    free(w);
    return NULL;
}

size_t rn_redisw_pending(const rn_redisw *w) { return w->nitems; }

const char *rn_redisw_name(const rn_redisw *w) { return w->name; }

const rn_counters *rn_redisw_counters(const rn_redisw *w) { return &w->counters; }

static void on_handle_closed(uv_handle_t *h)
{
    rn_redisw *w = h->data;
    w->handles_open--;
    maybe_closed(w);
}

static void finish(rn_redisw *w)
{
    if (w->finished)
        return;
    w->finished = 1;
    w->state = S_CLOSED;
    if (w->nitems) {
        rwarn(w, ": closing with %zu window%s not written", w->nitems,
              w->nitems == 1 ? "" : "s");
        *w->c_dropped += w->nitems;
    }
    redisAsyncContext *ac = w->ac;
    w->ac = NULL;
    if (ac)
        redisAsyncFree(ac);
    while (w->head)
        unlink_item(w, w->head);
    w->ninflight = 0;
    set_pending(w);
    if (w->gai_busy)
        uv_cancel((uv_req_t *)&w->gai);
    uv_close((uv_handle_t *)&w->timer, on_handle_closed);
    uv_close((uv_handle_t *)&w->close_timer, on_handle_closed);
}

static void on_close_timer(uv_timer_t *t) { finish(t->data); }

void rn_redisw_close(rn_redisw *w, int64_t wait_ns, void (*on_closed)(void *data))
{
    if (w->closing)
        return;
    w->closing = 1;
    w->on_closed = on_closed;
    if (!w->nitems || wait_ns <= 0) {
        finish(w);
        return;
    }
    uv_timer_start(&w->close_timer, on_close_timer, (uint64_t)(wait_ns + 999999) / 1000000, 0);
}

void rn_redisw_free(rn_redisw *w)
{
    if (!w)
        return;
    free(w->prefix);
    free(w);
}
