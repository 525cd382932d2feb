/* check_chan.c -- unit tests for lib/chan: put and take through memory and
 * file channels, sinks and done cursors, capacity, duplicates, checkpoints,
 * recovery of torn and damaged segments, kill -9, threads, and a quick
 * throughput measurement. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chan/chan.h"
#include "core/core.h"

static char tdir[64];       /* the test's own directory */
static char cdir[128];      /* the channel's, created by open */
static char warns[16384];   /* every on_warn message, one a line */

static void setup(void)
{
    strcpy(tdir, "/tmp/check_chan.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tdir));
    snprintf(cdir, sizeof cdir, "%s/chan", tdir);
    warns[0] = '\0';
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tdir);
    ck_assert_int_eq(system(cmd), 0);
}

static void on_warn(void *data, const char *msg)
{
    (void)data;
    size_t n = strlen(warns);
    snprintf(warns + n, sizeof warns - n, "%s\n", msg);
}

/* ---- records that check themselves --------------------------------------- */

/* A record tagged t holds 1 + t % 3 events; event k is a u32 BE length and
 * a payload of the tag, k, and bytes that follow from both, so that every
 * byte taken back can be checked against the tag alone. */
static uint32_t rec_count(uint64_t t) { return 1 + (uint32_t)(t % 3); }
static size_t ev_len(uint64_t t, uint32_t k) { return 12 + (size_t)((t * 7 + k) % 50); }

static unsigned char ev_byte(uint64_t t, uint32_t k, size_t j)
{
    return (unsigned char)(t * 31 + k * 7 + j);
}

static void make_rec(rn_buf *b, uint64_t t)
{
    b->len = 0;
    for (uint32_t k = 0; k < rec_count(t); k++) {
        size_t n = ev_len(t, k);
        unsigned char h[4] = { (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                               (unsigned char)(n >> 8), (unsigned char)n };
        unsigned char p[64];
        memcpy(p, &t, 8);
        memcpy(p + 8, &k, 4);
        for (size_t j = 12; j < n; j++)
            p[j] = ev_byte(t, k, j);
        ck_assert_int_eq(rn_buf_append(b, h, 4), 0);
        ck_assert_int_eq(rn_buf_append(b, p, n), 0);
    }
}

/* Walk a batch: check every byte and the event count, and put the tags of
 * its records into tags (at most max). Returns the number of records. Plain
 * tests, not ck_assert: Check records every passing assertion, and this runs
 * for every byte of millions of events. */
#define WALK_FAIL(...) ck_abort_msg(__VA_ARGS__)

static size_t walk(const rn_chan_batch *b, uint64_t *tags, size_t max)
{
    const unsigned char *p = (const unsigned char *)b->events.p;
    size_t at = 0, nrec = 0, len = b->events.len;
    uint32_t events = 0;
    while (at < len) {
        uint64_t t;
        if (len - at < 16)
            WALK_FAIL("batch at %llu: %zu bytes left at byte %zu",
                      (unsigned long long)b->seq, len - at, at);
        memcpy(&t, p + at + 4, 8);
        for (uint32_t k = 0; k < rec_count(t); k++) {
            if (len - at < 4)
                WALK_FAIL("record %llu: cut short", (unsigned long long)t);
            size_t n = (size_t)p[at] << 24 | (size_t)p[at + 1] << 16
                     | (size_t)p[at + 2] << 8 | p[at + 3];
            uint64_t t2;
            uint32_t k2;
            if (n != ev_len(t, k) || len - at - 4 < n)
                WALK_FAIL("record %llu event %u: length %zu", (unsigned long long)t, k, n);
            memcpy(&t2, p + at + 4, 8);
            memcpy(&k2, p + at + 12, 4);
            if (t2 != t || k2 != k)
                WALK_FAIL("record %llu event %u: header says %llu/%u",
                          (unsigned long long)t, k, (unsigned long long)t2, k2);
            for (size_t j = 12; j < n; j++)
                if (p[at + 4 + j] != ev_byte(t, k, j))
                    WALK_FAIL("record %llu event %u byte %zu differs",
                              (unsigned long long)t, k, j);
            at += 4 + n;
            events++;
        }
        if (nrec < max)
            tags[nrec] = t;
        nrec++;
    }
    if (events != b->count || b->end - b->seq < b->count)
        WALK_FAIL("batch at %llu: %u events, count %u, end %llu",
                  (unsigned long long)b->seq, events, b->count, (unsigned long long)b->end);
    return nrec;
}

/* ---- helpers --------------------------------------------------------------- */

typedef struct copts {
    const char *dir;
    size_t nsinks;
    const char *const *names;
    uint64_t capacity, max_bytes, segment_bytes;
} copts;

static const char *const two[] = { "a", "b" };
static const char *const one[] = { "s" };

static rn_chan *open_o(const copts *x, char *err)
{
    rn_chan_opts o = {
        .dir = x->dir,
        .capacity = x->capacity,
        .max_bytes = x->max_bytes,
        .segment_bytes = x->segment_bytes,
        .nsinks = x->nsinks ? x->nsinks : 1,
        .sink_names = x->names ? x->names : one,
        .on_warn = on_warn,
    };
    return rn_chan_open(&o, err);
}

static rn_chan *open_ok(const copts *x)
{
    char err[RN_ERRLEN] = "";
    rn_chan *c = open_o(x, err);
    ck_assert_msg(c != NULL, "open: %s", err);
    return c;
}

static void close_ok(rn_chan *c)
{
    char err[RN_ERRLEN] = "";
    ck_assert_msg(rn_chan_close(c, err) == 0, "close: %s", err);
}

/* Put the record tagged t; returns what put answered. */
static int put_tag(rn_chan *c, uint64_t t, uint64_t session, uint64_t serial, int wait,
                   uint64_t *ticket)
{
    rn_buf b = { 0 };
    char err[RN_ERRLEN] = "";
    make_rec(&b, t);
    int r = rn_chan_put(c, b.p, b.len, rec_count(t), session, serial, wait, ticket, err);
    ck_assert_msg(r >= 0, "put: %s", err);
    rn_buf_free(&b);
    return r;
}

static void put_range(rn_chan *c, uint64_t from, uint64_t to)
{
    for (uint64_t t = from; t < to; t++)
        ck_assert_int_eq(put_tag(c, t, 0, 0, 0, NULL), 0);
}

/* Take everything sink has (not waiting), checking it; tags into out.
 * done: report each batch done. Returns the number of records. */
static size_t take_all(rn_chan *c, size_t sink, uint32_t max_events, int done,
                       uint64_t *out, size_t max)
{
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN] = "";
    size_t n = 0;
    int r;
    while ((r = rn_chan_take(c, sink, max_events, 0, &b, err)) == 1) {
        n += walk(&b, out ? out + n : NULL, out && n < max ? max - n : 0);
        if (done)
            rn_chan_done(c, sink, b.end);
    }
    ck_assert_msg(r == 0, "take: %s", err);
    rn_buf_free(&b.events);
    return n;
}

static uint64_t events_of(uint64_t from, uint64_t to)
{
    uint64_t n = 0;
    for (uint64_t t = from; t < to; t++)
        n += rec_count(t);
    return n;
}

static size_t count_files(const char *pattern_in_cdir)
{
    char pat[256];
    glob_t g;
    snprintf(pat, sizeof pat, "%s/%s", cdir, pattern_in_cdir);
    if (glob(pat, 0, NULL, &g) != 0)
        return 0;
    size_t n = g.gl_pathc;
    globfree(&g);
    return n;
}

/* The path of the newest (or oldest) segment. */
static void seg_path(char *out, size_t len, int newest)
{
    char pat[256];
    glob_t g;
    snprintf(pat, sizeof pat, "%s/wal-*", cdir);
    ck_assert_int_eq(glob(pat, 0, NULL, &g), 0);
    snprintf(out, len, "%s", g.gl_pathv[newest ? g.gl_pathc - 1 : 0]);
    globfree(&g);
}

static off_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

static int64_t mono_ms(void)
{
    return rn_mono_ns() / 1000000;
}

/* ---- put and take ------------------------------------------------------- */

static void round_trip(const char *dir)
{
    rn_chan *c = open_ok(&(copts){ .dir = dir });
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    rn_chan_stats st;
    uint64_t tags[8], ticket = 0, prev = 0;

    ck_assert_int_eq(rn_chan_take(c, 0, 100, 0, &b, err), 0);
    for (uint64_t t = 10; t < 13; t++) {
        ck_assert_int_eq(put_tag(c, t, 0, 0, 0, &ticket), 0);
        ck_assert_uint_gt(ticket, prev);
        ck_assert_uint_eq(ticket, rn_chan_written(c));
        prev = ticket;
    }
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.in, events_of(10, 13));
    ck_assert_uint_eq(st.pending, events_of(10, 13));
    ck_assert_uint_eq(st.next_seq, events_of(10, 13));
    ck_assert_uint_eq(rn_chan_lag(c, 0), events_of(10, 13));

    /* Byte for byte what was put, records in order, seqs from 0. */
    ck_assert_int_eq(rn_chan_take(c, 0, 1000, 0, &b, err), 1);
    ck_assert_uint_eq(b.seq, 0);
    ck_assert_uint_eq(b.end, events_of(10, 13));
    ck_assert_uint_eq(walk(&b, tags, 8), 3);
    ck_assert_uint_eq(tags[0], 10);
    ck_assert_uint_eq(tags[2], 12);
    rn_buf want = { 0 }, one_rec = { 0 };
    for (uint64_t t = 10; t < 13; t++) {
        make_rec(&one_rec, t);
        rn_buf_append(&want, one_rec.p, one_rec.len);
    }
    ck_assert_uint_eq(b.events.len, want.len);
    ck_assert_int_eq(memcmp(b.events.p, want.p, want.len), 0);
    ck_assert_uint_eq(rn_chan_lag(c, 0), 0);
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.pending, events_of(10, 13));   /* taken is not done */
    ck_assert_uint_eq(st.pending_bytes, want.len);

    rn_chan_done(c, 0, b.end);
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.pending_bytes, 0);
    ck_assert_int_eq(rn_chan_take(c, 0, 1000, 0, &b, err), 0);

    /* Counts are the caller's: a record needs one event at least. */
    ck_assert_int_eq(rn_chan_put(c, "x", 1, 0, 0, 0, 0, NULL, err), -1);
    ck_assert_int_eq(rn_chan_take(c, 5, 1, 0, &b, err), -1);

    rn_buf_free(&want);
    rn_buf_free(&one_rec);
    rn_buf_free(&b.events);
    close_ok(c);
}

START_TEST(memory_round_trip) { round_trip(NULL); }
END_TEST

START_TEST(file_round_trip) { round_trip(cdir); }
END_TEST

static void max_events(const char *dir)
{
    /* Tags 0, 3, 6...: every record holds 1 event; tags 2, 5: 3 events. */
    rn_chan *c = open_ok(&(copts){ .dir = dir });
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    uint64_t tags[8];
    put_tag(c, 2, 0, 0, 0, NULL);   /* 3 events */
    put_tag(c, 5, 0, 0, 0, NULL);   /* 3 */
    put_tag(c, 0, 0, 0, 0, NULL);   /* 1 */
    put_tag(c, 3, 0, 0, 0, NULL);   /* 1 */
    /* Fewer than one record allows: the whole record all the same. */
    ck_assert_int_eq(rn_chan_take(c, 0, 1, 0, &b, err), 1);
    ck_assert_uint_eq(b.count, 3);
    ck_assert_uint_eq(walk(&b, tags, 8), 1);
    /* 3 + 1 fit in 4, the next 1 does not... */
    ck_assert_int_eq(rn_chan_take(c, 0, 4, 0, &b, err), 1);
    ck_assert_uint_eq(b.count, 4);
    ck_assert_uint_eq(b.seq, 3);
    ck_assert_uint_eq(b.end, 7);
    ck_assert_uint_eq(walk(&b, tags, 8), 2);
    ck_assert_uint_eq(tags[0], 5);
    ck_assert_uint_eq(tags[1], 0);
    /* ...and records are never split. */
    ck_assert_int_eq(rn_chan_take(c, 0, 0, 0, &b, err), 1);
    ck_assert_uint_eq(b.count, 1);
    ck_assert_int_eq(rn_chan_take(c, 0, 100, 0, &b, err), 0);
    rn_buf_free(&b.events);
    close_ok(c);
}

START_TEST(memory_max_events) { max_events(NULL); }
END_TEST

START_TEST(file_max_events) { max_events(cdir); }
END_TEST

static void two_sinks(const char *dir)
{
    rn_chan *c = open_ok(&(copts){ .dir = dir, .nsinks = 2, .names = two });
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    rn_chan_stats st;
    uint64_t ta[16], tb[16];
    put_range(c, 0, 10);
    uint64_t all = events_of(0, 10);

    /* Each sink gets every record. */
    ck_assert_uint_eq(take_all(c, 0, 1000, 1, ta, 16), 10);
    ck_assert_uint_eq(rn_chan_lag(c, 0), 0);
    ck_assert_uint_eq(rn_chan_lag(c, 1), all);
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.pending, all);   /* b has not done anything */

    /* b done with the first 4 records: exactly those leave. */
    ck_assert_int_eq(rn_chan_take(c, 1, (uint32_t)events_of(0, 4), 0, &b, err), 1);
    ck_assert_uint_eq(walk(&b, tb, 16), 4);
    rn_chan_done(c, 1, b.end);
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.pending, events_of(4, 10));
    /* A done cursor never passes what the sink took, nor goes back. */
    rn_chan_done(c, 1, 1000);
    rn_chan_done(c, 1, 0);
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.pending, events_of(4, 10));

    ck_assert_uint_eq(take_all(c, 1, 2, 1, tb + 4, 12), 6);
    for (int i = 0; i < 10; i++) {
        ck_assert_uint_eq(ta[i], (uint64_t)i);
        ck_assert_uint_eq(tb[i], (uint64_t)i);
    }
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.pending, 0);
    rn_buf_free(&b.events);
    close_ok(c);
}

START_TEST(memory_two_sinks) { two_sinks(NULL); }
END_TEST

START_TEST(file_two_sinks) { two_sinks(cdir); }
END_TEST

static void *wake_later(void *arg)
{
    usleep(50000);
    put_tag(arg, 1, 0, 0, 0, NULL);
    return NULL;
}

START_TEST(take_waits)
{
    rn_chan *c = open_ok(&(copts){ 0 });
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    pthread_t t;

    int64_t t0 = mono_ms();
    ck_assert_int_eq(rn_chan_take(c, 0, 10, 30 * 1000000LL, &b, err), 0);
    ck_assert_int_ge(mono_ms() - t0, 29);

    pthread_create(&t, NULL, wake_later, c);
    ck_assert_int_eq(rn_chan_take(c, 0, 10, -1, &b, err), 1);
    ck_assert_uint_eq(b.count, rec_count(1));
    pthread_join(t, NULL);
    pthread_create(&t, NULL, wake_later, c);
    ck_assert_int_eq(rn_chan_take(c, 0, 10, 5000 * 1000000LL, &b, err), 1);
    pthread_join(t, NULL);
    rn_buf_free(&b.events);
    close_ok(c);
}
END_TEST

static int avail_calls, space_calls;

static void count_avail(void *arg) { (void)arg; __atomic_add_fetch(&avail_calls, 1, __ATOMIC_SEQ_CST); }
static void count_space(void *arg) { (void)arg; __atomic_add_fetch(&space_calls, 1, __ATOMIC_SEQ_CST); }

static void *take_forever(void *arg)
{
    rn_chan *c = arg;
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    intptr_t n = 0;
    while (rn_chan_take(c, 0, 10, -1, &b, err) == 1)
        n++;
    rn_buf_free(&b.events);
    return (void *)n;
}

START_TEST(shutdown_wakes)
{
    rn_chan *c = open_ok(&(copts){ .nsinks = 2, .names = two });
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    pthread_t t;
    void *res;
    avail_calls = 0;
    rn_chan_on_avail(c, 0, count_avail, NULL);
    rn_chan_on_avail(c, 1, count_avail, NULL);
    put_tag(c, 0, 0, 0, 0, NULL);
    ck_assert_int_eq(avail_calls, 2);
    ck_assert_int_eq(rn_chan_take(c, 0, 10, 0, &b, err), 1);

    pthread_create(&t, NULL, take_forever, c);
    usleep(20000);
    rn_chan_shutdown(c);
    pthread_join(t, &res);
    ck_assert_int_eq((int)(intptr_t)res, 0);
    ck_assert_int_eq(avail_calls, 4);
    /* Puts are refused; takes return what is there, then 0 without waiting. */
    ck_assert_int_eq(put_tag(c, 1, 0, 0, 1, NULL), RN_CHAN_CLOSED);
    ck_assert_int_eq(rn_chan_take(c, 1, 10, -1, &b, err), 1);
    ck_assert_int_eq(rn_chan_take(c, 1, 10, -1, &b, err), 0);
    rn_buf_free(&b.events);
    close_ok(c);
}
END_TEST

/* ---- capacity ---------------------------------------------------------- */

static void full_by(const char *dir, int bytes)
{
    /* Tag 2 is a record of 3 events and 115 bytes. */
    rn_buf r = { 0 };
    make_rec(&r, 2);
    copts o = { .dir = dir, .capacity = bytes ? 0 : 10, .max_bytes = bytes ? 3 * r.len + 10 : 0 };
    rn_chan *c = open_ok(&o);
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    rn_chan_stats st;
    space_calls = 0;
    rn_chan_on_space(c, count_space, NULL);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(put_tag(c, 2, 0, 0, 0, NULL), 0);
    ck_assert_int_eq(put_tag(c, 2, 0, 0, 0, NULL), RN_CHAN_FULL);
    /* A smaller record may still fit. */
    if (!bytes) {
        ck_assert_int_eq(put_tag(c, 0, 0, 0, 0, NULL), 0);
        ck_assert_int_eq(put_tag(c, 3, 0, 0, 0, NULL), RN_CHAN_FULL);
    }
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.pending, bytes ? 9 : 10);
    ck_assert_int_eq(space_calls, 0);
    /* Taking frees nothing; done does, and calls on_space once. */
    ck_assert_int_eq(rn_chan_take(c, 0, 3, 0, &b, err), 1);
    ck_assert_int_eq(space_calls, 0);
    rn_chan_done(c, 0, b.end);
    ck_assert_int_eq(space_calls, 1);
    ck_assert_int_eq(put_tag(c, 2, 0, 0, 0, NULL), 0);
    ck_assert_int_eq(rn_chan_take(c, 0, 3, 0, &b, err), 1);
    rn_chan_done(c, 0, b.end);
    ck_assert_int_eq(space_calls, 1);   /* no FULL since the last call */
    rn_buf_free(&r);
    rn_buf_free(&b.events);
    close_ok(c);
}

START_TEST(full_by_events) { full_by(NULL, 0); }
END_TEST

START_TEST(full_by_bytes) { full_by(NULL, 1); }
END_TEST

START_TEST(file_full)
{
    full_by(cdir, 0);
    snprintf(cdir, sizeof cdir, "%s/chan2", tdir);
    full_by(cdir, 1);
}
END_TEST

static int blocked_result = -9;

static void *blocking_put(void *arg)
{
    int r = put_tag(arg, 2, 0, 0, 1, NULL);
    __atomic_store_n(&blocked_result, r, __ATOMIC_SEQ_CST);
    return NULL;
}

START_TEST(blocking_put_released)
{
    rn_chan *c = open_ok(&(copts){ .capacity = 6 });
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    pthread_t t;
    put_tag(c, 2, 0, 0, 0, NULL);
    put_tag(c, 2, 0, 0, 0, NULL);
    blocked_result = -9;
    pthread_create(&t, NULL, blocking_put, c);
    usleep(50000);
    ck_assert_int_eq(__atomic_load_n(&blocked_result, __ATOMIC_SEQ_CST), -9);
    ck_assert_int_eq(rn_chan_take(c, 0, 3, 0, &b, err), 1);
    usleep(20000);
    ck_assert_int_eq(__atomic_load_n(&blocked_result, __ATOMIC_SEQ_CST), -9);
    rn_chan_done(c, 0, b.end);
    pthread_join(t, NULL);
    ck_assert_int_eq(blocked_result, 0);

    /* And a shutdown releases one with RN_CHAN_CLOSED. */
    blocked_result = -9;
    pthread_create(&t, NULL, blocking_put, c);
    usleep(30000);
    ck_assert_int_eq(__atomic_load_n(&blocked_result, __ATOMIC_SEQ_CST), -9);
    rn_chan_shutdown(c);
    pthread_join(t, NULL);
    ck_assert_int_eq(blocked_result, RN_CHAN_CLOSED);
    rn_buf_free(&b.events);
    close_ok(c);
}
END_TEST

START_TEST(oversize_when_empty)
{
    rn_chan *c = open_ok(&(copts){ .capacity = 2, .max_bytes = 10 });
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    /* 3 events and 115 bytes: over both limits, taken since nothing waits. */
    ck_assert_int_eq(put_tag(c, 2, 0, 0, 1, NULL), 0);
    ck_assert_int_eq(put_tag(c, 0, 0, 0, 0, NULL), RN_CHAN_FULL);
    ck_assert_int_eq(rn_chan_take(c, 0, 1, 0, &b, err), 1);
    ck_assert_uint_eq(b.count, 3);
    rn_chan_done(c, 0, b.end);
    ck_assert_int_eq(put_tag(c, 5, 0, 0, 1, NULL), 0);
    rn_buf_free(&b.events);
    close_ok(c);
}
END_TEST

/* ---- duplicates -------------------------------------------------------- */

static void dup_basic(const char *dir)
{
    rn_chan *c = open_ok(&(copts){ .dir = dir });
    rn_chan_stats st;
    uint64_t t1, t2;
    ck_assert_int_eq(put_tag(c, 2, 7, 1, 0, &t1), 0);
    ck_assert_int_eq(put_tag(c, 2, 7, 1, 0, &t2), RN_CHAN_DUP);
    ck_assert_uint_eq(t2, t1);     /* what a sync must reach for the first */
    ck_assert_int_eq(put_tag(c, 2, 8, 1, 0, NULL), 0);       /* other session */
    ck_assert_int_eq(put_tag(c, 2, 7, 2, 0, NULL), 0);
    ck_assert_int_eq(put_tag(c, 2, 0, 1, 0, NULL), 0);       /* no session */
    ck_assert_int_eq(put_tag(c, 2, 0, 1, 0, NULL), 0);
    ck_assert_int_eq(put_tag(c, 2, 8, 1, 1, NULL), RN_CHAN_DUP);
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.duplicates, 6);
    ck_assert_uint_eq(st.in, 15);
    ck_assert_uint_eq(st.pending, 15);
    close_ok(c);
}

START_TEST(memory_dup_basic) { dup_basic(NULL); }
END_TEST

START_TEST(file_dup_basic) { dup_basic(cdir); }
END_TEST

START_TEST(dup_window_edges)
{
    rn_chan *c = open_ok(&(copts){ 0 });
    for (uint64_t s = 1; s <= 2000; s++)
        ck_assert_int_eq(put_tag(c, 0, 9, s, 0, NULL), 0);
    ck_assert_int_eq(put_tag(c, 0, 9, 2000, 0, NULL), RN_CHAN_DUP);   /* highest */
    ck_assert_int_eq(put_tag(c, 0, 9, 1999, 0, NULL), RN_CHAN_DUP);
    ck_assert_int_eq(put_tag(c, 0, 9, 976, 0, NULL), RN_CHAN_DUP);    /* 1024 below */
    ck_assert_int_eq(put_tag(c, 0, 9, 975, 0, NULL), 0);              /* too old to know */
    ck_assert_int_eq(put_tag(c, 0, 9, 975, 0, NULL), 0);

    /* Holes in the window: a jump forward, then the serials skipped. */
    ck_assert_int_eq(put_tag(c, 0, 10, 5000, 0, NULL), 0);
    ck_assert_int_eq(put_tag(c, 0, 10, 4000, 0, NULL), 0);
    ck_assert_int_eq(put_tag(c, 0, 10, 4000, 0, NULL), RN_CHAN_DUP);
    ck_assert_int_eq(put_tag(c, 0, 10, 4001, 0, NULL), 0);
    ck_assert_int_eq(put_tag(c, 0, 10, 3976, 0, NULL), 0);            /* 1024 below */
    ck_assert_int_eq(put_tag(c, 0, 10, 3976, 0, NULL), RN_CHAN_DUP);
    /* A jump of more than the window leaves nothing behind in it... */
    ck_assert_int_eq(put_tag(c, 0, 10, 5000 + 1025, 0, NULL), 0);
    for (uint64_t s = 5001; s < 6025; s += 7)
        ck_assert_int_eq(put_tag(c, 0, 10, s, 0, NULL), 0);
    /* ...and what fell out of it is too old to know, every time. */
    ck_assert_int_eq(put_tag(c, 0, 10, 5000, 0, NULL), 0);
    ck_assert_int_eq(put_tag(c, 0, 10, 5000, 0, NULL), 0);
    /* A jump of exactly the window keeps the old highest at its edge. */
    ck_assert_int_eq(put_tag(c, 0, 12, 2, 0, NULL), 0);
    ck_assert_int_eq(put_tag(c, 0, 12, 2 + 1024, 0, NULL), 0);
    ck_assert_int_eq(put_tag(c, 0, 12, 2, 0, NULL), RN_CHAN_DUP);
    ck_assert_int_eq(put_tag(c, 0, 12, 1, 0, NULL), 0);
    /* Jumps of 63, 64 and 65 keep the bits where they belong. */
    ck_assert_int_eq(put_tag(c, 0, 11, 100, 0, NULL), 0);
    ck_assert_int_eq(put_tag(c, 0, 11, 163, 0, NULL), 0);
    ck_assert_int_eq(put_tag(c, 0, 11, 227, 0, NULL), 0);
    ck_assert_int_eq(put_tag(c, 0, 11, 292, 0, NULL), 0);
    for (uint64_t s = 90; s <= 292; s++) {
        int want = s == 100 || s == 163 || s == 227 || s == 292 ? RN_CHAN_DUP : 0;
        ck_assert_int_eq(put_tag(c, 0, 11, s, 0, NULL), want);
    }
    close_ok(c);
}
END_TEST

START_TEST(dup_lru)
{
    rn_chan *c = open_ok(&(copts){ 0 });
    for (uint64_t s = 1; s <= 4096; s++)
        ck_assert_int_eq(put_tag(c, 0, s, 1, 0, NULL), 0);
    /* Session 1 is used again, so session 2 is the least recently used. */
    ck_assert_int_eq(put_tag(c, 0, 1, 1, 0, NULL), RN_CHAN_DUP);
    ck_assert_int_eq(put_tag(c, 0, 4097, 1, 0, NULL), 0);
    ck_assert_int_eq(put_tag(c, 0, 1, 1, 0, NULL), RN_CHAN_DUP);
    ck_assert_int_eq(put_tag(c, 0, 3, 1, 0, NULL), RN_CHAN_DUP);
    ck_assert_int_eq(put_tag(c, 0, 4097, 1, 0, NULL), RN_CHAN_DUP);
    ck_assert_int_eq(put_tag(c, 0, 2, 1, 0, NULL), 0);      /* forgotten */
    close_ok(c);
}
END_TEST

/* ---- file channel: restarts --------------------------------------------- */

START_TEST(reopen_pending)
{
    rn_chan *c = open_ok(&(copts){ .dir = cdir });
    uint64_t tags[32];
    rn_chan_stats st;
    put_range(c, 0, 20);
    close_ok(c);
    ck_assert_int_eq(count_files("checkpoint"), 1);
    ck_assert_int_eq(count_files("lock"), 1);

    c = open_ok(&(copts){ .dir = cdir });
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.recovered, events_of(0, 20));
    ck_assert_uint_eq(st.pending, events_of(0, 20));
    ck_assert_uint_eq(st.next_seq, events_of(0, 20));
    ck_assert_uint_eq(st.in, 0);
    ck_assert_msg(strstr(warns, "events pending from the last run"), "%s", warns);
    ck_assert_uint_eq(take_all(c, 0, 7, 0, tags, 32), 20);
    for (int i = 0; i < 20; i++)
        ck_assert_uint_eq(tags[i], (uint64_t)i);
    /* New records follow on. */
    put_range(c, 20, 22);
    ck_assert_uint_eq(take_all(c, 0, 7, 1, tags, 32), 2);
    ck_assert_uint_eq(tags[0], 20);
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.pending, 0);
    close_ok(c);

    warns[0] = '\0';
    c = open_ok(&(copts){ .dir = cdir });
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.recovered, 0);
    ck_assert_uint_eq(st.next_seq, events_of(0, 22));
    ck_assert_str_eq(warns, "");
    close_ok(c);
}
END_TEST

START_TEST(done_cursors_survive)
{
    static const char *const three[] = { "a", "b", "c" };
    rn_chan *c = open_ok(&(copts){ .dir = cdir, .nsinks = 2, .names = two });
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    uint64_t tags[32];
    put_range(c, 0, 10);
    ck_assert_uint_eq(take_all(c, 0, 1000, 1, NULL, 0), 10);
    ck_assert_int_eq(rn_chan_take(c, 1, (uint32_t)events_of(0, 5), 0, &b, err), 1);
    rn_chan_done(c, 1, b.end);
    ck_assert_int_eq(rn_chan_checkpoint(c, err), 0);
    close_ok(c);

    /* a is done with all, b with 5; c is new and starts at the oldest. */
    c = open_ok(&(copts){ .dir = cdir, .nsinks = 3, .names = three });
    ck_assert_uint_eq(rn_chan_lag(c, 0), 0);
    ck_assert_uint_eq(rn_chan_lag(c, 1), events_of(5, 10));
    ck_assert_uint_eq(rn_chan_lag(c, 2), events_of(5, 10));
    ck_assert_uint_eq(take_all(c, 0, 1000, 0, tags, 32), 0);
    ck_assert_uint_eq(take_all(c, 1, 1000, 1, tags, 32), 5);
    ck_assert_uint_eq(tags[0], 5);
    ck_assert_uint_eq(take_all(c, 2, 1000, 1, tags, 32), 5);
    ck_assert_uint_eq(tags[0], 5);
    close_ok(c);

    /* Sink names the checkpoint does not know at all: they speak for it. */
    static const char *const other[] = { "x" };
    c = open_ok(&(copts){ .dir = cdir, .nsinks = 1, .names = other });
    ck_assert_uint_eq(rn_chan_lag(c, 0), 0);
    close_ok(c);
    rn_buf_free(&b.events);
}
END_TEST

/* Run fn in a child that dies without closing, as after kill -9. */
static void in_crashing_child(void (*fn)(void))
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed: %d", st);
}

static rn_chan *child_open(void)
{
    char err[RN_ERRLEN];
    rn_chan *c = open_o(&(copts){ .dir = cdir, .segment_bytes = 1024 }, err);
    if (!c)
        _exit(1);
    return c;
}

static void child_put(rn_chan *c, uint64_t t, uint64_t session, uint64_t serial)
{
    rn_buf b = { 0 };
    char err[RN_ERRLEN];
    make_rec(&b, t);
    if (rn_chan_put(c, b.p, b.len, rec_count(t), session, serial, 0, NULL, err) != 0)
        _exit(2);
    rn_buf_free(&b);
}

static void child_at_least_once(void)
{
    rn_chan *c = child_open();
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    for (uint64_t t = 0; t < 10; t++)
        child_put(c, t, 0, 0);
    if (rn_chan_take(c, 0, (uint32_t)events_of(0, 4), 0, &b, err) != 1)
        _exit(3);
    rn_chan_done(c, 0, b.end);
    if (rn_chan_checkpoint(c, err) < 0)
        _exit(4);
    /* Done with everything, but no checkpoint says so. */
    while (rn_chan_take(c, 0, 1000, 0, &b, err) == 1)
        rn_chan_done(c, 0, b.end);
}

START_TEST(done_after_checkpoint_comes_back)
{
    uint64_t tags[32];
    rn_chan_stats st;
    in_crashing_child(child_at_least_once);
    rn_chan *c = open_ok(&(copts){ .dir = cdir });
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.recovered, events_of(4, 10));
    ck_assert_uint_eq(take_all(c, 0, 1000, 1, tags, 32), 6);
    ck_assert_uint_eq(tags[0], 4);
    ck_assert_uint_eq(tags[5], 9);
    close_ok(c);
}
END_TEST

static void child_dups(void)
{
    rn_chan *c = child_open();
    char err[RN_ERRLEN];
    for (uint64_t s = 1; s <= 5; s++)
        child_put(c, s, 42, s);
    if (rn_chan_checkpoint(c, err) < 0)
        _exit(4);
    for (uint64_t s = 6; s <= 10; s++)     /* only in the WAL */
        child_put(c, s, 42, s);
    child_put(c, 11, 43, 100);
}

START_TEST(dup_table_survives)
{
    in_crashing_child(child_dups);
    rn_chan *c = open_ok(&(copts){ .dir = cdir });
    rn_chan_stats st;
    for (uint64_t s = 1; s <= 10; s++)
        ck_assert_int_eq(put_tag(c, s, 42, s, 0, NULL), RN_CHAN_DUP);
    ck_assert_int_eq(put_tag(c, 0, 43, 100, 0, NULL), RN_CHAN_DUP);
    ck_assert_int_eq(put_tag(c, 0, 42, 11, 0, NULL), 0);
    /* Even once every record has left and its segment is gone. */
    ck_assert_uint_eq(take_all(c, 0, 1000, 1, NULL, 0), 12);
    close_ok(c);
    c = open_ok(&(copts){ .dir = cdir, .segment_bytes = 1024 });
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.pending, 0);
    for (uint64_t s = 1; s <= 11; s++)
        ck_assert_int_eq(put_tag(c, 0, 42, s, 0, NULL), RN_CHAN_DUP);
    ck_assert_int_eq(put_tag(c, 0, 43, 100, 0, NULL), RN_CHAN_DUP);
    close_ok(c);
}
END_TEST

START_TEST(segments_roll_and_go)
{
    copts o = { .dir = cdir, .segment_bytes = 1024, .nsinks = 2, .names = two };
    rn_chan *c = open_ok(&o);
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    uint64_t tags[128];
    put_range(c, 0, 100);
    size_t nseg = count_files("wal-*");
    ck_assert_uint_ge(nseg, 10);
    ck_assert_uint_eq(count_files("wal-00000000000000000000"), 1);
    /* No segment passes the limit unless one record alone does. */
    char path[256];
    seg_path(path, sizeof path, 0);
    ck_assert_int_le(file_size(path), 1024);

    /* Nothing leaves while sink b has done nothing. */
    ck_assert_uint_eq(take_all(c, 0, 1000, 1, NULL, 0), 100);
    ck_assert_int_eq(rn_chan_checkpoint(c, err), 0);
    ck_assert_uint_eq(count_files("wal-*"), nseg);
    /* b done with half: about half the segments go. */
    ck_assert_int_eq(rn_chan_take(c, 1, (uint32_t)events_of(0, 50), 0, &b, err), 1);
    rn_chan_done(c, 1, b.end);
    ck_assert_int_eq(rn_chan_checkpoint(c, err), 0);
    size_t left = count_files("wal-*");
    ck_assert_uint_lt(left, nseg * 2 / 3);
    ck_assert_uint_gt(left, nseg / 3);
    ck_assert_uint_eq(count_files("wal-00000000000000000000"), 0);
    close_ok(c);

    c = open_ok(&o);
    ck_assert_uint_eq(take_all(c, 1, 7, 1, tags, 128), 50);
    for (int i = 0; i < 50; i++)
        ck_assert_uint_eq(tags[i], (uint64_t)(50 + i));
    ck_assert_int_eq(rn_chan_checkpoint(c, err), 0);
    ck_assert_uint_eq(count_files("wal-*"), 1);    /* only the active one */
    put_range(c, 100, 110);
    ck_assert_uint_eq(take_all(c, 1, 7, 1, tags, 128), 10);
    ck_assert_uint_eq(tags[0], 100);
    rn_buf_free(&b.events);
    close_ok(c);
}
END_TEST

START_TEST(big_records)
{
    /* Records larger than recovery's 64 KiB read window, cut mid-way too. */
    size_t sizes[] = { 300000, 70000, 200000 };
    char *data[3];
    char err[RN_ERRLEN], path[256];
    rn_chan_batch b = { 0 };
    rn_chan *c = open_ok(&(copts){ .dir = cdir });
    for (int i = 0; i < 3; i++) {
        data[i] = malloc(sizes[i]);
        for (size_t j = 0; j < sizes[i]; j++)
            data[i][j] = (char)(j * 13 + (size_t)i);
        ck_assert_int_eq(rn_chan_put(c, data[i], sizes[i], 2, 0, 0, 0, NULL, err), 0);
    }
    close_ok(c);
    seg_path(path, sizeof path, 1);
    ck_assert_int_eq(truncate(path, file_size(path) - 100000), 0);
    c = open_ok(&(copts){ .dir = cdir });
    ck_assert_msg(strstr(warns, "byte offset"), "%s", warns);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(rn_chan_take(c, 0, 1, 0, &b, err), 1);
        ck_assert_uint_eq(b.count, 2);
        ck_assert_uint_eq(b.events.len, sizes[i]);
        ck_assert_int_eq(memcmp(b.events.p, data[i], sizes[i]), 0);
    }
    ck_assert_int_eq(rn_chan_take(c, 0, 1, 0, &b, err), 0);
    close_ok(c);
    for (int i = 0; i < 3; i++)
        free(data[i]);
    rn_buf_free(&b.events);
}
END_TEST

START_TEST(damage_found_by_take)
{
    /* A bad sector under a pending record: take says where, and moves on
     * to nothing (the cursor stays, so the sink may stop or retry). */
    char err[RN_ERRLEN] = "", path[256];
    rn_chan_batch b = { 0 };
    rn_chan *c = open_ok(&(copts){ .dir = cdir });
    put_range(c, 0, 3);
    seg_path(path, sizeof path, 1);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, "\xee", 1, file_size(path) - 3), 1);
    close(fd);
    ck_assert_int_eq(rn_chan_take(c, 0, 1, 0, &b, err), 1);
    ck_assert_int_eq(rn_chan_take(c, 0, 1, 0, &b, err), 1);
    ck_assert_int_eq(rn_chan_take(c, 0, 1, 0, &b, err), -1);
    ck_assert_msg(strstr(err, path) && strstr(err, "CRC mismatch")
                  && strstr(err, "byte offset"), "%s", err);
    ck_assert_uint_eq(rn_chan_lag(c, 0), rec_count(2));
    rn_buf_free(&b.events);
    close_ok(c);
}
END_TEST

static void check_reopen_after_damage(size_t want_records, const char *want_warn)
{
    uint64_t tags[64];
    rn_chan *c = open_ok(&(copts){ .dir = cdir });
    ck_assert_msg(strstr(warns, want_warn), "warnings: %s", warns);
    ck_assert_uint_eq(take_all(c, 0, 1000, 0, tags, 64), want_records);
    for (size_t i = 0; i < want_records; i++)
        ck_assert_uint_eq(tags[i], i);
    /* The channel goes on where the good records end. */
    put_tag(c, 99, 0, 0, 0, NULL);
    ck_assert_uint_eq(take_all(c, 0, 1000, 1, tags, 64), 1);
    ck_assert_uint_eq(tags[0], 99);
    close_ok(c);
    warns[0] = '\0';
    c = open_ok(&(copts){ .dir = cdir });
    ck_assert_str_eq(warns, "");
    close_ok(c);
}

START_TEST(torn_tail_truncated)
{
    char path[256];
    rn_chan *c = open_ok(&(copts){ .dir = cdir });
    put_range(c, 0, 5);
    close_ok(c);
    unlink(strcat(strcpy(path, cdir), "/checkpoint"));   /* as if never saved */
    seg_path(path, sizeof path, 1);
    off_t size = file_size(path);
    ck_assert_int_eq(truncate(path, size - 10), 0);
    char want[300];
    rn_buf r = { 0 };
    make_rec(&r, 4);
    snprintf(want, sizeof want, "torn record at byte offset %lld",
             (long long)(size - 36 - (off_t)r.len));
    check_reopen_after_damage(4, want);
    rn_buf_free(&r);
}
END_TEST

START_TEST(torn_tail_after_checkpoint)
{
    /* The checkpoint had seen record 4, the disk lost it: seqs go on past it. */
    char path[256];
    rn_chan_stats st;
    rn_chan *c = open_ok(&(copts){ .dir = cdir });
    put_range(c, 0, 5);
    close_ok(c);
    seg_path(path, sizeof path, 1);
    ck_assert_int_eq(truncate(path, file_size(path) - 1), 0);
    c = open_ok(&(copts){ .dir = cdir });
    ck_assert_msg(strstr(warns, "byte offset"), "%s", warns);
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.next_seq, events_of(0, 5));
    ck_assert_uint_eq(st.pending, events_of(0, 4));
    close_ok(c);
}
END_TEST

START_TEST(garbage_tail_truncated)
{
    char path[256];
    rn_chan *c = open_ok(&(copts){ .dir = cdir });
    put_range(c, 0, 5);
    close_ok(c);
    seg_path(path, sizeof path, 1);
    FILE *f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 100; i++)
        fputc(i * 37, f);
    fclose(f);
    check_reopen_after_damage(5, "byte offset");
}
END_TEST

START_TEST(zero_tail_truncated)
{
    /* A file system may leave a crashed file's tail as zeroes. */
    char path[256];
    rn_chan *c = open_ok(&(copts){ .dir = cdir });
    put_range(c, 0, 5);
    close_ok(c);
    seg_path(path, sizeof path, 1);
    ck_assert_int_eq(truncate(path, file_size(path) + 4096), 0);
    check_reopen_after_damage(5, "byte offset");
}
END_TEST

START_TEST(damaged_middle_segment)
{
    /* Damage inside an older segment: the damaged record is skipped, the
     * rest of that segment and the later segments still count. */
    char path[256], err[RN_ERRLEN];
    uint64_t tags[64];
    rn_chan *c = open_ok(&(copts){ .dir = cdir, .segment_bytes = 400 });
    put_range(c, 0, 30);
    close_ok(c);
    seg_path(path, sizeof path, 0);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, "\xff", 1, 8 + 36 + 5), 1);   /* record 0's events */
    close(fd);
    c = open_ok(&(copts){ .dir = cdir, .segment_bytes = 400 });
    ck_assert_msg(strstr(warns, "damaged record at byte offset 8 (CRC mismatch)"), "%s", warns);
    ck_assert_msg(!strstr(warns, "truncated"), "%s", warns);
    size_t n = take_all(c, 0, 1000, 1, tags, 64);
    ck_assert_uint_eq(n, 29);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(tags[i], 1 + i);
    ck_assert_int_eq(rn_chan_checkpoint(c, err), 0);
    close_ok(c);
}
END_TEST

START_TEST(damage_in_last_segment_skipped)
{
    /* One flipped byte in the middle of the active segment: only the record
     * that holds it is lost, the whole records after it are kept, and the
     * warning says where and how much was skipped. */
    char path[256], want[300];
    uint64_t tags[64];
    rn_buf r = { 0 };
    rn_chan *c = open_ok(&(copts){ .dir = cdir });
    put_range(c, 0, 50);
    close_ok(c);
    unlink(strcat(strcpy(path, cdir), "/checkpoint"));   /* everything pending */
    off_t at = 8;
    for (uint64_t t = 0; t < 20; t++) {
        make_rec(&r, t);
        at += 36 + (off_t)r.len;
    }
    make_rec(&r, 20);
    seg_path(path, sizeof path, 1);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, "\x5a", 1, at + 40), 1);
    close(fd);
    off_t size = file_size(path);
    c = open_ok(&(copts){ .dir = cdir });
    snprintf(want, sizeof want, "damaged record at byte offset %lld (CRC mismatch): skipped "
             "%zu bytes to the next whole record, at byte offset %lld; %u events lost",
             (long long)at, 36 + r.len, (long long)(at + 36 + (off_t)r.len), rec_count(20));
    ck_assert_msg(strstr(warns, want), "warnings: %s\nwanted: %s", warns, want);
    ck_assert_uint_eq(file_size(path), size);
    size_t n = take_all(c, 0, 1000, 1, tags, 64);
    ck_assert_uint_eq(n, 49);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(tags[i], i < 20 ? i : i + 1);
    /* The channel goes on after the last record. */
    put_tag(c, 99, 0, 0, 0, NULL);
    ck_assert_uint_eq(take_all(c, 0, 1000, 1, tags, 64), 1);
    ck_assert_uint_eq(tags[0], 99);
    close_ok(c);
    rn_buf_free(&r);
}
END_TEST

START_TEST(torn_segment_header)
{
    char path[256];
    rn_chan *c = open_ok(&(copts){ .dir = cdir });
    put_range(c, 0, 3);
    close_ok(c);
    /* A crash just after a roll had created the file. */
    snprintf(path, sizeof path, "%s/wal-%020llu", cdir,
             (unsigned long long)events_of(0, 3));
    FILE *f = fopen(path, "w");
    fputs("RNW", f);
    fclose(f);
    check_reopen_after_damage(3, "torn segment header");
}
END_TEST

START_TEST(damaged_checkpoint_is_an_error)
{
    char path[256], err[RN_ERRLEN] = "";
    rn_chan *c = open_ok(&(copts){ .dir = cdir });
    put_range(c, 0, 3);
    close_ok(c);
    snprintf(path, sizeof path, "%s/checkpoint", cdir);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, "\x01", 1, 14), 1);
    close(fd);
    ck_assert_ptr_null(open_o(&(copts){ .dir = cdir }, err));
    ck_assert_msg(strstr(err, path) && strstr(err, "checksum"), "%s", err);
    ck_assert_int_eq(truncate(path, 10), 0);
    ck_assert_ptr_null(open_o(&(copts){ .dir = cdir }, err));
    ck_assert_msg(strstr(err, path), "%s", err);
    /* Not ours at all. */
    ck_assert_int_eq(truncate(path, 0), 0);
    ck_assert_ptr_null(open_o(&(copts){ .dir = cdir }, err));
    ck_assert_msg(strstr(err, path), "%s", err);
}
END_TEST

START_TEST(foreign_segment_is_an_error)
{
    char path[256], err[RN_ERRLEN] = "";
    ck_assert_int_eq(mkdir(cdir, 0755), 0);
    snprintf(path, sizeof path, "%s/wal-00000000000000000000", cdir);
    FILE *f = fopen(path, "w");
    fputs("hello, world\n", f);
    fclose(f);
    ck_assert_ptr_null(open_o(&(copts){ .dir = cdir }, err));
    ck_assert_msg(strstr(err, path) && strstr(err, "not a runnel"), "%s", err);
}
END_TEST

START_TEST(in_use)
{
    char err[RN_ERRLEN] = "";
    rn_chan *c = open_ok(&(copts){ .dir = cdir });
    ck_assert_ptr_null(open_o(&(copts){ .dir = cdir }, err));
    ck_assert_msg(strstr(err, "in use by another process") && strstr(err, cdir), "%s", err);
    close_ok(c);
    c = open_ok(&(copts){ .dir = cdir });
    close_ok(c);
}
END_TEST

START_TEST(bad_options)
{
    char err[RN_ERRLEN] = "";
    static const char *const same[] = { "a", "a" };
    static const char *const empty[] = { "" };
    ck_assert_ptr_null(open_o(&(copts){ .nsinks = 2, .names = same }, err));
    ck_assert_msg(strstr(err, "twice"), "%s", err);
    ck_assert_ptr_null(open_o(&(copts){ .nsinks = 1, .names = empty }, err));
    ck_assert_ptr_null(open_o(&(copts){ .nsinks = 33, .names = two }, err));
    ck_assert_ptr_null(open_o(&(copts){ .dir = "/proc/nonexistent/chan" }, err));
    ck_assert_msg(strstr(err, "/proc/nonexistent/chan"), "%s", err);
}
END_TEST

/* ---- kill -9 --------------------------------------------------------------- */

/* The child puts records tagged round << 32 | serial, and writes each serial
 * to the pipe once put has returned, until it is killed. */
static void crash_child(int round, int wfd)
{
    char err[RN_ERRLEN];
    rn_chan *c = open_o(&(copts){ .dir = cdir, .segment_bytes = 8192 }, err);
    if (!c)
        _exit(1);
    rn_buf b = { 0 };
    for (uint64_t s = 1; ; s++) {
        uint64_t t = (uint64_t)round << 32 | s;
        make_rec(&b, t);
        if (rn_chan_put(c, b.p, b.len, rec_count(t), (uint64_t)round + 1, s, 1, NULL, err) != 0)
            _exit(2);
        if (s % 200 == 0 && rn_chan_checkpoint(c, err) < 0)
            _exit(3);
        if (write(wfd, &s, sizeof s) != sizeof s)
            _exit(4);
    }
}

START_TEST(kill_9_loses_nothing)
{
    srand((unsigned)getpid());
    for (int round = 0; round < 6; round++) {
        int pfd[2];
        ck_assert_int_eq(pipe(pfd), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(pfd[0]);
            crash_child(round, pfd[1]);
        }
        close(pfd[1]);
        /* Let it start, then kill it at a random moment. */
        uint64_t s, reported = 0;
        ck_assert_int_eq(read(pfd[0], &s, sizeof s), sizeof s);
        usleep(1000 + (unsigned)(rand() % 40000));
        kill(pid, SIGKILL);
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFSIGNALED(st));
        reported = s;
        while (read(pfd[0], &s, sizeof s) == sizeof s)
            reported = s;
        close(pfd[0]);
        ck_assert_uint_gt(reported, 0);

        /* Every record reported is there, intact, in order; the one being put
         * when the kill came may be there too. */
        rn_chan *c = open_ok(&(copts){ .dir = cdir, .segment_bytes = 8192 });
        rn_chan_batch b = { 0 };
        char err[RN_ERRLEN];
        uint64_t next = 1, tags[1024];
        int r;
        while ((r = rn_chan_take(c, 0, 500, 0, &b, err)) == 1) {
            size_t n = walk(&b, tags, 1024);
            ck_assert_uint_le(n, 1024);
            for (size_t i = 0; i < n; i++) {
                ck_assert_uint_eq(tags[i] >> 32, (uint64_t)round);
                ck_assert_uint_eq(tags[i] & 0xffffffff, next);
                next++;
            }
            rn_chan_done(c, 0, b.end);
        }
        ck_assert_msg(r == 0, "%s", err);
        ck_assert_msg(next - 1 >= reported && next - 1 <= reported + 1,
                      "round %d: %llu records back, %llu reported", round,
                      (unsigned long long)(next - 1), (unsigned long long)reported);
        /* And the duplicate table knows them all. */
        ck_assert_int_eq(put_tag(c, 0, (uint64_t)round + 1, reported, 0, NULL), RN_CHAN_DUP);
        ck_assert_int_eq(put_tag(c, 0, (uint64_t)round + 1, reported > 1000 ? reported - 1000 : 1,
                                 0, NULL), RN_CHAN_DUP);
        ck_assert_uint_eq(take_all(c, 0, 1000, 1, NULL, 0), 0);
        rn_buf_free(&b.events);
        close_ok(c);
    }
}
END_TEST

/* ---- threads ------------------------------------------------------------- */

#define NREC 100000

typedef struct trun {
    rn_chan *c;
    size_t sink;
    uint64_t records, events, tagsum;
    int in_order;
} trun;

static void *putter(void *arg)
{
    trun *x = arg;
    rn_buf b = { 0 };
    char err[RN_ERRLEN];
    for (uint64_t t = 0; t < NREC; t++) {
        make_rec(&b, t);
        int r = rn_chan_put(x->c, b.p, b.len, rec_count(t), 0, 0, 1, NULL, err);
        if (r != 0) {
            fprintf(stderr, "put: %d %s\n", r, err);
            abort();
        }
    }
    rn_buf_free(&b);
    rn_chan_shutdown(x->c);
    return NULL;
}

static void *taker(void *arg)
{
    trun *x = arg;
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    uint64_t tags[512];
    int r;
    x->in_order = 1;
    while ((r = rn_chan_take(x->c, x->sink, 300, -1, &b, err)) == 1) {
        size_t n = walk(&b, tags, 512);
        for (size_t i = 0; i < n && i < 512; i++) {
            if (tags[i] != x->records + i)
                x->in_order = 0;
            x->tagsum += tags[i];
        }
        x->records += n;
        x->events += b.count;
        rn_chan_done(x->c, x->sink, b.end);
    }
    if (r < 0) {
        fprintf(stderr, "take: %s\n", err);
        abort();
    }
    rn_buf_free(&b.events);
    return NULL;
}

static void threads(const char *dir)
{
    rn_chan *c = open_ok(&(copts){ .dir = dir, .nsinks = 2, .names = two,
                                   .capacity = 2000, .segment_bytes = 1 << 20 });
    trun p = { .c = c }, t0 = { .c = c, .sink = 0 }, t1 = { .c = c, .sink = 1 };
    pthread_t tp, ta, tb;
    pthread_create(&ta, NULL, taker, &t0);
    pthread_create(&tb, NULL, taker, &t1);
    pthread_create(&tp, NULL, putter, &p);
    pthread_join(tp, NULL);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    uint64_t sum = (uint64_t)NREC * (NREC - 1) / 2;
    for (int i = 0; i < 2; i++) {
        trun *x = i ? &t1 : &t0;
        ck_assert_uint_eq(x->records, NREC);
        ck_assert_uint_eq(x->events, events_of(0, NREC));
        ck_assert_uint_eq(x->tagsum, sum);
        ck_assert(x->in_order);
    }
    rn_chan_stats st;
    rn_chan_get_stats(c, &st);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.in, events_of(0, NREC));
    close_ok(c);
}

START_TEST(memory_threads) { threads(NULL); }
END_TEST

START_TEST(file_threads) { threads(cdir); }
END_TEST

static int putting;

static void *syncer(void *arg)
{
    rn_chan *c = arg;
    char err[RN_ERRLEN];
    uint64_t prev = 0, synced;
    int n = 0;
    while (__atomic_load_n(&putting, __ATOMIC_ACQUIRE) || n < 2) {
        ck_assert_msg(rn_chan_sync(c, &synced, err) == 0, "%s", err);
        ck_assert_uint_ge(synced, prev);
        ck_assert_uint_le(synced, rn_chan_written(c));
        prev = synced;
        if (++n % 16 == 0)
            ck_assert_msg(rn_chan_checkpoint(c, err) == 0, "%s", err);
    }
    return (void *)(intptr_t)n;
}

START_TEST(sync_while_putting)
{
    rn_chan *c = open_ok(&(copts){ .dir = cdir, .segment_bytes = 4096 });
    char err[RN_ERRLEN];
    pthread_t t;
    void *res;
    uint64_t prev = 0, ticket, synced;
    __atomic_store_n(&putting, 1, __ATOMIC_RELEASE);
    pthread_create(&t, NULL, syncer, c);
    pthread_t t2;
    pthread_create(&t2, NULL, syncer, c);   /* two at once must be fine too */
    for (uint64_t i = 0; i < 3000; i++) {
        ck_assert_int_eq(put_tag(c, i, 1, i + 1, 0, &ticket), 0);
        ck_assert_uint_gt(ticket, prev);
        prev = ticket;
        if (i % 3 == 0)
            take_all(c, 0, 100, 1, NULL, 0);
    }
    __atomic_store_n(&putting, 0, __ATOMIC_RELEASE);
    pthread_join(t, &res);
    pthread_join(t2, NULL);
    ck_assert_int_ge((int)(intptr_t)res, 2);
    ck_assert_int_eq(rn_chan_sync(c, &synced, err), 0);
    ck_assert_uint_ge(synced, prev);
    close_ok(c);

    /* A memory channel's sync is immediate. */
    c = open_ok(&(copts){ 0 });
    put_tag(c, 1, 0, 0, 0, &ticket);
    ck_assert_int_eq(rn_chan_sync(c, &synced, err), 0);
    ck_assert_uint_eq(synced, ticket);
    close_ok(c);
}
END_TEST

/* ---- throughput (printed, not asserted) ---------------------------------- */

/* Put records of `per` events of 100 bytes, taken in batches of 1000
 * events, for about `ms` milliseconds. */
static void bench(const char *dir, uint32_t per, int sync, int64_t ms)
{
    rn_chan *c = open_ok(&(copts){ .dir = dir, .capacity = 100000 });
    rn_buf rec = { 0 };
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    for (uint32_t k = 0; k < per; k++) {
        unsigned char ev[104] = { 0, 0, 0, 100 };
        memset(ev + 4, 'a' + k % 26, 100);
        rn_buf_append(&rec, ev, sizeof ev);
    }
    uint64_t events = 0, loops = 0;
    int64_t t0 = rn_mono_ns();
    while (rn_mono_ns() - t0 < ms * 1000000) {
        for (uint32_t i = 0; i < 1000 / per + 1; i++) {
            /* Not ck_assert: it costs a write(2) per call. */
            if (rn_chan_put(c, rec.p, rec.len, per, 0, 0, 1, NULL, err) != 0
                || (sync && rn_chan_sync(c, NULL, err) < 0))
                ck_abort_msg("%s", err);
        }
        while (rn_chan_take(c, 0, 1000, 0, &b, err) == 1) {
            events += b.count;
            rn_chan_done(c, 0, b.end);
        }
        if (dir && ++loops % 64 == 0)
            ck_assert_int_eq(rn_chan_checkpoint(c, err), 0);
    }
    double s = (double)(rn_mono_ns() - t0) / 1e9;
    fprintf(stderr, "check_chan: %-6s %4u events/record%s: %8.0f events/s, %6.1f MB/s\n",
            dir ? "file" : "memory", per, sync ? " + sync each" : "",
            (double)events / s, (double)events * 104 / s / 1e6);
    rn_buf_free(&rec);
    rn_buf_free(&b.events);
    close_ok(c);
}

START_TEST(throughput)
{
    bench(NULL, 1000, 0, 300);
    bench(NULL, 1, 0, 300);
    bench(cdir, 1000, 0, 300);
    bench(cdir, 1, 0, 300);
    bench(cdir, 1000, 1, 300);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chan");
    TCase *tc = tcase_create("put_take");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, memory_round_trip);
    tcase_add_test(tc, file_round_trip);
    tcase_add_test(tc, memory_max_events);
    tcase_add_test(tc, file_max_events);
    tcase_add_test(tc, memory_two_sinks);
    tcase_add_test(tc, file_two_sinks);
    tcase_add_test(tc, take_waits);
    tcase_add_test(tc, shutdown_wakes);
    tcase_add_test(tc, bad_options);
    suite_add_tcase(s, tc);

    tc = tcase_create("capacity");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, full_by_events);
    tcase_add_test(tc, full_by_bytes);
    tcase_add_test(tc, file_full);
    tcase_add_test(tc, blocking_put_released);
    tcase_add_test(tc, oversize_when_empty);
    suite_add_tcase(s, tc);

    tc = tcase_create("duplicates");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, memory_dup_basic);
    tcase_add_test(tc, file_dup_basic);
    tcase_add_test(tc, dup_window_edges);
    tcase_add_test(tc, dup_lru);
    suite_add_tcase(s, tc);

    tc = tcase_create("restart");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, reopen_pending);
    tcase_add_test(tc, done_cursors_survive);
    tcase_add_test(tc, done_after_checkpoint_comes_back);
    tcase_add_test(tc, dup_table_survives);
    tcase_add_test(tc, segments_roll_and_go);
    tcase_add_test(tc, in_use);
    suite_add_tcase(s, tc);

    tc = tcase_create("recovery");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, torn_tail_truncated);
    tcase_add_test(tc, torn_tail_after_checkpoint);
    tcase_add_test(tc, garbage_tail_truncated);
    tcase_add_test(tc, zero_tail_truncated);
    tcase_add_test(tc, damaged_middle_segment);
    tcase_add_test(tc, damage_in_last_segment_skipped);
    tcase_add_test(tc, torn_segment_header);
    tcase_add_test(tc, big_records);
    tcase_add_test(tc, damage_found_by_take);
    tcase_add_test(tc, damaged_checkpoint_is_an_error);
    tcase_add_test(tc, foreign_segment_is_an_error);
    tcase_add_test(tc, kill_9_loses_nothing);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, memory_threads);
    tcase_add_test(tc, file_threads);
    tcase_add_test(tc, sync_while_putting);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("throughput");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, throughput);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
