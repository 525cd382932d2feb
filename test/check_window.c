/* check_window.c -- unit tests for lib/window: tumbling and sliding windows
 * against a brute-force reference, lateness, idle gaps, exact sums, min and
 * max over mixed values, fill of empty windows, max_keys, state save and
 * load.
 *
 * `check_window bench` runs a micro-benchmark of rn_window_add instead. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "window/window.h"

/* ---- helpers ------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static int64_t rnd_in(int64_t lo, int64_t hi)    /* inclusive */
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static rn_value ival(int64_t i)
{
    rn_value v = { 0, i, 0, 0 };
    return v;
}

static rn_value fval(double f)
{
    rn_value v = { 1, 0, f, 0 };
    return v;
}

/* A decimal: mantissa i, scale digits after the point. */
static rn_value dval(int64_t i, int scale)
{
    rn_value v = { 0, i, 0, scale };
    return v;
}

static int same_value(rn_value a, rn_value b)
{
    if (!!a.is_float != !!b.is_float)
        return 0;
    return a.is_float ? (a.f == b.f || (isnan(a.f) && isnan(b.f)))
                      : a.i == b.i && a.scale == b.scale;
}

static const char *vstr(rn_value v, char *buf)
{
    if (v.is_float) {
        snprintf(buf, 64, "%.17g (double)", v.f);
    } else {
        buf[rn_value_format(v, buf)] = '\0';
        if (v.scale)
            strcat(buf, " (decimal)");
    }
    return buf;
}

/* v as text, in one of four static buffers. */
static const char *txt(rn_value v)
{
    static char b[4][64];
    static int i;
    char *o = b[i++ % 4];
    o[rn_value_format(v, o)] = '\0';
    return o;
}

/* Rows an emission produced, copied. */
typedef struct xrow {
    int64_t start, end;
    char *key;
    size_t klen;
    rn_value v;
} xrow;

typedef struct rowset {
    xrow *r;
    size_t n, cap;
    int64_t limit;      /* no row may end after it (the watermark) */
    int fail_at;        /* return -7 at this row (1-based), 0 never */
} rowset;

static int collect(void *data, const rn_row *row)
{
    rowset *s = data;
    /* Assertions in loops are plain ifs: each ck_assert costs Check a write. */
    if (row->end > s->limit)
        ck_abort_msg("row ending %" PRId64 " emitted before watermark %" PRId64,
                     row->end, s->limit);
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->r = realloc(s->r, s->cap * sizeof *s->r);
        if (!s->r)
            ck_abort_msg("out of memory");
    }
    xrow *x = &s->r[s->n++];
    x->start = row->start;
    x->end = row->end;
    x->klen = row->key.n;
    x->key = malloc(x->klen + 1);
    memcpy(x->key, row->key.p, x->klen);
    x->key[x->klen] = '\0';
    x->v = row->value;
    if (s->fail_at && (int)s->n == s->fail_at)
        return -7;
    return 0;
}

static void rowset_free(rowset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->r[i].key);
    free(s->r);
    memset(s, 0, sizeof *s);
}

static void rowset_clear(rowset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->r[i].key);
    s->n = 0;
}

static int advance(rn_window *w, int64_t wm, rowset *s)
{
    s->limit = wm;
    return rn_window_advance(w, wm, collect, s);
}

static int flush(rn_window *w, rowset *s)
{
    s->limit = INT64_MAX;
    return rn_window_flush(w, collect, s);
}

static void expect_rows_equal(const rowset *got, const rowset *exp, const char *what)
{
    char b1[64], b2[64];
    size_t n = got->n < exp->n ? got->n : exp->n;
    for (size_t i = 0; i < n; i++) {
        const xrow *g = &got->r[i], *e = &exp->r[i];
        if (!(g->start == e->start && g->end == e->end && g->klen == e->klen
              && memcmp(g->key, e->key, g->klen) == 0 && same_value(g->v, e->v)))
            ck_abort_msg("%s: row %zu: got [%" PRId64 ",%" PRId64 ") '%s' %s, expected "
                      "[%" PRId64 ",%" PRId64 ") '%s' %s", what, i, g->start, g->end,
                      g->key, vstr(g->v, b1), e->start, e->end, e->key, vstr(e->v, b2));
    }
    ck_assert_msg(got->n == exp->n, "%s: %zu rows, expected %zu", what, got->n, exp->n);
}

static rn_window *mkwin(int64_t width, int64_t slide, rn_agg agg, int changed,
                        size_t max_keys)
{
    char err[RN_ERRLEN] = "";
    rn_window_opts o = { .width_ns = width, .slide_ns = slide, .agg = agg,
                         .emit_changed = changed, .max_keys = max_keys };
    rn_window *w = rn_window_new(&o, err);
    ck_assert_msg(w != NULL, "%s", err);
    return w;
}

static int add(rn_window *w, int64_t t, const char *key, rn_value v)
{
    return rn_window_add(w, t, key, strlen(key), v);
}

static rn_window_stats stats(const rn_window *w)
{
    rn_window_stats st;
    rn_window_stats_get(w, &st);
    return st;
}

/* One expected row. */
static void push(rowset *s, int64_t start, int64_t end, const char *key, rn_value v)
{
    rn_row row = { start, end, { key, strlen(key) }, v, 0 };
    s->limit = INT64_MAX;
    collect(s, &row);
}

/* ---- brute-force reference ---------------------------------------------- */

#define NKEYS_MAX 400

static char keytab[NKEYS_MAX][48];
static size_t keylen[NKEYS_MAX];

static void make_keys(int nkeys)
{
    for (int i = 0; i < nkeys; i++) {
        switch (i % 6) {
        case 0: keylen[i] = (size_t)snprintf(keytab[i], 48, "k%d", i); break;
        case 1: keylen[i] = (size_t)snprintf(keytab[i], 48, "a-long-shared-prefix/%d", i); break;
        case 2: keylen[i] = (size_t)snprintf(keytab[i], 48, "a-long-%d", i); break;
        case 3: keylen[i] = (size_t)snprintf(keytab[i], 48, "%d", i * 7919); break;
        case 4: keylen[i] = (size_t)snprintf(keytab[i], 48, "k%dk", i / 2); break;
        default: keylen[i] = (size_t)snprintf(keytab[i], 48, "x"); keytab[i][1] = (char)('0' + i % 10);
                 keylen[i] = 2; break;
        }
    }
    /* Odd keys: empty, with NUL bytes, one a prefix of another. */
    if (nkeys > 10) {
        keylen[6] = 0;
        memcpy(keytab[7], "k\0z", 3);
        keylen[7] = 3;
        memcpy(keytab[8], "k\0", 2);
        keylen[8] = 2;
        memcpy(keytab[9], "k", 1);
        keylen[9] = 1;
    }
}

/* Keys may repeat in the table (e.g. "x1"); the reference folds by bytes. */
static int keycmp(const void *pa, const void *pb)
{
    int a = *(const int *)pa, b = *(const int *)pb;
    size_t n = keylen[a] < keylen[b] ? keylen[a] : keylen[b];
    int c = n ? memcmp(keytab[a], keytab[b], n) : 0;
    if (c)
        return c;
    return (keylen[a] > keylen[b]) - (keylen[a] < keylen[b]);
}

typedef struct tev {
    int64_t t;
    int key;
    rn_value v;
} tev;

static int64_t floordiv(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

/* By slice. Test values are small integers and quarters, so sums are exact
 * in any order. */
static int64_t ref_slide;

static int tevcmp(const void *pa, const void *pb)
{
    const tev *a = pa, *b = pb;
    int64_t x = floordiv(a->t, ref_slide), y = floordiv(b->t, ref_slide);
    return (x > y) - (x < y);
}

/* With rand_decimals the random streams hold integers and decimals of
 * scale 1 to 3 (no doubles), and the reference sums them in thousandths. */
static int rand_decimals;

typedef struct refacc {
    int64_t count, nf;
    __int128 isum;
    double dsum;
    rn_value best;
    __int128 milli;         /* rand_decimals: the sum in thousandths */
    int64_t nscale[4];      /* rand_decimals: values by scale */
} refacc;

static int64_t pow10i(int n)
{
    int64_t p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

/* The decimal sum or average of a, as the window's documentation says. */
static rn_value ref_decimal(rn_agg agg, const refacc *a)
{
    int sc = 3;
    while (sc > 0 && !a->nscale[sc])
        sc--;
    if (agg == RN_AGG_SUM)
        return dval((int64_t)(a->milli / pow10i(3 - sc)), sc);
    if (sc == 0)        /* integers only: a double, as before decimals */
        return fval((double)a->milli / 1000 / (double)a->count);
    /* Long division, digit by digit, to sc + 7 decimals, then half-even. */
    __int128 n = a->milli < 0 ? -a->milli : a->milli, q = n / (1000 * a->count);
    __int128 rem = n % (1000 * a->count);
    int digits[32];
    for (int i = 0; i < sc + 7; i++) {
        rem *= 10;
        digits[i] = (int)(rem / (1000 * a->count));
        rem %= 1000 * a->count;
    }
    for (int i = 0; i < sc + 6; i++)
        q = q * 10 + digits[i];
    int last = digits[sc + 6];
    if (last > 5 || (last == 5 && (rem || (q & 1))))
        q++;
    int out = sc + 6;
    while (out > sc && q % 10 == 0) {
        q /= 10;
        out--;
    }
    return dval((int64_t)(a->milli < 0 ? -q : q), out);
}

static rn_value ref_value(rn_agg agg, const refacc *a)
{
    switch (agg) {
    case RN_AGG_COUNT:
        return ival(a->count);
    case RN_AGG_SUM:
        if (rand_decimals)
            return ref_decimal(agg, a);
        if (a->nf == 0 && a->isum >= INT64_MIN && a->isum <= INT64_MAX)
            return ival((int64_t)a->isum);
        return fval((double)a->isum + a->dsum);
    case RN_AGG_AVG:
        if (rand_decimals)
            return ref_decimal(agg, a);
        return fval(((double)a->isum + a->dsum) / (double)a->count);
    default:
        return a->best;
    }
}

/* Values here are small: a double compares exactly with an int, and
 * decimals of at most 3 places that differ have doubles that differ. */
static double dv(rn_value v)
{
    return v.is_float ? v.f : (double)v.i / (double)pow10i(v.scale);
}

/* Of equal values: an integer, then fewer decimals, then a double. */
static int rank(rn_value v)
{
    return v.is_float ? 99 : v.scale;
}

static void ref_add(rn_agg agg, refacc *a, rn_value v)
{
    if (!v.is_float) {
        a->milli += (__int128)v.i * pow10i(3 - v.scale);
        a->nscale[v.scale]++;
    }
    if (agg == RN_AGG_MIN || agg == RN_AGG_MAX) {
        double x = dv(v), b = dv(a->best);
        int better = agg == RN_AGG_MIN ? x < b : x > b;
        if (a->count == 0 || better || (x == b && rank(v) < rank(a->best)))
            a->best = v;
    } else if (v.is_float) {
        a->nf++;
        a->dsum += v.f;
    } else {
        a->isum += v.i;
    }
    a->count++;
}

/* Every window computed on its own, as an awk script would. */
static void reference(const tev *ev, size_t n, int64_t S, int64_t k, rn_agg agg,
                      int changed, int nkeys, rowset *out)
{
    if (!n)
        return;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        int64_t s = floordiv(ev[i].t, S);
        lo = s < lo ? s : lo;
        hi = s > hi ? s : hi;
    }
    /* Events by slice, so that a window visits only its own. */
    tev *ev_sorted = malloc(n * sizeof *ev_sorted);
    memcpy(ev_sorted, ev, n * sizeof *ev);
    ref_slide = S;
    qsort(ev_sorted, n, sizeof *ev_sorted, tevcmp);
    ev = ev_sorted;
    static refacc cur[NKEYS_MAX], prev[NKEYS_MAX];
    static int canon[NKEYS_MAX];
    /* Keys with equal bytes fold into the first of them. */
    for (int i = 0; i < nkeys; i++) {
        canon[i] = i;
        for (int j = 0; j < i; j++)
            if (keycmp(&i, &j) == 0) {
                canon[i] = j;
                break;
            }
    }
    memset(prev, 0, sizeof prev);
    for (int64_t e = lo; e <= hi + k - 1; e++) {
        memset(cur, 0, sizeof cur);
        size_t a = 0, b = n;    /* first event of slice >= e-k+1 */
        while (a < b) {
            size_t m = a + (b - a) / 2;
            if (floordiv(ev[m].t, S) < e - k + 1)
                a = m + 1;
            else
                b = m;
        }
        for (size_t i = a; i < n && floordiv(ev[i].t, S) <= e; i++)
            ref_add(agg, &cur[canon[ev[i].key]], ev[i].v);
        int ids[NKEYS_MAX], m = 0;
        for (int i = 0; i < nkeys; i++)
            if (cur[i].count)
                ids[m++] = i;
        qsort(ids, (size_t)m, sizeof *ids, keycmp);
        for (int j = 0; j < m; j++) {
            int i = ids[j];
            rn_value v = ref_value(agg, &cur[i]);
            if (changed && prev[i].count && same_value(v, ref_value(agg, &prev[i])))
                continue;
            rn_row row = { (e - k + 1) * S, (e + 1) * S, { keytab[i], keylen[i] }, v, 0 };
            out->limit = INT64_MAX;
            collect(out, &row);
        }
        memcpy(prev, cur, sizeof prev);
    }
    free(ev_sorted);
}

typedef struct cfg {
    rn_agg agg;
    int64_t k;
    int changed;
    int nkeys;
    int nev;
    uint64_t seed;
    const char *state;  /* save and reload here halfway, if set */
} cfg;

/* Feed a random stream with disorder, lateness and idle gaps; check each
 * add's verdict against the lateness rule; return the rows emitted and the
 * events accepted. */
static void run_random(const cfg *c, rowset *got, tev **acc_out, size_t *nacc)
{
    const int64_t S = 1000, lateness = 1500;
    int64_t clock = 1700000000123456789LL, wmmax = INT64_MIN;
    tev *acc = malloc((size_t)c->nev * sizeof *acc);
    size_t na = 0;
    uint64_t late_before = 0;   /* counters are per run, not saved */
    char err[RN_ERRLEN] = "";
    rn_window *w = mkwin(c->k * S, S, c->agg, c->changed, 0);

    rng_state = c->seed;
    make_keys(c->nkeys);
    for (int i = 0; i < c->nev; i++) {
        clock += rnd_in(0, 300);
        if (rnd() % 200 == 0)
            clock += rnd_in(0, 20) * S;         /* an idle gap */
        int64_t t = clock - rnd_in(0, 2500);    /* some arrive too late */
        int key = (int)(rnd() % (uint64_t)c->nkeys);
        rn_value v = rnd() % 10 < 7 ? ival(rnd_in(-1000, 1000))
                                    : fval((double)rnd_in(-4000, 4000) / 4);
        if (rand_decimals && rnd() % 10 < 7)
            v = dval(rnd_in(-100000, 100000), (int)rnd_in(1, 3));
        else if (rand_decimals && v.is_float)
            v = ival((int64_t)v.f);
        int late = wmmax != INT64_MIN && floordiv(t, S) < floordiv(wmmax, S);
        int r = rn_window_add(w, t, keytab[key], keylen[key], v);
        if (r != (late ? RN_WIN_LATE : 0))
            ck_abort_msg("event %d at %" PRId64 ": add gave %d, expected %d", i, t, r,
                         late ? RN_WIN_LATE : 0);
        if (!r)
            acc[na++] = (tev){ t, key, v };
        if (i % 10 == 9) {
            int64_t wm = clock - lateness;
            if (advance(w, wm, got) != 0)
                ck_abort_msg("advance failed");
            wmmax = wm > wmmax ? wm : wmmax;
            if (stats(w).closed != floordiv(wmmax, S) * S)
                ck_abort_msg("closed %" PRId64 ", expected %" PRId64, stats(w).closed,
                             floordiv(wmmax, S) * S);
        }
        if (c->state && i == c->nev / 2) {
            late_before = stats(w).late;
            ck_assert_msg(rn_window_save(w, c->state, "test", err) == 0, "%s", err);
            rn_window_free(w);
            w = mkwin(c->k * S, S, c->agg, c->changed, 0);
            ck_assert_msg(rn_window_load(w, c->state, "test", err) == 0, "%s", err);
        }
    }
    ck_assert_int_eq(flush(w, got), 0);
    rn_window_stats st = stats(w);
    ck_assert_uint_eq(late_before + st.late, (uint64_t)c->nev - na);
    ck_assert_uint_le(st.slices, (uint64_t)c->k);
    rn_window_free(w);
    *acc_out = acc;
    *nacc = na;
}

static void check_against_reference(rn_agg agg, int64_t k, int changed, uint64_t seed,
                                    int nkeys, int nev)
{
    cfg c = { agg, k, changed, nkeys, nev, seed, NULL };
    rowset got = { 0 }, exp = { 0 };
    tev *acc;
    size_t na;
    char what[128];
    run_random(&c, &got, &acc, &na);
    reference(acc, na, 1000, k, agg, changed, nkeys, &exp);
    snprintf(what, sizeof what, "agg=%s k=%" PRId64 " changed=%d seed=%" PRIu64,
             rn_agg_name(agg), k, changed, seed);
    ck_assert_msg(exp.n > 50, "%s: too few rows to mean anything", what);
    expect_rows_equal(&got, &exp, what);
    rowset_free(&got);
    rowset_free(&exp);
    free(acc);
}

/* ---- against the reference ------------------------------------------------ */

START_TEST(decimal_reference)
{
    rand_decimals = 1;
    for (int agg = RN_AGG_SUM; agg <= RN_AGG_AVG; agg++)
        for (int changed = 0; changed <= 1; changed++) {
            check_against_reference((rn_agg)agg, 1, changed, 515 + (uint64_t)agg, 12, 3000);
            check_against_reference((rn_agg)agg, 5, changed, 616 + (uint64_t)agg, 12, 3000);
        }
    rand_decimals = 0;
}
END_TEST


START_TEST(tumbling_reference)
{
    for (int agg = RN_AGG_COUNT; agg <= RN_AGG_AVG; agg++)
        for (int changed = 0; changed <= 1; changed++)
            for (uint64_t seed = 1; seed <= 3; seed++)
                check_against_reference((rn_agg)agg, 1, changed, seed * 7777, 12, 3000);
}
END_TEST

START_TEST(sliding_reference)
{
    int64_t ks[] = { 2, 3, 7 };
    for (int agg = RN_AGG_COUNT; agg <= RN_AGG_AVG; agg++)
        for (int changed = 0; changed <= 1; changed++)
            for (int ki = 0; ki < 3; ki++)
                check_against_reference((rn_agg)agg, ks[ki], changed,
                                        (uint64_t)(ki + 1) * 1234567 + (uint64_t)agg, 12, 3000);
}
END_TEST

START_TEST(many_keys_reference)
{
    /* Keys come and go by the hundred: table growth, deletion by backward
     * shifting, key arena compaction. */
    check_against_reference(RN_AGG_SUM, 4, 0, 99, NKEYS_MAX, 6000);
    check_against_reference(RN_AGG_MAX, 3, 1, 98, NKEYS_MAX, 6000);
    check_against_reference(RN_AGG_COUNT, 1, 1, 97, NKEYS_MAX, 6000);
    /* Windows of 24 slices hold over 64 keys each: their rows are put in
     * order by the radix sort of key prefixes, and the keys that share
     * their first 8 bytes ("a-long-shared-prefix/...") by the ties' sort. */
    check_against_reference(RN_AGG_COUNT, 24, 0, 96, NKEYS_MAX, 6000);
    check_against_reference(RN_AGG_SUM, 24, 1, 95, NKEYS_MAX, 6000);
}
END_TEST

/* ---- windows and time ------------------------------------------------------ */

START_TEST(aligned_to_epoch)
{
    const int64_t s = 1000000000;
    rowset got = { 0 }, exp = { 0 };
    rn_window *w = mkwin(60 * s, 10 * s, RN_AGG_COUNT, 0, 0);
    ck_assert_int_eq(add(w, 125 * s, "a", ival(0)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    for (int64_t end = 130; end <= 180; end += 10)
        push(&exp, (end - 60) * s, end * s, "a", ival(1));
    expect_rows_equal(&got, &exp, "60s/10s");
    rn_window_free(w);
    rowset_clear(&got);
    rowset_clear(&exp);

    /* Before the epoch too: slice -1 is [-10, 0). */
    w = mkwin(10, 10, RN_AGG_COUNT, 0, 0);
    ck_assert_int_eq(add(w, -5, "a", ival(0)), 0);
    ck_assert_int_eq(add(w, -10, "a", ival(0)), 0);
    ck_assert_int_eq(add(w, 0, "a", ival(0)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    push(&exp, -10, 0, "a", ival(2));
    push(&exp, 0, 10, "a", ival(1));
    expect_rows_equal(&got, &exp, "negative");
    rn_window_free(w);
    rowset_free(&got);
    rowset_free(&exp);
}
END_TEST

START_TEST(emits_at_watermark)
{
    rowset got = { 0 };
    rn_window *w = mkwin(30, 10, RN_AGG_COUNT, 0, 0);
    ck_assert_int_eq(add(w, 5, "a", ival(0)), 0);
    ck_assert_int_eq(advance(w, 9, &got), 0);
    ck_assert_uint_eq(got.n, 0);
    ck_assert_int_eq(advance(w, 10, &got), 0);     /* the end of [-20, 10) */
    ck_assert_uint_eq(got.n, 1);
    ck_assert_int_eq(advance(w, 29, &got), 0);
    ck_assert_uint_eq(got.n, 2);
    ck_assert_int_eq(advance(w, 5, &got), 0);      /* backwards: nothing */
    ck_assert_uint_eq(got.n, 2);
    ck_assert_int_eq(advance(w, 1000, &got), 0);
    ck_assert_uint_eq(got.n, 3);
    ck_assert_int_eq(got.r[2].start, 0);
    ck_assert_int_eq(got.r[2].end, 30);
    ck_assert_uint_eq(stats(w).windows, 3);
    rn_window_free(w);
    rowset_free(&got);
}
END_TEST

START_TEST(key_dropped_at_zero)
{
    rowset got = { 0 }, exp = { 0 };
    rn_window *w = mkwin(20, 10, RN_AGG_SUM, 0, 0);
    ck_assert_int_eq(add(w, 1, "a", ival(5)), 0);
    ck_assert_int_eq(add(w, 11, "b", ival(7)), 0);
    ck_assert_int_eq(advance(w, 10, &got), 0);
    ck_assert_uint_eq(stats(w).keys, 1);
    ck_assert_int_eq(advance(w, 20, &got), 0);
    ck_assert_uint_eq(stats(w).keys, 2);
    ck_assert_uint_eq(stats(w).slices, 2);
    ck_assert_int_eq(advance(w, 30, &got), 0);     /* slice 0 leaves: a drops */
    ck_assert_uint_eq(stats(w).keys, 1);
    ck_assert_uint_eq(stats(w).slices, 1);
    ck_assert_int_eq(advance(w, 40, &got), 0);
    ck_assert_uint_eq(stats(w).keys, 0);
    ck_assert_uint_eq(stats(w).slices, 0);
    ck_assert_uint_eq(stats(w).entries, 0);
    push(&exp, -10, 10, "a", ival(5));
    push(&exp, 0, 20, "a", ival(5));
    push(&exp, 0, 20, "b", ival(7));
    push(&exp, 10, 30, "b", ival(7));
    expect_rows_equal(&got, &exp, "drop");
    rn_window_free(w);
    rowset_free(&got);
    rowset_free(&exp);
}
END_TEST

START_TEST(out_of_order)
{
    rowset got = { 0 }, exp = { 0 };
    rn_window *w = mkwin(10, 10, RN_AGG_MAX, 0, 0);
    ck_assert_int_eq(add(w, 55, "k", ival(1)), 0);
    ck_assert_int_eq(add(w, 35, "k", ival(2)), 0);
    ck_assert_int_eq(add(w, 45, "k", ival(3)), 0);
    ck_assert_int_eq(add(w, 31, "k", ival(4)), 0);
    ck_assert_int_eq(add(w, 59, "k", ival(-1)), 0);
    ck_assert_int_eq(advance(w, 50, &got), 0);
    ck_assert_int_eq(add(w, 50, "k", ival(9)), 0);     /* slice 5 is still open */
    ck_assert_int_eq(flush(w, &got), 0);
    push(&exp, 30, 40, "k", ival(4));
    push(&exp, 40, 50, "k", ival(3));
    push(&exp, 50, 60, "k", ival(9));
    expect_rows_equal(&got, &exp, "disorder");
    rn_window_free(w);
    rowset_free(&got);
    rowset_free(&exp);
}
END_TEST

START_TEST(late_rejected)
{
    rowset got = { 0 };
    rn_window *w = mkwin(30, 10, RN_AGG_COUNT, 0, 0);
    ck_assert_int_eq(stats(w).closed, INT64_MIN);
    ck_assert_int_eq(add(w, 100, "a", ival(0)), 0);
    ck_assert_int_eq(advance(w, 125, &got), 0);       /* passes windows ending <= 120 */
    ck_assert_int_eq(stats(w).closed, 120);
    /* Slice 11 ([110,120)) still has open windows (ending 130, 140) but its
     * first has been passed: late, so it counts in all its windows or none. */
    ck_assert_int_eq(add(w, 119, "a", ival(0)), RN_WIN_LATE);
    ck_assert_int_eq(add(w, 5, "a", ival(0)), RN_WIN_LATE);
    ck_assert_int_eq(add(w, 120, "a", ival(0)), 0);
    ck_assert_int_eq(add(w, 124, "a", ival(0)), 0);
    ck_assert_uint_eq(stats(w).late, 2);
    /* An idle advance closes slices too, though it emits nothing new. */
    ck_assert_int_eq(advance(w, 1000, &got), 0);
    ck_assert_int_eq(add(w, 990, "a", ival(0)), RN_WIN_LATE);
    ck_assert_int_eq(add(w, 1000, "a", ival(0)), 0);
    ck_assert_uint_eq(stats(w).late, 3);
    rn_window_free(w);
    rowset_free(&got);
}
END_TEST

START_TEST(idle_gap_is_fast)
{
    const int64_t S = 1000;
    int64_t gaps[] = { 1000000, 1000000000000000LL };   /* slices */
    for (int g = 0; g < 2; g++) {
        rowset got = { 0 };
        rn_window *w = mkwin(60 * S, S, RN_AGG_MIN, 0, 0);
        ck_assert_int_eq(add(w, 0, "a", ival(3)), 0);
        ck_assert_int_eq(add(w, S, "b", ival(4)), 0);
        int64_t t0 = rn_mono_ns();
        ck_assert_int_eq(advance(w, gaps[g] * S, &got), 0);
        ck_assert_uint_eq(got.n, 120);          /* a: 60 windows, b: 60 */
        ck_assert_uint_eq(stats(w).slices, 0);
        ck_assert_int_eq(add(w, gaps[g] * S + 5, "c", ival(5)), 0);
        ck_assert_int_eq(advance(w, (gaps[g] + 1) * S, &got), 0);
        ck_assert_uint_eq(got.n, 121);
        int64_t dt = rn_mono_ns() - t0;
        ck_assert_msg(dt < 50000000, "gap of %" PRId64 " slices took %" PRId64 " ns",
                      gaps[g], dt);
        ck_assert_int_eq(got.r[120].end, (gaps[g] + 1) * S);
        /* The far end of time: no overflow. */
        ck_assert_int_eq(advance(w, INT64_MAX, &got), 0);
        ck_assert_uint_eq(got.n, 180);          /* c's other 59 windows */
        ck_assert_int_eq(add(w, INT64_MAX - 5, "d", ival(0)), RN_WIN_INVALID);
        rn_window_free(w);
        rowset_free(&got);
    }
}
END_TEST

START_TEST(flush_trailing_windows)
{
    rowset got = { 0 }, exp = { 0 };
    rn_window *w = mkwin(30, 10, RN_AGG_SUM, 0, 0);
    ck_assert_int_eq(add(w, 101, "a", ival(2)), 0);
    ck_assert_int_eq(add(w, 111, "a", ival(3)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    push(&exp, 80, 110, "a", ival(2));
    push(&exp, 90, 120, "a", ival(5));
    push(&exp, 100, 130, "a", ival(5));
    push(&exp, 110, 140, "a", ival(3));
    expect_rows_equal(&got, &exp, "flush");
    ck_assert_int_eq(stats(w).closed, 140);
    /* Flushing again emits nothing; what comes after the flush is counted. */
    ck_assert_int_eq(flush(w, &got), 0);
    ck_assert_uint_eq(got.n, 4);
    ck_assert_int_eq(add(w, 139, "a", ival(1)), RN_WIN_LATE);
    ck_assert_int_eq(add(w, 140, "a", ival(1)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    ck_assert_uint_eq(got.n, 7);
    rn_window_free(w);
    rowset_free(&got);
    rowset_free(&exp);
}
END_TEST

START_TEST(callback_error)
{
    rowset got = { 0 };
    rn_window *w = mkwin(10, 10, RN_AGG_COUNT, 0, 0);
    ck_assert_int_eq(add(w, 1, "a", ival(0)), 0);
    ck_assert_int_eq(add(w, 1, "b", ival(0)), 0);
    ck_assert_int_eq(add(w, 11, "c", ival(0)), 0);
    got.fail_at = 1;
    ck_assert_int_eq(advance(w, 100, &got), -7);
    ck_assert_uint_eq(got.n, 1);
    /* The failing window counts as passed; the next carries on. */
    got.fail_at = 0;
    ck_assert_int_eq(advance(w, 100, &got), 0);
    ck_assert_uint_eq(got.n, 2);
    ck_assert_str_eq(got.r[1].key, "c");
    rn_window_free(w);
    rowset_free(&got);
}
END_TEST

/* ---- values ---------------------------------------------------------------- */

START_TEST(int_sum_exact_and_overflow)
{
    const int64_t big = (int64_t)1 << 62;
    rowset got = { 0 };
    rn_window *w = mkwin(20, 10, RN_AGG_SUM, 0, 0);
    ck_assert_int_eq(add(w, 0, "a", ival(big)), 0);
    ck_assert_int_eq(add(w, 0, "a", ival(big - 1)), 0);   /* 2^63 - 1: fits */
    ck_assert_int_eq(add(w, 10, "a", ival(1)), 0);        /* window 2: 2^63 */
    ck_assert_int_eq(add(w, 20, "a", ival(-5)), 0);
    ck_assert_int_eq(add(w, 0, "n", ival(INT64_MIN)), 0);
    ck_assert_int_eq(add(w, 10, "n", ival(-1)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    ck_assert_uint_eq(got.n, 7);
    /* [-10,10): exact at the int64 limit. */
    ck_assert(!got.r[0].v.is_float);
    ck_assert_int_eq(got.r[0].v.i, INT64_MAX);
    ck_assert(!got.r[1].v.is_float);
    ck_assert_int_eq(got.r[1].v.i, INT64_MIN);
    /* [0,20): 2^63 overflows int64, becomes a double; so does MIN - 1. */
    ck_assert(got.r[2].v.is_float);
    ck_assert(got.r[2].v.f == 9223372036854775808.0);
    ck_assert(got.r[3].v.is_float);
    ck_assert(got.r[3].v.f == -9223372036854775808.0);
    /* [10,30): the big values left: exact integers again. */
    ck_assert(!got.r[4].v.is_float);
    ck_assert_int_eq(got.r[4].v.i, -4);
    ck_assert(!got.r[5].v.is_float);
    ck_assert_int_eq(got.r[5].v.i, -1);
    ck_assert_int_eq(got.r[6].v.i, -5);
    rn_window_free(w);
    rowset_free(&got);

    /* A double makes the sum a double, until it leaves. */
    w = mkwin(20, 10, RN_AGG_SUM, 0, 0);
    ck_assert_int_eq(add(w, 0, "a", fval(0.5)), 0);
    ck_assert_int_eq(add(w, 10, "a", ival(2)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    ck_assert_uint_eq(got.n, 3);
    ck_assert(got.r[1].v.is_float && got.r[1].v.f == 2.5);
    ck_assert(!got.r[2].v.is_float && got.r[2].v.i == 2);
    rn_window_free(w);
    rowset_free(&got);

    /* avg of large integers keeps their precision up to the division. */
    w = mkwin(10, 10, RN_AGG_AVG, 0, 0);
    ck_assert_int_eq(add(w, 0, "a", ival(INT64_MAX)), 0);
    ck_assert_int_eq(add(w, 0, "a", ival(INT64_MAX)), 0);
    ck_assert_int_eq(add(w, 0, "b", ival(3)), 0);
    ck_assert_int_eq(add(w, 0, "b", ival(4)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    ck_assert(got.r[0].v.is_float && got.r[0].v.f == 9223372036854775807.0);
    ck_assert(got.r[1].v.is_float && got.r[1].v.f == 3.5);
    rn_window_free(w);
    rowset_free(&got);
}
END_TEST

/* Decimals: exact sums at the largest scale in the window, which falls
 * again when the value that raised it leaves. */
START_TEST(decimal_sum_exact)
{
    rowset got = { 0 }, exp = { 0 };
    rn_window *w = mkwin(30, 10, RN_AGG_SUM, 0, 0);
    ck_assert_int_eq(add(w, 0, "a", dval(15, 1)), 0);       /* 1.5 */
    ck_assert_int_eq(add(w, 0, "a", dval(225, 2)), 0);      /* 2.25 */
    ck_assert_int_eq(add(w, 10, "a", dval(1, 3)), 0);       /* 0.001 */
    ck_assert_int_eq(add(w, 20, "a", dval(-5, 1)), 0);      /* -0.5 */
    ck_assert_int_eq(add(w, 0, "m", dval(110, 2)), 0);      /* 1.10 */
    ck_assert_int_eq(add(w, 0, "m", dval(220, 2)), 0);      /* 2.20 */
    ck_assert_int_eq(add(w, 10, "m", ival(1)), 0);
    ck_assert_int_eq(add(w, 30, "m", dval(-10, 1)), 0);     /* -1.0 */
    ck_assert_int_eq(add(w, 0, "z", dval(1234, 2)), 0);
    ck_assert_int_eq(add(w, 0, "z", dval(-1234, 2)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    push(&exp, -20, 10, "a", dval(375, 2));         /* 3.75 */
    push(&exp, -20, 10, "m", dval(330, 2));         /* 3.30, a money column */
    push(&exp, -20, 10, "z", dval(0, 2));           /* 0.00 */
    push(&exp, -10, 20, "a", dval(3751, 3));
    push(&exp, -10, 20, "m", dval(430, 2));
    push(&exp, -10, 20, "z", dval(0, 2));
    push(&exp, 0, 30, "a", dval(3251, 3));
    push(&exp, 0, 30, "m", dval(430, 2));
    push(&exp, 0, 30, "z", dval(0, 2));
    push(&exp, 10, 40, "a", dval(-499, 3));         /* 1.5 and 2.25 left */
    push(&exp, 10, 40, "m", dval(0, 1));            /* 1 - 1.0: the 2 decimals left */
    push(&exp, 20, 50, "a", dval(-5, 1));           /* the 0.001 left: one decimal */
    push(&exp, 20, 50, "m", dval(-10, 1));
    push(&exp, 30, 60, "m", dval(-10, 1));
    expect_rows_equal(&got, &exp, "decimal sums");
    ck_assert_str_eq(txt(got.r[0].v), "3.75");
    ck_assert_str_eq(txt(got.r[1].v), "3.30");
    ck_assert_str_eq(txt(got.r[9].v), "-0.499");
    rn_window_free(w);
    rowset_free(&got);
    rowset_free(&exp);

    /* The seeds' money column: no binary noise (3858.0699999999997). */
    w = mkwin(10, 10, RN_AGG_SUM, 0, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(add(w, 0, "p", dval(128689, 2)), 0);   /* 1286.89 */
    ck_assert_int_eq(add(w, 0, "q", fval(1e3)), 0);             /* 1e3: a double */
    ck_assert_int_eq(add(w, 0, "q", dval(5, 1)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    ck_assert_str_eq(txt(got.r[0].v), "3860.67");
    ck_assert(got.r[1].v.is_float && got.r[1].v.f == 1000.5);   /* mixed: a double */
    rn_window_free(w);
    rowset_free(&got);
}
END_TEST

START_TEST(decimal_avg_rounding)
{
    rowset got = { 0 };
    rn_window *w = mkwin(10, 10, RN_AGG_AVG, 0, 0);
    /* 5.00 / 3: 2 + 6 decimals, rounded. */
    ck_assert_int_eq(add(w, 0, "a", dval(100, 2)), 0);
    ck_assert_int_eq(add(w, 0, "a", dval(200, 2)), 0);
    ck_assert_int_eq(add(w, 0, "a", dval(200, 2)), 0);
    /* 4.0 / 2 = 2.0: zeros after the scale's decimals are dropped. */
    ck_assert_int_eq(add(w, 0, "b", dval(15, 1)), 0);
    ck_assert_int_eq(add(w, 0, "b", dval(25, 1)), 0);
    /* 0.1 / 128 = 0.00078125 and 0.3 / 128 = 0.00234375: ties at 7
     * decimals, to even. Negative values round the same way. */
    for (int i = 0; i < 128; i++) {
        ck_assert_int_eq(add(w, 0, "c", dval(i ? 0 : 1, 1)), 0);
        ck_assert_int_eq(add(w, 0, "d", dval(i ? 0 : 3, 1)), 0);
        ck_assert_int_eq(add(w, 0, "e", dval(i ? 0 : -3, 1)), 0);
    }
    /* Integers alone: the double, as before. */
    ck_assert_int_eq(add(w, 0, "f", ival(1)), 0);
    ck_assert_int_eq(add(w, 0, "f", ival(2)), 0);
    ck_assert_int_eq(add(w, 0, "f", ival(2)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    ck_assert_uint_eq(got.n, 6);
    ck_assert_str_eq(txt(got.r[0].v), "1.66666667");
    ck_assert_str_eq(txt(got.r[1].v), "2.0");
    ck_assert_str_eq(txt(got.r[2].v), "0.0007812");
    ck_assert_str_eq(txt(got.r[3].v), "0.0023438");
    ck_assert_str_eq(txt(got.r[4].v), "-0.0023438");
    ck_assert(got.r[5].v.is_float && got.r[5].v.f == 5.0 / 3.0);
    rn_window_free(w);
    rowset_free(&got);

    /* 13 decimals + 6 is beyond 18: the double. */
    w = mkwin(10, 10, RN_AGG_AVG, 0, 0);
    ck_assert_int_eq(add(w, 0, "a", dval(1, 13)), 0);
    ck_assert_int_eq(add(w, 0, "a", dval(2, 13)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    ck_assert(got.r[0].v.is_float && got.r[0].v.f == 1.5e-13);
    rn_window_free(w);
    rowset_free(&got);
}
END_TEST

START_TEST(decimal_overflow_is_double)
{
    rowset got = { 0 };
    rn_window *w = mkwin(20, 10, RN_AGG_SUM, 0, 0);
    /* 20 * (2^63 - 1) at scale 18 needs more than 127 bits. */
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(add(w, 0, "a", ival(INT64_MAX)), 0);
    ck_assert_int_eq(add(w, 10, "a", dval(1, 18)), 0);
    /* A sum past an int64 mantissa is a double; held exactly in 128 bits. */
    ck_assert_int_eq(add(w, 0, "b", ival(INT64_MAX)), 0);
    ck_assert_int_eq(add(w, 0, "b", dval(INT64_MAX, 18)), 0);
    ck_assert_int_eq(add(w, 10, "c", dval(INT64_MAX, 18)), 0);
    ck_assert_int_eq(add(w, 10, "c", dval(-INT64_MAX, 18)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    /* [-10,10): a and b; [0,20): a b c; [10,30): a c. */
    ck_assert_uint_eq(got.n, 7);
    ck_assert(got.r[0].v.is_float);         /* past int64, as for integers */
    ck_assert(got.r[1].v.is_float);         /* exact, but not an int64 mantissa */
    ck_assert(got.r[2].v.is_float);         /* overflowed 128 bits: a double */
    ck_assert(fabs(got.r[2].v.f - 20 * 9223372036854775807.0) < 1e6);
    ck_assert_str_eq(txt(got.r[4].v), "0.000000000000000000");
    ck_assert(got.r[5].v.is_float);         /* inexact until the key leaves */
    ck_assert(fabs(got.r[5].v.f - 1e-18) < 1e-30);
    rn_window_free(w);
    rowset_free(&got);
}
END_TEST

START_TEST(decimal_minmax)
{
    rowset got = { 0 };
    rn_window *mn = mkwin(10, 10, RN_AGG_MIN, 0, 0), *mx = mkwin(10, 10, RN_AGG_MAX, 0, 0);
    rn_value v[] = { dval(110, 2), dval(11, 1), fval(1.1), dval(-5, 1), dval(-50, 2),
                     dval(19, 1), ival(2), dval(20, 1) };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        ck_assert_int_eq(add(mn, 0, i < 3 ? "a" : "b", v[i]), 0);
        ck_assert_int_eq(add(mx, 0, i < 3 ? "a" : "b", v[i]), 0);
    }
    ck_assert_int_eq(flush(mn, &got), 0);
    ck_assert_int_eq(flush(mx, &got), 0);
    /* Equal values: fewer decimals win, whatever the order. */
    ck_assert_str_eq(txt(got.r[0].v), "1.1");
    ck_assert(!got.r[0].v.is_float);
    ck_assert_str_eq(txt(got.r[1].v), "-0.5");
    ck_assert_str_eq(txt(got.r[2].v), "1.1");
    ck_assert_str_eq(txt(got.r[3].v), "2");
    rn_window_free(mn);
    rn_window_free(mx);
    rowset_free(&got);
}
END_TEST

START_TEST(double_sum_no_residue)
{
    rowset got = { 0 };
    rn_window *w = mkwin(20, 10, RN_AGG_SUM, 0, 0);
    /* Naively, (1e20 + 1) - 1e20 = 0. */
    ck_assert_int_eq(add(w, 0, "a", fval(1e20)), 0);
    ck_assert_int_eq(add(w, 10, "a", fval(1.0)), 0);
    ck_assert_int_eq(add(w, 0, "b", fval(0.1)), 0);
    ck_assert_int_eq(add(w, 10, "b", fval(0.2)), 0);
    ck_assert_int_eq(add(w, 10, "c", fval(INFINITY)), 0);
    ck_assert_int_eq(add(w, 20, "c", fval(1.5)), 0);
    ck_assert_int_eq(add(w, 10, "d", fval(NAN)), 0);
    ck_assert_int_eq(add(w, 20, "d", fval(2.5)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    /* Windows end 10: a b; 20: a b c d; 30: a b c d; 40: c d. */
    ck_assert_uint_eq(got.n, 12);
    ck_assert(got.r[6].v.f == 1.0);     /* [10,30) a */
    ck_assert(got.r[7].v.f == 0.2);     /* b: the 0.1 left without a trace */
    ck_assert(isinf(got.r[4].v.f));     /* [0,20) c */
    ck_assert(isnan(got.r[5].v.f));     /* [0,20) d */
    ck_assert(isinf(got.r[8].v.f));     /* [10,30) c: inf + 1.5 */
    ck_assert(got.r[10].v.f == 1.5);    /* [20,40) c: the inf left */
    ck_assert(got.r[11].v.f == 2.5);    /* d: the nan left */
    rn_window_free(w);
    rowset_free(&got);
}
END_TEST

START_TEST(minmax_mixed)
{
    rowset got = { 0 };
    rn_window *mn = mkwin(10, 10, RN_AGG_MIN, 0, 0);
    rn_window *mx = mkwin(10, 10, RN_AGG_MAX, 0, 0);
    rn_value vals[] = { fval(3.0), ival(3), fval(2.5), ival(7), fval(7.25), fval(NAN) };
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(add(mn, 0, "a", vals[i]), 0);
        ck_assert_int_eq(add(mx, 0, "a", vals[i]), 0);
    }
    /* 2^53 + 1 is not a double: it must still beat 2^53 as one. */
    ck_assert_int_eq(add(mx, 0, "b", fval(9007199254740992.0)), 0);
    ck_assert_int_eq(add(mx, 0, "b", ival(9007199254740993LL)), 0);
    ck_assert_int_eq(add(mn, 0, "b", ival(-9007199254740993LL)), 0);
    ck_assert_int_eq(add(mn, 0, "b", fval(-9007199254740992.0)), 0);
    /* A tie keeps the integer; nan only when there is nothing else. */
    ck_assert_int_eq(add(mn, 0, "c", fval(4.0)), 0);
    ck_assert_int_eq(add(mn, 0, "c", ival(4)), 0);
    ck_assert_int_eq(add(mn, 0, "d", fval(NAN)), 0);
    /* Not a tie, though 2^53 + 1 rounds to 2^53 as a double. */
    ck_assert_int_eq(add(mn, 0, "e", ival(9007199254740993LL)), 0);
    ck_assert_int_eq(add(mn, 0, "e", fval(9007199254740992.0)), 0);
    ck_assert_int_eq(add(mn, 0, "f", fval(9007199254740992.0)), 0);
    ck_assert_int_eq(add(mn, 0, "f", ival(9007199254740993LL)), 0);
    ck_assert_int_eq(flush(mn, &got), 0);
    ck_assert_uint_eq(got.n, 6);
    ck_assert(got.r[4].v.is_float && got.r[4].v.f == 9007199254740992.0);
    ck_assert(got.r[5].v.is_float && got.r[5].v.f == 9007199254740992.0);
    ck_assert(got.r[0].v.is_float && got.r[0].v.f == 2.5);
    ck_assert(!got.r[1].v.is_float && got.r[1].v.i == -9007199254740993LL);
    ck_assert(!got.r[2].v.is_float && got.r[2].v.i == 4);
    ck_assert(got.r[3].v.is_float && isnan(got.r[3].v.f));
    rowset_clear(&got);
    ck_assert_int_eq(flush(mx, &got), 0);
    ck_assert_uint_eq(got.n, 2);
    ck_assert(got.r[0].v.is_float && got.r[0].v.f == 7.25);
    ck_assert(!got.r[1].v.is_float && got.r[1].v.i == 9007199254740993LL);
    rn_window_free(mn);
    rn_window_free(mx);
    rowset_free(&got);

    /* Over a sliding window the extreme is recomputed from the slices held. */
    rowset exp = { 0 };
    rn_window *w = mkwin(30, 10, RN_AGG_MAX, 1, 0);
    ck_assert_int_eq(add(w, 0, "a", ival(9)), 0);
    ck_assert_int_eq(add(w, 10, "a", fval(1.5)), 0);
    ck_assert_int_eq(add(w, 20, "a", ival(1)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    push(&exp, -20, 10, "a", ival(9));
    push(&exp, 10, 40, "a", fval(1.5));
    push(&exp, 20, 50, "a", ival(1));
    expect_rows_equal(&got, &exp, "sliding max, changed only");
    rn_window_free(w);
    rowset_free(&got);
    rowset_free(&exp);
}
END_TEST

START_TEST(emit_changed_tumbling)
{
    rowset got = { 0 }, exp = { 0 };
    rn_window *w = mkwin(10, 10, RN_AGG_COUNT, 1, 0);
    ck_assert_int_eq(add(w, 1, "a", ival(0)), 0);
    ck_assert_int_eq(add(w, 2, "b", ival(0)), 0);
    ck_assert_int_eq(add(w, 11, "a", ival(0)), 0);     /* a: 1 again, unchanged */
    ck_assert_int_eq(add(w, 12, "b", ival(0)), 0);
    ck_assert_int_eq(add(w, 13, "b", ival(0)), 0);     /* b: 2, changed */
    ck_assert_int_eq(add(w, 31, "a", ival(0)), 0);     /* after an empty window: new */
    ck_assert_int_eq(flush(w, &got), 0);
    push(&exp, 0, 10, "a", ival(1));
    push(&exp, 0, 10, "b", ival(1));
    push(&exp, 10, 20, "b", ival(2));
    push(&exp, 30, 40, "a", ival(1));
    expect_rows_equal(&got, &exp, "changed");
    rn_window_free(w);
    rowset_free(&got);
    rowset_free(&exp);
}
END_TEST

/* ---- fill ----------------------------------------------------------------- */

static rn_window *mkfill(int64_t width, int64_t slide, rn_agg agg, int changed, int fill,
                         const char *named)
{
    char err[RN_ERRLEN] = "";
    rn_str k = { named, named ? strlen(named) : 0 };
    rn_window_opts o = { .width_ns = width, .slide_ns = slide, .agg = agg,
                         .emit_changed = changed, .fill = fill,
                         .fill_keys = named ? &k : NULL, .nfill_keys = !!named };
    rn_window *w = rn_window_new(&o, err);
    ck_assert_msg(w != NULL, "%s", err);
    return w;
}

START_TEST(fill_last_keys)
{
    rowset got = { 0 }, exp = { 0 };
    rn_window *w = mkfill(10, 10, RN_AGG_COUNT, 0, 1, NULL);
    ck_assert_int_eq(advance(w, 5, &got), 0);
    ck_assert_int_eq(add(w, 31, "a", ival(0)), 0);
    ck_assert_int_eq(add(w, 32, "b", ival(0)), 0);
    ck_assert_int_eq(add(w, 42, "b", ival(0)), 0);
    ck_assert_int_eq(add(w, 85, "a", ival(0)), 0);
    ck_assert_int_eq(advance(w, 60, &got), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    /* Nothing before the first window with data; a leaves: one 0 row; the
     * quiet spell repeats b; after the last window with data, nothing. */
    push(&exp, 30, 40, "a", ival(1));
    push(&exp, 30, 40, "b", ival(1));
    push(&exp, 40, 50, "a", ival(0));
    push(&exp, 40, 50, "b", ival(1));
    push(&exp, 50, 60, "b", ival(0));
    push(&exp, 60, 70, "b", ival(0));
    push(&exp, 70, 80, "b", ival(0));
    push(&exp, 80, 90, "a", ival(1));
    push(&exp, 80, 90, "b", ival(0));
    expect_rows_equal(&got, &exp, "fill");
    ck_assert_uint_eq(stats(w).windows, 6);
    ck_assert_uint_eq(stats(w).fill_cut, 0);
    rn_window_free(w);
    rowset_free(&got);
    rowset_free(&exp);
}
END_TEST

START_TEST(fill_named_key)
{
    rowset got = { 0 }, exp = { 0 };
    /* A named key alone (no fill of the last keys); min of nothing is 0. */
    rn_window *w = mkfill(10, 10, RN_AGG_MIN, 0, 0, "z");
    ck_assert_int_eq(add(w, 11, "a", ival(5)), 0);
    ck_assert_int_eq(add(w, 12, "z", ival(-3)), 0);
    ck_assert_int_eq(add(w, 41, "a", ival(7)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    push(&exp, 10, 20, "a", ival(5));
    push(&exp, 10, 20, "z", ival(-3));
    push(&exp, 20, 30, "z", ival(0));
    push(&exp, 30, 40, "z", ival(0));
    push(&exp, 40, 50, "a", ival(7));
    push(&exp, 40, 50, "z", ival(0));
    expect_rows_equal(&got, &exp, "named");
    rn_window_free(w);
    rowset_free(&got);
    rowset_free(&exp);
}
END_TEST

START_TEST(fill_sliding)
{
    rowset got = { 0 }, exp = { 0 };
    rn_window *w = mkfill(20, 10, RN_AGG_SUM, 0, 1, NULL);
    ck_assert_int_eq(add(w, 5, "a", ival(4)), 0);
    ck_assert_int_eq(advance(w, 60, &got), 0);
    push(&exp, -10, 10, "a", ival(4));
    push(&exp, 0, 20, "a", ival(4));
    push(&exp, 10, 30, "a", ival(0));
    push(&exp, 20, 40, "a", ival(0));
    push(&exp, 30, 50, "a", ival(0));
    push(&exp, 40, 60, "a", ival(0));
    expect_rows_equal(&got, &exp, "sliding fill");
    rn_window_free(w);
    rowset_free(&got);
    rowset_free(&exp);
}
END_TEST

START_TEST(fill_emit_changed)
{
    rowset got = { 0 }, exp = { 0 };
    rn_window *w = mkfill(10, 10, RN_AGG_COUNT, 1, 1, "z");
    ck_assert_int_eq(add(w, 1, "a", ival(0)), 0);
    ck_assert_int_eq(add(w, 11, "a", ival(0)), 0);     /* 1 again: not emitted */
    ck_assert_int_eq(add(w, 45, "a", ival(0)), 0);
    ck_assert_int_eq(add(w, 46, "z", ival(0)), 0);
    ck_assert_int_eq(add(w, 55, "a", ival(0)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    push(&exp, 0, 10, "a", ival(1));
    push(&exp, 0, 10, "z", ival(0));
    push(&exp, 20, 30, "a", ival(0));                  /* then 0 again: not emitted */
    push(&exp, 40, 50, "a", ival(1));
    push(&exp, 40, 50, "z", ival(1));
    push(&exp, 50, 60, "z", ival(0));
    expect_rows_equal(&got, &exp, "fill, changed only");
    rn_window_free(w);
    rowset_free(&got);
    rowset_free(&exp);
}
END_TEST

START_TEST(fill_bounded)
{
    rowset got = { 0 };
    const int64_t M = RN_WIN_FILL_MAX;
    rn_window *w = mkfill(1, 1, RN_AGG_COUNT, 0, 1, NULL);
    ck_assert_int_eq(add(w, 0, "a", ival(0)), 0);
    ck_assert_int_eq(advance(w, M + 1, &got), 0);       /* a gap of exactly M */
    ck_assert_uint_eq(got.n, 1 + M);
    ck_assert_uint_eq(stats(w).fill_cut, 0);
    ck_assert_int_eq(advance(w, 3 * M, &got), 0);       /* one of 2M - 1: cut */
    ck_assert_uint_eq(got.n, 1 + 2 * M);
    ck_assert_int_eq(got.r[got.n - 1].end, 2 * M + 1);
    ck_assert_uint_eq(stats(w).fill_cut, 1);
    ck_assert_int_eq(stats(w).closed, 3 * M);
    ck_assert_int_eq(add(w, 3 * M + 2, "b", ival(0)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    ck_assert_uint_eq(got.n, 1 + 2 * M + 4);    /* a 0 at 3M and 3M+1; a 0, b 1 */
    ck_assert_str_eq(got.r[got.n - 1].key, "b");
    rn_window_free(w);
    rowset_free(&got);
}
END_TEST

/* ---- limits -------------------------------------------------------------- */

START_TEST(max_keys_evicts)
{
    rowset got = { 0 };
    rn_window *w = mkwin(20, 10, RN_AGG_COUNT, 0, 3);
    ck_assert_int_eq(add(w, 0, "a", ival(0)), 0);
    ck_assert_int_eq(add(w, 0, "b", ival(0)), 0);
    ck_assert_int_eq(add(w, 0, "c", ival(0)), 0);
    ck_assert_int_eq(add(w, 0, "d", ival(0)), RN_WIN_EVICTED);
    ck_assert_int_eq(add(w, 0, "a", ival(0)), 0);          /* known key: counted */
    ck_assert_int_eq(add(w, 10, "a", ival(0)), RN_WIN_EVICTED);  /* a new (slice, key) */
    ck_assert_uint_eq(stats(w).evicted, 2);
    ck_assert_uint_eq(stats(w).entries, 3);
    ck_assert_uint_eq(stats(w).slices, 1);     /* no slice made for nothing */
    ck_assert_int_eq(advance(w, 20, &got), 0); /* windows end 10 and 20 */
    ck_assert_int_eq(advance(w, 30, &got), 0); /* slice 0 leaves */
    ck_assert_uint_eq(stats(w).entries, 0);
    ck_assert_int_eq(add(w, 30, "d", ival(0)), 0);
    ck_assert_uint_eq(got.n, 6);
    ck_assert_int_eq(got.r[0].v.i, 2);
    rn_window_free(w);
    rowset_free(&got);
}
END_TEST

START_TEST(invalid_events)
{
    rn_window *w = mkwin(20, 10, RN_AGG_COUNT, 0, 0);
    char *big = calloc(1, RN_WIN_KEY_MAX + 1);
    ck_assert_int_eq(rn_window_add(w, 0, big, RN_WIN_KEY_MAX + 1, ival(0)), RN_WIN_INVALID);
    ck_assert_int_eq(rn_window_add(w, 0, big, RN_WIN_KEY_MAX, ival(0)), 0);
    ck_assert_int_eq(add(w, INT64_MAX, "a", ival(0)), RN_WIN_INVALID);
    ck_assert_int_eq(add(w, INT64_MIN, "a", ival(0)), RN_WIN_INVALID);
    ck_assert_int_eq(rn_window_add(w, 0, NULL, 0, ival(0)), 0);     /* empty key */
    ck_assert_uint_eq(stats(w).invalid, 3);
    rn_window_free(w);
    free(big);
}
END_TEST

START_TEST(options)
{
    char err[RN_ERRLEN] = "";
    rn_window_opts o = { .width_ns = 10, .slide_ns = 0, .agg = RN_AGG_COUNT };
    ck_assert_ptr_null(rn_window_new(&o, err));
    ck_assert_msg(strstr(err, "slide"), "%s", err);
    o.slide_ns = 3;
    ck_assert_ptr_null(rn_window_new(&o, err));
    ck_assert_msg(strstr(err, "multiple"), "%s", err);
    o.width_ns = -3;
    ck_assert_ptr_null(rn_window_new(&o, err));
    o.width_ns = 9;
    o.agg = (rn_agg)42;
    ck_assert_ptr_null(rn_window_new(&o, err));
    rn_agg a;
    ck_assert_int_eq(rn_agg_parse("avg", &a, err), 0);
    ck_assert_int_eq(a, RN_AGG_AVG);
    ck_assert_int_eq(rn_agg_parse("median", &a, err), -1);
    ck_assert_msg(strstr(err, "median"), "%s", err);
    ck_assert_str_eq(rn_agg_name(RN_AGG_MIN), "min");
}
END_TEST

/* ---- state --------------------------------------------------------------- */

static char dir[] = "/tmp/check_window.XXXXXX";
static char path[256];

static void setup(void)
{
    strcpy(dir, "/tmp/check_window.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/state", dir);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(save_load_resumes)
{
    /* Second time round with decimals: the state keeps their scales. */
    for (rand_decimals = 0; rand_decimals <= 1; rand_decimals++) {
        for (int agg = RN_AGG_COUNT; agg <= RN_AGG_AVG; agg++)
            for (int changed = 0; changed <= 1; changed++) {
                cfg c = { (rn_agg)agg, 4, changed, 40, 4000, 4242 + (uint64_t)agg, NULL };
                rowset a = { 0 }, b = { 0 };
                tev *ea, *eb;
                size_t na, nb;
                run_random(&c, &a, &ea, &na);
                c.state = path;
                run_random(&c, &b, &eb, &nb);
                ck_assert_uint_eq(na, nb);
                expect_rows_equal(&b, &a, rn_agg_name((rn_agg)agg));
                char tmp[300];
                snprintf(tmp, sizeof tmp, "%s.tmp", path);
                ck_assert_int_ne(access(tmp, F_OK), 0);
                rowset_free(&a);
                rowset_free(&b);
                free(ea);
                free(eb);
            }
    }
    rand_decimals = 0;
}
END_TEST

/* After a load, flush_fresh emits only the windows holding a slice that
 * got an event since: nothing when none did, where flush emits them all. */
START_TEST(flush_fresh_after_load)
{
    char err[RN_ERRLEN] = "";
    rowset got = { 0 };
    rn_window *w = mkwin(20, 10, RN_AGG_COUNT, 0, 0);
    ck_assert_int_eq(add(w, 5, "a", ival(1)), 0);
    ck_assert_int_eq(add(w, 15, "b", ival(1)), 0);
    ck_assert_int_eq(advance(w, 20, &got), 0);
    ck_assert_uint_eq(got.n, 3);            /* a; a, b */
    ck_assert_int_eq(rn_window_save(w, path, "x", err), 0);
    rn_window_free(w);
    rowset_clear(&got);

    for (int fresh_only = 0; fresh_only <= 1; fresh_only++) {
        w = mkwin(20, 10, RN_AGG_COUNT, 0, 0);
        ck_assert_msg(rn_window_load(w, path, "x", err) == 0, "%s", err);
        got.limit = INT64_MAX;
        if (fresh_only)
            ck_assert_int_eq(rn_window_flush_fresh(w, collect, &got), 0);
        else
            ck_assert_int_eq(rn_window_flush(w, collect, &got), 0);
        /* flush: the window [10, 30) of b; flush_fresh: nothing new. */
        ck_assert_uint_eq(got.n, fresh_only ? 0 : 1);
        rn_window_free(w);
        rowset_clear(&got);

        w = mkwin(20, 10, RN_AGG_COUNT, 0, 0);
        ck_assert_msg(rn_window_load(w, path, "x", err) == 0, "%s", err);
        ck_assert_int_eq(add(w, 35, "c", ival(1)), 0);
        got.limit = INT64_MAX;
        if (fresh_only)
            ck_assert_int_eq(rn_window_flush_fresh(w, collect, &got), 0);
        else
            ck_assert_int_eq(rn_window_flush(w, collect, &got), 0);
        size_t i = 0;
        ck_assert_uint_eq(got.n, fresh_only ? 2 : 3);
        if (!fresh_only) {
            ck_assert(got.r[i].start == 10 && got.r[i].end == 30 && strcmp(got.r[i].key, "b") == 0);
            i++;
        }
        ck_assert(got.r[i].start == 20 && got.r[i].end == 40 && strcmp(got.r[i].key, "c") == 0);
        ck_assert(got.r[i + 1].start == 30 && got.r[i + 1].end == 50);
        rn_window_free(w);
        rowset_clear(&got);
    }
    rowset_free(&got);
}
END_TEST

START_TEST(load_missing_is_fresh)
{
    char err[RN_ERRLEN] = "";
    rn_window *w = mkwin(20, 10, RN_AGG_SUM, 0, 0);
    ck_assert_int_eq(rn_window_load(w, path, "x", err), RN_WIN_FRESH);
    /* An empty window saves and loads too. */
    ck_assert_int_eq(rn_window_save(w, path, "x", err), 0);
    rn_window_free(w);
    w = mkwin(20, 10, RN_AGG_SUM, 0, 0);
    ck_assert_msg(rn_window_load(w, path, "x", err) == 0, "%s", err);
    /* Only into a fresh window. */
    ck_assert_int_eq(add(w, 1, "a", ival(1)), 0);
    ck_assert_int_eq(rn_window_load(w, path, "x", err), -1);
    ck_assert_msg(strstr(err, "fresh"), "%s", err);
    rn_window_free(w);
}
END_TEST

static void save_sample(rn_agg agg, const char *sig)
{
    char err[RN_ERRLEN] = "";
    rowset got = { 0 };
    rn_window *w = mkwin(30, 10, agg, 1, 0);
    ck_assert_int_eq(add(w, 1, "alpha", ival(1)), 0);
    ck_assert_int_eq(add(w, 12, "beta", fval(2.5)), 0);
    ck_assert_int_eq(add(w, 25, "gamma", ival(3)), 0);
    ck_assert_int_eq(advance(w, 20, &got), 0);
    ck_assert_msg(rn_window_save(w, path, sig, err) == 0, "%s", err);
    rn_window_free(w);
    rowset_free(&got);
}

START_TEST(load_other_options)
{
    char err[RN_ERRLEN] = "";
    save_sample(RN_AGG_SUM, "regex=a agg=sum");
    rn_window *w = mkwin(30, 10, RN_AGG_SUM, 1, 0);
    ck_assert_int_eq(rn_window_load(w, path, "regex=b agg=sum", err), -1);
    ck_assert_msg(strstr(err, "was written with different options: 'regex=a agg=sum'"),
                  "%s", err);
    ck_assert_msg(strstr(err, path), "%s", err);
    rn_window_free(w);
    /* The window's own options are checked even when the caller's agree. */
    w = mkwin(60, 10, RN_AGG_SUM, 1, 0);
    ck_assert_int_eq(rn_window_load(w, path, "regex=a agg=sum", err), -1);
    ck_assert_msg(strstr(err, "different options") && strstr(err, "width=30"), "%s", err);
    rn_window_free(w);
    w = mkwin(30, 10, RN_AGG_SUM, 1, 0);
    ck_assert_msg(rn_window_load(w, path, "regex=a agg=sum", err) == 0, "%s", err);
    ck_assert_uint_eq(stats(w).slices, 3);
    ck_assert_uint_eq(stats(w).keys, 2);
    ck_assert_int_eq(stats(w).closed, 20);
    rn_window_free(w);
}
END_TEST

static size_t file_size(void)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (size_t)st.st_size;
}

static void expect_load_error(const char *msg)
{
    char err[RN_ERRLEN] = "";
    rowset got = { 0 };
    rn_window *w = mkwin(30, 10, RN_AGG_MAX, 1, 0);
    ck_assert_int_eq(rn_window_load(w, path, "s", err), -1);
    ck_assert_msg(strstr(err, msg), "expected '%s', got '%s'", msg, err);
    ck_assert_msg(strstr(err, path), "%s", err);
    /* Left fresh and usable. */
    ck_assert_uint_eq(stats(w).slices, 0);
    ck_assert_uint_eq(stats(w).keys, 0);
    ck_assert_int_eq(add(w, 5, "a", ival(1)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    ck_assert_uint_eq(got.n, 1);    /* emit_changed: the same max 3 times */
    rn_window_free(w);
    rowset_free(&got);
}

static void patch(size_t off, unsigned char xor)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    ck_assert_int_eq(pread(fd, &c, 1, (off_t)off), 1);
    c ^= xor;
    ck_assert_int_eq(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

START_TEST(load_corrupt)
{
    save_sample(RN_AGG_MAX, "s");
    size_t size = file_size();
    char *orig = malloc(size);
    int fd = open(path, O_RDONLY);
    ck_assert_int_eq(read(fd, orig, size), (ssize_t)size);
    close(fd);

    /* Every truncation is caught and names a byte offset. */
    for (size_t n = 0; n < size; n++) {
        fd = open(path, O_WRONLY | O_TRUNC);
        ck_assert_int_eq(rn_write_all(fd, orig, n), 0);
        close(fd);
        char err[RN_ERRLEN] = "";
        rn_window *w = mkwin(30, 10, RN_AGG_MAX, 1, 0);
        ck_assert_int_eq(rn_window_load(w, path, "s", err), -1);
        ck_assert_msg(strstr(err, "byte"), "truncated to %zu: %s", n, err);
        ck_assert_uint_eq(stats(w).slices, 0);
        rn_window_free(w);
    }
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_eq(rn_write_all(fd, orig, size - 3), 0);
    close(fd);
    expect_load_error("truncated at byte");

    /* Every flipped byte is caught (the checksum backs up the parser). */
    for (size_t i = 0; i < size; i++) {
        fd = open(path, O_WRONLY | O_TRUNC);
        ck_assert_int_eq(rn_write_all(fd, orig, size), 0);
        close(fd);
        patch(i, 0x20);
        char err[RN_ERRLEN] = "";
        rn_window *w = mkwin(30, 10, RN_AGG_MAX, 1, 0);
        ck_assert_int_eq(rn_window_load(w, path, "s", err), -1);
        ck_assert_msg(strstr(err, "byte") || strstr(err, "different options"),
                      "flipped byte %zu: %s", i, err);
        rn_window_free(w);
    }

    /* A key byte: only the checksum can tell. */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_eq(rn_write_all(fd, orig, size), 0);
    close(fd);
    char *k = memmem(orig, size, "alpha", 5);
    ck_assert_ptr_nonnull(k);
    patch((size_t)(k - orig), 0x01);
    expect_load_error("checksum mismatch");

    /* An absurd length is an error, never an allocation. */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_eq(rn_write_all(fd, orig, size), 0);
    close(fd);
    patch((size_t)(k - orig) - 1, 0x80);    /* high byte of the key length */
    expect_load_error("corrupt at byte");

    /* Someone else's file, another version. */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_eq(rn_write_all(fd, "runnel-pos 1\n1 2 3 ff 4 /a\n", 27), 0);
    close(fd);
    expect_load_error("not a winagg state file");
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_eq(rn_write_all(fd, orig, size), 0);
    close(fd);
    patch(14, 0x01);
    expect_load_error("version 3 not supported (byte 14)");
    free(orig);
}
END_TEST

/* Little-endian bytes into a buffer, for a version 1 file made by hand. */
static size_t put_le(unsigned char *b, size_t off, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        b[off + (size_t)i] = (unsigned char)(v >> (8 * i));
    return off + (size_t)n;
}

/* State files of version 1 (before decimals) still load: their exact sums
 * are integers (scale 0). */
START_TEST(load_version1)
{
    unsigned char b[256];
    const char *msig = "agg=sum width=10 slide=10 changed=0";
    size_t n = 0;
    memcpy(b, "runnel-window\n", 14);
    n = put_le(b, 14, 1, 4);
    n = put_le(b, n, 1, 4);
    b[n++] = 's';
    n = put_le(b, n, strlen(msig), 4);
    memcpy(b + n, msig, strlen(msig));
    n += strlen(msig);
    n = put_le(b, n, (uint64_t)(INT64_MIN / 10), 8);    /* nothing passed yet */
    b[n++] = 0;
    n = put_le(b, n, 1, 8);                             /* one slice, */
    n = put_le(b, n, 3, 8);                             /* number 3, */
    n = put_le(b, n, 1, 8);                             /* one key: */
    n = put_le(b, n, 1, 4);
    b[n++] = 'a';
    n = put_le(b, n, 2, 8);                             /* count */
    n = put_le(b, n, 0, 8);                             /* nf, nbad */
    n = put_le(b, n, 0, 8);
    n = put_le(b, n, (uint64_t)-7, 8);                  /* isum -7 */
    n = put_le(b, n, UINT64_MAX, 8);
    for (int i = 0; i < 3; i++)
        n = put_le(b, n, 0, 8);                         /* dsum, dcomp, bad */
    n = put_le(b, n, 0, 8);                             /* the window table: empty */
    uint64_t h = 0;
    for (size_t i = 0; i < n; i += 8) {
        unsigned char w8[8] = { 0 };
        memcpy(w8, b + i, n - i < 8 ? n - i : 8);
        uint64_t v = 0;
        for (int j = 7; j >= 0; j--)
            v = (v << 8) | w8[j];
        h = rn_hash_mix(h ^ v, RN_HASH_P2);
    }
    h = rn_hash_mix(h ^ n, RN_HASH_P3);
    size_t end = put_le(b, n, h, 8);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_eq(rn_write_all(fd, b, end), 0);
    close(fd);

    char err[RN_ERRLEN] = "";
    rowset got = { 0 };
    rn_window *w = mkwin(10, 10, RN_AGG_SUM, 0, 0);
    ck_assert_msg(rn_window_load(w, path, "s", err) == 0, "%s", err);
    /* A decimal joins the old integer sum exactly, and leaves it again. */
    ck_assert_int_eq(add(w, 35, "a", dval(25, 1)), 0);
    ck_assert_int_eq(add(w, 45, "a", dval(25, 1)), 0);
    ck_assert_int_eq(flush(w, &got), 0);
    ck_assert_uint_eq(got.n, 2);
    ck_assert_str_eq(txt(got.r[0].v), "-4.5");
    ck_assert_str_eq(txt(got.r[1].v), "2.5");
    /* Saved again, it is version 2 and keeps the scale. */
    ck_assert_int_eq(add(w, 55, "a", dval(125, 2)), 0);
    ck_assert_msg(rn_window_save(w, path, "s", err) == 0, "%s", err);
    rn_window_free(w);
    w = mkwin(10, 10, RN_AGG_SUM, 0, 0);
    ck_assert_msg(rn_window_load(w, path, "s", err) == 0, "%s", err);
    ck_assert_int_eq(add(w, 55, "a", dval(1, 1)), 0);
    rowset_clear(&got);
    ck_assert_int_eq(flush(w, &got), 0);
    ck_assert_uint_eq(got.n, 1);
    ck_assert_str_eq(txt(got.r[0].v), "1.35");
    rn_window_free(w);
    rowset_free(&got);
}
END_TEST

START_TEST(save_unwritable)
{
    char err[RN_ERRLEN] = "";
    rn_window *w = mkwin(30, 10, RN_AGG_MAX, 1, 0);
    ck_assert_int_eq(rn_window_save(w, "/nonexistent-dir/state", "s", err), -1);
    ck_assert_msg(strstr(err, "/nonexistent-dir/state.tmp"), "%s", err);
    rn_window_free(w);
}
END_TEST

/* ---- benchmark (by hand: check_window bench) ------------------------------ */

static int discard(void *data, const rn_row *row)
{
    (void)row;
    (*(uint64_t *)data)++;
    return 0;
}

static void bench_adds(const char *name, rn_agg agg, int nkeys, long n, int64_t width)
{
    char (*keys)[32] = malloc((size_t)nkeys * sizeof *keys);
    size_t *klen = malloc((size_t)nkeys * sizeof *klen);
    rn_window_opts o = { .width_ns = width, .slide_ns = 1000000000, .agg = agg };
    rn_window *w = rn_window_new(&o, NULL);     /* no ck_assert outside tests */
    uint64_t rows = 0;
    for (int i = 0; i < nkeys; i++)
        klen[i] = (size_t)snprintf(keys[i], sizeof keys[i], "/api/v1/item/%d", i);
    /* Warm up: one pass over the keys in a slice before the clock starts. */
    for (int i = 0; i < nkeys; i++)
        rn_window_add(w, 0, keys[i], klen[i], ival(i));
    rng_state = 88172645463325252ULL;
    int *order = malloc((size_t)n * sizeof *order);
    for (long i = 0; i < n; i++)
        order[i] = (int)(rnd() % (uint64_t)nkeys);
    int64_t t0 = rn_mono_ns();
    /* 1000 events per ms of event time: 1s slices of 1M events each. */
    for (long i = 0; i < n; i++)
        rn_window_add(w, i * 1000, keys[order[i]], klen[order[i]], ival(i & 1023));
    int64_t t1 = rn_mono_ns();
    rn_window_flush(w, discard, &rows);
    int64_t t2 = rn_mono_ns();
    printf("%-28s keys=%-8d %6.1f M adds/s   (+ windows: %6.1f M events/s overall, %" PRIu64
           " rows)\n", name, nkeys, (double)n / (double)(t1 - t0) * 1e3,
           (double)n / (double)(t2 - t0) * 1e3, rows);
    rn_window_free(w);
    free(order);
    free(keys);
    free(klen);
}

static void bench(void)
{
    const int64_t s = 1000000000;
    bench_adds("count tumbling 1s", RN_AGG_COUNT, 1000, 20000000, s);
    bench_adds("sum tumbling 1s", RN_AGG_SUM, 1000, 20000000, s);
    bench_adds("max tumbling 1s", RN_AGG_MAX, 1000, 20000000, s);
    bench_adds("count sliding 60s/1s", RN_AGG_COUNT, 1000, 20000000, 60 * s);
    bench_adds("sum sliding 60s/1s", RN_AGG_SUM, 1000, 20000000, 60 * s);
    bench_adds("max sliding 60s/1s", RN_AGG_MAX, 1000, 20000000, 60 * s);
    bench_adds("count tumbling 1s", RN_AGG_COUNT, 100000, 20000000, s);
    bench_adds("count sliding 60s/1s", RN_AGG_COUNT, 100000, 20000000, 60 * s);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "bench") == 0) {
        bench();
        return 0;
    }
    Suite *s = suite_create("window");
    TCase *ref = tcase_create("reference");
    tcase_set_timeout(ref, 120);
    tcase_add_test(ref, tumbling_reference);
    tcase_add_test(ref, sliding_reference);
    tcase_add_test(ref, many_keys_reference);
    tcase_add_test(ref, decimal_reference);
    suite_add_tcase(s, ref);
    TCase *time = tcase_create("time");
    tcase_add_test(time, aligned_to_epoch);
    tcase_add_test(time, emits_at_watermark);
    tcase_add_test(time, key_dropped_at_zero);
    tcase_add_test(time, out_of_order);
    tcase_add_test(time, late_rejected);
    tcase_add_test(time, idle_gap_is_fast);
    tcase_add_test(time, flush_trailing_windows);
    tcase_add_test(time, callback_error);
    suite_add_tcase(s, time);
    TCase *val = tcase_create("values");
    tcase_add_test(val, int_sum_exact_and_overflow);
    tcase_add_test(val, double_sum_no_residue);
    tcase_add_test(val, decimal_sum_exact);
    tcase_add_test(val, decimal_avg_rounding);
    tcase_add_test(val, decimal_overflow_is_double);
    tcase_add_test(val, decimal_minmax);
    tcase_add_test(val, minmax_mixed);
    tcase_add_test(val, emit_changed_tumbling);
    suite_add_tcase(s, val);
    TCase *fill = tcase_create("fill");
    tcase_set_timeout(fill, 60);
    tcase_add_test(fill, fill_last_keys);
    tcase_add_test(fill, fill_named_key);
    tcase_add_test(fill, fill_sliding);
    tcase_add_test(fill, fill_emit_changed);
    tcase_add_test(fill, fill_bounded);
    suite_add_tcase(s, fill);
    TCase *lim = tcase_create("limits");
    tcase_add_test(lim, max_keys_evicts);
    tcase_add_test(lim, invalid_events);
    tcase_add_test(lim, options);
    suite_add_tcase(s, lim);
    TCase *st = tcase_create("state");
    tcase_set_timeout(st, 60);
    tcase_add_checked_fixture(st, setup, teardown);
    tcase_add_test(st, save_load_resumes);
    tcase_add_test(st, load_missing_is_fresh);
    tcase_add_test(st, flush_fresh_after_load);
    tcase_add_test(st, load_other_options);
    tcase_add_test(st, load_corrupt);
    tcase_add_test(st, save_unwritable);
    tcase_add_test(st, load_version1);
    suite_add_tcase(s, st);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
