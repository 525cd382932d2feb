/* check_sink.c -- the specification of chanbuf's sinks (lib/chan/sink.c,
 * sink_tcp.c, sink_kafka.c), as tests: parsing --sink and its errors; the
 * file sink's complete and hidden files, rolling by size and by age, the
 * completion of a file a killed run left, routes; stdout and how it fails;
 * the tcp sink against an rn_hop_server on a private loop; and the kafka sink
 * against an rn_broker running on a loop of its own thread. Each sink takes
 * from a memory channel that the test fills. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "broker/broker.h"
#include "chan/chan.h"
#include "core/core.h"
#include "hop/hop.h"
#include "ckutil.h"

/* ---- the channel and the sinks under test --------------------------------------- */

static rn_chan *chan;
static rn_sink *sinks[2];
static size_t nsinks;
static int nfail, fail_status;      /* from on_fail, in the sink's thread */
static char buf[65536];

static void on_fail(void *data, rn_sink *s, int status)
{
    (void)data;
    (void)s;
    __atomic_store_n(&fail_status, status, __ATOMIC_RELEASE);
    __atomic_add_fetch(&nfail, 1, __ATOMIC_RELEASE);
}

static void setup(void)
{
    ck_tmpdir_make("check_sink");
    chan = NULL;
    sinks[0] = sinks[1] = NULL;
    nsinks = 0;
    nfail = fail_status = 0;
}

static void stop_sinks(void)
{
    if (chan)
        rn_chan_shutdown(chan);
    for (size_t i = 0; i < nsinks; i++)
        if (sinks[i])
            rn_sink_stop(sinks[i]);
    for (size_t i = 0; i < nsinks; i++)
        rn_sink_join(sinks[i]);
}

static void teardown(void)
{
    char err[RN_ERRLEN];
    stop_sinks();
    for (size_t i = 0; i < nsinks; i++)
        rn_sink_free(sinks[i]);
    if (chan)
        ck_assert_msg(rn_chan_close(chan, err) == 0, "%s", err);
    ck_restore_fds();
    ck_tmpdir_remove();
}

/* A memory channel with one cursor per sink name. */
static void open_chan(size_t n, const char *const *names)
{
    char err[RN_ERRLEN];
    rn_chan_opts o = { .nsinks = n, .sink_names = names, .on_warn = ck_warn };
    chan = rn_chan_open(&o, err);
    ck_assert_msg(chan != NULL, "%s", err);
    nsinks = n;
}

static void put(rn_buf *b, uint32_t count)
{
    char err[RN_ERRLEN];
    ck_assert_msg(rn_chan_put(chan, b->p, b->len, count, 0, 0, 0, NULL, err) == 0, "%s", err);
    b->len = 0;
}

/* A record of one event. */
static void put1(const char *body, const char *k, const char *v)
{
    rn_buf b = { 0 };
    ck_frame(&b, 1000, body, k, v, NULL, NULL);
    put(&b, 1);
    rn_buf_free(&b);
}

static uint64_t pending(void)
{
    rn_chan_stats st;
    rn_chan_get_stats(chan, &st);
    return st.pending;
}

static rn_sink *start_with(size_t i, const char *arg, rn_format fmt, uint32_t batch,
                           const rn_sink_filter *f)
{
    rn_sink_spec spec;
    char err[RN_ERRLEN];
    ck_assert_msg(rn_sink_parse(arg, &spec, err) == 0, "%s: %s", arg, err);
    rn_sink_opts o = { .chan = chan, .index = i, .batch = batch, .fmt = fmt,
                       .on_warn = ck_warn, .on_fail = on_fail };
    if (f)
        o.filter = *f;
    sinks[i] = rn_sink_start(&spec, &o, err);
    ck_assert_msg(sinks[i] != NULL, "%s: %s", arg, err);
    return sinks[i];
}

static rn_sink *start(const char *arg, rn_format fmt)
{
    return start_with(0, arg, fmt, 100, NULL);
}

typedef struct want_out {
    size_t i;
    uint64_t n;
} want_out;

static int out_reached(void *arg)
{
    want_out *w = arg;
    return rn_sink_out(sinks[w->i]) >= w->n;
}

static void wait_out(size_t i, uint64_t n)
{
    want_out w = { i, n };
    ck_assert_msg(ck_wait_for(out_reached, &w, 5000), "sink %zu delivered %llu of %llu; %s",
                  i, (unsigned long long)rn_sink_out(sinks[i]), (unsigned long long)n,
                  ck_warns());
    ck_assert_uint_eq(rn_sink_out(sinks[i]), n);
}

static int nothing_pending(void *arg)
{
    (void)arg;
    return pending() == 0;
}

static int failed_once(void *arg)
{
    (void)arg;
    return __atomic_load_n(&nfail, __ATOMIC_ACQUIRE) > 0;
}

/* Names in dir: how many complete files PREFIX.<13 digits> and how many
 * hidden .PREFIX.<13 digits>.tmp; anything else fails. */
static void count_files(const char *dir, const char *prefix, int *complete, int *hidden)
{
    char names[4096], *save = NULL;
    size_t pl = strlen(prefix);
    *complete = *hidden = 0;
    ck_list_dir(dir, names, sizeof names);
    for (char *n = strtok_r(names, " ", &save); n; n = strtok_r(NULL, " ", &save)) {
        int tmp = n[0] == '.';
        const char *d = n + tmp + pl + 1;
        ck_assert_msg(strncmp(n + tmp, prefix, pl) == 0 && n[tmp + pl] == '.'
                      && strspn(d, "0123456789") == 13
                      && strcmp(d + 13, tmp ? ".tmp" : "") == 0, "unexpected file '%s'", n);
        if (tmp)
            ++*hidden;
        else
            ++*complete;
    }
}

/* ---- parsing ---------------------------------------------------------------------- */

START_TEST(parse_stdout_and_names)
{
    rn_sink_spec sp;
    char err[RN_ERRLEN];

    ck_assert_int_eq(rn_sink_parse("stdout", &sp, err), 0);
    ck_assert_int_eq(sp.kind, RN_SINK_STDOUT);
    ck_assert_str_eq(sp.name, "stdout");
    ck_assert_str_eq(sp.uri, "stdout");
    ck_assert_int_eq(rn_sink_parse("out-1.a_b=stdout", &sp, err), 0);
    ck_assert_str_eq(sp.name, "out-1.a_b");
    ck_assert_str_eq(sp.uri, "stdout");
    /* An '=' after the scheme's ':' belongs to the URI. */
    ck_assert_int_eq(rn_sink_parse("file:///d/p?roll=1KiB", &sp, err), 0);
    ck_assert_str_eq(sp.name, "file:///d/p?roll=1KiB");
}
END_TEST

START_TEST(parse_file)
{
    rn_sink_spec sp;
    char err[RN_ERRLEN];

    ck_assert_int_eq(rn_sink_parse("logs=file:///var/log/chan/part", &sp, err), 0);
    ck_assert_int_eq(sp.kind, RN_SINK_FILE);
    ck_assert_str_eq(sp.name, "logs");
    ck_assert_str_eq(sp.dir, "/var/log/chan");
    ck_assert_str_eq(sp.prefix, "part");
    ck_assert_uint_eq(sp.roll_bytes, 0);
    ck_assert_int_eq(sp.roll_ns, 0);
    ck_assert_int_eq(rn_sink_parse("file:///p", &sp, err), 0);
    ck_assert_str_eq(sp.dir, "/");
    ck_assert_str_eq(sp.prefix, "p");
    /* roll= is a size when its unit ends in B, else a duration: "10m" is ten
     * minutes. */
    ck_assert_int_eq(rn_sink_parse("file:///d/p?roll=64KiB", &sp, err), 0);
    ck_assert_uint_eq(sp.roll_bytes, 65536);
    ck_assert_int_eq(sp.roll_ns, 0);
    ck_assert_str_eq(sp.note, "");
    ck_assert_int_eq(rn_sink_parse("file:///d/p?roll=1MB", &sp, err), 0);
    ck_assert_uint_eq(sp.roll_bytes, 1 << 20);
    ck_assert_int_eq(rn_sink_parse("file:///d/p?roll=10min", &sp, err), 0);
    ck_assert_uint_eq(sp.roll_bytes, 0);
    ck_assert_int_eq(sp.roll_ns, 600000 * MS);
    ck_assert_str_eq(sp.note, "");
    /* "10m" was 10 MiB: minutes now, and the note says so. */
    ck_assert_int_eq(rn_sink_parse("file:///d/p?roll=10m", &sp, err), 0);
    ck_assert_uint_eq(sp.roll_bytes, 0);
    ck_assert_int_eq(sp.roll_ns, 600000 * MS);
    ck_assert_msg(strstr(sp.note, "roll=10m is 10 minutes now") && strstr(sp.note, "roll=10MiB"),
                  "%s", sp.note);
    /* The old spellings of sizes that read as no duration: sizes still,
     * with a note naming the new spelling. */
    ck_assert_int_eq(rn_sink_parse("file:///d/p?roll=64k", &sp, err), 0);
    ck_assert_uint_eq(sp.roll_bytes, 65536);
    ck_assert_int_eq(sp.roll_ns, 0);
    ck_assert_msg(strstr(sp.note, "write roll=64KiB"), "%s", sp.note);
    ck_assert_int_eq(rn_sink_parse("file:///d/p?roll=4096", &sp, err), 0);
    ck_assert_uint_eq(sp.roll_bytes, 4096);
    ck_assert_msg(strstr(sp.note, "write roll=4096B"), "%s", sp.note);
    ck_assert_int_eq(rn_sink_parse("file:///d/p?roll=30s", &sp, err), 0);
    ck_assert_uint_eq(sp.roll_bytes, 0);
    ck_assert_int_eq(sp.roll_ns, 30000 * MS);
    ck_assert_int_eq(rn_sink_parse("file:///d/p?roll=250ms", &sp, err), 0);
    ck_assert_int_eq(sp.roll_ns, 250 * MS);
    ck_assert_str_eq(sp.note, "");
    ck_assert_int_eq(rn_sink_parse("file:///d/p?roll=1h&roll=1GiB", &sp, err), 0);
    ck_assert_int_eq(sp.roll_ns, 3600000 * MS);
    ck_assert_uint_eq(sp.roll_bytes, 1 << 30);
    ck_assert_int_eq(rn_sink_parse("file:///d/p?roll=10x", &sp, err), RN_ERR);
    ck_assert_msg(strstr(err, "neither a size (64KiB"), "%s", err);
    ck_assert_int_eq(rn_sink_parse("file:///d/p?roll=1ms", &sp, err), 0);
    ck_assert_int_eq(sp.roll_ns, MS);
}
END_TEST

START_TEST(parse_tcp_kafka)
{
    rn_sink_spec sp;
    char err[RN_ERRLEN];

    ck_assert_int_eq(rn_sink_parse("next=tcp://a:1,b:2?mode=balance", &sp, err), 0);
    ck_assert_int_eq(sp.kind, RN_SINK_TCP);
    ck_assert_str_eq(sp.name, "next");
    ck_assert_str_eq(sp.uri, "tcp://a:1,b:2?mode=balance");

    ck_assert_int_eq(rn_sink_parse("kafka://b1:9092,b2:9092/access", &sp, err), 0);
    ck_assert_int_eq(sp.kind, RN_SINK_KAFKA);
    ck_assert_str_eq(sp.brokers, "b1:9092,b2:9092");
    ck_assert_str_eq(sp.topic, "access");
    ck_assert_str_eq(sp.key, "");
    ck_assert_str_eq(sp.acks, "all");
    ck_assert_int_eq(rn_sink_parse("k=kafka://h:1/t?key=user&acks=1", &sp, err), 0);
    ck_assert_str_eq(sp.name, "k");
    ck_assert_str_eq(sp.key, "user");
    ck_assert_str_eq(sp.acks, "1");
    ck_assert_int_eq(rn_sink_parse("kafka://h:1/t?acks=-1", &sp, err), 0);
    ck_assert_str_eq(sp.acks, "all");
    ck_assert_int_eq(rn_sink_parse("kafka://h:1/t?acks=0", &sp, err), 0);
    ck_assert_str_eq(sp.acks, "0");
}
END_TEST

START_TEST(parse_errors)
{
    static char long_uri[1100], long_name[300];
    static const struct { const char *arg, *err; } bad[] = {
        { "a b=stdout", "'a b': a sink name is letters, digits, '_', '-' and '.'" },
        { "=stdout", "'': a sink name is letters, digits, '_', '-' and '.'" },
        { "stdout?x", "'stdout?x': a sink is stdout, file:///DIR/PREFIX, tcp://HOST:PORT "
                        "or kafka://BROKERS/TOPIC" },
        { "n=http://x/y", "'http://x/y': a sink is stdout, file:///DIR/PREFIX, "
                          "tcp://HOST:PORT or kafka://BROKERS/TOPIC" },
        { "file://rel/p", "file://rel/p: a file sink is file:///DIR/PREFIX (an absolute "
                          "directory and a file name prefix)" },
        { "file:///d/", "file:///d/: a file sink is file:///DIR/PREFIX (an absolute "
                        "directory and a file name prefix)" },
        { "file:///d/p?roll=0", "file:///d/p?roll=0: roll=0 is neither a size (64KiB, "
                                "10MiB, 1GiB) nor a duration (30s, 10m, 1h) of at least 1ms" },
        { "file:///d/p?roll=10us", "file:///d/p?roll=10us: roll=10us is neither a size" },
        { "file:///d/p?roll=soon", "file:///d/p?roll=soon: roll=soon is neither a size" },
        { "file:///d/p?roll", "file:///d/p?roll: parameter 'roll' has no value" },
        { "file:///d/p?size=1", "file:///d/p?size=1: unknown parameter 'size' (file sinks "
                                "take roll=)" },
        { "tcp://h", "tcp://h: missing port" },
        { "tcp://h:1?mode=x", "tcp://h:1?mode=x: unknown mode 'x' (use failover or balance)" },
        { "kafka://b", "kafka://b: a kafka sink is kafka://BROKERS/TOPIC" },
        { "kafka:///t", "kafka:///t: a kafka sink is kafka://BROKERS/TOPIC" },
        { "kafka://b/", "kafka://b/: a kafka sink is kafka://BROKERS/TOPIC" },
        { "kafka://b/t/u", "kafka://b/t/u: a kafka sink is kafka://BROKERS/TOPIC" },
        { "kafka://b/t?key=", "kafka://b/t?key=: key= needs a header name" },
        { "kafka://b/t?acks=2", "kafka://b/t?acks=2: acks=2 is not all, 1 or 0" },
        { "kafka://b/t?linger=5", "kafka://b/t?linger=5: unknown parameter 'linger' (kafka "
                                  "sinks take key= and acks=)" },
    };
    rn_sink_spec sp;
    char err[RN_ERRLEN];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(rn_sink_parse(bad[i].arg, &sp, err) == -1, "%s parsed", bad[i].arg);
        ck_assert_msg(strncmp(err, bad[i].err, strlen(bad[i].err)) == 0,
                      "%s: got \"%s\", want \"%s\"", bad[i].arg, err, bad[i].err);
    }
    /* Too long for the spec, and a URI too long to be its own name. */
    memset(long_uri, 'x', sizeof long_uri - 1);
    memcpy(long_uri, "file:///d/", 10);
    ck_assert_int_eq(rn_sink_parse(long_uri, &sp, err), -1);
    ck_assert_str_eq(err, "sink 'file:///d/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' is too long");
    memset(long_name, 'x', sizeof long_name - 1);
    memcpy(long_name, "file:///d/", 10);
    memcpy(long_name + sizeof long_name - 3, "/p", 2);
    ck_assert_int_eq(rn_sink_parse(long_name, &sp, err), -1);
    ck_assert_str_eq(err, "sink 'file:///d/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...': name it "
                          "(NAME=URI): a name is at most 255 bytes");
    char named[400];
    snprintf(named, sizeof named, "f=%s", long_name);
    ck_assert_msg(rn_sink_parse(named, &sp, err) == 0, "%s", err);
    ck_assert_str_eq(sp.name, "f");
    ck_assert_str_eq(sp.prefix, "p");
}
END_TEST

/* ---- the file sink ------------------------------------------------------------------ */

static const char *file_uri(const char *name, const char *sub, const char *query)
{
    static char uri[8][512];
    static int i;
    i = (i + 1) % 8;
    snprintf(uri[i], sizeof uri[i], "%s=file://%s/%s/p%s", name, ck_dir, sub,
             query ? query : "");
    return uri[i];
}

START_TEST(file_complete_at_stop)
{
    int complete, hidden;

    open_chan(1, (const char *[]){ "f" });
    put1("one", NULL, NULL);
    put1("two", NULL, NULL);
    start(file_uri("f", "out", NULL), RN_FMT_LINES);
    wait_out(0, 2);
    ck_assert(ck_wait_for(nothing_pending, NULL, 2000));
    /* Written, but hidden until the file is complete. */
    count_files(ck_path("out"), "p", &complete, &hidden);
    ck_assert_int_eq(complete, 0);
    ck_assert_int_eq(hidden, 1);
    ck_assert_int_eq(ck_read_files(ck_path("out"), ".p.", "|", buf, sizeof buf), 1);
    ck_assert_str_eq(buf, "one\ntwo\n|");
    stop_sinks();
    count_files(ck_path("out"), "p", &complete, &hidden);
    ck_assert_int_eq(complete, 1);
    ck_assert_int_eq(hidden, 0);
    ck_assert_int_eq(ck_read_files(ck_path("out"), "p.", "|", buf, sizeof buf), 1);
    ck_assert_str_eq(buf, "one\ntwo\n|");
    ck_assert_uint_eq(rn_sink_retries(sinks[0]), 0);
    ck_assert_str_eq(rn_sink_name(sinks[0]), "f");
    ck_assert_int_eq(ck_nwarns(), 0);
    ck_assert_int_eq(nfail, 0);
}
END_TEST

/* Frames keep ts and headers; json writes them out; both read back. */
START_TEST(file_formats)
{
    rn_buf b = { 0 };

    open_chan(2, (const char *[]){ "fr", "js" });
    ck_frame(&b, 1700000000123456789LL, "GET /a", "host", "web-1", "level", "info");
    ck_frame(&b, -5, "", NULL, NULL, NULL, NULL);
    put(&b, 2);
    rn_buf_free(&b);
    start_with(0, file_uri("fr", "fr", NULL), RN_FMT_FRAMES, 100, NULL);
    start_with(1, file_uri("js", "js", NULL), RN_FMT_JSON, 100, NULL);
    wait_out(0, 2);
    wait_out(1, 2);
    stop_sinks();

    ck_assert_int_eq(ck_read_files(ck_path("js"), "p.", "", buf, sizeof buf), 1);
    ck_assert_str_eq(buf, "{\"ts\":1700000000123456789,\"headers\":{\"host\":\"web-1\","
                          "\"level\":\"info\"},\"body\":\"GET /a\"}\n"
                          "{\"ts\":-5,\"headers\":{},\"body\":\"\"}\n");

    /* One file: its name is its only word. */
    char path[1024], names[256];
    ck_list_dir(ck_path("fr"), names, sizeof names);
    ck_assert_ptr_eq(strchr(names, ' '), names + strlen(names) - 1);
    names[strlen(names) - 1] = '\0';
    snprintf(path, sizeof path, "%s/%s", ck_path("fr"), names);
    long n = ck_read_file(path, buf, sizeof buf);
    ck_assert_int_gt(n, RN_FRAMES_HEADER_LEN);
    ck_assert(memcmp(buf, RN_FRAMES_HEADER, RN_FRAMES_HEADER_LEN) == 0);
    rn_decoder *d = rn_decoder_new(RN_FMT_AUTO, 0);
    char err[RN_ERRLEN];
    rn_event ev;
    ck_assert_int_eq(rn_decoder_feed(d, buf, (size_t)n, err), 0);
    rn_decoder_eof(d);
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 1);
    ck_assert_int_eq(rn_decoder_format(d), RN_FMT_FRAMES);
    ck_assert(ev.ts == 1700000000123456789LL);
    ck_assert_uint_eq(ev.nhdr, 2);
    ck_assert(ev.hdr[1].val.n == 4 && memcmp(ev.hdr[1].val.p, "info", 4) == 0);
    ck_assert(ev.body.n == 6 && memcmp(ev.body.p, "GET /a", 6) == 0);
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 1);
    ck_assert(ev.ts == -5 && ev.nhdr == 0 && ev.body.n == 0);
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 0);
    rn_decoder_free(d);
}
END_TEST

/* roll=6: a file is completed as soon as it holds 6 bytes or more. */
START_TEST(file_roll_by_size)
{
    int complete, hidden;
    static const char *bodies[] = { "e1", "e2", "e3", "e4", "e5" };

    open_chan(1, (const char *[]){ "f" });
    for (int i = 0; i < 5; i++)
        put1(bodies[i], NULL, NULL);
    start_with(0, file_uri("f", "out", "?roll=6"), RN_FMT_LINES, 1, NULL);
    wait_out(0, 5);
    count_files(ck_path("out"), "p", &complete, &hidden);
    ck_assert_int_eq(complete, 2);
    ck_assert_int_eq(hidden, 1);
    ck_assert_int_eq(ck_read_files(ck_path("out"), "p.", "|", buf, sizeof buf), 2);
    ck_assert_str_eq(buf, "e1\ne2\n|e3\ne4\n|");
    stop_sinks();
    count_files(ck_path("out"), "p", &complete, &hidden);
    ck_assert_int_eq(complete, 3);
    ck_assert_int_eq(hidden, 0);
    ck_assert_int_eq(ck_read_files(ck_path("out"), "p.", "|", buf, sizeof buf), 3);
    ck_assert_str_eq(buf, "e1\ne2\n|e3\ne4\n|e5\n|");
}
END_TEST

typedef struct want_files {
    const char *dir;
    int complete, hidden;
} want_files;

static int files_are(void *arg)
{
    want_files *w = arg;
    int c, h;
    count_files(w->dir, "p", &c, &h);
    return c == w->complete && h == w->hidden;
}

/* roll=400ms: an idle file is completed once it is that old, with nothing
 * more coming; the next event opens a new one. */
START_TEST(file_roll_by_time)
{
    int complete, hidden;

    open_chan(1, (const char *[]){ "f" });
    put1("a1", NULL, NULL);
    put1("a2", NULL, NULL);
    int64_t t0 = rn_mono_ns();
    start(file_uri("f", "out", "?roll=400ms"), RN_FMT_LINES);
    wait_out(0, 2);
    count_files(ck_path("out"), "p", &complete, &hidden);
    if (rn_mono_ns() - t0 < 300 * MS) {     /* a slow machine may be past it already */
        ck_assert_int_eq(complete, 0);
        ck_assert_int_eq(hidden, 1);
    }
    want_files w = { ck_path("out"), 1, 0 };
    ck_assert_msg(ck_wait_for(files_are, &w, 3000), "the idle file was not completed");
    ck_assert_int_ge(rn_mono_ns() - t0, 400 * MS);
    ck_assert_int_eq(ck_read_files(ck_path("out"), "p.", "|", buf, sizeof buf), 1);
    ck_assert_str_eq(buf, "a1\na2\n|");
    put1("b1", NULL, NULL);
    wait_out(0, 3);
    stop_sinks();
    ck_assert_int_eq(ck_read_files(ck_path("out"), "p.", "|", buf, sizeof buf), 2);
    ck_assert_str_eq(buf, "a1\na2\n|b1\n|");
}
END_TEST

/* A killed run's hidden file is cut after its last whole event and given
 * its final name; one with no whole event goes; other files stay as they are. */
START_TEST(file_completes_left_over)
{
    char names[1024];
    rn_buf b = { 0 };

    ck_assert_int_eq(mkdir(ck_path("out"), 0755), 0);
    ck_put_file(ck_path("out/.p.0000000000005.tmp"), "one\ntwo\nthr", 0);
    ck_put_file(ck_path("out/.p.0000000000006.tmp"), "no newline at all", 0);
    ck_put_file(ck_path("out/.q.0000000000007.tmp"), "another prefix\nx", 0);
    ck_put_file(ck_path("out/p.0000000000004"), "complete\n", 0);
    /* frames: the stream header, two whole frames, half of a third */
    rn_buf_append(&b, RN_FRAMES_HEADER, RN_FRAMES_HEADER_LEN);
    ck_frame(&b, 1, "f1", "k", "v", NULL, NULL);
    ck_frame(&b, 2, "f2", NULL, NULL, NULL, NULL);
    size_t whole = b.len;
    ck_frame(&b, 3, "f3 is cut", NULL, NULL, NULL, NULL);
    int fd = open(ck_path("out/.p.0000000000008.tmp"), O_WRONLY | O_CREAT, 0644);
    ck_assert_int_eq(rn_write_all(fd, b.p, whole + 7), 0);
    close(fd);
    /* frames with no whole frame */
    fd = open(ck_path("out/.p.0000000000009.tmp"), O_WRONLY | O_CREAT, 0644);
    ck_assert_int_eq(rn_write_all(fd, b.p, RN_FRAMES_HEADER_LEN + 3), 0);
    close(fd);

    open_chan(1, (const char *[]){ "f" });
    start(file_uri("f", "out", NULL), RN_FMT_LINES);
    ck_list_dir(ck_path("out"), names, sizeof names);
    ck_assert_str_eq(names, ".q.0000000000007.tmp p.0000000000004 p.0000000000005 "
                            "p.0000000000008 ");
    ck_assert_int_eq(ck_read_file(ck_path("out/p.0000000000005"), buf, sizeof buf), 8);
    ck_assert_str_eq(buf, "one\ntwo\n");
    ck_assert_int_eq(ck_read_file(ck_path("out/p.0000000000008"), buf, sizeof buf),
                     (long)whole);
    ck_assert(memcmp(buf, b.p, whole) == 0);
    ck_assert_int_eq(ck_read_file(ck_path("out/p.0000000000004"), buf, sizeof buf), 9);

    char want[2048];
    snprintf(want, sizeof want,
             "sink f: %s/.p.0000000000005.tmp: cut after byte offset 8, the end of its "
             "last whole event\n", ck_path("out"));
    ck_assert_msg(ck_warned(want), "%s", ck_warns());
    snprintf(want, sizeof want, "sink f: completed %s/p.0000000000005, left by an earlier "
             "run\n", ck_path("out"));
    ck_assert_msg(ck_warned(want), "%s", ck_warns());
    snprintf(want, sizeof want,
             "sink f: %s/.p.0000000000008.tmp: cut after byte offset %zu, the end of its "
             "last whole event\n", ck_path("out"), whole);
    ck_assert_msg(ck_warned(want), "%s", ck_warns());
    ck_assert_int_eq(ck_nwarns(), 4);
    rn_buf_free(&b);
}
END_TEST

START_TEST(file_start_errors)
{
    rn_sink_spec spec;
    char err[RN_ERRLEN], want[1024];

    open_chan(1, (const char *[]){ "f" });
    rn_sink_opts o = { .chan = chan, .batch = 10, .fmt = RN_FMT_LINES, .on_warn = ck_warn };
    /* The directory is made, but not its parents. */
    ck_assert_int_eq(rn_sink_parse(file_uri("f", "no/such", NULL), &spec, err), 0);
    ck_assert_ptr_null(rn_sink_start(&spec, &o, err));
    snprintf(want, sizeof want, "sink f: %s: No such file or directory", ck_path("no/such"));
    ck_assert_str_eq(err, want);
    ck_put_file(ck_path("plain"), "x", 0);
    ck_assert_int_eq(rn_sink_parse(file_uri("f", "plain", NULL), &spec, err), 0);
    ck_assert_ptr_null(rn_sink_start(&spec, &o, err));
    snprintf(want, sizeof want, "sink f: %s: Not a directory", ck_path("plain"));
    ck_assert_str_eq(err, want);
    /* tcp: the URI is checked again at start. */
    memset(&spec, 0, sizeof spec);
    spec.kind = RN_SINK_TCP;
    strcpy(spec.name, "t");
    strcpy(spec.uri, "tcp://nohost");
    ck_assert_ptr_null(rn_sink_start(&spec, &o, err));
    ck_assert_str_eq(err, "tcp://nohost: missing port");
    ck_assert_uint_eq(pending(), 0);
}
END_TEST

/* A file it cannot write: the batch stays, is tried again every second and
 * delivered once it can be; said once when it starts failing, once when it
 * works again. */
START_TEST(file_write_retried)
{
    char want[1024];

    open_chan(1, (const char *[]){ "f" });
    start(file_uri("f", "out", NULL), RN_FMT_LINES);
    ck_assert_int_eq(rmdir(ck_path("out")), 0);
    put1("kept", NULL, NULL);
    snprintf(want, sizeof want, "sink f: %s/.p.", ck_path("out"));
    ck_assert(ck_wait_for((int (*)(void *))ck_warned, want, 3000));
    ck_assert_msg(ck_warned(".tmp: No such file or directory; trying again every second\n"),
                  "%s", ck_warns());
    ck_assert_uint_eq(rn_sink_out(sinks[0]), 0);
    ck_assert_uint_eq(pending(), 1);
    ck_assert_int_eq(mkdir(ck_path("out"), 0755), 0);
    wait_out(0, 1);
    ck_assert_uint_ge(rn_sink_retries(sinks[0]), 1);
    ck_assert(ck_wait_for(nothing_pending, NULL, 2000));
    ck_assert_msg(ck_warned("sink f: writing again\n"), "%s", ck_warns());
    ck_assert_int_eq(ck_nwarns(), 2);
    stop_sinks();
    ck_assert_int_eq(ck_read_files(ck_path("out"), "p.", "|", buf, sizeof buf), 1);
    ck_assert_str_eq(buf, "kept\n|");
    ck_assert_int_eq(nfail, 0);
}
END_TEST

/* The multiplexing selector: a routed sink gets its values, the default sink
 * what no route names or what has no such header. */
START_TEST(file_routes)
{
    static const char *names[] = { "x", "rest" };
    static const char *xvals[] = { "x" }, *all[] = { "x", "y" };
    rn_sink_filter fx = { .header = "type", .nvals = 1, .vals = xvals, .nall = 2, .all = all };
    rn_sink_filter fd = { .header = "type", .nall = 2, .all = all, .is_default = 1 };
    rn_buf b = { 0 };

    open_chan(2, names);
    ck_frame(&b, 1, "x1", "type", "x", NULL, NULL);
    ck_frame(&b, 2, "y1", "type", "y", NULL, NULL);
    put(&b, 2);
    ck_frame(&b, 3, "z1", "type", "z", NULL, NULL);
    put(&b, 1);
    ck_frame(&b, 4, "n1", "other", "x", NULL, NULL);
    ck_frame(&b, 5, "x2", "level", "1", "type", "x");
    ck_frame(&b, 6, "X", "type", "xx", NULL, NULL);
    put(&b, 3);
    rn_buf_free(&b);
    start_with(0, file_uri("x", "x", NULL), RN_FMT_LINES, 100, &fx);
    start_with(1, file_uri("rest", "rest", NULL), RN_FMT_LINES, 100, &fd);
    ck_assert(ck_wait_for(nothing_pending, NULL, 3000));
    stop_sinks();
    ck_assert_int_eq(ck_read_files(ck_path("x"), "p.", "", buf, sizeof buf), 1);
    ck_assert_str_eq(buf, "x1\nx2\n");
    ck_assert_int_eq(ck_read_files(ck_path("rest"), "p.", "", buf, sizeof buf), 1);
    ck_assert_str_eq(buf, "z1\nn1\nX\n");
    ck_assert_uint_eq(rn_sink_out(sinks[0]), 2);
    ck_assert_uint_eq(rn_sink_out(sinks[1]), 3);
}
END_TEST

/* A batch the routes take wholly away is done, and leaves no file. */
START_TEST(file_routes_nothing)
{
    static const char *xvals[] = { "x" };
    rn_sink_filter fx = { .header = "type", .nvals = 1, .vals = xvals, .nall = 1, .all = xvals };
    char names[256];

    open_chan(1, (const char *[]){ "x" });
    put1("y1", "type", "y");
    put1("n1", NULL, NULL);
    start_with(0, file_uri("x", "x", NULL), RN_FMT_FRAMES, 100, &fx);
    ck_assert(ck_wait_for(nothing_pending, NULL, 3000));
    ck_list_dir(ck_path("x"), names, sizeof names);
    ck_assert_str_eq(names, "");
    stop_sinks();
    ck_list_dir(ck_path("x"), names, sizeof names);
    ck_assert_str_eq(names, "");
    ck_assert_uint_eq(rn_sink_out(sinks[0]), 0);
}
END_TEST

/* ---- stdout ------------------------------------------------------------------------- */

START_TEST(stdout_writes)
{
    rn_buf b = { 0 };
    int fd = open(ck_path("stdout"), O_WRONLY | O_CREAT | O_TRUNC, 0644);

    ck_redirect(STDOUT_FILENO, fd);
    open_chan(1, (const char *[]){ "stdout" });
    ck_frame(&b, 7, "first", "k", "v", NULL, NULL);
    ck_frame(&b, 8, "second", NULL, NULL, NULL, NULL);
    put(&b, 2);
    rn_buf_free(&b);
    start("stdout", RN_FMT_JSON);
    wait_out(0, 2);
    ck_assert(ck_wait_for(nothing_pending, NULL, 2000));
    stop_sinks();
    ck_restore_fds();
    ck_read_file(ck_path("stdout"), buf, sizeof buf);
    ck_assert_str_eq(buf, "{\"ts\":7,\"headers\":{\"k\":\"v\"},\"body\":\"first\"}\n"
                          "{\"ts\":8,\"headers\":{},\"body\":\"second\"}\n");
    ck_assert_int_eq(nfail, 0);
}
END_TEST

/* The reader went away: the sink stops for good, quietly, status RN_EPIPE, and
 * the batch stays pending. */
START_TEST(stdout_closed)
{
    int p[2];

    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    ck_redirect(STDOUT_FILENO, p[1]);
    open_chan(1, (const char *[]){ "stdout" });
    put1("lost", NULL, NULL);
    start("stdout", RN_FMT_LINES);
    ck_assert(ck_wait_for(failed_once, NULL, 3000));
    rn_sink_join(sinks[0]);         /* it ended by itself */
    ck_assert_int_eq(fail_status, RN_EPIPE);
    ck_assert_int_eq(nfail, 1);
    ck_assert_int_eq(ck_nwarns(), 0);
    ck_assert_uint_eq(rn_sink_out(sinks[0]), 0);
    ck_assert_uint_eq(pending(), 1);
}
END_TEST

/* Any other write error: said, and the sink stops with status -1. */
START_TEST(stdout_write_error)
{
    ck_put_file(ck_path("ro"), "", 0);
    ck_redirect(STDOUT_FILENO, open(ck_path("ro"), O_RDONLY));
    open_chan(1, (const char *[]){ "stdout" });
    put1("x", NULL, NULL);
    start("stdout", RN_FMT_LINES);
    ck_assert(ck_wait_for(failed_once, NULL, 3000));
    rn_sink_join(sinks[0]);
    ck_assert_int_eq(fail_status, -1);
    ck_assert_str_eq(ck_warns(), "sink stdout: stdout: write: Bad file descriptor\n");
    ck_assert_uint_eq(pending(), 1);
}
END_TEST

/* ---- tcp: a hop server on the test's loop --------------------------------------------- */

enum { HOP_ACK, HOP_HOLD, HOP_NACK_FIRST };

static struct {
    uv_loop_t loop;
    rn_hop_server *srv;
    int policy;
    char got[8192];             /* events received, with headers */
    unsigned offers[64];        /* by serial */
    uint64_t batches;
    int (*until)(void);         /* when to stop the sinks and close */
} H;

static int on_hop_batch(void *data, const rn_hop_batch *b)
{
    (void)data;
    size_t n = strlen(H.got);
    ck_events_text(b->events, b->len, b->count, 1, H.got + n, sizeof H.got - n);
    size_t l = strlen(H.got);
    snprintf(H.got + l, sizeof H.got - l, "/");
    H.batches++;
    unsigned seen = b->serial < 64 ? H.offers[b->serial]++ : 0;
    if (H.policy == HOP_HOLD)
        return RN_HOP_TAKEN;
    if (H.policy == HOP_NACK_FIRST && seen == 0)
        rn_hop_server_nack(H.srv, b->conn, b->serial, "try later");
    else
        rn_hop_server_ack(H.srv, b->conn, b->serial, RN_HOP_STORED);
    return RN_HOP_TAKEN;
}

static void hop_close(void)
{
    stop_sinks();
    rn_hop_server_close(H.srv);
}

static int hop_script(int step)
{
    (void)step;
    if (!H.until())
        return 0;
    hop_close();
    ck_script_close();
    return 1;
}

/* Start a hop server; the tcp sink's URI is then in the result. */
static const char *hop_start(int policy)
{
    static char uri[300];
    char err[RN_ERRLEN];
    memset(&H, 0, sizeof H);
    ck_assert_int_eq(uv_loop_init(&H.loop), 0);
    rn_hop_server_opts o = { .on_batch = on_hop_batch, .on_warn = ck_warn };
    H.srv = rn_hop_server_new(&H.loop, &o, err);
    ck_assert_msg(H.srv != NULL, "%s", err);
    ck_assert_msg(rn_hop_server_listen(H.srv, "127.0.0.1:0", err) == 0, "%s", err);
    H.policy = policy;
    snprintf(uri, sizeof uri, "hop=tcp://%s", rn_hop_server_address(H.srv));
    return uri;
}

static void hop_run(int (*until)(void))
{
    H.until = until;
    ck_script_start(&H.loop, hop_script, hop_close);
    uv_run(&H.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&H.loop), 0);
    rn_hop_server_free(H.srv);
    ck_assert_msg(!ck_script_timed_out(), "timed out: received %s", H.got);
}

static int all_done(void) { return pending() == 0; }

static int held_a_while(void) { return ck_step_ms() >= 300; }

static void put_numbered(int records)
{
    rn_buf b = { 0 };
    char body[32];
    for (int i = 1; i <= records; i++) {
        snprintf(body, sizeof body, "r%d.a", i);
        ck_frame(&b, i, body, "n", "1", NULL, NULL);
        snprintf(body, sizeof body, "r%d.b", i);
        ck_frame(&b, i, body, NULL, NULL, NULL, NULL);
        put(&b, 2);
    }
    rn_buf_free(&b);
}

START_TEST(tcp_delivers)
{
    const char *uri = hop_start(HOP_ACK);

    open_chan(1, (const char *[]){ "hop" });
    put_numbered(3);
    start_with(0, uri, RN_FMT_LINES, 2, NULL);
    hop_run(all_done);
    /* One batch a record (batch = 2 events), in order, headers kept. */
    ck_assert_str_eq(H.got, "n=1:r1.a|r1.b|/n=1:r2.a|r2.b|/n=1:r3.a|r3.b|/");
    ck_assert_uint_eq(rn_sink_out(sinks[0]), 6);
    ck_assert_uint_eq(rn_sink_retries(sinks[0]), 0);
    ck_assert_int_eq(ck_nwarns(), 0);
}
END_TEST

/* Not acknowledged: not done. What is in flight at the stop stays pending. */
START_TEST(tcp_waits_for_ack)
{
    const char *uri = hop_start(HOP_HOLD);

    open_chan(1, (const char *[]){ "hop" });
    put_numbered(2);
    start_with(0, uri, RN_FMT_LINES, 100, NULL);
    hop_run(held_a_while);
    ck_assert_str_eq(H.got, "n=1:r1.a|r1.b|n=1:r2.a|r2.b|/");
    ck_assert_uint_eq(rn_sink_out(sinks[0]), 0);
    ck_assert_uint_eq(pending(), 4);
}
END_TEST

START_TEST(tcp_nack_sent_again)
{
    const char *uri = hop_start(HOP_NACK_FIRST);

    open_chan(1, (const char *[]){ "hop" });
    put_numbered(2);
    start_with(0, uri, RN_FMT_LINES, 2, NULL);
    hop_run(all_done);
    ck_assert_uint_eq(H.offers[1], 2);
    ck_assert_uint_eq(H.offers[2], 2);
    ck_assert_uint_eq(H.batches, 4);
    ck_assert_uint_eq(rn_sink_out(sinks[0]), 4);
    ck_assert_uint_eq(rn_sink_retries(sinks[0]), 2);
}
END_TEST

/* Routes: only the events of the sink go out; a batch left empty is done
 * without being sent, in its place in the order. */
START_TEST(tcp_routes)
{
    static const char *xvals[] = { "x" };
    rn_sink_filter fx = { .header = "type", .nvals = 1, .vals = xvals, .nall = 1, .all = xvals };
    const char *uri = hop_start(HOP_ACK);
    rn_buf b = { 0 };

    open_chan(1, (const char *[]){ "hop" });
    ck_frame(&b, 1, "x1", "type", "x", NULL, NULL);
    ck_frame(&b, 2, "y1", "type", "y", NULL, NULL);
    put(&b, 2);
    put1("y2", "type", "y");
    put1("x2", "type", "x");
    rn_buf_free(&b);
    start_with(0, uri, RN_FMT_LINES, 2, &fx);
    hop_run(all_done);
    ck_assert_str_eq(H.got, "type=x:x1|/type=x:x2|/");
    ck_assert_uint_eq(H.batches, 2);
    ck_assert_uint_eq(rn_sink_out(sinks[0]), 2);
}
END_TEST

/* ---- kafka: an rn_broker on a loop of its own thread -------------------------------------- */

static struct {
    uv_loop_t loop;
    rn_broker *b;
    uv_async_t stop;
    pthread_t thread;
    char addr[64];
} K;

static void *broker_thread(void *arg)
{
    (void)arg;
    uv_run(&K.loop, UV_RUN_DEFAULT);
    return NULL;
}

static void broker_stopped(void *data)
{
    (void)data;
    uv_close((uv_handle_t *)&K.stop, NULL);
}

static void broker_stop_cb(uv_async_t *h)
{
    (void)h;
    rn_broker_stop(K.b, broker_stopped, NULL);
}

static void broker_start(void)
{
    char err[RN_ERRLEN];
    rn_broker_opts o = { .host = "127.0.0.1", .data_dir = ck_path("broker"), .partitions = 1,
                         .auto_create = 1, .max_request = 100u << 20, .on_log = ck_warn };
    ck_assert_int_eq(uv_loop_init(&K.loop), 0);
    K.b = rn_broker_new(&K.loop, &o, err);
    ck_assert_msg(K.b != NULL, "%s", err);
    ck_assert_msg(rn_broker_start(K.b, err) == 0, "%s", err);
    snprintf(K.addr, sizeof K.addr, "127.0.0.1:%d", rn_broker_port(K.b));
    uv_async_init(&K.loop, &K.stop, broker_stop_cb);
    ck_assert_int_eq(pthread_create(&K.thread, NULL, broker_thread, NULL), 0);
}

static void broker_finish(void)
{
    uv_async_send(&K.stop);
    pthread_join(K.thread, NULL);
    ck_assert_int_eq(rn_broker_failed(K.b), 0);
    rn_broker_free(K.b);
    ck_assert_int_eq(uv_loop_close(&K.loop), 0);
}

static int64_t zigzag(const unsigned char **p, const unsigned char *end)
{
    uint64_t v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
    }
    ck_abort_msg("bad varint");
    return 0;
}

/* Append "ts key h=v,h=v:value|" for a record's fields. */
static const unsigned char *record_text(const unsigned char *p, const unsigned char *end,
                                        int64_t first_ts, char *out, size_t cap)
{
    int64_t len = zigzag(&p, end);
    const unsigned char *rend = p + len;
    ck_assert(len > 0 && rend <= end);
    p++;                                        /* attributes */
    int64_t ts = first_ts + zigzag(&p, rend);
    zigzag(&p, rend);                           /* offset delta */
    int64_t klen = zigzag(&p, rend);
    size_t n = strlen(out);
    snprintf(out + n, cap - n, "%lld %.*s ", (long long)ts, klen < 0 ? 4 : (int)klen,
             klen < 0 ? "null" : (const char *)p);
    p += klen > 0 ? klen : 0;
    int64_t vlen = zigzag(&p, rend);
    const unsigned char *val = p;
    p += vlen > 0 ? vlen : 0;
    int64_t nh = zigzag(&p, rend);
    for (int64_t i = 0; i < nh; i++) {
        int64_t hk = zigzag(&p, rend);
        const unsigned char *k = p;
        p += hk;
        int64_t hv = zigzag(&p, rend);
        n = strlen(out);
        snprintf(out + n, cap - n, "%s%.*s=%.*s", i ? "," : "", (int)hk, (const char *)k,
                 (int)hv, (const char *)p);
        p += hv;
    }
    n = strlen(out);
    snprintf(out + n, cap - n, ":%.*s|", (int)vlen, (const char *)val);
    ck_assert(p == rend);
    return rend;
}

/* Every record of partition 0 of topic, as text, read from the broker's
 * log on disk after it stopped. */
static void topic_text(const char *topic, char *out, size_t cap)
{
    char dir[600], err[RN_ERRLEN];
    rn_klog *l;
    rn_klog_slice sl;
    static unsigned char data[1 << 16];

    out[0] = '\0';
    snprintf(dir, sizeof dir, "%s/%s-0", ck_path("broker"), topic);
    ck_assert_msg(rn_klog_open(dir, NULL, &l, err) == 0, "%s", err);
    for (int64_t off = 0; off < rn_klog_end(l);) {
        ck_assert_msg(rn_klog_read(l, off, sizeof data, &sl, err) == 0, "%s", err);
        ck_assert(sl.len > 0 && sl.len <= sizeof data);
        ck_assert_int_eq(pread(sl.fd, data, sl.len, (off_t)sl.pos), (ssize_t)sl.len);
        for (const unsigned char *p = data; p < data + sl.len;) {
            uint32_t blen = rn_be32(p + 8);
            const unsigned char *end = p + 12 + blen;
            ck_assert_int_eq(p[16], 2);                 /* magic */
            ck_assert_int_eq(p[22] & 7, 0);             /* not compressed */
            int64_t first_ts = (int64_t)rn_be64(p + 27);
            uint32_t n = rn_be32(p + 57);
            const unsigned char *r = p + RN_KLOG_BATCH_HEADER;
            for (uint32_t i = 0; i < n; i++)
                r = record_text(r, end, first_ts, out, cap);
            off = (int64_t)rn_be64(p) + rn_be32(p + 23) + 1;
            p = end;
        }
    }
    rn_klog_close(l);
}

/* Every event a record: value the body, key the key= header, timestamp ts,
 * headers kept; a routed sink produces only its events. */
START_TEST(kafka_produces)
{
    static const char *errvals[] = { "error" };
    rn_sink_filter fe = { .header = "level", .nvals = 1, .vals = errvals, .nall = 1,
                          .all = errvals };
    char uri[2][512];
    rn_buf b = { 0 };

    broker_start();
    open_chan(2, (const char *[]){ "all", "errors" });
    ck_frame(&b, 1700000000001000000LL, "e1", "user", "u1", "level", "info");
    ck_frame(&b, 1700000000002000000LL, "e2", "level", "error", NULL, NULL);
    put(&b, 2);
    ck_frame(&b, 1700000000003999999LL, "e3", "user", "u3", "level", "error");
    put(&b, 1);
    rn_buf_free(&b);
    snprintf(uri[0], sizeof uri[0], "all=kafka://%s/all?key=user", K.addr);
    snprintf(uri[1], sizeof uri[1], "errors=kafka://%s/errors?acks=1", K.addr);
    start_with(0, uri[0], RN_FMT_LINES, 100, NULL);
    start_with(1, uri[1], RN_FMT_LINES, 100, &fe);
    wait_out(0, 3);
    wait_out(1, 2);
    ck_assert(ck_wait_for(nothing_pending, NULL, 3000));
    stop_sinks();
    ck_assert_uint_eq(rn_sink_retries(sinks[0]), 0);
    broker_finish();

    topic_text("all", buf, sizeof buf);
    ck_assert_str_eq(buf, "1700000000001 u1 user=u1,level=info:e1|"
                          "1700000000002 null level=error:e2|"
                          "1700000000003 u3 user=u3,level=error:e3|");
    topic_text("errors", buf, sizeof buf);
    ck_assert_str_eq(buf, "1700000000002 null level=error:e2|"
                          "1700000000003 null user=u3,level=error:e3|");
}
END_TEST

/* No broker: said (not once a record), nothing is done, and at the stop the
 * events stay pending in the channel. */
START_TEST(kafka_unreachable)
{
    open_chan(1, (const char *[]){ "k" });
    put1("waits", NULL, NULL);
    start("k=kafka://127.0.0.1:1/t", RN_FMT_LINES);
    ck_assert(ck_wait_for((int (*)(void *))ck_warned, "sink k: kafka: ", 5000));
    usleep(300000);
    ck_assert_msg(ck_nwarns() == 1, "%s", ck_warns());
    ck_assert_msg(ck_warned("; trying again\n"), "%s", ck_warns());
    ck_assert_uint_eq(rn_sink_out(sinks[0]), 0);
    stop_sinks();
    ck_assert_uint_eq(pending(), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sink");

    signal(SIGPIPE, SIG_IGN);   /* as every tool does (rn_sig_ignore_pipe) */

    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, parse_stdout_and_names);
    tcase_add_test(tc, parse_file);
    tcase_add_test(tc, parse_tcp_kafka);
    tcase_add_test(tc, parse_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("file");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, file_complete_at_stop);
    tcase_add_test(tc, file_formats);
    tcase_add_test(tc, file_roll_by_size);
    tcase_add_test(tc, file_roll_by_time);
    tcase_add_test(tc, file_completes_left_over);
    tcase_add_test(tc, file_start_errors);
    tcase_add_test(tc, file_write_retried);
    tcase_add_test(tc, file_routes);
    tcase_add_test(tc, file_routes_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("stdout");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, stdout_writes);
    tcase_add_test(tc, stdout_closed);
    tcase_add_test(tc, stdout_write_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("tcp");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, tcp_delivers);
    tcase_add_test(tc, tcp_waits_for_ack);
    tcase_add_test(tc, tcp_nack_sent_again);
    tcase_add_test(tc, tcp_routes);
    suite_add_tcase(s, tc);

    tc = tcase_create("kafka");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, kafka_produces);
    tcase_add_test(tc, kafka_unreachable);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
