/* dashboard.c -- the live dashboard (rn_dash) on runnel's HTTP server
 * (http/http.h): the page, the recent windows as JSON, and Server-Sent
 * Events of the windows as they are published.
 *
 * A published window is turned into its event ("event: window\ndata: JSON")
 * once, and that one buffer is shared, by reference count, by every write
 * that sends it and by the list of windows held; so 200 event streams cost
 * 200 write requests a window, not 200 copies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "results/results_int.h"

#define SSE_HEAD "event: window\ndata: "
#define SSE_HEAD_LEN (sizeof SSE_HEAD - 1)

typedef struct dwin {
    int64_t start, end;
    rn_http_msg *ev;        /* SSE_HEAD JSON "\n\n" */
} dwin;

struct rn_dash {
    rn_http *http;
    uv_loop_t *loop;
    size_t keep;
    uint64_t keepalive_ms;
    uv_timer_t ka;
    int ka_open;
    dwin *win;              /* keep slots, [0, nwin) in order of end, start */
    size_t nwin;
    rn_http_msg *page, *ping;
};

static void on_request(void *data, const rn_http_req *r);

rn_dash *rn_dash_new(uv_loop_t *loop, const rn_dash_opts *o, char *err)
{
    rn_dash_opts none = {0};
    rn_dash *d;

    if (!o)
        o = &none;
    if (o->keepalive_ns < 0) {      /* (idle_ns: the server's to check) */
        rn_seterr(err, "dashboard: negative timeout");
        return NULL;
    }
    if (!(d = calloc(1, sizeof *d))) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    rn_http_opts ho = {
        .name = "dashboard", .max_clients = o->max_clients, .max_header = o->max_header,
        .max_request = o->max_request, .max_queue = o->max_queue, .idle_ns = o->idle_ns,
        .on_request = on_request, .data = d, .on_warn = o->on_warn, .warn_data = o->data,
    };
    if (!(d->http = rn_http_new(loop, &ho, err))) {
        free(d);
        return NULL;
    }
    d->keep = o->keep ? o->keep : RN_DASH_KEEP;
    d->keepalive_ms = (uint64_t)((o->keepalive_ns ? o->keepalive_ns : RN_DASH_KEEPALIVE_NS)
                                 / 1000000);
    if (!d->keepalive_ms)
        d->keepalive_ms = 1;
    d->win = calloc(d->keep, sizeof *d->win);
    d->page = rn_http_msg_static(rn_dash__page, rn_dash__page_len);
    d->ping = rn_http_msg_static(": keep-alive\n\n", 14);
    if (!d->win || !d->page || !d->ping) {
        rn_seterr(err, "out of memory");
        rn_dash_free(d);
        return NULL;
    }
    d->loop = loop;
    return d;
}

const char *rn_dash_address(const rn_dash *d) { return rn_http_address(d->http); }
const rn_counters *rn_dash_counters(const rn_dash *d) { return rn_http_counters(d->http); }
size_t rn_dash_windows(const rn_dash *d) { return d->nwin; }

/* ---- answers ------------------------------------------------------------------ */

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

static const char *ev_json(const rn_http_msg *ev, size_t *len)
{
    *len = ev->len - SSE_HEAD_LEN - 2;
    return ev->p + SSE_HEAD_LEN;
}

static void get_latest(rn_dash *d, const rn_http_req *r)
{
    if (d->nwin == 0) {
        rn_http_answer(r, 200, "application/json", "null", 4);
        return;
    }
    size_t n;
    const char *j = ev_json(d->win[d->nwin - 1].ev, &n);
    rn_http_answer(r, 200, "application/json", j, n);
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

static void get_windows(rn_dash *d, const rn_http_req *r)
{
    rn_buf b = {0};
    int64_t since;
    int first = 1;

    if (query_since(r->query, r->query_len, &since) < 0) {
        rn_http_refuse(r, 400, "since= wants milliseconds since the epoch");
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
    rn_http_answer(r, 200, "application/json", b.p, b.len);
    rn_buf_free(&b);
    return;
nomem:
    rn_buf_free(&b);
    rn_http_nomem(r);
}

static void get_events(rn_dash *d, const rn_http_req *r)
{
    static const char retry[] = "retry: 2000\n\n";      /* how soon to reconnect */
    rn_http_stream(r, "text/event-stream; charset=utf-8", retry, sizeof retry - 1,
                   d->nwin ? rn_http_msg_ref(d->win[d->nwin - 1].ev) : NULL);
}

static void on_request(void *data, const rn_http_req *r)
{
    rn_dash *d = data;

    if (rn_http_path_is(r, "/") || rn_http_path_is(r, "/index.html"))
        rn_http_answer_msg(r, "text/html; charset=utf-8", rn_http_msg_ref(d->page));
    else if (rn_http_path_is(r, "/events"))
        get_events(d, r);
    else if (rn_http_path_is(r, "/api/latest"))
        get_latest(d, r);
    else if (rn_http_path_is(r, "/api/windows"))
        get_windows(d, r);
    else
        rn_http_refuse(r, 404, "no such page");
}

/* ---- listening, publishing, closing ----------------------------------------------- */

static void ping_streams(uv_timer_t *t)
{
    rn_dash *d = t->data;
    rn_http_broadcast(d->http, d->ping);
}

int rn_dash_listen(rn_dash *d, const char *addr, char *err)
{
    if (rn_http_listen(d->http, addr, err) < 0)
        return RN_ERR;
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
    rn_http_msg *ev;
    int same;

    if (rn_buf_append(&b, SSE_HEAD, SSE_HEAD_LEN) < 0 || window_json(&b, w) < 0
        || rn_buf_append(&b, "\n\n", 2) < 0 || !(ev = rn_http_msg_new(b.len))) {
        rn_buf_free(&b);
        rn_seterr(err, "out of memory");
        return RN_ENOMEM;
    }
    memcpy(ev->buf, b.p, b.len);
    rn_buf_free(&b);

    size_t i = win_place(d, w->start, w->end, &same);
    if (same) {
        rn_http_msg_unref(d->win[i].ev);
        d->win[i].ev = rn_http_msg_ref(ev);
    } else if (d->nwin < d->keep || i > 0) {
        if (d->nwin == d->keep) {       /* the oldest goes */
            rn_http_msg_unref(d->win[0].ev);
            memmove(d->win, d->win + 1, (d->nwin - 1) * sizeof *d->win);
            d->nwin--;
            i--;
        }
        memmove(d->win + i + 1, d->win + i, (d->nwin - i) * sizeof *d->win);
        d->win[i] = (dwin){ .start = w->start, .end = w->end, .ev = rn_http_msg_ref(ev) };
        d->nwin++;
    }
    /* else: older than everything held, with no room; it is still sent */
    rn_http_broadcast(d->http, ev);
    rn_http_msg_unref(ev);
    return 0;
}

void rn_dash_close(rn_dash *d)
{
    if (d->ka_open) {
        uv_close((uv_handle_t *)&d->ka, NULL);
        d->ka_open = 0;
    }
    rn_http_close(d->http);
}

void rn_dash_free(rn_dash *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nwin; i++)
        rn_http_msg_unref(d->win[i].ev);
    free(d->win);
    rn_http_msg_unref(d->page);
    rn_http_msg_unref(d->ping);
    rn_http_free(d->http);
    free(d);
}
