/* check_topn.c -- unit tests for lib/topn: the order of entries and top-N
 * selection with ties, windows merged from partial rows and when they are
 * due, the output forms (RESP with odd keys), and Space-Saving's guarantees
 * on a Zipf stream against exact counts. RN_BENCH=1 also measures updates/s. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "window/window.h"

#define S(lit) ((rn_str){ lit, sizeof lit - 1 })
#define I(v) ((rn_value){ 0, (v), 0, 0 })
#define F(v) ((rn_value){ 1, 0, (v), 0 })
#define D(m, sc) ((rn_value){ 0, (m), 0, (sc) })   /* m / 10^sc */
#define SEC 1000000000LL
#define T0 (1795419600LL * SEC)    /* 2026-11-23T07:40:00Z */

/* A small deterministic generator (splitmix64): the same stream everywhere. */
static uint64_t rng_state;
static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- order and selection ------------------------------------------------- */

START_TEST(values_and_order)
{
    rn_value v = rn_topn_value_add(I(INT64_MAX), I(1));
    ck_assert(v.is_float && v.f == 9223372036854775808.0);
    v = rn_topn_value_add(I(-5), I(7));
    ck_assert(!v.is_float && v.i == 2);
    v = rn_topn_value_add(I(1), F(0.5));
    ck_assert(v.is_float && v.f == 1.5);
    ck_assert_int_lt(rn_topn_value_cmp(I(2), F(2.5)), 0);
    ck_assert_int_eq(rn_topn_value_cmp(I(3), F(3.0)), 0);
    ck_assert_int_gt(rn_topn_value_cmp(I(INT64_MAX), I(INT64_MAX - 1)), 0);
    /* Decimals add exactly at the larger scale and compare by value. */
    char t[32];
    v = rn_topn_value_add(D(110, 2), D(22, 1));                 /* 1.10 + 2.2 */
    ck_assert(!v.is_float && v.i == 330 && v.scale == 2);
    v = rn_topn_value_add(D(128689, 2), D(257378, 2));          /* 3 x 1286.89 */
    t[rn_value_format(v, t)] = '\0';
    ck_assert_str_eq(t, "3860.67");
    v = rn_topn_value_add(D(-5, 1), I(2));
    ck_assert(!v.is_float && v.i == 15 && v.scale == 1);
    v = rn_topn_value_add(D(5, 1), F(0.25));                    /* with a double */
    ck_assert(v.is_float && v.f == 0.75);
    v = rn_topn_value_add(D(INT64_MAX, 1), D(1, 1));            /* past int64 */
    ck_assert(v.is_float && v.f == 922337203685477580.8);
    ck_assert_int_eq(rn_topn_value_cmp(D(110, 2), D(11, 1)), 0);
    ck_assert_int_eq(rn_topn_value_cmp(D(30, 1), I(3)), 0);
    ck_assert_int_lt(rn_topn_value_cmp(D(-5, 1), D(-49, 2)), 0);
    ck_assert_int_gt(rn_topn_value_cmp(D(INT64_MAX, 18), D(INT64_MAX - 1, 18)), 0);
    ck_assert_int_lt(rn_topn_value_cmp(D(INT64_MAX, 18), I(10)), 0);
    ck_assert_int_gt(rn_topn_value_cmp(D(1, 18), I(0)), 0);
    /* Keys: bytes unsigned, a prefix first. */
    ck_assert_int_lt(rn_topn_key_cmp(S("ab"), S("abc")), 0);
    ck_assert_int_lt(rn_topn_key_cmp(S(""), S("a")), 0);
    ck_assert_int_lt(rn_topn_key_cmp(S("z"), S("\xff")), 0);
    ck_assert_int_eq(rn_topn_key_cmp(S("q"), S("q")), 0);
    /* Larger value first, then the smaller key. */
    rn_topn_entry a = { S("b"), I(5) }, b = { S("a"), I(5) }, c = { S("z"), I(6) };
    ck_assert_int_gt(rn_topn_entry_cmp(&a, &b), 0);
    ck_assert_int_lt(rn_topn_entry_cmp(&c, &b), 0);
}
END_TEST

START_TEST(select_ties)
{
    rn_topn_entry e[] = {
        { S("pear"), I(3) }, { S("apple"), I(5) }, { S("fig"), I(3) },
        { S("kiwi"), I(5) }, { S("ab"), I(3) }, { S("abc"), I(3) }, { S(""), I(1) },
    };
    rn_topn_entry out[10];
    const char *want[] = { "apple", "kiwi", "ab", "abc", "fig", "pear", "" };
    ck_assert_int_eq(rn_topn_select(e, 7, 10, out), 7);
    for (int i = 0; i < 7; i++) {
        ck_assert_uint_eq(out[i].key.n, strlen(want[i]));
        ck_assert(memcmp(out[i].key.p, want[i], out[i].key.n) == 0);
    }
    /* A cut inside a run of ties takes the smallest keys, whatever the
     * input order. */
    for (int round = 0; round < 50; round++) {
        rng_state = (uint64_t)round;
        for (int i = 6; i > 0; i--) {
            int j = (int)(rng() % (uint64_t)(i + 1));
            rn_topn_entry t = e[i];
            e[i] = e[j];
            e[j] = t;
        }
        ck_assert_int_eq(rn_topn_select(e, 7, 3, out), 3);
        ck_assert(out[0].key.n == 5 && memcmp(out[0].key.p, "apple", 5) == 0);
        ck_assert(out[1].key.n == 4 && memcmp(out[1].key.p, "kiwi", 4) == 0);
        ck_assert(out[2].key.n == 2 && memcmp(out[2].key.p, "ab", 2) == 0);
    }
    ck_assert_int_eq(rn_topn_select(e, 0, 3, out), 0);
    ck_assert_int_eq(rn_topn_select(e, 7, 0, out), 0);
}
END_TEST

static int entry_qcmp(const void *a, const void *b) { return rn_topn_entry_cmp(a, b); }

START_TEST(select_equals_sort)
{
    enum { M = 2000 };
    static rn_topn_entry e[M], sorted[M], out[M];
    static char keys[M][8];
    rng_state = 42;
    for (int i = 0; i < M; i++) {
        snprintf(keys[i], sizeof keys[i], "k%03d", (int)(rng() % 500));
        e[i].key = (rn_str){ keys[i], strlen(keys[i]) };
        e[i].value = rng() % 4 ? I((int64_t)(rng() % 30)) : F((double)(rng() % 60) / 2);
    }
    memcpy(sorted, e, sizeof e);
    qsort(sorted, M, sizeof *sorted, entry_qcmp);
    size_t ns[] = { 1, 2, 10, 100, M };
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        ck_assert_int_eq(rn_topn_select(e, M, ns[k], out), (long)ns[k]);
        for (size_t i = 0; i < ns[k]; i++)
            ck_assert_int_eq(rn_topn_entry_cmp(&out[i], &sorted[i]), 0);
    }
}
END_TEST

/* ---- windows ---------------------------------------------------------------- */

typedef struct capture {
    rn_buf text;            /* every window as tsv */
    size_t calls, reprints, latest;
    int64_t last_end;
} capture;

static int capture_fn(void *data, const rn_topn_window *w)
{
    capture *c = data;
    rn_topn_fmt f = { .out = RN_TOPN_TSV };
    ck_assert_int_eq(rn_topn_format(&c->text, &f, w), 0);
    c->calls++;
    c->reprints += w->reprint;
    c->latest += w->latest;
    c->last_end = w->end;
    return 0;
}

static char *cstr(rn_buf *b)
{
    char *s = malloc(b->len + 1);
    memcpy(s, b->p ? b->p : "", b->len);
    s[b->len] = '\0';
    return s;
}

static void add(rn_topn *t, int64_t start, int64_t end, rn_str key, rn_value v, int expect)
{
    char err[RN_ERRLEN];
    rn_row r = { start, end, key, v, 0 };
    ck_assert_int_eq(rn_topn_add(t, &r, err), expect);
}

START_TEST(merge_partial_rows)
{
    enum { ROWS = 20000, WINDOWS = 7, KEYS = 300, N = 15 };
    static rn_row rows[ROWS];
    static char keys[KEYS][16];
    char err[RN_ERRLEN];
    rng_state = 7;
    for (int k = 0; k < KEYS; k++)
        snprintf(keys[k], sizeof keys[k], "term%d", k);
    for (int i = 0; i < ROWS; i++) {
        int w = (int)(rng() % WINDOWS), k = (int)(rng() % KEYS);
        rows[i] = (rn_row){ T0 + w * 10 * SEC, T0 + (w * 10 + 30) * SEC,
                            { keys[k], strlen(keys[k]) }, I((int64_t)(rng() % 100)), 0 };
    }
    /* Whole: one input. Parts: two partitions, one after the other, as
     * `cat a b` gives them. */
    rn_topn *whole = rn_topn_new(N, 0), *parts = rn_topn_new(N, 0);
    for (int i = 0; i < ROWS; i++)
        ck_assert_int_eq(rn_topn_add(whole, &rows[i], err), RN_TOPN_ADDED);
    for (int part = 0; part < 2; part++)
        for (int i = part; i < ROWS; i += 2)
            ck_assert_int_eq(rn_topn_add(parts, &rows[i], err), RN_TOPN_ADDED);
    capture a = { 0 }, b = { 0 };
    ck_assert_int_eq(rn_topn_flush(whole, 1, capture_fn, &a, err), WINDOWS);
    ck_assert_int_eq(rn_topn_flush(parts, 1, capture_fn, &b, err), WINDOWS);
    char *sa = cstr(&a.text), *sb = cstr(&b.text);
    ck_assert_str_eq(sa, sb);

    /* And both equal a reference: plain sums, sorted. */
    rn_buf ref = { 0 };
    for (int w = 0; w < WINDOWS; w++) {
        static rn_topn_entry e[KEYS];
        for (int k = 0; k < KEYS; k++)
            e[k] = (rn_topn_entry){ { keys[k], strlen(keys[k]) }, I(0) };
        int present[KEYS] = { 0 };
        for (int i = 0; i < ROWS; i++)
            if (rows[i].start == T0 + w * 10 * SEC) {
                int k = atoi(rows[i].key.p + 4);
                e[k].value.i += rows[i].value.i;
                present[k] = 1;
            }
        size_t m = 0;
        for (int k = 0; k < KEYS; k++)
            if (present[k])
                e[m++] = e[k];
        qsort(e, m, sizeof *e, entry_qcmp);
        rn_topn_window win = { T0 + w * 10 * SEC, T0 + (w * 10 + 30) * SEC, m, N, e, 0, 0 };
        rn_topn_fmt f = { .out = RN_TOPN_TSV };
        ck_assert_int_eq(rn_topn_format(&ref, &f, &win), 0);
    }
    char *sr = cstr(&ref);
    ck_assert_str_eq(sa, sr);
    free(sa);
    free(sb);
    free(sr);
    rn_buf_free(&a.text);
    rn_buf_free(&b.text);
    rn_buf_free(&ref);
    rn_topn_free(whole);
    rn_topn_free(parts);
}
END_TEST

START_TEST(windows_due_late_dropped)
{
    char err[RN_ERRLEN];
    capture c = { 0 };
    rn_topn *t = rn_topn_new(2, 3);
    int64_t w1 = T0, w2 = T0 + 10 * SEC;

    add(t, w1, w2, S("a"), I(1), RN_TOPN_ADDED);
    add(t, w1, w2, S("b"), I(2), RN_TOPN_ADDED);
    /* The input has not moved past window 1: nothing is due. */
    ck_assert_int_eq(rn_topn_ready(t), 0);
    ck_assert_int_eq(rn_topn_flush(t, 0, capture_fn, &c, err), 0);
    add(t, w2, w2 + 10 * SEC, S("c"), I(1), RN_TOPN_ADDED);
    ck_assert_int_eq(rn_topn_ready(t), 1);
    ck_assert_uint_eq(rn_topn_pending(t), 2);
    ck_assert_int_eq(rn_topn_flush(t, 0, capture_fn, &c, err), 1);
    ck_assert_int_eq(c.last_end, w2);
    ck_assert_uint_eq(c.latest, 1);
    ck_assert_int_eq(rn_topn_ready(t), 0);
    /* A late row: added, and the window is due again, marked a re-print,
     * and not the latest once a later window was printed. */
    add(t, w2 + 10 * SEC, w2 + 20 * SEC, S("d"), I(1), RN_TOPN_ADDED);
    ck_assert_int_eq(rn_topn_flush(t, 0, capture_fn, &c, err), 1);   /* window 2 */
    add(t, w1, w2, S("a"), I(5), RN_TOPN_LATE);
    ck_assert_int_eq(rn_topn_flush(t, 0, capture_fn, &c, err), 1);
    ck_assert_uint_eq(c.reprints, 1);
    ck_assert_uint_eq(c.latest, 2);
    char *s = cstr(&c.text);
    ck_assert_ptr_nonnull(strstr(s, "2026-11-23T07:40:00Z\t2026-11-23T07:40:10Z\t1\ta\t6\n"
                                    "2026-11-23T07:40:00Z\t2026-11-23T07:40:10Z\t2\tb\t2\n"));
    free(s);
    /* Past `keep` (3) printed windows the oldest is freed: its rows drop. */
    for (int i = 3; i < 6; i++)
        add(t, w1 + i * 10 * SEC, w1 + (i + 1) * 10 * SEC, S("x"), I(1), RN_TOPN_ADDED);
    ck_assert_int_eq(rn_topn_flush(t, 0, capture_fn, &c, err), 3);
    add(t, w1, w2, S("a"), I(1), RN_TOPN_DROPPED);
    /* At the end everything pending comes out, the last window too. */
    ck_assert_int_eq(rn_topn_flush(t, 1, capture_fn, &c, err), 1);
    ck_assert_uint_eq(rn_topn_pending(t), 0);
    ck_assert_int_eq(rn_topn_flush(t, 1, capture_fn, &c, err), 0);
    rn_buf_free(&c.text);
    rn_topn_free(t);
}
END_TEST

/* By a watermark: the windows ending at or before it, whatever the rows of
 * later windows; a late row makes its window due again at once. */
START_TEST(windows_due_by_watermark)
{
    char err[RN_ERRLEN];
    capture c = { 0 };
    rn_topn *t = rn_topn_new(2, 0);
    int64_t w1 = T0, w2 = T0 + 10 * SEC, w3 = T0 + 20 * SEC;

    ck_assert_int_eq(rn_topn_max_end(t), INT64_MIN);
    add(t, w1, w2, S("a"), I(1), RN_TOPN_ADDED);
    add(t, w2, w3, S("b"), I(1), RN_TOPN_ADDED);
    add(t, w1, w2, S("c"), I(3), RN_TOPN_ADDED);
    ck_assert_int_eq(rn_topn_max_end(t), w3);
    ck_assert_int_eq(rn_topn_flush_to(t, w2 - 1, capture_fn, &c, err), 0);
    ck_assert_int_eq(rn_topn_flush_to(t, w2, capture_fn, &c, err), 1);
    ck_assert_int_eq(c.last_end, w2);
    ck_assert_int_eq(rn_topn_flush_to(t, w3 - 1, capture_fn, &c, err), 0);
    add(t, w1, w2, S("a"), I(5), RN_TOPN_LATE);
    ck_assert_int_eq(rn_topn_flush_to(t, w3 - 1, capture_fn, &c, err), 1);
    ck_assert_uint_eq(c.reprints, 1);
    /* A window with nothing new is not handed out again. */
    ck_assert_int_eq(rn_topn_flush_to(t, INT64_MAX, capture_fn, &c, err), 1);
    ck_assert_int_eq(c.last_end, w3);
    ck_assert_int_eq(rn_topn_flush_to(t, INT64_MAX, capture_fn, &c, err), 0);
    rn_buf_free(&c.text);
    rn_topn_free(t);
}
END_TEST

static int refuse(void *data, const rn_topn_window *w)
{
    (void)data;
    (void)w;
    return -1;
}

START_TEST(flush_refused_stays_due)
{
    char err[RN_ERRLEN];
    capture c = { 0 };
    rn_topn *t = rn_topn_new(1, 0);
    add(t, T0, T0 + SEC, S("a"), I(1), RN_TOPN_ADDED);
    ck_assert_int_eq(rn_topn_flush(t, 1, refuse, NULL, err), -1);
    ck_assert_int_eq(rn_topn_flush(t, 1, capture_fn, &c, err), 1);
    ck_assert_uint_eq(c.reprints, 0);
    rn_buf_free(&c.text);
    rn_topn_free(t);
}
END_TEST

/* ---- output forms --------------------------------------------------------- */

static const rn_topn_entry odd[] = {
    { { "two words", 9 }, { 0, 12, 0, 0 } },
    { { "line\nbreak\ttab\\", 15 }, { 1, 0, 2.5, 0 } },
    { { "\xff\xfe caf\xc3\xa9", 8 }, { 0, -3, 0, 0 } },
};

static char *format(rn_topn_out out, const char *prefix, int64_t ttl, int reprint, int latest)
{
    rn_buf b = { 0 };
    rn_topn_fmt f = { .out = out, .prefix = prefix, .ttl = ttl };
    rn_topn_window w = { T0, T0 + 30 * SEC, 7, 3, odd, reprint, latest };
    ck_assert_int_eq(rn_topn_format(&b, &f, &w), 0);
    char *s = cstr(&b);
    rn_buf_free(&b);
    return s;
}

START_TEST(format_tsv_json_table)
{
    char *s = format(RN_TOPN_TSV, NULL, 0, 0, 1);
    ck_assert_str_eq(s,
        "2026-11-23T07:40:00Z\t2026-11-23T07:40:30Z\t1\ttwo words\t12\n"
        "2026-11-23T07:40:00Z\t2026-11-23T07:40:30Z\t2\tline\\nbreak\\ttab\\\\\t2.5\n"
        "2026-11-23T07:40:00Z\t2026-11-23T07:40:30Z\t3\t\xff\xfe caf\xc3\xa9\t-3\n");
    free(s);
    s = format(RN_TOPN_JSON, NULL, 0, 0, 1);
    ck_assert_str_eq(s,
        "{\"start\":\"2026-11-23T07:40:00Z\",\"end\":\"2026-11-23T07:40:30Z\",\"top\":["
        "{\"rank\":1,\"key\":\"two words\",\"value\":12},"
        "{\"rank\":2,\"key\":\"line\\nbreak\\ttab\\\\\",\"value\":2.5},"
        "{\"rank\":3,\"key\":\"\\udcff\\udcfe caf\xc3\xa9\",\"value\":-3}]}\n");
    free(s);
    s = format(RN_TOPN_TABLE, NULL, 0, 1, 1);
    ck_assert_str_eq(s,
        "2026-11-23T07:40:00Z .. 2026-11-23T07:40:30Z  top 3 of 7 keys, again\n"
        "rank  key                 value\n"
        "   1  two words              12\n"
        "   2  line\\nbreak\\ttab\\\\    2.5\n"
        "   3  \xff\xfe caf\xc3\xa9                -3\n"
        "\n");
    free(s);
}
END_TEST

/* Wide characters take two columns, combining marks none: the value column
 * ends at the same place on the screen for every row. */
START_TEST(format_table_wide_keys)
{
    static const rn_topn_entry wide[] = {
        { { "\xe6\x89\x8b\xe6\x9c\xba", 6 }, { 0, 30, 0, 0 } },          /* 手机, 4 columns */
        { { "abc", 3 }, { 0, 20, 0, 0 } },
        { { "\xef\xbc\xa1\xef\xbc\xa2x", 7 }, { 0, 10, 0, 0 } },       /* ＡＢx, 5 */
        { { "e\xcc\x81t\xc3\xa9", 6 }, { 0, 5, 0, 0 } },                /* e+combining, t, é: 3 */
    };
    rn_buf b = { 0 };
    rn_topn_fmt f = { .out = RN_TOPN_TABLE };
    rn_topn_window w = { T0, T0 + 30 * SEC, 4, 4, wide, 0, 1 };
    ck_assert_int_eq(rn_topn_format(&b, &f, &w), 0);
    char *s = cstr(&b);
    ck_assert_str_eq(s,
        "2026-11-23T07:40:00Z .. 2026-11-23T07:40:30Z  top 4 of 4 keys\n"
        "rank  key    value\n"
        "   1  \xe6\x89\x8b\xe6\x9c\xba      30\n"
        "   2  abc       20\n"
        "   3  \xef\xbc\xa1\xef\xbc\xa2x     10\n"
        "   4  e\xcc\x81t\xc3\xa9        5\n"
        "\n");
    free(s);
    rn_buf_free(&b);
}
END_TEST

/* A key wider than 64 columns is cut to 63 and an ellipsis in the table (at
 * a character, never inside one or inside an escape), so one huge key
 * does not pad every row to its width; tsv and json keep it whole. */
START_TEST(format_table_long_keys)
{
    size_t big = 1 << 20;
    char *a = malloc(big), *marks = malloc(2 + 2 * 100000);
    memset(a, 'a', big);
    marks[0] = 'e';
    for (size_t i = 0; i < 100000; i++)
        memcpy(marks + 1 + 2 * i, "\xcc\x81", 2);   /* combining: no column */
    marks[1 + 2 * 100000] = 'x';
    char wide[3 * 40 + 1] = "", ctl[70];
    for (int i = 0; i < 40; i++)
        strcat(wide, "\xe6\x89\x8b");                     /* 手: 2 columns */
    memset(ctl, 1, sizeof ctl);                             /* \x01: 4 columns */
    rn_topn_entry e[] = {
        { { a, big }, { 0, 50, 0, 0 } },
        { { "short", 5 }, { 0, 40, 0, 0 } },
        { { wide, strlen(wide) }, { 0, 30, 0, 0 } },
        { { ctl, sizeof ctl }, { 0, 20, 0, 0 } },
        { { marks, 2 + 2 * 100000 }, { 0, 10, 0, 0 } },
        { { a, 64 }, { 0, 5, 0, 0 } },                       /* just fits */
    };
    rn_buf b = { 0 };
    rn_topn_fmt f = { .out = RN_TOPN_TABLE };
    rn_topn_window w = { T0, T0 + 30 * SEC, 6, 6, e, 0, 1 };
    ck_assert_int_eq(rn_topn_format(&b, &f, &w), 0);
    char *s = cstr(&b), *line[9];
    size_t nl = 0;
    for (char *p = s, *q; nl < 9 && (q = strchr(p, '\n')); p = q + 1, nl++) {
        *q = '\0';
        line[nl] = p;
    }
    ck_assert_uint_eq(nl, 9);
    char want[512], cut[256];
    snprintf(want, sizeof want, "rank  key%*s  value", 61, "");
    ck_assert_str_eq(line[1], want);
    snprintf(want, sizeof want, "   1  %.63s\xe2\x80\xa6     50", a);
    ck_assert_str_eq(line[2], want);
    snprintf(want, sizeof want, "   2  short%*s     40", 59, "");
    ck_assert_str_eq(line[3], want);
    snprintf(want, sizeof want, "   3  %.*s\xe2\x80\xa6%*s     30", 31 * 3, wide, 1, "");
    ck_assert_str_eq(line[4], want);
    cut[0] = '\0';
    for (int i = 0; i < 15; i++)
        strcat(cut, "\\x01");
    snprintf(want, sizeof want, "   4  %s\xe2\x80\xa6%*s     20", cut, 3, "");
    ck_assert_str_eq(line[5], want);
    /* Zero-width marks are bounded in bytes too: the cell stays short. */
    ck_assert_uint_lt(strlen(line[6]), 6 + 4 * 64 + 3 + 64 + 8);
    ck_assert(strstr(line[6], "\xe2\x80\xa6"));
    snprintf(want, sizeof want, "   6  %.64s      5", a);
    ck_assert_str_eq(line[7], want);
    ck_assert_str_eq(line[8], "");
    free(s);
    rn_buf_free(&b);
    f.out = RN_TOPN_TSV;
    b.len = 0;
    ck_assert_int_eq(rn_topn_format(&b, &f, &w), 0);
    ck_assert_uint_gt(b.len, big + 2 * 100000);
    rn_buf_free(&b);
    free(a);
    free(marks);
}
END_TEST

START_TEST(rank_moves)
{
    static const rn_topn_entry w1[] = {
        { { "a", 1 }, { 0, 9, 0, 0 } }, { { "b", 1 }, { 0, 8, 0, 0 } }, { { "c", 1 }, { 0, 7, 0, 0 } },
    };
    static const rn_topn_entry w2[] = {
        { { "c", 1 }, { 0, 9, 0, 0 } }, { { "a", 1 }, { 0, 8, 0, 0 } }, { { "ab", 2 }, { 0, 1, 0, 0 } },
    };
    rn_topn_window a = { T0, T0 + SEC, 3, 3, w1, 0, 1 };
    rn_topn_window b = { T0 + SEC, T0 + 2 * SEC, 3, 3, w2, 0, 1 };
    int m[3];
    rn_topn_ranks *r = rn_topn_ranks_new();
    ck_assert_int_eq(rn_topn_ranks_moves(r, &a, m), 0);
    ck_assert_int_eq(m[0], RN_TOPN_NEW);
    ck_assert_int_eq(m[2], RN_TOPN_NEW);
    ck_assert_int_eq(rn_topn_ranks_moves(r, &b, m), 0);
    ck_assert_int_eq(m[0], 2);              /* c: third to first */
    ck_assert_int_eq(m[1], -1);             /* a: first to second */
    ck_assert_int_eq(m[2], RN_TOPN_NEW);    /* ab is not a */
    ck_assert_int_eq(rn_topn_ranks_moves(r, &b, m), 0);
    ck_assert_int_eq(m[0], 0);
    ck_assert_int_eq(m[2], 0);
    rn_topn_ranks_free(r);
}
END_TEST

/* A RESP bulk string, for building expected output. */
static void bulk(rn_buf *b, const char *s, size_t n)
{
    char h[32];
    int k = snprintf(h, sizeof h, "$%zu\r\n", n);
    rn_buf_append(b, h, (size_t)k);
    rn_buf_append(b, s, n);
    rn_buf_append(b, "\r\n", 2);
}
#define BULK(b, lit) bulk(b, lit, sizeof lit - 1)

START_TEST(format_redis)
{
    rn_buf want = { 0 };
    const char *k = "hot:2026-11-23T07:40:00Z";
    rn_buf_append(&want, "*2\r\n", 4);
    BULK(&want, "DEL");
    bulk(&want, k, strlen(k));
    rn_buf_append(&want, "*8\r\n", 4);
    BULK(&want, "ZADD");
    bulk(&want, k, strlen(k));
    BULK(&want, "12");
    BULK(&want, "two words");
    BULK(&want, "2.5");
    BULK(&want, "line\nbreak\ttab\\");
    BULK(&want, "-3");
    BULK(&want, "\xff\xfe caf\xc3\xa9");
    rn_buf_append(&want, "*3\r\n", 4);
    BULK(&want, "EXPIRE");
    bulk(&want, k, strlen(k));
    BULK(&want, "60");
    size_t no_latest = want.len;
    rn_buf_append(&want, "*3\r\n", 4);
    BULK(&want, "SET");
    BULK(&want, "hot:latest");
    bulk(&want, k, strlen(k));

    char *s = format(RN_TOPN_REDIS, "hot", 60, 0, 1);
    ck_assert_uint_eq(strlen(s), want.len);
    ck_assert(memcmp(s, want.p, want.len) == 0);
    free(s);
    /* Not the latest window: no SET. */
    s = format(RN_TOPN_REDIS, "hot", 60, 1, 0);
    ck_assert_uint_eq(strlen(s), no_latest);
    ck_assert(memcmp(s, want.p, no_latest) == 0);
    free(s);
    /* The default prefix, no TTL. */
    s = format(RN_TOPN_REDIS, NULL, 0, 0, 1);
    ck_assert_ptr_nonnull(strstr(s, "$25\r\ntopk:2026-11-23T07:40:00Z\r\n"));
    ck_assert_ptr_null(strstr(s, "EXPIRE"));
    ck_assert_ptr_nonnull(strstr(s, "$11\r\ntopk:latest\r\n"));
    free(s);
    rn_buf_free(&want);

    /* Any bytes, the empty string and NUL included, are length-prefixed. */
    rn_buf b = { 0 };
    rn_str argv[3] = { { "", 0 }, { "a\0b", 3 }, { "\r\n", 2 } };
    ck_assert_int_eq(rn_topn_resp(&b, 3, argv), 0);
    ck_assert_uint_eq(b.len, 27);
    ck_assert(memcmp(b.p, "*3\r\n$0\r\n\r\n$3\r\na\0b\r\n$2\r\n\r\n\r\n", 27) == 0);
    rn_buf_free(&b);
}
END_TEST

START_TEST(out_parse)
{
    char err[RN_ERRLEN];
    rn_topn_out o;
    ck_assert_int_eq(rn_topn_out_parse("redis", &o, err), 0);
    ck_assert_int_eq(o, RN_TOPN_REDIS);
    ck_assert_int_eq(rn_topn_out_parse("table", &o, err), 0);
    ck_assert_int_eq(o, RN_TOPN_TABLE);
    ck_assert_int_eq(rn_topn_out_parse("csv", &o, err), -1);
    ck_assert_ptr_nonnull(strstr(err, "csv"));
}
END_TEST

/* ---- Space-Saving ---------------------------------------------------------- */

/* A Zipf(s) stream over nkeys keys "t<rank>": rank r has weight 1/r^s. */
typedef struct zipf {
    size_t nkeys, len;
    uint32_t *stream;       /* key ranks, from 0 */
    char (*key)[24];
    uint64_t *truth;        /* true count per rank */
} zipf;

static void zipf_make(zipf *z, size_t nkeys, size_t len, double s, uint64_t seed)
{
    double *cdf = malloc(nkeys * sizeof *cdf), sum = 0;
    for (size_t r = 0; r < nkeys; r++)
        cdf[r] = (sum += 1.0 / pow((double)(r + 1), s));
    z->nkeys = nkeys;
    z->len = len;
    z->stream = malloc(len * sizeof *z->stream);
    z->key = malloc(nkeys * sizeof *z->key);
    z->truth = calloc(nkeys, sizeof *z->truth);
    for (size_t r = 0; r < nkeys; r++)
        snprintf(z->key[r], sizeof z->key[r], "t%zu", r);
    rng_state = seed;
    for (size_t i = 0; i < len; i++) {
        double u = (double)(rng() >> 11) / 9007199254740992.0 * sum;
        size_t lo = 0, hi = nkeys - 1;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        z->stream[i] = (uint32_t)lo;
        z->truth[lo]++;
    }
    free(cdf);
}

static void zipf_free(zipf *z)
{
    free(z->stream);
    free(z->key);
    free(z->truth);
}

static void zipf_feed(rn_ss *s, const zipf *z)
{
    int failed = 0;
    for (size_t i = 0; i < z->len; i++) {
        const char *k = z->key[z->stream[i]];
        failed |= rn_ss_add(s, k, strlen(k));   /* no ck_assert per key: it is slow */
    }
    ck_assert_int_eq(failed, 0);
}

static uint64_t truth_of(const zipf *z, rn_str key)
{
    char k[16];
    ck_assert_uint_lt(key.n, sizeof k);
    memcpy(k, key.p, key.n);
    k[key.n] = '\0';
    return z->truth[strtoul(k + 1, NULL, 10)];
}

/* The guarantees of Space-Saving, for capacity m and top n. */
static void check_guarantees(const zipf *z, size_t m, size_t n)
{
    rn_ss *s = rn_ss_new(m);
    ck_assert_ptr_nonnull(s);
    zipf_feed(s, z);
    ck_assert_uint_eq(rn_ss_total(s), z->len);
    ck_assert_uint_le(rn_ss_size(s), m);

    uint64_t sum = 0;
    for (size_t r = 0; r < z->nkeys; r++) {
        uint64_t count, error;
        int in = rn_ss_get(s, z->key[r], strlen(z->key[r]), &count, &error);
        /* Every key above total / m is monitored. */
        if (z->truth[r] > z->len / m)
            ck_assert_msg(in, "%s (true %llu) is not monitored", z->key[r],
                          (unsigned long long)z->truth[r]);
        if (in) {
            /* count - error <= true <= count */
            ck_assert_uint_le(count - error, z->truth[r]);
            ck_assert_uint_ge(count, z->truth[r]);
            ck_assert_uint_le(error, z->len / m);
            sum += count;
        }
    }
    if (rn_ss_size(s) == m)
        ck_assert_uint_eq(sum, z->len);   /* counts always add up to the stream */

    rn_ss_item *it = malloc(n * sizeof *it);
    uint64_t thr;
    long k = rn_ss_top(s, n, it, &thr);
    ck_assert_int_eq(k, (long)(n < rn_ss_size(s) ? n : rn_ss_size(s)));
    for (long i = 0; i < k; i++) {
        uint64_t t = truth_of(z, it[i].key);
        ck_assert_uint_le(it[i].count - it[i].error, t);
        ck_assert_uint_ge(it[i].count, t);
        if (i) {   /* the order */
            ck_assert_uint_le(it[i].count, it[i - 1].count);
            if (it[i].count == it[i - 1].count)
                ck_assert_uint_ge(it[i].error, it[i - 1].error);
        }
        ck_assert_int_eq(it[i].guaranteed, it[i].count - it[i].error >= thr);
        if (!it[i].guaranteed)
            continue;
        /* Guaranteed: fewer than n keys have a larger true count. */
        size_t above = 0;
        for (size_t r = 0; r < z->nkeys; r++)
            above += z->truth[r] > t;
        ck_assert_msg(above < n, "%.*s guaranteed but %zu keys are above it",
                      (int)it[i].key.n, it[i].key.p, above);
    }
    free(it);
    rn_ss_free(s);
}

START_TEST(space_saving_guarantees)
{
    zipf z;
    zipf_make(&z, 5000, 200000, 1.1, 1);
    size_t caps[] = { 10, 50, 200, 1000 };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        check_guarantees(&z, caps[i], 10);
        check_guarantees(&z, caps[i], caps[i] < 40 ? caps[i] : 40);
    }
    zipf_free(&z);
    /* A flatter law: more evictions, larger errors. */
    zipf_make(&z, 20000, 100000, 0.7, 2);
    check_guarantees(&z, 100, 10);
    check_guarantees(&z, 2000, 50);
    zipf_free(&z);
}
END_TEST

START_TEST(space_saving_finds_the_top)
{
    /* With enough counters on a skewed stream the top 10 is exact and all
     * of it guaranteed. */
    zipf z;
    zipf_make(&z, 1000, 200000, 1.1, 3);
    rn_ss *s = rn_ss_new(300);
    zipf_feed(s, &z);
    rn_ss_item it[10];
    ck_assert_int_eq(rn_ss_top(s, 10, it, NULL), 10);
    for (int i = 0; i < 10; i++) {
        ck_assert_uint_eq(truth_of(&z, it[i].key), z.truth[i]);   /* rank i is t<i> */
        ck_assert(it[i].guaranteed);
    }
    rn_ss_free(s);
    zipf_free(&z);
}
END_TEST

static int rank_qcmp(const void *a, const void *b)
{
    const rn_topn_entry *x = a, *y = b;
    return rn_topn_entry_cmp(x, y);
}

START_TEST(exact_equals_reference)
{
    zipf z;
    zipf_make(&z, 3000, 100000, 0.9, 4);
    rn_ss *s = rn_ss_new(0);
    zipf_feed(s, &z);
    ck_assert_uint_eq(rn_ss_capacity(s), 0);
    ck_assert_uint_eq(rn_ss_evictions(s), 0);
    size_t distinct = 0;
    rn_topn_entry *ref = malloc(z.nkeys * sizeof *ref);
    for (size_t r = 0; r < z.nkeys; r++) {
        uint64_t count, error;
        int in = rn_ss_get(s, z.key[r], strlen(z.key[r]), &count, &error);
        ck_assert_int_eq(in, z.truth[r] > 0);
        if (!in)
            continue;
        ck_assert_uint_eq(count, z.truth[r]);
        ck_assert_uint_eq(error, 0);
        ref[distinct++] = (rn_topn_entry){ { z.key[r], strlen(z.key[r]) },
                                           { 0, (int64_t)z.truth[r], 0, 0 } };
    }
    ck_assert_uint_eq(rn_ss_size(s), distinct);
    qsort(ref, distinct, sizeof *ref, rank_qcmp);
    size_t n = 100;
    rn_ss_item *it = malloc(n * sizeof *it);
    ck_assert_int_eq(rn_ss_top(s, n, it, NULL), (long)n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(it[i].key.n, ref[i].key.n);
        ck_assert(memcmp(it[i].key.p, ref[i].key.p, ref[i].key.n) == 0);
        ck_assert_uint_eq(it[i].count, (uint64_t)ref[i].value.i);
        ck_assert(it[i].guaranteed);
    }
    /* Asking for more than there is gives everything. */
    rn_ss_item *all = malloc((distinct + 5) * sizeof *all);
    ck_assert_int_eq(rn_ss_top(s, distinct + 5, all, NULL), (long)distinct);
    free(all);
    free(it);
    free(ref);
    rn_ss_free(s);
    zipf_free(&z);
}
END_TEST

START_TEST(space_saving_small_cases)
{
    rn_ss_item it[4];
    uint64_t thr;
    rn_ss *s = rn_ss_new(2);
    ck_assert_int_eq(rn_ss_top(s, 2, it, &thr), 0);
    /* a a a b c: c takes over b's counter (the smallest) with error 1. */
    const char *seq[] = { "a", "a", "a", "b", "c" };
    for (int i = 0; i < 5; i++)
        rn_ss_add(s, seq[i], 1);
    ck_assert_int_eq(rn_ss_top(s, 2, it, &thr), 2);
    ck_assert(it[0].key.n == 1 && it[0].key.p[0] == 'a' && it[0].count == 3 && it[0].error == 0);
    ck_assert(it[1].key.n == 1 && it[1].key.p[0] == 'c' && it[1].count == 2 && it[1].error == 1);
    ck_assert_uint_eq(thr, 2);              /* no 3rd counter: the smallest count */
    ck_assert(it[0].guaranteed && !it[1].guaranteed);
    ck_assert_int_eq(rn_ss_get(s, "b", 1, NULL, NULL), 0);
    ck_assert_uint_eq(rn_ss_evictions(s), 1);
    /* Keys longer than the inline room, the empty key, binary bytes. */
    char big[300];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 5; i++)
        rn_ss_add(s, big, sizeof big);
    rn_ss_add(s, "", 0);
    rn_ss_add(s, "\0\xff", 2);
    uint64_t count;
    ck_assert_int_eq(rn_ss_get(s, big, sizeof big, &count, NULL), 1);
    ck_assert_uint_ge(count, 5);
    ck_assert_int_eq(rn_ss_get(s, "\0\xff", 2, NULL, NULL), 1);
    rn_ss_free(s);

    /* Exact mode with ties: key order decides. */
    s = rn_ss_new(0);
    const char *t[] = { "pear", "fig", "kiwi", "fig", "pear", "apple" };
    for (int i = 0; i < 6; i++)
        rn_ss_add(s, t[i], strlen(t[i]));
    ck_assert_int_eq(rn_ss_top(s, 3, it, &thr), 3);
    ck_assert(it[0].key.n == 3 && memcmp(it[0].key.p, "fig", 3) == 0);
    ck_assert(it[1].key.n == 4 && memcmp(it[1].key.p, "pear", 4) == 0);
    ck_assert(it[2].key.n == 5 && memcmp(it[2].key.p, "apple", 5) == 0);
    ck_assert_uint_eq(thr, 1);
    ck_assert(it[2].guaranteed);
    rn_ss_free(s);
}
END_TEST

/* A report of it (4 events read) in the output out: its text, to free. */
static char *ss_text(rn_topn_out out, const rn_ss *s, const rn_ss_item *it,
                     const rn_topn_window *w)
{
    rn_buf b = { 0 };
    rn_topn_fmt f = { .out = out };
    ck_assert_int_eq(rn_ss_format(&b, &f, s, it, w, 4), 0);
    char *txt = cstr(&b);
    rn_buf_free(&b);
    return txt;
}

START_TEST(space_saving_table)
{
    rn_ss *s = rn_ss_new(0);
    rn_ss_add(s, "foo", 3);
    rn_ss_add(s, "foo", 3);
    rn_ss_add(s, "a\tb", 3);
    rn_ss_item it[5];
    long k = rn_ss_top(s, 5, it, NULL);
    ck_assert_int_eq(k, 2);
    rn_topn_entry e[5];
    rn_topn_window w;
    rn_ss_window(s, it, (size_t)k, T0 - 60 * SEC, T0, e, &w);
    char *txt = ss_text(RN_TOPN_TABLE, s, it, &w);
    ck_assert_str_eq(txt,
        "top 2 at 2026-11-23T07:40:00.000Z: 4 events, 3 keyed, 2 keys counted (exact)\n"
        "rank  key   count  error  guaranteed\n"
        "   1  foo       2      0  yes\n"
        "   2  a\\tb      1      0  yes\n"
        "\n");
    free(txt);
    /* tsv and json carry the error bounds too; redis is a window's commands */
    txt = ss_text(RN_TOPN_TSV, s, it, &w);
    ck_assert_str_eq(txt,
        "2026-11-23T07:39:00Z\t2026-11-23T07:40:00Z\t1\tfoo\t2\t0\tyes\n"
        "2026-11-23T07:39:00Z\t2026-11-23T07:40:00Z\t2\ta\\tb\t1\t0\tyes\n");
    free(txt);
    txt = ss_text(RN_TOPN_JSON, s, it, &w);
    ck_assert_str_eq(txt,
        "{\"start\":\"2026-11-23T07:39:00Z\",\"end\":\"2026-11-23T07:40:00Z\",\"events\":4,"
        "\"keyed\":3,\"keys\":2,\"capacity\":null,\"top\":[{\"rank\":1,\"key\":\"foo\","
        "\"value\":2,\"error\":0,\"guaranteed\":true},{\"rank\":2,\"key\":\"a\\tb\",\"value\":1,"
        "\"error\":0,\"guaranteed\":true}]}\n");
    free(txt);
    txt = ss_text(RN_TOPN_REDIS, s, it, &w);
    ck_assert_str_eq(txt,
        "*2\r\n$3\r\nDEL\r\n$25\r\ntopk:2026-11-23T07:39:00Z\r\n"
        "*6\r\n$4\r\nZADD\r\n$25\r\ntopk:2026-11-23T07:39:00Z\r\n$1\r\n2\r\n$3\r\nfoo\r\n"
        "$1\r\n1\r\n$3\r\na\tb\r\n"
        "*3\r\n$3\r\nSET\r\n$11\r\ntopk:latest\r\n$25\r\ntopk:2026-11-23T07:39:00Z\r\n");
    free(txt);
    rn_ss_free(s);
}
END_TEST

/* Updates per second on pre-extracted keys (RN_BENCH=1 to run). */
START_TEST(space_saving_bench)
{
    if (!getenv("RN_BENCH"))
        return;
    struct { size_t nkeys; double s; size_t cap; } cfg[] = {
        { 1000, 1.1, 100 }, { 1000, 1.1, 0 }, { 100000, 1.1, 1000 },
        { 100000, 1.1, 0 }, { 1000000, 0.8, 10000 }, { 1000000, 0.8, 0 },
    };
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        zipf z;
        zipf_make(&z, cfg[c].nkeys, 20000000, cfg[c].s, 9);
        /* The keys one after the other, as in a buffer of lines just read. */
        const char **kp = malloc(z.len * sizeof *kp);
        uint8_t *kl = malloc(z.len);
        char *buf = malloc(z.len * 8), *bp = buf;
        for (size_t i = 0; i < z.len; i++) {
            kl[i] = (uint8_t)strlen(z.key[z.stream[i]]);
            memcpy(bp, z.key[z.stream[i]], kl[i]);
            kp[i] = bp;
            bp += kl[i];
        }
        rn_ss *s = rn_ss_new(cfg[c].cap);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (size_t i = 0; i < z.len; i++)
            rn_ss_add(s, kp[i], kl[i]);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        fprintf(stderr, "# space-saving: %zu keys, zipf %.1f, %s %zu: %.1f M updates/s "
                        "(%llu evictions)\n",
                cfg[c].nkeys, cfg[c].s, cfg[c].cap ? "capacity" : "exact", cfg[c].cap,
                (double)z.len / secs / 1e6, (unsigned long long)rn_ss_evictions(s));
        rn_ss_free(s);
        free(kp);
        free(kl);
        free(buf);
        zipf_free(&z);
    }
}
END_TEST

static Suite *topn_suite(void)
{
    Suite *s = suite_create("topn");
    TCase *tc = tcase_create("order");
    tcase_add_test(tc, values_and_order);
    tcase_add_test(tc, select_ties);
    tcase_add_test(tc, select_equals_sort);
    suite_add_tcase(s, tc);

    tc = tcase_create("windows");
    tcase_add_test(tc, merge_partial_rows);
    tcase_add_test(tc, windows_due_late_dropped);
    tcase_add_test(tc, windows_due_by_watermark);
    tcase_add_test(tc, flush_refused_stays_due);
    suite_add_tcase(s, tc);

    tc = tcase_create("output");
    tcase_add_test(tc, format_tsv_json_table);
    tcase_add_test(tc, format_table_wide_keys);
    tcase_add_test(tc, format_table_long_keys);
    tcase_add_test(tc, rank_moves);
    tcase_add_test(tc, format_redis);
    tcase_add_test(tc, out_parse);
    suite_add_tcase(s, tc);

    tc = tcase_create("space-saving");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, space_saving_guarantees);
    tcase_add_test(tc, space_saving_finds_the_top);
    tcase_add_test(tc, exact_equals_reference);
    tcase_add_test(tc, space_saving_small_cases);
    tcase_add_test(tc, space_saving_table);
    tcase_add_test(tc, space_saving_bench);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(topn_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
