/* check_hop.c -- the specification of lib/hop/ (man/chanbuf-hop.5), as tests. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "hop/hop.h"
#include "core/core.h"

#define LIT(s) (s), sizeof(s) - 1
#define NB 1000                 /* batches in a delivery test */
#define MS 1000000LL

/* ---- batches: what the sender sends and the receiver checks ---------------- */

/* Batch i holds 1 + i % 4 events, each with a header and a body that says
 * which batch and event it is. */
static size_t big_body;          /* when set, every body is this long */

static void make_batch(uint64_t i, rn_buf *b, uint32_t *count)
{
    static char big[2 << 20];
    rn_event ev;
    char body[64], val[32];

    *count = 1 + (uint32_t)(i % 4);
    for (uint32_t j = 0; j < *count; j++) {
        rn_event_clear(&ev);
        ev.ts = (int64_t)(i * 1000 + j);
        int vn = snprintf(val, sizeof val, "%llu", (unsigned long long)i);
        rn_event_add_header(&ev, LIT("batch"), val, (size_t)vn);
        int n = snprintf(body, sizeof body, "batch %llu event %u", (unsigned long long)i, j);
        ev.body = (rn_str){ body, (size_t)n };
        if (big_body) {
            ck_assert_uint_le(big_body, sizeof big);
            for (size_t k = 0; k < big_body; k++)
                big[k] = (char)(i * 7 + j * 3 + k);
            memcpy(big, body, (size_t)n);
            ev.body = (rn_str){ big, big_body };
        }
        ck_assert_int_eq(rn_encode_event(b, RN_FMT_FRAMES, &ev), 0);
    }
}

static int batch_matches(uint64_t i, const char *p, size_t len, uint32_t count)
{
    rn_buf b = { 0 };
    uint32_t n;
    char err[RN_ERRLEN];

    make_batch(i, &b, &n);
    int ok = n == count && b.len == len && memcmp(b.p, p, len) == 0
          && rn_batch_each(p, len, count, NULL, NULL, NULL, err) == 0;
    rn_buf_free(&b);
    return ok;
}

/* ---- one test's world: servers, a sender, what they saw ---------------------- */

enum { ACT_ACK, ACT_BUSY, ACT_NACK, ACT_DEFER, ACT_KEEP };

typedef struct rx {
    int idx;
    rn_hop_server *srv;
    uint64_t taken, last_serial;
    int order_bad;
} rx;

typedef struct pending {
    rn_hop_server *srv;
    uint64_t conn, serial;
} pending;

static struct {
    uv_loop_t loop;
    rx rx[3];
    rn_hop_sender *snd;
    uint64_t total, ahead, sent, acked;
    unsigned seen[NB + 2];      /* offers per serial, over every server */
    unsigned stored[NB + 2];
    unsigned status[3];
    uint64_t session;
    int session_bad, content_bad, order_bad;
    int (*policy)(rx *r, const rn_hop_batch *b);
    pending pend[4096];
    size_t npend, max_pend;
    uv_timer_t timer;           /* a test's own: acks, drains, restarts */
    int timer_on;
    void (*on_timer)(void);
    uv_async_t async;           /* a raw-socket thread is done */
    int async_on, raw_done;
    int finished;
    char swarns[8192], xwarns[8192];
    int nswarn, nxwarn;
} T;

static void append(char *buf, size_t cap, const char *msg)
{
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "%s\n", msg);
}

static void server_warn(void *data, const char *msg)
{
    (void)data;
    T.nswarn++;
    append(T.swarns, sizeof T.swarns, msg);
}

static void sender_warn(void *data, const char *msg)
{
    (void)data;
    T.nxwarn++;
    append(T.xwarns, sizeof T.xwarns, msg);
}

static void ack(rn_hop_server *s, uint64_t conn, uint64_t serial)
{
    int dup = serial <= NB && T.stored[serial];
    if (serial <= NB)
        T.stored[serial] = 1;
    rn_hop_server_ack(s, conn, serial, dup ? RN_HOP_DUPLICATE : RN_HOP_STORED);
}

static int on_batch(void *data, const rn_hop_batch *b)
{
    rx *r = data;

    if (!T.session)
        T.session = b->session;
    else if (b->session != T.session)
        T.session_bad++;
    if (b->serial == 0 || b->serial > NB
        || !batch_matches(b->serial - 1, b->events, b->len, b->count))
        T.content_bad++;
    if (b->serial <= NB)
        T.seen[b->serial]++;
    int act = T.policy ? T.policy(r, b) : ACT_ACK;
    if (act == ACT_BUSY)
        return RN_HOP_BUSY;
    r->taken++;
    if (b->serial != r->last_serial + 1)
        r->order_bad++;
    r->last_serial = b->serial;
    switch (act) {
    case ACT_ACK:
        ack(r->srv, b->conn, b->serial);
        break;
    case ACT_NACK:
        rn_hop_server_nack(r->srv, b->conn, b->serial, "not now");
        break;
    case ACT_DEFER:
        ck_assert_uint_lt(T.npend, sizeof T.pend / sizeof T.pend[0]);
        T.pend[T.npend++] = (pending){ r->srv, b->conn, b->serial };
        if (T.npend > T.max_pend)
            T.max_pend = T.npend;
        break;
    default:
        break;      /* ACT_KEEP: stored, never acked */
    }
    return RN_HOP_TAKEN;
}

static void ack_pending(void)
{
    for (size_t i = 0; i < T.npend; i++)
        ack(T.pend[i].srv, T.pend[i].conn, T.pend[i].serial);
    T.npend = 0;
}

static rn_hop_server *start_server(int idx, const char *addr, size_t max_frame)
{
    char err[RN_ERRLEN];
    rn_hop_server_opts o = { .max_frame = max_frame, .on_batch = on_batch,
                             .on_warn = server_warn, .data = &T.rx[idx] };
    rn_hop_server *s = rn_hop_server_new(&T.loop, &o, err);

    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_msg(rn_hop_server_listen(s, addr, err) == 0, "%s", err);
    T.rx[idx].idx = idx;
    T.rx[idx].srv = s;
    return s;
}

static void finish(void)
{
    if (T.finished)
        return;
    T.finished = 1;
    if (T.snd)
        rn_hop_sender_close(T.snd);
    for (int i = 0; i < 3; i++)
        if (T.rx[i].srv)
            rn_hop_server_close(T.rx[i].srv);
    if (T.timer_on)
        uv_close((uv_handle_t *)&T.timer, NULL);
    if (T.async_on)
        uv_close((uv_handle_t *)&T.async, NULL);
}

static void maybe_finish(void)
{
    if (T.acked == T.total && (!T.async_on || T.raw_done))
        finish();
}

static void send_next(void)
{
    rn_buf b = { 0 };
    uint32_t n;
    char err[RN_ERRLEN];
    uint64_t i = T.sent++;

    make_batch(i, &b, &n);
    ck_assert_int_eq(rn_hop_sender_send(T.snd, &b, n, (void *)(uintptr_t)(i + 1), err), 0);
    ck_assert_ptr_null(b.p);
}

/* Batches are reported in the order they were sent, and the next ones are
 * sent from in here: the sender must take that. */
static void on_ack(void *data, void *cookie, int status)
{
    (void)data;
    if ((uintptr_t)cookie != T.acked + 1)
        T.order_bad++;
    T.acked++;
    ck_assert_int_ge(status, 0);
    ck_assert_int_le(status, 2);
    T.status[status]++;
    while (T.sent < T.total && T.sent - T.acked < T.ahead)
        send_next();
    maybe_finish();
}

static rn_hop_sender *start_sender(const char *url, size_t window)
{
    char err[RN_ERRLEN];
    rn_hop_sender_opts o = { .window = window, .backoff_min_ns = 5 * MS,
                             .backoff_max_ns = 40 * MS, .on_ack = on_ack,
                             .on_warn = sender_warn };

    ck_assert_msg(rn_hop_url_parse(url, &o.url, err) == 0, "%s", err);
    T.snd = rn_hop_sender_new(&T.loop, &o, err);
    ck_assert_msg(T.snd != NULL, "%s", err);
    while (T.sent < T.total && T.sent < T.ahead)
        send_next();
    return T.snd;
}

static void timer_cb(uv_timer_t *h)
{
    (void)h;
    if (T.on_timer)
        T.on_timer();
}

static void start_timer(void (*fn)(void), uint64_t first_ms, uint64_t repeat_ms)
{
    if (!T.timer_on) {
        uv_timer_init(&T.loop, &T.timer);
        T.timer_on = 1;
    }
    T.on_timer = fn;
    uv_timer_start(&T.timer, timer_cb, first_ms, repeat_ms);
}

static char url_buf[512];

static const char *url_of(const rn_hop_server *a, const rn_hop_server *b, const char *q)
{
    snprintf(url_buf, sizeof url_buf, "tcp://%s%s%s%s", rn_hop_server_address(a),
             b ? "," : "", b ? rn_hop_server_address(b) : "", q ? q : "");
    return url_buf;
}

static void setup(void)
{
    memset(&T, 0, sizeof T);
    big_body = 0;
    ck_assert_int_eq(uv_loop_init(&T.loop), 0);
    T.total = NB;
    T.ahead = 64;
}

/* Run to the end and check that nothing was left open. */
static void run_and_close(void)
{
    uv_run(&T.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&T.loop), 0);
}

static void teardown(void)
{
    if (T.snd)
        rn_hop_sender_free(T.snd);
    for (int i = 0; i < 3; i++)
        if (T.rx[i].srv)
            rn_hop_server_free(T.rx[i].srv);
}

static void assert_all_delivered(void)
{
    ck_assert_uint_eq(T.acked, T.total);
    ck_assert_int_eq(T.order_bad, 0);
    ck_assert_int_eq(T.content_bad, 0);
    ck_assert_int_eq(T.session_bad, 0);
    ck_assert_uint_ne(T.session, 0);
    for (uint64_t i = 1; i <= T.total; i++)
        ck_assert_msg(T.stored[i] == 1, "serial %llu was not stored", (unsigned long long)i);
}

static uint64_t xcount(const char *name)
{
    return rn_counter_get(rn_hop_sender_counters(T.snd), name);
}

static uint64_t scount(int i, const char *name)
{
    return rn_counter_get(rn_hop_server_counters(T.rx[i].srv), name);
}

/* ---- addresses ---------------------------------------------------------------- */

START_TEST(url_good)
{
    rn_hop_url u;
    char err[RN_ERRLEN];

    ck_assert_int_eq(rn_hop_url_parse("tcp://127.0.0.1:4141", &u, err), 0);
    ck_assert_uint_eq(u.n, 1);
    ck_assert_str_eq(u.t[0].host, "127.0.0.1");
    ck_assert_int_eq(u.t[0].port, 4141);
    ck_assert_int_eq(u.balance, 0);

    ck_assert_int_eq(rn_hop_url_parse("tcp://a.example:1,[::1]:2,b-c_d:65535?mode=balance",
                                      &u, err), 0);
    ck_assert_uint_eq(u.n, 3);
    ck_assert_str_eq(u.t[0].host, "a.example");
    ck_assert_int_eq(u.t[0].port, 1);
    ck_assert_str_eq(u.t[1].host, "::1");
    ck_assert_int_eq(u.t[1].port, 2);
    ck_assert_str_eq(u.t[2].host, "b-c_d");
    ck_assert_int_eq(u.t[2].port, 65535);
    ck_assert_int_eq(u.balance, 1);

    ck_assert_int_eq(rn_hop_url_parse("tcp://h:9?mode=failover", &u, err), 0);
    ck_assert_int_eq(u.balance, 0);
    ck_assert_int_eq(rn_hop_url_parse("tcp://a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9,j:10,"
                                      "k:11,l:12,m:13,n:14,o:15,p:16", &u, err), 0);
    ck_assert_uint_eq(u.n, 16);
}
END_TEST

START_TEST(url_bad)
{
    static const struct { const char *url, *why; } bad[] = {
        { "tcp://x", "tcp://x: missing port" },
        { "tcp://x:", "tcp://x:: missing port" },
        { "http://x:1", "not a tcp:// URL" },
        { "tcp://", "no receiver" },
        { "tcp://?mode=balance", "no receiver" },
        { "tcp://x:0", "port 0" },
        { "tcp://x:65536", "above 65535" },
        { "tcp://x:12a", "bad port '12a'" },
        { "tcp://x:-1", "bad port" },
        { "tcp://::1:4141", "in brackets" },
        { "tcp://[::1:4141", "missing ']'" },
        { "tcp://[::1]", "missing port" },
        { "tcp://[::1]x:1", "junk after the IPv6 address" },
        { "tcp://[zz]:1", "bad IPv6 address 'zz'" },
        { "tcp://:1", "missing host" },
        { "tcp://a:1,b", "receiver 2 'b': missing port" },
        { "tcp://a:1,", "receiver 2 '': missing host and port" },
        { "tcp://a:1?mode=x", "unknown mode 'x'" },
        { "tcp://a:1?mode", "unknown parameter 'mode'" },
        { "tcp://a:1?foo=1", "unknown parameter 'foo=1'" },
        { "tcp://999.1.1.1:5", "bad IPv4 address '999.1.1.1'" },
        { "tcp://a b:1", "bad host name 'a b'" },
        { "tcp://a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9,j:10,k:11,l:12,m:13,n:14,o:15,p:16,q:17",
          "more than 16 receivers" },
    };
    rn_hop_url u;
    char err[RN_ERRLEN];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(rn_hop_url_parse(bad[i].url, &u, err) == -1, "%s parsed", bad[i].url);
        ck_assert_msg(strstr(err, bad[i].why) != NULL, "%s: got \"%s\", want \"%s\"",
                      bad[i].url, err, bad[i].why);
    }
}
END_TEST

START_TEST(addr_parse)
{
    rn_hop_target t;
    char err[RN_ERRLEN];

    ck_assert_int_eq(rn_hop_addr_parse("127.0.0.1:0", &t, err), 0);
    ck_assert_str_eq(t.host, "127.0.0.1");
    ck_assert_int_eq(t.port, 0);
    ck_assert_int_eq(rn_hop_addr_parse("[::]:4141", &t, err), 0);
    ck_assert_str_eq(t.host, "::");
    ck_assert_int_eq(t.port, 4141);
    ck_assert_int_eq(rn_hop_addr_parse("localhost:80", &t, err), 0);
    ck_assert_int_eq(rn_hop_addr_parse("4141", &t, err), -1);
    ck_assert_str_eq(err, "4141: missing port");
    ck_assert_int_eq(rn_hop_addr_parse("x:99999", &t, err), -1);
    ck_assert_str_eq(err, "x:99999: port 99999 is above 65535");
}
END_TEST

/* ---- events of a batch ----------------------------------------------------------- */

typedef struct walked {
    size_t n;
    int64_t ts[8];
    size_t nhdr[8];
    char body[8][300];
    size_t blen[8];
    int stop_at;
} walked;

static int walk_fn(void *arg, const rn_event *ev)
{
    walked *w = arg;

    if ((int)w->n == w->stop_at)
        return -7;
    w->ts[w->n] = ev->ts;
    w->nhdr[w->n] = ev->nhdr;
    ck_assert_uint_le(ev->body.n, sizeof w->body[0]);
    memcpy(w->body[w->n], ev->body.p, ev->body.n);
    w->blen[w->n] = ev->body.n;
    w->n++;
    return 0;
}

/* A body of varied events: headers, an empty body, every byte value,
 * extreme timestamps, a body over 255 bytes. */
static void sample_body(rn_buf *b, uint32_t *count)
{
    static char all[256], big[300];
    rn_event ev;

    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    memset(big, 'x', sizeof big);
    rn_event_clear(&ev);
    ev.ts = 1763881641123456789LL;
    rn_event_add_header(&ev, LIT("file"), LIT("/var/log/app.log"));
    rn_event_add_header(&ev, LIT("host"), LIT("web-01"));
    ev.body = (rn_str){ LIT("GET /index.html 200") };
    rn_encode_event(b, RN_FMT_FRAMES, &ev);
    rn_event_clear(&ev);
    ev.ts = INT64_MIN;
    rn_encode_event(b, RN_FMT_FRAMES, &ev);
    rn_event_clear(&ev);
    ev.ts = INT64_MAX;
    ev.body = (rn_str){ all, sizeof all };
    rn_encode_event(b, RN_FMT_FRAMES, &ev);
    rn_event_clear(&ev);
    ev.ts = -1;
    ev.body = (rn_str){ big, sizeof big };
    rn_encode_event(b, RN_FMT_FRAMES, &ev);
    *count = 4;
}

START_TEST(events_valid)
{
    rn_buf b = { 0 };
    uint32_t count;
    char err[RN_ERRLEN];
    walked w = { .stop_at = -1 };

    sample_body(&b, &count);
    ck_assert_int_eq(rn_batch_each(b.p, b.len, count, walk_fn, &w, NULL, err), 0);
    ck_assert_uint_eq(w.n, 4);
    ck_assert(w.ts[0] == 1763881641123456789LL && w.ts[1] == INT64_MIN);
    ck_assert(w.ts[2] == INT64_MAX && w.ts[3] == -1);
    ck_assert_uint_eq(w.nhdr[0], 2);
    ck_assert_uint_eq(w.nhdr[1], 0);
    ck_assert_uint_eq(w.blen[0], 19);
    ck_assert(memcmp(w.body[0], "GET /index.html 200", 19) == 0);
    ck_assert_uint_eq(w.blen[1], 0);
    ck_assert_uint_eq(w.blen[2], 256);
    for (int i = 0; i < 256; i++)
        ck_assert_int_eq((unsigned char)w.body[2][i], i);
    ck_assert_uint_eq(w.blen[3], 300);

    /* Check only; and a walk that fn stops. */
    ck_assert_int_eq(rn_batch_each(b.p, b.len, count, NULL, NULL, NULL, err), 0);
    walked s = { .stop_at = 2 };
    ck_assert_int_eq(rn_batch_each(b.p, b.len, count, walk_fn, &s, NULL, err), -7);
    ck_assert_uint_eq(s.n, 2);
    /* No events at all is a valid (empty) batch. */
    ck_assert_int_eq(rn_batch_each("", 0, 0, NULL, NULL, NULL, err), 0);
    rn_buf_free(&b);
}
END_TEST

static void expect_bad(const char *p, size_t len, uint32_t count, const char *why)
{
    char err[RN_ERRLEN] = "", msg[RN_ERRLEN + 64];
    char *copy = malloc(len ? len : 1);     /* exact size: the sanitizer sees overreads */
    size_t at = SIZE_MAX;

    memcpy(copy, p, len);
    ck_assert_int_eq(rn_batch_each(copy, len, count, NULL, NULL, &at, err), RN_ECORRUPT);
    snprintf(msg, sizeof msg, "byte offset %zu: %s", at, err);
    ck_assert_msg(strstr(msg, why) != NULL, "got \"%s\", want \"%s\"", msg, why);
    free(copy);
}

START_TEST(events_bad)
{
    rn_buf b = { 0 };
    uint32_t count;

    sample_body(&b, &count);
    size_t first = 4 + ((size_t)(unsigned char)b.p[3]);   /* the first event is short */
    expect_bad(b.p, b.len, count + 1, "byte offset ");
    expect_bad(b.p, b.len, count + 1, "event 5 of 5: missing");
    expect_bad(b.p, b.len, count - 1, "bytes after the last of 3 events");
    expect_bad(b.p, b.len - 1, count,
               "event 4 of 4: length 306 runs past the end of the batch (305 bytes left)");
    char want[128];
    snprintf(want, sizeof want, "byte offset %zu: event 2 of 2: length cut short", first);
    expect_bad(b.p, first + 2, 2, want);
    expect_bad("\0\0\0\0", 4, 1, "byte offset 0: event 1 of 1: length 0");
    expect_bad("\0\0\0\x01\x92", 5, 1, "byte offset 0: event 1 of 1: not an array");
    expect_bad("\0\0\0\x02\x93\x01", 6, 1, "cut short");
    expect_bad("\0\0\0\x04\x93\xc0\x80\xa0", 8, 1, "ts is not an integer");
    expect_bad("\0\0\0\x04\x93\x01\x01\xa0", 8, 1, "headers is not a map");
    expect_bad("\0\0\0\x05\x93\x01\x81\x01\x01", 9, 1, "a header name is not a string");
    expect_bad("\0\0\0\x04\x93\x01\x80\x01", 8, 1, "body is not bin or str");
    expect_bad("\0\0\0\x05\x93\x01\x80\xa0\x00", 9, 1, "bytes left after the msgpack value");
    expect_bad("\0\0\0\x0c\x93\xcf\xff\xff\xff\xff\xff\xff\xff\xff\x80\xa0", 16, 1,
               "ts out of range");
    expect_bad("\0\0\0\x06\x93\x01\xde\xff\xff\xa0", 10, 1, "more than 64 headers");
    expect_bad("GET / HTTP/1.0\r\n\r\n", 18, 1, "byte offset 0: event 1 of 1: length");
    /* A frames stream header between events is not an event. */
    rn_buf h = { 0 };
    rn_buf_append(&h, b.p, first);
    rn_buf_append(&h, RN_FRAMES_HEADER, RN_FRAMES_HEADER_LEN);
    rn_buf_append(&h, b.p + first, b.len - first);
    snprintf(want, sizeof want, "byte offset %zu: event 2 of 4", first);
    expect_bad(h.p, h.len, count, want);
    rn_buf_free(&h);
    rn_buf_free(&b);
}
END_TEST

static uint64_t rng_state;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Whatever a batch body is turned into, the walk ends in success or in an
 * error that names the byte offset, and never reads outside the body. */
START_TEST(events_fuzz)
{
    rn_buf b = { 0 };
    uint32_t count;
    int ok = 0, bad = 0;

    rng_state = 0x9e3779b97f4a7c15ULL;
    sample_body(&b, &count);
    for (int iter = 0; iter < 5000; iter++) {
        size_t len = b.len;
        uint32_t c = count;
        char *p = malloc(b.len + 64);
        memcpy(p, b.p, b.len);
        int muts = 1 + (int)(rng() % 4);
        for (int m = 0; m < muts; m++) {
            switch (rng() % 7) {
            case 0:     /* flip a byte */
                if (len)
                    p[rng() % len] ^= (char)(1 + rng() % 255);
                break;
            case 1:     /* cut */
                len = len ? rng() % len : 0;
                break;
            case 2:     /* junk at the end */
                for (int k = (int)(rng() % 16); k > 0 && len < b.len + 64; k--)
                    p[len++] = (char)rng();
                break;
            case 3:     /* another count */
                c = rng() % 3 == 0 ? rng() : count + (rng() % 5) - 2;
                break;
            case 4:     /* a length byte of an event, or a big msgpack length */
                if (len > 4)
                    p[rng() % 4] = (char)(rng() % 2 ? 0xff : 0x00);
                break;
            case 5:     /* msgpack type bytes that claim big sizes */
                if (len) {
                    static const unsigned char t[] = { 0xdb, 0xc6, 0xdd, 0xdf, 0xcf, 0xd3 };
                    p[rng() % len] = (char)t[rng() % sizeof t];
                }
                break;
            default:    /* all random */
                for (size_t k = 0; k < len; k++)
                    p[k] = (char)rng();
            }
        }
        char *exact = malloc(len ? len : 1);
        memcpy(exact, p, len);
        char err[RN_ERRLEN] = "";
        walked w = { .stop_at = -1 };
        size_t at = SIZE_MAX;
        int r = rn_batch_each(exact, len, c, rng() % 2 ? walk_fn : NULL, &w, &at, err);
        if (r == 0) {
            ok++;
        } else {
            ck_assert_int_eq(r, RN_ECORRUPT);
            ck_assert_msg(at <= len, "offset %zu of %zu", at, len);
            ck_assert_msg(strncmp(err, "event ", 6) == 0 || strstr(err, "bytes after the last"),
                          "error \"%s\"", err);
            bad++;
        }
        free(exact);
        free(p);
    }
    ck_assert_int_gt(bad, 1000);
    rn_buf_free(&b);
}
END_TEST

/* ---- delivery ---------------------------------------------------------------------- */

START_TEST(deliver_in_order)
{
    rn_hop_server *s = start_server(0, "127.0.0.1:0", 0);

    ck_assert(strncmp(rn_hop_server_address(s), "127.0.0.1:", 10) == 0);
    ck_assert_str_ne(rn_hop_server_address(s), "127.0.0.1:0");
    start_sender(url_of(s, NULL, NULL), 0);
    run_and_close();
    assert_all_delivered();
    ck_assert_int_eq(T.rx[0].order_bad, 0);
    ck_assert_uint_eq(T.status[RN_HOP_STORED], NB);
    ck_assert_uint_eq(xcount("batches"), NB);
    ck_assert_uint_eq(xcount("acked"), NB);
    ck_assert_uint_eq(xcount("retries"), 0);
    ck_assert_uint_eq(xcount("reconnects"), 0);
    ck_assert_uint_eq(scount(0, "connections"), 1);
    ck_assert_uint_eq(scount(0, "batches"), NB);
    ck_assert_uint_eq(scount(0, "refused"), 0);
    uint64_t events = 0;
    for (uint64_t i = 0; i < NB; i++)
        events += 1 + i % 4;
    ck_assert_uint_eq(scount(0, "events"), events);
    ck_assert_uint_eq(xcount("events"), events);
    ck_assert_int_eq(T.nxwarn, 0);
    ck_assert_int_eq(T.nswarn, 0);
}
END_TEST

/* A name is resolved (asynchronously); every address it has is tried. */
START_TEST(deliver_by_name)
{
    char url[128];
    rn_hop_server *s = start_server(0, "127.0.0.1:0", 0);

    T.total = 50;
    snprintf(url, sizeof url, "tcp://localhost:%s", strrchr(rn_hop_server_address(s), ':') + 1);
    start_sender(url, 0);
    run_and_close();
    assert_all_delivered();
}
END_TEST

/* Batches of megabytes: the receiver's buffer grows for them (and only as
 * far as a frame needs), and every byte arrives. */
START_TEST(large_batches)
{
    rn_hop_server *s = start_server(0, "127.0.0.1:0", 0);

    big_body = 1500 * 1024;
    T.total = 12;           /* 1 to 4 events each: up to 6 MB a batch */
    T.ahead = 3;
    start_sender(url_of(s, NULL, NULL), 2);
    run_and_close();
    assert_all_delivered();
    ck_assert_int_eq(T.nswarn, 0);
}
END_TEST

/* Taken batches can still be acknowledged after stop_input; nothing more
 * is offered. */
static void ack_then_stop(void)
{
    ack_pending();
    if (T.acked == 10 && T.rx[0].taken == 10)
        finish();
}

static int stop_at_10(rx *r, const rn_hop_batch *b)
{
    if (b->serial == 10)
        rn_hop_server_stop_input(r->srv);
    return ACT_DEFER;
}

START_TEST(stop_input)
{
    rn_hop_server *s = start_server(0, "127.0.0.1:0", 0);

    T.policy = stop_at_10;
    start_timer(ack_then_stop, 5, 5);
    start_sender(url_of(s, NULL, NULL), 8);
    run_and_close();
    ck_assert_uint_eq(T.rx[0].taken, 10);
    ck_assert_uint_eq(T.acked, 10);
    ck_assert_int_eq(T.order_bad, 0);
    ck_assert_uint_eq(rn_hop_sender_unacked(T.snd), T.sent - T.acked);
}
END_TEST

static int defer(rx *r, const rn_hop_batch *b)
{
    (void)r;
    (void)b;
    return ACT_DEFER;
}

/* Acks come late, all at once: the sender keeps its window full meanwhile. */
START_TEST(pipelining)
{
    rn_hop_server *s = start_server(0, "127.0.0.1:0", 0);

    T.policy = defer;
    start_timer(ack_pending, 2, 2);
    start_sender(url_of(s, NULL, NULL), 16);
    run_and_close();
    assert_all_delivered();
    ck_assert_uint_gt(T.max_pend, 1);
    ck_assert_uint_le(T.max_pend, 16);
}
END_TEST

START_TEST(window_of_one)
{
    rn_hop_server *s = start_server(0, "127.0.0.1:0", 0);

    T.total = 100;
    T.policy = defer;
    start_timer(ack_pending, 1, 1);
    start_sender(url_of(s, NULL, NULL), 1);
    run_and_close();
    assert_all_delivered();
    ck_assert_uint_eq(T.max_pend, 1);
}
END_TEST

/* A receiver whose channel holds 3 batches: BUSY when full; a timer drains
 * it (acks) and resumes. Batches several to a read must stop at the BUSY
 * one and come again in order. */
static int channel_busy(rx *r, const rn_hop_batch *b)
{
    (void)r;
    (void)b;
    return T.npend >= 3 ? ACT_BUSY : ACT_DEFER;
}

static void drain_and_resume(void)
{
    ack_pending();
    if (T.rx[0].srv)
        rn_hop_server_resume(T.rx[0].srv);
}

START_TEST(busy_then_resume)
{
    rn_hop_server *s = start_server(0, "127.0.0.1:0", 0);

    T.policy = channel_busy;
    start_timer(drain_and_resume, 1, 1);
    start_sender(url_of(s, NULL, NULL), 8);
    run_and_close();
    assert_all_delivered();
    ck_assert_int_eq(T.rx[0].order_bad, 0);    /* taken 1, 2, 3, ... with no gap */
    ck_assert_uint_eq(T.rx[0].taken, NB);
    ck_assert_uint_eq(xcount("retries"), 0);
    ck_assert_uint_eq(scount(0, "batches"), NB);
    int offered_again = 0;
    for (int i = 1; i <= NB; i++)
        offered_again += T.seen[i] > 1;
    ck_assert_int_gt(offered_again, 0);         /* BUSY happened */
}
END_TEST

static int nack_some(rx *r, const rn_hop_batch *b)
{
    (void)r;
    if ((b->serial == 5 && T.seen[5] == 1) || (b->serial == 9 && T.seen[9] <= 2))
        return ACT_NACK;
    return ACT_ACK;
}

START_TEST(nack_resends)
{
    rn_hop_server *s = start_server(0, "127.0.0.1:0", 0);

    T.total = 40;
    T.policy = nack_some;
    start_sender(url_of(s, NULL, NULL), 4);
    run_and_close();
    assert_all_delivered();
    ck_assert_uint_eq(T.seen[5], 2);           /* the same serial, again */
    ck_assert_uint_eq(T.seen[9], 3);
    ck_assert_uint_eq(xcount("nacks"), 3);
    ck_assert_uint_eq(xcount("retries"), 3);
    ck_assert_uint_eq(T.status[RN_HOP_STORED], 40);
    ck_assert_ptr_nonnull(strstr(T.xwarns, "batch 5 refused: not now; sending it again"));
}
END_TEST

/* The receiver goes away while batches are in flight, with one of them
 * stored and not acknowledged; a new one comes up on the same port. */
static char restart_addr[64];

static void restart(void)
{
    start_server(1, restart_addr, 0);
    uv_timer_stop(&T.timer);
}

static int close_at_300(rx *r, const rn_hop_batch *b)
{
    if (r->idx == 0 && b->serial == 300) {
        if (!T.stored[300])
            T.stored[300] = 1;      /* stored; its ack never goes out */
        rn_hop_server_close(r->srv);
        start_timer(restart, 60, 0);
        return ACT_KEEP;
    }
    return ACT_ACK;
}

START_TEST(receiver_restart)
{
    rn_hop_server *s = start_server(0, "127.0.0.1:0", 0);

    snprintf(restart_addr, sizeof restart_addr, "%s", rn_hop_server_address(s));
    T.policy = close_at_300;
    start_sender(url_of(s, NULL, NULL), 8);
    run_and_close();
    assert_all_delivered();
    ck_assert_uint_eq(T.rx[0].last_serial, 300);
    ck_assert_uint_ge(T.seen[300], 2);         /* sent again with its serial */
    ck_assert_uint_ge(T.status[RN_HOP_DUPLICATE], 1);
    ck_assert_uint_eq(xcount("duplicates"), T.status[RN_HOP_DUPLICATE]);
    ck_assert_uint_ge(xcount("retries"), 1);
    ck_assert_uint_ge(xcount("reconnects"), 1);
    ck_assert_uint_gt(T.rx[1].taken, 0);
    /* One line when it goes, one when it is back, however many retries. */
    ck_assert_ptr_nonnull(strstr(T.xwarns, "; retrying"));
    ck_assert_ptr_nonnull(strstr(T.xwarns, ": connected"));
    ck_assert_int_le(T.nxwarn, 3);
}
END_TEST

static int close_first_at_200(rx *r, const rn_hop_batch *b)
{
    if (r->idx == 0 && b->serial == 200) {
        T.stored[200] = 1;
        rn_hop_server_close(r->srv);
        return ACT_KEEP;
    }
    return ACT_ACK;
}

START_TEST(failover)
{
    rn_hop_server *a = start_server(0, "127.0.0.1:0", 0);
    rn_hop_server *b = start_server(1, "127.0.0.1:0", 0);

    T.policy = close_first_at_200;
    start_sender(url_of(a, b, NULL), 8);
    run_and_close();
    assert_all_delivered();
    ck_assert_uint_eq(T.rx[0].last_serial, 200);
    ck_assert_uint_ge(T.rx[1].taken, NB - 200);
    ck_assert_uint_ge(T.seen[200], 2);
    ck_assert_int_eq(T.rx[0].order_bad, 0);
}
END_TEST

START_TEST(failover_skips_dead_first)
{
    rn_hop_server *b = start_server(1, "127.0.0.1:0", 0);
    char url[128];

    T.total = 100;
    /* Port 1 on loopback: nobody listens there. */
    snprintf(url, sizeof url, "tcp://127.0.0.1:1,%s", rn_hop_server_address(b));
    start_sender(url, 8);
    run_and_close();
    assert_all_delivered();
    ck_assert_uint_eq(T.rx[1].taken, 100);
    ck_assert_ptr_nonnull(strstr(T.xwarns, "hop 127.0.0.1:1: connect: connection refused; "
                                           "retrying"));
}
END_TEST

static uint64_t closed_at;

static int close_first_at_its_100th(rx *r, const rn_hop_batch *b)
{
    if (r->idx == 0 && r->taken == 99) {
        closed_at = b->serial;
        T.stored[b->serial] = 1;
        rn_hop_server_close(r->srv);
        return ACT_KEEP;
    }
    return ACT_ACK;
}

START_TEST(balance_one_fails)
{
    rn_hop_server *a = start_server(0, "127.0.0.1:0", 0);
    rn_hop_server *b = start_server(1, "127.0.0.1:0", 0);

    closed_at = 0;
    T.policy = close_first_at_its_100th;
    start_sender(url_of(a, b, "?mode=balance"), 4);
    run_and_close();
    assert_all_delivered();
    ck_assert_uint_ne(closed_at, 0);
    ck_assert_uint_ge(T.seen[closed_at], 2);
    ck_assert_uint_gt(T.rx[1].taken, NB / 2);
    ck_assert_uint_ge(xcount("reconnects"), 1);    /* the dead one is tried again */
    ck_assert_ptr_nonnull(strstr(T.xwarns, "the receiver closed the connection; retrying"));
}
END_TEST

/* A receiver that misbehaves, in a thread: the first connection gets an
 * ERROR after the first batch, the second an ACK for a batch never sent.
 * The URL lists it twice and a real receiver third. */
static struct {
    int lfd, port;
    int conns;
} F;

static int read_full(int fd, unsigned char *p, size_t n)
{
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void *fake_receiver(void *arg)
{
    static const unsigned char welcome[] = { 0, 0, 0, 6, 'W', 1, 0, 0, 0x10, 0 };
    static const unsigned char error[] = { 0, 0, 0, 8, 'E', 'g', 'o', ' ', 'a', 'w', 'a', 'y' };
    static const unsigned char bad_ack[] = { 0, 0, 0, 10, 'A', 0, 0, 0, 0, 0, 0, 0x03, 0xe7, 0 };
    unsigned char buf[65536];

    (void)arg;
    for (int i = 0; i < 2; i++) {
        int fd = accept(F.lfd, NULL, NULL);
        if (fd < 0)
            break;
        struct timeval tv = { .tv_sec = 10 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (read_full(fd, buf, 19) == 0 && buf[4] == 'H'
            && write(fd, welcome, sizeof welcome) == (ssize_t)sizeof welcome
            && read_full(fd, buf, 4) == 0) {
            size_t len = (size_t)buf[0] << 24 | (size_t)buf[1] << 16 | (size_t)buf[2] << 8
                       | buf[3];
            if (len <= sizeof buf && read_full(fd, buf, len) == 0 && buf[0] == 'B') {
                F.conns++;
                if (i == 0 && write(fd, error, sizeof error) < 0)
                    break;
                if (i == 1 && write(fd, bad_ack, sizeof bad_ack) < 0)
                    break;
            }
        }
        while (read(fd, buf, sizeof buf) > 0)     /* until the sender hangs up */
            ;
        close(fd);
    }
    close(F.lfd);
    return NULL;
}

START_TEST(sender_protocol_errors)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof sa;
    pthread_t th;
    char url[256];

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    F.lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(F.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(F.lfd, 4), 0);
    getsockname(F.lfd, (struct sockaddr *)&sa, &sl);
    F.port = ntohs(sa.sin_port);
    F.conns = 0;
    rn_hop_server *real = start_server(0, "127.0.0.1:0", 0);
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d,127.0.0.1:%d,%s", F.port, F.port,
             rn_hop_server_address(real));
    T.total = 100;
    ck_assert_int_eq(pthread_create(&th, NULL, fake_receiver, NULL), 0);
    start_sender(url, 4);
    run_and_close();
    pthread_join(th, NULL);
    assert_all_delivered();
    ck_assert_int_eq(F.conns, 2);
    ck_assert_ptr_nonnull(strstr(T.xwarns, "refused by the receiver: go away; retrying"));
    ck_assert_ptr_nonnull(strstr(T.xwarns, "protocol error: ACK for batch 999, which is not "
                                           "in flight here; retrying"));
    ck_assert_uint_ge(xcount("retries"), 1);
}
END_TEST

START_TEST(balance)
{
    rn_hop_server *a = start_server(0, "127.0.0.1:0", 0);
    rn_hop_server *b = start_server(1, "127.0.0.1:0", 0);

    start_sender(url_of(a, b, "?mode=balance"), 4);
    run_and_close();
    assert_all_delivered();
    ck_assert_uint_gt(T.rx[0].taken, NB / 10);
    ck_assert_uint_gt(T.rx[1].taken, NB / 10);
    ck_assert_uint_eq(T.rx[0].taken + T.rx[1].taken, NB);
}
END_TEST

/* A batch no receiver with this frame limit can take is reported dropped,
 * and the ones after it go on. */
START_TEST(too_big_for_receiver)
{
    rn_hop_server *s = start_server(0, "127.0.0.1:0", 4096);
    char err[RN_ERRLEN];
    rn_event ev;
    static char body[5000];

    T.total = 3;
    T.ahead = 1;
    start_sender(url_of(s, NULL, NULL), 0);     /* sends batch 1 */
    rn_buf b = { 0 };
    rn_event_clear(&ev);
    ev.body = (rn_str){ body, sizeof body };
    rn_encode_event(&b, RN_FMT_FRAMES, &ev);
    ck_assert_int_eq(rn_hop_sender_send(T.snd, &b, 1, (void *)(uintptr_t)2, err), 0);
    T.sent = 2;
    T.ahead = 3;
    T.stored[2] = 1;        /* never reaches the receiver */
    run_and_close();
    ck_assert_uint_eq(T.acked, 3);
    ck_assert_int_eq(T.order_bad, 0);
    ck_assert_uint_eq(T.status[RN_HOP_DROPPED], 1);
    ck_assert_uint_eq(xcount("dropped"), 1);
    ck_assert_ptr_nonnull(strstr(T.xwarns, "exceeds the receiver's frame limit of 4096"));
}
END_TEST

/* ---- sender and server on their own ------------------------------------------------- */

static void stop_now(void)
{
    finish();
}

/* Nobody listens: one warning however often it retries; close drops the
 * batches without reporting them. */
START_TEST(sender_unreachable_then_close)
{
    T.total = 3;
    start_sender("tcp://127.0.0.1:1", 0);
    start_timer(stop_now, 150, 0);
    ck_assert_uint_eq(rn_hop_sender_unacked(T.snd), 3);
    ck_assert_uint_gt(rn_hop_sender_unacked_bytes(T.snd), 0);
    run_and_close();
    ck_assert_uint_eq(T.acked, 0);
    ck_assert_int_eq(T.nxwarn, 1);
    ck_assert_str_eq(T.xwarns, "hop 127.0.0.1:1: connect: connection refused; retrying\n");
    ck_assert_uint_ge(xcount("reconnects"), 3);
}
END_TEST

START_TEST(sender_unknown_host)
{
    T.total = 1;
    start_sender("tcp://nonexistent.invalid:4141", 0);
    start_timer(stop_now, 150, 0);
    run_and_close();
    ck_assert_uint_eq(T.acked, 0);
    /* A resolver that cannot answer in time gives no line at all. */
    ck_assert_int_le(T.nxwarn, 1);
    if (T.nxwarn)
        ck_assert_msg(strncmp(T.xwarns, "hop nonexistent.invalid:4141: resolve "
                              "nonexistent.invalid: ", 59) == 0, "%s", T.xwarns);
}
END_TEST

/* Closed while the name is being resolved: the request is cancelled or
 * comes back to a dead connection; nothing leaks, nothing is left open. */
START_TEST(sender_close_while_resolving)
{
    T.total = 1;
    start_sender("tcp://localhost:1,nonexistent.invalid:2?mode=balance", 0);
    finish();
    run_and_close();
    ck_assert_uint_eq(T.acked, 0);
    ck_assert_int_eq(T.nxwarn, 0);
}
END_TEST

START_TEST(server_basics)
{
    char err[RN_ERRLEN];
    rn_hop_server *s = start_server(0, "127.0.0.1:0", 0);
    rn_hop_server_opts o = { .on_batch = on_batch, .data = &T.rx[1] };

    ck_assert_int_eq(rn_hop_server_listen(s, "127.0.0.1:0", err), -1);
    /* The same port twice. */
    rn_hop_server *t = rn_hop_server_new(&T.loop, &o, err);
    ck_assert_ptr_nonnull(t);
    T.rx[1].srv = t;
    ck_assert_int_eq(rn_hop_server_listen(t, "nohost", err), -1);
    ck_assert_str_eq(err, "nohost: missing port");
    ck_assert_int_eq(rn_hop_server_listen(t, rn_hop_server_address(s), err), -1);
    ck_assert_msg(strstr(err, "address already in use") != NULL, "%s", err);
    ck_assert_int_eq(rn_hop_server_listen(t, "127.0.0.1:0", err), -1);
    /* Acks for connections that do not exist are ignored. */
    rn_hop_server_ack(s, 12345, 1, RN_HOP_STORED);
    rn_hop_server_nack(s, 12345, 1, "x");
    rn_hop_server_resume(s);
    o.max_frame = 10;
    ck_assert_ptr_null(rn_hop_server_new(&T.loop, &o, err));
    o.on_batch = NULL;
    o.max_frame = 0;
    ck_assert_ptr_null(rn_hop_server_new(&T.loop, &o, err));
    finish();
    run_and_close();
}
END_TEST

/* ---- refused connections: a raw socket next to a well-behaved sender ------------------- */

typedef struct rawcase {
    const char *name;
    unsigned char in[256];
    size_t n;
    int half_close;             /* end the connection mid-frame */
    const char *reason;         /* in the ERROR frame and the warning */
} rawcase;

static struct {
    int port;
    rawcase rc;
    int connected, got_welcome, got_error;
    char error[RN_ERRLEN + 64];
} R;

static size_t put_hello(unsigned char *p, int version, const char *magic)
{
    static const unsigned char h[] = { 0, 0, 0, 15, 'H', 'R', 'N', 'H', 'O', 'P', 1,
                                       0, 0, 0, 0, 0, 0, 0, 42 };
    memcpy(p, h, sizeof h);
    p[10] = (unsigned char)version;
    memcpy(p + 5, magic, 5);
    return sizeof h;
}

/* A batch frame of one event, count as given. */
static size_t put_batch(unsigned char *p, uint32_t count)
{
    rn_buf b = { 0 };
    uint32_t n;

    make_batch(0, &b, &n);          /* one event */
    uint32_t len = (uint32_t)(13 + b.len);
    unsigned char h[17] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
                            (unsigned char)(len >> 8), (unsigned char)len, 'B',
                            0, 0, 0, 0, 0, 0, 0, 1,
                            (unsigned char)(count >> 24), (unsigned char)(count >> 16),
                            (unsigned char)(count >> 8), (unsigned char)count };
    memcpy(p, h, sizeof h);
    memcpy(p + sizeof h, b.p, b.len);
    size_t total = sizeof h + b.len;
    rn_buf_free(&b);
    return total;
}

static rawcase raw_case(int i)
{
    rawcase c = { 0 };
    size_t n;

    switch (i) {
    case 0:
        c.name = "garbage";
        memcpy(c.in, "GET / HTTP/1.0\r\n\r\n", 18);
        c.n = 18;
        c.reason = "byte offset 0: frame of 1195725856 bytes exceeds the limit of 33554432";
        break;
    case 1:
        c.name = "oversized length";
        n = put_hello(c.in, 1, "RNHOP");
        memcpy(c.in + n, "\x02\0\0\x01" "B", 5);
        c.n = n + 5;
        c.reason = "byte offset 19: frame of 33554433 bytes exceeds the limit of 33554432";
        break;
    case 2:
        c.name = "wrong version";
        c.n = put_hello(c.in, 2, "RNHOP");
        c.reason = "byte offset 10: protocol version 2 (this receiver speaks 1)";
        break;
    case 3:
        c.name = "batch before hello";
        c.n = put_batch(c.in, 1);
        c.reason = "byte offset 4: BATCH before HELLO";
        break;
    case 4:
        c.name = "truncated frame";
        n = put_hello(c.in, 1, "RNHOP");
        c.n = n + put_batch(c.in + n, 1) - 5;
        c.half_close = 1;
        c.reason = "byte offset 19: truncated frame";
        break;
    case 5:
        c.name = "count too high";
        n = put_hello(c.in, 1, "RNHOP");
        c.n = n + put_batch(c.in + n, 2);
        c.reason = "batch 1: event 2 of 2: missing";
        break;
    case 6:
        c.name = "wrong magic";
        c.n = put_hello(c.in, 1, "RNHOQ");
        c.reason = "byte offset 5: bad magic";
        break;
    case 7:
        c.name = "unknown type";
        n = put_hello(c.in, 1, "RNHOP");
        memcpy(c.in + n, "\0\0\0\x01Z", 5);
        c.n = n + 5;
        c.reason = "byte offset 23: unknown frame type 'Z'";
        break;
    default:
        c.name = "zero length";
        n = put_hello(c.in, 1, "RNHOP");
        memcpy(c.in + n, "\0\0\0\0", 4);
        c.n = n + 4;
        c.reason = "byte offset 19: frame of 0 bytes";
        break;
    }
    return c;
}

#define NRAW 9

/* The raw peer, in a thread with a blocking socket: send the bytes, read
 * every frame the receiver answers until it closes. */
static void *raw_peer(void *arg)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)R.port) };
    struct timeval tv = { .tv_sec = 10 };
    unsigned char buf[4096];
    size_t have = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)arg;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        R.connected = 1;
        if (write(fd, R.rc.in, R.rc.n) == (ssize_t)R.rc.n && R.rc.half_close)
            shutdown(fd, SHUT_WR);
        for (;;) {
            ssize_t k = read(fd, buf + have, sizeof buf - have);
            if (k <= 0)
                break;
            have += (size_t)k;
        }
        for (size_t off = 0; off + 5 <= have;) {
            size_t len = (size_t)buf[off] << 24 | (size_t)buf[off + 1] << 16
                       | (size_t)buf[off + 2] << 8 | buf[off + 3];
            if (len == 0 || off + 4 + len > have)
                break;
            if (buf[off + 4] == 'W')
                R.got_welcome = 1;
            if (buf[off + 4] == 'E') {
                R.got_error = 1;
                snprintf(R.error, sizeof R.error, "%.*s", (int)(len - 1),
                         (const char *)buf + off + 5);
            }
            off += 4 + len;
        }
    }
    close(fd);
    uv_async_send(&T.async);
    return NULL;
}

static void raw_done(uv_async_t *h)
{
    (void)h;
    T.raw_done = 1;
    maybe_finish();
}

START_TEST(refused_connection)
{
    rn_hop_server *s = start_server(0, "127.0.0.1:0", 0);
    pthread_t th;

    memset(&R, 0, sizeof R);
    R.rc = raw_case(_i);
    R.port = atoi(strrchr(rn_hop_server_address(s), ':') + 1);
    T.total = 200;
    uv_async_init(&T.loop, &T.async, raw_done);
    T.async_on = 1;
    start_sender(url_of(s, NULL, NULL), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, raw_peer, NULL), 0);
    run_and_close();
    pthread_join(th, NULL);

    ck_assert_msg(R.connected, "%s: could not connect", R.rc.name);
    ck_assert_msg(R.got_error, "%s: no ERROR frame", R.rc.name);
    ck_assert_msg(strstr(R.error, R.rc.reason) != NULL, "%s: ERROR \"%s\", want \"%s\"",
                  R.rc.name, R.error, R.rc.reason);
    ck_assert_msg(strstr(R.error, "byte offset ") != NULL, "%s: %s", R.rc.name, R.error);
    /* One warning: the peer, the offset, the reason. */
    ck_assert_int_eq(T.nswarn, 1);
    ck_assert_msg(strncmp(T.swarns, "hop 127.0.0.1:", 14) == 0, "%s", T.swarns);
    ck_assert_msg(strstr(T.swarns, R.rc.reason) != NULL, "%s: warning \"%s\"", R.rc.name,
                  T.swarns);
    ck_assert_uint_eq(scount(0, "refused"), 1);
    ck_assert_uint_eq(scount(0, "connections"), 2);
    /* The well-behaved sender next to it did not notice. */
    assert_all_delivered();
    ck_assert_int_eq(T.nxwarn, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hop");

    signal(SIGPIPE, SIG_IGN);   /* as every tool does (rn_sig_ignore_pipe) */

    TCase *addr = tcase_create("addresses");
    tcase_add_test(addr, url_good);
    tcase_add_test(addr, url_bad);
    tcase_add_test(addr, addr_parse);
    suite_add_tcase(s, addr);

    TCase *ev = tcase_create("events");
    tcase_add_test(ev, events_valid);
    tcase_add_test(ev, events_bad);
    tcase_add_test(ev, events_fuzz);
    tcase_set_timeout(ev, 60);
    suite_add_tcase(s, ev);

    TCase *del = tcase_create("delivery");
    tcase_add_checked_fixture(del, setup, teardown);
    tcase_set_timeout(del, 60);
    tcase_add_test(del, deliver_in_order);
    tcase_add_test(del, deliver_by_name);
    tcase_add_test(del, pipelining);
    tcase_add_test(del, window_of_one);
    tcase_add_test(del, busy_then_resume);
    tcase_add_test(del, nack_resends);
    tcase_add_test(del, too_big_for_receiver);
    tcase_add_test(del, large_batches);
    tcase_add_test(del, stop_input);
    suite_add_tcase(s, del);

    TCase *fail = tcase_create("failures");
    tcase_add_checked_fixture(fail, setup, teardown);
    tcase_set_timeout(fail, 60);
    tcase_add_test(fail, receiver_restart);
    tcase_add_test(fail, failover);
    tcase_add_test(fail, failover_skips_dead_first);
    tcase_add_test(fail, balance);
    tcase_add_test(fail, balance_one_fails);
    tcase_add_test(fail, sender_protocol_errors);
    tcase_add_test(fail, sender_unknown_host);
    tcase_add_test(fail, sender_close_while_resolving);
    tcase_add_test(fail, sender_unreachable_then_close);
    tcase_add_test(fail, server_basics);
    suite_add_tcase(s, fail);

    TCase *raw = tcase_create("refused");
    tcase_add_checked_fixture(raw, setup, teardown);
    tcase_set_timeout(raw, 60);
    tcase_add_loop_test(raw, refused_connection, 0, NRAW);
    suite_add_tcase(s, raw);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
