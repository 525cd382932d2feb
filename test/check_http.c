/* check_http.c -- the specification of runnel's HTTP server (lib/http/) and
 * its two users, the dashboard (lib/results/dashboard.c) and the metrics
 * endpoint (lib/http/metrics.c), as tests: the server runs on a private loop
 * in a thread of its own, the test is its clients, over plain blocking
 * sockets. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/core.h"
#include "http/http.h"
#include "results/results_int.h"
#include "window/window.h"

#define MS 1000000LL

/* ---- the server, on its own thread ---------------------------------------- */

typedef struct srv {
    uv_loop_t loop;
    uv_async_t async;
    uv_thread_t thread;
    rn_dash *d;             /* the server is one of these */
    rn_metrics *m;
    int port;
    uint64_t collects;      /* the metrics' collect calls */
    uint64_t value;         /* what it says */
    int bad;                /* it names a counter without _total */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void (*fn)(struct srv *s, void *arg);
    void *arg;
    int done, stop;
    char warnings[4096];
    size_t nwarn;
} srv;

static srv S;

static void on_warn(void *data, const char *msg)
{
    srv *s = data;
    size_t n = strlen(s->warnings);
    snprintf(s->warnings + n, sizeof s->warnings - n, "%s\n", msg);
    s->nwarn++;
}

static void on_async(uv_async_t *a)
{
    srv *s = a->data;
    pthread_mutex_lock(&s->mu);
    void (*fn)(srv *, void *) = s->fn;
    void *arg = s->arg;
    int stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    if (fn) {
        fn(s, arg);
        pthread_mutex_lock(&s->mu);
        s->fn = NULL;
        s->done = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    if (stop) {
        if (s->d)
            rn_dash_close(s->d);
        else
            rn_metrics_close(s->m);
        uv_close((uv_handle_t *)&s->async, NULL);
    }
}

static void run_loop(void *arg)
{
    srv *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

/* Run fn(arg) on the server's thread and wait for it. */
static void on_loop(void (*fn)(srv *, void *), void *arg)
{
    pthread_mutex_lock(&S.mu);
    S.fn = fn;
    S.arg = arg;
    S.done = 0;
    pthread_mutex_unlock(&S.mu);
    uv_async_send(&S.async);
    pthread_mutex_lock(&S.mu);
    while (!S.done)
        pthread_cond_wait(&S.cv, &S.mu);
    pthread_mutex_unlock(&S.mu);
}

static void start_loop(void)
{
    memset(&S, 0, sizeof S);
    pthread_mutex_init(&S.mu, NULL);
    pthread_cond_init(&S.cv, NULL);
    ck_assert_int_eq(uv_loop_init(&S.loop), 0);
}

static void start_thread(const char *a)
{
    ck_assert_msg(strncmp(a, "127.0.0.1:", 10) == 0, "address %s", a);
    S.port = atoi(a + 10);
    ck_assert_int_gt(S.port, 0);
    uv_async_init(&S.loop, &S.async, on_async);
    S.async.data = &S;
    ck_assert_int_eq(uv_thread_create(&S.thread, run_loop, &S), 0);
}

static void start(rn_dash_opts o)
{
    char err[RN_ERRLEN];

    start_loop();
    o.on_warn = on_warn;
    o.data = &S;
    S.d = rn_dash_new(&S.loop, &o, err);
    ck_assert_msg(S.d != NULL, "%s", err);
    ck_assert_msg(rn_dash_listen(S.d, "127.0.0.1:0", err) == 0, "%s", err);
    start_thread(rn_dash_address(S.d));
}

/* The metrics' collect: one counter and one labelled gauge, or a counter
 * named against the rules when bad is set. */
static void collect(void *data, rn_prom *p)
{
    srv *s = data;
    s->collects++;
    rn_prom_one(p, "runnel_test", s->bad ? "events" : "events_total", RN_PROM_COUNTER,
                "Events.", s->value);
    rn_prom_family(p, "runnel_test", "lag", RN_PROM_GAUGE, "Lag \\ per \"file\".");
    rn_prom_label l = { "file", "/var/log/a \"b\".log", 18 };
    rn_prom_sample(p, &l, 1, 3);
}

static void start_metrics(rn_metrics_opts o)
{
    char err[RN_ERRLEN];

    start_loop();
    o.collect = collect;
    o.on_warn = on_warn;
    o.data = &S;
    S.m = rn_metrics_new(&S.loop, &o, err);
    ck_assert_msg(S.m != NULL, "%s", err);
    ck_assert_msg(rn_metrics_listen(S.m, ":0", err) == 0, "%s", err);
    start_thread(rn_metrics_address(S.m));
}

/* Close the server, let its loop end, and check that nothing is left. */
static void stop(void)
{
    pthread_mutex_lock(&S.mu);
    S.stop = 1;
    pthread_mutex_unlock(&S.mu);
    uv_async_send(&S.async);
    uv_thread_join(&S.thread);
    rn_dash_free(S.d);
    rn_metrics_free(S.m);
    ck_assert_int_eq(uv_loop_close(&S.loop), 0);
    pthread_mutex_destroy(&S.mu);
    pthread_cond_destroy(&S.cv);
}

typedef struct cget {
    const char *name;
    uint64_t v;
} cget;

static void get_counter(srv *s, void *arg)
{
    cget *g = arg;
    g->v = rn_counter_get(s->d ? rn_dash_counters(s->d) : rn_metrics_counters(s->m), g->name);
}

static uint64_t counter(const char *name)
{
    cget g = { name, 0 };
    on_loop(get_counter, &g);
    return g.v;
}

/* ---- windows ------------------------------------------------------------------ */

typedef struct pub {
    rn_topn_window w;
    int r;
} pub;

static void do_publish(srv *s, void *arg)
{
    pub *p = arg;
    char err[RN_ERRLEN];
    p->r = rn_dash_publish(s->d, &p->w, err);
}

static int64_t T0;     /* 2026-11-23T07:40:00Z */

static void publish(int64_t start, int64_t end, size_t nkeys, const rn_topn_entry *e, size_t n)
{
    pub p = { .w = { .start = start, .end = end, .nkeys = nkeys, .n = n, .top = e } };
    on_loop(do_publish, &p);
    ck_assert_int_eq(p.r, 0);
}

static rn_value I(int64_t i) { return (rn_value){ .i = i }; }
static rn_value F(double f) { return (rn_value){ .is_float = 1, .f = f }; }
#define KEY(s) ((rn_str){ (s), sizeof(s) - 1 })

/* Window A: a Chinese key, a key with a byte that is not UTF-8 (0xff), one
 * with a quote and a tab, a float, a negative and a 64-bit integer. */
static const rn_topn_entry A[] = {
    { KEY("big"), { .i = INT64_MAX } },
    { KEY("\xe6\x90\x9c\xe7\xb4\xa2"), { .i = 7 } },      /* 搜索 */
    { KEY("a\xff" "b"), { .i = 3 } },
    { KEY("q\"t\t"), { .is_float = 1, .f = 2.5 } },
    { KEY("neg"), { .i = -4 } },
};
static const char A_JSON[] =
    "{\"start\":\"2026-11-23T07:40:00Z\",\"end\":\"2026-11-23T07:40:10Z\",\"keys\":12,"
    "\"top\":[{\"key\":\"big\",\"value\":9223372036854775807},"
    "{\"key\":\"\xe6\x90\x9c\xe7\xb4\xa2\",\"value\":7},"
    "{\"key\":\"a\\udcffb\",\"value\":3},"
    "{\"key\":\"q\\\"t\\t\",\"value\":2.5},"
    "{\"key\":\"neg\",\"value\":-4}]}";

static const rn_topn_entry B[] = {
    { KEY("foo"), { .i = 9 } },
};
static const char B_JSON[] =
    "{\"start\":\"2026-11-23T07:40:10Z\",\"end\":\"2026-11-23T07:40:20.500Z\",\"keys\":1,"
    "\"top\":[{\"key\":\"foo\",\"value\":9}]}";

static void publish_a(void) { publish(T0, T0 + 10000 * MS, 12, A, 5); }
static void publish_b(void) { publish(T0 + 10000 * MS, T0 + 20500 * MS, 1, B, 1); }

/* ---- clients ---------------------------------------------------------------------- */

static int dial(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)S.port) };
    struct timeval tv = { .tv_sec = 5 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s",
                  strerror(errno));
    return fd;
}

static void say(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        ck_assert_msg(w > 0, "send: %s", strerror(errno));
        s += w;
        n -= (size_t)w;
    }
}
#define SAY(fd, s) say((fd), (s), strlen(s))

/* An answer read off a connection. */
typedef struct resp {
    int status;
    char head[4096];
    char *body;
    size_t len;
} resp;

static void resp_free(resp *r) { free(r->body); r->body = NULL; }

/* Read one answer: its head, then Content-Length bytes of body (none when
 * head_only, as for HEAD). Fails the test if the connection ends first. */
static void answer_of(int fd, resp *r, int head_only)
{
    size_t hn = 0;

    memset(r, 0, sizeof *r);
    while (hn < 4 || memcmp(r->head + hn - 4, "\r\n\r\n", 4) != 0) {
        ck_assert_uint_lt(hn, sizeof r->head - 1);
        ssize_t n = recv(fd, r->head + hn, 1, 0);
        ck_assert_msg(n == 1, "the answer's head ends early (%zd: %s) after '%.*s'", n,
                      strerror(errno), (int)hn, r->head);
        hn++;
    }
    r->head[hn] = '\0';
    ck_assert_msg(sscanf(r->head, "HTTP/1.1 %d ", &r->status) == 1, "head '%s'", r->head);
    const char *cl = strcasestr(r->head, "\r\nContent-Length: ");
    size_t len = cl ? strtoul(cl + 18, NULL, 10) : 0;
    r->body = malloc(len + 1);
    if (!head_only) {
        while (r->len < len) {
            ssize_t n = recv(fd, r->body + r->len, len - r->len, 0);
            ck_assert_msg(n > 0, "the body ends after %zu of %zu bytes", r->len, len);
            r->len += (size_t)n;
        }
    }
    r->body[r->len] = '\0';
}

/* A request on a new connection, and its answer. */
static void get(const char *req, resp *r)
{
    int fd = dial();
    SAY(fd, req);
    answer_of(fd, r, strncmp(req, "HEAD ", 5) == 0);
    close(fd);
}

static int has_header(const resp *r, const char *h)
{
    return strcasestr(r->head, h) != NULL;
}

/* Read until the server closes: 1 when it did (a FIN, or a reset), 0 on a
 * timeout. What came is appended to out (may be NULL). */
static int closed_by_server(int fd, rn_buf *out)
{
    char buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 1;
        if (n < 0)
            return 0;
        if (out)
            rn_buf_append(out, buf, (size_t)n);
    }
}

static int64_t now_ms(void) { return rn_mono_ns() / MS; }

/* ---- the page ----------------------------------------------------------------------- */

START_TEST(page_served)
{
    resp r;
    start((rn_dash_opts){ 0 });
    get("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(has_header(&r, "\r\nContent-Type: text/html; charset=utf-8\r\n"));
    ck_assert_uint_eq(r.len, rn_dash__page_len);
    ck_assert(memcmp(r.body, rn_dash__page, r.len) == 0);
    /* What the page must be: self-contained, UTF-8, live, fit for a phone. */
    ck_assert(strncmp(r.body, "<!DOCTYPE html>", 15) == 0);
    ck_assert(strstr(r.body, "<meta charset=\"utf-8\">"));
    ck_assert(strstr(r.body, "name=\"viewport\""));
    ck_assert(strstr(r.body, "new EventSource('events')"));
    ck_assert(strstr(r.body, "fetch('api/windows'"));
    ck_assert(!strstr(r.body, "<script src"));
    ck_assert(!strstr(r.body, "<link"));
    ck_assert(!strstr(r.body, "https://"));
    ck_assert(!strstr(r.body, "@import"));
    resp_free(&r);
    stop();
}
END_TEST

/* HEAD answers the head alone; the connection goes on (pipelined, in one
 * write) to the next request; /index.html is the page too. */
START_TEST(head_and_keep_alive)
{
    resp r;
    start((rn_dash_opts){ 0 });
    int fd = dial();
    SAY(fd, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /api/latest HTTP/1.1\r\nHost: x\r\n\r\n");
    answer_of(fd, &r, 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert(has_header(&r, "Connection: keep-alive"));
    char cl[64];
    snprintf(cl, sizeof cl, "\r\nContent-Length: %zu\r\n", rn_dash__page_len);
    ck_assert(has_header(&r, cl));
    resp_free(&r);
    answer_of(fd, &r, 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "null");
    resp_free(&r);
    SAY(fd, "GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    answer_of(fd, &r, 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.len, rn_dash__page_len);
    ck_assert(has_header(&r, "Connection: close"));
    resp_free(&r);
    ck_assert(closed_by_server(fd, NULL));
    close(fd);
    ck_assert_uint_eq(counter("requests"), 3);
    ck_assert_uint_eq(counter("bad_requests"), 0);
    stop();
}
END_TEST

/* ---- the JSON API ---------------------------------------------------------------------- */

START_TEST(api_exact_json)
{
    resp r;
    start((rn_dash_opts){ 0 });
    get("GET /api/windows HTTP/1.1\r\n\r\n", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "[]");
    resp_free(&r);

    publish_a();
    get("GET /api/latest HTTP/1.1\r\n\r\n", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(has_header(&r, "\r\nContent-Type: application/json\r\n"));
    ck_assert_str_eq(r.body, A_JSON);
    resp_free(&r);

    publish_b();
    get("GET /api/latest HTTP/1.1\r\n\r\n", &r);
    ck_assert_str_eq(r.body, B_JSON);
    resp_free(&r);

    char want[4096];
    snprintf(want, sizeof want, "[%s,%s]", A_JSON, B_JSON);
    get("GET /api/windows HTTP/1.1\r\n\r\n", &r);
    ck_assert_str_eq(r.body, want);
    resp_free(&r);
    get("GET /api/windows?since=0&_=17 HTTP/1.1\r\n\r\n", &r);
    ck_assert_str_eq(r.body, want);
    resp_free(&r);

    /* since: the windows that end after it. A ends at T0 + 10 s. */
    char req[256];
    snprintf(req, sizeof req, "GET /api/windows?since=%lld HTTP/1.1\r\n\r\n",
             (long long)(T0 / MS + 9999));
    get(req, &r);
    ck_assert_str_eq(r.body, want);
    resp_free(&r);
    snprintf(want, sizeof want, "[%s]", B_JSON);
    snprintf(req, sizeof req, "GET /api/windows?since=%lld HTTP/1.1\r\n\r\n",
             (long long)(T0 / MS + 10000));
    get(req, &r);
    ck_assert_str_eq(r.body, want);
    resp_free(&r);
    snprintf(req, sizeof req, "GET /api/windows?since=%lld HTTP/1.1\r\n\r\n",
             (long long)(T0 / MS + 20500));
    get(req, &r);
    ck_assert_str_eq(r.body, "[]");
    resp_free(&r);

    /* HEAD: the length of what GET would send. */
    get("HEAD /api/latest HTTP/1.1\r\n\r\n", &r);
    snprintf(want, sizeof want, "\r\nContent-Length: %zu\r\n", strlen(B_JSON));
    ck_assert(has_header(&r, want));
    ck_assert_uint_eq(r.len, 0);
    resp_free(&r);

    get("GET /api/windows?since=yesterday HTTP/1.1\r\n\r\n", &r);
    ck_assert_int_eq(r.status, 400);
    resp_free(&r);
    get("GET /api/windows?since= HTTP/1.1\r\n\r\n", &r);
    ck_assert_int_eq(r.status, 400);
    resp_free(&r);
    stop();
}
END_TEST

/* A window published again (late rows) replaces the one held; beyond keep
 * the oldest goes; one older than all held, with no room, is not held. */
START_TEST(api_replace_and_keep)
{
    resp r;
    start((rn_dash_opts){ .keep = 3 });
    rn_topn_entry e = { KEY("k"), { 0 } };
    for (int i = 0; i < 5; i++) {
        e.value = I(i);
        publish(T0 + i * 1000 * MS, T0 + (i + 1) * 1000 * MS, 1, &e, 1);
    }
    e.value = F(0.1);
    publish(T0 + 3000 * MS, T0 + 4000 * MS, 1, &e, 1);      /* window 3 again */
    publish(T0 - 1000 * MS, T0, 1, &e, 1);                  /* too old to hold */
    get("GET /api/windows HTTP/1.1\r\n\r\n", &r);
    ck_assert_str_eq(r.body,
        "[{\"start\":\"2026-11-23T07:40:02Z\",\"end\":\"2026-11-23T07:40:03Z\",\"keys\":1,"
        "\"top\":[{\"key\":\"k\",\"value\":2}]},"
        "{\"start\":\"2026-11-23T07:40:03Z\",\"end\":\"2026-11-23T07:40:04Z\",\"keys\":1,"
        "\"top\":[{\"key\":\"k\",\"value\":0.1}]},"
        "{\"start\":\"2026-11-23T07:40:04Z\",\"end\":\"2026-11-23T07:40:05Z\",\"keys\":1,"
        "\"top\":[{\"key\":\"k\",\"value\":4}]}]");
    resp_free(&r);
    stop();
}
END_TEST

/* ---- the event stream -------------------------------------------------------------------- */

/* Read from an event stream until buf holds `want`; 1 when it does. */
static int stream_until(int fd, rn_buf *b, const char *want)
{
    char tmp[65536];
    while (!(b->len && memmem(b->p, b->len, want, strlen(want)))) {
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0)
            return 0;
        rn_buf_append(b, tmp, (size_t)n);
    }
    return 1;
}

START_TEST(events_stream)
{
    rn_buf b = { 0 };
    resp r;
    char want[4096];

    start((rn_dash_opts){ .keepalive_ns = 100 * MS });
    publish_a();
    int fd = dial();
    SAY(fd, "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    answer_of(fd, &r, 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert(has_header(&r, "\r\nContent-Type: text/event-stream"));
    ck_assert(has_header(&r, "\r\nCache-Control: no-store\r\n"));
    resp_free(&r);
    /* The latest window on connect. */
    snprintf(want, sizeof want, "event: window\ndata: %s\n\n", A_JSON);
    ck_assert(stream_until(fd, &b, want));
    ck_assert_uint_eq(counter("streams"), 1);

    /* A window published reaches the stream within 100 ms. */
    b.len = 0;
    int64_t t = now_ms();
    publish_b();
    snprintf(want, sizeof want, "event: window\ndata: %s\n\n", B_JSON);
    ck_assert(stream_until(fd, &b, want));
    int64_t took = now_ms() - t;
    ck_assert_msg(took < 100, "the window took %lld ms", (long long)took);

    /* A comment keeps the stream alive while nothing happens. */
    b.len = 0;
    ck_assert(stream_until(fd, &b, ": keep-alive\n\n"));
    /* Closed with a stream open: nothing is left (stop() checks). */
    rn_buf_free(&b);
    stop();
    close(fd);
}
END_TEST

/* ---- refusals ------------------------------------------------------------------------------ */

START_TEST(malformed_400)
{
    resp r;
    rn_buf rest = { 0 };
    start((rn_dash_opts){ 0 });
    for (int i = 0; i < 2; i++) {
        int fd = dial();
        SAY(fd, "GET / HTTP/1.1\r\nHost x\r\n\r\n");   /* no colon */
        answer_of(fd, &r, 0);
        ck_assert_int_eq(r.status, 400);
        ck_assert(has_header(&r, "Connection: close"));
        resp_free(&r);
        ck_assert(closed_by_server(fd, &rest));
        ck_assert_uint_eq(rest.len, 0);
        close(fd);
    }
    get("G\x01T / HTTP/1.1\r\n\r\n", &r);
    ck_assert_int_eq(r.status, 400);
    resp_free(&r);
    ck_assert_uint_eq(counter("bad_requests"), 3);
    stop();
    /* Said once, counted every time. */
    ck_assert_uint_eq(S.nwarn, 1);
    ck_assert_msg(strstr(S.warnings, "400") != NULL, "%s", S.warnings);
    rn_buf_free(&rest);
}
END_TEST

START_TEST(not_found_404_method_405)
{
    resp r;
    start((rn_dash_opts){ 0 });
    int fd = dial();
    SAY(fd, "GET /nope HTTP/1.1\r\n\r\n");
    answer_of(fd, &r, 0);
    ck_assert_int_eq(r.status, 404);
    resp_free(&r);
    /* A 404 keeps the connection. */
    SAY(fd, "GET /api/latest HTTP/1.1\r\n\r\n");
    answer_of(fd, &r, 0);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    SAY(fd, "POST /api/latest HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    answer_of(fd, &r, 0);
    ck_assert_int_eq(r.status, 405);
    ck_assert(has_header(&r, "\r\nAllow: GET, HEAD\r\n"));
    resp_free(&r);
    ck_assert(closed_by_server(fd, NULL));
    close(fd);
    ck_assert_uint_eq(counter("requests"), 3);
    ck_assert_uint_eq(counter("bad_requests"), 1);
    stop();
}
END_TEST

START_TEST(header_over_bound_431)
{
    resp r;
    char req[4096];
    start((rn_dash_opts){ .max_header = 1024 });
    /* A head just under the bound passes. */
    int n = snprintf(req, sizeof req, "GET /api/latest HTTP/1.1\r\nX: ");
    memset(req + n, 'a', 900);
    strcpy(req + n + 900, "\r\n\r\n");
    get(req, &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    /* A header, or a URL, over it: 431 and a close. */
    memset(req + n, 'a', 2000);
    strcpy(req + n + 2000, "\r\n\r\n");
    int fd = dial();
    SAY(fd, req);
    answer_of(fd, &r, 0);
    ck_assert_int_eq(r.status, 431);
    resp_free(&r);
    ck_assert(closed_by_server(fd, NULL));
    close(fd);
    n = snprintf(req, sizeof req, "GET /");
    memset(req + n, 'u', 2000);
    strcpy(req + n + 2000, " HTTP/1.1\r\n\r\n");
    get(req, &r);
    ck_assert_int_eq(r.status, 431);
    resp_free(&r);
    ck_assert_uint_eq(counter("bad_requests"), 2);
    stop();
}
END_TEST

START_TEST(request_over_bound_413)
{
    resp r;
    char req[8192];
    start((rn_dash_opts){ .max_header = 1024, .max_request = 2048 });
    int n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
    memset(req + n, 'b', 5000);
    req[n + 5000] = '\0';
    int fd = dial();
    SAY(fd, req);
    answer_of(fd, &r, 0);
    ck_assert_int_eq(r.status, 413);
    resp_free(&r);
    ck_assert(closed_by_server(fd, NULL));
    close(fd);
    stop();
}
END_TEST

START_TEST(clients_over_bound_503)
{
    resp r;
    int fd[3];
    start((rn_dash_opts){ .max_clients = 3 });
    for (int i = 0; i < 3; i++) {       /* three held, each known to the server */
        fd[i] = dial();
        SAY(fd[i], "GET /api/latest HTTP/1.1\r\n\r\n");
        answer_of(fd[i], &r, 0);
        ck_assert_int_eq(r.status, 200);
        resp_free(&r);
    }
    int more = dial();
    answer_of(more, &r, 0);
    ck_assert_int_eq(r.status, 503);
    resp_free(&r);
    ck_assert(closed_by_server(more, NULL));
    close(more);
    ck_assert_uint_eq(counter("refused"), 1);
    ck_assert_uint_eq(counter("clients"), 3);
    /* One leaves: another gets in. */
    close(fd[0]);
    int64_t t = now_ms();
    for (;;) {
        int f = dial();
        SAY(f, "GET /api/latest HTTP/1.1\r\n\r\n");
        answer_of(f, &r, 0);
        close(f);
        if (r.status == 200)
            break;
        resp_free(&r);
        ck_assert_msg(now_ms() - t < 2000, "no room after a client left");
        usleep(10000);
    }
    resp_free(&r);
    close(fd[1]);
    close(fd[2]);
    stop();
}
END_TEST

/* ---- slow and stalled clients -------------------------------------------------------------- */

typedef struct reader {
    int fd;
    size_t windows;         /* "event: window" lines read */
    int ended;
    pthread_t t;
} reader;

static void *read_stream(void *arg)
{
    reader *rd = arg;
    static const char pat[] = "event: window";
    enum { PL = sizeof pat - 1 };
    char buf[12 + 65536];
    size_t carry = 0;           /* the last PL-1 bytes of the last read */

    for (;;) {
        ssize_t n = recv(rd->fd, buf + carry, sizeof buf - carry, 0);
        if (n <= 0)
            break;
        size_t len = carry + (size_t)n;
        /* A match cannot lie wholly in the carry (PL-1 bytes): each is new. */
        for (const char *p = buf; (p = memmem(p, (size_t)(buf + len - p), pat, PL)); p += PL)
            __atomic_add_fetch(&rd->windows, 1, __ATOMIC_SEQ_CST);
        carry = len < PL - 1 ? len : PL - 1;
        memmove(buf, buf + len - carry, carry);
    }
    __atomic_store_n(&rd->ended, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* A client that never reads its stream is dropped once what waits for it
 * passes max_queue; a client that reads gets every window meanwhile. */
START_TEST(stalled_stream_dropped)
{
    static rn_topn_entry e[20];
    static char keys[20][1000];
    resp r;
    int rcv = 4096;

    start((rn_dash_opts){ .max_queue = 64 * 1024, .keep = 4 });
    for (int i = 0; i < 20; i++) {
        memset(keys[i], 'a' + i, sizeof keys[i]);
        e[i] = (rn_topn_entry){ { keys[i], sizeof keys[i] }, I(100 - i) };
    }
    /* The stalled one: a small receive buffer, and no reading after the head. */
    int slow = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)S.port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(slow, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SAY(slow, "GET /events HTTP/1.1\r\n\r\n");
    answer_of(slow, &r, 1);
    resp_free(&r);

    reader rd = { .fd = dial() };
    SAY(rd.fd, "GET /events HTTP/1.1\r\n\r\n");
    answer_of(rd.fd, &r, 1);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    while (counter("streams") < 2)
        usleep(1000);
    pthread_create(&rd.t, NULL, read_stream, &rd);

    /* ~20 KiB a window: the kernel's buffers fill, then the queue. */
    size_t sent = 0;
    while (counter("dropped") == 0) {
        ck_assert_msg(sent < 5000, "the stalled client was never dropped");
        publish(T0 + (int64_t)sent * 1000 * MS, T0 + (int64_t)(sent + 1) * 1000 * MS, 20, e, 20);
        sent++;
    }
    for (int i = 0; i < 5; i++, sent++)
        publish(T0 + (int64_t)sent * 1000 * MS, T0 + (int64_t)(sent + 1) * 1000 * MS, 20, e, 20);
    int64_t t = now_ms();
    while (__atomic_load_n(&rd.windows, __ATOMIC_SEQ_CST) < sent) {
        ck_assert_msg(now_ms() - t < 5000, "the reading client got %zu of %zu windows",
                      rd.windows, sent);
        usleep(1000);
    }
    ck_assert_uint_eq(counter("dropped"), 1);
    ck_assert_uint_eq(counter("streams"), 1);
    ck_assert(closed_by_server(slow, NULL));
    close(slow);
    stop();
    pthread_join(rd.t, NULL);
    close(rd.fd);
    ck_assert_uint_eq(rd.windows, sent);
    ck_assert_msg(strstr(S.warnings, "does not read") != NULL, "%s", S.warnings);
}
END_TEST

/* Half a request, then nothing: closed after the idle time (the whole request
 * must come within it, however slowly it trickles). */
START_TEST(stalled_request_closed)
{
    start((rn_dash_opts){ .idle_ns = 200 * MS });
    int fd = dial();
    int64_t t = now_ms();
    SAY(fd, "GET / HTTP/1.1\r\nHost: x\r\n");
    usleep(120000);
    SAY(fd, "X-More: y\r\n");           /* does not buy more time */
    ck_assert(closed_by_server(fd, NULL));
    int64_t took = now_ms() - t;
    ck_assert_msg(took >= 190 && took < 1500, "closed after %lld ms", (long long)took);
    close(fd);
    /* A client that connects and says nothing is closed too, quietly. */
    fd = dial();
    ck_assert(closed_by_server(fd, NULL));
    close(fd);
    /* After a whole request, the idle time starts again; and again with the
     * first byte of the next. */
    resp r;
    fd = dial();
    SAY(fd, "GET /api/latest HTTP/1.1\r\n\r\n");
    answer_of(fd, &r, 0);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    usleep(150000);
    t = now_ms();
    SAY(fd, "GET /api/lat");
    ck_assert(closed_by_server(fd, NULL));
    took = now_ms() - t;
    ck_assert_msg(took >= 190 && took < 1500, "closed after %lld ms", (long long)took);
    close(fd);
    ck_assert_uint_eq(counter("timeouts"), 3);
    stop();
    ck_assert_uint_eq(S.nwarn, 1);
    ck_assert_msg(strstr(S.warnings, "part of a request") != NULL, "%s", S.warnings);
}
END_TEST

START_TEST(bad_options_and_address)
{
    char err[RN_ERRLEN];
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    rn_dash *d = rn_dash_new(&loop, &(rn_dash_opts){ .idle_ns = -1 }, err);
    ck_assert(d == NULL);
    ck_assert(strstr(err, "negative"));
    d = rn_dash_new(&loop, NULL, err);
    ck_assert(d != NULL);
    ck_assert_int_eq(rn_dash_listen(d, "127.0.0.1", err), RN_ERR);
    ck_assert_msg(strstr(err, "port") != NULL, "%s", err);
    rn_dash_close(d);
    uv_run(&loop, UV_RUN_DEFAULT);
    rn_dash_free(d);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- the metrics endpoint ------------------------------------------------------------------ */

static const char METRICS[] =
    "# HELP runnel_test_events_total Events.\n"
    "# TYPE runnel_test_events_total counter\n"
    "runnel_test_events_total %llu\n"
    "# HELP runnel_test_lag Lag \\\\ per \"file\".\n"
    "# TYPE runnel_test_lag gauge\n"
    "runnel_test_lag{file=\"/var/log/a \\\"b\\\".log\"} 3\n";

static void set_value(srv *s, void *arg) { s->value = *(uint64_t *)arg; }

static void set_bad(srv *s, void *arg)
{
    (void)arg;
    s->bad = 1;
}

static void get_collects(srv *s, void *arg) { *(uint64_t *)arg = s->collects; }

static uint64_t collects(void)
{
    uint64_t n;
    on_loop(get_collects, &n);
    return n;
}

START_TEST(metrics_served)
{
    resp r;
    char want[1024];
    uint64_t v = 42;

    start_metrics((rn_metrics_opts){ 0 });
    on_loop(set_value, &v);
    int fd = dial();
    SAY(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    answer_of(fd, &r, 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(has_header(&r, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
                  "%s", r.head);
    snprintf(want, sizeof want, METRICS, 42ULL);
    ck_assert_str_eq(r.body, want);
    size_t len = r.len;
    resp_free(&r);
    /* HEAD: the same head, no body; the connection goes on. */
    SAY(fd, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    answer_of(fd, &r, 1);
    ck_assert_int_eq(r.status, 200);
    char cl[64];
    snprintf(cl, sizeof cl, "\r\nContent-Length: %zu\r\n", len);
    ck_assert(has_header(&r, cl));
    resp_free(&r);
    /* Anything but /metrics (and / which points there) is 404. */
    SAY(fd, "GET /metrics/ HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    answer_of(fd, &r, 0);
    ck_assert_int_eq(r.status, 404);
    resp_free(&r);
    answer_of(fd, &r, 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert(strstr(r.body, "/metrics") != NULL);
    resp_free(&r);
    close(fd);
    ck_assert_uint_eq(counter("requests"), 4);
    ck_assert_uint_eq(counter("bad_requests"), 0);
    stop();
    ck_assert_uint_eq(S.nwarn, 0);
}
END_TEST

/* However many scrape, the tool renders at most once per max_age: the same
 * rendering is served meanwhile. */
START_TEST(metrics_rendered_once_per_age)
{
    resp r;
    char want[1024];
    uint64_t v;

    start_metrics((rn_metrics_opts){ .max_age_ns = 400 * MS });
    for (int i = 0; i < 20; i++) {
        v = 100 + (uint64_t)i;
        on_loop(set_value, &v);
        get("GET /metrics HTTP/1.1\r\n\r\n", &r);
        ck_assert_int_eq(r.status, 200);
        snprintf(want, sizeof want, METRICS, 100ULL);
        ck_assert_str_eq(r.body, want);
        resp_free(&r);
    }
    ck_assert_uint_eq(collects(), 1);
    usleep(450 * 1000);
    get("GET /metrics HTTP/1.1\r\n\r\n", &r);
    snprintf(want, sizeof want, METRICS, 119ULL);
    ck_assert_str_eq(r.body, want);
    resp_free(&r);
    ck_assert_uint_eq(collects(), 2);
    stop();

    /* max_age < 0: every scrape renders. */
    start_metrics((rn_metrics_opts){ .max_age_ns = -1 });
    for (int i = 0; i < 3; i++) {
        v = (uint64_t)i;
        on_loop(set_value, &v);
        get("GET /metrics HTTP/1.1\r\n\r\n", &r);
        snprintf(want, sizeof want, METRICS, (unsigned long long)i);
        ck_assert_str_eq(r.body, want);
        resp_free(&r);
    }
    ck_assert_uint_eq(collects(), 3);
    stop();
}
END_TEST

/* A collect that breaks the format's rules gets a 500 naming why (and one
 * warning), never a body Prometheus would refuse. */
START_TEST(metrics_bad_render_500)
{
    resp r;
    start_metrics((rn_metrics_opts){ .max_age_ns = -1 });
    on_loop(set_bad, NULL);
    for (int i = 0; i < 2; i++) {
        get("GET /metrics HTTP/1.1\r\n\r\n", &r);
        ck_assert_int_eq(r.status, 500);
        ck_assert_msg(strstr(r.body, "_total") != NULL, "%s", r.body);
        resp_free(&r);
    }
    stop();
    ck_assert_uint_eq(S.nwarn, 1);
    ck_assert_msg(strstr(S.warnings, "runnel_test_events") != NULL, "%s", S.warnings);
}
END_TEST

static void on_idle_check(uv_timer_t *t) { *(int *)t->data = 1; }

/* A weak server does not keep its loop running: a tool's loop ends when its
 * work does, scrapers or not. A connected client is closed with it. */
START_TEST(metrics_weak)
{
    char err[RN_ERRLEN];
    uv_loop_t loop;
    uv_timer_t t;
    int fired = 0;

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    rn_metrics *m = rn_metrics_new(&loop, &(rn_metrics_opts){ .weak = 1, .collect = collect,
                                                              .data = &S }, err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert_msg(rn_metrics_listen(m, "127.0.0.1:0", err) == 0, "%s", err);
    S.port = atoi(rn_metrics_address(m) + 10);
    int fd = dial();        /* connected, and in the listen queue */
    /* The tool's work: one timer. The loop ends after it, not waiting for
     * the server or its client. */
    uv_timer_init(&loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_idle_check, 50, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(fired, 1);
    uv_close((uv_handle_t *)&t, NULL);
    rn_metrics_close(m);
    uv_run(&loop, UV_RUN_DEFAULT);
    rn_metrics_free(m);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    close(fd);
}
END_TEST

START_TEST(addresses)
{
    char err[RN_ERRLEN], host[256];
    int port;

    /* ":PORT" is loopback: every interface is asked for by name. */
    ck_assert_int_eq(rn_http_addr_parse(":9100", host, sizeof host, &port, err), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 9100);
    ck_assert_int_eq(rn_http_addr_parse("0.0.0.0:9100", host, sizeof host, &port, err), 0);
    ck_assert_str_eq(host, "0.0.0.0");
    ck_assert_int_eq(rn_http_addr_parse("[::]:80", host, sizeof host, &port, err), 0);
    ck_assert_str_eq(host, "::");
    ck_assert_int_eq(rn_http_addr_parse("9100", host, sizeof host, &port, err), RN_ERR);
    ck_assert_msg(strstr(err, "port") != NULL, "%s", err);
    ck_assert_int_eq(rn_http_addr_parse(":", host, sizeof host, &port, err), RN_ERR);
    ck_assert_int_eq(rn_http_addr_parse(":65536", host, sizeof host, &port, err), RN_ERR);
    ck_assert_msg(strstr(err, "65536") != NULL, "%s", err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http");
    if (rn_time_parse("2026-11-23T07:40:00Z", 20, &T0) < 0)
        return EXIT_FAILURE;

    TCase *page = tcase_create("page");
    tcase_add_test(page, page_served);
    tcase_add_test(page, head_and_keep_alive);
    suite_add_tcase(s, page);

    TCase *api = tcase_create("api");
    tcase_add_test(api, api_exact_json);
    tcase_add_test(api, api_replace_and_keep);
    suite_add_tcase(s, api);

    TCase *ev = tcase_create("events");
    tcase_add_test(ev, events_stream);
    suite_add_tcase(s, ev);

    TCase *bad = tcase_create("refusals");
    tcase_add_test(bad, malformed_400);
    tcase_add_test(bad, not_found_404_method_405);
    tcase_add_test(bad, header_over_bound_431);
    tcase_add_test(bad, request_over_bound_413);
    tcase_add_test(bad, clients_over_bound_503);
    tcase_add_test(bad, bad_options_and_address);
    suite_add_tcase(s, bad);

    TCase *met = tcase_create("metrics");
    tcase_add_test(met, metrics_served);
    tcase_add_test(met, metrics_rendered_once_per_age);
    tcase_add_test(met, metrics_bad_render_500);
    tcase_add_test(met, metrics_weak);
    tcase_add_test(met, addresses);
    suite_add_tcase(s, met);

    TCase *slow = tcase_create("slow");
    tcase_add_test(slow, stalled_stream_dropped);
    tcase_add_test(slow, stalled_request_closed);
    tcase_set_timeout(slow, 60);
    suite_add_tcase(s, slow);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
