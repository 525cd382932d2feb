/* check_agent.c -- the specification of chanbuf's agent (lib/chan/agent.c),
 * as tests: routes and options and their errors; a hop source fed by an
 * rn_hop_sender on the test's loop, with acknowledgements, duplicates, a full
 * channel that blocks or drops, fsync, and the stop with what could not be
 * delivered; a standard input source (a pipe in place of fd 0) that ends the
 * agent at its end, stops it when it is corrupt, and a stdout sink that goes
 * away. Every test runs a private loop to completion. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "chan/chan.h"
#include "core/core.h"
#include "hop/hop.h"
#include "ckutil.h"

/* ---- one test's world: the agent, a sender feeding it, a server after it ---------- */

enum { DOWN_ACK, DOWN_HOLD };

static struct {
    uv_loop_t loop;
    rn_agent *a;
    rn_sink_spec sinks[4];
    size_t nsinks;
    char dir[256];              /* a file channel's */
    /* the sender feeding the agent */
    rn_hop_sender *snd;
    uint64_t sent, acked;
    unsigned status[3];
    /* the hop server a tcp sink sends to */
    rn_hop_server *down;
    int down_policy;
    char down_got[8192];
    uint64_t held_conn[64], held_serial[64];
    size_t nheld;
    int64_t started;
    int closed;
} T;

static char buf[65536];

static void setup(void)
{
    memset(&T, 0, sizeof T);
    ck_tmpdir_make("check_agent");
    ck_assert_int_eq(uv_loop_init(&T.loop), 0);
    T.started = rn_mono_ns();
}

static void teardown(void)
{
    rn_hop_sender_free(T.snd);
    if (T.down)
        rn_hop_server_free(T.down);
    ck_restore_fds();
    ck_tmpdir_remove();
}

static void add_sink(const char *fmt, const char *arg)
{
    char uri[1024], err[RN_ERRLEN];
    snprintf(uri, sizeof uri, fmt, arg);
    ck_assert_uint_lt(T.nsinks, 4);
    ck_assert_msg(rn_sink_parse(uri, &T.sinks[T.nsinks++], err) == 0, "%s: %s", uri, err);
}

/* A file sink NAME=file://DIR/NAME/p */
static void add_file_sink(const char *name)
{
    char arg[512];
    snprintf(arg, sizeof arg, "%s=file://%s/%s/p", name, ck_dir, name);
    add_sink("%s", arg);
}

static rn_agent_opts opts(void)
{
    rn_agent_opts o = { .batch = 100, .fmt = RN_FMT_LINES, .sinks = T.sinks,
                        .nsinks = T.nsinks, .drain_ns = 10000 * MS, .on_warn = ck_warn };
    return o;
}

static rn_agent *start_agent(rn_agent_opts o)
{
    char err[RN_ERRLEN];
    T.a = rn_agent_new(&T.loop, &o, err);
    ck_assert_msg(T.a != NULL, "%s", err);
    return T.a;
}

/* The agent's counters; after run, as they were when it ended. */
static char final_counters[512];

static const char *counters(void)
{
    static char c[512];
    if (!T.a)
        return final_counters;
    rn_agent_counters(T.a, c, sizeof c);
    return c;
}

/* What the file sink NAME delivered, all its files in order. */
static const char *file_sink_got(const char *name)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", ck_dir, name);
    ck_read_files(dir, "p.", "", buf, sizeof buf);
    return buf;
}

/* ---- the sender: batch i holds "b<i>.1" and "b<i>.2" -------------------------------- */

static void on_ack(void *data, void *cookie, int status)
{
    (void)data;
    (void)cookie;
    ck_assert(status >= 0 && status <= 2);
    T.acked++;
    T.status[status]++;
}

static void send_batches(int n)
{
    char err[RN_ERRLEN], url[300], body[32];
    if (!T.snd) {
        rn_hop_sender_opts o = { .backoff_min_ns = 5 * MS, .backoff_max_ns = 40 * MS,
                                 .on_ack = on_ack, .on_warn = ck_warn };
        snprintf(url, sizeof url, "tcp://%s", rn_agent_address(T.a));
        ck_assert_msg(rn_hop_url_parse(url, &o.url, err) == 0, "%s", err);
        T.snd = rn_hop_sender_new(&T.loop, &o, err);
        ck_assert_msg(T.snd != NULL, "%s", err);
    }
    for (int i = 0; i < n; i++) {
        rn_buf b = { 0 };
        int next = (int)++T.sent;
        snprintf(body, sizeof body, "b%d.1", next);
        ck_frame(&b, next, body, "batch", "x", NULL, NULL);
        snprintf(body, sizeof body, "b%d.2", next);
        ck_frame(&b, next, body, NULL, NULL, NULL, NULL);
        ck_assert_int_eq(rn_hop_sender_send(T.snd, &b, 2, NULL, err), 0);
    }
}

/* ---- the hop server after a tcp sink ----------------------------------------------- */

static int on_down_batch(void *data, const rn_hop_batch *b)
{
    (void)data;
    size_t n = strlen(T.down_got);
    ck_events_text(b->events, b->len, b->count, 0, T.down_got + n, sizeof T.down_got - n);
    if (T.down_policy == DOWN_HOLD) {
        ck_assert_uint_lt(T.nheld, 64);
        T.held_conn[T.nheld] = b->conn;
        T.held_serial[T.nheld++] = b->serial;
    } else {
        rn_hop_server_ack(T.down, b->conn, b->serial, RN_HOP_STORED);
    }
    return RN_HOP_TAKEN;
}

/* Add a tcp sink NAME=tcp://ADDR to a hop server on the test's loop. */
static void add_down_sink(const char *name, int policy)
{
    char err[RN_ERRLEN], arg[300];
    rn_hop_server_opts o = { .on_batch = on_down_batch, .on_warn = ck_warn };
    T.down = rn_hop_server_new(&T.loop, &o, err);
    ck_assert_msg(T.down != NULL, "%s", err);
    ck_assert_msg(rn_hop_server_listen(T.down, "127.0.0.1:0", err) == 0, "%s", err);
    T.down_policy = policy;
    snprintf(arg, sizeof arg, "%s=tcp://%s", name, rn_hop_server_address(T.down));
    add_sink("%s", arg);
}

static void release_down(void)
{
    for (size_t i = 0; i < T.nheld; i++)
        rn_hop_server_ack(T.down, T.held_conn[i], T.held_serial[i], RN_HOP_STORED);
    T.nheld = 0;
    T.down_policy = DOWN_ACK;
}

/* ---- running ---------------------------------------------------------------------- */

/* Close what the test opened on the loop; the agent closes its own. */
static void close_test_side(void)
{
    if (T.closed)
        return;
    T.closed = 1;
    if (T.snd)
        rn_hop_sender_close(T.snd);
    if (T.down)
        rn_hop_server_close(T.down);
    ck_script_close();
}

/* For a second run in the same test. */
static void reset_test_side(void)
{
    rn_hop_sender_free(T.snd);
    T.snd = NULL;
    if (T.down)
        rn_hop_server_free(T.down);
    T.down = NULL;
    T.closed = 0;
    ck_assert_int_eq(uv_loop_init(&T.loop), 0);
}

/* The script gave up: stop without waiting. */
static void force_stop(void)
{
    rn_agent_stop(T.a);
    rn_agent_stop(T.a);
    close_test_side();
}

/* Run the loop to its end with script called every 5 ms (NULL: none); the
 * agent's status. */
static int run(int (*script)(int step))
{
    char err[RN_ERRLEN];
    if (script)
        ck_script_start(&T.loop, script, force_stop);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&T.loop), 0);
    ck_assert_msg(!script || !ck_script_timed_out(), "timed out at step %d: %s; %s",
                  ck_script_step(), counters(), ck_warns());
    int status = rn_agent_status(T.a);
    rn_agent_counters(T.a, final_counters, sizeof final_counters);
    ck_assert_msg(rn_agent_free(T.a, err) == 0, "%s", err);
    T.a = NULL;
    return status;
}

/* Everything sent is acknowledged: stop (the agent drains its sinks). */
static int stop_when_acked(uint64_t n)
{
    if (T.acked < n)
        return 0;
    rn_agent_stop(T.a);
    close_test_side();
    return 1;
}

static int pending_is_zero(void) { return strstr(counters(), " pending=0 ") != NULL; }

/* ---- routes -------------------------------------------------------------------------- */

START_TEST(route_parse)
{
    rn_sink_spec sp[3];
    rn_route r;
    char *keep = NULL, err[RN_ERRLEN];

    ck_assert_int_eq(rn_sink_parse("err=stdout", &sp[0], err), 0);
    ck_assert_int_eq(rn_sink_parse("tcp://127.0.0.1:5", &sp[1], err), 0);
    ck_assert_int_eq(rn_sink_parse("a.b=file:///d/p", &sp[2], err), 0);
    ck_assert_int_eq(rn_route_parse("level=error:err", sp, 3, &r, &keep, err), 0);
    ck_assert_str_eq(r.header, "level");
    ck_assert_str_eq(r.value, "error");
    ck_assert_str_eq(r.sink, "err");
    free(keep);
    /* A value may hold ':'; a sink's name (the URI) too. */
    ck_assert_int_eq(rn_route_parse("k=a:b:tcp://127.0.0.1:5", sp, 3, &r, &keep, err), 0);
    ck_assert_str_eq(r.header, "k");
    ck_assert_str_eq(r.value, "a:b");
    ck_assert_str_eq(r.sink, "tcp://127.0.0.1:5");
    free(keep);
    ck_assert_int_eq(rn_route_parse("k=:a.b", sp, 3, &r, &keep, err), 0);
    ck_assert_str_eq(r.value, "");
    ck_assert_str_eq(r.sink, "a.b");
    free(keep);

    static const struct { const char *arg, *err; } bad[] = {
        { "level", "--route level: not HEADER=VALUE:SINK" },
        { "=x:err", "--route =x:err: not HEADER=VALUE:SINK" },
        { "level=error", "--route level=error: no sink of that name (name a sink with "
                         "--sink NAME=URI)" },
        { "level=error:nosuch", "--route level=error:nosuch: no sink of that name (name a "
                                "sink with --sink NAME=URI)" },
        { "level=error:er", "--route level=error:er: no sink of that name" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        keep = NULL;
        ck_assert_msg(rn_route_parse(bad[i].arg, sp, 3, &r, &keep, err) == -1, "%s parsed",
                      bad[i].arg);
        ck_assert_msg(strncmp(err, bad[i].err, strlen(bad[i].err)) == 0,
                      "%s: got \"%s\", want \"%s\"", bad[i].arg, err, bad[i].err);
        ck_assert_ptr_null(keep);
    }
}
END_TEST

/* ---- options and their errors ----------------------------------------------------------- */

/* rn_agent_new fails with want; nothing is left on the loop. */
static void new_fails(rn_agent_opts o, const char *want)
{
    char err[RN_ERRLEN];
    err[0] = '\0';
    ck_assert_ptr_null(rn_agent_new(&T.loop, &o, err));
    ck_assert_msg(strstr(err, want) != NULL, "got \"%s\", want \"%s\"", err, want);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&T.loop), 0);
    ck_assert_int_eq(uv_loop_init(&T.loop), 0);
}

START_TEST(new_errors)
{
    char want[600];
    rn_agent_opts o;

    add_file_sink("f");
    o = opts();
    o.nsinks = 0;
    new_fails(o, "between 1 and 32 sinks");

    add_sink("%s", "f=stdout");
    new_fails(opts(), "two sinks named 'f' (name them: --sink NAME=URI)");
    T.nsinks = 1;
    add_sink("%s", "a=stdout");
    add_sink("%s", "b=stdout");
    new_fails(opts(), "stdout named as a sink twice");

    T.nsinks = 1;
    add_file_sink("g");
    rn_route routes[] = { { "type", "x", "f" }, { "level", "y", "g" } };
    o = opts();
    o.routes = routes;
    o.nroutes = 2;
    new_fails(o, "--route: every route must use the same header ('type' and 'level')");

    /* Failures after the sinks started: they are stopped and closed again. */
    o = opts();
    o.listen = "nohost";
    new_fails(o, "nohost: missing port");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
    o.listen = addr;
    new_fails(o, "address already in use");
    close(fd);

    T.nsinks = 0;
    add_sink("f=file://%s/no/such/p", ck_dir);
    o = opts();
    o.listen = "127.0.0.1:0";
    snprintf(want, sizeof want, "sink f: %s/no/such: No such file or directory", ck_dir);
    new_fails(o, want);
    ck_assert_int_eq(ck_nwarns(), 0);
}
END_TEST

/* A file channel is one agent's: a second one on the same directory fails. */
START_TEST(file_channel_in_use)
{
    char want[600];
    rn_agent_opts o;

    add_file_sink("f");
    snprintf(T.dir, sizeof T.dir, "%s/chan", ck_dir);
    o = opts();
    o.listen = "127.0.0.1:0";
    o.dir = T.dir;
    o.fsync_always = 1;
    start_agent(o);
    char err[RN_ERRLEN];
    ck_assert_ptr_null(rn_agent_new(&T.loop, &o, err));
    snprintf(want, sizeof want, "%s: in use by another process", T.dir);
    ck_assert_str_eq(err, want);
    rn_agent_stop(T.a);
    ck_assert_int_eq(run(NULL), 0);
}
END_TEST

/* ---- the hop source ----------------------------------------------------------------------- */

static int script_send5(int step)
{
    if (step == 0) {
        send_batches(5);
        return 1;
    }
    return stop_when_acked(5);
}

/* Batches from a hop, into a memory channel (case 0) or a file channel,
 * acknowledged after an fsync that covers them (case 1) or at once with a
 * periodic fsync (case 2); delivered in order every time. */
START_TEST(hop_to_file)
{
    rn_agent_opts o;

    add_file_sink("f");
    snprintf(T.dir, sizeof T.dir, "%s/chan", ck_dir);
    o = opts();
    o.listen = "127.0.0.1:0";
    o.dir = _i == 0 ? NULL : T.dir;
    o.fsync_always = _i == 1;
    o.fsync_ns = 10 * MS;
    start_agent(o);
    const char *addr = rn_agent_address(T.a);
    ck_assert_ptr_nonnull(addr);
    ck_assert_msg(strncmp(addr, "127.0.0.1:", 10) == 0 && atoi(addr + 10) > 0, "%s", addr);
    ck_assert_int_eq(run(script_send5), 0);
    ck_assert_uint_eq(T.status[RN_HOP_STORED], 5);
    ck_assert_str_eq(file_sink_got("f"), "b1.1\nb1.2\nb2.1\nb2.2\nb3.1\nb3.2\nb4.1\nb4.2\n"
                                         "b5.1\nb5.2\n");
    ck_assert_str_eq(counters(), "in=10 out.f=10 pending=0 dropped=0 retries=0 duplicates=0");
    ck_assert_int_eq(ck_nwarns(), 0);
}
END_TEST

/* A raw sender, in a thread: the same batch twice (as after a lost ack),
 * then the next. */
static struct {
    int port;
    uv_async_t done;
    int statuses[3];
    int nstatus;
    char trouble[128];
} R;

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

/* A frame into p (its type first); its length, or -1. */
static long read_frame(int fd, unsigned char *p, size_t cap)
{
    unsigned char h[4];
    if (read_full(fd, h, 4) < 0 || rn_be32(h) > cap || read_full(fd, p, rn_be32(h)) < 0)
        return -1;
    return (long)rn_be32(h);
}

static int send_raw_batch(int fd, uint64_t serial)
{
    rn_buf ev = { 0 };
    char a[32], b[32];
    snprintf(a, sizeof a, "s%llu.a", (unsigned long long)serial);
    snprintf(b, sizeof b, "s%llu.b", (unsigned long long)serial);
    ck_frame(&ev, 1, a, NULL, NULL, NULL, NULL);
    ck_frame(&ev, 2, b, NULL, NULL, NULL, NULL);
    unsigned char h[17];
    rn_put_be32(h, (uint32_t)(13 + ev.len));
    h[4] = 'B';
    rn_put_be64(h + 5, serial);
    rn_put_be32(h + 13, 2);
    int r = rn_write_all(fd, h, sizeof h) == 0 && rn_write_all(fd, ev.p, ev.len) == 0 ? 0 : -1;
    rn_buf_free(&ev);
    return r;
}

static void *raw_sender(void *arg)
{
    static const unsigned char hello[] = { 0, 0, 0, 15, 'H', 'R', 'N', 'H', 'O', 'P', 1,
                                           0, 0, 0, 0, 0, 0, 0, 77 };
    static const uint64_t serials[] = { 1, 1, 2 };
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)R.port) };
    struct timeval tv = { .tv_sec = 10 };
    unsigned char f[256];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)arg;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0
        || rn_write_all(fd, hello, sizeof hello) < 0 || read_frame(fd, f, sizeof f) != 6
        || f[0] != 'W') {
        snprintf(R.trouble, sizeof R.trouble, "no WELCOME");
        goto out;
    }
    for (int i = 0; i < 3; i++) {
        if (send_raw_batch(fd, serials[i]) < 0 || read_frame(fd, f, sizeof f) != 10
            || f[0] != 'A' || rn_be64(f + 1) != serials[i]) {
            snprintf(R.trouble, sizeof R.trouble, "batch %d: no ACK (got '%c')", i, f[0]);
            goto out;
        }
        R.statuses[R.nstatus++] = f[9];
    }
out:
    close(fd);
    uv_async_send(&R.done);
    return NULL;
}

static void raw_done(uv_async_t *h)
{
    rn_agent_stop(T.a);
    uv_close((uv_handle_t *)h, NULL);
}

START_TEST(hop_duplicate)
{
    rn_agent_opts o;
    pthread_t th;

    add_file_sink("f");
    o = opts();
    o.listen = "127.0.0.1:0";
    start_agent(o);
    memset(&R, 0, sizeof R);
    R.port = atoi(strrchr(rn_agent_address(T.a), ':') + 1);
    uv_async_init(&T.loop, &R.done, raw_done);
    ck_assert_int_eq(pthread_create(&th, NULL, raw_sender, NULL), 0);
    ck_assert_int_eq(run(NULL), 0);
    pthread_join(th, NULL);
    ck_assert_msg(R.trouble[0] == '\0', "%s", R.trouble);
    ck_assert_int_eq(R.nstatus, 3);
    ck_assert_int_eq(R.statuses[0], RN_HOP_STORED);
    ck_assert_int_eq(R.statuses[1], RN_HOP_DUPLICATE);
    ck_assert_int_eq(R.statuses[2], RN_HOP_STORED);
    ck_assert_str_eq(file_sink_got("f"), "s1.a\ns1.b\ns2.a\ns2.b\n");
    ck_assert_str_eq(counters(), "in=4 out.f=4 pending=0 dropped=0 retries=0 duplicates=2");
}
END_TEST

/* capacity 4, a tcp sink whose receiver holds its acks: two batches of ten
 * fill the channel. Blocking (case 0): the rest waits at the sender, and
 * comes in once the receiver acks. Dropping (case 1): the rest is
 * acknowledged "dropped" and counted. */
static const struct full_case {
    uint64_t acked_when_full;
    unsigned dropped;                           /* batches */
    const char *counters_full, *got, *counters_end;
} full_cases[] = {
    { 2, 0, "in=4 out.hop=0 pending=4 dropped=0 retries=0 duplicates=0",
      "b1.1|b1.2|b2.1|b2.2|b3.1|b3.2|b4.1|b4.2|b5.1|b5.2|b6.1|b6.2|b7.1|b7.2|b8.1|b8.2|"
      "b9.1|b9.2|b10.1|b10.2|",
      "in=20 out.hop=20 pending=0 dropped=0 retries=0 duplicates=0" },
    { 10, 8, "in=4 out.hop=0 pending=4 dropped=16 retries=0 duplicates=0",
      "b1.1|b1.2|b2.1|b2.2|",
      "in=4 out.hop=4 pending=0 dropped=16 retries=0 duplicates=0" },
};
static const struct full_case *full;

static int script_full(int step)
{
    switch (step) {
    case 0:
        send_batches(10);
        return 1;
    case 1:
        return T.acked >= full->acked_when_full
            && strcmp(T.down_got, "b1.1|b1.2|b2.1|b2.2|") == 0;
    case 2:
        if (ck_step_ms() < 200)
            return 0;
        ck_assert_uint_eq(T.acked, full->acked_when_full);
        ck_assert_uint_eq(T.status[RN_HOP_STORED], 2);
        ck_assert_uint_eq(T.status[RN_HOP_DROPPED], full->dropped);
        ck_assert_str_eq(T.down_got, "b1.1|b1.2|b2.1|b2.2|");
        ck_assert_str_eq(counters(), full->counters_full);
        release_down();
        return 1;
    case 3:
        return T.acked == 10 && pending_is_zero();
    default:
        return stop_when_acked(10);
    }
}

START_TEST(full_channel)
{
    rn_agent_opts o;

    full = &full_cases[_i];
    add_down_sink("hop", DOWN_HOLD);
    o = opts();
    o.listen = "127.0.0.1:0";
    o.capacity = 4;
    o.drop = _i == 1;
    start_agent(o);
    ck_assert_int_eq(run(script_full), 0);
    ck_assert_uint_eq(T.status[RN_HOP_STORED], 10 - full->dropped);
    ck_assert_str_eq(T.down_got, full->got);
    ck_assert_str_eq(counters(), full->counters_end);
}
END_TEST

/* Stopped while a sink cannot deliver: the wait is bounded by drain_ns (case
 * 0), or ended by a second stop (case 1); a memory channel says what it lost,
 * and the status is 1. */
static int stop_case;

static int script_stop_after_2(int step)
{
    switch (step) {
    case 0:
        send_batches(2);
        return 1;
    case 1:
        if (T.acked < 2 || strcmp(T.down_got, "b1.1|b1.2|b2.1|b2.2|") != 0)
            return 0;
        rn_agent_stop(T.a);
        if (stop_case == 1)
            rn_agent_stop(T.a);
        close_test_side();
        return 1;
    }
    return 0;
}

START_TEST(stop_with_undelivered)
{
    rn_agent_opts o;

    add_down_sink("hop", DOWN_HOLD);
    o = opts();
    o.listen = "127.0.0.1:0";
    o.drain_ns = _i == 0 ? 100 * MS : 60000 * MS;
    stop_case = _i;
    start_agent(o);
    ck_assert_int_eq(run(script_stop_after_2), 1);
    ck_assert_int_lt(rn_mono_ns() - T.started, 5000 * MS);
    ck_assert_msg(ck_warned("4 events in the memory channel were not delivered\n"), "%s",
                  ck_warns());
    ck_assert_str_eq(counters(), "in=4 out.hop=0 pending=4 dropped=0 retries=0 duplicates=0");
}
END_TEST

/* A file channel keeps what its sinks could not deliver: the next run's
 * sink of the same name gets it. */
START_TEST(file_channel_keeps_for_next_run)
{
    rn_agent_opts o;
    char want[600];

    snprintf(T.dir, sizeof T.dir, "%s/chan", ck_dir);
    add_down_sink("out", DOWN_HOLD);
    o = opts();
    o.listen = "127.0.0.1:0";
    o.dir = T.dir;
    o.fsync_always = 1;
    o.drain_ns = 100 * MS;
    stop_case = 0;
    start_agent(o);
    ck_assert_int_eq(run(script_stop_after_2), 0);
    snprintf(want, sizeof want, "4 events stay in %s for the next run\n", T.dir);
    ck_assert_msg(ck_warned(want), "%s", ck_warns());

    /* The next run: standard input that ends at once, and a file sink "out". */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_redirect(STDIN_FILENO, p[0]);
    close(p[1]);
    ck_warns_reset();
    reset_test_side();
    T.nsinks = 0;
    add_file_sink("out");
    o = opts();
    o.dir = T.dir;
    start_agent(o);
    ck_assert_ptr_null(rn_agent_address(T.a));
    ck_assert_int_eq(run(NULL), 0);
    ck_assert_str_eq(file_sink_got("out"), "b1.1\nb1.2\nb2.1\nb2.2\n");
    ck_assert_str_eq(counters(), "in=0 out.out=4 pending=0 dropped=0 retries=0 duplicates=0");
    snprintf(want, sizeof want, "%s: 4 events pending from the last run\n", T.dir);
    ck_assert_str_eq(ck_warns(), want);
}
END_TEST

/* ---- standard input ------------------------------------------------------------------------- */

/* fd 0 is a pipe holding s; closed after it unless keep_open. */
static int stdin_with(const char *s, size_t n, int keep_open)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(rn_write_all(p[1], s, n), 0);
    ck_redirect(STDIN_FILENO, p[0]);
    if (!keep_open) {
        close(p[1]);
        return -1;
    }
    return p[1];
}

/* The end of input stops the agent once everything is delivered. */
START_TEST(stdin_to_end)
{
    add_file_sink("f");
    stdin_with("one\ntwo\nthree", 13, 0);
    start_agent(opts());
    ck_assert_ptr_null(rn_agent_address(T.a));
    ck_assert_int_eq(run(NULL), 0);
    ck_assert_str_eq(file_sink_got("f"), "one\ntwo\nthree\n");
    ck_assert_str_eq(counters(), "in=3 out.f=3 pending=0 dropped=0 retries=0 duplicates=0");
    ck_assert_int_eq(ck_nwarns(), 0);
}
END_TEST

/* json in, routed by a header: each sink gets its events, the default one
 * the rest. */
START_TEST(stdin_routes)
{
    static const char in[] =
        "{\"ts\":1,\"headers\":{\"level\":\"error\"},\"body\":\"e1\"}\n"
        "{\"ts\":2,\"headers\":{\"level\":\"info\"},\"body\":\"i1\"}\n"
        "{\"ts\":3,\"headers\":{},\"body\":\"plain\"}\n"
        "{\"ts\":4,\"headers\":{\"level\":\"debug\"},\"body\":\"d1\"}\n"
        "{\"ts\":5,\"headers\":{\"level\":\"error\"},\"body\":\"e2\"}\n";
    rn_route routes[2];
    char *keep[2], err[RN_ERRLEN];

    add_file_sink("err");
    add_file_sink("info");
    add_file_sink("rest");
    ck_assert_int_eq(rn_route_parse("level=error:err", T.sinks, 3, &routes[0], &keep[0], err), 0);
    ck_assert_int_eq(rn_route_parse("level=info:info", T.sinks, 3, &routes[1], &keep[1], err), 0);
    stdin_with(in, sizeof in - 1, 0);
    rn_agent_opts o = opts();
    o.routes = routes;
    o.nroutes = 2;
    start_agent(o);
    ck_assert_int_eq(run(NULL), 0);
    ck_assert_str_eq(file_sink_got("err"), "e1\ne2\n");
    ck_assert_str_eq(file_sink_got("info"), "i1\n");
    ck_assert_str_eq(file_sink_got("rest"), "plain\nd1\n");
    ck_assert_str_eq(counters(), "in=5 out.err=2 out.info=1 out.rest=2 pending=0 dropped=0 "
                                 "retries=0 duplicates=0");
    free(keep[0]);
    free(keep[1]);
}
END_TEST

/* Corrupt input: what came before it is delivered, the error is said with
 * its byte offset, and the status is 1. */
START_TEST(stdin_corrupt)
{
    rn_buf b = { 0 };

    add_file_sink("f");
    rn_buf_append(&b, RN_FRAMES_HEADER, RN_FRAMES_HEADER_LEN);
    ck_frame(&b, 1, "good", NULL, NULL, NULL, NULL);
    size_t at = b.len;
    rn_buf_append(&b, "\x7f\xff\xff\xff", 4);
    stdin_with(b.p, b.len, 0);
    start_agent(opts());
    ck_assert_int_eq(run(NULL), 1);
    ck_assert_str_eq(file_sink_got("f"), "good\n");
    snprintf(buf, sizeof buf, "stdin: byte offset %zu: frame of 2147483647 bytes exceeds "
             "the maximum of 16777216\n", at);
    ck_assert_str_eq(ck_warns(), buf);
    ck_assert_str_eq(counters(), "in=1 out.f=1 pending=0 dropped=0 retries=0 duplicates=0");
    rn_buf_free(&b);
}
END_TEST

/* Dropping from standard input: capacity 2, one event a batch, a sink that
 * cannot deliver until the receiver acks: three of five are dropped. */
static int script_release_after_drops(int step)
{
    if (step == 0)
        return strcmp(T.down_got, "l1|l2|") == 0 && strstr(counters(), " dropped=3 ") != NULL;
    if (step == 1) {
        if (ck_step_ms() < 200)
            return 0;
        ck_assert_str_eq(T.down_got, "l1|l2|");
        ck_assert_str_eq(counters(), "in=2 out.hop=0 pending=2 dropped=3 retries=0 "
                                     "duplicates=0");
        release_down();
        return 1;
    }
    if (!pending_is_zero())
        return 0;
    close_test_side();
    return 1;
}

START_TEST(stdin_drops)
{
    add_down_sink("hop", DOWN_HOLD);
    stdin_with("l1\nl2\nl3\nl4\nl5\n", 15, 0);
    rn_agent_opts o = opts();
    o.capacity = 2;
    o.batch = 1;
    o.drop = 1;
    start_agent(o);
    ck_assert_int_eq(run(script_release_after_drops), 0);
    ck_assert_str_eq(counters(), "in=2 out.hop=2 pending=0 dropped=3 retries=0 duplicates=0");
}
END_TEST

/* A sink that stops for good stops the agent: quietly when stdout was
 * closed (status 0), said and status 1 for another write error. The input
 * is still open: the stop ends its reading too. */
START_TEST(stdout_gone)
{
    int p[2];

    add_sink("%s", "stdout");
    if (_i == 0) {
        ck_assert_int_eq(pipe(p), 0);
        close(p[0]);
        ck_redirect(STDOUT_FILENO, p[1]);
    } else {
        ck_put_file(ck_path("ro"), "", 0);
        ck_redirect(STDOUT_FILENO, open(ck_path("ro"), O_RDONLY));
    }
    int w = stdin_with("a\nb\n", 4, 1);
    start_agent(opts());
    ck_assert_int_eq(run(NULL), _i == 0 ? 0 : 1);
    close(w);
    if (_i == 0)
        ck_assert_str_eq(ck_warns(), "2 events in the memory channel were not delivered\n");
    else
        ck_assert_str_eq(ck_warns(), "sink stdout: stdout: write: Bad file descriptor\n"
                                     "2 events in the memory channel were not delivered\n");
    ck_assert_str_eq(counters(), "in=2 out.stdout=0 pending=2 dropped=0 retries=0 "
                                 "duplicates=0");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("agent");

    signal(SIGPIPE, SIG_IGN);   /* as every tool does (rn_sig_ignore_pipe) */

    TCase *tc = tcase_create("options");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, route_parse);
    tcase_add_test(tc, new_errors);
    tcase_add_test(tc, file_channel_in_use);
    suite_add_tcase(s, tc);

    tc = tcase_create("hop");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    /* Case 2, a file channel with a periodic fsync and a listener, once
     * passed memmove a NULL array when no acknowledgement waited for a sync:
     * the sanitizer build stopped there. */
    tcase_add_loop_test(tc, hop_to_file, 0, 3);
    tcase_add_test(tc, hop_duplicate);
    tcase_add_loop_test(tc, full_channel, 0, 2);
    tcase_add_loop_test(tc, stop_with_undelivered, 0, 2);
    tcase_add_test(tc, file_channel_keeps_for_next_run);
    suite_add_tcase(s, tc);

    tc = tcase_create("stdin");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, stdin_to_end);
    tcase_add_test(tc, stdin_routes);
    tcase_add_test(tc, stdin_corrupt);
    tcase_add_test(tc, stdin_drops);
    tcase_add_loop_test(tc, stdout_gone, 0, 2);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
