/* check_redis.c -- the specification of lib/results/redis.c (the Redis
 * writer), as tests against a real redis-server: one per test, on a free
 * port of 127.0.0.1, in a temporary directory, killed at teardown. The
 * writer runs on a private loop; what it wrote is read back with hiredis'
 * sync API. A test that cannot start redis-server fails. */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "results/results.h"
#include "core/core.h"

#define MS 1000000LL
#define SEC 1000000000LL
#define T0 (1795419600LL * SEC)         /* 2026-11-23T07:40:00Z */
#define KEY0 "hot:2026-11-23T07:40:00Z"

/* ---- the server -------------------------------------------------------------- */

static char dir[128];
static int port;
static pid_t server = -1;
static const char *server_pass;         /* --requirepass, or NULL */

static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* A sync connection to the test's server (authenticated, database db), or
 * NULL when it does not answer. */
static redisContext *db_open(int db)
{
    struct timeval tv = { 1, 0 };
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        redisFree(c);
        return NULL;
    }
    redisReply *r = server_pass ? redisCommand(c, "AUTH %s", server_pass) : NULL;
    freeReplyObject(r);
    r = redisCommand(c, "SELECT %d", db);
    int ok = r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static void server_start(void)
{
    char p[16], log[160];
    snprintf(p, sizeof p, "%d", port);
    snprintf(log, sizeof log, "%s/redis.log", dir);
    server = fork();
    ck_assert_int_ge(server, 0);
    if (server == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);   /* a failed test leaves no server behind */
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        const char *argv[16] = { "redis-server", "--port", p, "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", dir };
        if (server_pass) {
            argv[11] = "--requirepass";
            argv[12] = server_pass;
        }
        execvp(argv[0], (char **)argv);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        int status;
        ck_assert_msg(waitpid(server, &status, WNOHANG) == 0,
                      "cannot start redis-server (see %s)", log);
        redisContext *c = db_open(0);
        if (c) {
            redisFree(c);
            return;
        }
        usleep(10000);
    }
    ck_abort_msg("redis-server does not answer on port %d (see %s)", port, log);
}

static void server_kill(void)
{
    if (server > 0) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
    }
    server = -1;
}

/* A command's reply as text: strings and statuses as they are, integers in
 * decimal, nil "(nil)", errors "ERR: ...", arrays their elements joined
 * with '|'. */
static const char *q(int db, const char *fmt, ...)
{
    static char out[4096];
    redisContext *c = db_open(db);
    ck_assert_msg(c != NULL, "redis-server does not answer");
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    ck_assert_ptr_nonnull(r);
    out[0] = '\0';
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 1;
    for (size_t i = 0; i < n; i++) {
        redisReply *e = r->type == REDIS_REPLY_ARRAY ? r->element[i] : r;
        size_t len = strlen(out);
        if (i)
            out[len++] = '|';
        if (e->type == REDIS_REPLY_INTEGER)
            snprintf(out + len, sizeof out - len, "%lld", e->integer);
        else if (e->type == REDIS_REPLY_NIL)
            snprintf(out + len, sizeof out - len, "(nil)");
        else if (e->type == REDIS_REPLY_ERROR)
            snprintf(out + len, sizeof out - len, "ERR: %s", e->str);
        else
            snprintf(out + len, sizeof out - len, "%s", e->str);
    }
    freeReplyObject(r);
    redisFree(c);
    return out;
}

static long long qint(int db, const char *fmt, const char *arg)
{
    return atoll(q(db, fmt, arg));
}

/* ---- the writer on the test's loop ---------------------------------------------- */

static uv_loop_t loop;
static rn_redisw *W;
static char warns[8192];
static int nwarns, closed;

static void on_warn(void *data, const char *msg)
{
    (void)data;
    size_t len = strlen(warns);
    snprintf(warns + len, sizeof warns - len, "%s\n", msg);
    nwarns++;
}

static void on_closed(void *data)
{
    (void)data;
    closed++;
}

static void setup(void)
{
    strcpy(dir, "/tmp/check_redis.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    port = free_port();
    server_pass = NULL;
    warns[0] = '\0';
    nwarns = closed = 0;
    W = NULL;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
    server_kill();
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

static rn_redisw *writer(const char *url, int64_t ttl, size_t max_pending)
{
    char err[RN_ERRLEN] = "";
    rn_redisw_opts o = { .url = url, .prefix = "hot", .ttl_ns = ttl,
                         .max_pending = max_pending, .on_warn = on_warn };
    rn_redisw *w = rn_redisw_new(&loop, &o, err);
    ck_assert_msg(w != NULL, "rn_redisw_new: %s", err);
    return w;
}

static const char *url(const char *auth, const char *db)
{
    static char u[256];
    snprintf(u, sizeof u, "redis://%s127.0.0.1:%d%s", auth, port, db);
    return u;
}

static uint64_t counter(const char *name) { return rn_counter_get(rn_redisw_counters(W), name); }

static void tick(uv_timer_t *t) { (void)t; }

/* Run the loop until cond() holds or ms pass; returns cond(). */
static int run_until(int (*cond)(void), int ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    int64_t deadline = rn_mono_ns() + ms * MS;
    int ok;
    while (!(ok = cond ? cond() : 0) && rn_mono_ns() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static void run_for(int ms) { run_until(NULL, ms); }

static int nothing_pending(void) { return rn_redisw_pending(W) == 0; }
static int is_closed(void) { return closed > 0; }

/* Close the writer (flushing for at most wait_ms), and the loop: nothing may
 * be left open. */
static void close_all(int wait_ms)
{
    rn_redisw_close(W, wait_ms * MS, on_closed);
    ck_assert_msg(run_until(is_closed, wait_ms + 2000), "on_closed was not called");
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    rn_redisw_free(W);
    W = NULL;
}

/* Window i: 10 s long, starting i * 10 s after T0, latest; its top is
 * "k<i>" with value i + 1 and "all" with 100. */
static void put_nth(int i)
{
    char k[16];
    int n = snprintf(k, sizeof k, "k%d", i);
    rn_topn_entry e[2] = { { { "all", 3 }, { 0, 100, 0, 0 } },
                           { { k, (size_t)n }, { 0, i + 1, 0, 0 } } };
    rn_topn_window win = { .start = T0 + i * 10 * SEC, .end = T0 + (i + 1) * 10 * SEC,
                           .nkeys = 2, .n = 2, .top = e, .latest = 1 };
    char err[RN_ERRLEN];
    ck_assert_int_eq(rn_redisw_put(W, &win, err), 0);
}

static const char *nth_key(int i)
{
    static char k[64];
    snprintf(k, sizeof k, "hot:2026-11-23T07:%02d:%02dZ", 40 + i / 6, i % 6 * 10);
    return k;
}

/* ---- the URL ---------------------------------------------------------------------- */

START_TEST(url_parts)
{
    rn_redis_url u;
    char err[RN_ERRLEN];

    ck_assert_int_eq(rn_redis_url_parse("redis://127.0.0.1:6380", &u, err), 0);
    ck_assert_str_eq(u.host, "127.0.0.1");
    ck_assert_int_eq(u.port, 6380);
    ck_assert_int_eq(u.has_password, 0);
    ck_assert_int_eq(u.db, -1);

    ck_assert_int_eq(rn_redis_url_parse("redis://:s3cret@localhost:6379/2", &u, err), 0);
    ck_assert_str_eq(u.host, "localhost");
    ck_assert_int_eq(u.has_password, 1);
    ck_assert_str_eq(u.user, "");
    ck_assert_str_eq(u.password, "s3cret");
    ck_assert_int_eq(u.db, 2);

    /* %-escapes; the port defaults to 6379; a user name */
    ck_assert_int_eq(rn_redis_url_parse("redis://app:p%40ss%2Fw%20x@db.example.com/0", &u, err), 0);
    ck_assert_str_eq(u.user, "app");
    ck_assert_str_eq(u.password, "p@ss/w x");
    ck_assert_str_eq(u.host, "db.example.com");
    ck_assert_int_eq(u.port, 6379);
    ck_assert_int_eq(u.db, 0);

    /* the host begins after the last '@' */
    ck_assert_int_eq(rn_redis_url_parse("redis://:a@b@h:1", &u, err), 0);
    ck_assert_str_eq(u.password, "a@b");
    ck_assert_str_eq(u.host, "h");

    ck_assert_int_eq(rn_redis_url_parse("redis://[::1]:7000/15", &u, err), 0);
    ck_assert_str_eq(u.host, "::1");
    ck_assert_int_eq(u.port, 7000);
    ck_assert_int_eq(u.db, 15);

    ck_assert_int_eq(rn_redis_url_parse("redis://h:1/", &u, err), 0);
    ck_assert_int_eq(u.db, -1);
}
END_TEST

static const struct {
    const char *url, *says;
} bad_urls[] = {
    { "http://h:1", "must start with redis://" },
    { "h:6379", "must start with redis://" },
    { "rediss://h:1", "TLS" },
    { "redis://", "no host" },
    { "redis://:pw@:6379", "no host" },
    { "redis://h:0", "bad port '0'" },
    { "redis://h:65536", "bad port '65536'" },
    { "redis://h:abc", "bad port 'abc'" },
    { "redis://h:", "bad port ''" },
    { "redis://h:1/x", "bad database number 'x'" },
    { "redis://h:1/-1", "bad database number '-1'" },
    { "redis://h:1/2147483648", "bad database number '2147483648'" },
    { "redis://Secret@h:1", "a password goes after a colon" },
    { "redis://:@h", "empty password" },
    { "redis://:Secret%zz@h", "bad %-escape in the password" },
    { "redis://:Secret%00@h", "bad %-escape in the password" },
    { "redis://[::1:1", "without ']'" },
    { "redis://[nothost]:1", "is not an IPv6 address" },
    { "redis://h h:1", "unexpected ' ' after the host" },
};

START_TEST(url_errors)
{
    rn_redis_url u;
    char err[RN_ERRLEN] = "";
    const char *s = bad_urls[_i].url;

    ck_assert_int_eq(rn_redis_url_parse(s, &u, err), RN_ERR);
    ck_assert_msg(strstr(err, bad_urls[_i].says), "%s: said '%s'", s, err);
    ck_assert_msg(strncmp(err, "redis URL: ", 11) == 0, "%s: said '%s'", s, err);
    ck_assert_msg(!strstr(err, "Secret"), "%s: the error repeats the password: %s", s, err);

    /* The writer refuses it too, and says the same. */
    char err2[RN_ERRLEN] = "";
    rn_redisw_opts o = { .url = s };
    ck_assert_ptr_null(rn_redisw_new(&loop, &o, err2));
    ck_assert_str_eq(err2, err);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(bad_options)
{
    char err[RN_ERRLEN] = "";
    rn_redisw_opts o = { .url = "redis://127.0.0.1:1", .prefix = "" };
    ck_assert_ptr_null(rn_redisw_new(&loop, &o, err));
    ck_assert_str_eq(err, "redis: empty key prefix");
    o = (rn_redisw_opts){ .url = "redis://127.0.0.1:1", .ttl_ns = -1 };
    ck_assert_ptr_null(rn_redisw_new(&loop, &o, err));
    ck_assert_str_eq(err, "redis: negative TTL");
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- the keys ------------------------------------------------------------------------ */

START_TEST(window_layout)
{
    server_start();
    W = writer(url("", ""), 3600 * SEC, 0);
    char name[64];
    snprintf(name, sizeof name, "redis 127.0.0.1:%d", port);
    ck_assert_str_eq(rn_redisw_name(W), name);

    /* Keys of any script and bytes; a fractional value. */
    rn_topn_entry e[3] = { { { "java", 4 }, { 0, 5, 0, 0 } },
                           { { "搜索", 6 }, { 0, 3, 0, 0 } },
                           { { "a b", 3 }, { 1, 0, 2.5, 0 } } };
    rn_topn_window win = { .start = T0, .end = T0 + 30 * SEC, .nkeys = 7, .n = 3, .top = e,
                           .latest = 1 };
    char err[RN_ERRLEN];
    ck_assert_int_eq(rn_redisw_put(W, &win, err), 0);
    ck_assert(run_until(nothing_pending, 3000));

    ck_assert_str_eq(q(0, "ZREVRANGE %s 0 -1 WITHSCORES", KEY0), "java|5|搜索|3|a b|2.5");
    ck_assert_str_eq(q(0, "GET hot:latest"), KEY0);
    ck_assert_str_eq(q(0, "ZRANGE hot:windows 0 -1 WITHSCORES"), KEY0 "|1795419630000");
    long long ttl = qint(0, "TTL %s", KEY0);
    ck_assert_msg(ttl > 3590 && ttl <= 3600, "TTL %lld", ttl);
    ttl = qint(0, "TTL %s", "hot:windows");
    ck_assert_msg(ttl > 3590 && ttl <= 3600, "TTL %lld", ttl);
    ck_assert_str_eq(q(0, "TTL hot:latest"), "-1");
    ck_assert_int_eq(qint(0, "DBSIZE", NULL), 3);

    /* The next window (sliding by 10 s): in the index too, and latest. */
    e[0].value.i = 8;
    win.start = T0 + 10 * SEC;
    win.end = T0 + 40 * SEC;
    win.n = 1;
    ck_assert_int_eq(rn_redisw_put(W, &win, err), 0);
    /* The first again, late rows, not latest: latest stays. */
    win.start = T0;
    win.end = T0 + 30 * SEC;
    win.latest = 0;
    ck_assert_int_eq(rn_redisw_put(W, &win, err), 0);
    ck_assert(run_until(nothing_pending, 3000));
    ck_assert_str_eq(q(0, "GET hot:latest"), "hot:2026-11-23T07:40:10Z");
    ck_assert_str_eq(q(0, "ZRANGE hot:windows 0 -1 WITHSCORES"),
                     KEY0 "|1795419630000|hot:2026-11-23T07:40:10Z|1795419640000");
    ck_assert_str_eq(q(0, "ZREVRANGE hot:2026-11-23T07:40:10Z 0 -1 WITHSCORES"), "java|8");

    /* Two hours on, with a TTL of one: the index forgets the old windows. */
    win.start = T0 + 7200 * SEC;
    win.end = T0 + 7230 * SEC;
    win.latest = 1;
    ck_assert_int_eq(rn_redisw_put(W, &win, err), 0);
    ck_assert(run_until(nothing_pending, 3000));
    ck_assert_str_eq(q(0, "ZRANGE hot:windows 0 -1"), "hot:2026-11-23T09:40:00Z");
    ck_assert_str_eq(q(0, "GET hot:latest"), "hot:2026-11-23T09:40:00Z");

    ck_assert_int_eq(counter("written"), 4);
    ck_assert_int_eq(counter("dropped"), 0);
    ck_assert_int_eq(counter("pending"), 0);
    ck_assert_int_eq(nwarns, 0);
    close_all(1000);
}
END_TEST

START_TEST(no_ttl)
{
    server_start();
    W = writer(url("", ""), 0, 0);
    put_nth(0);
    put_nth(500);       /* far later: without a TTL nothing is trimmed */
    ck_assert(run_until(nothing_pending, 3000));
    ck_assert_str_eq(q(0, "TTL %s", KEY0), "-1");
    ck_assert_str_eq(q(0, "TTL hot:windows"), "-1");
    ck_assert_int_eq(qint(0, "ZCARD hot:windows", NULL), 2);
    close_all(1000);
}
END_TEST

START_TEST(resent_window_replaces_its_set)
{
    server_start();
    W = writer(url("", ""), 0, 0);
    rn_topn_entry a[3] = { { { "x", 1 }, { 0, 3, 0, 0 } },
                           { { "y", 1 }, { 0, 2, 0, 0 } },
                           { { "z", 1 }, { 0, 1, 0, 0 } } };
    rn_topn_window win = { .start = T0, .end = T0 + 30 * SEC, .n = 3, .top = a, .latest = 1 };
    char err[RN_ERRLEN];
    ck_assert_int_eq(rn_redisw_put(W, &win, err), 0);
    ck_assert(run_until(nothing_pending, 3000));
    ck_assert_str_eq(q(0, "ZREVRANGE %s 0 -1 WITHSCORES", KEY0), "x|3|y|2|z|1");

    rn_topn_entry b[2] = { { { "w", 1 }, { 0, 9, 0, 0 } }, { { "x", 1 }, { 0, 4, 0, 0 } } };
    win.top = b;
    win.n = 2;
    win.reprint = 1;
    ck_assert_int_eq(rn_redisw_put(W, &win, err), 0);
    ck_assert(run_until(nothing_pending, 3000));
    ck_assert_str_eq(q(0, "ZREVRANGE %s 0 -1 WITHSCORES", KEY0), "w|9|x|4");
    ck_assert_int_eq(qint(0, "ZCARD hot:windows", NULL), 1);
    ck_assert_int_eq(counter("written"), 2);
    close_all(1000);
}
END_TEST

/* What Redis ran, as MONITOR saw it: every window is one transaction, so a
 * reader sees the old window or the new one, never half of one. */
START_TEST(one_transaction_per_window)
{
    server_start();
    W = writer(url("", ""), 3600 * SEC, 0);
    put_nth(0);
    ck_assert(run_until(nothing_pending, 3000));    /* connected, AUTH and SELECT done */

    redisContext *mon = db_open(0);
    ck_assert_ptr_nonnull(mon);
    redisReply *r = redisCommand(mon, "MONITOR");
    ck_assert_msg(r && r->type == REDIS_REPLY_STATUS, "MONITOR refused");
    freeReplyObject(r);
    put_nth(1);
    put_nth(2);
    ck_assert(run_until(nothing_pending, 3000));

    /* Each line: TIME [DB ADDR] "COMMAND" "ARG" ...; the command names, in
     * order, up to the second EXEC. */
    char names[1024] = "";
    struct timeval tv = { 2, 0 };
    redisSetTimeout(mon, tv);
    for (int execs = 0; execs < 2;) {
        void *v;
        ck_assert_msg(redisGetReply(mon, &v) == REDIS_OK, "MONITOR: %s; saw %s", mon->errstr,
                      names);
        r = v;
        const char *c = strchr(r->str, '"');
        ck_assert_ptr_nonnull(c);
        size_t n = strcspn(c + 1, "\"");
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, "%.*s ", (int)n, c + 1);
        execs += n == 4 && memcmp(c + 1, "exec", 4) == 0;
        execs += n == 4 && memcmp(c + 1, "EXEC", 4) == 0;
        freeReplyObject(r);
    }
    redisFree(mon);
    for (char *c = names; *c; c++)
        *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
    ck_assert_str_eq(names, "MULTI DEL ZADD EXPIRE SET ZADD ZREMRANGEBYSCORE EXPIRE EXEC "
                            "MULTI DEL ZADD EXPIRE SET ZADD ZREMRANGEBYSCORE EXPIRE EXEC ");
    close_all(1000);
}
END_TEST

/* ---- outages ----------------------------------------------------------------------- */

START_TEST(redis_restarted_mid_stream)
{
    server_start();
    W = writer(url("", ""), 0, 0);
    for (int i = 0; i < 3; i++)
        put_nth(i);
    ck_assert(run_until(nothing_pending, 3000));
    ck_assert_int_eq(nwarns, 0);

    /* Window 3 is handed to hiredis and the server dies before it is
     * written; 4..7 come while it is away (the writer retries meanwhile). */
    put_nth(3);
    server_kill();
    for (int i = 4; i < 8; i++) {
        run_for(250);
        put_nth(i);
    }
    ck_assert_int_eq(nwarns, 1);
    ck_assert_msg(strstr(warns, "redis 127.0.0.1:") && strstr(warns, ": unreachable (")
                  && strstr(warns, "); keeping up to 1024 windows\n"), "%s", warns);
    ck_assert_int_eq(rn_redisw_pending(W), 5);

    /* A new server (empty: no persistence) on the same port gets them all. */
    server_start();
    ck_assert(run_until(nothing_pending, 6000));
    for (int i = 3; i < 8; i++)
        ck_assert_msg(qint(0, "EXISTS %s", nth_key(i)) == 1, "window %d is missing", i);
    ck_assert_int_eq(qint(0, "ZCARD hot:windows", NULL), 5);
    ck_assert_str_eq(q(0, "GET hot:latest"), nth_key(7));
    ck_assert_str_eq(q(0, "ZREVRANGE %s 0 -1 WITHSCORES", nth_key(6)), "all|100|k6|7");

    ck_assert_int_eq(counter("written"), 8);
    ck_assert_int_eq(counter("dropped"), 0);
    ck_assert_int_eq(counter("reconnects"), 1);
    ck_assert_int_eq(nwarns, 2);
    ck_assert_msg(strstr(warns, ": reachable again after ")
                  && strstr(warns, "s: 5 windows written, 0 dropped\n"), "%s", warns);
    close_all(1000);
}
END_TEST

START_TEST(bound_drops_the_oldest)
{
    /* No server yet: every window waits, at most 3. */
    W = writer(url("", ""), 0, 3);
    for (int i = 0; i < 10; i++) {
        put_nth(i);
        run_for(20);
    }
    ck_assert_int_eq(counter("dropped"), 7);
    ck_assert_int_eq(counter("pending"), 3);
    ck_assert_int_eq(rn_redisw_pending(W), 3);

    /* Window 8 again, while its first copy waits: it takes that copy's
     * place, and nothing more is dropped. */
    rn_topn_entry e[1] = { { { "late", 4 }, { 0, 42, 0, 0 } } };
    rn_topn_window win = { .start = T0 + 80 * SEC, .end = T0 + 90 * SEC, .n = 1, .top = e,
                           .reprint = 1 };
    char err[RN_ERRLEN];
    ck_assert_int_eq(rn_redisw_put(W, &win, err), 0);
    ck_assert_int_eq(counter("dropped"), 7);
    ck_assert_int_eq(counter("pending"), 3);
    ck_assert_int_eq(nwarns, 1);
    ck_assert_msg(strstr(warns, "keeping up to 3 windows"), "%s", warns);

    server_start();
    ck_assert(run_until(nothing_pending, 6000));
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(qint(0, "EXISTS %s", nth_key(i)), i >= 7);
    ck_assert_str_eq(q(0, "ZREVRANGE %s 0 -1 WITHSCORES", nth_key(8)), "late|42");
    ck_assert_str_eq(q(0, "GET hot:latest"), nth_key(9));
    ck_assert_int_eq(counter("written"), 3);
    ck_assert_int_eq(counter("dropped"), 7);
    ck_assert_int_eq(nwarns, 2);
    ck_assert_msg(strstr(warns, "s: 3 windows written, 7 dropped\n"), "%s", warns);
    close_all(1000);
}
END_TEST

START_TEST(one_warning_per_outage)
{
    /* Down for 1.5 s: several attempts (100, 200, 400, 800 ms apart), one
     * warning. */
    W = writer(url("", ""), 0, 0);
    run_for(1500);
    ck_assert_int_eq(nwarns, 1);
    ck_assert_msg(strstr(warns, "Connection refused"), "%s", warns);

    /* Up: said once, nothing waiting. */
    server_start();
    put_nth(0);
    ck_assert(run_until(nothing_pending, 6000));
    run_for(100);
    ck_assert_int_eq(nwarns, 2);
    ck_assert_msg(strstr(warns, "1 window written, 0 dropped"), "%s", warns);

    /* A second outage is a second pair. */
    server_kill();
    run_for(1000);
    ck_assert_int_eq(nwarns, 3);
    server_start();
    put_nth(1);
    ck_assert(run_until(nothing_pending, 6000));
    run_for(100);
    ck_assert_int_eq(nwarns, 4);
    ck_assert_int_eq(counter("reconnects"), 2);
    close_all(1000);
}
END_TEST

START_TEST(stalled_redis_is_an_outage)
{
    server_start();
    W = writer(url("", ""), 0, 0);
    put_nth(0);
    ck_assert(run_until(nothing_pending, 3000));

    /* A server that takes the connection and never answers: after 5 s
     * without a reply the connection counts as lost. */
    kill(server, SIGSTOP);
    put_nth(1);
    run_for(5600);
    ck_assert_int_eq(nwarns, 1);
    ck_assert_msg(strstr(warns, ": unreachable (no answer in 5 s)"), "%s", warns);
    ck_assert_int_eq(rn_redisw_pending(W), 1);

    kill(server, SIGCONT);
    ck_assert(run_until(nothing_pending, 8000));
    ck_assert_int_eq(qint(0, "EXISTS %s", nth_key(1)), 1);
    ck_assert_str_eq(q(0, "GET hot:latest"), nth_key(1));
    close_all(1000);
}
END_TEST

/* ---- AUTH and SELECT ---------------------------------------------------------------- */

START_TEST(password_and_database)
{
    server_pass = "pa ss@/w";
    server_start();
    W = writer(url(":pa%20ss%40%2Fw@", "/3"), 0, 0);
    put_nth(0);
    ck_assert(run_until(nothing_pending, 3000));
    ck_assert_int_eq(qint(3, "EXISTS %s", nth_key(0)), 1);
    ck_assert_int_eq(qint(0, "EXISTS %s", nth_key(0)), 0);
    ck_assert_int_eq(qint(0, "DBSIZE", NULL), 0);
    ck_assert_int_eq(nwarns, 0);
    close_all(1000);
}
END_TEST

START_TEST(wrong_password)
{
    server_pass = "right";
    server_start();
    W = writer(url(":wrong@", ""), 0, 0);
    put_nth(0);
    run_for(1200);
    ck_assert_int_eq(counter("written"), 0);
    ck_assert_int_eq(counter("pending"), 1);
    ck_assert_int_eq(nwarns, 1);
    ck_assert_msg(strstr(warns, ": unreachable (AUTH: "), "%s", warns);
    ck_assert_msg(!strstr(warns, "wrong"), "the warning repeats the password: %s", warns);
    ck_assert_int_eq(qint(0, "DBSIZE", NULL), 0);
    close_all(0);
    ck_assert_int_eq(nwarns, 2);
    ck_assert_msg(strstr(warns, ": closing with 1 window not written\n"), "%s", warns);
}
END_TEST

START_TEST(database_out_of_range)
{
    server_start();
    W = writer(url("", "/99"), 0, 0);
    put_nth(0);
    run_for(500);
    ck_assert_int_eq(counter("written"), 0);
    ck_assert_int_eq(nwarns, 1);
    ck_assert_msg(strstr(warns, ": unreachable (SELECT: ERR DB index is out of range)"), "%s",
                  warns);
    close_all(0);
}
END_TEST

/* ---- close -------------------------------------------------------------------------- */

START_TEST(close_flushes)
{
    server_start();
    W = writer(url("", ""), 0, 0);
    for (int i = 0; i < 50; i++)
        put_nth(i);
    close_all(3000);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(qint(0, "ZCARD hot:windows", NULL), 50);
    ck_assert_str_eq(q(0, "GET hot:latest"), nth_key(49));
    ck_assert_int_eq(nwarns, 0);
}
END_TEST

START_TEST(close_bounded_when_down)
{
    W = writer(url("", ""), 0, 0);
    put_nth(0);
    put_nth(1);
    int64_t t = rn_mono_ns();
    rn_redisw_close(W, 300 * MS, on_closed);
    char err[RN_ERRLEN];
    rn_topn_window win = { .start = T0, .end = T0 + SEC };
    ck_assert_int_eq(rn_redisw_put(W, &win, err), RN_ERR);
    ck_assert(run_until(is_closed, 3000));
    t = rn_mono_ns() - t;
    ck_assert_msg(t >= 290 * MS && t < 1500 * MS, "closed after %lld ms", (long long)(t / MS));
    ck_assert_int_eq(rn_counter_get(rn_redisw_counters(W), "dropped"), 2);
    ck_assert_int_eq(rn_redisw_pending(W), 0);
    ck_assert_msg(strstr(warns, ": closing with 2 windows not written\n"), "%s", warns);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    rn_redisw_free(W);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("redis");

    signal(SIGPIPE, SIG_IGN);   /* as every tool does (rn_sig_ignore_pipe) */

    TCase *tc = tcase_create("url");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, url_parts);
    tcase_add_loop_test(tc, url_errors, 0, (int)(sizeof bad_urls / sizeof bad_urls[0]));
    tcase_add_test(tc, bad_options);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, window_layout);
    tcase_add_test(tc, no_ttl);
    tcase_add_test(tc, resent_window_replaces_its_set);
    tcase_add_test(tc, one_transaction_per_window);
    suite_add_tcase(s, tc);

    tc = tcase_create("outages");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, redis_restarted_mid_stream);
    tcase_add_test(tc, bound_drops_the_oldest);
    tcase_add_test(tc, one_warning_per_outage);
    tcase_add_test(tc, stalled_redis_is_an_outage);
    suite_add_tcase(s, tc);

    tc = tcase_create("auth");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, password_and_database);
    tcase_add_test(tc, wrong_password);
    tcase_add_test(tc, database_out_of_range);
    suite_add_tcase(s, tc);

    tc = tcase_create("close");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, close_flushes);
    tcase_add_test(tc, close_bounded_when_down);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
